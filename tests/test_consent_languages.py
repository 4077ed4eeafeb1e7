"""A change confirmed in the customer's language: a Spanish, German or French customer reads the
engine's confirmation (the question and the change's summary) in their language, with the same
facts as in English, and confirms it with "sí", "ja" or "oui"; an English customer's reads as
before. The language is the customer's, from their own messages, never the model's. The
engine's other words of its own (a refusal, the tool-round cap) follow it."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from agent.api.app import create_app
from agent.email.replies import turn_text
from agent.engine.consent import confirmation_prompt
from agent.engine.events import Outcome, TurnResult
from agent.engine.port import PendingAction
from agent.runtime import Runtime
from agent.store.tables import Order, utcnow
from tests.conftest import IVAN, SettingsFactory, customer_id
from tests.fake_anthropic import FakeAnthropic, refusal, text, tool_use
from tests.test_api import Api, _runtime
from tools import order_actions

PENDING = "#W8770097"  # Ivan's, paid $544.29 with PayPal
CANCEL = {"order_id": PENDING, "reason": "ordered by mistake"}

# What each customer writes, what they read back, and the word that confirms.
CANCELLED_IN = {
    "es": (
        "Quiero cancelar mi pedido #W8770097, lo pedí por error",
        "Confirme, por favor: Cancelar el pedido #W8770097 (motivo: pedido por error). "
        "Reembolso: $544.29 de vuelta a su PayPal.\n\n"
        "Responda «sí» para seguir adelante, o dígame qué quiere cambiar.",
        "sí",
    ),
    "de": (
        "Bitte stornieren Sie meine Bestellung #W8770097, ich habe sie aus Versehen bestellt",
        "Bitte bestätigen Sie: Die Bestellung #W8770097 stornieren (Grund: versehentlich "
        "bestellt). Erstattung: $544.29 zurück auf Ihr Zahlungsmittel PayPal.\n\n"
        "Antworten Sie „ja“, um fortzufahren, oder sagen Sie mir, was ich ändern soll.",
        "ja",
    ),
    "fr": (
        "Je voudrais annuler ma commande #W8770097, je l'ai commandée par erreur",
        "Veuillez confirmer : Annuler la commande #W8770097 (motif : commandée par erreur). "
        "Remboursement : $544.29 sur votre PayPal.\n\n"
        "Répondez « oui » pour continuer, ou dites-moi ce qu'il faut modifier.",
        "oui",
    ),
}
ENGLISH = (
    "Please confirm: Cancel order #W8770097 (reason: ordered by mistake). Refund: $544.29 back "
    "to your PayPal.\n\nReply “yes” to go ahead, or tell me what to change."
)


@pytest.fixture
def api(make_settings: SettingsFactory) -> Iterator[Api]:
    runtime, keys = _runtime(make_settings)
    with TestClient(create_app(runtime.settings, runtime)) as client:
        yield Api(client, runtime, keys)


def _say(api: Api, conversation: dict[str, Any], words: str) -> dict[str, Any]:
    response = api.client.post(f"/v1/conversations/{conversation['id']}/messages",
                               json={"text": words}, headers=api.auth("backend"))  # fmt: skip
    assert response.status_code == 200, response.text
    return response.json()


def _status(runtime: Runtime) -> str:
    with Session(runtime.engine) as session:
        order = session.get(Order, PENDING)
        assert order is not None
        return order.status


@pytest.mark.parametrize("language", CANCELLED_IN)
def test_with_claude_the_confirmation_is_in_the_customers_language(
    api: Api, fake: FakeAnthropic, language: str
) -> None:
    asked, shown, yes = CANCELLED_IN[language]
    conversation = api.start("backend", customer_email=IVAN["email"])
    fake.enqueue(tool_use("cancel_pending_order", CANCEL))
    turn = _say(api, conversation, asked)
    assert turn["outcome"] == "awaiting_confirmation"
    assert turn["reply"] == shown
    assert turn["pending_action"]["summary"] in shown  # the box the web chat sets apart
    assert _status(api.runtime) == "pending"
    # Read back later (the web chat's history), it reads the same.
    transcript = api.client.get(f"/v1/conversations/{conversation['id']}",
                                headers=api.auth("backend")).json()  # fmt: skip
    assert [m["text"] for m in transcript["messages"] if m.get("action")] == [shown]

    fake.enqueue(text("✓"))
    confirmed = _say(api, conversation, yes)
    assert confirmed["action"]["status"] == "executed" and _status(api.runtime) == "cancelled"


def test_with_claude_an_english_customer_reads_english_whatever_the_model_writes(
    api: Api, fake: FakeAnthropic
) -> None:
    conversation = api.start("backend", customer_email=IVAN["email"])
    # The model answers in Spanish: the confirmation follows the customer, not it.
    fake.enqueue(text("¡Hola! Claro que sí: ¿qué pedido quiere cancelar y por qué?"))
    _say(api, conversation, "Hi, I'd like to cancel an order")
    fake.enqueue(tool_use("cancel_pending_order", CANCEL))
    turn = _say(api, conversation, f"It's {PENDING}, I ordered it by mistake.")
    assert turn["reply"] == ENGLISH


def test_with_claude_a_short_reply_keeps_the_conversations_language(
    api: Api, fake: FakeAnthropic
) -> None:
    conversation = api.start("backend", customer_email=IVAN["email"])
    fake.enqueue(text("¿Qué pedido quiere cancelar?"))
    _say(api, conversation, "Quiero cancelar un pedido, lo pedí por error")
    fake.enqueue(tool_use("cancel_pending_order", CANCEL))
    turn = _say(api, conversation, PENDING)  # tells no language: the conversation's stays
    assert turn["reply"] == CANCELLED_IN["es"][1]


@pytest.mark.parametrize("language", CANCELLED_IN)
def test_offline_the_confirmation_is_in_the_customers_language(
    offline_runtime: Runtime, language: str
) -> None:
    asked, shown, yes = CANCELLED_IN[language]
    agent = offline_runtime.agent
    conversation = agent.start_conversation(customer_id=customer_id(offline_runtime,
                                                                    IVAN["email"]))  # fmt: skip
    proposed = agent.ask(conversation, asked)
    assert proposed.pending_action is not None
    assert proposed.reply.endswith(shown)  # after the offline label, and "I can do that"
    # It no longer says the summary is in English.
    assert not re.search(r"Please confirm|inglés|Englisch|anglais", proposed.reply)

    done = agent.ask(conversation, yes)
    assert done.settled is not None and done.settled[1].status == "executed"
    assert _status(offline_runtime) == "cancelled"


def test_offline_an_english_customer_reads_the_confirmation_as_before(
    offline_runtime: Runtime,
) -> None:
    agent = offline_runtime.agent
    conversation = agent.start_conversation(customer_id=customer_id(offline_runtime,
                                                                    IVAN["email"]))  # fmt: skip
    proposed = agent.ask(conversation, "Please cancel order #W8770097, I ordered it by mistake")
    assert proposed.reply == ENGLISH


# Every change's summary, from a dry run's result as each tool returns it: in each language the
# same facts (ids, amounts, names and options, addresses as stored) as in English.
OLD = {"address1": "477 Park Avenue", "address2": "Suite 558", "city": "Dallas", "state": "TX",
       "country": "USA", "zip": "75277"}  # fmt: skip
NEW = {**OLD, "address1": "12 Oak Street", "address2": "", "city": "Austin", "zip": "78701"}
CHAIR = {"name": "Office Chair", "from": {"color": "black", "material": "mesh"},
         "to": {"color": "red", "material": "leather"}, "new_price": "$1,120.50"}  # fmt: skip
SUMMARIZED: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "cancel_pending_order": ({"reason": "no longer needed"}, {
        "order_id": PENDING,
        "refunds": [{"amount": "$500.00", "to": "Visa ending in 7711"},
                    {"amount": "$44.29", "to": "gift card (balance $17.00, then $61.29)"}],
    }),
    "modify_pending_order_address": ({}, {
        "order_id": PENDING, "shipping_address": NEW, "previous_address": OLD,
    }),
    "modify_pending_order_items": ({}, {
        "order_id": PENDING, "changes": [CHAIR], "price_difference": "+$12.00",
        "payment_method": "Mastercard ending in 1234",
    }),
    "modify_pending_order_payment": ({}, {
        "order_id": PENDING, "amount": "$544.29", "refunded_to": "paypal_6151711",
        "payment_method": "gift card (balance $600.00, then $55.71)", "refunded_to_method": "PayPal",
    }),
    "modify_user_address": ({}, {"default_address": NEW, "previous_address": OLD}),
    "return_delivered_order_items": ({}, {
        "order_id": "#W6893533", "refund": "$95.08", "refund_method": "PayPal",
        "items": [{"name": "Garden Hose", "options": {"length": "50ft", "color": "black"}}],
    }),
    "exchange_delivered_order_items": ({}, {
        "order_id": "#W6893533", "changes": [CHAIR], "price_difference": "-$3.00",
        "payment_method": "gift card (balance $40.00)",
    }),
}  # fmt: skip
STORED = ["Visa", "7711", "PayPal", "Office Chair", "black", "mesh", "red", "leather",
          "Mastercard", "1234", "Garden Hose", "50ft", "Austin", "TX", "USA"]  # fmt: skip
_FACT = re.compile(r"-?\$[\d,]+\.\d\d|#W\d+|“[^”]*”|\b\d+\b")


def _facts(summary: str) -> Counter[str]:
    return Counter(_FACT.findall(summary))


def _stored(summary: str) -> Counter[str]:
    """The store's words in `summary` (names, options, brands, places), each as often as said."""
    return Counter(w for s in STORED for w in re.findall(rf"\b{re.escape(s)}\b", summary))


