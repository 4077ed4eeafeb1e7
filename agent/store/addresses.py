"""What a value that changes a customer's data must look like: one plain line of text, and a
postal address complete enough to ship to and to verify a customer by.

These rules hold whoever asks for the change (the model, staff, a backend): the values a
customer confirms, and that are stored, are never blank where it matters, never carry control
or direction-changing characters, and never span lines that could pose as other text.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

# Unicode categories a line of customer data never needs: controls (NUL, newlines, tabs, …),
# formats (the bidi overrides U+202A-202E and U+2066-2069, zero-width characters), line and
# paragraph separators, surrogates, private use and unassigned code points.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})
_SPACES = re.compile(r"\s+")

ADDRESS_FIELDS = ("address1", "address2", "city", "state", "country", "zip")
REQUIRED = ("address1", "city", "country", "zip")
_US = {"usa", "us", "united states", "united states of america"}
_ZIP = {
    "us": re.compile(r"^\d{5}(-\d{4})?$"),
    "ca": re.compile(r"^[A-Za-z]\d[A-Za-z] ?\d[A-Za-z]\d$"),
    "gb": re.compile(r"^[A-Za-z]{1,2}\d[A-Za-z\d]? ?\d[A-Za-z]{2}$"),
    "de": re.compile(r"^\d{5}$"),
    "fr": re.compile(r"^\d{5}$"),
}
_COUNTRY = {
    "canada": "ca", "ca": "ca", "united kingdom": "gb", "uk": "gb", "gb": "gb",
    "germany": "de", "de": "de", "deutschland": "de", "france": "fr", "fr": "fr",
}  # fmt: skip
_ANY_ZIP = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 -]{1,9}$")


class BadValue(ValueError):
    """A value that may not be stored as it is (a ValueError: a validator's refusal too)."""


def plain_line(value: str, *, what: str = "text") -> str:
    """`value` as one plain line: NFC-normalized, runs of spaces folded, trimmed. BadValue when
    it holds a character that is not printable text on one line."""
    text = unicodedata.normalize("NFC", value)
    for char in text:
        if char not in " \u00a0" and (
            unicodedata.category(char) in _REFUSED_CATEGORIES or (char.isspace() and char != " ")
        ):
            name = unicodedata.name(char, f"U+{ord(char):04X}")
            raise BadValue(f"The {what} contains a character that is not allowed ({name}).")
    return _SPACES.sub(" ", text).strip()


def checked_address(fields: dict[str, Any]) -> dict[str, str]:
    """An address to ship to (or to verify by): every field a plain line; street, city,
    country and zip code present; a state for the USA; a zip code of the country's format.
    BadValue says the first thing wrong."""
    address = {k: plain_line(str(fields.get(k) or ""), what=k.replace("1", " line 1"))
               for k in ADDRESS_FIELDS}  # fmt: skip
    missing = [k for k in REQUIRED if not address[k]]
    country = address["country"].lower()
    if country in _US and not address["state"]:
        missing.append("state")
    if missing:
        raise BadValue(f"The address needs {', '.join(missing)}: none may be blank.")
    rule = _ZIP["us"] if country in _US else _ZIP.get(_COUNTRY.get(country, ""), _ANY_ZIP)
    if not rule.match(address["zip"]):
        raise BadValue(f"{address['zip']!r} is not a zip code of {address['country']}.")
    return address


def is_fact(value: str | None) -> bool:
    """Whether a stored or given identity fact can be compared at all: a blank one never
    matches anything."""
    return bool(value and value.strip())
