"""The seven changes, offline: a short slot-filling dialogue that ends in a proposal.

The customer asks for a change in their own words ("return the garden hose from #W6893533",
"I don't want the lamp anymore", "exchange my earbuds for a black pair", "change my address to
…"). The offline model finds the order (by its number, or by the product among the customer's
own orders), asks for what is missing one question at a time (the items, the new option among
the available ones, the payment method, the reason, the address), then calls the change's tool:
the engine checks it against every rule and holds it for the customer's confirmation, as it
does Claude's. Whatever it cannot work out ends in an honest "I can't do that here" and the
offer of a person. Every step is read afresh from the conversation (offline_dialogue.py).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field, replace
from typing import Any

from agent.models.intent import EMAIL_RE, Intent, find_order_ids
from agent.models.offline_dialogue import Dialogue, Said
from agent.models.offline_phrases import (
    ENGLISH,
    heard,
    request_words,
    said_in_any,
    say,
    status,
)

# -- what is asked for ------------------------------------------------------------------------

CANCEL, RETURN, SWAP, DROP = "cancel", "return", "swap", "drop"
ORDER_ADDRESS, USER_ADDRESS, PAYMENT = "order address", "user address", "payment"

_REQUEST = re.compile(
    r"\b(i want|i'?d like|i would like|i need|please|can you|could you|would you|help me|"
    rf"want to|wanna|i'?m trying to|{heard('request')})\b|^\s*(cancel|return|refund|exchange|"
    r"swap|change|update|switch|replace|ship|pay|use)\b",
    re.IGNORECASE,
)
# Questions about the policy or the state of things, not requests to change anything.
_POLICY = re.compile(r"\b(polic(y|ies)|how (do|does|can|long|much)|what is your|what's your|"
                     r"is it possible to|rules?|status|where is|where's|track(ing)?|when will|"
                     rf"{heard('policy')})\b", re.IGNORECASE)  # fmt: skip
_ADDRESS = re.compile(r"\baddress\b|\bi (have |just )?moved\b|\bship (it|them|the order|my "
                      rf"order) to\b|\b({heard('address')})\b", re.I)  # fmt: skip
_ORDER_ADDRESS = re.compile(r"\b(shipping|delivery)\s+address\b|\bship\b|\baddress (of|for|on) "
                            rf"(my |the |this |that )?order\b|\b({heard('shipping_address')})\b",
                            re.I)  # fmt: skip
_CHANGE = re.compile(rf"\b(change|update|new|moved|ship|correct|fix|wrong|{heard('change')})\b",
                     re.I)  # fmt: skip
_MY = re.compile(rf"\b(my|{heard('my')})\b", re.I)
_KINDS: list[tuple[str, re.Pattern[str]]] = [
    (
        PAYMENT,
        re.compile(
            r"\bpay(ing)?\b.{0,40}\b(with|using|by)\b|\bpayment method\b|"
            r"\buse my (gift card|paypal|card|credit card|visa|mastercard)\b|"
            rf"\bcharge (it to )?my\b|\b({heard('payment')})\b",
            re.I,
        ),
    ),
    (
        RETURN,
        re.compile(rf"\b(return|refund|send (it|them) back|money back|{heard('return')})", re.I),
    ),
    (
        SWAP,
        re.compile(
            r"\b(exchange|swap|replace|switch|instead of|different (colou?r|size|"
            r"one|model)|change (the |its |it to )?(colou?r|size|item|variant|"
            rf"option)|{heard('swap')})",
            re.I,
        ),
    ),
    (CANCEL, re.compile(rf"\b({heard('cancel')})", re.I)),
    (
        DROP,
        re.compile(
            rf"\b(do ?n[o']?t want|no longer want|don'?t need|get rid of|{heard('drop')})\b", re.I
        ),
    ),
]

REASONS = {
    "ordered by mistake": re.compile(
        r"\b(by mistake|mistaken|accident|wrong order|mistake|"
        rf"didn'?t mean|{heard('by_mistake')})",
        re.I,
    ),
    "no longer needed": re.compile(
        r"\b(no longer|don'?t need|do not need|not needed|changed my "
        rf"mind|don'?t want|do not want|not need|{heard('not_needed')})",
        re.I,
    ),
}
_NO = re.compile(r"^\s*(no|nope|nah|never ?mind|forget it|leave it|keep it|stop|don'?t|do not|"
                 rf"cancel that|no thanks?|{heard('no')})\b", re.I)  # fmt: skip
_STOP_WORDS = frozenset(
    re.findall(
        r"\S+",
        """
    a an the my our your i i'd id im i'm me to for of from on in at it its this that these those
    and or but with please want wanted like would could can you order orders item items return
    refund exchange swap replace cancel change switch get rid dont don't do not no longer
    anymore any more need needed thanks thank hi hello pair one new instead back send them they
    is are was were be have has had which what when where why how some all both just also really
    very mind changed mistake by ordered zip code email address verified anymore
    thing things something stuff bought purchase purchased product products got
