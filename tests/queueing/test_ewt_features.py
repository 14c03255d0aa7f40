"""The state estimator's inputs, checked by hand on small queues."""

from __future__ import annotations

import pytest

from queueing.ewt_features import FEATURES, NONE_S, features, pool
from queueing.wait_time import AgentView, History, QueueSnapshot, WaitingCall

NOW = 10_000.0


def _by_name(values: tuple[float, ...]) -> dict[str, float]:
    assert len(values) == len(FEATURES)
    return dict(zip(FEATURES, values))


def _snapshot() -> tuple[QueueSnapshot, WaitingCall]:
    me = WaitingCall("me", "PS", 0, NOW)
    waiting = (
        WaitingCall("old", "PS", 0, NOW - 100),  # ahead, same skill
        WaitingCall("nw", "NW", 0, NOW - 40),  # ahead: NW shares PS's agents
        WaitingCall("vip", "PS", 2, NOW - 20),  # joined later than "nw" but 90 s head start
        WaitingCall("ne", "NE", 0, NOW - 50),  # nobody in PS's pool takes NE
        me,
    )
    agents = (
        AgentView("busy1", frozenset({"PS", "NW"}), busy_since=NOW - 300, serving="PS"),
        AgentView("busy2", frozenset({"PS"}), busy_since=NOW - 20, serving="PS"),
        AgentView("just_freed", frozenset({"PS"}), idle_since=NOW - 10),
        AgentView("freed_earlier", frozenset({"PS", "NW"}), idle_since=NOW - 90),
        AgentView("stock", frozenset({"NE"}), busy_since=NOW - 5, serving="NE"),
    )
    return QueueSnapshot(NOW, waiting, agents), me


def test_queue_ahead_counts_the_pool_and_priority_callers() -> None:
    snap, me = _snapshot()
    f = _by_name(features(snap, me, History(), History(300)))
    assert f["ahead"] == 3  # old, nw, vip -- not ne (other pool)
    assert f["ahead_same_skill"] == 2  # old, vip
    assert f["waiting_others"] == 4
    assert f["head_of_line_s"] == 100
    agents, skills = pool(snap, "PS")
    assert {a.agent_id for a in agents} == {"busy1", "busy2", "just_freed", "freed_earlier"}
    assert skills == {"PS", "NW"}


def test_agents_who_just_freed_up_and_who_is_busy_since_when() -> None:
    snap, me = _snapshot()
    f = _by_name(features(snap, me, History(), History(300)))
    assert (f["agents"], f["busy"]) == (4, 2)
    assert (f["freed_15s"], f["freed_30s"], f["freed_60s"], f["freed_120s"]) == (1, 1, 1, 2)
    assert f["last_freed_s"] == 10
    assert (f["last_started_s"], f["longest_busy_s"]) == (20, 300)


def test_nobody_seen_stands_for_a_long_time() -> None:
    me = WaitingCall("me", "PS", 0, NOW)
    f = _by_name(features(QueueSnapshot(NOW, (me,), ()), me, History(), History(300)))
    assert f["last_freed_s"] == f["last_started_s"] == NONE_S
    assert f["agents"] == f["ahead"] == f["longest_busy_s"] == 0


def test_delay_history_last_wait_asterisk_and_recent_waits() -> None:
    snap, me = _snapshot()
    long, short = History(1800), History(300)
    for h in (long, short):
        h.service_start("PS", 40.0, NOW - 500)
        h.service_start("NW", 80.0, NOW - 30)
        h.service_end("PS", 200.0, NOW - 10)
    f = _by_name(features(snap, me, long, short))
    assert f["last_wait_s"] == 40.0  # PS's own last wait: it is recent enough
    assert f["asterisk_s"] == 10.0  # (3*0 + 40)/4
    # five-minute memory: NW's wait 30 s ago weighs far more than PS's 500 s ago
    assert 40.0 < f["recent_wait_5min_s"] < 80.0
    assert f["ends_5min"] == pytest.approx(1.0, rel=0.05)
    quiet = History(1800)
    quiet.service_start("PS", 40.0, NOW - 1500)
    quiet.service_start("NW", 80.0, NOW - 30)
    # PS quiet for 25 minutes while its pool served NW: the pool's last wait stands in
    assert _by_name(features(snap, me, quiet, short))["last_wait_s"] == 80.0
