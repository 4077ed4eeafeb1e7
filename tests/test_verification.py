"""Identity verification and authorization, enforced in the tools themselves."""

from __future__ import annotations

import json

import pytest

from agent.runtime import Runtime
from agent.store.db import transaction
from agent.store.tables import Conversation, Customer
from tests.conftest import IVAN, YARA, customer_id
from tools.registry import ToolOutcome
from tools.tool_context import ToolContext


def _call(runtime: Runtime, conversation: str, name: str, **args: object) -> ToolOutcome:
    with transaction(runtime.engine) as session:
        row = session.get(Conversation, conversation)
        assert row is not None
        # As if the customer had typed these facts in the conversation.
        ctx = ToolContext(session, runtime.settings, conversation, row.customer_id,
                          runtime.orders(session),
                          customer_said=lambda: json.dumps(args))  # fmt: skip
        return runtime.agent.tools.run(name, args, ctx)


def _bound(runtime: Runtime, conversation: str) -> str | None:
    with transaction(runtime.engine) as session:
        row = session.get(Conversation, conversation)
        assert row is not None
        return row.customer_id


@pytest.fixture
def conversation(offline_runtime: Runtime) -> str:
    return offline_runtime.agent.start_conversation()


@pytest.mark.parametrize(
    "facts",
    [
        {"email": IVAN["email"], "order_id": IVAN["orders"][0]},
        {"email": IVAN["email"].upper(), "order_id": IVAN["orders"][0].lstrip("#").lower()},
        {"email": IVAN["email"], "zip_code": IVAN["zip"]},
    ],
)
def test_verification_binds_the_conversation(
    offline_runtime: Runtime, conversation: str, facts: dict
) -> None:
    outcome = _call(offline_runtime, conversation, "verify_customer", **facts)
    assert not outcome.is_error, outcome.content
    assert json.loads(outcome.content)["customer"]["name"] == "Ivan Santos"
    assert _bound(offline_runtime, conversation) == customer_id(offline_runtime, IVAN["email"])


@pytest.mark.parametrize(
    "facts",
    [
        {"email": IVAN["email"], "order_id": YARA["orders"][0]},  # someone else's order
        {"email": IVAN["email"], "zip_code": YARA["zip"]},
        {"email": "nobody@example.com", "zip_code": IVAN["zip"]},
    ],
)
def test_wrong_facts_do_not_verify(
    offline_runtime: Runtime, conversation: str, facts: dict
) -> None:
    outcome = _call(offline_runtime, conversation, "verify_customer", **facts)
    assert outcome.is_error and "do not match" in outcome.content
    assert _bound(offline_runtime, conversation) is None


def test_one_fact_is_not_enough_and_does_not_count(
    offline_runtime: Runtime, conversation: str
) -> None:
    outcome = _call(offline_runtime, conversation, "verify_customer", email=IVAN["email"])
    assert outcome.is_error and "order number or the zip code" in outcome.content
    with transaction(offline_runtime.engine) as session:
        assert session.get(Conversation, conversation).failed_verifications == 0  # type: ignore[union-attr]


def test_failed_attempts_are_limited_per_conversation(
    offline_runtime: Runtime, conversation: str
) -> None:
    limit = offline_runtime.settings.max_failed_verifications
    for _ in range(limit):
        _call(
            offline_runtime, conversation, "verify_customer", email=IVAN["email"], zip_code="00000"
        )
    # Even the right facts are refused now: enumeration stops here.
    outcome = _call(
        offline_runtime, conversation, "verify_customer", email=IVAN["email"], zip_code=IVAN["zip"]
    )
    assert outcome.is_error and "too many failed" in outcome.content.lower()
    assert _bound(offline_runtime, conversation) is None
    # A new conversation does not start the account afresh: its checks are paused (back-off;
    # tests/test_identity_limits.py has the rest).
    fresh = offline_runtime.agent.start_conversation()
    paused = _call(offline_runtime, fresh, "verify_customer", email=IVAN["email"],
                   zip_code=IVAN["zip"])  # fmt: skip
    assert paused.is_error and "paused" in paused.content


def test_a_verified_conversation_cannot_switch_customer(
    offline_runtime: Runtime, conversation: str
) -> None:
    _call(
        offline_runtime, conversation, "verify_customer", email=IVAN["email"], zip_code=IVAN["zip"]
    )
    outcome = _call(
        offline_runtime, conversation, "verify_customer", email=YARA["email"], zip_code=YARA["zip"]
    )
    assert outcome.is_error and "one customer per conversation" in outcome.content
    assert _bound(offline_runtime, conversation) == customer_id(offline_runtime, IVAN["email"])


