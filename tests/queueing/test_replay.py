"""A busy hour of the shared bank trace through the real router, in simulated time.

Arrivals, the agents on shift (``server``), service times and abandonment patience
come from the trace; callers who would wait long ask for a callback instead. At the end
every call must be served, abandoned or called back, and nothing left in Redis.
"""

from __future__ import annotations

import csv
import heapq
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import redis

from queueing.model import CallStatus
from queueing.rules import QueueRules, RulesConfig
from queueing.store import QueueStore

CALLBACK_AFTER_S = 30  # callers who would hang up after a minute or more take a callback
CALLBACK_IF_PATIENCE_S = 60


def _secs(text: str) -> int:
    h, m, s = (int(x) for x in text.split(":"))
    return h * 3600 + m * 60 + s


def phone(call_id: str) -> str:
    return "+3460" + "".join(ch for ch in call_id if ch.isdigit())[-7:]


def busiest_hour(path: Path) -> tuple[list[dict[str, Any]], dict[str, set[str]]]:
    rows = []
    with path.open(newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            try:
                queued = int(row["q_time"]) > 0 or row["outcome"] == "AGENT"
                if not queued or row["outcome"] not in ("AGENT", "HANG"):
                    continue
                start = _secs(row["q_start"]) if int(row["q_time"]) > 0 else _secs(row["vru_exit"])
                rows.append({"id": f"{row['vru+line']}-{row['call_id']}", "date": row["date"], "at": start,
                             "type": row["type"], "priority": int(row["priority"]),
                             "outcome": row["outcome"], "q_time": int(row["q_time"]),
                             "service": max(1, int(row["ser_time"])), "server": row["server"]})
            except (KeyError, ValueError):
                continue  # malformed rows exist in the real data
    hours = Counter((r["date"], r["at"] // 3600) for r in rows)
    (date, hour), _ = hours.most_common(1)[0]
    chosen = [r for r in rows if (r["date"], r["at"] // 3600) == (date, hour)]
    skills: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        if r["date"] == date and r["outcome"] == "AGENT" and r["server"] != "NO_SERVER":
            skills[r["server"]].add(r["type"])
    staffed = {r["server"] for r in chosen if r["outcome"] == "AGENT"}
    return chosen, {s: skills[s] for s in staffed}


def test_busy_hour_replay_loses_nothing(redis_client: redis.Redis, trace_path: Path) -> None:
    calls, agents = busiest_hour(trace_path)
    assert len(calls) > 100 and agents
    store = QueueStore(redis_client, rules=RulesConfig(default=QueueRules(
        wrap_up_s=0, head_start_s={2: 30}, resume_window_s=0)))
    t0 = min(c["at"] for c in calls) // 3600 * 3600
    for name, types in agents.items():
        store.upsert_agent(name, {f"type:{t}": 1 for t in types}, now=t0)
        store.set_state(name, "available", now=t0)
    by_id = {c["id"]: c for c in calls}
    events: list[tuple[float, int, str, str, str]] = []
    seq = 0

    def push(at: float, kind: str, a: str, b: str = "") -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(events, (at, seq, kind, a, b))

    def assigned(got: Any, now: float) -> None:
        if got is None:
            return
        if got.is_callback:
            assert store.callback_result(got.call_id, answered=True, now=now)[0] == "bridged"
        else:
            store.accept(got.agent_id, got.call_id, now=now)
        push(now + by_id[got.call_id]["service"], "done", got.agent_id, got.call_id)

    for c in calls:
        push(c["at"], "arrive", c["id"])
        if c["outcome"] == "HANG":
            if c["q_time"] >= CALLBACK_IF_PATIENCE_S:
                push(c["at"] + CALLBACK_AFTER_S, "callback", c["id"])
            else:
                push(c["at"] + c["q_time"], "hangup", c["id"])
    callbacks = 0
    while events:
        now, _, kind, a, b = heapq.heappop(events)
        if kind == "arrive":
            c = by_id[a]
            _, got, _ = store.enqueue(a, "bank", {f"type:{c['type']}": 1},
                                           priority=c["priority"], caller=phone(a), now=now)
            assigned(got, now)
        elif kind == "hangup":
            assigned(store.abandon(a, now=now), now)
        elif kind == "callback" and store.call(a).status == CallStatus.WAITING:  # type: ignore[union-attr]
            store.request_callback(a, phone(a), now=now)
            callbacks += 1
        elif kind == "done":
            assigned(store.complete(a, b, now=now), now)

    final = Counter(store.call(c["id"]).status for c in calls)  # type: ignore[union-attr]
    assert set(final) <= {CallStatus.COMPLETED, CallStatus.ABANDONED}
    assert sum(final.values()) == len(calls)
    assert final[CallStatus.COMPLETED] >= sum(1 for c in calls if c["outcome"] == "AGENT")
    assert callbacks > 0
    called_back = [c["id"] for c in calls if store.call(c["id"]).callback_number]  # type: ignore[union-attr]
    assert len(called_back) == callbacks
    assert all(store.call(i).status == CallStatus.COMPLETED for i in called_back)  # type: ignore[union-attr]
    abandons = {x["call_id"]: x["wait_s"] for x in store.abandons(limit=10_000)}
    assert len(abandons) == final[CallStatus.ABANDONED]
    assert all(w >= 0 for w in abandons.values())
    assert not store.waiting() and not store.active_ids()
    assert all(a.load == 0 and a.state.value == "available" for a in store.agents())
    counters = store.counters()["bank"]
    assert counters["offered"] == len(calls)
    assert counters["answered"] + counters["abandoned"] == len(calls)
