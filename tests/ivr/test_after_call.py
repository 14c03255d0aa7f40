"""After the call: scripted calls through the webhooks, then the real RQ job.

The status callback queues ``recordings.jobs.finalize_call`` (``on_call_end``); a
real ``SimpleWorker`` (burst, JSON serializer) runs it against the real Redis and
SQLite; the call row, events and draft summary must appear, also through
``GET /api/calls/<sid>``, and retries, duplicates and a worker killed half-way
(``kill -9``) must leave exactly one of each.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from rq import Queue
from rq.job import Job
from rq.registry import FailedJobRegistry
from rq.serializers import JSONSerializer
from sqlalchemy import func, select

from ivr.simulator import Simulator
from recordings import model as m
from recordings.store import Database
from tests.ivr.conftest import ADMIN_TOKEN, flush
from tests.ivr.test_calls_e2e import MADRID, SUPPORT, UNKNOWN, at
from tests.jobs import run_jobs

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def job_env(monkeypatch: pytest.MonkeyPatch, data_dir: Path, redis_url: str) -> dict[str, str]:
    env = {"IVR_DATA_DIR": str(data_dir), "REDIS_URL": redis_url, "IVR_SECRET_KEY": "test-secret",
           "IVR_FINALIZE_SETTLE_S": "0"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("IVR_JOB_FAILPOINT", raising=False)
    return env


def database(app: Flask) -> Database:
    db: Database = app.extensions["centralita"].components["database"]
    return db


def counts(db: Database, sid: str) -> tuple[int, int, int]:
    with db.session() as s:
        return (s.scalar(select(func.count()).select_from(m.CallRow)
                         .where(m.CallRow.call_sid == sid)) or 0,
                s.scalar(select(func.count()).select_from(m.CallEventRow)
                         .where(m.CallEventRow.call_sid == sid)) or 0,
                s.scalar(select(func.count()).select_from(m.SummaryRow)
                         .where(m.SummaryRow.call_sid == sid)) or 0)


def api_call(client: FlaskClient, sid: str) -> Any:
    resp = client.get(f"/api/calls/{sid}", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return resp.get_json()


@pytest.fixture()
def open_app(app: Flask) -> Flask:
    at(app, datetime(2026, 11, 23, 10, 30, tzinfo=MADRID))  # a Monday morning
    return app


def served_call(app: Flask, sim: Simulator) -> str:
    call = sim.call(from_=UNKNOWN, to=SUPPORT).start()
    call.press("1").press("*").press("1")  # Spanish, no account, billing
    call.queue_outcome("bridged", after=30, talk=60)
    assert call.heard("¿nos ayuda a mejorar respondiendo a dos preguntas breves?")
    call.press("2")  # the agent hung up first; the caller declines the survey
    assert call.ended
    flush(app)
    return call.call_sid


def test_served_call_is_filed_with_events_and_a_draft_summary(
        open_app: Flask, sim: Simulator, client: FlaskClient, job_env: dict[str, str],
        redis_url: str, redis_client: redis.Redis) -> None:
    sid = served_call(open_app, sim)
    assert Job.exists(f"finalize-{sid}", redis.Redis.from_url(redis_url))  # queued by the app
    run_jobs(redis_url)
    db = database(open_app)
    live_events = redis_client.xlen(f"ivr:call:{sid}:events")
    assert counts(db, sid) == (1, live_events, 1)
    doc = api_call(client, sid)
    assert doc["outcome"] == "served"
    assert doc["queue"] == "support" and doc["from_number"] == UNKNOWN
    assert doc["language"] == "es" and doc["line"] == "support" and doc["flow"] == "demo"
    assert doc["intents"] == ["billing"]
    nodes = [e["data"].get("node") for e in doc["events"] if e["kind"] == "node"]
    assert nodes[:2] == ["call", "choose_language"] and "billing_queue" in nodes
    assert doc["events"][-1]["kind"] == "status"
    summary = doc["summary"]
    assert summary["status"] == "draft" and summary["version"] == 1
    body = summary["body"]
    assert body["reason"] == {"summary": "billing", "intents": ["billing"]}
    assert body["resolution"] == "served"
    assert body["queue"]["name"] == "support" and body["queue"]["result"] == "bridged"
    assert [s.get("pressed") for s in body["caller_said"]] == ["1", "*", "1", "2"]
    assert body["ivr_path"][0] == "choose_language" and body["ivr_path"][-2:] == [
        "billing_queue", "survey"]
    assert body["follow_up"]["needed"] is False
    assert "Reason: billing." in body["text"]


def test_self_service_call_is_resolved_in_the_ivr(open_app: Flask, sim: Simulator,
                                                   client: FlaskClient, job_env: dict[str, str],
                                                   redis_url: str) -> None:
    call = sim.call(from_=UNKNOWN, to=SUPPORT).start()
    call.press("1").press("*").press("3").press("2")  # opening hours, then done
    call.press("2")  # no survey, thanks
    assert call.ended
    flush(open_app)
    run_jobs(redis_url)
    doc = api_call(client, call.call_sid)
    assert doc["outcome"] == "resolved_ivr"
    body = doc["summary"]["body"]
    assert body["self_service_answers"] == ["hours_answer"]
    assert body["reason"]["summary"] == "hours" and body["queue"] is None
    assert body["follow_up"] == {"needed": False, "reasons": [], "open": []}


def test_voicemail_on_a_closed_line_needs_a_follow_up(app: Flask, sim: Simulator,
                                                      client: FlaskClient,
                                                      job_env: dict[str, str],
                                                      redis_url: str) -> None:
    at(app, datetime(2026, 11, 22, 12, 0, tzinfo=MADRID))  # a Sunday
    call = sim.call(from_=UNKNOWN, to=SUPPORT).start()
    call.press("1").press("1")
    call.record(seconds=12)
    flush(app)
    run_jobs(redis_url)
    doc = api_call(client, call.call_sid)
    assert doc["outcome"] == "voicemail"
    follow = doc["summary"]["body"]["follow_up"]
    assert follow["needed"] and follow["reasons"] == ["voicemail left (12 s)"]


def test_a_duplicate_or_retried_job_changes_nothing(open_app: Flask, sim: Simulator,
                                                    job_env: dict[str, str],
                                                    redis_url: str) -> None:
    sid = served_call(open_app, sim)
    run_jobs(redis_url)
    db = database(open_app)
    before = (counts(db, sid), db.calls.get(sid))
    conn = redis.Redis.from_url(redis_url)
    queue = Queue("default", connection=conn, serializer=JSONSerializer)
    queue.enqueue("recordings.jobs.finalize_call", sid, job_id=f"finalize-{sid}")
    queue.enqueue("recordings.jobs.finalize_call", sid)  # a second, differently named job
    run_jobs(redis_url)
    assert (counts(db, sid), db.calls.get(sid)) == before


def test_an_approved_summary_is_never_replaced(open_app: Flask, sim: Simulator,
                                               client: FlaskClient, job_env: dict[str, str],
                                               redis_url: str) -> None:
    sid = served_call(open_app, sim)
    run_jobs(redis_url)
    db = database(open_app)
    body = dict(db.summaries.current(sid)["body"], text="Customer disputes invoice 7.")
    db.summaries.approve(sid, 1, by="agent-ana", body=body)
    Queue("default", connection=redis.Redis.from_url(redis_url),
          serializer=JSONSerializer).enqueue("recordings.jobs.finalize_call", sid)
    run_jobs(redis_url)
    summary = api_call(client, sid)["summary"]
    assert summary["status"] == "approved" and summary["body"]["text"] == body["text"]
    assert counts(db, sid)[2] == 1


def test_a_job_failing_after_its_first_write_then_rerun_leaves_one_of_each(
        open_app: Flask, sim: Simulator, job_env: dict[str, str], redis_url: str,
        redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IVR_JOB_FAILPOINT", "after_call_row")
    sid = served_call(open_app, sim)
    run_jobs(redis_url)
    db = database(open_app)
    conn = redis.Redis.from_url(redis_url)
    failed = FailedJobRegistry("default", connection=conn, serializer=JSONSerializer)
    assert failed.get_job_ids() == [f"finalize-{sid}"]
    assert counts(db, sid) == (1, 0, 0)  # the row was written, then the job died
    monkeypatch.delenv("IVR_JOB_FAILPOINT")
    failed.requeue(f"finalize-{sid}")
    run_jobs(redis_url)
    assert counts(db, sid) == (1, redis_client.xlen(f"ivr:call:{sid}:events"), 1)
    assert db.calls.get(sid)["outcome"] == "served"


def test_a_worker_killed_mid_job_then_restarted_leaves_one_of_each(
        open_app: Flask, sim: Simulator, job_env: dict[str, str], redis_url: str,
        redis_client: redis.Redis) -> None:
    sid = served_call(open_app, sim)
    script = ("import redis, sys\n"
              "from rq import Queue, SimpleWorker\n"
              "from rq.serializers import JSONSerializer\n"
              "c = redis.Redis.from_url(sys.argv[1])\n"
              "q = Queue('default', connection=c, serializer=JSONSerializer)\n"
              "SimpleWorker([q], connection=c, serializer=JSONSerializer).work(burst=True)\n")
    env = {**os.environ, **job_env, "IVR_JOB_FAILPOINT": "after_events:kill",
           "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", script, redis_url], env=env, cwd=REPO,
                          capture_output=True, timeout=120, check=False)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    db = database(open_app)
    live_events = redis_client.xlen(f"ivr:call:{sid}:events")
    assert counts(db, sid) == (1, live_events, 0)  # killed after the events, before the summary
    # A restarted worker picks the job up again (here: queued again under its id).
    Queue("default", connection=redis.Redis.from_url(redis_url),
          serializer=JSONSerializer).enqueue("recordings.jobs.finalize_call", sid,
                                             job_id=f"finalize-{sid}")
    run_jobs(redis_url)
    assert counts(db, sid) == (1, live_events, 1)
    run_jobs(redis_url)
    assert counts(db, sid) == (1, live_events, 1)
