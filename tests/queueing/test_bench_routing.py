"""`ivr bench routing` in its quick mode: it runs against Redis configured as the product
(AOF, fsync every second) and prints the contract's JSON line, the table and a verdict per
target. Timings are the benchmark's business, not the tests': none is asserted here."""

from __future__ import annotations

import json
import re
from typing import Any

from click.testing import CliRunner, Result

from ivr.cli import cli

QUICK = ["--agents", "60", "--rounds", "40", "--seconds", "0.3", "--clients", "2"]


def bench(*args: str) -> Result:
    return CliRunner().invoke(cli, ["bench", "routing", *args])


def test_quick_run_prints_the_contract_line_the_table_and_the_verdicts() -> None:
    result = bench("--sizes", "100,10000", *QUICK)
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1  # one JSON line on stdout; the rest goes to stderr
    data: dict[str, Any] = json.loads(lines[0])
    assert {"decisions_per_s", "p50_ms", "p99_ms"} <= set(data)  # CONTRACT.md
    # Measured against the product's Redis configuration, not a bare server.
    assert (data["redis"]["appendonly"], data["redis"]["appendfsync"]) == ("yes", "everysec")
    assert [row["waiting"] for row in data["sizes"]] == [100, 10_000]
    assert data["waiting"] == 10_000 and data["clients"] == 2 and data["agents"] == 60
    for row in data["sizes"]:
        # The sustained phase kept the line at its size: every call taken was replaced.
        assert row["in_line_at_end"] == row["waiting"]
        assert row["decisions_per_s"] > 0 and row["clients"] == 2
        assert 0 < row["ping_p50_ms"] <= row["ping_p99_ms"]
        assert 0 < row["p50_ms"] <= row["p99_ms"]
        assert row["redis_us_free_agent"] > 0 and row["redis_bound_decisions_per_s"] > 0
        assert row["client_cpu_us_per_decision"] > 0 and 0 < row["redis_cpu_share"]
    assert data["p99_ms"] == data["sizes"][1]["p99_ms"]  # the headline is the 10,000 row

    err = result.stderr
    assert "appendonly yes, appendfsync everysec" in err
    assert "10,000 waiting, 60 agents" in err  # progress
    assert re.search(r"^\| 100 \| [\d.]+ / [\d.]+ \|", err, re.MULTILINE)
    assert re.search(r"^\| 10,000 \| [\d.]+ / [\d.]+ \|", err, re.MULTILINE)
    verdicts = re.findall(r"^(PASS|FAIL): (.*)$", err, re.MULTILINE)
    assert [v[1].split(" (measured")[0] for v in verdicts] == [
        "agent free -> next call p99 <= 2 ms at 10,000 waiting",
        ">= 5,000 decisions/s at 10,000 waiting"]
    assert [t["pass"] for t in data["targets"]] == [v[0] == "PASS" for v in verdicts]


def test_targets_say_not_measured_without_the_10000_size() -> None:
    result = bench("--waiting", "300", *QUICK)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["waiting"] == 300 and [r["waiting"] for r in data["sizes"]] == [300]
    assert [t["pass"] for t in data["targets"]] == [None, None]
    assert result.stderr.count("NOT MEASURED (10,000 not among the sizes)") == 2


def test_bad_options_get_a_reason() -> None:
    result = bench("--sizes", "100,lots")
    assert result.exit_code == 2 and "numbers separated by commas" in result.output
    result = bench("--sizes", "0")
    assert result.exit_code == 2 and "1..1,000,000" in result.output
    result = bench("--waiting", "10", "--sizes", "100")
    assert result.exit_code == 2 and "not both" in result.output
    result = bench("--help")
    assert result.exit_code == 0
    for word in ("appendfsync", "--sizes", "--clients", "p99_ms", "PASS/FAIL"):
        assert word in result.output
