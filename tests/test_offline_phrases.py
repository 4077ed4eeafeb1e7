"""The offline model's fixed phrases (agent/models/offline_phrases.py): every one in English,
Spanish, German and French with the same fields, the markers its dialogue reads in every
language, and the customer's language read from their messages."""

from __future__ import annotations

import string

import pytest

from agent.engine.consent import is_unambiguous_yes
from agent.models.offline_dialogue import continues
from agent.models.offline_phrases import LANGUAGES, PHRASES, STATUSES, language_of, say


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


@pytest.mark.parametrize("key", sorted(PHRASES))
def test_every_phrase_is_in_every_language_with_the_same_fields(key: str) -> None:
    texts = PHRASES[key]
    assert set(texts) == set(LANGUAGES)
    assert all(texts[language] for language in LANGUAGES if key != "proposal")
    assert {language: _fields(t) for language, t in texts.items()} == {
        language: _fields(texts["en"]) for language in LANGUAGES
    }
    # Nothing left untranslated (a few words are the same in two languages: "Sources:").
    if len(texts["en"]) > 20:
        assert all(texts[language] != texts["en"] for language in LANGUAGES[1:]), key


def test_every_status_has_its_words() -> None:
    assert all(set(words) == set(LANGUAGES[1:]) for words in STATUSES.values())


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_dialogue_goes_on_past_its_questions_in_every_language(language: str) -> None:
    for key in ("verify_first", "verify_to_change"):
        assert say("verify_marker", language) in say(key, language)
        assert continues(say(key, language))
    reason = say("ask_reason", language, q=say("q_reason", language), asks=say("asks", language))
    assert continues(reason) and say("q_reason", language) in reason
    assert not continues(say("welcome", language)) and not continues(say("help", language))


@pytest.mark.parametrize(
    ("messages", "language"),
    [
        (["Please cancel order #W8770097", "I ordered it by mistake", "yes"], "en"),
        (["cancel #W8770097", "2"], "en"),
        (["Bitte stornieren Sie meine Bestellung #W8770097", "2", "ja"], "de"),
        (["¿Cuál es la política de devoluciones?", "sí"], "es"),
        (["hola"], "es"),
        (["Je voudrais annuler ma commande #W8770097", "1", "oui"], "fr"),
        (["merci"], "fr"),
        # The newest message that tells a language decides.
        (["Je voudrais annuler ma commande", "Actually, can you tell me in English please"], "en"),
        ([], "en"),
    ],
)
def test_the_customer_s_language_is_read_from_their_messages(
    messages: list[str], language: str
) -> None:
    assert language_of(messages) == language


@pytest.mark.parametrize(
    "reply", ["sí", "Si", "¡Sí!", "ja", "Ja, bitte", "oui", "Oui, allez-y", "D'accord"]
)
def test_a_short_yes_confirms_in_each_language(reply: str) -> None:
    assert is_unambiguous_yes(reply)


@pytest.mark.parametrize("reply", ["ja?", "nein", "non", "sí, pero", "oui mais"])
def test_anything_else_does_not(reply: str) -> None:
    assert not is_unambiguous_yes(reply)
