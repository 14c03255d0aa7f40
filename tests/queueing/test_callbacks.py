"""Callbacks keep the place; dialled through Twilio's REST API (the fake cloud) by RQ."""

from __future__ import annotations

import redis
from rq import Queue, SimpleWorker
from rq.serializers import JSONSerializer

from queueing import callbacks, jobs
from queueing.model import AgentState, CallStatus, requirements
from queueing.store import QueueStore
from tests.fakes import FakeTwilioCloud
from tests.queueing.conftest import CALLBACK_CONFIG as CONFIG

NEEDS = requirements("es", "billing", 1)


def test_callback_keeps_place_and_reserves_agent_before_dialling(store: QueueStore) -> None:
    store.upsert_agent("a", {"lang:es": 1, "topic:billing": 2}, now=0)
    store.enqueue("first", "support", NEEDS, caller="+34600000001", now=10)
    store.enqueue("second", "support", NEEDS, now=20)
    store.request_callback("first", "+34600000001", now=30)
    store.abandon("first", now=31)  # the caller hangs up: a no-op for a callback
    assert store.call("first").status == CallStatus.CALLBACK_PENDING  # type: ignore[union-attr]
    assert store.hold_info("second", now=40).position == 2
    got = store.set_state("a", "available", now=50)
    assert got is not None and got.call_id == "first" and got.callback_number == "+34600000001"
    assert store.agent("a").state == AgentState.RESERVED  # type: ignore[union-attr]


def test_callbacks_wait_outside_business_hours(redis_client: redis.Redis) -> None:
    hours = {"open": False}
    store = QueueStore(redis_client, is_open=lambda now: hours["open"])
    store.upsert_agent("a", {"lang:es": 1, "topic:billing": 2}, now=0)
    store.enqueue("cb", "support", NEEDS, now=10)
    store.request_callback("cb", "+34600000001", now=11)
    store.enqueue("live", "support", NEEDS, now=20)
    got = store.set_state("a", "available", now=30)
    assert got is not None and got.call_id == "live"  # the callback must wait
    store.accept("a", "live", now=31)
    hours["open"] = True
    got = store.complete("a", "live", wrap_up_s=0, now=40)
    assert got is not None and got.call_id == "cb"


def test_unanswered_callback_retries_then_gives_up(store: QueueStore) -> None:
    store.upsert_agent("a", {"lang:es": 1, "topic:billing": 2}, now=0)
    store.enqueue("cb", "support", NEEDS, now=10)
    store.request_callback("cb", "+34600000001", now=11)
    assert store.set_state("a", "available", now=12) is not None
    assert callbacks.on_status(store, "cb", "no-answer", now=20) == "callback_pending"
    assert store.agent("a").state == AgentState.AVAILABLE  # type: ignore[union-attr]
    assert store.tick(now=50) == []  # retry_s is 60
    again = store.tick(now=81)
    assert [(a.call_id, a.agent_id) for a in again] == [("cb", "a")]
    assert callbacks.on_status(store, "cb", "busy", now=90) == "callback_failed"
    assert store.counters()["support"]["callback_failed"] == 1


def test_rq_worker_dials_the_callback_once(store: QueueStore, redis_url: str,
                                           cloud: FakeTwilioCloud) -> None:
    store.upsert_agent("a", {"lang:es": 1, "topic:billing": 2}, now=0)
    store.enqueue("cb", "support", NEEDS, now=10)
    store.request_callback("cb", "+34600000001", now=11)
    got = store.set_state("a", "available", now=12)
    assert got is not None
    conn = redis.Redis.from_url(redis_url)
    queue = Queue("high", connection=conn, serializer=JSONSerializer)
    jobs.install(cloud.rest_client(), CONFIG)
    try:
        queue.enqueue(jobs.dial_callback, "cb", got.reservation_id)
        queue.enqueue(jobs.dial_callback, "cb", got.reservation_id)  # a retried job
        SimpleWorker([queue], connection=conn, serializer=JSONSerializer).work(burst=True)
    finally:
        jobs.install(None, None)
    placed = list(cloud.calls.values())
    assert len(placed) == 1
    assert placed[0].to == "+34600000001" and placed[0].from_ == "+34910000000"
    assert placed[0].url == "http://ivr.test/voice/callback?call=cb"
    assert callbacks.on_status(store, "cb", "in-progress", now=20) == "bridged"
    assert store.agent("a").state == AgentState.BUSY  # type: ignore[union-attr]
    conn.close()
