"""The callback node reads a keyed-in number back for confirmation, in the caller's
language, and offers the caller's own number first only when it is a valid number.

Scripted calls through the shipped demo flow (the real engine and flow files).
"""

from __future__ import annotations

import pytest

from call_flows.callback_node import spoken_number, valid_number
from call_flows.testing import FlowHarness
from tests.call_flows.demo_wording import KEY, LANGS, T

READBACK = {
    "es": "Le llamaremos al 6 1 2, 3 4, 5 6, 7 8. Pulse 1 o diga sí para confirmar; "
          "pulse 2 o diga no para cambiarlo.",
    "ca": "El trucarem al 6 1 2, 3 4, 5 6, 7 8. Premi 1 o digui sí per confirmar-ho; "
          "premi 2 o digui no per canviar-lo.",
    "en": "We'll call you on 6 1 2, 3 4, 5 6, 7 8. Press 1 or say yes to confirm; "
          "press 2 or say no to change it.",
}
ASK_NUMBER = {"es": "Marque el número al que quiere que le llamemos",
              "ca": "Marqui el número on vol que el truquem",
              "en": "Key in the number you'd like us to call"}


def to_callback(h: FlowHarness, lang: str, caller: str) -> FlowHarness:
    h.call(caller=caller)
    h.press(KEY[lang]).press("*").press("6")  # language, skip the account, "call me back"
    assert h.node == "request_callback"
    return h


@pytest.mark.parametrize("lang", LANGS)
def test_a_keyed_number_is_read_back_and_confirmed(harness: FlowHarness, lang: str) -> None:
    to_callback(harness, lang, "+34600111222").press("2")  # not my own number
    assert ASK_NUMBER[lang] in harness.heard_text()
    harness.press("612345678#")
    assert harness.callback is None and not harness.ended  # nothing asked yet
    assert harness.heard() == [READBACK[lang]]
    assert harness.gather is not None and harness.gather.num_digits == 1
    harness.press("1")
    assert harness.callback is not None and harness.callback.number == "+34612345678"
    assert harness.ended and harness.outcome == "callback"


@pytest.mark.parametrize("lang", LANGS)
def test_an_anonymous_or_invalid_caller_id_is_not_offered(harness: FlowHarness,
                                                          lang: str) -> None:
    # "+34 500 000 000" has a possible length but is no Spanish number: not offered.
    to_callback(harness, lang, "+34500000000")
    heard = harness.heard_text()
    assert "0 0 0 0" not in heard and ASK_NUMBER[lang] in heard  # straight to "key it in"
    harness.press("699000111#").say(T[lang]["yes"], 0.9)
    assert harness.callback is not None and harness.callback.number == "+34699000111"


def test_changing_the_number_after_the_read_back(harness: FlowHarness) -> None:
    to_callback(harness, "es", "anonymous")
    harness.press("612345678#").press("2")  # "no, that's wrong"
    assert ASK_NUMBER["es"] in harness.heard_text() and harness.callback is None
    harness.press("0033612345678#")  # a French mobile, with the international prefix
    assert harness.heard()[0].startswith("Le llamaremos al 0 0 3 3, 6, 1 2, 3 4, 5 6, 7 8.")
    harness.press("1")
    assert harness.callback is not None and harness.callback.number == "+33612345678"


def test_a_read_back_not_understood_is_asked_again_with_the_same_number(
        harness: FlowHarness) -> None:
    to_callback(harness, "es", "anonymous").press("612345678#")
    harness.silence()
    assert harness.heard() == ["Perdone, no le he entendido.", READBACK["es"]]
    harness.say("sí", 0.9)
    assert harness.callback is not None and harness.callback.number == "+34612345678"


def test_numbers_that_are_not_valid_are_refused_not_read_back(harness: FlowHarness) -> None:
    to_callback(harness, "es", "anonymous")
    harness.press("123456789#")  # nine digits, like a Spanish number, but no such number
    assert harness.heard() == ["Perdone, no le he entendido.",
                               ASK_NUMBER["es"] + ", con el prefijo, y pulse almohadilla."]
    assert harness.callback is None
    harness.press("12#")
    assert "Le llamaremos" not in harness.heard_text() and harness.callback is None
    harness.press("612345678#").press("1")
    assert harness.callback is not None and harness.callback.number == "+34612345678"


def test_valid_and_spoken_numbers() -> None:
    assert valid_number("612 34 56 78", "ES") == "+34612345678"
    assert valid_number("+34 500 000 000", "ES") is None  # possible, not valid
    assert valid_number("anonymous", "ES") is None
    assert valid_number("", "ES") is None
    assert valid_number("020 7183 8750", "GB") == "+442071838750"
    assert spoken_number("+34612345678", "ES") == "6 1 2, 3 4, 5 6, 7 8"
    assert spoken_number("+34930001000", "ES") == "9 3 0, 0 0, 1 0, 0 0"
    assert spoken_number("+442071838750", "GB") == "0 2 0, 7 1 8 3, 8 7 5 0"
    assert spoken_number("+442071838750", "ES") == "0 0 4 4, 2 0, 7 1 8 3, 8 7 5 0"
