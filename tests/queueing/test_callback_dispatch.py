"""Every reservation the router hands back is dispatched (its timer, a callback's dial).

Issue 5 audit, defect 7: assignments returned by the store were dropped in the call
path (enqueue, a caller leaving the hold), in the callback leg's status and when a
dial failed, so a callback was dialled only once its reservation had lapsed. Here the
app's real dispatcher (``ivr.app._dispatch`` -> ``queueing.jobs.schedule``) queues
RQ jobs that a real worker runs against the real redis-server; Twilio is the fake cloud.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from rq import Queue, SimpleWorker
from rq.registry import ScheduledJobRegistry
from rq.serializers import JSONSerializer

from call_flows import actions as a
from call_flows.session import Session
from ivr.app import _dispatch
from ivr.queue_adapter import QueueAdapter
from queueing import callbacks, jobs
from queueing.model import AgentState, Assignment, CallStatus, requirements
from queueing.store import QueueStore
from tests.fakes import FakeTwilioCloud
from tests.queueing.conftest import CALLBACK_CONFIG as CONFIG

NEEDS = requirements("es", "billing", 1)
SKILLS = {"lang:es": 1, "topic:billing": 2}


@pytest.fixture()
def rq_conn(redis_url: str) -> Iterator[redis.Redis]:
    conn = redis.Redis.from_url(redis_url)  # RQ keeps bytes
    yield conn
    conn.close()


@pytest.fixture()
def high(rq_conn: redis.Redis) -> Queue:
    return Queue("high", connection=rq_conn, serializer=JSONSerializer)


def _work(queue: Queue, cloud: FakeTwilioCloud) -> None:
    jobs.install(cloud.rest_client(), CONFIG)
    try:
        SimpleWorker([queue], connection=queue.connection, serializer=JSONSerializer).work(
            burst=True, logging_level="WARNING")
    finally:
        jobs.install(None, None)


def _session(sid: str, caller: str = "+34699000111") -> Session:
    return Session(call_sid=sid, caller=caller, called="+34910000000", line="main",
                   flow="demo", flow_version="1", node="request_callback", language="es")


def _callback(number: str = "+34600000001") -> a.RequestCallback:
    return a.RequestCallback(number=number, skills={"language": "es", "topic": "billing"},
                             priority=1, reason="billing")


def test_a_menu_callback_is_dialled_by_the_worker_at_once(
        store: QueueStore, high: Queue, cloud: FakeTwilioCloud) -> None:
    store.upsert_agent("a", SKILLS, now=0)
    store.set_state("a", "available")
    adapter = QueueAdapter(store, dispatch=_dispatch(high))
    adapter.request_callback(_session("CAcb"), _callback())
    call = store.call("CAcb")
    assert call is not None and call.status == CallStatus.RESERVED and call.agent_id == "a"
    # The reservation's timer is scheduled at its deadline, the dial queued now.
    assert len(ScheduledJobRegistry(queue=high)) == 1
    _work(high, cloud)
    [placed] = cloud.calls.values()
    assert placed.to == "+34600000001" and placed.from_ == "+34910000000"
    raw = store.redis.hgetall("q:call:CAcb")
    assert raw["cb_leg"] == placed.sid  # the current leg, for its status callbacks


def test_a_caller_hanging_up_frees_the_agent_into_the_next_call_which_is_dispatched(
        store: QueueStore) -> None:
    sent: list[Assignment] = []
    adapter = QueueAdapter(store, dispatch=sent.append)
    store.upsert_agent("a", SKILLS, now=0)
    store.set_state("a", "available")
    enq = a.Enqueue(queue="support", skills={"language": "es", "topic": "billing"})
    adapter.enqueue(_session("CA1"), enq)
    adapter.enqueue(_session("CA2"), enq)
    assert [s.call_id for s in sent] == ["CA1"]  # reserved on enqueue: dispatched
    adapter.left("CA1", "hangup")  # gone while the agent was being rung
    assert [s.call_id for s in sent] == ["CA1", "CA2"]
    assert sent[1].agent_id == "a"


def test_a_callback_leg_not_answered_frees_the_agent_into_a_dispatched_callback(
        store: QueueStore, high: Queue, cloud: FakeTwilioCloud) -> None:
    store.upsert_agent("a", SKILLS, now=0)
    store.set_state("a", "available")
    adapter = QueueAdapter(store, dispatch=_dispatch(high))
    adapter.request_callback(_session("CAone"), _callback("+34600000001"))
    adapter.request_callback(_session("CAtwo"), _callback("+34600000002"))
    _work(high, cloud)
    [first] = cloud.calls.values()
    res = store.redis.hget("q:call:CAone", "res_id")
    # Twilio: the first customer did not answer. Ana moves straight to the second one,
    # whose dial is dispatched and run by the worker.
    after = callbacks.on_status(store, "CAone", "no-answer", leg_sid=first.sid,
                                reservation_id=res, dispatch=_dispatch(high))
    assert after == "callback_pending"
    two = store.call("CAtwo")
    assert two is not None and two.status == CallStatus.RESERVED and two.agent_id == "a"
    _work(high, cloud)
    assert sorted(c.to for c in cloud.calls.values()) == ["+34600000001", "+34600000002"]


def test_a_leg_that_cannot_be_placed_counts_and_the_next_reservation_is_dispatched(
        store: QueueStore, cloud: FakeTwilioCloud) -> None:
    store.upsert_agent("a", SKILLS, now=0)
    store.set_state("a", "available", now=1)
    _, got, _ = store.enqueue_callback("cb", "support", "+34600000001", NEEDS, now=10)
    store.enqueue("live", "support", NEEDS, now=11)
    assert got is not None
    sent: list[Assignment] = []
    cloud.fail(times=5, status=500)  # Twilio's API is down
    with pytest.raises(Exception, match="could not be placed"):
        callbacks.dial(store, cloud.rest_client(), CONFIG, "cb", got.reservation_id,
                       dispatch=sent.append)
    call = store.call("cb")
    assert call is not None and call.status == CallStatus.CALLBACK_PENDING
    assert call.callback_attempts == 1
    assert [(s.call_id, s.agent_id) for s in sent] == [("live", "a")]
    agent = store.agent("a")
    assert agent is not None and agent.state == AgentState.RESERVED
