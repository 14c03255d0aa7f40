"""A callback's agent stays reserved while we ring, and only the current leg counts.

Issue 5 audit, defect 1: the customer's phone rang for 25 s but the agent's reservation
lapsed after 20 s, so the call was requeued and dialled twice, and the first leg's late
no-answer then released the agent who was talking to the customer. Real redis-server,
the real router script, Twilio's REST API as the hand-written fake cloud.
"""

from __future__ import annotations

import pytest
import redis

from queueing import callbacks
from queueing.model import (
    CALLBACK_MARGIN_S,
    CALLBACK_RING_TIMEOUT_S,
    AgentState,
    CallStatus,
    callback_hold_s,
    requirements,
)
from queueing.store import QueueStore
from tests.fakes import FakeTwilioCloud
from tests.queueing.conftest import CALLBACK_CONFIG as CONFIG
from tests.queueing.conftest import RULES

NEEDS = requirements("es", "billing", 1)
SKILLS = {"lang:es": 1, "topic:billing": 2}
NUMBER = "+34600000001"


def _reserved_callback(store: QueueStore, at: float = 100.0):  # type: ignore[no-untyped-def]
    store.upsert_agent("a", SKILLS, now=0)
    store.set_state("a", "available", now=1)
    status, got, _ = store.enqueue_callback("cb", "support", NUMBER, NEEDS, now=at)
    assert status == "reserved" and got is not None and got.callback_number == NUMBER
    return got


def test_callback_reservation_outlasts_the_ringing(store: QueueStore) -> None:
    # The queue's own timeout (15 s in these rules) is for agents' phones; a callback
    # holds its agent for the ring timeout plus the margin.
    assert RULES.default.reservation_timeout_s == 15
    got = _reserved_callback(store, at=100)
    assert got.deadline - 100 == callback_hold_s() == CALLBACK_RING_TIMEOUT_S + CALLBACK_MARGIN_S
    # The moment the old code requeued it (the queue's 15 s, then the 20 s default):
    assert store.tick(now=121) == []
    assert store.call("cb").status == CallStatus.RESERVED  # type: ignore[union-attr]
    agent = store.agent("a")
    assert agent is not None and agent.state == AgentState.RESERVED
    # An ordinary call still uses the queue's timeout.
    store.upsert_agent("b", SKILLS, now=0)
    store.set_state("b", "available", now=1)
    _, plain, _ = store.enqueue("live", "support", NEEDS, now=100)
    assert plain is not None and plain.deadline == 115


def test_callback_hold_is_configurable(redis_client: redis.Redis) -> None:
    store = QueueStore(redis_client, rules=RULES, callback_hold_s=callback_hold_s(60, 20))
    got = _reserved_callback(store, at=10)
    assert got.deadline == 90
    with pytest.raises(ValueError, match="ring timeout"):
        callback_hold_s(0, 5)
    with pytest.raises(Exception, match="5..600"):
        callbacks.CallbackConfig(from_number="+34910000000", answer_url="x", ring_timeout_s=2)


def test_dialling_late_pushes_the_deadline_past_the_ringing(store: QueueStore,
                                                            cloud: FakeTwilioCloud) -> None:
    got = _reserved_callback(store, at=100)
    config = callbacks.CallbackConfig(
        from_number=CONFIG.from_number, answer_url=CONFIG.answer_url,
        status_url=CONFIG.status_url, ring_timeout_s=30, margin_s=10)
    store.clock = lambda: 130.0  # the dial job ran 30 s late (a busy worker)
    sid = callbacks.dial(store, cloud.rest_client(), config, "cb", got.reservation_id)
    assert sid
    deadline = float(store.redis.hget("q:call:cb", "res_deadline"))  # type: ignore[arg-type]
    assert deadline == 130 + 40
    [placed] = cloud.calls.values()
    assert placed.to == NUMBER
    # The status URL names the reservation: a late status of this leg is recognised.
    assert placed.status_callback is not None
    assert placed.status_callback.endswith(f"call=cb&res={got.reservation_id}")
    assert store.tick(now=165) == []  # still ringing: nothing lapses
    assert store.call("cb").status == CallStatus.RESERVED  # type: ignore[union-attr]


