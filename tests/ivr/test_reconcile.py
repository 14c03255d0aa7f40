"""The router agrees with Twilio: final statuses end its calls, reconciliation ends the
calls Twilio no longer has, and the router's clock runs in the worker's own thread.

Real Redis (the fixture), the real router (Lua), the fake Twilio cloud over HTTP.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from rq import Queue
from rq.registry import ScheduledJobRegistry
from rq.serializers import JSONSerializer
from twilio.request_validator import RequestValidator

from ivr.embedded import EmbeddedRedis
from ivr.settings import Settings
from ivr.twilio_rest import TwilioRestError
from ivr.worker import Ticker, reconcile_with_twilio, router_store
from queueing.model import AgentState, CallStatus
from tests.fakes import FakeTwilioCloud
from tests.ivr.conftest import AUTH_TOKEN, BASE

CALLER = "CA" + "a" * 32
OTHER = "CA" + "b" * 32


def post_status(client: FlaskClient, sid: str, status: str, sequence: str = "1") -> int:
    params = {"CallSid": sid, "CallStatus": status, "SequenceNumber": sequence,
              "From": "+34699000111", "To": "+34930001000"}
    sig = RequestValidator(AUTH_TOKEN).compute_signature(BASE + "/voice/status", params)
    return client.post("/voice/status", data=params,
                       headers={"X-Twilio-Signature": sig}).status_code


def test_a_final_status_ends_a_waiting_call_as_abandoned_with_its_wait(
        app: Flask, client: FlaskClient) -> None:
    store = app.extensions["centralita"].components["queue"]
    store.enqueue(CALLER, "support", {"lang:es": 1}, now=1000.0)
    assert post_status(client, CALLER, "ringing", "0") == 204
    assert store.call(CALLER).status == CallStatus.WAITING  # not final: nothing changes
    assert post_status(client, CALLER, "completed", "2") == 204
    call = store.call(CALLER)
    assert call is not None and call.status == CallStatus.ABANDONED
    abandons = store.abandons()
    assert [a["call_id"] for a in abandons] == [CALLER] and abandons[0]["wait_s"] > 0
    assert abandons[0]["reason"] == "completed"
    # Twilio retries the callback: nothing is recorded twice.
    assert post_status(client, CALLER, "completed", "2") == 204
    assert len(store.abandons()) == 1
    assert store.counters()["support"]["abandoned"] == 1


def test_a_final_status_frees_the_agent_a_reserved_call_was_ringing(
        app: Flask, client: FlaskClient) -> None:
    store = app.extensions["centralita"].components["queue"]
    store.upsert_agent("ana", {"lang:es": 1})
    store.set_state("ana", AgentState.AVAILABLE)
    status, assignment, _ = store.enqueue(CALLER, "support", {"lang:es": 1})
    assert status == "reserved" and assignment is not None and assignment.agent_id == "ana"
    assert post_status(client, CALLER, "no-answer") == 204
    assert store.call(CALLER).status == CallStatus.ABANDONED
    assert store.agent("ana").state == AgentState.AVAILABLE


def test_a_callback_keeps_its_place_when_the_caller_hangs_up(
        app: Flask, client: FlaskClient) -> None:
    store = app.extensions["centralita"].components["queue"]
    store.enqueue(CALLER, "support", {"lang:es": 1})
    store.request_callback(CALLER, "+34699000111")
    assert post_status(client, CALLER, "completed") == 204
    assert store.call(CALLER).status == CallStatus.CALLBACK_PENDING


def test_reconcile_ends_only_the_calls_twilio_no_longer_has(
        app: Flask, cloud: FakeTwilioCloud) -> None:
    store = app.extensions["centralita"].components["queue"]
    live = [cloud.add_live_call(status="in-progress") for _ in range(5)]
    for sid in live:
        store.enqueue(sid, "support", {"lang:es": 1})
    store.enqueue(CALLER, "support", {"lang:es": 1})  # ended while we were down
    store.enqueue(OTHER, "support", {"lang:es": 1})
    store.request_callback(OTHER, "+34699000222")  # hung up on purpose: keeps the place
    cloud.set_status(live[0], "completed")  # Twilio ended this one too
    rest = cloud.rest_client()
    rest_pages = []
    original = rest.list_calls

    def small_pages(status: str, **kw):  # type: ignore[no-untyped-def]
        rest_pages.append(status)
        return original(status, page_size=2, **kw)

    rest.list_calls = small_pages  # type: ignore[method-assign]
    ended = reconcile_with_twilio(store, rest)
    assert sorted(ended) == sorted([CALLER, live[0]])
    assert store.call(CALLER).status == CallStatus.ABANDONED
    assert all(store.call(s).status == CallStatus.WAITING for s in live[1:])
    assert store.call(OTHER).status == CallStatus.CALLBACK_PENDING
    gets = [r for r in cloud.requests if r.method == "GET"]
    assert len(gets) >= 4  # 4 in-progress calls in pages of 2, plus queued and ringing
    assert reconcile_with_twilio(store, rest) == []  # idempotent


def test_reconcile_ends_nothing_when_twilio_cannot_be_read(
        app: Flask, cloud: FakeTwilioCloud) -> None:
    store = app.extensions["centralita"].components["queue"]
    store.enqueue(CALLER, "support", {"lang:es": 1})
    cloud.fail(times=20, status=503)
    rest = cloud.rest_client(sleep=lambda s: None)
    with pytest.raises(TwilioRestError) as err:  # never reconciled against nothing
        reconcile_with_twilio(store, rest)
    assert err.value.status == 503
    assert store.call(CALLER).status == CallStatus.WAITING


def test_ticker_reconciles_at_start_and_after_a_real_redis_restart(
        tmp_path: Path, cloud: FakeTwilioCloud) -> None:
    server = EmbeddedRedis(tmp_path)
    server.start()
    try:
        settings = Settings(data_dir=tmp_path, redis_url=server.url, secret_key="k")
        store = router_store(settings)
        store.enqueue(CALLER, "support", {"lang:es": 1})
        ticker = Ticker(settings, store, cloud.rest_client())
        assert ticker.reconcile_if_restarted() == [CALLER]  # at start
        store.enqueue(OTHER, "support", {"lang:es": 1})
        assert ticker.reconcile_if_restarted() is None  # same Redis run: not again
        second = Ticker(settings, store, cloud.rest_client())
        assert second.reconcile_if_restarted() is None  # another worker: claimed already
        server.stop()
        server.start()  # AOF: OTHER is still waiting after the restart...
        assert store.call(OTHER).status == CallStatus.WAITING
        assert ticker.reconcile_if_restarted() == [OTHER]  # ...and Twilio has no such call
    finally:
        server.stop()


def test_ticker_reconciles_every_period_once_across_workers(
        settings: Settings, cloud: FakeTwilioCloud) -> None:
    """A ghost left by a lost status callback does not wait for a Redis restart."""
    store = router_store(settings)
    live = cloud.add_live_call(OTHER)
    store.enqueue(live, "support", {"lang:es": 1})
    ticker, second = (Ticker(settings, store, cloud.rest_client()) for _ in range(2))
    assert ticker.reconcile_if_restarted() == []  # at start: nothing to end
    store.enqueue(CALLER, "support", {"lang:es": 1})  # its final status never arrived
    now = ticker.next_reconcile - 1
    ticker.chores(now)  # not yet due (and the same Redis run)
    assert store.call(CALLER).status == CallStatus.WAITING
    ticker.chores(now + 1)  # due
    assert store.call(CALLER).status == CallStatus.ABANDONED
    now = ticker.next_reconcile  # the next period: again, by one worker only
    store.enqueue(CALLER + "2", "support", {"lang:es": 1})
    assert ticker.reconcile_periodically(now) == [CALLER + "2"]
    assert second.reconcile_periodically(now + 1) is None  # the other worker: claimed
    assert store.call(live).status == CallStatus.WAITING
    assert Ticker(settings, store, None).reconcile_periodically(now) is None  # no REST


def test_ticker_runs_the_router_tick_itself_and_schedules_the_reservations(
        settings: Settings, redis_url: str) -> None:
    store = router_store(settings)
    store.upsert_agent("ana", {"lang:es": 1})
    store.upsert_agent("bea", {"lang:es": 1})
    store.set_state("ana", AgentState.AVAILABLE, now=1000.0)
    _, first, _ = store.enqueue(CALLER, "support", {"lang:es": 1}, now=1000.0)
    assert first is not None and first.agent_id == "ana"
    store.set_state("bea", AgentState.PAUSED, reason="break", now=1000.0)
    store.set_state("bea", AgentState.AVAILABLE, now=1001.0)  # free, nothing waiting
    conn = redis.Redis.from_url(redis_url)
    high = Queue("high", connection=conn, serializer=JSONSerializer)
    ticker = Ticker(settings, store, None)
    # Past Ana's deadline: the tick (run here, not queued as a job) takes the call back
    # from her (paused, no-answer) and gives it to Bea: one reservation, timed by a job.
    made = ticker.tick(now=first.deadline + 1)
    assert made == 1
    assert store.agent("ana").state == AgentState.PAUSED
    call = store.call(CALLER)
    assert call.status == CallStatus.RESERVED and call.agent_id == "bea"
    scheduled = ScheduledJobRegistry(queue=high).get_job_ids()
    assert len(scheduled) == 1 and scheduled[0].startswith(f"expire-{CALLER}-")
    assert ticker.tick(now=first.deadline + 1.5) is None  # same second: single-flight
