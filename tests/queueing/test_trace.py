"""Trace parsing (malformed rows counted, never fatal) and the replay's no-leakage rule."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from queueing.ewt_params import state_params
from queueing.trace import (
    COLUMNS,
    Outcome,
    Staffing,
    TraceCall,
    TraceError,
    parse_lines,
    parse_trace,
    replay,
    shifts,
)
from queueing.wait_time import (
    AsteriskEstimator,
    ErlangCEstimator,
    OnlineEstimator,
    QueueSnapshot,
    StateEstimator,
    WaitEstimate,
    WaitingCall,
)

HEADER = "\t".join(COLUMNS)


def row(call_id: str, *, prio: int = 0, typ: str = "PS", day: str = "990104",
        q: tuple[str, str, int] = ("0:00:00", "0:00:00", 0), outcome: str = "AGENT",
        ser: tuple[str, str, int] = ("0:00:00", "0:00:00", 0), server: str = "NO_SERVER",
        customer: str = "123", vru_time: str = "5") -> str:
    return "\t".join(["AA0101", call_id, customer, str(prio), typ, day, "9:00:00", "9:00:05",
                      vru_time, q[0], q[1], str(q[2]), outcome, ser[0], ser[1], str(ser[2]),
                      server])


def text(*rows: str) -> list[str]:
    return [HEADER + "\r\n"] + [r + "\r\n" for r in rows]


def test_good_row_becomes_absolute_times() -> None:
    rep = parse_lines(text(row("1", prio=2, q=("10:00:00", "10:01:00", 60),
                               ser=("10:01:00", "10:04:00", 180), server="DANA")))
    assert rep.skipped == 0
    (c,) = rep.calls
    base = (date(1999, 1, 4) - date(1970, 1, 1)).days * 86400
    assert c.queued_at == base + 36000 and c.left_queue_at == base + 36060
    assert c.service_start == base + 36060 and c.service_end == base + 36240
    assert (c.priority, c.skill, c.server, c.outcome, c.waited_s) == (2, "PS", "DANA", Outcome.AGENT, 60)
    assert c.scored


def test_malformed_rows_are_counted_not_fatal() -> None:
    rep = parse_lines(text(
        row("1", q=("10:00:00", "10:01:00", 60), ser=("10:01:00", "10:02:00", 60), server="A"),
        "AA0101\t2\tshort row",
        row("3", typ="AA"),
        row("4", q=("10:0x:00", "10:01:00", 60)),
        row("5", q=("10:00:00", "10:01:00", 999)),  # duration contradicts the times
        row("6", outcome="MAYBE"),
        row("7", q=("10:00:00", "10:00:30", 30), outcome="HANG"),
    ))
    assert [c.call_id for c in rep.calls] == ["1", "7"]
    assert rep.skipped == 5
    assert rep.skipped_reasons == {"wrong number of columns": 1, "unknown type": 1,
                                   "bad q_start": 1, "q times contradict q_time": 1,
                                   "unknown outcome": 1}
    assert not rep.calls[1].scored  # abandoned


def test_broken_unused_fields_are_kept_unless_strict() -> None:
    lines = text(row("1", customer="6.02E+11"), row("2", vru_time="-37"), row("3"))
    rep = parse_lines(lines)
    assert len(rep.calls) == 3 and rep.skipped == 0
    assert rep.anomalies == {"customer_id not an integer": 1, "negative vru_time": 1}
    strict = parse_lines(lines, strict=True)
    assert [c.call_id for c in strict.calls] == ["3"] and strict.skipped == 2


def test_service_across_midnight() -> None:
    rep = parse_lines(text(row("1", q=("23:58:00", "23:59:33", 93),
                               ser=("23:59:33", "0:03:40", 247), server="A")))
    (c,) = rep.calls
    assert c.service_end is not None and c.service_start is not None
    assert c.service_end - c.service_start == 247
    assert c.service_start == c.left_queue_at


def test_not_a_trace(tmp_path: Path) -> None:
    bad = tmp_path / "x.tsv"
    bad.write_text("a\tb\n1\t2\n")
    with pytest.raises(TraceError, match="header"):
        parse_trace(bad)
    with pytest.raises(TraceError, match="cannot read"):
        parse_trace(tmp_path / "missing.tsv")


def test_real_trace_counts(trace_path: Path) -> None:
    rep = parse_trace(trace_path)
    assert len(rep.calls) + rep.skipped == 31599
    assert rep.skipped == 2 and rep.skipped_reasons == {"unknown type": 2}
    assert sum(c.scored for c in rep.calls) == 13585  # FIELD-NOTES: served callers who waited
    assert rep.anomalies["customer_id not an integer"] > 0
    assert rep.anomalies["negative vru_time"] > 0


class Snapshots(OnlineEstimator):
    """Keeps every snapshot it is asked about (what the replay lets estimators see)."""

    name = "snapshots"

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[QueueSnapshot, WaitingCall]] = []

    def estimate(self, snapshot: QueueSnapshot, call: WaitingCall) -> WaitEstimate:
        self.seen.append((snapshot, call))
        return WaitEstimate.point(0.0)


def test_replay_shows_queue_ahead_and_agents_on_shift() -> None:
    rep = parse_lines(text(
        row("1", ser=("9:00:00", "9:10:00", 600), server="ANA", typ="NE"),
        row("2", ser=("9:01:00", "9:02:00", 60), server="BEN"),
        row("3", q=("9:05:00", "9:06:00", 60), ser=("9:06:00", "9:07:00", 60), server="BEN"),
        row("4", prio=2, q=("9:05:30", "9:05:50", 20), ser=("9:05:50", "9:06:00", 10), server="CAL"),
        row("5", q=("9:05:40", "9:08:00", 140), outcome="HANG"),
    ))
    rec = Snapshots()
    preds = list(replay(rep.calls, {"s": rec}, on_shift_s=300))
    assert [p.call.call_id for p in preds] == ["3", "4", "5"]
    snap, me = rec.seen[2]  # caller 5 at 9:05:40
    # waiting calls are keyed by file row (call ids repeat across VRUs): calls 3 and 4
    assert sorted(w.call_id for w in snap.waiting if w.call_id != me.call_id) == ["4", "5"]
    ahead = sorted((snap.rank(w), w.priority) for w in snap.waiting if w.call_id != me.call_id)
    assert [p for _, p in ahead] == [2, 0]  # the priority caller is ranked before caller 3
    agents = {a.agent_id: a for a in snap.agents}
    assert set(agents) == {"ANA", "BEN"}  # CAL not seen yet; BEN idle since 9:02, on shift
    assert agents["ANA"].busy_since is not None and agents["ANA"].serving == "NE"
    assert agents["BEN"].busy_since is None and agents["BEN"].skills == frozenset({"PS"})
    assert agents["BEN"].idle_since == rep.calls[1].service_end  # free since 9:02
    assert agents["ANA"].idle_since is None


def _predictions(calls: list[TraceCall]) -> dict[str, dict[str, WaitEstimate]]:
    ests = {"state": StateEstimator(state_params()), "asterisk": AsteriskEstimator(),
            "erlang_c": ErlangCEstimator()}
    return {p.call.call_id + "@" + str(p.call.row): p.estimates for p in replay(calls, ests)}


def test_prediction_does_not_change_when_the_future_changes(trace_path: Path) -> None:
    calls = [c for c in parse_trace(trace_path).calls if c.day.day in (3, 4)]
    scored = [c for c in calls if c.scored and c.day.day == 4]
    target = scored[len(scored) // 2]
    assert target.queued_at is not None
    t0 = target.queued_at
    before = _predictions(calls)
    # the target's own outcome, and every call that joins later, rewritten or dropped
    future = [c for c in calls if (c.reached_at or 0) > t0]
    altered = [c for c in calls if (c.reached_at or 0) <= t0 and c is not target]
    altered.append(TraceCall(target.row, target.call_id, target.skill, target.priority,
                             target.day, Outcome.HANG, t0, t0 + 5000, 5000.0, None, None, None))
    altered += future[::2]  # half the future vanishes
    after = _predictions(altered)
    key = target.call_id + "@" + str(target.row)
    assert after[key] == before[key]
    # ...while the estimates of calls after it do depend on what happened before them
    changed = [k for k in after if k in before and after[k] != before[k]]
    assert changed


def _shift_day() -> list[TraceCall]:
    """BEN: calls 8:00-8:05 and 11:00-11:05 (on shift 8:00-11:05 by the data README);
    callers queue at 7:00 (before his shift), 10:00 (an hour after his last call) and
    12:00 (after his shift)."""
    return parse_lines(text(
        row("1", ser=("8:00:00", "8:05:00", 300), server="BEN"),
        row("2", ser=("11:00:00", "11:05:00", 300), server="BEN"),
        row("3", q=("7:00:00", "7:00:30", 30), outcome="HANG"),
        row("4", q=("10:00:00", "10:00:30", 30), outcome="HANG"),
        row("5", q=("12:00:00", "12:00:30", 30), outcome="HANG"),
    )).calls


def test_shifts_run_from_first_to_last_call_of_the_day() -> None:
    calls = _shift_day()
    assert shifts(calls) == {("BEN", date(1999, 1, 4)): (calls[0].service_start, calls[1].service_end)}


@pytest.mark.parametrize(("staffing", "on_shift_at_10"), [(Staffing.CAUSAL, False),
                                                           (Staffing.PRESENCE, True)])
def test_staffing_decides_who_is_on_shift(staffing: Staffing, on_shift_at_10: bool) -> None:
    rec = Snapshots()
    preds = list(replay(_shift_day(), {"s": rec}, on_shift_s=1200, staffing=staffing))
    assert [p.call.call_id for p in preds] == ["3", "4", "5"]
    seen = [{a.agent_id: a for a in snap.agents} for snap, _ in rec.seen]
    assert seen[0] == {}  # 7:00: not logged in yet, and nothing known about him anyway
    assert seen[2] == {}  # 12:00: his shift ended at 11:05 (causal: 55 min since seen)
    if on_shift_at_10:  # logged in, idle since his call ended at 8:05, skills so far
        ben = seen[1]["BEN"]
        assert ben.busy_since is None and ben.idle_since == _shift_day()[0].service_end
        assert ben.skills == frozenset({"PS"})
    else:  # causal: not seen for 55 minutes, so not counted
        assert seen[1] == {}


def test_presence_replay_does_not_use_the_callers_future(trace_path: Path) -> None:
    """Presence knows who is logged in, nothing else: a caller's estimate is the same
    when every later call is dropped -- except the agents' shift ends, which presence
    reads (a switch knows who is logged in), so those are kept as seen."""
    calls = [c for c in parse_trace(trace_path).calls if c.day.day == 4]
    scored = [c for c in calls if c.scored]
    target = scored[len(scored) // 2]
    assert target.queued_at is not None
    t0 = target.queued_at

    def estimate(subset: list[TraceCall]) -> WaitEstimate:
        ests = {"state": StateEstimator(state_params())}
        return next(p.estimates["state"] for p in replay(subset, ests, staffing=Staffing.PRESENCE)
                    if p.call is target)

    before = estimate(calls)
    keep_shift_ends = {max((c for c in calls if c.server == a and c.service_end is not None),
                           key=lambda c: c.service_end or 0.0).row
                       for a in {c.server for c in calls if c.server}}
    past = [c for c in calls if (c.reached_at or 0) <= t0 or c.row in keep_shift_ends]
    assert len(past) < len(calls) - 100
    assert estimate(past) == before