@pytest.mark.parametrize("name", SUMMARIZED)
def test_every_changes_summary_states_the_same_facts_in_each_language(name: str) -> None:
    (change,) = [t for t in order_actions.ORDER_ACTIONS if t.name == name]
    assert change.summarize is not None
    arguments, result = SUMMARIZED[name]
    english = change.summarize(arguments, result, "en")
    assert _facts(english)
    for language in ("es", "de", "fr"):
        summary = change.summarize(arguments, result, language)
        assert summary != english
        assert _facts(summary) == _facts(english), language
        assert _stored(summary) == _stored(english), language
        # Only the fixed words change: none of the English ones is left.
        assert not re.search(r"\b(order|ending in|balance|back to|your|blank|Changes)\b", summary)


# -- the engine's other words of its own ------------------------------------------------------


def test_a_refusal_is_answered_in_the_customers_language(api: Api, fake: FakeAnthropic) -> None:
    conversation = api.start("backend", customer_email=IVAN["email"])
    fake.enqueue(refusal())
    turn = _say(api, conversation, "¿Me puede ayudar con algo que no tiene nada que ver?")
    assert turn["outcome"] == "refused"
    assert turn["reply"].startswith("Lo siento, no puedo ayudarle con eso.")
    fake.enqueue(refusal())
    english = _say(api, conversation, "Can you help me with something else entirely?")
    assert english["reply"].startswith("I'm sorry, I can't help with that.")


