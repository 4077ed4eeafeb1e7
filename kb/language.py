"""A rough guess of the language a question is written in: English, Spanish, German or French.

The help centre is searched in its own language (English); a question in another is found far
less often (bench/README.md, "Other languages"). The guess lets the search say so: it counts
the commonest short words of each language, and the letters only one of them uses. It is for
a sentence or more, not for a word: "" when it cannot tell.

`language_of` reads a conversation's language from the customer's messages: the offline model
answers in it (agent/models/offline_phrases.py), and the engine words the confirmation of a
change in it (agent/engine/consent.py, tools/proposal_words.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

LANGUAGES = ("en", "es", "de", "fr")
ENGLISH = "en"


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Function words that are frequent in each language and rare in the others' questions.
_WORDS: dict[str, frozenset[str]] = {
    "en": _words(
        "the a an is are was do does did can could would should will my your our i you we it "
        "what how why when where which who to of for with on in and or but not have has this "
        "that there get got me if from be"
    ),
    "es": _words(
        "el la los las un una es son está están mi mis tu su nuestra nuestro qué cómo por para "
        "con del al que y o pero no tengo puedo hay se me lo le cuánto cuántas cuántos cuál "
        "cuando dónde porque muy también desde hasta sin sobre ya quiero quisiera necesito "
        "pedido usted gracias hola"
    ),
    "de": _words(
        "der die das den dem des ein eine einen ist sind war mein meine meinem meinen unser "
        "unsere ich du wir sie es was wie warum wann wo welche wer zu von für mit auf und oder "
        "aber nicht kann können habe hat gibt mir mich wenn ob auch noch schon bei aus möchte "
        "bitte bestellung danke"
    ),
    "fr": _words(
        "le la les un une des est sont mon ma mes notre nos votre je tu nous vous il elle quoi "
        "comment pourquoi quand où quel quelle quels qui que de du pour avec sur et ou mais ne "
        "pas puis peux peut ai avez est-ce ce cette au aux si dans voudrais veux commande merci "
        "bonjour"
    ),
}
_LETTERS: dict[str, re.Pattern[str]] = {
    "es": re.compile(r"[ñ¿¡áíóú]"),
    "de": re.compile(r"[äöüß]"),
    "fr": re.compile(r"[àâçèêëîïôûœ]"),
}
_WORD = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)?")


def common_words(language: str) -> frozenset[str]:
    """The commonest short words of `language` ("en", "es", "de", "fr"; empty for another)."""
    return _WORDS.get(language, frozenset())


def guess_language(text: str) -> str:
    """ "en", "es", "de" or "fr" when the text reads as one of them, else "" (too short, or
    no clear winner)."""
    words = [w.lower() for w in _WORD.findall(text)]
    if len(words) < 3:
        return ""
    score = {lang: sum(w in common for w in words) for lang, common in _WORDS.items()}
    for lang, letters in _LETTERS.items():
        score[lang] += 2 * len(letters.findall(text.lower()))
    best = max(score, key=lambda lang: score[lang])
    runner_up = max(s for lang, s in score.items() if lang != best)
    return best if score[best] >= 2 and score[best] > runner_up else ""


def is_foreign(text: str, language: str = "en") -> bool:
    """Whether the text reads as another language than `language` (unsure counts as not)."""
    guessed = guess_language(text)
    return bool(guessed) and guessed != language


_REPLY_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
# One- or two-word replies that tell a language where guess_language cannot ("hola", "ja").
_CUES: dict[str, frozenset[str]] = {
    "es": frozenset({"hola", "gracias", "sí", "vale", "claro", "buenas", "buenos", "adiós"}),
    "de": frozenset(
        {"hallo", "danke", "ja", "nein", "bitte", "genau", "servus", "moin", "tschüss", "jawohl"}
    ),
    "fr": frozenset({"bonjour", "bonsoir", "merci", "oui", "salut"}),
}


def language_of_text(text: str) -> str:
    """The language of one message: "en", "es", "de" or "fr", or "" when it cannot tell (a
    short reply tells only by a word of one language: "hola", "danke", "oui")."""
    guessed = guess_language(text)
    if guessed:
        return guessed
    words = {w.lower() for w in _REPLY_WORD.findall(text)}
    if not words or len(words) > 4:
        return ""
    found = [language for language, cues in _CUES.items() if words & cues]
    return found[0] if len(found) == 1 else ""


def language_of(texts: Iterable[str]) -> str:
    """The language of a conversation from the customer's messages, oldest first: the newest
    message that tells one; English when none does. (A reply too short to tell, "2" or
    "#W8770097", keeps the language of the messages before it.)"""
    language = ENGLISH
    for text in texts:
        language = language_of_text(text) or language
    return language


def in_language(texts: Mapping[str, str], language: str, **fields: Any) -> str:
    """One of a table's texts (language -> text, with str.format fields) in `language`, or in
    English where it is not written in that language, filled in."""
    return texts.get(language, texts[ENGLISH]).format(**fields)
