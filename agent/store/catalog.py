"""The product catalog: public data, no customer needed. Reads nothing itself: the names and
variants come from the order system (tools/catalog.py)."""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel

from agent.store.orders import format_cents
from agent.store.tables import Product


class VariantView(BaseModel):
    item_id: str
    options: dict[str, Any]
    available: bool
    price: str


class ProductView(BaseModel):
    product_id: str
    name: str
    filters: dict[str, str]
    matching_variants: int
    available_variants: int
    variants: list[VariantView]
    option_values: dict[str, list[str]]


def _words(text: str) -> set[str]:
    words = set(re.findall(r"[a-z0-9]+(?:[.-][a-z0-9]+)*", text.lower()))
    return words | {w[:-1] for w in words if w.endswith("s") and len(w) > 3}  # "bottles"


# -- which products the customer's words name ------------------------------------------------
#
# Customers rarely type a product's exact name: "the kettle", "kettles", "kettel", "a water
# boiler", "t shirt". Words are compared by their stem (Snowball, so plurals and "-ing" forms
# meet), through a few common synonyms, and, for a word the catalog does not know, by typing
# slips (one edit in a word of 6-7 letters, two from 8; same first letter; not only at the
# end, where a difference is more often another word: "charge", "charger"). A product is a
# candidate when its key word matches: the last word of its name ("Kettle"), or the one before
# a generic last word ("Vacuum" of "Vacuum Cleaner"). A candidate matched by a strict subset of
# another's words gives way ("electric kettle": not the Tea Kettle). Candidates matched by the
# same words are one question: the option values the customer named settle it when only one
# of them has those ("the kettle in white": only the Electric Kettle comes in white);
# otherwise the customer is asked which one they mean.

# Last words that say what kind of thing, not which: the word before them is the key.
GENERIC_LAST_WORDS = ("set", "kit", "machine", "maker", "cleaner", "pack")
# What customers call things -> the word a product name uses (applied only when a product's
# name has that word).
SYNONYMS = {
    "boiler": "kettle",
    "phone": "smartphone",
    "cellphone": "smartphone",
    "earphone": "earbuds",
    "headset": "headphones",
    "trainer": "sneakers",
    "bike": "bicycle",
    "tee": "tshirt",
    "suitcase": "luggage",
    "powerbank": "charger",
    "hoover": "vacuum",
    "barbecue": "grill",
    "bbq": "grill",
    "weights": "dumbbell",
    "shades": "sunglasses",
    "coat": "jacket",
    "lightbulb": "bulb",
    "ebook": "ereader",
    "rucksack": "backpack",
    "notepad": "notebook",
}
ASK_AT_MOST = 6  # products named in a "which one do you mean?" question
_TOKEN_RE = re.compile(r"[a-z0-9]+")
_local = threading.local()  # a Snowball stemmer is not thread-safe: one per thread


def _stem(word: str) -> str:
    stemmer = getattr(_local, "stemmer", None)
    if stemmer is None:
        import Stemmer  # PyStemmer (Snowball), also the knowledge base's lexical stemmer

        stemmer = _local.stemmer = Stemmer.Stemmer("english")
    return str(stemmer.stemWord(word))


def _slips(a: str, b: str, most: int) -> int:
    """Edits (insert, delete, substitute, swap two neighbours) from `a` to `b`; more than
    `most` as soon as that is certain."""
    if abs(len(a) - len(b)) > most:
        return most + 1
    before: list[int] | None = None
    row = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            current[j] = min(row[j] + 1, current[j - 1] + 1, row[j - 1] + cost)
            if before is not None and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                current[j] = min(current[j], before[j - 2] + 1)
        if min(current) > most:
            return most + 1
        before, row = row, current
    return row[-1]


def _other_form(a: str, b: str) -> bool:
    """Words that differ only at the end are more often another word ("charge", "charger";
    "makes", "maker") than a slip."""
    return a.startswith(b) or b.startswith(a) or a[:-1] == b[:-1]


