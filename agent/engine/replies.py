"""The engine's own words to the customer (never the model's), in the language of the
customer's own messages (kb/language.py): English, Spanish, German or French. The question
that shows a proposed change is agent/engine/consent.py's; these are the rest."""

from __future__ import annotations

from typing import Any

from kb.language import in_language

# key -> language -> text (str.format fields in braces; every language has the same ones).
REPLIES: dict[str, dict[str, str]] = {
    # The model declined to answer (stop_reason "refusal").
    "refusal": {
        "en": "I'm sorry, I can't help with that. I can help with your orders, our policies and "
        "products, or connect you with a member of our team.",
        "es": "Lo siento, no puedo ayudarle con eso. Puedo ayudarle con sus pedidos, nuestras "
        "políticas y productos, o ponerle en contacto con un miembro de nuestro equipo.",
        "de": "Es tut mir leid, dabei kann ich nicht helfen. Ich helfe Ihnen gern bei Ihren "
        "Bestellungen, unseren Richtlinien und Produkten oder verbinde Sie mit einem Mitglied "
        "unseres Teams.",
        "fr": "Désolé, je ne peux pas vous aider sur ce point. Je peux vous aider pour vos "
        "commandes, nos conditions et nos produits, ou vous mettre en relation avec un membre de "
        "notre équipe.",
    },
    # The model ended its turn without a word.
    "empty": {
        "en": "Is there anything else I can help you with?",
        "es": "¿Puedo ayudarle en algo más?",
        "de": "Kann ich Ihnen sonst noch helfen?",
        "fr": "Puis-je vous aider pour autre chose ?",
    },
    # The answer ran out of room, after the part written.
    "cut_short": {
        "en": "(My answer was cut short. Ask me to continue if you need the rest.)",
        "es": "(Mi respuesta quedó cortada. Pídame que continúe si necesita el resto.)",
        "de": "(Meine Antwort wurde abgeschnitten. Bitten Sie mich weiterzumachen, wenn Sie den "
        "Rest brauchen.)",
        "fr": "(Ma réponse a été coupée. Demandez-moi de continuer si vous avez besoin de la "
        "suite.)",
    },
    # The turn hit its tool-round cap: a person takes over.
    "cap": {
        "en": "This is taking more steps than I can handle on my own, so I've passed your "
        "conversation to a colleague (ticket #{ticket}). They'll reply here.",
        "es": "Esto requiere más pasos de los que puedo dar por mi cuenta, así que he pasado su "
        "conversación a un compañero (ticket n.º {ticket}). Le responderá aquí.",
        "de": "Das erfordert mehr Schritte, als ich allein erledigen kann, daher habe ich Ihr "
        "Gespräch an einen Kollegen übergeben (Ticket #{ticket}). Er antwortet Ihnen hier.",
        "fr": "Cela demande plus d'étapes que je ne peux en gérer seul, j'ai donc transmis votre "
        "conversation à un collègue (ticket n° {ticket}). Il vous répondra ici.",
    },
}


def reply(key: str, language: str, **fields: Any) -> str:
    """The engine's words `key` in `language` (English for one they are not written in)."""
    return in_language(REPLIES[key], language, **fields)
