"""Spoken numbers and spelled digits -> digit strings, in es, ca and en."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from speech.numbers import parse_digits


@pytest.mark.parametrize(
    ("text", "language", "digits"),
    [
        ("uno dos tres", "es", "123"),
        ("veintitrés", "es", "23"),
        ("treinta y cuatro", "es", "34"),
        ("doce treinta y cuatro", "es", "1234"),
        ("ciento cinco", "es", "105"),
        ("mil doscientos treinta y cuatro", "es", "1234"),
        ("dos mil veinte", "es", "2020"),
        ("cero cero siete", "es", "007"),
        ("mi cuenta es 12 34 cinco", "es", "12345"),
        ("es el 5-5-5", "es", "555"),
        ("quiero una factura de dos", "es", "2"),  # "una" is an article here
        ("dotze", "ca", "12"),
        ("trenta-quatre", "ca", "34"),
        ("vint-i-u", "ca", "21"),
        ("u dos tres", "ca", "123"),
        ("dos-cents vint-i-dos", "ca", "222"),
        ("zero nou", "ca", "09"),
        ("one two three", "en", "123"),
        ("double five", "en", "55"),
        ("triple seven one", "en", "7771"),
        ("five oh two", "en", "502"),
        ("one hundred and five", "en", "105"),
        ("twelve hundred", "en", "1200"),
        ("nineteen eighty four", "en", "1984"),
        ("twenty twenty", "en", "2020"),
        ("my number is 4 4 two", "en", "442"),
    ],
)
def test_parse_digits(text: str, language: str, digits: str) -> None:
    assert parse_digits(text, language) == digits


@pytest.mark.parametrize(
    ("text", "language"),
    [("", "es"), ("hola buenos días", "es"), ("oh, sorry", "en"), ("bon dia", "ca"),
     ("x" * 10_000, "en")],
)
def test_parse_digits_none_without_numbers(text: str, language: str) -> None:
    assert parse_digits(text, language) is None


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200), st.sampled_from(["es", "ca", "en", "xx"]))
def test_parse_digits_never_raises(text: str, language: str) -> None:
    result = parse_digits(text, language)
    assert result is None or result.isdigit()
