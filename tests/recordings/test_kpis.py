"""KPIs against values computed by hand on a small fixture; the same through SQL and
the `ivr report kpis` command."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from ivr.commands.report import report_group
from recordings.kpis import KpiCall, KpiOptions, compute, funnel, report
from recordings.store import Database


def day(n: int, hour: int = 10) -> datetime:
    return datetime(2025, 3, n, hour, 0, tzinfo=UTC)


# c8 falls after the period: it only counts as a possible repeat call.
FIXTURE = [
    KpiCall("c1", day(3), "served", "support", "support", "A", 10, 100, "+34600000001",
            "billing", "demo", ("main_menu", "support_q"), csat=5, nps=10),
    KpiCall("c2", day(3, 11), "served", "support", "support", "B", 30, 200, "+34600000002",
            "orders", "demo", ("main_menu", "support_q"), csat=3, nps=6),
    KpiCall("c3", day(3, 12), "abandoned", "support", "support", None, None, None,
            "+34600000003", "billing", "demo", ("main_menu", "support_q")),
    KpiCall("c4", day(4), "resolved_ivr", "support", None, None, None, None, "+34600000001",
            "hours", "demo", ("main_menu", "hours_answer"), csat=4),
    KpiCall("c5", day(6), "served", "sales", "sales", "A", 20, 60, "+34600000002", "orders",
            "demo", ("main_menu", "sales_q")),
    KpiCall("c6", day(6, 12), "abandoned", "support", None, None, None, None, "+34600000004",
            None, "demo", ("main_menu",)),
    KpiCall("c7", day(7), "voicemail", "support", None, None, None, None, "+34600000005",
            None, "demo", ("main_menu", "voicemail")),
]
LATER = [KpiCall("c8", day(21), "resolved_ivr", "support", None, None, None, None,
                 "+34600000001", "billing", "demo", ("main_menu", "billing_answer"))]

# Worked out by hand from FIXTURE (see the comments).
EXPECTED_ALL = {
    "calls": 7,
    "csat_pct": 66.7, "csat_avg": 4.0, "csat_n": 3,  # 5, 3, 4: two of three are 4-5
    "nps": 0.0, "nps_n": 2,  # one promoter (10), one detractor (6)
    # handled with a reason: c1, c2, c4, c5; c2 repeated by c5 (same caller, orders, 3 days)
    "fcr_pct": 75.0, "fcr_n": 4, "fcr_pending": 0,
    "aht_s": 120.0,  # (100 + 200 + 60) / 3
    "asa_s": 20.0,  # (10 + 30 + 20) / 3
    "service_level_pct": 50.0,  # c1 (10 s), c5 (20 s) of c1, c2, c3, c5
    "abandon_pct": 25.0,  # c3 of the four that reached a queue
    "containment_pct": 14.3,  # c4 of seven answered calls
    "served": 3, "abandoned": 2, "resolved_ivr": 1,
}


def test_kpis_match_the_hand_computed_values() -> None:
    assert compute(FIXTURE, FIXTURE + LATER) == EXPECTED_ALL


def test_groupings_by_agent_line_queue_and_day() -> None:
    rows = {(r.group, r.key): r.values for r in report(FIXTURE, FIXTURE + LATER)}
    assert rows[("agent", "A")]["aht_s"] == 80.0 and rows[("agent", "A")]["asa_s"] == 15.0
    assert rows[("agent", "B")]["csat_pct"] == 0.0
    assert rows[("line", "sales")]["calls"] == 1
    assert rows[("queue", "support")]["abandon_pct"] == pytest.approx(33.3)
    assert rows[("day", "2025-03-03")]["calls"] == 3
    assert rows[("day", "2025-03-07")]["csat_pct"] is None  # no answers: n/a, not 0


def test_fcr_window_is_configurable_and_open_windows_are_pending() -> None:
    wide = KpiOptions(fcr_window=timedelta(days=30))
    assert compute(FIXTURE, FIXTURE + LATER, wide)["fcr_pct"] == 50.0  # c8 repeats c1 too
    soon = KpiOptions(now=day(8))  # every 7-day window (c1, c2, c4, c5) is still open
    values = compute(FIXTURE, FIXTURE + LATER, soon)
    assert values["fcr_n"] == 0 and values["fcr_pending"] == 4 and values["fcr_pct"] is None


def test_no_data_gives_n_a() -> None:
    values = compute([])
    assert values["calls"] == 0
    assert all(values[k] is None for k in ("csat_pct", "nps", "fcr_pct", "aht_s", "asa_s",
                                           "service_level_pct", "abandon_pct",
                                           "containment_pct"))


def test_drop_off_funnel() -> None:
    steps = {(s.node): (s.reached, s.dropped) for s in funnel(FIXTURE)}
    assert steps["main_menu"] == (7, 1)  # c6 hung up at the menu
    assert steps["support_q"] == (3, 1)  # c3 hung up waiting
    assert funnel(FIXTURE)[0].node == "main_menu"


# ---------------------------------------------------------------------- through SQL + CLI


def file_calls(db: Database, calls: list[KpiCall]) -> None:
    for c in calls:
        db.calls.record_start(c.call_sid, from_number=c.caller, to_number="+34930001000",
                              started_at=c.started_at, line=c.line, flow=c.flow)
        db.calls.record_end(c.call_sid, ended_at=c.started_at + timedelta(minutes=5),
                            outcome=c.outcome, queue=c.queue, queue_wait_s=c.queue_wait_s,
                            agent_id=c.agent_id, handle_time_s=c.handle_time_s,
                            intents=[c.reason] if c.reason else [])
        events = [{"seq": 1000 + i, "at": c.started_at, "kind": "node",
                   "data": {"node": n, "type": "menu"}} for i, n in enumerate(c.path)]
        survey = {k: v for k, v in (("csat", c.csat), ("nps", c.nps)) if v is not None}
        if survey:
            events.append({"seq": 9000, "at": c.started_at, "kind": "survey", "data": survey})
        db.calls.add_events(c.call_sid, events)


@pytest.fixture()
def filed(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("IVR_DATA_DIR", str(data_dir))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("IVR_FCR_WINDOW_DAYS", raising=False)
    db = Database(f"sqlite:///{(data_dir / 'centralita.db').resolve()}")
    file_calls(db, FIXTURE + LATER)
    db.dispose()
    return data_dir


def test_report_command_json_matches_the_hand_computed_values(filed: Path) -> None:
    result = CliRunner().invoke(report_group, ["kpis", "--from", "2025-03-01", "--to",
                                               "2025-03-10", "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    everything = {r["key"]: r for r in data["rows"] if r["group"] == "all"}["all"]
    assert {k: everything[k] for k in EXPECTED_ALL} == EXPECTED_ALL
    funnel_rows = {r["node"]: (r["reached"], r["dropped"]) for r in data["funnel"]}
    assert funnel_rows["main_menu"] == (7, 1) and "billing_answer" not in funnel_rows


def test_report_command_table_and_csv(filed: Path) -> None:
    runner = CliRunner()
    table = runner.invoke(report_group, ["kpis", "--from", "2025-03-01", "--to", "2025-03-10",
                                         "--by", "agent"])
    assert table.exit_code == 0, table.output
    lines = table.stdout.splitlines()
    assert lines[0].split()[:3] == ["group", "key", "calls"]
    assert any(line.split()[:3] == ["all", "all", "7"] for line in lines)
    assert "n/a" in table.stdout and "Drop-off funnel" in table.stdout
    out = runner.invoke(report_group, ["kpis", "--from", "2025-03-01", "--to", "2025-03-10",
                                       "--format", "csv", "--by", "day"])
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert rows[0]["group"] == "all" and rows[0]["aht_s"] == "120.0"
    assert {r["key"] for r in rows[1:]} == {"2025-03-03", "2025-03-04", "2025-03-06",
                                           "2025-03-07"}


def test_report_command_refuses_bad_dates(filed: Path) -> None:
    result = CliRunner().invoke(report_group, ["kpis", "--from", "March", "--to", "2025-03-10"])
    assert result.exit_code == 2 and "YYYY-MM-DD" in result.output
    result = CliRunner().invoke(report_group, ["kpis", "--from", "2025-03-10",
                                               "--to", "2025-03-01"])
    assert result.exit_code == 2 and "before --from" in result.output


def test_kpi_api_gives_the_same_figures_as_the_command(filed: Path, redis_url: str) -> None:
    from ivr.app import create_app
    from ivr.settings import Settings

    client = create_app(Settings(data_dir=filed, redis_url=redis_url, admin_token="boss",
                                 validate_signature=False)).test_client()
    url = "/api/reports/kpis?from=2025-03-01&to=2025-03-10"
    assert client.get(url).status_code == 401
    got = client.get(url, headers={"Authorization": "Bearer boss"})
    assert got.status_code == 200, got.get_json()
    everything = {r["key"]: r for r in got.get_json()["rows"] if r["group"] == "all"}["all"]
    assert {k: everything[k] for k in EXPECTED_ALL} == EXPECTED_ALL
    cli = json.loads(CliRunner().invoke(report_group, ["kpis", "--from", "2025-03-01", "--to",
                                                       "2025-03-10", "--format", "json"]).stdout)
    assert got.get_json()["rows"] == cli["rows"] and got.get_json()["funnel"] == cli["funnel"]
    bad = client.get("/api/reports/kpis?from=March&to=2025-03-10",
                     headers={"Authorization": "Bearer boss"})
    assert bad.status_code == 400 and "YYYY-MM-DD" in bad.get_json()["detail"]
