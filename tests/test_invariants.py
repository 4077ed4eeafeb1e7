"""The store's invariants, proven over random sequences of changes rather than examples.

A Hypothesis state machine runs the seven order actions on a few customers with gift cards,
cards and PayPal: each proposed (the dry run the assistant's call makes), then confirmed,
declined, expired or superseded as the customer may, or run by staff from the desk, and
interleaved with re-imports of the shop's file (with and without --overwrite). After every
step it checks, on SQLite and PostgreSQL:

- the invariants of agent/store/invariants.py on the whole store (money per order, method and
  gift card; identity facts never blank; executed changes standing);
- an order's status only moves along the transitions the policy allows (or an overwriting
  import's);
- an executed change is reflected exactly once, and only on its own order or account (its
  payment entries, its gift-card movements, its status), and a change that was not executed
  left the store exactly as it was.

Runs in CI with a fixed seed and a bounded number of examples (`derandomize=True`). A failing
sequence it finds is kept below as a regular test.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule, run_state_machine_as_test
from sqlalchemy import Engine, delete
from sqlmodel import Session, SQLModel, col, select
from typer.testing import CliRunner

from agent.adapters.builtin_orders import BuiltinOrders
from agent.cli import app
from agent.config import Settings
from agent.engine import consent
from agent.engine.port import Decision, Found, PendingAction
from agent.features.staff_actions import run_for_customer
from agent.store import proposals
from agent.store.db import make_engine, transaction
from agent.store.importer import import_path
from agent.store.invariants import check
from agent.store.orders import normalize_order_id
from agent.store.tables import (
    ActionStatus,
    Conversation,
    ConversationState,
    Customer,
    Order,
    OrderItem,
    OrderPayment,
    PaymentMethod,
    ProductVariant,
    utcnow,
)
from tests.conftest import FIXTURES, RETAIL_SLICE
from tools import default_registry
from tools.registry import Preview, ToolRegistry
from tools.tool_context import ToolContext

EXERCISED: Counter[tuple[str, bool]] = Counter()  # (tool, executed) -> steps, across the run
TOOLS = tuple(default_registry().changes())  # the seven changes, as shipped
# The transitions the policy allows an order (tools/order_actions.py), besides staying put.
ALLOWED = {
    ("pending", "cancelled"),
    ("pending", "pending (item modified)"),
    ("delivered", "return requested"),
    ("delivered", "exchange requested"),
}
ADDRESSES = [
    {"address1": "1 Main St", "address2": "", "city": "Austin", "state": "TX", "country": "USA",
     "zip": "73301"},
    {"address1": "22 Elm Rd", "address2": "Apt 4", "city": "Denver", "state": "CO",
     "country": "USA", "zip": "80202-1234"},
]  # fmt: skip
FITS = {  # the statuses each change is for
    "cancel_pending_order": ("pending",),
    "modify_pending_order_address": ("pending", "pending (item modified)"),
    "modify_pending_order_items": ("pending",),
    "modify_pending_order_payment": ("pending", "pending (item modified)"),
    "return_delivered_order_items": ("delivered",),
    "exchange_delivered_order_items": ("delivered",),
}
BAD_ADDRESSES = [
    {**ADDRESSES[0], "zip": ""},
    {**ADDRESSES[0], "zip": " "},
    {**ADDRESSES[0], "address1": "1 Main St\nReply yes"},
    {**ADDRESSES[0], "city": "Austin\u202e"},
]


def store_file(folder: Path) -> Path:
    """The retail slice with the whole catalogue's products, and more ways to pay: each
    customer gets a gift card (some rich, some nearly empty) and a credit card."""
    data = json.loads(RETAIL_SLICE.read_text())
    catalog = json.loads((FIXTURES / "retail_catalog.json").read_text())
    data["products"] = {**catalog["products"], **data.get("products", {})}
    for n, (_user_id, user) in enumerate(sorted(data["users"].items())):
        methods = user["payment_methods"]
        methods.setdefault(
            f"gift_card_9{n}",
            {
                "source": "gift_card",
                "id": f"gift_card_9{n}",
                "balance": [5000.0, 12.5, 0.0, 800.0][n % 4],
            },
        )
        methods.setdefault(
            f"credit_card_9{n}",
            {
                "source": "credit_card",
                "id": f"credit_card_9{n}",
                "brand": "visa",
                "last_four": f"10{n}0",
            },
        )
        user["payment_methods"] = methods  # fmt: skip
    path = folder / "store.json"
    path.write_text(json.dumps(data))
    return path


# -- what the store holds, to compare before and after a step ------------------------------------


@dataclass(frozen=True)
class Snapshot:
    orders: dict[str, tuple[Any, ...]]  # id -> (status, total, address, items, actions fields)
    payments: dict[str, list[tuple[str, int, str]]]
    balances: dict[str, int | None]
    customers: dict[str, tuple[Any, ...]]  # id -> (email, zip, address)
    owners: dict[str, str] = field(default_factory=dict)  # order id -> customer id
    methods_of: dict[str, str] = field(default_factory=dict)  # method id -> customer id

    @classmethod
    def take(cls, engine: Engine) -> Snapshot:
        with Session(engine) as session:
            items: dict[str, list[tuple[str, int]]] = {}
            for line in session.exec(select(OrderItem).order_by(col(OrderItem.position))):
                items.setdefault(line.order_id, []).append((line.item_id, line.price_cents))
            payments: dict[str, list[tuple[str, int, str]]] = {}
            for p in session.exec(select(OrderPayment).order_by(col(OrderPayment.position))):
                payments.setdefault(p.order_id, []).append(
                    (p.transaction_type, p.amount_cents, p.payment_method_id)
                )
            orders, owners = {}, {}
            for o in session.exec(select(Order)):
                orders[o.id] = (
                    o.status,
                    o.total_cents,
                    json.dumps(o.address, sort_keys=True),
                    tuple(items.get(o.id, [])),
                    o.cancel_reason,
                    o.return_items,
                    o.exchange_items,
                    o.exchange_new_items,
                )
                owners[o.id] = o.customer_id
            methods = session.exec(select(PaymentMethod)).all()
            customers = {
                c.id: (c.email, c.zip_code, json.dumps(c.address, sort_keys=True))
                for c in session.exec(select(Customer))
            }
            return cls(orders, payments, {m.id: m.balance_cents for m in methods}, customers,
                       owners, {m.id: m.customer_id for m in methods})  # fmt: skip

    def status(self, order_id: str) -> str:
        return str(self.orders[order_id][0])


def assert_unchanged(before: Snapshot, after: Snapshot) -> None:
    assert (after.orders, after.payments, after.balances, after.customers) == (
        before.orders, before.payments, before.balances, before.customers)  # fmt: skip


def assert_effect(tool: str, arguments: dict[str, Any], before: Snapshot, after: Snapshot) -> None:
    """An executed change shows exactly once, and only where it was made."""
    touched_orders = {o for o in before.orders if before.orders[o] != after.orders[o]}
    touched_orders |= {o for o in after.payments if before.payments.get(o) != after.payments[o]}
    touched_customers = {c for c in before.customers if before.customers[c] != after.customers[c]}
    if tool == "modify_user_address":
        assert not touched_orders and after.balances == before.balances
        (customer,) = touched_customers
        assert after.customers[customer][1] == arguments["zip"]
        return
    order = normalize_order_id(arguments["order_id"])
    assert touched_orders <= {order} and not touched_customers
    old, new = before.payments.get(order, []), after.payments.get(order, [])
    assert new[: len(old)] == old  # history is only ever appended to
    added = new[len(old) :]
    moved: dict[str, int] = {}
    for kind, cents, method in added:
        moved[method] = moved.get(method, 0) + (cents if kind == "refund" else -cents)
    for method, balance in after.balances.items():  # gift cards move by their new entries only
        if balance is not None and method in before.balances:
            assert balance == (before.balances[method] or 0) + moved.get(method, 0), method
        elif balance is None:
            assert before.balances.get(method) is None
    status = after.status(order)
    if tool == "cancel_pending_order":
        held = {}
        for kind, cents, method in old:
            held[method] = held.get(method, 0) + (cents if kind == "payment" else -cents)
        assert status == "cancelled"
        assert sorted(added) == sorted(("refund", c, m) for m, c in held.items() if c > 0)
    elif tool == "modify_pending_order_items":
        assert status == "pending (item modified)" and len(added) == 1
        difference = after.orders[order][1] - before.orders[order][1]
        assert added[0][:2] == ("payment" if difference > 0 else "refund", abs(difference))
    elif tool == "modify_pending_order_payment":
        assert status == before.status(order) and len(added) == 2
        assert added[0][0] == "payment" and added[1][0] == "refund" and added[0][1] == added[1][1]
    else:
        assert not added
        if tool == "modify_pending_order_address":
            assert (
                status == before.status(order) and after.orders[order][2] != before.orders[order][2]
            )
        else:
            assert status == {"return_delivered_order_items": "return requested",
                              "exchange_delivered_order_items": "exchange requested"}[tool]  # fmt: skip


# -- the machine ---------------------------------------------------------------------------------


def reset(engine: Engine, path: Path) -> None:
    with transaction(engine) as session:
        for table in reversed(SQLModel.metadata.sorted_tables):
            if table.name not in ("alembic_version",):
                session.execute(delete(table))
    report = import_path(engine, path)
    assert not report.problems, report.problems


@dataclass
class World:
    engine: Engine
    tools: ToolRegistry
    settings: Settings
    path: Path
    pristine: Snapshot  # the store as the file alone makes it
    conversations: dict[str, str] = field(default_factory=dict)  # customer -> conversation


def arguments_for(
    tool: str, customer: str, snap: Snapshot, engine: Engine
) -> st.SearchStrategy[dict[str, Any]]:
    """Arguments a model could choose: mostly plausible (the customer's own orders, items and
    methods), sometimes not (another customer's order or card, an unknown item, a bad reason
    or address)."""
    mine = sorted(o for o, c in snap.owners.items() if c == customer)
    others = sorted(o for o, c in snap.owners.items() if c != customer)
    fitting = [o for o in mine if snap.status(o) in FITS.get(tool, ())] or mine
    methods = sorted(m for m, c in snap.methods_of.items() if c == customer)
    theirs = sorted(m for m, c in snap.methods_of.items() if c != customer)
    # Mostly what a model that read the customer's orders would choose; now and then not.
    order_ids = mostly(fitting, others)
    method_ids = mostly(methods, theirs)
    addresses = mostly(ADDRESSES, BAD_ADDRESSES)
    if tool == "modify_user_address":
        return addresses
    if tool == "modify_pending_order_address":
        return st.builds(lambda o, a: {"order_id": o, **a}, order_ids, addresses)
    if tool == "cancel_pending_order":
        return st.builds(
            lambda o, r: {"order_id": o, "reason": r},
            order_ids,
            mostly(["no longer needed", "ordered by mistake"], ["cheaper elsewhere"]),
        )
    if tool == "modify_pending_order_payment":
        return st.builds(
            lambda o, m: {"order_id": o, "payment_method_id": m}, order_ids, method_ids
        )

    @st.composite
    def items(draw: st.DrawFn) -> dict[str, Any]:
        order = draw(order_ids)
        lines = list(snap.orders[order][3])
        picked = st.lists(st.integers(0, len(lines) - 1), min_size=1, max_size=3, unique=True)
        chosen = [lines[i] for i in draw(picked)]
        new_ids = [draw(st.sampled_from(variants_of(engine, item))) for item, _ in chosen]
        arguments = {
            "order_id": order,
            "item_ids": [i for i, _ in chosen],
            "new_item_ids": new_ids,
            "payment_method_id": draw(method_ids),
        }
        if tool == "return_delivered_order_items":
            arguments.pop("new_item_ids")
        return arguments

    return items()


def mostly(usual: list[Any], odd: list[Any]) -> st.SearchStrategy[Any]:
    """One of `usual` seven times in eight, else one of `odd` (shrinks towards the usual)."""
    return st.integers(0, 7).flatmap(lambda n: st.sampled_from(odd if n == 7 and odd else usual))


def variants_of(engine: Engine, item_id: str) -> list[str]:
    """Other variants of the item's product (any availability), and a stranger."""
    with Session(engine) as session:
        product = session.exec(
            select(OrderItem.product_id).where(OrderItem.item_id == item_id)
        ).first()
        found = session.exec(
            select(ProductVariant.item_id).where(ProductVariant.product_id == product)
        ).all()
    return [*sorted(found)[:6], "0000000000"]


