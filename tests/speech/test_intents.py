"""Intent matching and yes/no on text, in Spanish, Catalan, English (and Korean)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from speech.intents import IntentMatch, match_intent, normalize, parse_yes_no

ES = {
    "billing": ["factura", "facturación", "pagar una factura"],
    "support": ["avería", "no funciona", "soporte técnico"],
    "agent": ["agente", "hablar con una persona", "operador"],
}
CA = {
    "billing": ["factura", "pagar una factura"],
    "support": ["avaria", "no funciona", "suport tècnic"],
    "agent": ["agent", "parlar amb una persona", "operador"],
}
EN = {
    "billing": ["bill", "invoice", "pay my bill"],
    "support": ["broken", "not working", "technical support"],
    "agent": ["agent", "speak to a person", "operator"],
}


@pytest.mark.parametrize(
    ("text", "language", "expected"),
    [
        ("L'oficina de col·lecció, ¿SÍ?", "ca", "l oficina de colleccio si"),
        ("col.lecció", "ca", "colleccio"),
        ("  ÁRBOL   ñandú!!  ", "es", "arbol nandu"),
        ("Don't STOP, it's fine.", "en", "dont stop its fine"),
        ("trenta-quatre", "ca", "trenta quatre"),
        ("안녕하세요, 네!", "ko", "안녕하세요 네"),
        ("", "es", ""),
    ],
)
def test_normalize(text: str, language: str, expected: str) -> None:
    assert normalize(text, language) == expected


@pytest.mark.parametrize(
    ("text", "options", "language", "intent"),
    [
        ("Quiero pagar mi factura", ES, "es", "billing"),
        ("FACTURACIÓN", ES, "es", "billing"),
        ("tengo una fractura", ES, "es", "billing"),  # one-letter ASR slip
        ("mi internet no funciona desde ayer", ES, "es", "support"),
        ("quiero hablar con un agente", ES, "es", "agent"),
        ("una persona por favor", ES, "es", "agent"),
        ("Vull pagar una factura", CA, "ca", "billing"),
        ("tinc una avaria a casa", CA, "ca", "support"),
        ("el router no funciona", CA, "ca", "support"),
        ("voldria parlar amb un agent", CA, "ca", "agent"),
        ("I'd like to pay my bill", EN, "en", "billing"),
        ("my phone is not working", EN, "en", "support"),
        ("operator please", EN, "en", "agent"),
        ("es-ES factura", ES, "es-ES", "billing"),
    ],
)
def test_match_intent_finds_the_intent(text: str, options: dict, language: str, intent: str) -> None:
    match = match_intent(text, options, language)
    assert match.intent == intent
    assert 0.6 <= match.score <= 1.0
    assert match.phrase in options[intent]


def test_exact_phrase_scores_higher_than_fuzzy() -> None:
    exact = match_intent("factura", ES, "es")
    fuzzy = match_intent("fractura", ES, "es")
    assert exact == IntentMatch("billing", 1.0, "factura")
    assert fuzzy.intent == "billing" and fuzzy.score < exact.score


@pytest.mark.parametrize(
    ("text", "options", "language"),
    [
        ("buenos días", ES, "es"),
        ("el tiempo en Barcelona", ES, "es"),
        ("factura o avería", ES, "es"),  # two intents at once: ask again
        ("bon dia", CA, "ca"),
        ("what's the weather like", EN, "en"),
        ("", EN, "en"),
        ("si", ES, "es"),  # short words are never fuzzy-matched
    ],
)
def test_match_intent_gives_none_when_unclear(text: str, options: dict, language: str) -> None:
    match = match_intent(text, options, language)
    assert match.intent is None
    assert match.phrase == ""
    assert match.score < 0.6


def test_match_intent_survives_garbage() -> None:
    assert match_intent("x" * 10_000, ES, "es").intent is None
    assert match_intent("factura " * 2_000, ES, "es").intent == "billing"
    assert match_intent("\x00\udcff\n\t", ES, "zz").intent is None
    assert match_intent("factura", {}, "es").intent is None
    assert match_intent(None, ES, "es").intent is None  # type: ignore[arg-type]
    assert match_intent("factura", {"billing": "factura"}, "es").intent == "billing"  # type: ignore[dict-item]


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300), st.sampled_from(["es", "ca", "en", "ko", "xx", ""]))
def test_match_intent_never_raises(text: str, language: str) -> None:
    match = match_intent(text, ES, language)
    assert 0.0 <= match.score <= 1.0
    assert match.intent in (None, *ES)
    assert parse_yes_no(text, language) in (True, False, None)


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("sí", "es"), ("Si, claro", "es"), ("correcto", "es"), ("sí, no hay problema", "es"),
        ("vale", "es"), ("por supuesto", "es"),
        ("sí", "ca"), ("correcte", "ca"), ("d'acord", "ca"), ("és clar", "ca"),
        ("yes", "en"), ("yeah", "en"), ("that's right", "en"), ("correct", "en"),
        ("네", "ko"),
    ],
)
def test_parse_yes(text: str, language: str) -> None:
    assert parse_yes_no(text, language) is True


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("no", "es"), ("No, no es correcto", "es"), ("para nada", "es"), ("incorrecto", "es"),
        ("no", "ca"), ("no és correcte", "ca"), ("gens", "ca"),
        ("no", "en"), ("nope", "en"), ("not correct", "en"), ("that's wrong", "en"),
        ("아니요", "ko"),
    ],
)
def test_parse_no(text: str, language: str) -> None:
    assert parse_yes_no(text, language) is False


@pytest.mark.parametrize(
    ("text", "language"),
    [("", "es"), ("hmm", "es"), ("sí... no", "es"), ("factura", "es"), ("maybe", "en"),
     ("yes no", "en"), ("x" * 10_000, "ca")],
)
def test_parse_yes_no_unclear(text: str, language: str) -> None:
    assert parse_yes_no(text, language) is None
