"""Each conversation's outcome, and each hand-off's reason, from what was recorded as it
happened: conversations run through the real engine against the wire-level fake Claude."""

from __future__ import annotations

from datetime import timedelta

import pytest

from agent.engine.loop import Said
from agent.features.closing import end_conversation
from agent.features.outcomes import (
    ConversationOutcome,
    HandOffFacts,
    HandOffReason,
    Outcome,
    Resolution,
    classify_hand_off,
    customer_asks_for_person,
    reason_from_text,
)
from agent.features.report import conversations
from agent.runtime import Runtime, build_runtime
from agent.store.conversations import lock_conversation
from agent.store.db import transaction
from agent.store.importer import import_path
from agent.store.tables import utcnow
from tests.conftest import IVAN, RETAIL_SLICE, SettingsFactory
from tests.fake_anthropic import FakeAnthropic, error, refusal, text, tool_use

ASK_FOR_PERSON = tool_use(
    "escalate_to_human", {"reason": "Customer asked for a person", "summary": "wants a person"}
)
LATER = timedelta(hours=25)  # past the default 24-hour window


# -- words ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("words", "reason"),
    [
        ("The assistant hit its tool-call limit for one turn", HandOffReason.TOOL_CAP),
        ("Customer asked for a person", HandOffReason.CUSTOMER_ASKED),
        ("The customer wants to talk to a human", HandOffReason.CUSTOMER_ASKED),
        ("User requested a human agent", HandOffReason.CUSTOMER_ASKED),
        ("Customer requests a representative", HandOffReason.CUSTOMER_ASKED),
        ("Human requested by the customer", HandOffReason.CUSTOMER_ASKED),
        ("Customer asked to speak with a manager", HandOffReason.CUSTOMER_ASKED),
        ("Verification is locked after too many attempts", HandOffReason.IDENTITY_LOCKED),
        ("Too many failed verification attempts", HandOffReason.IDENTITY_LOCKED),
        ("The AI model is unavailable", HandOffReason.MODEL_UNAVAILABLE),
        ("Damaged on arrival", None),
        ("Customer wants a refund to a different card; needs a person", None),
        ("Customer locked out of their website account", None),
        ("Wants to change the delivery date, which my tools cannot do", None),
    ],
)
def test_free_text_reasons_map_onto_fixed_ones(words: str, reason: HandOffReason | None) -> None:
    assert reason_from_text(words) == reason


@pytest.mark.parametrize(
    ("said", "asks"),
    [
        ("I'd like to talk to a human, please.", True),
        ("Can I speak to someone?", True),
        ("agent please", True),
        ("Human!", True),
        ("I want a real person", True),
        ("Transfer me to an agent", True),
        ("Someone else signed for my parcel", False),
        ("Where is my order #W6893533?", False),
        ("Is this a person or a bot?", False),
    ],
)
def test_the_customer_asking_for_a_person_in_their_own_words(said: str, asks: bool) -> None:
    assert customer_asks_for_person(said) is asks


def test_facts_come_before_words_in_the_order_a_shop_can_act_on() -> None:
    asked = "Customer asked for a person"
    cap = "The assistant hit its tool-call limit for one turn"
    assert classify_hand_off(HandOffFacts(cap, locked=True)) == HandOffReason.TOOL_CAP
    assert classify_hand_off(HandOffFacts(asked, locked=True, previous_refused=True)) == (
        HandOffReason.IDENTITY_LOCKED
    )
    assert classify_hand_off(HandOffFacts(asked, previous_refused=True,
                                          previous_degraded=True)) == HandOffReason.REFUSAL  # fmt: skip
    assert classify_hand_off(HandOffFacts(asked, "a human please", previous_degraded=True)) == (
        HandOffReason.MODEL_UNAVAILABLE
    )
    # The offline model always writes "Customer asked for a person": during an outage only
    # the customer's own words say they asked.
    assert classify_hand_off(HandOffFacts(asked, "someone stole my parcel",
                                          turn_degraded=True)) == HandOffReason.MODEL_UNAVAILABLE  # fmt: skip
    assert classify_hand_off(HandOffFacts(asked, "a human please", turn_degraded=True)) == (
        HandOffReason.CUSTOMER_ASKED
    )
    assert classify_hand_off(HandOffFacts("Needs approval", "talk to a human")) == (
        HandOffReason.CUSTOMER_ASKED
    )
    assert classify_hand_off(HandOffFacts("Damaged on arrival", "it arrived cracked")) == (
        HandOffReason.NEEDS_PERSON
    )


# -- conversations through the engine -----------------------------------------------------------