class Store(RuleBasedStateMachine):
    world: World  # set by the test

    def __init__(self) -> None:
        super().__init__()
        reset(self.world.engine, self.world.path)
        self.world.conversations = {}
        self.changed_here = False  # since the last overwriting import

    def _conversation(self, customer: str) -> str:
        if customer not in self.world.conversations:
            with transaction(self.world.engine) as session:
                row = Conversation(id=f"c-{customer}", customer_id=customer)
                session.add(row)
            self.world.conversations[customer] = row.id
        return self.world.conversations[customer]

    def _context(self, session: Any, customer: str) -> ToolContext:
        return ToolContext(session=session, settings=self.world.settings,
                           conversation_id=self._conversation(customer), customer_id=customer,
                           orders=BuiltinOrders(session))  # fmt: skip

    @rule(data=st.data(), tool=st.sampled_from(TOOLS),
          answer=st.sampled_from(["confirm", "yes", "confirm", "decline", "expire", "something else"]))  # fmt: skip
    def customer_change(self, data: st.DataObject, tool: str, answer: str) -> None:
        """The assistant proposes (a dry run); the customer answers."""
        engine, tools = self.world.engine, self.world.tools
        before = Snapshot.take(engine)
        customer = data.draw(st.sampled_from(sorted(before.customers)))
        arguments = data.draw(arguments_for(tool, customer, before, engine))
        conversation = self._conversation(customer)
        with transaction(engine) as session:
            preview = tools.preview(tool, arguments, self._context(session, customer))
            if not isinstance(preview, Preview):
                proposed = None
            else:
                conv = session.get(Conversation, conversation)
                assert conv is not None
                proposed = proposals.propose(
                    session=session, conversation=conv, customer_id=customer, tool=tool,
                    arguments=preview.arguments, summary=preview.summary, tool_use_id="toolu_x",
                    held_results=[], expires_at=utcnow() + timedelta(minutes=10))  # fmt: skip
                assert "\n" not in preview.summary  # one line, what the customer reads
        assert_unchanged(before, Snapshot.take(engine))  # proposing changes nothing
        if proposed is None:
            return
        now = utcnow() + (timedelta(hours=1) if answer == "expire" else timedelta())
        decision = Decision(proposed.id, answer == "confirm", "customer") \
            if answer in ("confirm", "decline") else None  # fmt: skip
        opening = consent.TurnOpening(tools, self._context, text=answer, decision=decision,
                                      now=lambda: now)  # fmt: skip
        with transaction(engine) as session:
            action = proposals.get_action(session=session, action_id=proposed.id, lock=True)
            assert action is not None
            pending = PendingAction(action.id, action.tool, dict(action.arguments), action.summary,
                                    "toolu_x", customer, proposals.aware(action.expires_at))  # fmt: skip
            found = Found(conversation, ConversationState.BOT, customer, action.id)
            outcome = opening.settle(session, found, pending)
            proposals.settle(session=session, conversation=session.get(Conversation, conversation),
                             action=action, status=outcome.status, result=outcome.content,
                             decided_by=outcome.decided_by)  # fmt: skip
        self._after(tool, preview.arguments, before, outcome.status == ActionStatus.EXECUTED)
        if answer in ("decline", "expire", "something else"):
            assert outcome.status != ActionStatus.EXECUTED

    @rule(data=st.data(), tool=st.sampled_from(TOOLS))
    def staff_change(self, data: st.DataObject, tool: str) -> None:
        before = Snapshot.take(self.world.engine)
        customer = data.draw(st.sampled_from(sorted(before.customers)))
        arguments = data.draw(arguments_for(tool, customer, before, self.world.engine))
        done = run_for_customer(self.world.engine, self.world.tools, self.world.settings,
                                customer_id=customer, tool=tool, arguments=arguments,
                                staff="Anna Berg")  # fmt: skip
        self._after(tool, done.arguments, before, done.status == ActionStatus.EXECUTED)

    def _after(
        self, tool: str, arguments: dict[str, Any], before: Snapshot, executed: bool
    ) -> None:
        after = Snapshot.take(self.world.engine)
        EXERCISED[tool, executed] += 1
        moves = {(before.status(o), after.status(o)) for o in before.orders}
        assert moves <= ALLOWED | {(s, s) for s, _ in moves}, moves  # the policy's moves only
        if executed:
            assert_effect(tool, arguments, before, after)
            self.changed_here = True
        else:
            assert_unchanged(before, after)

    @rule(overwrite=st.booleans())
    def reimport(self, overwrite: bool) -> None:
        before = Snapshot.take(self.world.engine)
        report = import_path(self.world.engine, self.world.path, overwrite=overwrite)
        after = Snapshot.take(self.world.engine)
        if overwrite:
            self.changed_here = False
            assert after == self.world.pristine  # the file's store, exactly
        else:
            assert_unchanged(before, after)  # the same file never undoes a change made here
            assert report.orders.updated == report.customers.updated == 0

    @rule()
    def invariants_hold(self) -> None:
        assert check(self.world.engine) == []

    def teardown(self) -> None:
        assert check(self.world.engine) == []