""",
    )
)
_INSTEAD = re.compile(rf"\b(instead|actually|rather|change of plan|{heard('instead')})\b", re.I)
_ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6,
             "seventh": 7, "eighth": 8, "last": -1}  # fmt: skip


_KEYWORDS = ("cancel", "return", "refund", "exchange", "replace", "address", "payment")
# Real words close to one of those.
_NOT_TYPOS = frozenset({"change", "changes", "changed", "charge", "charged", "chance", "refine",
                        "replay", "retina", "repayment", "placement", "cancer",
                        # the other languages' words (offline_phrases.HEARD reads them)
                        "changer", "echanger", "paiement", "remplacer", "retourner", "retour",
                        "adresse", "cancelar"})  # fmt: skip


def _normalise(text: str) -> str:
    """The message with the words of a request spelled right ("cancle", "retrun", "adress")."""

    def fix(match: re.Match[str]) -> str:
        word = match.group(0)
        lowered = word.lower()
        if len(lowered) < 5 or lowered in _KEYWORDS or lowered in _NOT_TYPOS:
            return word
        close = difflib.get_close_matches(lowered, _KEYWORDS, n=1, cutoff=0.8)
        return close[0] if close else word

    return re.sub(r"[^\W\d_]+", fix, text)  # whole words, accented ones too ("cancelación")


def kind_of(text: str) -> str | None:
    """The change a message asks for, if it asks for one (not a question about the policy or
    about where things are)."""
    text = _normalise(text)
    if _POLICY.search(text) and not re.search(rf"\b(cancel|change|update|{heard('cancel')})",
                                               text, re.I):  # fmt: skip
        return None
    asked = bool(_REQUEST.search(text) or find_order_ids(text) or _MY.search(text))
    if _ADDRESS.search(text) and _CHANGE.search(text):
        return (
            ORDER_ADDRESS if find_order_ids(text) or _ORDER_ADDRESS.search(text) else USER_ADDRESS
        )
    for kind, pattern in _KINDS:
        if pattern.search(text):
            return kind if asked or kind in (CANCEL, DROP) else None
    return None


# -- the steps ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Calls:
    calls: list[tuple[str, dict[str, Any]]]


@dataclass(frozen=True)
class Reply:
    text: str
    asks: bool = False  # a question of the dialogue (it goes on with the answer)


Step = Calls | Reply


@dataclass
class Slots:
    kind: str
    order_id: str | None = None
    words: set[str] = field(default_factory=set)  # what the customer called the product
    reason: str | None = None
    items: list[int] | None = None  # positions in the order's items
    variants: dict[int, str] = field(default_factory=dict)  # item position -> new item id
    method: str | None = None
    address: dict[str, str] | None = None
    address_tried: bool = False
    language: str = ENGLISH  # the customer's (offline_phrases.py)


def next_step(d: Dialogue, available: set[str], *, fresh: bool = True) -> Step | None:
    """What the offline model does next for the change the dialogue asks for; None when it
    asks for none. `fresh`: the customer has just written (else tools have just answered)."""
    # The request: the newest message asking for a change on its own (an answer to a question
    # asks for a new one only when it says so: "actually, return it instead").
    asks = [i for i, s in enumerate(d.said)
            if kind_of(s.text) and (not s.question or _INSTEAD.search(s.text))]  # fmt: skip
    start = asks[-1] if asks else None
    if start is None:
        return None
    said = d.said[start:]
    last = said[-1]
    if (
        len(said) > 1
        and _NO.search(last.text)
        and not (said_in_any(last.question, "q_reason") and _reason(last.text, answering=True))
    ):
        return Reply(say("left_as_is", d.language))
    latest = Intent.read(said[-1].text)
    if not d.verified:
        if not fresh:
            return None  # the verification just failed: its own error says what to do
        if (
            latest.email
            and (latest.order_ids or latest.zip_code)
            and "verify_customer" in available
        ):
            facts: dict[str, Any] = {"email": latest.email}
            facts.update({"order_id": latest.order_ids[0]} if latest.order_ids
                         else {"zip_code": latest.zip_code})  # fmt: skip
            return Calls([("verify_customer", facts)])
        if d.failed("verify_customer"):
            return None  # the verification's own error says what to do
        return Reply(say("verify_to_change", d.language))
    slots = _fill(Slots(kind_of(said[0].text) or CANCEL, language=d.language), said, d)
    if slots.order_id is None and slots.kind != USER_ADDRESS:
        # "actually, change its address instead": the order said before
        earlier = [i for s in d.said[:start] for i in find_order_ids(EMAIL_RE.sub(" ", s.text))]
        slots.order_id = earlier[-1] if earlier else None
    return _step(slots, d)


def _fill(slots: Slots, said: list[Said], d: Dialogue) -> Slots:
    for s in said:
        text = EMAIL_RE.sub(" ", s.text)
        ids = find_order_ids(text)
        if ids:
            slots.order_id = ids[-1]
        q = s.question
        if said_in_any(q, "q_which_order"):
            # from the orders the question listed: those holding what they named, else all
            shown = _order_choices(slots, d) or _order_choices(replace(slots, words=set()), d)
            chosen = _pick(text, shown)
            if chosen is not None:
                slots.order_id = chosen
        if said_in_any(q, "q_reason") or not slots.reason:
            slots.reason = _reason(text, answering=said_in_any(q, "q_reason")) or slots.reason
        if said_in_any(q, "q_address") or (slots.kind in (ORDER_ADDRESS, USER_ADDRESS)
                                        and not slots.address):  # fmt: skip
            found = parse_address(text)
            slots.address = found or slots.address
            slots.address_tried = slots.address_tried or said_in_any(q, "q_address")
        order = _order(slots, d)
        if said_in_any(q, "q_items") and order is not None:
            slots.items = _pick_many(text, [_item_name(i) for i in order["items"]])
        if said_in_any(q, "q_variant") and order is not None:
            if slots.items is None:
                slots.items = _items_named(slots.words, order)
            if not slots.items:
                continue
            position = _variant_asked(q, slots, order)
            options = _shown_variants(slots, order, position, d)
            chosen = _pick(text, [v["item_id"] for v in options], _variant_labels(options))
            if chosen is not None:
                slots.variants[position] = chosen
        if said_in_any(q, "q_method"):
            methods = _method_choices(slots, d)
            chosen = _pick(text, [m["payment_method_id"] for m in methods],
                           [_method_label(m) for m in methods])  # fmt: skip
            slots.method = chosen or slots.method
        elif not q:
            slots.words |= _named(text, slots.language)
            slots.method = _named_method(text, d) or slots.method
        if said_in_any(q, "q_order"):  # the order, by its number or what is in it
            slots.words |= _named(text, slots.language)
    return slots


def _step(slots: Slots, d: Dialogue) -> Step:
    if slots.kind == USER_ADDRESS:
        if slots.address is None:
            return _ask_address(slots)
        return Calls([("modify_user_address", slots.address)])
    order = _order(slots, d)
    if slots.order_id is None:
        return _find_order(slots, d)
    if order is None:
        failed = d.failed("order_status")
        if failed and slots.order_id in failed:
            return Reply(_ask(slots, "order_not_found", "q_order", order_id=slots.order_id))
        return Calls([("order_status", {"order_id": slots.order_id})])
    kind = _resolved(slots.kind, order["status"])
    if kind is None:
        return Reply(_wrong_status(slots.kind, order, slots.language))
    if kind == "cancel_pending_order":
        if slots.reason is None:
            return Reply(_ask(slots, "ask_reason", "q_reason"))
        return Calls([(kind, {"order_id": order["order_id"], "reason": slots.reason})])
    if kind == "modify_pending_order_address":
        if slots.address is None:
            return _ask_address(slots)
        return Calls([(kind, {"order_id": order["order_id"], **slots.address})])
    if kind == "modify_pending_order_payment":
        return _with_method(slots, d, kind, {"order_id": order["order_id"]})
    # returns, exchanges and item changes: which items first
    if slots.items is None:
        slots.items = _items_named(slots.words, order)
    if not slots.items:
        listing = "\n".join(f"{n}. {_item_label(i)}" for n, i in enumerate(order["items"], 1))
        verb = "verb_return" if kind == "return_delivered_order_items" else "verb_change"
        return Reply(_ask(slots, "ask_items", "q_items", order_id=order["order_id"],
                          verb=say(verb, slots.language), listing=listing))  # fmt: skip
    item_ids = [order["items"][p]["item_id"] for p in slots.items]
    if kind == "return_delivered_order_items":
        return _with_method(slots, d, kind, {"order_id": order["order_id"], "item_ids": item_ids})
    for position in slots.items:
        if position in slots.variants:
            continue
        product = d.latest("product_info", query=_product_id(order, position))
        if product is None:
            # The product of the item by its id (product_info finds it by id exactly).
            return Calls([("product_info", {"query": _product_id(order, position),
                                            "available_only": True})])  # fmt: skip
        options = _variant_choices(order, position, d)
        wanted = _variants_named(slots.words, order["items"][position], options)
        if len(wanted) == 1:
            slots.variants[position] = wanted[0]
            continue
        if not options:
            return Reply(say("no_other_option", slots.language, item=order["items"][position][
                "name"], person=say("person", slots.language)))  # fmt: skip
        shown = _shown_variants(slots, order, position, d)
        listing = "\n".join(f"{n}. {label}" for n, label in enumerate(_variant_labels(shown), 1))
        return Reply(_ask(slots, "ask_variant", "q_variant",
                          item=_item_label(order["items"][position]), listing=listing))  # fmt: skip
    new_ids = [slots.variants[p] for p in slots.items]
    return _with_method(slots, d, kind, {"order_id": order["order_id"], "item_ids": item_ids,
                                         "new_item_ids": new_ids})  # fmt: skip


def _with_method(slots: Slots, d: Dialogue, tool: str, args: dict[str, Any]) -> Step:
    methods = d.latest("payment_methods")
    if methods is None:
        return Calls([("payment_methods", {})])
    choices = _method_choices(slots, d)
    if slots.method is None and len(choices) == 1:
        slots.method = choices[0]["payment_method_id"]
    if slots.method is None:
        if not choices:
            return Reply(say("no_usable_method", slots.language,
                             person=say("person", slots.language)))  # fmt: skip
        listing = "\n".join(f"{n}. {_method_label(m, slots.language)}"
                            for n, m in enumerate(choices, 1))  # fmt: skip
        question = {"return_delivered_order_items": "ask_method_refund",
                    "modify_pending_order_payment": "ask_method_payment"}.get(
                        tool, "ask_method_difference")  # fmt: skip
        return Reply(_ask(slots, question, "q_method", listing=listing))
    return Calls([(tool, {**args, "payment_method_id": slots.method})])


# -- the questions (each holds its own words, `q_*` in offline_phrases.py: an answer is read
# against them) ---------------------------------------------------------------------------------


def _ask(slots: Slots, phrase: str, question: str, **fields: Any) -> str:
    """A question of the dialogue in the customer's language: `phrase` with its `q`
    (`question`'s words) and the marker that the dialogue goes on."""
    language = slots.language
    return say(phrase, language, q=say(question, language), asks=say("asks", language), **fields)


def _ask_address(slots: Slots) -> Reply:
    again = say("not_an_address", slots.language) + " " if slots.address_tried else ""
    return Reply(_ask(slots, "ask_address", "q_address", again=again))


def _find_order(slots: Slots, d: Dialogue) -> Step:
    listed = d.latest("list_orders")
    if listed is None:
        return Calls([("list_orders", {"limit": 10})])
    fitting = [o for o in listed if _resolved(slots.kind, o["status"])]
    unread = [o["order_id"] for o in fitting if _order_read(o["order_id"], d) is None]
    if slots.words and unread:
        return Calls([("order_status", {"order_id": o}) for o in unread])
    choices = _order_choices(slots, d)
    if len(choices) == 1 and slots.words:
        slots.order_id = choices[0]
        return _step(slots, d)
    if not fitting:
        return Reply(say("no_fitting_order", slots.language, done=say(_key("done", slots.kind),
                         slots.language), person=say("person", slots.language)))  # fmt: skip
    shown = [o for o in fitting if o["order_id"] in choices] or fitting
    listing = "\n".join(f"{n}. " + order_line(o, slots.language) + _contents(o["order_id"], d)
                        for n, o in enumerate(shown, 1))  # fmt: skip
    if slots.words and not choices:
        head = say("not_in_orders", slots.language, words=" ".join(sorted(slots.words)))
    else:
        head = ""
    return Reply(_ask(slots, "ask_which_order", "q_which_order", head=head, listing=listing))


def order_line(order: dict[str, Any], language: str) -> str:
    """An order in a list: "#W…: pending, 2 item(s), $123.45"."""
    return say("order_line", language, order_id=order["order_id"],
               status=status(order["status"], language), count=order["item_count"],
               total=order["total"])  # fmt: skip


def _key(prefix: str, kind: str) -> str:
    """The phrase for a kind of change ("done_order_address")."""
    return f"{prefix}_{kind.replace(' ', '_')}"


def _resolved(kind: str, status: str) -> str | None:
    """The tool for what is asked, given the order's status (None: not possible)."""
    pending, modified, delivered = status == "pending", status == "pending (item modified)", (
        status == "delivered")  # fmt: skip
    return {
        CANCEL: "cancel_pending_order" if pending else None,
        RETURN: "return_delivered_order_items" if delivered else None,
        SWAP: "modify_pending_order_items" if pending
        else "exchange_delivered_order_items" if delivered else None,
        DROP: "cancel_pending_order" if pending
        else "return_delivered_order_items" if delivered else None,
        ORDER_ADDRESS: "modify_pending_order_address" if pending or modified else None,
        PAYMENT: "modify_pending_order_payment" if pending or modified else None,
    }.get(kind)  # fmt: skip


def _wrong_status(kind: str, order: dict[str, Any], language: str) -> str:
    state = order["status"]
    why = _key("why", kind if kind in (CANCEL, RETURN, SWAP, DROP, ORDER_ADDRESS, PAYMENT)
               else "other")  # fmt: skip
    done = state in ("return requested", "exchange requested", "pending (item modified)")
    extra = say("changed_once", language) if done else ""
    return say("wrong_status", language, order_id=order["order_id"],
               status=status(state, language), why=say(why, language), extra=extra,
               person=say("person", language))  # fmt: skip


# -- reading answers ----------------------------------------------------------------------------


def _reason(text: str, *, answering: bool) -> str | None:
    for reason, pattern in REASONS.items():
        if pattern.search(text):
            return reason
    if answering:
        picked = _number(text)
        return {1: "no longer needed", 2: "ordered by mistake"}.get(picked or 0)
    return None


_STATES = frozenset(
    re.findall(
        r"[A-Z]{2}",
        """
    AL AK AZ AR CA CO CT DE FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ
    NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY DC""",
    )
)


def parse_address(text: str) -> dict[str, str] | None:
    """ "123 Main St, Apt 4, Springfield, IL 62704, USA" (the country may be left out for the
    USA; the apartment line is optional). None when it does not read as one."""
    start = re.search(r"\b\d+[A-Za-z]?\s+[A-Za-z]", text)
    if start is None:
        return None
    parts = [p.strip(" .") for p in text[start.start() :].split(",") if p.strip(" .")]
    country = "USA"
    if parts and not re.search(r"\d", parts[-1]):
        country = parts.pop()
        if country.upper() in ("US", "USA", "UNITED STATES", "UNITED STATES OF AMERICA"):
            country = "USA"
    if len(parts) < 3:
        return None
    last = re.fullmatch(r"([A-Za-z]{2})\s+(\d{5}(?:-\d{4})?)", parts[-1])
    if last:
        state, zip_code = last.group(1).upper(), last.group(2)
        parts = parts[:-1]
    elif re.fullmatch(r"\d{5}", parts[-1]) and re.fullmatch(r"[A-Za-z]{2}", parts[-2]):
        state, zip_code = parts[-2].upper(), parts[-1]
        parts = parts[:-2]
    else:
        return None
    if (country == "USA" and state not in _STATES) or len(parts) < 2:
        return None
    address1, city = parts[0], parts[-1]
    address2 = ", ".join(parts[1:-1])
    return {"address1": address1, "address2": address2, "city": city, "state": state,
            "country": country, "zip": zip_code}  # fmt: skip


def _number(text: str) -> int | None:
    found = re.search(r"^\s*#?(\d{1,2})\b", text) or re.search(
        r"\b(?:number|no\.?|option)\s*(\d{1,2})\b", text, re.I
    )
    if found:
        return int(found.group(1))
    for word, n in _ORDINALS.items():
        if re.search(rf"\b{word}\b", text, re.I):
            return n
    return None


def _pick(text: str, values: list[str], labels: list[str] | None = None) -> str | None:
    """The value a reply chooses from a numbered list: by its number, by the value itself, or
    by the words of its label (only when they fit one)."""
    if not values:
        return None
    yes = rf"\s*(yes|yeah|yep|ok|okay|sure|that one|fine|{heard('yes')})\b"
    if len(values) == 1 and re.match(yes, text, re.I):
        return values[0]
    n = _number(text)
    if n is not None and (1 <= n <= len(values) or n == -1):
        return values[n - 1] if n > 0 else values[-1]
    for value in values:
        if value.lower().lstrip("#") in text.lower():
            return value
    if labels:
        words = _words(text)
        scored = [(len(words & _words(label)), v) for label, v in zip(labels, values, strict=True)]
        best = max(s for s, _ in scored)
        top = [v for s, v in scored if s == best]
        if best and len(top) == 1:
            return top[0]
    return None


def _pick_many(text: str, names: list[str]) -> list[int]:
    if re.search(rf"\b(all|both|everything|every one|all of them|{heard('all')})\b", text, re.I):
        return list(range(len(names)))
    numbers = [int(n) for n in re.findall(r"\b(\d{1,2})\b", text) if 1 <= int(n) <= len(names)]
    if numbers:
        return sorted({n - 1 for n in numbers})
    words = _words(text)
    return [i for i, name in enumerate(names) if words & _words(name)]


def _named(text: str, language: str) -> set[str]:
    """What the customer calls the product: the words of `text` that are not the words of a
    request in their language ("quiero cancelar mi pedido" names none)."""
    return _words(text) - _words(" ".join(request_words(language)))


def _words(text: str) -> set[str]:
    """The words that can name a product or an option ("hose", "black", "100ft", "1L")."""
    words = {w.lower().strip("'.-") for w in re.findall(r"[^\W_](?:[^\W_]|['.-])*", text)}
    return {
        _stem(w) for w in words
        if w not in _STOP_WORDS
        and (len(w) > 2 or (re.search(r"\d", w) and re.search(r"[a-z]", w)))
        and not w.isdigit()
    }  # fmt: skip


def _stem(word: str) -> str:
    for suffix in ("es", "s"):
        if word.endswith(suffix) and len(word) > 4:
            return word[: -len(suffix)]
    return word


# -- facts from the results -------------------------------------------------------------------


def _order_read(order_id: str, d: Dialogue) -> dict[str, Any] | None:
    found = d.latest("order_status", order_id=order_id)
    return found if isinstance(found, dict) else None


def _order(slots: Slots, d: Dialogue) -> dict[str, Any] | None:
    return _order_read(slots.order_id, d) if slots.order_id else None


def _order_choices(slots: Slots, d: Dialogue) -> list[str]:
    """Orders that fit the request and hold what the customer named (all that fit, when they
    named nothing)."""
    listed = d.latest("list_orders") or []
    fitting = [o["order_id"] for o in listed if _resolved(slots.kind, o["status"])]
    if not slots.words:
        return fitting
    return [
        o for o in fitting
        if (read := _order_read(o, d)) and _items_named(slots.words, read, only=False)
    ]  # fmt: skip


def _contents(order_id: str, d: Dialogue) -> str:
    read = _order_read(order_id, d)
    return f" ({', '.join(i['name'] for i in read['items'])})" if read else ""


def _item_name(item: dict[str, Any]) -> str:
    return f"{item['name']} {' '.join(str(v) for v in item.get('options', {}).values())}"


def _item_label(item: dict[str, Any]) -> str:
    options = ", ".join(str(v) for v in item.get("options", {}).values())
    return f"{item['name']} ({options})" if options else item["name"]


def _items_named(words: set[str], order: dict[str, Any], *, only: bool = True) -> list[int]:
    """The order's items the customer's words name (by the product's name); with `only`, the
    item of a single-item order whatever they said."""
    items = order["items"]
    if only and len(items) == 1:
        return [0]
    return [i for i, item in enumerate(items) if words & _words(item["name"])]


def _product_id(order: dict[str, Any], position: int) -> str:
    item = order["items"][position]
    return str(item.get("product_id") or item["name"])


def _variant_choices(order: dict[str, Any], position: int, d: Dialogue) -> list[dict[str, Any]]:
    item = order["items"][position]
    product = d.latest("product_info", query=_product_id(order, position))
    if not isinstance(product, dict):
        return []
    found = [p for p in product.get("products", []) if p["name"] == item["name"]]
    if not found:
        return []
    return [v for v in found[0]["variants"] if v["available"] and v["item_id"] != item["item_id"]]


def _shown_variants(
    slots: Slots, order: dict[str, Any], position: int, d: Dialogue
) -> list[dict[str, Any]]:
    """The variants a question lists: those the customer's words fit, else every one."""
    options = _variant_choices(order, position, d)
    wanted = _variants_named(slots.words, order["items"][position], options)
    return [v for v in options if v["item_id"] in wanted] or options


def _variant_labels(options: list[dict[str, Any]]) -> list[str]:
    return [", ".join(str(v) for v in o["options"].values()) + f": {o['price']}" for o in options]


def _variants_named(
    words: set[str], item: dict[str, Any], options: list[dict[str, Any]]
) -> list[str]:
    """The available variants whose option values the customer named (beyond the item's own)."""
    mine = _words(" ".join(str(v) for v in item.get("options", {}).values()))
    wanted = words - mine - _words(item["name"])
    if not wanted:
        return []
    scored = [(len(wanted & _words(" ".join(map(str, o["options"].values())))), o["item_id"])
              for o in options]  # fmt: skip
    best = max((s for s, _ in scored), default=0)
    return [i for s, i in scored if s == best] if best else []


def _variant_asked(question: str, slots: Slots, order: dict[str, Any]) -> int:
    assert slots.items
    for position in slots.items:
        if _item_label(order["items"][position]) in question:
            return position
    return slots.items[0]


def _method_label(m: dict[str, Any], language: str = ENGLISH) -> str:
    if m["kind"] == "credit_card":
        brand = (m.get("brand") or "card").title()
        return say("card", language, brand=brand, last_four=m["last_four"])
    if m["kind"] == "gift_card":
        return say("gift_card", language, balance=m["balance"])
    return "PayPal" if m["kind"] == "paypal" else m["kind"].replace("_", " ")


def _method_choices(slots: Slots, d: Dialogue) -> list[dict[str, Any]]:
    """The methods that may be used: a refund to the order's own method or a gift card; a new
    payment with any other method than the current one."""
    methods = d.latest("payment_methods") or []
    order = _order(slots, d)
    paid = {p["payment_method_id"] for p in (order or {}).get("payments", [])
            if p["transaction_type"] == "payment"}  # fmt: skip
    if slots.kind in (RETURN, DROP):
        return [m for m in methods if m["payment_method_id"] in paid or m["kind"] == "gift_card"]
    if slots.kind == PAYMENT:
        return [m for m in methods if m["payment_method_id"] not in paid]
    return list(methods)


def _named_method(text: str, d: Dialogue) -> str | None:
    methods = d.latest("payment_methods") or []
    lowered = text.lower()
    for m in methods:
        label = _method_label(m).lower()
        if m["payment_method_id"] in text or (m.get("last_four") and m["last_four"] in text):
            return str(m["payment_method_id"])
        if m["kind"] == "paypal" and "paypal" in lowered:
            return str(m["payment_method_id"])
        if m["kind"] == "gift_card" and "gift card" in lowered:
            return str(m["payment_method_id"])
        if m["kind"] == "credit_card" and (label.split()[0] in lowered or "credit card" in lowered):
            return str(m["payment_method_id"])
    return None
