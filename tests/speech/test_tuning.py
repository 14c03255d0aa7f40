"""Per line / per node listening knobs: precedence, and clear errors for bad files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from speech.endpointing import EndpointConfig
from speech.streaming import BargePolicy
from speech.tuning import SpeechTuning, TuningError, load_tuning


def test_node_beats_line_beats_default(tmp_path: Path) -> None:
    path = tmp_path / "tuning.yaml"
    path.write_text(
        "default: {early_end_ms: 180, barge_in: auto}\n"
        "lines:\n  soporte: {end_silence_ms: 900, barge_in: always}\n"
        'nodes:\n  "demo:legal": {barge_in: never, early_end_ms: 0}\n', encoding="utf-8")
    tuning = load_tuning(path)
    assert tuning.for_turn("ventas", "demo", "menu") == (
        EndpointConfig(early_end_ms=180), BargePolicy.AUTO)
    assert tuning.for_turn("soporte", "demo", "menu") == (
        EndpointConfig(early_end_ms=180, end_silence_ms=900), BargePolicy.ALWAYS)
    assert tuning.for_turn("soporte", "demo", "legal") == (
        EndpointConfig(early_end_ms=0, end_silence_ms=900), BargePolicy.NEVER)


def test_no_tuning_means_the_defaults() -> None:
    assert SpeechTuning().for_turn("x", "f", "n") == (EndpointConfig(), BargePolicy.AUTO)
    assert SpeechTuning.from_mapping(None) == SpeechTuning()


@pytest.mark.parametrize(("data", "message"), [
    ({"default": {"early_end_ms": "fast"}}, "default.early_end_ms: expected whole milliseconds"),
    ({"default": {"end_silence_ms": 50}}, "between 100 and 5000"),
    ({"lines": {"a": {"barge_in": "sometimes"}}}, "expected auto, always or never"),
    ({"nodes": {"menu": {"barge_in": "never"}}}, "name nodes as flow_id:node_id"),
    ({"lines": {"a": {"endsilence": 500}}}, "unknown knob 'endsilence'"),
    ({"speed": {}}, "unknown section(s) ['speed']"),
    ([1, 2], "expected a mapping"),
])
def test_bad_tuning_is_refused_with_the_place_and_the_fix(data: object, message: str) -> None:
    with pytest.raises(TuningError, match=re.escape(message)):
        SpeechTuning.from_mapping(data)


def test_unreadable_or_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(TuningError, match="cannot read"):
        load_tuning(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("default: {early_end_ms: [\n", encoding="utf-8")
    with pytest.raises(TuningError, match="not valid YAML"):
        load_tuning(bad)


def test_names_the_flows_do_not_have_are_reported() -> None:
    from speech.tuning import SpeechTuning

    tuning = SpeechTuning.from_mapping({
        "lines": {"support": {"barge_in": "never"}, "suport": {"barge_in": "never"}},
        "nodes": {"demo:main_menu": {"early_end_ms": 200}, "demo:main_manu": {"early_end_ms": 200}},
    })
    assert tuning.unknown_names(["support", "sales"], ["demo:main_menu"]) == [
        "lines.suport: no such line", "nodes.demo:main_manu: no such flow node"]