@pytest.mark.slow
def test_the_invariants_hold_over_random_sequences_of_changes(
    any_db_url: str, tmp_path: Path
) -> None:
    engine = make_engine(any_db_url)
    settings_ = Settings(data_dir=tmp_path / "data", database_url=any_db_url)
    path = store_file(tmp_path)
    pristine = make_engine(f"sqlite:///{tmp_path / 'pristine.db'}")
    import_path(pristine, path)
    Store.world = World(engine, default_registry(), settings_, path, Snapshot.take(pristine))
    EXERCISED.clear()
    run_state_machine_as_test(
        Store,
        settings=settings(max_examples=60, stateful_step_count=15, derandomize=True,
                          deadline=None, suppress_health_check=list(HealthCheck)),
    )  # fmt: skip
    engine.dispose()
    pristine.dispose()
    # The run reached every change, both executed and refused (else it proved little).
    assert {tool for (tool, executed) in EXERCISED if executed} == set(TOOLS), EXERCISED
    assert {tool for (tool, executed) in EXERCISED if not executed} == set(TOOLS), EXERCISED


# -- what the property test found, kept as examples ----------------------------------------------


def test_found_a_payment_moved_to_a_card_then_the_order_cancelled(
    any_db_url: str, tmp_path: Path
) -> None:
    """The sequence the machine shrank the release's money bug to: staff move a gift-card
    order to a card, then cancel it. The gift card was refunded twice."""
    engine = make_engine(any_db_url)
    settings_ = Settings(data_dir=tmp_path / "data", database_url=any_db_url)
    reset(engine, store_file(tmp_path))
    for tool, arguments in (
        ("modify_pending_order_payment",
         {"order_id": "#W9300146", "payment_method_id": "credit_card_90"}),
        ("cancel_pending_order", {"order_id": "#W9300146", "reason": "no longer needed"}),
    ):  # fmt: skip
        before = Snapshot.take(engine)
        done = run_for_customer(engine, default_registry(), settings_,
                                customer_id="aarav_anderson_8794", tool=tool,
                                arguments=arguments, staff="Anna Berg")  # fmt: skip
        assert done.status == ActionStatus.EXECUTED, done.result
        assert_effect(tool, done.arguments, before, Snapshot.take(engine))
        assert check(engine) == []


