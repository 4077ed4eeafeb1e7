"""The fixed words of a proposed change's summary (tools/order_actions.py), in English, Spanish,
German and French: the customer confirms the change in the language they write in
(kb/language.py tells it; agent/engine/consent.py words the question around it).

Only these words change with the language. What comes from the store stays exactly as it is in
every language: order ids, product and option names, amounts (formatted by `format_cents`),
addresses. The English texts are the summaries as they always read.
"""

from __future__ import annotations

import re
from typing import Any

from kb.language import ENGLISH, in_language

# phrase -> language -> text (str.format fields in braces; every language has the same ones).
WORDS: dict[str, dict[str, str]] = {
    "cancel": {
        "en": "Cancel order {order_id} (reason: {reason}).",
        "es": "Cancelar el pedido {order_id} (motivo: {reason}).",
        "de": "Die Bestellung {order_id} stornieren (Grund: {reason}).",
        "fr": "Annuler la commande {order_id} (motif : {reason}).",
    },
    "refund": {
        "en": " Refund: {refunds}.",
        "es": " Reembolso: {refunds}.",
        "de": " Erstattung: {refunds}.",
        "fr": " Remboursement : {refunds}.",
    },
    "back_to": {
        "en": "{amount} back to your {method}",
        "es": "{amount} de vuelta a su {method}",
        "de": "{amount} zurück auf Ihr Zahlungsmittel {method}",
        "fr": "{amount} sur votre {method}",
    },
    "ship_to": {
        "en": "Ship order {order_id} to {address}. ",
        "es": "Enviar el pedido {order_id} a {address}. ",
        "de": "Die Bestellung {order_id} an {address} senden. ",
        "fr": "Livrer la commande {order_id} à l'adresse {address}. ",
    },
    "default_address": {
        "en": "Make {address} your account's default address (orders already placed keep theirs). ",
        "es": "Hacer de {address} la dirección predeterminada de su cuenta (los pedidos ya "
        "realizados conservan la suya). ",
        "de": "{address} als Standardadresse Ihres Kontos festlegen (bereits aufgegebene "
        "Bestellungen behalten ihre). ",
        "fr": "Faire de {address} l'adresse par défaut de votre compte (les commandes déjà "
        "passées gardent la leur). ",
    },
    "changes": {
        "en": "Changes: {changes}.",
        "es": "Cambios: {changes}.",
        "de": "Änderungen: {changes}.",
        "fr": "Modifications : {changes}.",
    },
    "blank": {"en": "(blank)", "es": "(en blanco)", "de": "(leer)", "fr": "(vide)"},
    "modify_items": {
        "en": "Change order {order_id}: {swaps}. {difference} {once}",
        "es": "Cambiar el pedido {order_id}: {swaps}. {difference} {once}",
        "de": "Die Bestellung {order_id} ändern: {swaps}. {difference} {once}",
        "fr": "Modifier la commande {order_id} : {swaps}. {difference} {once}",
    },
    "exchange": {
        "en": "Exchange from order {order_id}: {swaps}. {difference} {once}",
        "es": "Cambio del pedido {order_id}: {swaps}. {difference} {once}",
        "de": "Umtausch aus der Bestellung {order_id}: {swaps}. {difference} {once}",
        "fr": "Échange de la commande {order_id} : {swaps}. {difference} {once}",
    },
    "once": {
        "en": "This can be done only once for the order.",
        "es": "Esto solo se puede hacer una vez por pedido.",
        "de": "Das ist pro Bestellung nur einmal möglich.",
        "fr": "Cela n'est possible qu'une fois par commande.",
    },
    "swap": {
        "en": "{name} ({old}) for {new} at {price}",
        "es": "{name} ({old}) por {new} a {price}",
        "de": "{name} ({old}) gegen {new} zu {price}",
        "fr": "{name} ({old}) contre {new} à {price}",
    },
    "no_difference": {
        "en": "No price difference.",
        "es": "No hay diferencia de precio.",
        "de": "Es gibt keinen Preisunterschied.",
        "fr": "Pas de différence de prix.",
    },
    "you_pay": {
        "en": "You pay the difference of {amount} with your {method}.",
        "es": "Usted paga la diferencia de {amount} con su {method}.",
        "de": "Sie zahlen den Unterschied von {amount} mit Ihrem Zahlungsmittel {method}.",
        "fr": "Vous payez la différence de {amount} avec votre {method}.",
    },
    "we_refund": {
        "en": "The difference of {amount} is refunded to your {method}.",
        "es": "La diferencia de {amount} se le reembolsa a su {method}.",
        "de": "Der Unterschied von {amount} wird auf Ihr Zahlungsmittel {method} erstattet.",
        "fr": "La différence de {amount} vous est remboursée sur votre {method}.",
    },
    "payment": {
        "en": "Pay order {order_id} ({amount}) with your {method} instead; the {amount} already "
        "paid goes back to your {previous}.",
        "es": "Pagar el pedido {order_id} ({amount}) con su {method} en su lugar; los {amount} "
        "ya pagados vuelven a su {previous}.",
        "de": "Die Bestellung {order_id} ({amount}) stattdessen mit Ihrem Zahlungsmittel "
        "{method} bezahlen; die bereits gezahlten {amount} gehen zurück auf Ihr Zahlungsmittel "
        "{previous}.",
        "fr": "Régler la commande {order_id} ({amount}) avec votre {method} à la place ; les "
        "{amount} déjà payés vous sont remboursés sur votre {previous}.",
    },
    "return": {
        "en": "Return from order {order_id}: {items}. Refund of {refund} to your {method}.",
        "es": "Devolución del pedido {order_id}: {items}. Reembolso de {refund} a su {method}.",
        "de": "Rücksendung aus der Bestellung {order_id}: {items}. Erstattung von {refund} auf "
        "Ihr Zahlungsmittel {method}.",
        "fr": "Retour de la commande {order_id} : {items}. Remboursement de {refund} sur votre "
        "{method}.",
    },
}