@dataclass(frozen=True)
class _Name:
    """A product's name as the matcher reads it."""

    product_id: str
    name: str
    words: tuple[str, ...]  # lower case; "T-Shirt" is one word, "tshirt"
    units: tuple[tuple[str, frozenset[int]], ...]  # a stem and the name words it stands for
    key: int  # the word that must match

    @classmethod
    def read(cls, product_id: str, name: str) -> _Name:
        words: list[str] = []
        units: list[tuple[str, frozenset[int]]] = []
        for piece in name.lower().split():
            parts = _TOKEN_RE.findall(piece)
            if not parts:
                continue
            at = frozenset({len(words)})
            words.append("".join(parts))
            units.append((_stem(words[-1]), at))
            if len(parts) > 1 and len(parts[-1]) >= 3:  # "shirt" of "T-Shirt"
                units.append((_stem(parts[-1]), at))
        for i in range(len(words) - 1):  # "smartwatch", "lightbulb"
            units.append((_stem(words[i] + words[i + 1]), frozenset({i, i + 1})))
        key = len(words) - 1
        if key > 0 and words[key] in GENERIC_LAST_WORDS:
            key -= 1
        return cls(product_id, name, tuple(words), tuple(units), key)


@dataclass(frozen=True)
class _Index:
    """The catalog's names, read once per set of names (see `_index`)."""

    names: tuple[_Name, ...]
    known: frozenset[str]  # every stem a name or a synonym has
    by_letter: dict[str, dict[str, str]]  # first letter -> raw word -> its stem, for slips
    synonyms: dict[str, str]  # stem -> stem


@functools.lru_cache(maxsize=4)
def _index(rows: tuple[tuple[str, str], ...]) -> _Index:
    names = tuple(_Name.read(pid, name) for pid, name in rows)
    synonyms = {_stem(k): _stem(v) for k, v in SYNONYMS.items()}
    by_letter: dict[str, dict[str, str]] = {}
    for raw, stem in [(w, _stem(w)) for n in names for w in n.words] + [
        (k, synonyms[_stem(k)]) for k in SYNONYMS
    ]:
        by_letter.setdefault(raw[0], {})[raw] = stem
    known = frozenset({stem for n in names for stem, _ in n.units} | set(synonyms))
    return _Index(names, known, by_letter, synonyms)


@dataclass
class _Hit:
    name: _Name
    covered: set[int] = field(default_factory=set)  # name words matched
    used: frozenset[int] = frozenset()  # the customer's words that matched

    @property
    def full(self) -> bool:
        return len(self.covered) == len(self.name.words)


@dataclass(frozen=True)
class ProductMatch:
    """What the customer's words name: `products` (best first), or several that fit the same
    words equally (`ask`: ask which one), or, when nothing does, `suggestions` (products
    sharing a lesser word with the question, e.g. "tea" for the Tea Kettle)."""

    products: list[Product]
    ask: list[Product]
    suggestions: list[Product]


def _query_stems(tokens: list[str], index: _Index) -> dict[str, set[int]]:
    """Each stem the customer's words stand for -> the positions of those words. A word the
    catalog does not know also stands for the catalog's closest words within a slip or two."""
    stems: dict[str, set[int]] = {}

    def add(stem: str, at: set[int]) -> None:
        stems.setdefault(stem, set()).update(at)
        if stem in index.synonyms:
            stems.setdefault(index.synonyms[stem], set()).update(at)

    for i, token in enumerate(tokens):
        stem = _stem(token)
        add(stem, {i})
        if stem in index.known or len(token) < 6 or token.isdigit():
            continue
        most = 1 if len(token) < 8 else 2
        slips = {
            word: _slips(token, word, most)
            for word in index.by_letter.get(token[0], {})
            if abs(len(word) - len(token)) <= most and not _other_form(token, word)
        }
        closest = min(slips.values(), default=most + 1)
        for word, n in slips.items():
            if n == closest <= most:
                add(index.by_letter[token[0]][word], {i})
    for i in range(len(tokens) - 1):  # "wrist watch", "t shirt", "power bank"
        add(_stem(tokens[i] + tokens[i + 1]), {i, i + 1})
    return stems


class Optioned(Protocol):
    """A variant as the catalog reads it (a row here, or a record of the shop's system)."""

    @property
    def item_id(self) -> str: ...
    @property
    def options(self) -> dict[str, Any]: ...
    @property
    def available(self) -> bool: ...
    @property
    def price_cents(self) -> int: ...


# Product ids -> the variants of each (read only for products that fit a question equally).
VariantsOf = Callable[[list[str]], dict[str, list[Optioned]]]


