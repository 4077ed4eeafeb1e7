"""Everything the offline model says, in English, Spanish, German and French, and the words it
understands in each: the one place its fixed phrases live (agent/models/offline.py,
offline_plans.py and offline_tasks.py word their replies with `say`).

The offline model cannot translate. It answers in the customer's language, as guessed from
their messages (`language_of`, kb/language.py), with these phrases; what comes from elsewhere
stays as it is (help-centre passages, product and option names) and the phrase around it says
so. The engine's confirmation of a change is worded in the same language by the engine itself
(agent/engine/consent.py, tools/proposal_words.py). A conversation keeps its language through
replies too short to tell ("ja", "2", "#W8770097").
"""

from __future__ import annotations

from typing import Any

from kb.language import (
    ENGLISH,
    LANGUAGES,
    common_words,
    in_language,
    language_of,
    language_of_text,
)

# How a conversation's language is told lives in kb/language.py (the engine words its
# confirmations by it too); it is named here as well, beside the phrases it picks.
__all__ = ["ENGLISH", "LANGUAGES", "language_of", "language_of_text"]

# phrase -> language -> text (str.format fields in braces; every language has the same ones).
PHRASES: dict[str, dict[str, str]] = {
    # -- the label, and what it can do ------------------------------------------------------
    "header": {
        "en": "(Offline mode: answering from our records without the AI assistant.)",
        "es": "(Modo sin conexión: respondo con nuestros registros, sin el asistente de IA.)",
        "de": "(Offline-Modus: Ich antworte anhand unserer Unterlagen, ohne den KI-Assistenten.)",
        "fr": "(Mode hors ligne : je réponds à partir de nos dossiers, sans l'assistant IA.)",
    },
    "help": {
        "en": "I can look up your orders: send your order number (like #W1234567) and, if "
        "you're not verified yet, the email address on your account. Say 'human' to talk to a "
        "person.",
        "es": "Puedo consultar sus pedidos: envíeme el número de pedido (por ejemplo "
        "#W1234567) y, si aún no se ha verificado, la dirección de correo electrónico de su "
        "cuenta. Escriba «humano» para hablar con una persona.",
        "de": "Ich kann Ihre Bestellungen nachschlagen: Senden Sie mir Ihre Bestellnummer (zum "
        "Beispiel #W1234567) und, falls Sie noch nicht bestätigt sind, die E-Mail-Adresse Ihres "
        "Kontos. Schreiben Sie „Mensch“, um mit einer Person zu sprechen.",
        "fr": "Je peux consulter vos commandes : envoyez-moi votre numéro de commande (par "
        "exemple #W1234567) et, si vous n'êtes pas encore vérifié, l'adresse e-mail de votre "
        "compte. Écrivez « humain » pour parler à une personne.",
    },
    "no_images": {
        "en": "I can't look at photos while I'm in offline mode. If something arrived damaged, "
        "say 'human' and a colleague will look at your photo.",
        "es": "No puedo ver fotos mientras estoy en modo sin conexión. Si algo llegó dañado, "
        "escriba «humano» y un compañero revisará su foto.",
        "de": "Im Offline-Modus kann ich mir keine Fotos ansehen. Wenn etwas beschädigt "
        "angekommen ist, schreiben Sie „Mensch“, dann sieht sich ein Kollege Ihr Foto an.",
        "fr": "Je ne peux pas regarder de photos en mode hors ligne. Si un article est arrivé "
        "endommagé, écrivez « humain » et un collègue examinera votre photo.",
    },
    "hello": {
        "en": "Hello! {help}",
        "es": "¡Hola! {help}",
        "de": "Hallo! {help}",
        "fr": "Bonjour ! {help}",
    },
    "welcome": {
        "en": "You're welcome! Is there anything else I can help with?",
        "es": "¡De nada! ¿Puedo ayudarle en algo más?",
        "de": "Gern geschehen! Kann ich Ihnen sonst noch helfen?",
        "fr": "Je vous en prie ! Puis-je vous aider pour autre chose ?",
    },
    "left_as_is": {
        "en": "All right, I'll leave everything as it is. Anything else I can help with?",
        "es": "De acuerdo, lo dejo todo como está. ¿Puedo ayudarle en algo más?",
        "de": "In Ordnung, ich lasse alles, wie es ist. Kann ich Ihnen sonst noch helfen?",
        "fr": "Très bien, je laisse tout en l'état. Puis-je vous aider pour autre chose ?",
    },
    "nothing_to_confirm": {
        "en": "There's nothing waiting for a yes right now. What would you like to do? {help}",
        "es": "Ahora mismo no hay nada pendiente de confirmar. ¿Qué desea hacer? {help}",
        "de": "Gerade wartet nichts auf eine Bestätigung. Was möchten Sie tun? {help}",
        "fr": "Rien n'attend de confirmation pour le moment. Que souhaitez-vous faire ? {help}",
    },
    "person": {
        "en": "If you'd rather, say 'human' and a colleague will take it from here.",
        "es": "Si lo prefiere, escriba «humano» y un compañero se encargará a partir de aquí.",
        "de": "Wenn Ihnen das lieber ist, schreiben Sie „Mensch“, dann übernimmt ein Kollege.",
        "fr": "Si vous préférez, écrivez « humain » et un collègue prendra le relais.",
    },
    "hand_off": {
        "en": "I've passed this conversation to a human colleague (ticket #{ticket}). They'll "
        "reply here as soon as they can.",
        "es": "He pasado esta conversación a un compañero (ticket n.º {ticket}). Le responderá "
        "aquí lo antes posible.",
        "de": "Ich habe dieses Gespräch an einen Kollegen übergeben (Ticket #{ticket}). Er "
        "antwortet Ihnen hier, sobald er kann.",
        "fr": "J'ai transmis cette conversation à un collègue (ticket n° {ticket}). Il vous "
        "répondra ici dès que possible.",
    },
    # -- verification -----------------------------------------------------------------------
    # Each language's `verify_marker` is in every phrase that asks the customer to verify: the
    # dialogue goes on past such a question (offline_dialogue.continues).
    "verify_marker": {
        "en": "verify your identity",
        "es": "verificar su identidad",
        "de": "Ihre Identität prüfen",
        "fr": "vérifier votre identité",
    },
    "verify_first": {
        "en": "Before I can share order details I need to verify your identity: please send "
        "the email address on your account plus the order number or your zip code.",
        "es": "Antes de darle los datos del pedido necesito verificar su identidad: envíeme la "
        "dirección de correo electrónico de su cuenta y el número de pedido o su código postal.",
        "de": "Bevor ich Ihnen Bestelldaten nennen kann, muss ich Ihre Identität prüfen: Bitte "
        "senden Sie mir die E-Mail-Adresse Ihres Kontos und die Bestellnummer oder Ihre "
        "Postleitzahl.",
        "fr": "Avant de vous communiquer les détails de la commande, je dois vérifier votre "
        "identité : envoyez-moi l'adresse e-mail de votre compte ainsi que le numéro de "
        "commande ou votre code postal.",
    },
    "verify_to_change": {
        "en": "I can help with that. First I need to verify your identity: please send the "
        "email address on your account plus the order number or your zip code.",
        "es": "Puedo ayudarle con eso. Primero necesito verificar su identidad: envíeme la "
        "dirección de correo electrónico de su cuenta y el número de pedido o su código postal.",
        "de": "Dabei kann ich Ihnen helfen. Zuerst muss ich Ihre Identität prüfen: Bitte senden "
        "Sie mir die E-Mail-Adresse Ihres Kontos und die Bestellnummer oder Ihre Postleitzahl.",
        "fr": "Je peux vous aider. Je dois d'abord vérifier votre identité : envoyez-moi "
        "l'adresse e-mail de votre compte ainsi que le numéro de commande ou votre code postal.",
    },
    "verified": {
        "en": "Thanks, {name}: you're verified.",
        "es": "Gracias, {name}: su identidad está verificada.",
        "de": "Danke, {name}: Ihre Identität ist bestätigt.",
        "fr": "Merci, {name} : votre identité est vérifiée.",
    },
    "checks_paused": {
        "en": "To keep your account safe, I can't check your details for {wait}, after the "
        "earlier attempts that didn't match. Please double-check your email address and your "
        "order number or zip code, then send them again.",
        "es": "Para proteger su cuenta, no puedo comprobar sus datos durante {wait}, tras los "
        "intentos anteriores que no coincidieron. Revise su dirección de correo electrónico y "
        "su número de pedido o código postal, y vuelva a enviarlos.",
        "de": "Zum Schutz Ihres Kontos kann ich Ihre Angaben nach den vorherigen, nicht "
        "passenden Versuchen {wait} lang nicht prüfen. Bitte kontrollieren Sie Ihre "
        "E-Mail-Adresse und Ihre Bestellnummer oder Postleitzahl und senden Sie sie dann erneut.",
        "fr": "Pour protéger votre compte, je ne peux pas vérifier vos informations pendant "
        "{wait}, après les tentatives précédentes qui ne correspondaient pas. Vérifiez votre "
        "adresse e-mail et votre numéro de commande ou code postal, puis renvoyez-les.",
    },
    "wait_seconds": {
        "en": "another {seconds} seconds",
        "es": "otros {seconds} segundos",
        "de": "weitere {seconds} Sekunden",
        "fr": "encore {seconds} secondes",
    },
    "wait_a_while": {
        "en": "a little while",
        "es": "un rato",
        "de": "eine kleine Weile",
        "fr": "quelques instants",
    },
    "checks_locked": {
        "en": "To keep your account safe, I can't check your details again in this "
        "conversation. Say 'human' and a colleague will help you.",
        "es": "Para proteger su cuenta, no puedo volver a comprobar sus datos en esta "
        "conversación. Escriba «humano» y un compañero le ayudará.",
        "de": "Zum Schutz Ihres Kontos kann ich Ihre Angaben in diesem Gespräch nicht noch "
        "einmal prüfen. Schreiben Sie „Mensch“, dann hilft Ihnen ein Kollege.",
        "fr": "Pour protéger votre compte, je ne peux plus vérifier vos informations dans "
        "cette conversation. Écrivez « humain » et un collègue vous aidera.",
    },
    "type_it_yourself": {
        "en": "Please type the email address on your account and your order number or zip code "
        "yourself, and I'll check them.",
        "es": "Escriba usted mismo la dirección de correo electrónico de su cuenta y su número "
        "de pedido o código postal, y los compruebo.",
        "de": "Bitte tippen Sie die E-Mail-Adresse Ihres Kontos und Ihre Bestellnummer oder "
        "Postleitzahl selbst ein, dann prüfe ich sie.",
        "fr": "Veuillez saisir vous-même l'adresse e-mail de votre compte et votre numéro de "
        "commande ou code postal, et je les vérifierai.",
    },
    "already_verified": {
        "en": "This conversation is already verified for one customer. For another account, "
        "please start a new conversation.",
        "es": "Esta conversación ya está verificada para un cliente. Para otra cuenta, inicie "
        "una conversación nueva.",
        "de": "Dieses Gespräch ist bereits für einen Kunden bestätigt. Für ein anderes Konto "
        "beginnen Sie bitte ein neues Gespräch.",
        "fr": "Cette conversation est déjà vérifiée pour un client. Pour un autre compte, "
        "veuillez commencer une nouvelle conversation.",
    },
    # `message`: the system's own words, in English.
    "not_verified": {
        "en": "I couldn't verify your identity. {message}",
        "es": "No he podido verificar su identidad. Nuestro sistema dice (en inglés): {message}",
        "de": "Ich konnte Ihre Identität nicht bestätigen. Unser System meldet (auf Englisch): "
        "{message}",
        "fr": "Je n'ai pas pu vérifier votre identité. Notre système indique (en anglais) : "
        "{message}",
    },
    "failed": {
        "en": "Sorry, I couldn't complete that: {message} {person}",
        "es": "Lo siento, no he podido hacerlo. Nuestro sistema dice (en inglés): {message} "
        "{person}",
        "de": "Das konnte ich leider nicht erledigen. Unser System meldet (auf Englisch): "
        "{message} {person}",
        "fr": "Désolé, je n'ai pas pu le faire. Notre système indique (en anglais) : {message} "
        "{person}",
    },
    # -- a proposed change: confirmed, declined, timed out ----------------------------------
    # Said with a change the offline model proposes in another language than English, before
    # the engine's confirmation (its summary and how to confirm, in the customer's language).
    "proposal": {
        "en": "",
        "es": "Puedo hacerlo.",
        "de": "Das kann ich erledigen.",
        "fr": "Je peux le faire.",
    },
    "timed_out": {
        "en": "That confirmation timed out, so nothing was changed. Ask again if you like.",
        "es": "El plazo para confirmar ha vencido, así que no se ha cambiado nada. Vuelva a "
        "pedirlo si lo desea.",
        "de": "Die Frist für die Bestätigung ist abgelaufen, daher wurde nichts geändert. "
        "Fragen Sie gern noch einmal.",
        "fr": "Le délai de confirmation a expiré, donc rien n'a été modifié. Redemandez-le si "
        "vous le souhaitez.",
    },
    "unchanged": {
        "en": "All right: I haven't changed anything.",
        "es": "De acuerdo: no he cambiado nada.",
        "de": "In Ordnung: Ich habe nichts geändert.",
        "fr": "Très bien : je n'ai rien modifié.",
    },
    # -- orders -----------------------------------------------------------------------------
    "order": {
        "en": "Order {order_id} is **{status}** (total {total}).",
        "es": "El pedido {order_id} está **{status}** (total {total}).",
        "de": "Die Bestellung {order_id} ist **{status}** (Summe {total}).",
        "fr": "La commande {order_id} est **{status}** (total {total}).",
    },
    "items": {"en": "Items:", "es": "Artículos:", "de": "Artikel:", "fr": "Articles :"},
    "order_cancelled": {
        "en": "It was cancelled, so nothing will ship.",
        "es": "Se canceló, así que no se enviará nada.",
        "de": "Sie wurde storniert, es wird also nichts versandt.",
        "fr": "Elle a été annulée, donc rien ne sera expédié.",
    },
    "tracking": {
        "en": "Tracking number(s): {numbers}.",
        "es": "Número(s) de seguimiento: {numbers}.",
        "de": "Sendungsnummer(n): {numbers}.",
        "fr": "Numéro(s) de suivi : {numbers}.",
    },
    "not_shipped": {
        "en": "It has not shipped yet, so there is no tracking number.",
        "es": "Todavía no se ha enviado, así que aún no tiene número de seguimiento.",
        "de": "Sie wurde noch nicht versandt, daher gibt es noch keine Sendungsnummer.",
        "fr": "Elle n'a pas encore été expédiée, il n'y a donc pas de numéro de suivi.",
    },
    "no_tracking": {
        "en": "There is no tracking number on file for it.",
        "es": "No tenemos ningún número de seguimiento registrado.",
        "de": "Für sie ist keine Sendungsnummer hinterlegt.",
        "fr": "Aucun numéro de suivi n'est enregistré pour elle.",
    },
    "shipping_to": {
        "en": "Shipping to: {address}.",
        "es": "Dirección de envío: {address}.",
        "de": "Lieferadresse: {address}.",
        "fr": "Adresse de livraison : {address}.",
    },
    "no_orders": {
        "en": "I found no orders on your account.",
        "es": "No he encontrado pedidos en su cuenta.",
        "de": "Ich habe in Ihrem Konto keine Bestellungen gefunden.",
        "fr": "Je n'ai trouvé aucune commande sur votre compte.",
    },
    "recent_orders": {
        "en": "Your most recent orders:",
        "es": "Sus pedidos más recientes:",
        "de": "Ihre letzten Bestellungen:",
        "fr": "Vos commandes les plus récentes :",
    },
    "order_line": {
        "en": "{order_id}: {status}, {count} item(s), {total}",
        "es": "{order_id}: {status}, {count} artículo(s), {total}",
        "de": "{order_id}: {status}, {count} Artikel, {total}",
        "fr": "{order_id} : {status}, {count} article(s), {total}",
    },
    "no_methods": {
        "en": "I found no payment methods on your account.",
        "es": "No he encontrado métodos de pago en su cuenta.",
        "de": "Ich habe in Ihrem Konto keine Zahlungsmittel gefunden.",
        "fr": "Je n'ai trouvé aucun moyen de paiement sur votre compte.",
    },
    "your_methods": {
        "en": "Your payment methods:",
        "es": "Sus métodos de pago:",
        "de": "Ihre Zahlungsmittel:",
        "fr": "Vos moyens de paiement :",
    },
    "card": {
        "en": "{brand} ending in {last_four}",
        "es": "{brand} terminada en {last_four}",
        "de": "{brand} mit Endziffern {last_four}",
        "fr": "{brand} se terminant par {last_four}",
    },
    "gift_card": {
        "en": "Gift card (balance {balance})",
        "es": "Tarjeta regalo (saldo {balance})",
        "de": "Geschenkkarte (Guthaben {balance})",
        "fr": "Carte cadeau (solde {balance})",
    },
    # -- products ---------------------------------------------------------------------------
    "no_such_variant": {
        "en": "{product}: we have no variant like that.",
        "es": "{product}: no tenemos ninguna variante así.",
        "de": "{product}: Eine solche Variante haben wir nicht.",
        "fr": "{product} : nous n'avons pas de variante de ce type.",
    },
    "variants_in_stock": {
        "en": "{product}: {available} of {matching} matching variants are in stock.",
        "es": "{product}: {available} de {matching} variantes que coinciden están en stock.",
        "de": "{product}: {available} von {matching} passenden Varianten sind auf Lager.",
        "fr": "{product} : {available} des {matching} variantes correspondantes sont en stock.",
    },
    "in_stock": {"en": "in stock", "es": "en stock", "de": "auf Lager", "fr": "en stock"},
    "out_of_stock": {
        "en": "out of stock",
        "es": "agotado",
        "de": "nicht auf Lager",
        "fr": "en rupture de stock",
    },
    "which_product": {
        "en": "Which one do you mean: {choices}?",
        "es": "¿A cuál se refiere: {choices}?",
        "de": "Welches meinen Sie: {choices}?",
        "fr": "Duquel parlez-vous : {choices} ?",
    },
    "not_in_catalog": {
        "en": "I couldn't find that in our catalog.",
        "es": "No he encontrado eso en nuestro catálogo.",
        "de": "Das habe ich in unserem Katalog nicht gefunden.",
        "fr": "Je n'ai pas trouvé cela dans notre catalogue.",
    },
    "did_you_mean": {
        "en": "Did you mean the {choices}?",
        "es": "¿Quería decir {choices}?",
        "de": "Meinten Sie {choices}?",
        "fr": "Vouliez-vous dire {choices} ?",
    },
    "name_the_product": {
        "en": "Tell me the product's name and I'll look it up.",
        "es": "Dígame el nombre del producto y lo busco.",
        "de": "Nennen Sie mir den Namen des Produkts, dann schaue ich nach.",
        "fr": "Donnez-moi le nom du produit et je le chercherai.",
    },
    "or": {"en": "or", "es": "o", "de": "oder", "fr": "ou"},
    # -- the help centre (written in English) -----------------------------------------------
    "not_found": {
        "en": "I couldn't find anything about that in our help centre.",
        "es": "No he encontrado nada sobre eso en nuestro centro de ayuda.",
        "de": "Dazu habe ich in unserem Hilfe-Center nichts gefunden.",
        "fr": "Je n'ai rien trouvé à ce sujet dans notre centre d'aide.",
    },
    "from_help_centre": {
        "en": "From our help centre [{source}]:",
        "es": "De nuestro centro de ayuda [{source}] (está en inglés, así que le muestro el "
        "texto original):",
        "de": "Aus unserem Hilfe-Center [{source}] (es ist auf Englisch, daher zeige ich Ihnen "
        "den Originaltext):",
        "fr": "Extrait de notre centre d'aide [{source}] (il est en anglais, je vous montre "
        "donc le texte original) :",
    },
    "source": {"en": "Source:", "es": "Fuente:", "de": "Quelle:", "fr": "Source :"},
    "sources": {"en": "Sources:", "es": "Fuentes:", "de": "Quellen:", "fr": "Sources :"},
    # The customer's words are not English and were searched as they are (tools/knowledge.py
    # adds a language_note to such a result).
    "english_only": {
        "en": "I search our help centre in English, the language it is written in, so I may "
        "have missed what you asked in your language. If you can, ask me in English, or say "
        "'human' to talk to a person.",
        "es": "Busco en nuestro centro de ayuda en inglés, el idioma en que está escrito, así "
        "que puede que no haya encontrado lo que preguntó en su idioma. Si puede, pregúnteme "
        "en inglés, o escriba «humano» para hablar con una persona.",
        "de": "Ich durchsuche unser Hilfe-Center auf Englisch, der Sprache, in der es "
        "geschrieben ist, daher habe ich Ihre Frage in Ihrer Sprache vielleicht nicht richtig "
        "gefunden. Fragen Sie mich wenn möglich auf Englisch, oder schreiben Sie „Mensch“, um "
        "mit einer Person zu sprechen.",
        "fr": "Je cherche dans notre centre d'aide en anglais, la langue dans laquelle il est "
        "rédigé : j'ai donc pu passer à côté de ce que vous avez demandé dans votre langue. "
        "Si vous le pouvez, posez-moi la question en anglais, ou écrivez « humain » pour "
        "parler à une personne.",
    },
    # -- the changes: the offline model's questions -----------------------------------------
    # Each `q_*` is in its question (as {q}): an answer is read against the question before it,
    # whatever the language it was asked in. `asks` ends every question.
    "asks": {
        "en": "(reply to go on)",
        "es": "(responda para continuar)",
        "de": "(antworten Sie, um fortzufahren)",
        "fr": "(répondez pour continuer)",
    },
    "q_order": {
        "en": "Which order is it?",
        "es": "¿De qué pedido se trata?",
        "de": "Um welche Bestellung geht es?",
        "fr": "De quelle commande s'agit-il ?",
    },
    "order_not_found": {
        "en": "I couldn't find order {order_id} on your account. {q} {asks}",
        "es": "No he encontrado el pedido {order_id} en su cuenta. {q} {asks}",
        "de": "Ich habe die Bestellung {order_id} in Ihrem Konto nicht gefunden. {q} {asks}",
        "fr": "Je n'ai pas trouvé la commande {order_id} sur votre compte. {q} {asks}",
    },
    "q_reason": {
        "en": "Why would you like to cancel it:",
        "es": "¿Por qué desea cancelarlo?",
        "de": "Warum möchten Sie sie stornieren?",
        "fr": "Pourquoi souhaitez-vous l'annuler ?",
    },
    "ask_reason": {
        "en": "{q} you no longer need it, or you ordered it by mistake? {asks}",
        "es": "{q} ¿Ya no lo necesita, o lo pidió por error? {asks}",
        "de": "{q} Brauchen Sie sie nicht mehr, oder haben Sie sie aus Versehen bestellt? {asks}",
        "fr": "{q} Vous n'en avez plus besoin, ou vous l'avez commandée par erreur ? {asks}",
    },
    "q_items": {
        "en": "Which item(s)",
        "es": "¿Qué artículo(s)",
        "de": "Welche Artikel",
        "fr": "Quel(s) article(s)",
    },
    "ask_items": {
        "en": "{q} of order {order_id} would you like to {verb}?\n{listing}\nReply with the "
        "numbers or names. {asks}",
        "es": "{q} del pedido {order_id} desea {verb}?\n{listing}\nResponda con los números o "
        "los nombres. {asks}",
        "de": "{q} der Bestellung {order_id} möchten Sie {verb}?\n{listing}\nAntworten Sie mit "
        "den Nummern oder Namen. {asks}",
        "fr": "{q} de la commande {order_id} souhaitez-vous {verb} ?\n{listing}\nRépondez avec "
        "les numéros ou les noms. {asks}",
    },
    "verb_return": {"en": "return", "es": "devolver", "de": "zurückgeben", "fr": "retourner"},
    "verb_change": {"en": "change", "es": "cambiar", "de": "ändern", "fr": "modifier"},
    "no_other_option": {
        "en": "The {item} has no other option in stock right now, so I can't change it here. "
        "{person}",
        "es": "El artículo {item} no tiene ahora ninguna otra opción en stock, así que no "
        "puedo cambiarlo aquí. {person}",
        "de": "Für den Artikel {item} ist gerade keine andere Option auf Lager, daher kann ich "
        "ihn hier nicht ändern. {person}",
        "fr": "L'article {item} n'a actuellement aucune autre option en stock, je ne peux donc "
        "pas le modifier ici. {person}",
    },
    "q_variant": {
        "en": "Which one would you like instead",
        "es": "¿Qué opción prefiere en su lugar",
        "de": "Welche Option möchten Sie stattdessen",
        "fr": "Quelle option souhaitez-vous à la place",
    },
    "ask_variant": {
        "en": "{q} for the {item}?\n{listing}\nReply with a number or the options you want. {asks}",
        "es": "{q} para el artículo {item}?\n{listing}\nResponda con un número o las opciones "
        "que desea. {asks}",
        "de": "{q} für den Artikel {item}?\n{listing}\nAntworten Sie mit einer Nummer oder den "
        "gewünschten Optionen. {asks}",
        "fr": "{q} pour l'article {item} ?\n{listing}\nRépondez avec un numéro ou les options "
        "souhaitées. {asks}",
    },
    "no_usable_method": {
        "en": "None of your payment methods can be used for this, so I can't do it here. {person}",
        "es": "Ninguno de sus métodos de pago sirve para esto, así que no puedo hacerlo aquí. "
        "{person}",
        "de": "Keines Ihrer Zahlungsmittel kann dafür verwendet werden, daher kann ich das hier "
        "nicht erledigen. {person}",
        "fr": "Aucun de vos moyens de paiement ne peut servir pour cela, je ne peux donc pas "
        "le faire ici. {person}",
    },
    "q_method": {
        "en": "Which payment method",
        "es": "¿Qué método de pago",
        "de": "Welches Zahlungsmittel",
        "fr": "Quel moyen de paiement",
    },
    "ask_method_refund": {
        "en": "{q} should the refund go to?\n{listing}\n{asks}",
        "es": "{q} debe recibir el reembolso?\n{listing}\n{asks}",
        "de": "{q} soll die Erstattung erhalten?\n{listing}\n{asks}",
        "fr": "{q} doit recevoir le remboursement ?\n{listing}\n{asks}",
    },
    "ask_method_payment": {
        "en": "{q} should pay for the order instead?\n{listing}\n{asks}",
        "es": "{q} debe pagar el pedido en su lugar?\n{listing}\n{asks}",
        "de": "{q} soll die Bestellung stattdessen bezahlen?\n{listing}\n{asks}",
        "fr": "{q} doit régler la commande à la place ?\n{listing}\n{asks}",
    },
    "ask_method_difference": {
        "en": "{q} should pay or receive the price difference?\n{listing}\n{asks}",
        "es": "{q} debe pagar o recibir la diferencia de precio?\n{listing}\n{asks}",
        "de": "{q} soll den Preisunterschied zahlen oder erhalten?\n{listing}\n{asks}",
        "fr": "{q} doit payer ou recevoir la différence de prix ?\n{listing}\n{asks}",
    },
    "q_address": {
        "en": "What is the new address?",
        "es": "¿Cuál es la nueva dirección?",
        "de": "Wie lautet die neue Adresse?",
        "fr": "Quelle est la nouvelle adresse ?",
    },
    "not_an_address": {
        "en": "I couldn't read that as an address.",
        "es": "No he podido leer eso como una dirección.",
        "de": "Das konnte ich nicht als Adresse lesen.",
        "fr": "Je n'ai pas pu lire cela comme une adresse.",
    },
    # The address is written the US way whatever the language: the store's addresses are.
    "ask_address": {
        "en": "{again}{q} Please write it on one line: street, (apartment,) city, state and zip "
        "code, country; for example: 123 Main St, Apt 4, Springfield, IL 62704, USA. {asks}",
        "es": "{again}{q} Escríbala en una sola línea: calle, (apartamento,) ciudad, estado y "
        "código postal, país; por ejemplo: 123 Main St, Apt 4, Springfield, IL 62704, USA. "
        "{asks}",
        "de": "{again}{q} Bitte schreiben Sie sie in eine Zeile: Straße, (Wohnung,) Stadt, "
        "Bundesstaat und Postleitzahl, Land; zum Beispiel: 123 Main St, Apt 4, Springfield, "
        "IL 62704, USA. {asks}",
        "fr": "{again}{q} Écrivez-la sur une seule ligne : rue, (appartement,) ville, État et "
        "code postal, pays ; par exemple : 123 Main St, Apt 4, Springfield, IL 62704, USA. "
        "{asks}",
    },
    "q_which_order": {
        "en": "Which of these orders do you mean?",
        "es": "¿A cuál de estos pedidos se refiere?",
        "de": "Welche dieser Bestellungen meinen Sie?",
        "fr": "De laquelle de ces commandes parlez-vous ?",
    },
    "ask_which_order": {
        "en": "{head}{q}\n{listing}\nReply with a number or the order number. {asks}",
        "es": "{head}{q}\n{listing}\nResponda con un número o el número de pedido. {asks}",
        "de": "{head}{q}\n{listing}\nAntworten Sie mit einer Nummer oder der Bestellnummer. {asks}",
        "fr": "{head}{q}\n{listing}\nRépondez avec un numéro ou le numéro de commande. {asks}",
    },
    "not_in_orders": {
        "en": "I couldn't find a {words} in those orders. ",
        "es": "No he encontrado «{words}» en esos pedidos (los nombres de nuestros productos "
        "están en inglés). ",
        "de": "Ich habe „{words}“ in diesen Bestellungen nicht gefunden (unsere Produktnamen "
        "sind auf Englisch). ",
        "fr": "Je n'ai pas trouvé « {words} » dans ces commandes (les noms de nos produits sont "
        "en anglais). ",
    },
    "no_fitting_order": {
        "en": "I couldn't find an order on your account that can be {done} now. {person}",
        "es": "No he encontrado en su cuenta ningún pedido que se pueda {done} ahora. {person}",
        "de": "Ich habe in Ihrem Konto keine Bestellung gefunden, die sich jetzt {done} lässt. "
        "{person}",
        "fr": "Je n'ai trouvé sur votre compte aucune commande qui puisse être {done} "
        "maintenant. {person}",
    },
    # What can no longer be done to an order ({done} above), by the change asked for.
    "done_cancel": {"en": "cancelled", "es": "cancelar", "de": "stornieren", "fr": "annulée"},
    "done_return": {"en": "returned", "es": "devolver", "de": "zurückgeben", "fr": "retournée"},
    "done_swap": {"en": "changed", "es": "cambiar", "de": "ändern", "fr": "modifiée"},
    "done_drop": {
        "en": "cancelled or returned",
        "es": "cancelar o devolver",
        "de": "stornieren oder zurückgeben",
        "fr": "annulée ou retournée",
    },
    "done_order_address": {
        "en": "sent elsewhere",
        "es": "enviar a otra dirección",
        "de": "an eine andere Adresse senden",
        "fr": "envoyée ailleurs",
    },
    "done_payment": {
        "en": "paid differently",
        "es": "pagar de otra forma",
        "de": "anders bezahlen",
        "fr": "payée autrement",
    },
    "done_user_address": {"en": "changed", "es": "cambiar", "de": "ändern", "fr": "modifiée"},
    "wrong_status": {
        "en": "Order {order_id} is {status}, so I can't do that: {why}.{extra} {person}",
        "es": "El pedido {order_id} está {status}, así que no puedo hacerlo: {why}.{extra} "
        "{person}",
        "de": "Die Bestellung {order_id} ist {status}, daher kann ich das nicht tun: {why}."
        "{extra} {person}",
        "fr": "La commande {order_id} est {status}, je ne peux donc pas le faire : {why}."
        "{extra} {person}",
    },
    "why_cancel": {
        "en": "only a pending order can be cancelled",
        "es": "solo se puede cancelar un pedido pendiente",
        "de": "nur eine ausstehende Bestellung kann storniert werden",
        "fr": "seule une commande en attente peut être annulée",
    },
    "why_return": {
        "en": "only a delivered order can be returned",
        "es": "solo se puede devolver un pedido entregado",
        "de": "nur eine zugestellte Bestellung kann zurückgegeben werden",
        "fr": "seule une commande livrée peut être retournée",
    },
    "why_swap": {
        "en": "items can be changed only on a pending order, or exchanged once it is delivered",
        "es": "los artículos solo se pueden cambiar en un pedido pendiente, o canjear una vez "
        "entregado",
        "de": "Artikel lassen sich nur bei einer ausstehenden Bestellung ändern oder nach der "
        "Zustellung umtauschen",
        "fr": "les articles ne peuvent être modifiés que sur une commande en attente, ou "
        "échangés une fois celle-ci livrée",
    },
    "why_drop": {
        "en": "only a pending order can be cancelled, or a delivered one returned",
        "es": "solo se puede cancelar un pedido pendiente, o devolver uno entregado",
        "de": "nur eine ausstehende Bestellung kann storniert oder eine zugestellte "
        "zurückgegeben werden",
        "fr": "seule une commande en attente peut être annulée, ou une commande livrée retournée",
    },
    "why_order_address": {
        "en": "only a pending order's address can be changed",
        "es": "solo se puede cambiar la dirección de un pedido pendiente",
        "de": "nur bei einer ausstehenden Bestellung lässt sich die Adresse ändern",
        "fr": "seule l'adresse d'une commande en attente peut être modifiée",
    },
    "why_payment": {
        "en": "only a pending order's payment can be changed",
        "es": "solo se puede cambiar el pago de un pedido pendiente",
        "de": "nur bei einer ausstehenden Bestellung lässt sich die Zahlung ändern",
        "fr": "seul le paiement d'une commande en attente peut être modifié",
    },
    "why_other": {
        "en": "it can't be changed",
        "es": "no se puede cambiar",
        "de": "sie kann nicht geändert werden",
        "fr": "elle ne peut pas être modifiée",
    },
    "changed_once": {
        "en": " It has already been changed once, which is all the policy allows.",
        "es": " Ya se modificó una vez, que es lo máximo que permite nuestra política.",
        "de": " Sie wurde bereits einmal geändert, mehr erlauben unsere Richtlinien nicht.",
        "fr": " Elle a déjà été modifiée une fois, ce qui est le maximum autorisé.",
    },
    # -- the changes, done ------------------------------------------------------------------
    "cancelled": {
        "en": "Done: order {order_id} is cancelled.",
        "es": "Hecho: el pedido {order_id} está cancelado.",
        "de": "Erledigt: Die Bestellung {order_id} ist storniert.",
        "fr": "C'est fait : la commande {order_id} est annulée.",
    },
    "refund_line": {
        "en": " Refund: {refunds} (a gift card at once, other methods in 5-7 business days).",
        "es": " Reembolso: {refunds} (a una tarjeta regalo al momento; a otros métodos, en 5-7 "
        "días hábiles).",
        "de": " Erstattung: {refunds} (auf eine Geschenkkarte sofort, auf andere Zahlungsmittel "
        "in 5–7 Werktagen).",
        "fr": " Remboursement : {refunds} (immédiat sur une carte cadeau, sous 5 à 7 jours "
        "ouvrés pour les autres moyens).",
    },
    "refund_to": {
        "en": "{amount} to your {method}",
        "es": "{amount} a su {method}",
        "de": "{amount} auf Ihr Zahlungsmittel {method}",
        "fr": "{amount} sur votre {method}",
    },
    "order_address_changed": {
        "en": "Done: order {order_id} now ships to {address}.",
        "es": "Hecho: el pedido {order_id} se enviará ahora a {address}.",
        "de": "Erledigt: Die Bestellung {order_id} geht jetzt an {address}.",
        "fr": "C'est fait : la commande {order_id} sera désormais livrée à l'adresse {address}.",
    },
    "items_changed": {
        "en": "Done: order {order_id} is updated ({swaps}). {difference}",
        "es": "Hecho: el pedido {order_id} está actualizado ({swaps}). {difference}",
        "de": "Erledigt: Die Bestellung {order_id} ist aktualisiert ({swaps}). {difference}",
        "fr": "C'est fait : la commande {order_id} est mise à jour ({swaps}). {difference}",
    },
    "payment_changed": {
        "en": "Done: order {order_id} is now paid with your {method} ({amount}).",
        "es": "Hecho: el pedido {order_id} se paga ahora con su {method} ({amount}).",
        "de": "Erledigt: Die Bestellung {order_id} wird jetzt mit Ihrem Zahlungsmittel "
        "{method} bezahlt ({amount}).",
        "fr": "C'est fait : la commande {order_id} est désormais réglée avec votre {method} "
        "({amount}).",
    },
    "user_address_changed": {
        "en": "Done: your default address is now {address}.",
        "es": "Hecho: su dirección predeterminada es ahora {address}.",
        "de": "Erledigt: Ihre Standardadresse ist jetzt {address}.",
        "fr": "C'est fait : votre adresse par défaut est désormais {address}.",
    },
    "return_requested": {
        "en": "Done: the return for order {order_id} is requested ({items}). {refund} will be "
        "refunded to your {method}; you'll get an email on how to send the items back.",
        "es": "Hecho: la devolución del pedido {order_id} está solicitada ({items}). Se le "
        "reembolsarán {refund} a su {method}; recibirá un correo electrónico con las "
        "instrucciones para devolver los artículos.",
        "de": "Erledigt: Die Rücksendung für die Bestellung {order_id} ist beantragt ({items}). "
        "{refund} werden auf Ihr Zahlungsmittel {method} erstattet; Sie erhalten eine E-Mail, "
        "wie Sie die Artikel zurückschicken.",
        "fr": "C'est fait : le retour de la commande {order_id} est demandé ({items}). {refund} "
        "vous sera remboursé sur votre {method} ; vous recevrez un e-mail expliquant comment "
        "renvoyer les articles.",
    },
    "exchange_requested": {
        "en": "Done: the exchange for order {order_id} is requested ({swaps}). {difference} "
        "You'll get an email on how to send the items back.",
        "es": "Hecho: el cambio del pedido {order_id} está solicitado ({swaps}). {difference} "
        "Recibirá un correo electrónico con las instrucciones para devolver los artículos.",
        "de": "Erledigt: Der Umtausch für die Bestellung {order_id} ist beantragt ({swaps}). "
        "{difference} Sie erhalten eine E-Mail, wie Sie die Artikel zurückschicken.",
        "fr": "C'est fait : l'échange de la commande {order_id} est demandé ({swaps}). "
        "{difference} Vous recevrez un e-mail expliquant comment renvoyer les articles.",
    },
}

