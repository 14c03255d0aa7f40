"""`PUT /api/calls/<CallSid>/summary`: agents correct and approve the summary at wrap-up.

Real app on real Redis and SQLite; the CRM push it queues is run by a real RQ
``SimpleWorker`` (no webhook configured: the built-in SQL adapter).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from rq.job import Job
from rq.serializers import JSONSerializer

from recordings.customers import CustomerInput
from recordings.store import Database
from tests.ivr.conftest import ADMIN_TOKEN
from tests.ivr.test_after_call import job_env  # noqa: F401 (fixture)
from tests.jobs import run_jobs

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
SID = "CA" + "5" * 32
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
DRAFT = {"schema": 1, "call_sid": SID, "language": "es",
         "reason": {"summary": "order_status", "intents": ["order_status"]},
         "resolution": "resolved_ivr", "follow_up": {"needed": False, "reasons": [], "open": []}}


def _db(app: Flask) -> Database:
    database: Database = app.extensions["centralita"].components["database"]
    return database


@pytest.fixture()
def call(app: Flask) -> str:
    db = _db(app)
    db.customers.upsert(CustomerInput(name="Ana García", phone="+34600112233", language="es"))
    db.calls.record_start(SID, from_number="+34600112233", to_number="+34910000000",
                          started_at=NOW, language="es")
    db.calls.record_end(SID, ended_at=NOW, outcome="resolved_ivr")
    db.summaries.save_draft(SID, DRAFT)
    return SID


@pytest.fixture()
def agent(app: Flask) -> dict[str, str]:
    return {"Authorization": f"Bearer {_db(app).users.add('maria', 'agent').token}"}


def _put(client: FlaskClient, headers: dict[str, str], body: Any) -> Any:
    return client.put(f"/api/calls/{SID}/summary", json=body, headers=headers)


def test_corrections_become_the_approved_version(app: Flask, client: FlaskClient, call: str,
                                                 agent: dict[str, str], redis_url: str) -> None:
    corrected = {"summary": "refund", "intents": ["refund"]}
    response = _put(client, agent, {"version": 1, "summary": {
        "reason": corrected, "agent_note": "pagó con 4111 1111 1111 1111"}})
    assert response.status_code == 200, response.json
    approved = response.json
    assert (approved["version"], approved["status"], approved["approved_by"]) == (
        2, "approved", "maria")
    assert approved["body"]["reason"] == corrected
    assert approved["body"]["resolution"] == "resolved_ivr"  # untouched fields kept
    assert approved["body"]["agent_note"] == "pagó con **** **** **** 1111"

    shown = client.get(f"/api/calls/{SID}", headers=ADMIN).json
    assert shown["summary"]["version"] == 2 and shown["summary"]["body"]["reason"] == corrected
    assert [(s["version"], s["status"]) for s in shown["summaries"]] == [
        (1, "draft"), (2, "approved")]
    assert shown["summaries"][0]["body"] == DRAFT  # the machine's draft stays as it was
    customer = client.get("/api/customers?phone=%2B34600112233", headers=ADMIN).json
    assert customer["calls"][0]["summary"]["version"] == 2
    audit = [(e["actor"], e["action"], e["detail"]) for e in _db(app).audit.entries("call", SID)
             if e["action"] == "summary.approve"]
    assert audit == [("maria", "summary.approve",
                      {"version": 2, "fields": ["agent_note", "reason"]})]

    connection = redis.Redis.from_url(redis_url)
    job = Job.fetch(f"crm-{SID}-v2", connection=connection, serializer=JSONSerializer)
    assert (job.func_name, job.args) == ("recordings.jobs.push_to_crm", [SID])
    connection.close()


def test_the_queued_crm_push_runs(app: Flask, client: FlaskClient, call: str,
                                  agent: dict[str, str], redis_url: str,
                                  job_env: dict[str, str]) -> None:  # noqa: F811
    served = _put(client, agent, {"version": 1, "summary": {"resolution": "served"}})
    assert served.status_code == 200
    run_jobs(redis_url)
    connection = redis.Redis.from_url(redis_url)
    job = Job.fetch(f"crm-{SID}-v2", connection=connection, serializer=JSONSerializer)
    result = job.return_value()
    connection.close()
    assert result is not None
    assert (result["pushed"], result["adapter"], result["summary_version"]) == (True, "sql", 2)
    kinds = [e["kind"] for e in _db(app).calls.events(SID)]
    assert kinds.count("crm_pushed") == 1


def test_approve_without_changes_keeps_the_version(app: Flask, client: FlaskClient,
                                                   call: str, agent: dict[str, str]) -> None:
    response = _put(client, agent, {"version": 1})
    assert response.status_code == 200
    assert (response.json["version"], response.json["status"]) == (1, "approved")
    assert response.json["body"] == DRAFT
    assert len(client.get(f"/api/calls/{SID}", headers=ADMIN).json["summaries"]) == 1


def test_a_stale_version_is_409(client: FlaskClient, call: str, agent: dict[str, str]) -> None:
    served = _put(client, agent, {"version": 1, "summary": {"resolution": "served"}})
    assert served.status_code == 200
    late = _put(client, ADMIN, {"version": 1, "summary": {"resolution": "abandoned"}})
    assert late.status_code == 409
    assert late.json["error"] == "stale_version" and late.json["current"]["version"] == 2
    assert "reload" in late.json["detail"]
    shown = client.get(f"/api/calls/{SID}", headers=ADMIN).json["summary"]
    assert shown["body"]["resolution"] == "served"
    assert _put(client, agent, {"version": 7, "summary": {}}).status_code == 409


@pytest.mark.parametrize("body", [None, [], {"summary": {}}, {"version": "1"}, {"version": 0},
                                  {"version": True}, {"version": 1, "summary": ["x"]},
                                  {"version": 1, "summary": None}])
def test_bad_bodies_are_400(client: FlaskClient, call: str, agent: dict[str, str],
                            body: Any) -> None:
    response = (client.put(f"/api/calls/{SID}/summary", data="not json", headers=agent)
                if body is None else _put(client, agent, body))
    assert response.status_code == 400
    assert '"version"' in response.json["detail"]


def test_unknown_call_no_summary_and_no_token(app: Flask, client: FlaskClient, call: str,
                                              agent: dict[str, str]) -> None:
    unknown = client.put("/api/calls/CA" + "0" * 32 + "/summary", json={"version": 1},
                         headers=agent)
    assert unknown.status_code == 404
    other = "CA" + "6" * 32
    _db(app).calls.record_start(other, from_number=None, to_number=None, started_at=NOW)
    empty = client.put(f"/api/calls/{other}/summary", json={"version": 1}, headers=agent)
    assert empty.status_code == 404 and "no summary" in empty.json["detail"]
    assert _put(client, {}, {"version": 1}).status_code == 401