# -- `supportbot db check` on a live database ----------------------------------------------------


def test_db_check_lists_every_violation_of_a_live_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUPPORTBOT_DATA_DIR", str(tmp_path / "data"))
    runner = CliRunner()
    assert runner.invoke(app, ["orders", "import", str(RETAIL_SLICE)]).exit_code == 0
    clean = runner.invoke(app, ["db", "check"])
    assert clean.exit_code == 0 and "no violations" in clean.output
    engine = make_engine(Settings(data_dir=tmp_path / "data").resolved_database_url())
    with transaction(engine) as session:  # what the bugs of the last release left behind
        for position, (cents, method) in enumerate(
            [(300533, "gift_card_4374071"), (100, "credit_card_8955149")], start=5
        ):  # a payment refunded twice over, to a method that did not pay
            session.add(OrderPayment(order_id="#W6436609", position=position,
                                     transaction_type="refund", amount_cents=cents,
                                     payment_method_id=method))  # fmt: skip
        card = session.get(PaymentMethod, "gift_card_7245904")
        customer = session.get(Customer, "ivan_santos_6635")
        assert card is not None and customer is not None
        card.balance_cents = (card.balance_cents or 0) + 100
        customer.zip_code = " "
        session.add_all([card, customer])
    broken = runner.invoke(app, ["db", "check"])
    assert broken.exit_code == 1
    assert broken.output.splitlines() == [
        "money.refunds: order #W6436609: credit_card_8955149 got back $1.00 more than it paid",
        "money.holds: order #W6436609: holds -$1.00 (pending), should hold $3,005.33",
        "money.gift_card: gift card gift_card_4374071: balance $51.00, but its opening balance "
        "and entries make $3,056.33",
        "money.gift_card: gift card gift_card_7245904: balance $18.00, but its opening balance "
        "and entries make $17.00",
        "identity: customer ivan_santos_6635: blank zip code: identity checks compare it",
        "5 violation(s)",
    ]
