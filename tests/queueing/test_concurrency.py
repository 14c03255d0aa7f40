"""Several OS processes route against the same Redis at once: no double assignment."""

from __future__ import annotations

import multiprocessing
import time
from collections import Counter, defaultdict

import redis

from queueing.model import requirements
from queueing.store import QueueStore

CALLS = 300
AGENTS = 24
SKILLS = [requirements(lang, "billing", 1) for lang in ("es", "ca", "en")]


def _callers(url: str, first: int, step: int) -> None:
    store = QueueStore(redis.Redis.from_url(url, decode_responses=True))
    for i in range(first, CALLS, step):
        store.enqueue(f"c{i}", "support", SKILLS[i % 3], priority=i % 2)


def _agents(url: str, ids: list[str], deadline: float) -> None:
    client = redis.Redis.from_url(url, decode_responses=True)
    store = QueueStore(client)
    for aid in ids:
        store.set_state(aid, "available")
    while time.time() < deadline and client.llen("t:done") < CALLS:
        for aid in ids:
            agent = store.agent(aid)
            assert agent is not None
            for cid in agent.calls:
                store.accept(aid, cid)
                store.complete(aid, cid, wrap_up_s=0)
                client.rpush("t:done", f"{cid} {aid}")


def test_processes_never_double_assign(redis_url: str, redis_client: redis.Redis) -> None:
    store = QueueStore(redis_client)
    for n in range(AGENTS):
        skills = {"topic:billing": 2, f"lang:{('es', 'ca', 'en')[n % 3]}": 1}
        if n % 4 == 0:
            skills["lang:es"] = 1
        store.upsert_agent(f"a{n}", skills, capacity=2 if n % 6 == 0 else 1)
    ctx = multiprocessing.get_context("spawn")
    deadline = time.time() + 60
    procs = [ctx.Process(target=_callers, args=(redis_url, k, 3)) for k in range(3)]
    procs += [ctx.Process(target=_agents, args=(redis_url, [f"a{n}" for n in range(k, AGENTS, 3)],
                                                deadline)) for k in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=90)
        assert p.exitcode == 0

    done = redis_client.lrange("t:done", 0, -1)
    calls = Counter(item.split()[0] for item in done)
    assert len(calls) == CALLS and max(calls.values()) == 1  # each served exactly once
    # Redis ran every decision in one order: replay the router's own events
    load: dict[str, int] = defaultdict(int)
    peak: dict[str, int] = defaultdict(int)
    reserved = Counter()
    for _, fields in redis_client.xrange("q:events"):
        if fields["type"] == "reserved":
            reserved[fields["call"]] += 1
            load[fields["agent"]] += 1
            peak[fields["agent"]] = max(peak[fields["agent"]], load[fields["agent"]])
        elif fields["type"] == "completed":
            load[fields["agent"]] -= 1
    assert sum(reserved.values()) == CALLS and max(reserved.values()) == 1
    for aid, most in peak.items():
        assert most <= store.agent(aid).capacity  # type: ignore[union-attr]
    assert not store.waiting() and not store.active_ids()
