"""`ivr bench ewt`: the JSON contract, on a slice of the real trace and on all of it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ivr.cli import cli
from queueing.wait_time import StateParams

CONTRACT = {"calls", "mae_seconds", "asterisk_mae_seconds", "erlang_c_mae_seconds",
            "coverage_80", "skipped", "range_mean_width_s", "per_skill", "busiest_hour",
            "ratio_vs_asterisk", "holdout", "tuning_days", "params"}


@pytest.fixture()
def sliced(trace_path: Path, tmp_path: Path) -> Path:
    """Days 3, 4 (tuning) and 17 (held out) of the real trace, plus two broken rows."""
    with trace_path.open(newline="") as fh:
        lines = fh.read().split("\r\n")
    keep = [lines[0]] + [l for l in lines[1:]
                         if any(f"\t9901{d:02d}\t" in l for d in (3, 4, 17))]
    keep.insert(5, "AA0101\t1\tbroken")
    keep.insert(9, keep[8].replace("\t990103\t", "\t99013x\t"))
    out = tmp_path / "slice.tsv"
    with out.open("w", newline="") as fh:
        fh.write("\r\n".join(keep) + "\r\n")
    return out


def run(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(cli, ["bench", "ewt", *args])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1  # one JSON line on stdout; progress goes to stderr
    data: dict[str, Any] = json.loads(lines[0])
    return data


def test_sliced_trace_prints_the_contract(sliced: Path) -> None:
    data = run("--trace", str(sliced))
    assert CONTRACT <= set(data)
    assert data["skipped"] == 2
    assert data["calls"] == data["holdout"]["calls"] + data["tuning_days"]["calls"] > 1500
    assert 0.0 <= data["coverage_80"] <= 1.0
    assert data["mae_seconds"] > 0 and data["asterisk_mae_seconds"] > 0
    assert data["ratio_vs_asterisk"] == pytest.approx(
        data["mae_seconds"] / data["asterisk_mae_seconds"], abs=2e-3)
    assert set(data["per_skill"]) <= {"PS", "PE", "IN", "NE", "NW", "TT"}
    assert sum(s["calls"] for s in data["per_skill"].values()) == data["calls"]
    assert data["busiest_hour"]["calls"] <= data["calls"]


def test_tune_refits_on_the_tuning_days_only(sliced: Path, tmp_path: Path) -> None:
    default = run("--trace", str(sliced), "--quiet")
    saved = tmp_path / "model.json"
    tuned = run("--trace", str(sliced), "--tune", "--tune-days", "1-15", "--quiet",
                "--save-model", str(saved))
    assert tuned["params"]["tuned_on"] == "this run, 1999-01 days 1-15"
    assert tuned["params"]["features"] == default["params"]["features"]
    assert tuned["params"]["model_sha256"] != default["params"]["model_sha256"]
    assert 0 < tuned["params"]["range_level"] < 0.5
    # Asterisk has nothing to tune: identical whatever the parameters
    assert tuned["asterisk_mae_seconds"] == default["asterisk_mae_seconds"]
    # the saved model is the one the run used, and loads as the estimator's parameters
    model = json.loads(saved.read_text())
    assert model["tuned_on"] == "slice.tsv days 1-15" and model["range_level"] == tuned["params"]["range_level"]
    assert (model["tuned_month"], model["tuned_days"]) == ("1999-01", "1-15")
    params = StateParams.from_dict(model)
    assert tuned["params"]["edges"] == list(params.edges)
    # the held-out day does not move the fit: tuning without it gives the same model
    no_17 = tmp_path / "no17.tsv"
    no_17.write_text("".join(l for l in sliced.read_text().splitlines(keepends=True)
                             if "\t990117\t" not in l))
    again = run("--trace", str(no_17), "--tune", "--quiet")
    assert again["params"]["model_sha256"] == tuned["params"]["model_sha256"]


def test_a_month_the_model_was_not_fitted_on_is_held_out_entirely(sliced: Path,
                                                                  tmp_path: Path) -> None:
    """The same calls moved to February: none of them is on a tuning day any more, so
    every one is scored as held out (the issue's "a month it was not tuned on")."""
    january = run("--trace", str(sliced), "--quiet")
    february = tmp_path / "callcenter-1999-02.tsv"
    february.write_text(sliced.read_text().replace("\t9901", "\t9902"))
    data = run("--trace", str(february), "--quiet")
    assert data["tuning_days"]["calls"] == 0
    assert data["holdout"]["calls"] == data["calls"] == january["calls"]
    assert data["holdout"]["days"] == "all but 1999-01 days 1-15"
    assert data["params"]["tuned_on"] == "callcenter-1999-01.tsv days 1-15"
    # the same waits and the same model: the same scores, now all of them held out
    assert data["mae_seconds"] == january["mae_seconds"]
    assert january["holdout"]["calls"] < january["calls"]


def test_the_committed_split_is_not_changed_without_tune(sliced: Path) -> None:
    result = CliRunner().invoke(cli, ["bench", "ewt", "--trace", str(sliced), "--quiet",
                                      "--tune-days", "1-20"])
    assert result.exit_code == 2 and "needs --tune" in result.output
    same = run("--trace", str(sliced), "--quiet", "--tune-days", "1-15")
    assert same["tuning_days"]["days"] == "1999-01 days 1-15"


def test_save_model_needs_tune(sliced: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["bench", "ewt", "--trace", str(sliced),
                                      "--save-model", str(tmp_path / "m.json")])
    assert result.exit_code == 2 and "--tune" in result.output


def test_tuning_on_too_few_days_is_explained(sliced: Path) -> None:
    result = CliRunner().invoke(cli, ["bench", "ewt", "--trace", str(sliced), "--tune",
                                      "--tune-days", "3", "--quiet"])
    assert result.exit_code == 2 and "too little to fit" in result.output


def test_bad_options_are_explained(sliced: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["bench", "ewt", "--trace", str(sliced), "--tune-days", "40"])
    assert result.exit_code == 2 and "days of the month" in result.output
    junk = tmp_path / "junk.tsv"
    junk.write_text("hello\n")
    result = CliRunner().invoke(cli, ["bench", "ewt", "--trace", str(junk)])
    assert result.exit_code == 1 and "header" in result.output


def test_full_trace(trace_path: Path) -> None:
    data = run("--trace", str(trace_path), "--quiet")
    assert data["calls"] == 13585 and data["skipped"] == 2
    assert "Guedj" in data["credit"]
    held = data["holdout"]
    assert held["calls"] + data["tuning_days"]["calls"] == 13585
    # what the committed parameters reach on days they were not fitted on
    assert held["mae_seconds"] < held["asterisk_mae_seconds"] < held["erlang_c_mae_seconds"]
    assert held["coverage_80"] >= 0.8


def test_staffing_presence_is_measurable_next_to_the_default(sliced: Path) -> None:
    causal = run("--trace", str(sliced), "--quiet", "--tune")
    presence = run("--trace", str(sliced), "--quiet", "--tune", "--staffing", "presence")
    assert causal["params"]["staffing"] == "causal"  # the committed model's staffing
    assert presence["params"]["staffing"] == "presence"
    assert presence["calls"] == causal["calls"]
    # Asterisk ignores agents; Erlang C's servers are the agents on shift, which differ
    assert presence["asterisk_mae_seconds"] == causal["asterisk_mae_seconds"]
    assert presence["erlang_c_mae_seconds"] != causal["erlang_c_mae_seconds"]
    assert presence["params"]["model_sha256"] != causal["params"]["model_sha256"]


def test_the_committed_model_is_not_overwritten_with_another_staffing(sliced: Path) -> None:
    from queueing.ewt_params import MODEL_PATH

    before = MODEL_PATH.read_bytes()
    try:
        result = CliRunner().invoke(cli, ["bench", "ewt", "--trace", str(sliced), "--tune",
                                          "--staffing", "presence", "--quiet",
                                          "--save-model", str(MODEL_PATH)])
        assert result.exit_code == 2 and "STAFFING" in result.output
    finally:
        if MODEL_PATH.read_bytes() != before:  # never leave a broken committed model behind
            MODEL_PATH.write_bytes(before)
    assert MODEL_PATH.read_bytes() == before