# An address's fields, as a change to it names them.
FIELDS: dict[str, dict[str, str]] = {
    "address1": {"en": "street", "es": "calle", "de": "Straße", "fr": "rue"},
    "address2": {
        "en": "second line",
        "es": "segunda línea",
        "de": "zweite Zeile",
        "fr": "deuxième ligne",
    },
    "city": {"en": "city", "es": "ciudad", "de": "Stadt", "fr": "ville"},
    "state": {"en": "state", "es": "estado", "de": "Bundesstaat", "fr": "État"},
    "country": {"en": "country", "es": "país", "de": "Land", "fr": "pays"},
    "zip": {"en": "zip code", "es": "código postal", "de": "Postleitzahl", "fr": "code postal"},
}

# A cancellation's reason (the tool takes exactly one of these, in English).
REASONS: dict[str, dict[str, str]] = {
    "no longer needed": {
        "es": "ya no se necesita",
        "de": "nicht mehr benötigt",
        "fr": "n'est plus nécessaire",
    },
    "ordered by mistake": {
        "es": "pedido por error",
        "de": "versehentlich bestellt",
        "fr": "commandée par erreur",
    },
}

# A payment method as the store words it (agent/store/orders.py `method_label`, and
# order_actions.moved for a gift card whose balance a change moves): the fixed words around
# its brand, digits and amounts. "PayPal" and other names read the same in every language.
_METHODS: list[tuple[re.Pattern[str], dict[str, str]]] = [
    (
        re.compile(r"^(?P<brand>.+) ending in (?P<digits>\S+)$"),
        {
            "es": "{brand} terminada en {digits}",
            "de": "{brand} mit Endziffern {digits}",
            "fr": "{brand} se terminant par {digits}",
        },
    ),
    (
        re.compile(r"^gift card \(balance (?P<balance>\S+), then (?P<after>\S+)\)$"),
        {
            "es": "tarjeta regalo (saldo {balance}, después {after})",
            "de": "Geschenkkarte (Guthaben {balance}, danach {after})",
            "fr": "carte cadeau (solde {balance}, puis {after})",
        },
    ),
    (
        re.compile(r"^gift card \(balance (?P<balance>\S+)\)$"),
        {
            "es": "tarjeta regalo (saldo {balance})",
            "de": "Geschenkkarte (Guthaben {balance})",
            "fr": "carte cadeau (solde {balance})",
        },
    ),
]


def word(key: str, language: str, **fields: Any) -> str:
    """The words `key` in `language` (English for a language they are not written in)."""
    return in_language(WORDS[key], language, **fields)


def field_name(field: str, language: str) -> str:
    """An address field's name ("zip code", "código postal")."""
    names = FIELDS[field]
    return names.get(language, names[ENGLISH])


def reason(value: str, language: str) -> str:
    """A cancellation's reason in `language` (as given when there is no word for it)."""
    return REASONS.get(value, {}).get(language, value)


def method(label: str, language: str) -> str:
    """A payment method's label in `language`: only its fixed words change ("Visa ending in
    7711" -> "Visa terminada en 7711"); a label of another shape stays as it is."""
    if language == ENGLISH:
        return label
    for pattern, texts in _METHODS:
        found = pattern.match(label)
        if found and language in texts:
            return texts[language].format(**found.groupdict())
    return label