# An order's status, as the customer reads it (the store keeps it in English). Spanish agrees
# with "el pedido", French with "la commande".
STATUSES: dict[str, dict[str, str]] = {
    "pending": {"es": "pendiente", "de": "ausstehend", "fr": "en attente"},
    "pending (item modified)": {
        "es": "pendiente (artículo modificado)",
        "de": "ausstehend (Artikel geändert)",
        "fr": "en attente (article modifié)",
    },
    "processed": {"es": "procesado", "de": "in Bearbeitung", "fr": "en préparation"},
    "shipped": {"es": "enviado", "de": "versandt", "fr": "expédiée"},
    "delivered": {"es": "entregado", "de": "zugestellt", "fr": "livrée"},
    "cancelled": {"es": "cancelado", "de": "storniert", "fr": "annulée"},
    "return requested": {
        "es": "con devolución solicitada",
        "de": "zur Rücksendung angemeldet",
        "fr": "en cours de retour",
    },
    "exchange requested": {
        "es": "con cambio solicitado",
        "de": "zum Umtausch angemeldet",
        "fr": "en cours d'échange",
    },
}


def say(key: str, language: str, **fields: Any) -> str:
    """The phrase `key` in `language` (English for a language it does not know), filled in."""
    return in_language(PHRASES[key], language, **fields)


