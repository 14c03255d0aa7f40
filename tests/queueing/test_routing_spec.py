"""The Lua router makes the decisions queueing/routing.py specifies (random states)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from queueing import routing
from queueing.model import AgentState
from queueing.store import QueueStore
from tests.queueing.conftest import RULES

SKILLS = ["lang:es", "lang:ca", "topic:billing", "topic:tech"]
needs_st = st.dictionaries(st.sampled_from(SKILLS), st.integers(1, 3), max_size=2)
call_st = st.tuples(st.sampled_from(["billing", "support", "general"]), needs_st,
                    st.integers(0, 3), st.integers(0, 900))
agent_st = st.tuples(st.dictionaries(st.sampled_from(SKILLS), st.integers(1, 5), min_size=1),
                     st.sampled_from([(), ("general",), ("billing",)]), st.integers(0, 50))


def freed_one_by_one(store: QueueStore, agents: list[Any], now: int,
                     open_: bool = True) -> Iterator[tuple[Any, Any]]:
    """Each agent signs in and becomes free at ``now``: the router's pick must be the one
    queueing/routing.py names. Yields (the router's assignment, the specified call)."""
    rules = store.rules()
    for j, (skills, queues, idle) in enumerate(agents):
        store.upsert_agent(f"a{j}", skills, queues=queues, now=idle)
        agent = store.agent(f"a{j}")
        assert agent is not None
        freed = replace(agent, state=AgentState.AVAILABLE, idle_since=now)
        expected = routing.best_call(freed, store.waiting(), now, rules.for_queue,
                                     callbacks_open=open_)
        got = store.set_state(f"a{j}", "available", now=now)
        assert (got.call_id if got else None) == (expected.call_id if expected else None)
        yield got, expected


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(calls=st.lists(call_st, min_size=1, max_size=12), agents=st.lists(agent_st, min_size=1, max_size=4),
       now=st.integers(900, 1500))
def test_lua_matches_the_pure_rules(redis_client: redis.Redis, calls: list[Any], agents: list[Any],
                                    now: int) -> None:
    redis_client.flushall()
    store = QueueStore(redis_client, rules=RULES)
    for i, (queue, needs, prio, at) in enumerate(calls):
        store.enqueue(f"c{i}", queue, needs, priority=prio, now=at)
    for got, _ in freed_one_by_one(store, agents, now):
        if got:
            store.accept(got.agent_id, got.call_id, now=now)



@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(calls=st.lists(st.tuples(call_st, st.booleans()), min_size=1, max_size=10),
       agents=st.lists(agent_st, min_size=1, max_size=4), now=st.integers(900, 1500),
       open_=st.booleans())
def test_lua_routes_callbacks_as_specified_open_or_closed(
        redis_client: redis.Redis, calls: list[Any], agents: list[Any], now: int,
        open_: bool) -> None:
    """Callbacks among the waiting calls, the line open or closed: the freed agent gets
    the call the rules name, and a callback's reservation lasts as they say."""
    redis_client.flushall()
    hold = 40.0
    store = QueueStore(redis_client, rules=RULES, is_open=lambda at: open_,
                       callback_hold_s=hold)
    for i, ((queue, needs, prio, at), callback) in enumerate(calls):
        if callback:
            store.enqueue_callback(f"c{i}", queue, "+34600000001", needs, priority=prio, now=at)
        else:
            store.enqueue(f"c{i}", queue, needs, priority=prio, now=at)
    rules = store.rules()
    for got, expected in freed_one_by_one(store, agents, now, open_):
        if got and expected:
            assert got.is_callback == bool(expected.callback_number)
            assert got.deadline == now + routing.reservation_hold_s(
                expected, rules.for_queue(expected.queue), hold)
            store.accept(got.agent_id, got.call_id, now=now)  # callbacks: still ringing
