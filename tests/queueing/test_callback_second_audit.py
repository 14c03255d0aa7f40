"""Three ways a queued call could still go wrong (found in a second audit of the router):
a callback whose agent's phone did not answer was redialled at once, while the customer
was still on the line hearing that we would call back; a dial job that ran after
closing time still rang the customer; a call asking for an agent a second time (after
talking, or after its first queue failed) was silently never routed. Real redis-server
and the router as it runs in production."""

from __future__ import annotations

import redis

from queueing.model import AgentState, Assignment, CallStatus, requirements
from queueing.store import QueueStore
from tests.queueing.conftest import RULES

NEEDS = requirements("es", "billing", 1)
SKILLS = {"lang:es": 1, "topic:billing": 2}
NUMBER = "+34600000001"


def _callback_reserved(store: QueueStore, at: float) -> Assignment:
    store.upsert_agent("a", SKILLS, now=0)
    store.set_state("a", "available", now=1)
    _, got, _ = store.enqueue_callback("cb", "support", NUMBER, NEEDS, now=at)
    assert got is not None and got.agent_id == "a"
    return got


def test_a_callback_whose_agent_missed_it_is_rung_again_after_the_retry_delay(
        store: QueueStore) -> None:
    got = _callback_reserved(store, at=100)
    store.callback_result("cb", answered=True, reservation_id=got.reservation_id, now=105)
    assert store.call("cb").status == CallStatus.BRIDGED  # type: ignore[union-attr]
    store.upsert_agent("b", SKILLS, now=0)
    store.set_state("b", "available", now=106)  # another agent is free right away...
    _, again = store.bounce("cb", now=130)  # ...but a's phone did not answer
    assert again is None  # the customer is not rung again while still on the line
    call = store.call("cb")
    assert call is not None and call.status == CallStatus.CALLBACK_PENDING
    assert call.callback_attempts == 0  # not the customer's miss
    assert store.agent("a").state == AgentState.PAUSED  # type: ignore[union-attr]
    retry = RULES.default.callback_retry_s
    assert store.tick(now=130 + retry - 1) == []
    [next_try] = store.tick(now=130 + retry)
    assert next_try.call_id == "cb" and next_try.agent_id == "b"
    assert next_try.callback_number == NUMBER


def test_a_dial_job_after_closing_rings_nobody_and_keeps_the_place(
        redis_client: redis.Redis) -> None:
    open_now = {"open": True}
    store = QueueStore(redis_client, rules=RULES, is_open=lambda now: open_now["open"])
    store.upsert_agent("x", SKILLS, now=0)
    got = _callback_reserved(store, at=100)
    store.enqueue("behind", "support", NEEDS, now=105)  # a caller holding, behind it
    open_now["open"] = False  # the line closes before the dial job runs
    freed: list[Assignment] = []
    assert store.callback_dialing("cb", got.reservation_id, 40, now=110,
                                  dispatch=freed.append) is None
    call = store.call("cb")
    assert call is not None and call.status == CallStatus.CALLBACK_PENDING and not call.agent_id
    # The agent is free again, and takes the caller holding (not the callback: closed).
    assert [a.call_id for a in freed] == ["behind"]
    assert store.agent("a").state == AgentState.RESERVED  # type: ignore[union-attr]
    open_now["open"] = True  # morning: the callback is first in line for the next agent
    store.set_state("x", "available", now=200)
    assert store.call("cb").status == CallStatus.RESERVED  # type: ignore[union-attr]
    assert store.call("cb").agent_id == "x"  # type: ignore[union-attr]


def test_a_call_that_asks_for_an_agent_again_gets_a_new_place(store: QueueStore) -> None:
    store.upsert_agent("a", SKILLS, now=0)
    store.set_state("a", "available", now=1)
    _, first, _ = store.enqueue("CA1", "support", NEEDS, now=10)
    assert first is not None
    store.accept("a", "CA1", now=12)
    store.complete("a", "CA1", now=60)
    assert store.call("CA1").status == CallStatus.COMPLETED  # type: ignore[union-attr]
    # The survey's "press 0 to talk to someone again": the same CallSid, queued again.
    status, got, _ = store.enqueue("CA1", "support", NEEDS, now=70)
    assert status == "waiting" and got is None  # "a" is wrapping up
    call = store.call("CA1")
    assert call is not None and call.status == CallStatus.WAITING and call.entered_at == 70
    assert [c.call_id for c in store.waiting("support")] == ["CA1"]
    # A repeat of that request (a Twilio retry) changes nothing.
    assert store.enqueue("CA1", "support", NEEDS, now=71)[0] == "waiting"
    assert store.call("CA1").entered_at == 70  # type: ignore[union-attr]