def status(value: str, language: str) -> str:
    """An order's status in `language` (as stored when there is no word for it)."""
    return STATUSES.get(value, {}).get(language, value)


def said_in_any(text: str, key: str) -> bool:
    """Whether `text` holds the phrase `key` (with no fields) in any language: how an answer
    finds the question it answers."""
    return any(t in text for t in PHRASES[key].values() if t)


# -- what customers say ------------------------------------------------------------------------
# Words the offline model understands in each language, besides English: the rules of
# intent.py, offline.py and offline_tasks.py add them to their English patterns. (Regular
# expression fragments, matched case-insensitively.)
HEARD: dict[str, str] = {
    # a whole short reply that agrees
    "yes": r"s[ií]|vale|claro|de acuerdo|ja|jawohl|genau|oui|d'accord",
    # a whole short reply that declines, or drops what was asked
    "no": r"nein|non|no,? gracias|nein,? danke|non,? merci|olv[ií]d(e|a)lo|d[eé]jelo|"
    r"vergessen sie('?s| es)?|lassen sie('?s| es)?|laissez tomber|tant pis",
    "thanks": r"(muchas )?gracias|danke( sch[oö]n| sehr)?|vielen dank|merci( beaucoup)?",
    "hello": r"hola|buen[oa]s( d[ií]as| tardes| noches)?|hallo|guten (tag|morgen|abend)|"
    r"servus|moin|bonjour|bonsoir|salut",
    "human": r"humano|una persona|un agente|mensch(en)?|mitarbeiter(in)?|kundendienst|"
    r"humain|quelqu'un|un conseiller|une personne",
    "cancel": r"cancel|anul|storn|annul",  # cancelar, anular; stornieren; annuler
    "return": r"devolver|devoluci[oó]n|devuelv|reembols|zur[uü]ckgeben|zur[uü]cksenden|"
    r"zur[uü]ckschicken|r[uü]cksendung|erstattung|retourner|rembourse",
    "by_mistake": r"por error|por equivocaci[oó]n|me equivoqu[eé]|aus versehen|versehentlich|"
    r"irrt[uü]mlich|par erreur|par m[eé]garde|je me suis tromp[eé]",
    "not_needed": r"ya no (lo |la |los |las )?necesito|no (lo |la |los |las )?necesito|"
    r"no (lo |la |los |las )?quiero|nicht mehr|brauche (es |sie |ihn )?nicht|plus besoin|"
    r"pas besoin|ne (le |la |les )?veux plus|n'en veux plus",
    "swap": r"cambiar|cambio|canjear|sustituir|(um|aus)?tauschen|umtausch|ersetzen|"
    r"andere (farbe|gr[oö](ss|ß)e)|[ée]changer|[ée]change|remplacer|autre (couleur|taille)",
    "drop": r"ya no (lo |la |los |las )?quiero|no (lo |la )?quiero|"
    r"(will|m[oö]chte) (es |ihn |sie )?nicht mehr|n'en veux plus|ne (le |la |les )?veux plus",
    "payment": r"m[eé]todo de pago|forma de pago|pagar con|zahlungs(mittel|methode|art)|"
    r"bezahlen mit|moyen de paiement|mode de paiement|payer (avec|par)",
    "address": r"\w*adresse|direcci[oó]n|domicilio|anschrift|me he mudado|umgezogen|"
    r"d[eé]m[eé]nag\w*",
    "shipping_address": r"lieferadresse|direcci[oó]n de (env[ií]o|entrega)|adresse de livraison",
    # words that change something (with an address)
    "change": r"cambiar|cambia|actualizar|corregir|nueva|(ab|ver)?[aä]ndern|aktualisieren|"
    r"korrigieren|neue|falsch|modifier|changer|corriger|nouvelle|mauvaise",
    # a request ("I want", "please") or the customer's own ("my")
    "request": r"quiero|quisiera|me gustar[ií]a|necesito|por favor|puede|podr[ií]a|m[oö]chte|"
    r"will|bitte|k[oö]nnen sie|ich brauche|je voudrais|je veux|pouvez-vous|s'il vous pla[iî]t|"
    r"j'aimerais",
    "my": r"mi|mis|mein|meine|meinen|meinem|mon|ma|mes",
    "instead": r"en su lugar|mejor|en realidad|stattdessen|eigentlich|lieber|plut[oô]t|en fait|"
    r"finalement",
    "all": r"todos|todas|ambos|ambas|alle|beide|tous|toutes|les deux",
    # questions about the rules, not requests to change anything
    "policy": r"pol[ií]tica|c[oó]mo (puedo|funciona|se)|cu[aá]nto (tiempo|tarda|cuesta)|"
    r"richtlinie|wie (lange|kann|funktioniert)|was kostet|politique|comment (puis|fonctionne)|"
    r"combien de temps|est-il possible",
}


# Words of a request in the other languages that name no product: what the customer calls the
# product is what is left (offline_tasks.py; English has its own list there).
_REQUEST_WORDS: dict[str, str] = {
    "es": "quiero quisiera necesito cancelar anular devolver cambiar canjear pedido pedidos "
    "artículo artículos producto productos favor gracias hola ya cosa compré compra otro otra",
    "de": "möchte bitte stornieren zurückgeben umtauschen tauschen ändern bestellung "
    "bestellungen artikel produkt produkte danke hallo mehr gekauft sache andere anderen",
    "fr": "voudrais veux annuler retourner échanger changer commande commandes article articles "
    "produit produits merci bonjour plus acheté chose autre",
}


def request_words(language: str) -> frozenset[str]:
    """The words of a request in `language` that name no product (none for English)."""
    if language == ENGLISH:
        return frozenset()
    return frozenset(_REQUEST_WORDS.get(language, "").split()) | common_words(language)


def heard(key: str) -> str:
    """The other languages' words for `key`, as an alternation to add to a pattern."""
    return HEARD[key]
