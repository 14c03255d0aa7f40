"""What callers of the shipped demo flow hear and say, per language: the flow's own
wording, pinned here so the scripted calls check it word for word."""

from __future__ import annotations

from datetime import UTC, datetime

LANGS = ["es", "ca", "en"]
KEY = {"es": "1", "ca": "2", "en": "3"}
SUNDAY = datetime(2026, 11, 22, 11, 0, tzinfo=UTC)
CHRISTMAS = datetime(2026, 12, 25, 10, 0, tzinfo=UTC)  # a Friday, but a holiday
# What the caller hears and says, per language (the flow's own wording, checked here).
T = {
    "es": {"welcome": "Bienvenido al servicio de atención al cliente de Centralita.",
           "billing": "Le pasamos con el departamento de facturación. Espere un momento, por favor.",
           "agent": "Le pasamos con un agente. Espere un momento, por favor.",
           "heard": "Ha dicho factura. ¿Es correcto? Pulse 1 o diga sí; pulse 2 o diga no.",
           "bye": "Gracias por llamar a Centralita. ¡Que tenga un buen día!",
           "hello": "Hola, Marta Puig.", "closed": "En este momento estamos cerrados.",
           "order": "El estado de su pedido es el siguiente: enviada.",
           "password": "Para restablecer su contraseña", "hours": "Nuestro horario de atención",
           "ending": "termina en 1 2 2 2",
           "followup": "¿Nos llama por the broken router?",
           "invalid": "Ese número no es válido.",
           "yes": "sí", "no": "no", "bill": "quiero consultar una factura", "urgent": "es urgente",
           "word_bill": "factura", "lang": "español", "unsure": "quizás",
           "survey": "Antes de colgar, ¿nos ayuda a mejorar respondiendo a dos preguntas "
                     "breves? Pulse 1 o diga sí; pulse 2 o diga no.",
           "csat": "Del 1 al 5, siendo 5 muy satisfecho, ¿cómo valora la atención recibida "
                   "hoy? Pulse o diga un número del 1 al 5.",
           "reprompt": "Perdone, no le he entendido.",
           "thanks": "Muchas gracias por sus respuestas. ¡Hasta pronto!",
           "no_survey": "De acuerdo. Gracias por llamar. ¡Hasta pronto!",
           "five": "cinco", "nine": "nueve"},
    "ca": {"welcome": "Benvingut al servei d'atenció al client de Centralita.",
           "billing": "El passem amb el departament de facturació. Esperi un moment, si us plau.",
           "agent": "El passem amb un agent. Esperi un moment, si us plau.",
           "heard": "Ha dit factura. És correcte? Premi 1 o digui sí; premi 2 o digui no.",
           "bye": "Gràcies per trucar a Centralita. Que tingui un bon dia!",
           "hello": "Hola, Marta Puig.", "closed": "Ara mateix estem tancats.",
           "order": "L'estat de la seva comanda és el següent: enviada.",
           "password": "Per restablir la contrasenya", "hours": "El nostre horari d'atenció",
           "ending": "acaba en 1 2 2 2",
           "followup": "Ens truca per the broken router?",
           "invalid": "Aquest número no és vàlid.",
           "yes": "sí", "no": "no", "bill": "tinc un dubte amb una factura", "urgent": "és urgent",
           "word_bill": "factura", "lang": "català", "unsure": "potser",
           "survey": "Abans de penjar, ens ajuda a millorar responent dues preguntes breus? "
                     "Premi 1 o digui sí; premi 2 o digui no.",
           "csat": "De l'1 al 5, on 5 és molt satisfet, com valora l'atenció rebuda avui? "
                   "Premi o digui un número de l'1 al 5.",
           "reprompt": "Perdoni, no l'he entès.",
           "thanks": "Moltes gràcies per les seves respostes. Fins aviat!",
           "no_survey": "D'acord. Gràcies per trucar. Fins aviat!",
           "five": "cinc", "nine": "nou"},
    "en": {"welcome": "Welcome to Centralita customer service.",
           "billing": "I'll put you through to our billing team. Please hold.",
           "agent": "I'll put you through to an agent. Please hold.",
           "heard": "You said billing. Is that right? Press 1 or say yes; press 2 or say no.",
           "bye": "Thank you for calling Centralita. Have a good day!",
           "hello": "Hello, Marta Puig.", "closed": "We're closed at the moment.",
           "order": "Here is the status of your order: enviada.",
           "password": "To reset your password", "hours": "We're open Monday to Friday",
           "ending": "ending 1 2 2 2",
           "followup": "Are you calling about the broken router?",
           "invalid": "That number isn't valid.",
           "yes": "yes", "no": "no", "bill": "i have a question about my bill",
           "urgent": "it's urgent", "word_bill": "billing", "lang": "English",
           "unsure": "maybe",
           "survey": "Before you go, would you help us improve by answering two quick "
                     "questions? Press 1 or say yes; press 2 or say no.",
           "csat": "On a scale of 1 to 5, where 5 is very satisfied, how would you rate the "
                   "service you received today? Press or say a number from 1 to 5.",
           "reprompt": "Sorry, I didn't catch that.",
           "thanks": "Thank you very much for your answers. Goodbye!",
           "no_survey": "No problem. Thank you for calling. Goodbye!",
           "five": "five", "nine": "nine"},
}
CALLER = "+34600111222"
