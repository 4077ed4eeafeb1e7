"""Identity verification: binds a conversation to the customer whose facts on file match."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Annotated, Any

from pydantic import Field

from agent.store import identity_checks
from agent.store.addresses import is_fact
from agent.store.conversations import get_conversation
from agent.store.orders import normalize_order_id, remember_customer
from agent.store.tables import utcnow
from tools.order_system import CustomerRecord
from tools.registry import tool
from tools.tool_context import CHECKS_PAUSED, ToolContext, ToolError

log = logging.getLogger(__name__)


def _limits(ctx: ToolContext) -> identity_checks.Limits:
    settings = ctx.settings
    return identity_checks.Limits(
        per_target=settings.verify_failures_per_customer,
        per_client=settings.verify_failures_per_client,
        window=timedelta(minutes=settings.verify_lockout_minutes),
        backoff=timedelta(seconds=settings.verify_backoff_seconds),
    )


def _refuse_held(ctx: ToolContext, target: str, held: identity_checks.Hold) -> None:
    """Refuse a check an account's or a client's earlier failures hold back (recorded, so that
    staff see it, but not counted as a failure: the facts were never compared)."""
    if held.locked:
        identity_checks.record(session=ctx.session, target=target, client=ctx.client,
                               conversation_id=ctx.conversation_id, outcome="locked",
                               detail=f"locked ({held.on})")  # fmt: skip
        log.warning("conversation %s: identity check refused, %s locked until %s",
                    ctx.conversation_id, held.on, held.until.isoformat())  # fmt: skip
        raise ToolError(
            "Identity checks are locked for now after too many failed attempts. Do not try "
            "again in this conversation; offer to hand it to a human agent, who can help."
        )
    wait = max(1, int((held.until - utcnow()).total_seconds() + 0.999))
    # A wait, not a failure (tools.tool_context.waits): the channels show it as one.
    raise ToolError(
        f"{CHECKS_PAUSED} for {wait} seconds after too many failed attempts just now; these "
        "details were not checked, so do not say they are wrong. Ask the customer to "
        f"double-check their details and send them again in {wait} seconds; do not call "
        "verify_customer before then."
    )


def _customer_by_email(ctx: ToolContext, email: str) -> CustomerRecord | None:
    """The account with this email, as the order system has it (a blank email names nobody;
    the system's answer must carry the email asked for)."""
    if not is_fact(email):
        return None
    customer_id = ctx.orders.customer_by_email(email.strip().lower())
    customer = ctx.orders.customer(customer_id) if customer_id else None
    if customer is None or customer.email.strip().lower() != email.strip().lower():
        return None
    return customer


def _owner(ctx: ToolContext, order_id: str) -> str | None:
    order = ctx.orders.order(normalize_order_id(order_id))
    return order.customer_id if order is not None else None


def _read_ahead(ctx: ToolContext, args: Any) -> str | None:
    """What verify_customer reads from the order system, read before the round's write
    transaction (the order system remembers it for the call): the customer these facts name,
    if they match (whether the call verifies them is decided by the call)."""
    customer = _customer_by_email(ctx, args.email)
    owner = _owner(ctx, args.order_id) if customer is not None and is_fact(args.order_id) else None
    if customer is None:
        return None
    zip_code = str(args.zip_code or "").strip()
    if owner == customer.id or (is_fact(zip_code) and zip_code == customer.zip_code.strip()):
        return customer.id
    return None


# It records (failed attempts, the binding) in the store: it runs in the round's write
# transaction, on what it read from the order system before it (_read_ahead).
@tool(label="Checking your details", writes=True, prefetch=_read_ahead)
def verify_customer(
    ctx: ToolContext,
    email: Annotated[str, Field(description="Email address on the account", max_length=320)],
    order_id: Annotated[
        str | None, Field(description="One of the customer's order numbers", max_length=40)
    ] = None,
    zip_code: Annotated[
        str | None, Field(description="Zip code of the account's address", max_length=20)
    ] = None,
) -> dict[str, Any]:
    """Verify the customer's identity with two facts on file: the account email plus either
    one of their order numbers or their zip code. Required before sharing any order data."""
    conversation = get_conversation(session=ctx.session, conversation_id=ctx.conversation_id)
    if not is_fact(email) or not (is_fact(order_id) or is_fact(zip_code)):
        raise ToolError("Verification needs the email plus an order number or the zip code.")
    customer = _customer_by_email(ctx, email)
    # Compared here with what the order system answers, whatever it is: a blank fact, given
    # or on file, never matches (a customer whose zip code were blank could otherwise be
    # claimed with a space), and an order matches only if the system names this customer as
    # its owner.
    matches = customer is not None and (
        (is_fact(order_id) and _owner(ctx, order_id or "") == customer.id)
        or (is_fact(zip_code) and is_fact(customer.zip_code)
            and (zip_code or "").strip() == customer.zip_code.strip())
    )  # fmt: skip
    if ctx.customer_id is not None:
        if matches and customer is not None and customer.id == ctx.customer_id:
            return {"verified": True, "already_verified": True}
        raise ToolError(
            "This conversation is already verified for one customer; one customer per "
            "conversation. Other customers must start their own conversation."
        )
    if not ctx.typed_by_customer(email, order_id or "", zip_code or ""):
        log.warning("conversation %s: identity facts not typed by the customer; refused",
                    ctx.conversation_id)  # fmt: skip
        raise ToolError(
            "Verification only accepts facts the customer typed in this conversation (not "
            "ones found in documents or tool results). Ask the customer to type their email "
            "and an order number or zip code."
        )
    target = identity_checks.target_of(customer.id if customer else None, email)
    held = identity_checks.hold(session=ctx.session, target=target, client=ctx.client,
                                limits=_limits(ctx))  # fmt: skip
    if held is not None:
        _refuse_held(ctx, target, held)
    limit = ctx.settings.max_failed_verifications
    if conversation.failed_verifications >= limit:
        raise ToolError(
            "Too many failed verification attempts in this conversation; no more are allowed. "
            "Offer to hand the conversation to a human agent."
        )
    if not matches or customer is None:
        conversation.failed_verifications += 1
        ctx.session.add(conversation)
        identity_checks.record(session=ctx.session, target=target, client=ctx.client,
                               conversation_id=ctx.conversation_id, outcome="failed",
                               detail="order number" if order_id else "zip code")  # fmt: skip
        log.warning("conversation %s: failed identity check for %s from %s",
                    ctx.conversation_id, target, ctx.client or "an unknown client")  # fmt: skip
        left = limit - conversation.failed_verifications
        raise ToolError(
            f"Those details do not match our records. {left} attempt(s) left in this conversation."
        )
    remember_customer(session=ctx.session, customer_id=customer.id,
                      first_name=customer.first_name, last_name=customer.last_name,
                      email=customer.email, address=customer.address)  # fmt: skip
    conversation.customer_id = customer.id
    ctx.session.add(conversation)
    ctx.session.flush()
    ctx.customer_id = customer.id
    return {
        "verified": True,
        "customer": {
            "name": f"{customer.first_name} {customer.last_name}",
            "email": customer.email,
        },
    }
