"""The live estimator learns from the router's event stream and caches its snapshot."""

from __future__ import annotations

import pytest

from ivr.queue_adapter import LiveEstimator
from queueing.model import requirements
from queueing.store import QueueStore

BILL = requirements("es", "billing", 1)
SKILLS = {"lang:es": 1, "topic:billing": 3}


def _day(store: QueueStore) -> None:
    """c1 waits 30 s and talks 200 s with agent a; c2 gives up after 60 s."""
    store.upsert_agent("a", SKILLS, now=0)
    store.enqueue("c1", "support", BILL, now=100)
    store.enqueue("c2", "support", BILL, now=110)
    assert store.set_state("a", "available", now=128) is not None  # reserved for c1
    store.accept("a", "c1", now=130)
    store.abandon("c2", now=170)
    store.complete("a", "c1", wrap_up_s=0, now=330)


def test_history_is_fed_from_router_events(store: QueueStore) -> None:
    _day(store)
    live = LiveEstimator(store)
    assert live.sync() >= 5  # enqueued x2, bridged, abandoned, completed (+ agent events)
    h = live.estimator.history
    key = next(iter(h.sums))
    assert key.startswith("support|")
    assert h.last_wait[key] == (30.0, 130.0)  # answered after 30 s
    assert h.holdtime[key] == 7.5  # Asterisk's (3*0 + 30)/4
    assert h.mean({key}, "handle_sum", 330.0, default=0.0) == 200.0  # talked 200 s
    assert h.get(key, "abandons", 170.0) == 1.0
    assert h.get(key, "arrivals", 110.0) > 1.9
    assert h.get(key, "prio_arrivals", 400.0) == 0.0
    assert live.sync() == 0  # nothing new: nothing counted twice
    store.enqueue("vip", "support", BILL, priority=3, now=400)
    assert live.sync() >= 1
    assert h.get(key, "prio_arrivals", 400.0) == 1.0  # priority callers overtake: counted apart


def test_every_process_learns_the_same_history(store: QueueStore) -> None:
    _day(store)
    first, second = LiveEstimator(store), LiveEstimator(store)
    first.sync()
    store.enqueue("c3", "support", BILL, now=400)
    first.sync()
    second.sync()  # started later: reads the whole stream at once
    assert first.estimator.to_dict() == second.estimator.to_dict()


def test_snapshot_is_cached_for_a_second(store: QueueStore) -> None:
    store.upsert_agent("a", SKILLS, now=0)
    store.set_state("a", "available", now=0)
    store.enqueue("busy", "support", BILL, now=1)  # takes agent a
    store.accept("a", "busy", now=2)
    for i in range(4):
        store.enqueue(f"w{i}", "support", BILL, now=10 + i)
    live = LiveEstimator(store, cache_s=1.0)
    last = live.for_call("w3", 20.0)
    assert last is not None and last[1] <= last[0] <= last[2]
    for i in range(3):
        store.abandon(f"w{i}", now=20.2)
    cached = live.for_call("w3", 20.5)  # same snapshot: the three ahead still count...
    assert cached is not None and cached[0] == pytest.approx(last[0], abs=1.0)  # same queue
    fresh = live.for_call("w3", 21.5)  # ...re-read after a second: now first in line
    assert fresh is not None and fresh[0] < last[0]


def test_a_call_that_just_joined_is_found_despite_the_cache(store: QueueStore) -> None:
    store.upsert_agent("a", SKILLS, now=0)
    store.set_state("a", "available", now=0)
    store.enqueue("busy", "support", BILL, now=1)
    store.accept("a", "busy", now=2)
    live = LiveEstimator(store)
    store.enqueue("w0", "support", BILL, now=10)
    assert live.for_call("w0", 10.0) is not None
    store.enqueue("w1", "support", BILL, now=10.2)
    assert live.for_call("w1", 10.3) is not None  # not in the cached snapshot: re-read
    assert live.for_call("nobody", 10.4) is None


def test_no_estimate_when_nobody_can_serve(store: QueueStore) -> None:
    store.enqueue("w0", "support", BILL, now=10)
    live = LiveEstimator(store)
    assert live.for_call("w0", 11.0) is None
    assert live.for_queue("support", 11.0) is None
    store.upsert_agent("a", SKILLS, now=0)
    store.set_state("a", "available", now=12)
    assert store.waiting() == []  # a took w0 at once
    guess = live.for_queue("support", 13.0)
    assert guess is not None and guess[1] <= guess[0] <= guess[2]


def test_logged_in_agents_are_on_shift_and_paused_ones_count_as_idle(store: QueueStore) -> None:
    """The replay's agents on shift, live: a paused agent is logged in but not taking
    calls -- idle on shift, as an agent on a break looks in the trace; offline is absent."""
    for agent in ("a", "b", "c"):
        store.upsert_agent(agent, SKILLS, now=0)
    store.set_state("a", "available", now=0)
    store.enqueue("talking", "support", BILL, now=1)  # takes a
    store.accept("a", "talking", now=2)
    store.set_state("b", "paused", reason="lunch", now=3)  # c stays offline
    store.enqueue("w0", "support", BILL, now=10)
    live = LiveEstimator(store)
    assert live.for_call("w0", 11.0) is not None
    snapshot, keys = live._read(11.0)
    views = {v.agent_id: v for v in snapshot.agents}
    assert set(views) == {"a", "b"}
    assert views["a"].busy_since is not None
    assert views["b"].busy_since is None and views["b"].idle_since is not None
    assert keys["w0"] in views["b"].skills


def test_no_estimate_when_only_paused_agents_could_serve(store: QueueStore) -> None:
    store.upsert_agent("b", SKILLS, now=0)
    store.set_state("b", "paused", reason="lunch", now=1)
    store.enqueue("w0", "support", BILL, now=10)
    live = LiveEstimator(store)
    assert live.for_call("w0", 11.0) is None  # when the break ends is unknown
    assert live.for_queue("support", 11.0) is None
    store.set_state("b", "available", now=12)  # back: takes w0 at once
    assert live.for_queue("support", 13.0) is not None
