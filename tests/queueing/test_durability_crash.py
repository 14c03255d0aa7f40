"""A redis-server killed with SIGKILL, configured exactly as the product runs it.

The server is :class:`ivr.embedded.EmbeddedRedis` (``appendonly yes``, ``appendfsync
everysec``, no RDB snapshots), so what comes back after the crash can only come from
the AOF. The router is filled with waiting calls in two queues (priorities, a head
start), a callback that keeps its place, and agents in every state; after the AOF has
been fsynced, the server is killed, restarted on the same directory, and the whole
state -- line order, positions, agents' states and timers, the callback -- is compared,
router view and raw keyspace both. The restarted router then carries on from it.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from ivr.embedded import EmbeddedRedis
from queueing.model import AgentState, CallStatus, requirements
from queueing.rules import QueueRules, RulesConfig
from queueing.store import QueueStore

RULES = RulesConfig(default=QueueRules(reservation_timeout_s=600, wrap_up_s=120,
                                       head_start_s={2: 30}, resume_window_s=300))
NOW = 10_000.0


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    embedded = EmbeddedRedis(tmp_path)
    embedded.start()
    yield embedded
    embedded.stop()


def _client(server: EmbeddedRedis) -> redis.Redis:
    return redis.Redis(unix_socket_path=str(server.socket), decode_responses=True)


def _fill(store: QueueStore) -> None:
    es_billing = requirements("es", "billing", 2)
    for agent, skills in {"ring": {"lang:es": 1, "topic:billing": 3},
                          "busy": {"lang:es": 1, "topic:billing": 3},
                          "wrap": {"lang:es": 1, "topic:billing": 3},
                          "idle": {"lang:fr": 1, "topic:tech": 2},
                          "break": {"lang:es": 1, "topic:billing": 5},
                          "home": {"lang:ca": 1}}.items():
        store.upsert_agent(agent, skills, now=NOW)
    calls = [("b1", "billing", es_billing, 0, NOW - 300), ("b2", "billing", es_billing, 0, NOW - 250),
             ("b3", "billing", es_billing, 2, NOW - 20), ("b4", "billing", es_billing, 1, NOW - 200),
             ("b5", "billing", es_billing, 0, NOW - 100), ("b6", "billing", es_billing, 0, NOW - 90),
             ("b7", "billing", es_billing, 0, NOW - 80), ("cb", "billing", es_billing, 0, NOW - 150),
             ("g1", "general", requirements("ca", None, 1), 0, NOW - 60),
             ("g2", "general", requirements("ca", None, 1), 1, NOW - 30)]
    for cid, queue, needs, priority, entered in calls:
        store.enqueue(cid, queue, needs, priority=priority, caller=f"+3460000{cid}",
                      entered_at=entered, now=NOW)
    store.request_callback("cb", "+34600000999", now=NOW + 1)
    # Three agents take the three best calls and end up ringing, talking, wrapping up.
    taken = {}
    for agent in ("wrap", "busy", "ring"):
        got = store.set_state(agent, AgentState.AVAILABLE, now=NOW + 2)
        assert got is not None, agent
        taken[agent] = got.call_id
    store.accept("busy", taken["busy"], now=NOW + 3)
    store.accept("wrap", taken["wrap"], now=NOW + 3)
    store.complete("wrap", taken["wrap"], now=NOW + 4)
    assert store.set_state("idle", AgentState.AVAILABLE, now=NOW + 5) is None  # nothing for fr
    store.set_state("break", AgentState.PAUSED, reason="lunch", now=NOW + 5)


def _router_view(store: QueueStore) -> dict[str, Any]:
    ids = sorted(store.active_ids())
    return {
        "lines": {q: [c.call_id for c in store.waiting(q)] for q in ("billing", "general")},
        "positions": {c.call_id: store.position(c.call_id, now=NOW + 10)
                      for c in store.waiting()},
        "hold": {cid: store.hold_info(cid, now=NOW + 10) for cid in ids},
        "calls": store.calls(ids),
        "agents": store.agents(),
        "heads": store.line_heads(),
    }


def _in_order(positions: dict[str, int]) -> list[str]:
    """Billing's line then general's, each by position (1 = next)."""
    return sorted(positions, key=lambda cid: (cid[0] != "b" and cid != "cb", positions[cid]))


def _keyspace(client: redis.Redis) -> dict[str, Any]:
    """Every key's type, content and whether it expires (TTLs tick, so not their value)."""
    out: dict[str, Any] = {}
    for key in sorted(client.scan_iter(count=1000)):
        kind = client.type(key)
        read = {"string": client.get, "hash": client.hgetall, "set": client.smembers,
                "list": lambda k: client.lrange(k, 0, -1),
                "zset": lambda k: client.zrange(k, 0, -1, withscores=True),
                "stream": lambda k: client.xrange(k)}[kind]
        out[key] = (kind, read(key), client.ttl(key) > 0)
    return out