def test_the_tool_round_cap_is_told_in_the_customers_language(
    make_settings: SettingsFactory, fake: FakeAnthropic
) -> None:
    runtime, keys = _runtime(make_settings, max_tool_iterations=1)
    with TestClient(create_app(runtime.settings, runtime)) as client:
        api = Api(client, runtime, keys)
        conversation = api.start("backend", customer_email=IVAN["email"])
        fake.enqueue(tool_use("list_orders", {}), tool_use("list_orders", {}))
        capped = _say(api, conversation, "Bitte zeigen Sie mir alle meine Bestellungen")
        assert capped["outcome"] == "iteration_cap"
        assert capped["reply"].startswith("Das erfordert mehr Schritte, als ich allein")
        assert "(Ticket #" in capped["reply"]


@pytest.mark.parametrize("language", CANCELLED_IN)
def test_by_email_the_summary_is_shown_once_in_the_customers_language(
    make_settings: SettingsFactory, language: str
) -> None:
    """The email sets the change apart in a block of its own: the question the chat shows is
    taken off the reply in any language, never left in twice."""
    summary = CANCELLED_IN[language][1].split(": ", 1)[1].split("\n\n")[0]
    pending = PendingAction("act_1", "cancel_pending_order", CANCEL, summary, "toolu_1", "c1",
                            utcnow())  # fmt: skip
    reply = f"Vale.\n\n{confirmation_prompt(summary, language)}"
    result = TurnResult("conv_1", reply, Outcome.AWAITING_CONFIRMATION, False, "claude",
                        pending_action=pending)  # fmt: skip
    body = turn_text(make_settings(), None, result)  # type: ignore[arg-type]  # no links set up
    assert body.startswith("Vale.\n\n") and body.count(summary) == 1
    assert CANCELLED_IN[language][1].split(":")[0] not in body
