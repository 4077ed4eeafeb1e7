"""What customers type, brought closer to what help pages say.

- Spelling variants (British and American, split and joined forms) map to one form, on both
  sides of the lexical index: "colour" finds "color", "e-mail" finds "email".
- A misspelt word ("retrun", "warrenty", "adress") is corrected to a word of the indexed text
  one edit away (insertion, deletion, substitution or swap of neighbours), the most frequent
  such word, for both searches. A word is left alone when the index or the encoder's
  vocabulary knows it or another form of it ("bake" for "baking", "mins" for "min").
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

import Stemmer

# One spelling per word; either side maps to the same form.
SPELLING: dict[str, str] = {
    # British -> American
    "colour": "color", "colours": "colors", "coloured": "colored", "favourite": "favorite",
    "behaviour": "behavior", "centre": "center", "centres": "centers", "metre": "meter",
    "metres": "meters", "litre": "liter", "litres": "liters", "millilitre": "milliliter",
    "catalogue": "catalog", "cancelled": "canceled", "cancelling": "canceling",
    "cancellation": "cancelation", "labelled": "labeled", "labelling": "labeling",
    "travelled": "traveled", "travelling": "traveling", "modelled": "modeled",
    "jewellery": "jewelry", "aluminium": "aluminum", "grey": "gray", "tyre": "tire",
    "tyres": "tires", "licence": "license", "defence": "defense", "offence": "offense",
    "cheque": "check", "cheques": "checks", "chequing": "checking", "enrol": "enroll",
    "enrolment": "enrollment", "instalment": "installment", "instalments": "installments",
    "fulfil": "fulfill", "fulfilment": "fulfillment", "judgement": "judgment",
    "organise": "organize", "organised": "organized", "authorise": "authorize",
    "authorised": "authorized", "authorisation": "authorization", "recognise": "recognize",
    "recognised": "recognized", "realise": "realize", "apologise": "apologize",
    "personalise": "personalize", "customise": "customize", "customised": "customized",
    "minimise": "minimize", "maximise": "maximize", "optimise": "optimize",
    "prioritise": "prioritize", "summarise": "summarize", "finalise": "finalize",
    "utilise": "utilize", "categorise": "categorize", "analyse": "analyze",
    "paralysed": "paralyzed", "mould": "mold", "odour": "odor",
    "odours": "odors", "fibre": "fiber", "programme": "program", "storey": "story",
    "pyjamas": "pajamas", "plough": "plow", "cosy": "cozy", "sceptical": "skeptical",
    # joined and split forms
    "e-mail": "email", "emails": "email", "e-mails": "email", "zipcode": "zip",
    "postcode": "zip", "log-in": "login", "sign-in": "signin",
    "wi-fi": "wifi", "check-out": "checkout", "set-up": "setup", "pre-order": "preorder",
    "giftcard": "gift card",
}  # fmt: skip

# Informal spellings that are not typos (and would otherwise be one edit from a word).
INFORMAL = frozenset([
    "whats", "hows", "wheres", "whos", "thats", "dont", "doesnt", "didnt", "cant", "wont", "isnt",
    "arent", "wasnt", "havent", "hasnt", "shouldnt", "couldnt", "wouldnt", "youre", "theyre",
    "thx", "pls", "plz",
])  # fmt: skip

# Any of the variants as a whole word ("colour", "colour-coded"; not "watercolour").
_VARIANT = re.compile(
    r"(?<![\w-])(?:"
    + "|".join(sorted(map(re.escape, SPELLING), key=len, reverse=True))
    + r")(?!\w)",
    re.IGNORECASE,
)
_LETTERS = re.compile(r"[a-z]+")
_LETTERS_ANY = re.compile(r"[A-Za-z]+")
_STEMMER = Stemmer.Stemmer("english")


def normalise_text(text: str) -> str:
    """Spelling variants replaced word by word (for the lexical index and its queries)."""
    return _VARIANT.sub(lambda m: SPELLING[m.group(0).lower()], text)


def known_stems(words: Iterable[str]) -> set[str]:
    """Stems of correctly spelt words (with the informal spellings), for `Speller`."""
    return set(_STEMMER.stemWords([*words, *INFORMAL]))


def _deletes(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


def _one_edit(a: str, b: str) -> bool:
    """True when a and b differ by exactly one insertion, deletion, substitution or swap of
    neighbouring letters (Damerau-Levenshtein distance 1)."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        if len(diff) == 1:
            return True
        i, j = diff[0], diff[-1]
        return len(diff) == 2 and j == i + 1 and a[i] == b[j] and a[j] == b[i]
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    i = next((i for i in range(len(short)) if short[i] != long_[i]), len(short))
    return short[i:] == long_[i + 1 :]


class Speller:
    """Corrects misspelt query words to words of the indexed text."""

    MIN_LENGTH = 4  # shorter words have too many neighbours one edit away

    def __init__(self, texts: Iterable[str], known: set[str] | None = None) -> None:
        """`known`: `known_stems` of words that are spelt right though no text uses them."""
        self.counts: Counter[str] = Counter()
        for text in texts:
            self.counts.update(_LETTERS.findall(text.lower()))
        self.known_stems = (known or known_stems(())) | known_stems(self.counts)
        self._by_delete: dict[str, list[str]] = {}
        for word in self.counts:
            if len(word) >= self.MIN_LENGTH - 1:
                for key in _deletes(word) | {word}:
                    self._by_delete.setdefault(key, []).append(word)

    def correct(self, word: str) -> str:
        """The word itself when it is known (or too short to judge), else the most frequent
        indexed word one edit away, else the word itself."""
        lowered = word.lower()
        if (
            len(lowered) < self.MIN_LENGTH
            or not lowered.isalpha()
            or lowered in self.counts
            or lowered in INFORMAL
            or Stemmer.Stemmer("english").stemWord(lowered) in self.known_stems
        ):
            return word
        candidates = {
            c for key in _deletes(lowered) | {lowered} for c in self._by_delete.get(key, ())
        }
        close = [c for c in candidates if _one_edit(lowered, c)]
        if not close:
            return word
        return max(close, key=lambda c: (self.counts[c], c))

    def correct_text(self, text: str) -> str:
        """The text with its misspelt words corrected, all else as it was."""
        return _LETTERS_ANY.sub(lambda m: self.correct(m.group(0)), text)