def test_order_tools_only_see_the_bound_customer(offline_runtime: Runtime) -> None:
    conversation = offline_runtime.agent.start_conversation(
        customer_id=customer_id(offline_runtime, IVAN["email"])
    )
    mine = _call(offline_runtime, conversation, "order_status", order_id=IVAN["orders"][0])
    theirs = _call(offline_runtime, conversation, "order_status", order_id=YARA["orders"][0])
    missing = _call(offline_runtime, conversation, "order_status", order_id="#W0000000")
    assert not mine.is_error and json.loads(mine.content)["order_id"] == IVAN["orders"][0]
    # Another customer's order reads exactly like an order that does not exist.
    assert theirs.is_error and missing.is_error
    assert theirs.content.replace(YARA["orders"][0], "X") == missing.content.replace(
        "#W0000000", "X"
    )
    listed = json.loads(_call(offline_runtime, conversation, "list_orders").content)
    assert {o["order_id"] for o in listed} == {
        "#W6893533", "#W8770097", "#W5183325", "#W3913498"
    }  # fmt: skip


def test_tool_schemas_never_expose_the_context(offline_runtime: Runtime) -> None:
    schemas = offline_runtime.agent.tools.schemas()
    assert {s["name"] for s in schemas} == {
        "verify_customer", "order_status", "list_orders", "payment_methods", "search_knowledge_base",
        "product_info", "customer_history", "escalate_to_human", "cancel_pending_order",
        "modify_pending_order_address", "modify_pending_order_items",
        "modify_pending_order_payment", "modify_user_address", "return_delivered_order_items",
        "exchange_delivered_order_items",
    }  # fmt: skip
    dumped = json.dumps(schemas)
    assert "ctx" not in dumped and "customer_id" not in dumped and "session" not in dumped
    order_status = next(s for s in schemas if s["name"] == "order_status")
    assert order_status["input_schema"]["required"] == ["order_id"]


def test_bad_tool_input_is_an_error_result(offline_runtime: Runtime, conversation: str) -> None:
    outcome = _call(offline_runtime, conversation, "list_orders", limit="many")
    assert outcome.is_error and "Invalid input for list_orders" in outcome.content
    unknown = _call(offline_runtime, conversation, "drop_tables")
    assert unknown.is_error and "Unknown tool" in unknown.content


@pytest.mark.parametrize("blank", ["", " ", "\t", "\u00a0"])
def test_a_blank_fact_never_verifies_anyone(
    offline_runtime: Runtime, conversation: str, blank: str
) -> None:
    """Even a customer whose zip code on file is blank (an old import, a hand edit) cannot be
    claimed with their email and a blank zip code."""
    ivan = customer_id(offline_runtime, IVAN["email"])
    with transaction(offline_runtime.engine) as session:
        row = session.get(Customer, ivan)
        assert row is not None
        row.zip_code = ""
        session.add(row)
    for facts in ({"email": IVAN["email"], "zip_code": blank},
                  {"email": IVAN["email"], "order_id": blank},
                  {"email": blank, "zip_code": IVAN["zip"]}):  # fmt: skip
        outcome = _call(offline_runtime, conversation, "verify_customer", **facts)
        assert outcome.is_error, facts
    assert _bound(offline_runtime, conversation) is None


def test_an_address_change_cannot_blank_the_zip_code_a_customer_is_verified_by(
    offline_runtime: Runtime,
) -> None:
    """The takeover: a confirmed modify_user_address with zip "" used to store a blank zip,
    after which anyone verified as the customer with their email and a zip of " "."""
    ivan = customer_id(offline_runtime, IVAN["email"])
    conversation = offline_runtime.agent.start_conversation(customer_id=ivan)
    address = {"address1": "1 Main St", "address2": "", "city": "Austin", "state": "TX",
               "country": "USA"}  # fmt: skip
    for zip_code in ("", " ", "7330", "ABCDE", "73301\n"):
        outcome = _call(offline_runtime, conversation, "modify_user_address", **address,
                        zip=zip_code)  # fmt: skip
        assert outcome.is_error, zip_code
    with transaction(offline_runtime.engine) as session:
        row = session.get(Customer, ivan)
        assert row is not None and row.zip_code == IVAN["zip"]
    stranger = offline_runtime.agent.start_conversation()
    assert _call(offline_runtime, stranger, "verify_customer", email=IVAN["email"],
                 zip_code=" ").is_error  # fmt: skip