def test_a_late_status_of_an_earlier_leg_changes_nothing(store: QueueStore,
                                                         cloud: FakeTwilioCloud) -> None:
    first = _reserved_callback(store, at=100)
    rest = cloud.rest_client()
    store.clock = lambda: 101.0
    leg1 = callbacks.dial(store, rest, CONFIG, "cb", first.reservation_id)
    # Leg 1 not answered: the agent is freed (not paused) and a retry is due.
    assert callbacks.on_status(store, "cb", "no-answer", now=126, leg_sid=leg1,
                               reservation_id=first.reservation_id) == "callback_pending"
    agent = store.agent("a")
    assert agent is not None and agent.state == AgentState.AVAILABLE
    # A repeat of that status is harmless: one attempt counted.
    assert callbacks.on_status(store, "cb", "no-answer", now=127, leg_sid=leg1,
                               reservation_id=first.reservation_id) == "callback_pending"
    assert store.call("cb").callback_attempts == 1  # type: ignore[union-attr]
    [second] = store.tick(now=126 + 61)  # callback.retry_s is 60 in these rules
    assert second.call_id == "cb" and second.reservation_id != first.reservation_id
    store.clock = lambda: 188.0
    leg2 = callbacks.dial(store, rest, CONFIG, "cb", second.reservation_id)
    assert leg2 and leg2 != leg1
    # Leg 1's status arrives late, by reservation or by CallSid: ignored.
    assert callbacks.on_status(store, "cb", "busy", now=189,
                               reservation_id=first.reservation_id) == "reserved"
    assert callbacks.on_status(store, "cb", "no-answer", now=189, leg_sid=leg1) == "reserved"
    assert store.call("cb").callback_attempts == 1  # type: ignore[union-attr]
    # Leg 2 answered: bridged to the agent.
    assert callbacks.on_status(store, "cb", "in-progress", now=195, leg_sid=leg2,
                               reservation_id=second.reservation_id) == "bridged"
    # A no-answer now, of any leg or of none named, never releases a bridged call.
    for extra in ({"leg_sid": leg1}, {"leg_sid": leg2}, {}):
        assert callbacks.on_status(store, "cb", "no-answer", now=200, **extra) == "bridged"
    agent = store.agent("a")
    assert agent is not None and agent.state == AgentState.BUSY and agent.calls == ("cb",)
    assert store.tick(now=10_000) == []  # a lapsed deadline does not undo the answer
    assert store.call("cb").status == CallStatus.BRIDGED  # type: ignore[union-attr]
    # The answered leg ends: the call is complete, the agent wraps up.
    assert callbacks.on_status(store, "cb", "completed", now=10_001, leg_sid=leg2) == "completed"
    agent = store.agent("a")
    assert agent is not None and agent.state == AgentState.WRAP_UP and agent.load == 0


def test_a_callback_whose_status_never_comes_is_an_attempt_not_a_no_answer_agent(
        store: QueueStore) -> None:
    got = _reserved_callback(store, at=100)
    assert store.tick(now=got.deadline - 1) == []
    assert store.tick(now=got.deadline) == []  # the call waits for its retry
    call = store.call("cb")
    assert call is not None and call.status == CallStatus.CALLBACK_PENDING
    assert call.callback_attempts == 1 and call.agent_id is None
    agent = store.agent("a")  # the agent did nothing wrong: free again, not paused
    assert agent is not None and agent.state == AgentState.AVAILABLE
    again = store.tick(now=got.deadline + 60)
    assert [(a.call_id, a.agent_id) for a in again] == [("cb", "a")]
    # The old reservation's timer job runs late: it is not this reservation any more.
    assert store.expire_reservation("cb", got.reservation_id, now=got.deadline + 61) == (
        False, None)


def test_the_original_calls_end_does_not_cancel_its_callback(store: QueueStore) -> None:
    _reserved_callback(store, at=100)
    # The caller's own call ends (they hung up after asking): its status callback and a
    # reconcile both say so; the callback keeps its agent.
    assert store.end_call("cb", now=101) is None
    assert store.abandon("cb", now=101) is None
    assert store.call("cb").status == CallStatus.RESERVED  # type: ignore[union-attr]
    assert store.counters().get("support", {}).get("abandoned", 0) == 0
    assert store.abandons() == []


def test_agent_accepting_a_callback_waits_for_the_customer(store: QueueStore) -> None:
    _reserved_callback(store, at=100)
    store.accept("a", "cb", now=101)
    assert store.call("cb").status == CallStatus.RESERVED  # type: ignore[union-attr]
    assert callbacks.on_status(store, "cb", "in-progress", now=110) == "bridged"
