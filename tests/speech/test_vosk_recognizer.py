"""Real recognition with the Korean Vosk model on espeak-ng speech."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from ivr.cli import cli
from speech.audio import read_wav, write_wav
from speech.errors import ModelNotFoundError, RecognitionError
from speech.recognizer import REJECT_BELOW
from tests.speech.conftest import IN_GRAMMAR

pytestmark = pytest.mark.slow

OUT_OF_GRAMMAR = ["감사합니다", "오늘 날씨가 좋네요", "안녕하세요", "저는 학생입니다"]


def recognize(recognizer, path: Path, phrases=IN_GRAMMAR):  # type: ignore[no-untyped-def]
    audio = read_wav(path)
    return recognizer.recognize(audio.pcm16(), audio.rate, phrases)


@pytest.mark.parametrize("word", ["예약", "네", "아니요"])
@pytest.mark.parametrize("encoding", ["signed-integer", "u-law"])
def test_in_grammar_phrase_is_recognised(ko_recognizer, synth: Callable[..., Path], word: str,
                                         encoding: str) -> None:
    result = recognize(ko_recognizer, synth(word, 8000, encoding))
    assert result.text == word
    assert result.confidence >= REJECT_BELOW
    assert result.accepted
    assert 0.5 < result.audio_seconds < 3 and result.rtf > 0
    assert [w.word for w in result.words] == [word]


@pytest.mark.parametrize("sentence", OUT_OF_GRAMMAR)
def test_out_of_grammar_speech_is_not_forced_onto_a_phrase(ko_recognizer, synth, sentence: str) -> None:
    result = recognize(ko_recognizer, synth(sentence))
    assert result.text == "" or result.confidence < REJECT_BELOW
    assert not result.accepted


def test_silence_gives_empty_text(ko_recognizer) -> None:
    result = ko_recognizer.recognize(bytes(16000 * 2), 8000, IN_GRAMMAR)
    assert result.text == "" and result.confidence == 0.0
    assert result.reason == "no_speech"
    assert result.audio_seconds == 2.0


def test_noise_is_not_a_phrase(ko_recognizer) -> None:
    rng = np.random.default_rng(7)
    noise = (rng.normal(0, 3000, 8000 * 2)).astype(np.int16)
    result = ko_recognizer.recognize(noise.tobytes(), 8000, IN_GRAMMAR)
    assert not result.accepted


def test_clipped_speech_is_still_recognised_or_rejected_never_wrong(ko_recognizer, synth, tmp_path) -> None:
    audio = read_wav(synth("예약"))
    clipped = np.clip(audio.samples.astype(np.int32) * 8, -32768, 32767).astype(np.int16)
    path = tmp_path / "clipped.wav"
    write_wav(path, clipped, audio.rate)
    assert read_wav(path).clipped_fraction > 0.05
    result = recognize(ko_recognizer, path)
    assert result.text in ("예약", "") and (result.text == "" or result.accepted)


@pytest.mark.parametrize("rate", [16000, 22050, 44100])
def test_other_sample_rates_are_resampled(ko_recognizer, synth, rate: int) -> None:
    result = recognize(ko_recognizer, synth("예약", rate))
    assert result.text == "예약" and result.accepted


def test_free_speech_mode_decodes_with_the_full_model(ko_recognizer, synth) -> None:
    result = recognize(ko_recognizer, synth("네"), phrases=None)
    assert "네" in result.text.split()
    assert 0 < result.confidence <= 1


def test_streaming_in_small_chunks_equals_batch(ko_recognizer, synth) -> None:
    audio = read_wav(synth("아니요", pad_s=0.5))
    stream = ko_recognizer.open_stream(audio.rate, IN_GRAMMAR)
    pcm = audio.pcm16()
    for i in range(0, len(pcm), 321):  # odd sizes: half samples carried over
        stream.feed(pcm[i:i + 321])
    result = stream.finish()
    assert result.text == "아니요"
    with pytest.raises(RecognitionError):
        stream.feed(b"\x00\x00")


def test_model_is_loaded_once_per_process(ko_recognizer) -> None:
    from speech.vosk_recognizer import VoskRecognizer, loaded_models

    again = VoskRecognizer("ko")
    assert again.model is ko_recognizer.model
    assert len([m for m in loaded_models() if m.path == ko_recognizer.model.path]) == 1
    assert not ko_recognizer.model.has_unk  # FIELD-NOTES: this model has no [unk]


def test_unknown_grammar_words_are_dropped(ko_recognizer, synth) -> None:
    result = recognize(ko_recognizer, synth("예약"), phrases=["예약", "zzqx"])
    assert result.text == "예약"
    with pytest.raises(RecognitionError, match="vocabulary"):
        ko_recognizer.open_stream(8000, ["zzqx", "qqq"])


def test_missing_model_names_the_download_command(tmp_path: Path) -> None:
    from speech.vosk_recognizer import VoskRecognizer

    with pytest.raises(ModelNotFoundError, match="ivr models download es"):
        VoskRecognizer("es", env={"IVR_VOSK_MODEL_DIR": str(tmp_path)})


def test_cli_recognize_prints_one_json_line(synth, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("IVR_VOSK_MODEL_DIR", str(tmp_path))
    runner = CliRunner()
    ok = runner.invoke(cli, ["speech", "recognize", str(synth("예약")), "--lang", "ko",
                             "--phrases", "|".join(IN_GRAMMAR)])
    assert ok.exit_code == 0, ok.output
    line = json.loads(ok.stdout.strip())
    assert set(line) == {"text", "confidence", "audio_seconds", "rtf"}
    assert line["text"] == "예약" and line["confidence"] >= 0.5

    oog = runner.invoke(cli, ["speech", "recognize", str(synth("감사합니다")), "--lang", "ko",
                              "--phrases", "|".join(IN_GRAMMAR)])
    line = json.loads(oog.stdout.strip())
    assert line["text"] == "" or line["confidence"] < 0.5

    missing = runner.invoke(cli, ["speech", "recognize", str(synth("예약")), "--lang", "es"])
    assert missing.exit_code == 1 and "ivr models download es" in missing.output

    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio")
    corrupt = runner.invoke(cli, ["speech", "recognize", str(bad), "--lang", "ko"])
    assert corrupt.exit_code == 1 and "not a WAV file" in corrupt.output