def match_products(
    *,
    names: dict[str, str],
    variants_of: VariantsOf,
    query: str,
    options: dict[str, str] | None = None,
) -> ProductMatch:
    """The products `query` (a name, an id, or the customer's question) is about, of the
    catalog's `names` (name -> product id); `options` (e.g. {"color": "white"}) help choose
    between products that fit its words equally."""
    rows = tuple(sorted(((str(pid), str(name)) for name, pid in names.items()),
                        key=lambda r: (r[1], r[0])))  # fmt: skip
    by_id = dict(rows)

    def load(ids: list[str]) -> list[Product]:
        return [Product(id=pid, name=by_id[pid]) for pid in ids]

    wanted = query.strip()
    exact = [pid for pid, name in rows if wanted == pid or name.lower() == wanted.lower()]
    if exact:
        return ProductMatch(load(exact), [], [])
    index = _index(rows)
    stems = _query_stems(_TOKEN_RE.findall(wanted.lower()), index)
    hits = []
    for name in index.names:
        hit = _Hit(name)
        used: set[int] = set()
        for stem, covers in name.units:
            if stem in stems:
                hit.covered |= covers
                used |= stems[stem]
        hit.used = frozenset(used)
        if hit.covered:
            hits.append(hit)
    candidates = [h for h in hits if h.name.key in h.covered]
    if not candidates:
        weak = sorted(hits, key=lambda h: (-len(h.covered), h.name.name))
        return ProductMatch([], [], load([h.name.product_id for h in weak[:5]]))
    # A more specific match wins: "security camera" is not the Action Camera; and the last
    # of two names in a row is the thing ("bike helmet": the helmet, not the bicycle).
    candidates = [
        c for c in candidates
        if not any(c.used < o.used or max(c.used) + 1 == min(o.used) for o in candidates)
    ]  # fmt: skip
    groups: dict[frozenset[int], list[_Hit]] = {}
    for c in sorted(candidates, key=lambda c: min(c.used)):
        groups.setdefault(c.used, []).append(c)
    chosen: list[str] = []
    ask: list[str] = []
    for group in groups.values():
        if any(c.full for c in group):  # "kettle": a product called just "Kettle"
            group = [c for c in group if c.full]
        settled = _by_options(variants_of, [c.name.product_id for c in group], query, options)
        if len(settled) == 1:
            chosen += settled
        elif not ask:
            ask = settled
    return ProductMatch(load(chosen), load(ask[:ASK_AT_MOST]), [])


def _by_options(
    variants_of: VariantsOf, product_ids: list[str], query: str, options: dict[str, str] | None
) -> list[str]:
    """Of products that fit the customer's words equally, those whose options the question
    names most ("in white": only the Electric Kettle comes in white); all of them when it
    names none."""
    if len(product_ids) < 2:
        return product_ids
    words = _words(" ".join([query, *(options or {}).values()]))
    values: dict[str, set[str]] = {pid: set() for pid in product_ids}
    for pid, variants in variants_of(product_ids).items():
        for variant in variants:
            values[pid] |= {str(value) for value in variant.options.values()}
    named = {pid: sum(_words(value) <= words for value in vals) for pid, vals in values.items()}
    best = max(named.values())
    return [pid for pid in product_ids if named[pid] == best]


def describe_product(
    *,
    product: Product,
    variants: Sequence[Optioned],
    query: str = "",
    options: dict[str, str] | None = None,
    available_only: bool = False,
    limit: int = 20,
) -> ProductView:
    values: dict[str, set[str]] = {}
    for v in variants:
        for key, value in v.options.items():
            values.setdefault(key, set()).add(str(value))
    # Option values the question mentions become filters ("blue", "1000ml", "glass").
    words = _words(query)
    filters = {
        key: next(iter(hits))
        for key, vals in values.items()
        if len(hits := {v for v in vals if _words(v) <= words}) == 1
    }
    filters |= {k.lower(): str(v) for k, v in (options or {}).items()}
    matching = [
        v for v in variants
        if all(str(v.options.get(k, "")).lower() == f.lower() for k, f in filters.items())
    ]  # fmt: skip
    if available_only:
        matching = [v for v in matching if v.available]
    return ProductView(
        product_id=product.id,
        name=product.name,
        filters=filters,
        matching_variants=len(matching),
        available_variants=sum(v.available for v in matching),
        variants=[
            VariantView(
                item_id=v.item_id,
                options=v.options,
                available=v.available,
                price=format_cents(v.price_cents),
            )
            for v in sorted(matching, key=lambda v: (not v.available, v.price_cents))[:limit]
        ],
        option_values={k: sorted(vals) for k, vals in values.items()},
    )