def _fsynced(client: redis.Redis) -> None:
    """Wait until the AOF is on disk: everysec fsyncs in a background thread once a second
    (when ``unixtime > last fsync``), so 1.5 s after the last write one has been issued;
    then wait for it to finish (no fsync pending, nothing left in the AOF buffer)."""
    time.sleep(1.5)
    deadline = time.monotonic() + 10
    while True:
        info = client.info("persistence")
        if info["aof_pending_bio_fsync"] == 0 and info["aof_buffer_length"] == 0:
            return
        assert time.monotonic() < deadline, f"AOF never fsynced: {info}"
        time.sleep(0.05)


def test_kill_9_with_everysec_loses_nothing_fsynced(server: EmbeddedRedis, tmp_path: Path) -> None:
    client = _client(server)
    conf = {**client.config_get("appendonly"), **client.config_get("appendfsync"),
            **client.config_get("save")}
    assert conf == {"appendonly": "yes", "appendfsync": "everysec", "save": ""}  # the product's
    store = QueueStore(client, rules=RULES)
    _fill(store)
    before = _router_view(store)
    raw_before = _keyspace(client)
    # What we filled is what we compare: the three states and the callback are there.
    agents = {a.agent_id: a for a in before["agents"]}
    assert {a: agents[a].state for a in agents} == {
        "ring": AgentState.RESERVED, "busy": AgentState.BUSY, "wrap": AgentState.WRAP_UP,
        "idle": AgentState.AVAILABLE, "break": AgentState.PAUSED, "home": AgentState.OFFLINE}
    assert agents["break"].pause_reason == "lunch"
    # The best calls went first (priority 2, then 1, then the longest wait) ...
    assert (agents["wrap"].wrap_up_until, agents["busy"].calls, agents["ring"].calls) == (
        NOW + 4 + 120, ("b4",), ("b1",))
    # ... and the rest wait in order, the callback keeping its place.
    assert _in_order(before["positions"]) == ["b2", "cb", "b5", "b6", "b7", "g2", "g1"]
    assert next(c for c in before["calls"] if c.call_id == "cb").status == \
        CallStatus.CALLBACK_PENDING
    _fsynced(client)
    client.close()

    assert server.process is not None
    pid = server.process.pid
    server.process.send_signal(signal.SIGKILL)  # no shutdown, no final AOF flush
    assert server.process.wait(timeout=10) == -signal.SIGKILL
    server.process = None
    assert not list((tmp_path / "redis").glob("*.rdb"))  # only the AOF can bring it back
    assert any((tmp_path / "redis" / "appendonlydir").iterdir())

    server.start()
    assert server.process is not None and server.process.pid != pid
    client = _client(server)
    try:
        store = QueueStore(client)  # rules too come back from Redis
        assert _keyspace(client) == raw_before
        after = _router_view(store)
        assert after == before
        # ... and the router carries on from there: the paused agent comes back and takes
        # the head of the billing line; the callback still holds its place behind it.
        got = store.set_state("break", AgentState.AVAILABLE, now=NOW + 20)
        assert got is not None and got.call_id == "b2"
        assert store.position("cb", now=NOW + 20) == 1
        store.complete("busy", next(a for a in after["agents"]
                                    if a.agent_id == "busy").calls[0], now=NOW + 21)
        assert store.agent("busy").state == AgentState.WRAP_UP  # type: ignore[union-attr]
    finally:
        client.close()
