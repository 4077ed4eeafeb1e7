"""A customer someone vouches for (the shop's backend, a signed token, the terminal's
operator): found in the order system, by id or email, and remembered here as a verification
would remember them."""

from __future__ import annotations

from sqlmodel import Session

from agent.errors import InvalidInput
from agent.store.orders import remember_customer
from agent.store.tables import Customer
from tools.order_system import CustomerRecord, OrderSystem


def vouched_customer(
    session: Session, orders: OrderSystem, subject: str, found: CustomerRecord | None = None
) -> str:
    """The id of the customer `subject` (an id or an email) names, remembered here; InvalidInput
    when none does. The order system's own errors (unreachable, a bad answer) pass through.
    `found`: the customer `find_vouched` found already (read before a write transaction)."""
    return vouched(session, orders, subject, found).id


def vouched(
    session: Session, orders: OrderSystem, subject: str, found: CustomerRecord | None = None
) -> Customer:
    """`vouched_customer`, as the customer's row here."""
    customer = found or find_vouched(orders, subject)
    return remember_customer(session=session, customer_id=customer.id,
                             first_name=customer.first_name, last_name=customer.last_name,
                             email=customer.email, address=customer.address)  # fmt: skip


def find_vouched(orders: OrderSystem, subject: str) -> CustomerRecord:
    """The customer `subject` (an id or an email) names, as the order system has them."""
    wanted = subject.strip()
    by_email = "@" in wanted
    if by_email:
        found = orders.customer_by_email(wanted.lower())
        customer = orders.customer(found) if found else None
    else:
        customer = orders.customer(wanted)
    if customer is None or (
        customer.email.strip().lower() != wanted.lower() if by_email else customer.id != wanted
    ):
        raise InvalidInput(f"No customer matches {subject!r}.")
    return customer
