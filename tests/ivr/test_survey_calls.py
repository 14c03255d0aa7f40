"""The post-call survey through the real webhooks, then the real jobs and the KPI report.

Scripted calls (signed requests, sealed state, real Redis and SQLite) answer the demo
flow's survey by keypad and by voice, after a self-service answer and after an agent;
the status callback files each call (RQ ``finalize_call``, run by a real worker); the
spoken comment is fetched from the fake Twilio cloud, stored encrypted, deleted there
and handed to the transcription job; ``GET /api/reports/kpis`` and ``ivr report kpis``
then show CSAT and NPS computed from those calls (hand-computed below).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from ivr.cli import cli
from ivr.simulator import Simulator
from recordings.storage import RecordingStorage
from tests.fakes import FakeTwilioCloud
from tests.ivr.conftest import ADMIN_TOKEN, flush
from tests.ivr.test_calls_e2e import MADRID, SUPPORT, UNKNOWN, at
from tests.jobs import run_jobs

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
DAY = "2026-11-23"


@pytest.fixture()
def job_env(monkeypatch: pytest.MonkeyPatch, data_dir: Path, redis_url: str,
            cloud: FakeTwilioCloud) -> dict[str, str]:
    env = {"IVR_DATA_DIR": str(data_dir), "REDIS_URL": redis_url,
           "IVR_SECRET_KEY": "test-secret", "IVR_FINALIZE_SETTLE_S": "0",
           "IVR_VOSK_MODEL_DIR": str(data_dir / "models"), **cloud.env()}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for key in ("DATABASE_URL", "IVR_JOB_FAILPOINT"):
        monkeypatch.delenv(key, raising=False)
    return env


@pytest.fixture()
def open_app(app: Flask) -> Flask:
    at(app, datetime(2026, 11, 23, 10, 30, tzinfo=MADRID))  # a Monday morning
    return app


def self_service_survey(sim: Simulator, cloud: FakeTwilioCloud) -> str:
    """Opening hours, nothing else, then the survey by keypad with a spoken comment."""
    call = sim.call(from_=UNKNOWN, to=SUPPORT).start()
    call.press("1").press("*").press("3").press("2")
    assert call.heard("Gracias por llamar a Centralita")
    assert call.heard("¿nos ayuda a mejorar respondiendo a dos preguntas breves?")
    call.press("1")
    assert call.heard("Del 1 al 5")
    call.press("4")
    assert call.heard("Del 0 al 10")
    call.press("10")  # two keys: 10 can be entered
    assert call.heard("Si quiere dejarnos un comentario") and call.pending == "Record"
    comment = cloud.recording_item(seconds=3.0, ended_by="#")
    call.record(comment.url, seconds=3.0, ended_by="#", sid=comment.sid)
    assert call.heard("Muchas gracias por sus respuestas") and call.ended
    return call.call_sid


def agent_survey_by_voice(sim: Simulator) -> str:
    """Billing, an agent who hangs up first, then the survey by voice, no comment."""
    call = sim.call(from_="+34699000555", to=SUPPORT).start()
    call.press("1").press("*").press("1")
    call.queue_outcome("bridged", after=15, talk=90)
    assert call.heard("¿nos ayuda a mejorar respondiendo a dos preguntas breves?")
    call.say("sí", confidence=0.9)
    call.say("dos", confidence=0.88)
    call.say("seis", confidence=0.9)
    call.silence()  # nothing to add: Twilio skips the empty <Record>
    assert call.heard("Muchas gracias por sus respuestas") and call.ended
    return call.call_sid


def declined(sim: Simulator) -> str:
    call = sim.call(from_="+34699000666", to=SUPPORT).start()
    call.press("1").press("*").press("3").press("2")
    call.press("2")
    assert call.heard("De acuerdo. Gracias por llamar.") and call.ended
    return call.call_sid


def kpis(client: FlaskClient) -> dict[str, Any]:
    resp = client.get(f"/api/reports/kpis?from={DAY}&to={DAY}&tz=Europe/Madrid", headers=AUTH)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    data: dict[str, Any] = resp.get_json()
    return data


def test_surveyed_calls_reach_the_kpi_report(open_app: Flask, sim: Simulator,
                                             client: FlaskClient, cloud: FakeTwilioCloud,
                                             job_env: dict[str, str], redis_url: str,
                                             data_dir: Path) -> None:
    first = self_service_survey(sim, cloud)
    second = agent_survey_by_voice(sim)
    third = declined(sim)
    flush(open_app)
    run_jobs(redis_url)
    run_jobs(redis_url)  # the comment's fetch, queued by the filing
    database = open_app.extensions["centralita"].components["database"]
    docs = {sid: database.calls.get(sid) for sid in (first, second, third)}
    answers = {sid: [e["data"] for e in doc["events"] if e["kind"] == "survey"]
               for sid, doc in docs.items()}
    assert [(a.get("csat"), a.get("nps")) for a in answers[first]] == [(4, None), (None, 10)]
    assert [(a.get("csat"), a.get("nps")) for a in answers[second]] == [(2, None), (None, 6)]
    assert answers[third] == []
    assert [docs[s]["outcome"] for s in (first, second, third)] == [
        "resolved_ivr", "served", "resolved_ivr"]
    # The comment: fetched, stored encrypted, deleted from Twilio, sent to transcription
    # (no Spanish model on this machine: pending, with the reason).
    [recording] = docs[first]["recordings"]
    assert recording["kind"] == "survey" and recording["recording_sid"] in cloud.deleted_recordings
    stored = RecordingStorage(data_dir, "test-secret").read(first, recording["recording_sid"])
    assert stored[:4] == b"RIFF"
    pending = [e["data"]["reason"] for e in docs[first]["events"]
               if e["kind"] == "transcript_pending"]
    assert pending and "es" in pending[0]
    # Hand-computed: CSAT 4 and 2 -> 1 of 2 satisfied (50 %), mean 3.0; NPS 10 (promoter)
    # and 6 (detractor) -> 50 % - 50 % = 0.
    report = kpis(client)
    everything = next(r for r in report["rows"] if r["group"] == "all")
    assert (everything["csat_pct"], everything["csat_avg"], everything["csat_n"]) == (50.0, 3.0, 2)
    assert (everything["nps"], everything["nps_n"]) == (0.0, 2)
    by_queue = {r["key"]: r for r in report["rows"] if r["group"] == "queue"}
    assert by_queue["support"]["csat_avg"] == 2.0 and by_queue["support"]["nps"] == -100.0
    assert by_queue["(no queue)"]["csat_avg"] == 4.0 and by_queue["(no queue)"]["nps"] == 100.0
    funnel = {(s["flow"], s["node"]): s["reached"] for s in report["funnel"]}
    assert funnel[("demo", "survey")] == 3
    # The command line shows the same figures.
    result = CliRunner().invoke(cli, ["report", "kpis", "--from", DAY, "--to", DAY,
                                      "--tz", "Europe/Madrid", "--format", "json"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert next(r for r in printed["rows"] if r["group"] == "all")["nps"] == 0.0