@pytest.fixture
def shop(make_settings: SettingsFactory) -> Runtime:
    runtime = build_runtime(
        make_settings(max_tool_iterations=2, max_failed_verifications=2,
                      verify_failures_per_customer=2, verify_backoff_seconds=0)
    )  # fmt: skip
    assert not import_path(runtime.engine, RETAIL_SLICE).problems
    return runtime


def _outcome(runtime: Runtime, conversation_id: str, *, later: bool = False) -> ConversationOutcome:
    now = utcnow() + (LATER if later else timedelta(0))
    found = {s.outcome.conversation_id: s.outcome
             for s in conversations(runtime.engine, runtime.settings, now=now)}  # fmt: skip
    return found[conversation_id]


def _reason(runtime: Runtime, conversation_id: str) -> HandOffReason | None:
    outcome = _outcome(runtime, conversation_id)
    assert outcome.outcome == Outcome.HANDED_OFF
    return outcome.reason


def test_the_customer_asked(shop: Runtime, fake: FakeAnthropic) -> None:
    cid = shop.agent.start_conversation()
    fake.enqueue(ASK_FOR_PERSON, text("I've passed you to a colleague."))
    assert shop.agent.ask(cid, "I'd like to talk to a human, please.").state == "human"
    assert _reason(shop, cid) == HandOffReason.CUSTOMER_ASKED


def test_the_tool_round_cap(shop: Runtime, fake: FakeAnthropic) -> None:
    cid = shop.agent.start_conversation()
    order = IVAN["orders"][0]
    fake.enqueue(*[tool_use("order_status", {"order_id": order}) for _ in range(3)])
    assert shop.agent.ask(cid, f"Where is {order}?").outcome == "iteration_cap"
    assert _reason(shop, cid) == HandOffReason.TOOL_CAP


def test_a_refusal_then_the_customer_asks(shop: Runtime, fake: FakeAnthropic) -> None:
    cid = shop.agent.start_conversation()
    fake.enqueue(refusal())
    assert shop.agent.ask(cid, "Something the model declines").outcome == "refused"
    fake.enqueue(ASK_FOR_PERSON, text("I've passed you to a colleague."))
    shop.agent.ask(cid, "Then let me talk to a person.")
    assert _reason(shop, cid) == HandOffReason.REFUSAL


def _fail_verification(runtime: Runtime, fake: FakeAnthropic, cid: str) -> None:
    fake.enqueue(
        tool_use("verify_customer", {"email": IVAN["email"], "zip_code": "00000"}),
        text("Those details don't match our records."),
    )
    runtime.agent.ask(cid, f"I'm {IVAN['email']}, zip 00000")


def test_a_conversation_whose_checks_reached_their_limit(shop: Runtime, fake: FakeAnthropic) -> None:  # fmt: skip
    cid = shop.agent.start_conversation()
    _fail_verification(shop, fake, cid)
    _fail_verification(shop, fake, cid)  # SUPPORTBOT_MAX_FAILED_VERIFICATIONS=2
    fake.enqueue(
        tool_use("escalate_to_human",
                 {"reason": "Verification keeps failing", "summary": "could not verify"}),
        text("A colleague will help you."),
    )  # fmt: skip
    shop.agent.ask(cid, "Why can't you find me?")
    assert _reason(shop, cid) == HandOffReason.IDENTITY_LOCKED


def test_an_account_locked_by_failures_elsewhere(shop: Runtime, fake: FakeAnthropic) -> None:
    for _ in range(2):  # SUPPORTBOT_VERIFY_FAILURES_PER_CUSTOMER=2, one in each conversation
        _fail_verification(shop, fake, shop.agent.start_conversation())
    cid = shop.agent.start_conversation()
    fake.enqueue(
        tool_use("verify_customer", {"email": IVAN["email"], "zip_code": IVAN["zip"]}),
        ASK_FOR_PERSON,  # the model offers a person and the customer agrees
        text("A colleague will help you."),
    )
    shop.agent.ask(cid, f"I'm {IVAN['email']}, zip {IVAN['zip']}. A human please.")
    assert _reason(shop, cid) == HandOffReason.IDENTITY_LOCKED


def _claude_down(fake: FakeAnthropic) -> None:
    fake.enqueue(*[error(529, "Overloaded", retry_after=0.01) for _ in range(3)])


def test_the_model_unavailable(shop: Runtime, fake: FakeAnthropic) -> None:
    """Claude answered nothing, the offline model did, and the customer then asked for a
    person: the outage is the reason."""
    cid = shop.agent.start_conversation()
    _claude_down(fake)
    assert shop.agent.ask(cid, f"Where is my order {IVAN['orders'][0]}?").degraded
    _claude_down(fake)
    result = shop.agent.ask(cid, "That doesn't help. I want to talk to a human.")
    assert result.degraded and result.state == "human"
    assert _reason(shop, cid) == HandOffReason.MODEL_UNAVAILABLE


