"""Asking for a callback is one atomic router step (``enqueue_callback``).

Issue 5 audit, defect 3: a callback asked from a menu while an agent was free was lost
(the call was reserved on enqueue, then turning it into a callback failed). Real
redis-server and router script; concurrent requests from threads for the atomicity.
"""

from __future__ import annotations

import threading

import pytest
import redis

from queueing.errors import InvalidTransition, QueueError
from queueing.model import AgentState, CallStatus, requirements
from queueing.store import QueueStore
from tests.queueing.conftest import RULES

NEEDS = requirements("es", "billing", 1)
SKILLS = {"lang:es": 1, "topic:billing": 2}
NUMBER = "+34600000001"


def _agent(store: QueueStore, name: str = "a") -> None:
    store.upsert_agent(name, SKILLS, now=0)
    store.set_state(name, "available", now=1)


def test_a_menu_callback_with_an_agent_free_reserves_and_names_the_number(
        store: QueueStore) -> None:
    _agent(store)
    status, got, resumed = store.enqueue_callback("cb", "support", NUMBER, NEEDS,
                                                  caller="+34699999999", now=10)
    assert status == "reserved" and resumed is None
    assert got is not None and (got.call_id, got.agent_id) == ("cb", "a")
    assert got.callback_number == NUMBER and got.is_callback
    call = store.call("cb")
    assert call is not None and call.callback_number == NUMBER
    assert call.status == CallStatus.RESERVED


def test_a_menu_callback_with_nobody_free_waits_in_line_as_a_callback(
        store: QueueStore) -> None:
    store.enqueue("ahead", "support", NEEDS, now=5)
    status, got, _ = store.enqueue_callback("cb", "support", NUMBER, NEEDS, now=10)
    assert (status, got) == ("callback_pending", None)
    assert store.hold_info("cb", now=11).position == 2
    _agent(store)  # the first agent takes the head of the line, the live caller
    assert store.call("ahead").status == CallStatus.RESERVED  # type: ignore[union-attr]
    _agent(store, "b")
    assert store.call("cb").status == CallStatus.RESERVED  # type: ignore[union-attr]


def test_a_holding_caller_keeps_the_place_and_asking_twice_changes_only_the_number(
        store: QueueStore) -> None:
    store.enqueue("first", "support", NEEDS, now=5)
    store.enqueue("cb", "support", NEEDS, now=10)
    store.enqueue("third", "support", NEEDS, now=15)
    assert store.enqueue_callback("cb", "support", NUMBER, NEEDS, now=20)[0] == (
        "callback_pending")
    assert store.hold_info("cb", now=21).position == 2
    store.enqueue_callback("cb", "support", "+34600000002", NEEDS, now=22)
    call = store.call("cb")
    assert call is not None and call.callback_number == "+34600000002"
    assert store.hold_info("cb", now=23).position == 2
    assert store.hold_info("third", now=23).position == 3


def test_an_agent_reserved_while_the_caller_chose_the_callback_is_freed_not_paused(
        store: QueueStore) -> None:
    store.enqueue("cb", "support", NEEDS, now=10)  # holding
    _agent(store)  # Ana is reserved for it, while the caller presses 1 for a callback
    assert store.call("cb").status == CallStatus.RESERVED  # type: ignore[union-attr]
    status, got, _ = store.enqueue_callback("cb", "support", NUMBER, NEEDS, now=12)
    # The same agent, now to call the customer back: the callback's number is on it.
    assert status == "reserved" and got is not None
    assert (got.call_id, got.agent_id, got.callback_number) == ("cb", "a", NUMBER)
    agent = store.agent("a")
    assert agent is not None and agent.state == AgentState.RESERVED and agent.load == 1


def test_while_closed_that_agent_is_freed_and_the_callback_keeps_the_head(
        redis_client: redis.Redis) -> None:
    hours = {"open": True}
    store = QueueStore(redis_client, rules=RULES, is_open=lambda now: hours["open"])
    store.enqueue("cb", "support", NEEDS, now=10)
    store.enqueue("next", "support", NEEDS, now=11)
    _agent(store)
    hours["open"] = False
    status, got, _ = store.enqueue_callback("cb", "support", NUMBER, NEEDS, now=12)
    # Ana is free again and takes the live caller behind; the callback waits at the head.
    assert status == "callback_pending"
    assert got is not None and got.call_id == "next" and got.agent_id == "a"
    call = store.call("cb")
    assert call is not None and call.front and call.agent_id is None
    assert store.agent("a").pause_reason is None  # type: ignore[union-attr]


def test_a_call_no_longer_in_line_cannot_become_a_callback(store: QueueStore) -> None:
    _agent(store)
    store.enqueue("talking", "support", NEEDS, now=10)
    store.accept("a", "talking", now=11)
    with pytest.raises(InvalidTransition, match="only a call still in line"):
        store.enqueue_callback("talking", "support", NUMBER, NEEDS, now=12)
    with pytest.raises(QueueError, match="confirmed phone number"):
        store.enqueue_callback("x", "support", "", NEEDS, now=12)


def test_concurrent_callbacks_and_agents_never_double_assign(redis_client: redis.Redis,
                                                             redis_url: str) -> None:
    QueueStore(redis_client, rules=RULES)  # rules in Redis for every process
    agents = [f"ag{i}" for i in range(6)]
    setup = QueueStore(redis_client)
    for name in agents:
        setup.upsert_agent(name, SKILLS, now=0)
    errors: list[Exception] = []

    def caller(i: int) -> None:
        client = redis.Redis.from_url(redis_url, decode_responses=True)
        mine = QueueStore(client)
        try:
            for j in range(10):
                mine.enqueue_callback(f"c{i}-{j}", "support", NUMBER, NEEDS, now=10 + j)
        except (QueueError, redis.RedisError) as exc:  # reported below
            errors.append(exc)
        finally:
            client.close()

    def agent(name: str) -> None:
        client = redis.Redis.from_url(redis_url, decode_responses=True)
        try:
            QueueStore(client).set_state(name, "available", now=12)
        except (QueueError, redis.RedisError) as exc:  # reported below
            errors.append(exc)
        finally:
            client.close()

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(4)]
    threads += [threading.Thread(target=agent, args=(name,)) for name in agents]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    calls = setup.calls(f"c{i}-{j}" for i in range(4) for j in range(10))
    reserved = [c for c in calls if c.status == CallStatus.RESERVED]
    assert len(calls) == 40 and len(reserved) == len(agents)
    assert len({c.agent_id for c in reserved}) == len(agents)  # one call per agent
    assert all(c.status == CallStatus.CALLBACK_PENDING for c in calls if c not in reserved)
    for name in agents:
        got = setup.agent(name)
        assert got is not None and got.load == 1 and got.state == AgentState.RESERVED