def test_asking_for_a_person_at_once_during_an_outage_is_the_customers_ask(
    shop: Runtime, fake: FakeAnthropic
) -> None:
    cid = shop.agent.start_conversation()
    _claude_down(fake)
    assert shop.agent.ask(cid, "I'd like to talk to a human, please.").state == "human"
    assert _reason(shop, cid) == HandOffReason.CUSTOMER_ASKED


def test_something_only_a_person_can_do(shop: Runtime, fake: FakeAnthropic) -> None:
    cid = shop.agent.start_conversation()
    fake.enqueue(
        tool_use("escalate_to_human",
                 {"reason": "Damaged on arrival", "summary": "cracked kettle, wants a refund"}),
        text("Sorry about that! A colleague will sort it out."),
    )  # fmt: skip
    shop.agent.ask(cid, "My kettle arrived cracked.")
    assert _reason(shop, cid) == HandOffReason.NEEDS_PERSON


# -- resolved, abandoned, ongoing ---------------------------------------------------------------


def test_an_answer_is_ongoing_then_resolved_when_the_customer_does_not_come_back(
    shop: Runtime, fake: FakeAnthropic
) -> None:
    cid = shop.agent.start_conversation()
    fake.enqueue(text("You can return items within 30 days."))
    shop.agent.ask(cid, "How long do I have to return something?")
    assert _outcome(shop, cid).outcome == Outcome.ONGOING
    later = _outcome(shop, cid, later=True)
    assert later.outcome == Outcome.RESOLVED and later.resolution == Resolution.NO_RETURN
    assert later.first_reply_seconds is not None and later.first_reply_seconds >= 0
    assert later.resolution_seconds == later.first_reply_seconds
    # Back within the window: still open; the window runs from the bot's last answer.
    fake.enqueue(text("Anything else?"))
    shop.agent.ask(cid, "Thanks! And for exchanges?")
    assert _outcome(shop, cid).outcome == Outcome.ONGOING


def test_the_customer_ending_it_confirms_the_resolution(shop: Runtime, fake: FakeAnthropic) -> None:
    cid = shop.agent.start_conversation()
    fake.enqueue(text("You can return items within 30 days."))
    shop.agent.ask(cid, "How long do I have to return something?")
    with transaction(shop.engine) as session:
        end_conversation(session=session, by="customer",
                         conversation=lock_conversation(session=session, conversation_id=cid))  # fmt: skip
    outcome = _outcome(shop, cid)  # at once: no window to wait for
    assert outcome.outcome == Outcome.RESOLVED and outcome.resolution == Resolution.CONFIRMED


def test_ending_it_before_any_answer_is_abandoning_it(shop: Runtime, fake: FakeAnthropic) -> None:
    cid = shop.agent.start_conversation()
    fake.enqueue(text("You can return items within 30 days.", delay=0.2))
    turn = shop.agent.turn(
        cid, Said("How long do I have to return something?"), stream=True
    ).events()
    next(turn)  # the customer leaves mid-answer: their message is kept, no answer is stored
    turn.close()
    assert _outcome(shop, cid).outcome == Outcome.ONGOING
    assert _outcome(shop, cid, later=True).outcome == Outcome.ABANDONED
    with transaction(shop.engine) as session:
        end_conversation(session=session, by="customer",
                         conversation=lock_conversation(session=session, conversation_id=cid))  # fmt: skip
    assert _outcome(shop, cid).outcome == Outcome.ABANDONED


def test_a_proposed_change_left_unanswered_is_abandoned(shop: Runtime, fake: FakeAnthropic) -> None:
    cid = shop.agent.start_conversation(customer_id="ivan_santos_6635")
    fake.enqueue(tool_use("cancel_pending_order",
                          {"order_id": IVAN["orders"][1], "reason": "ordered by mistake"}))  # fmt: skip
    assert shop.agent.ask(cid, "Cancel #W8770097, ordered by mistake").outcome == (
        "awaiting_confirmation"
    )
    outcome = _outcome(shop, cid, later=True)
    assert outcome.outcome == Outcome.ABANDONED and outcome.first_reply_seconds is not None


def test_a_refusal_the_customer_leaves_is_abandoned(shop: Runtime, fake: FakeAnthropic) -> None:
    cid = shop.agent.start_conversation()
    fake.enqueue(refusal())
    shop.agent.ask(cid, "Something the model declines")
    assert _outcome(shop, cid, later=True).outcome == Outcome.ABANDONED


def test_a_conversation_without_a_customer_message_is_not_counted(shop: Runtime) -> None:
    cid = shop.agent.start_conversation()
    assert cid not in {s.outcome.conversation_id
                       for s in conversations(shop.engine, shop.settings)}  # fmt: skip
