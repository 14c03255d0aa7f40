"""Whole-call recording through the real webhooks and the fake Twilio cloud.

A line with ``record_calls: true`` tells the caller first, then the server starts the
recording with Twilio's REST API (``Calls/{sid}/Recordings.json``); a card-number node
pauses it (``Recordings/Twilio.CURRENT.json`` ``Status=paused``, ``PauseBehavior=skip``)
and the next node resumes it. When the call ends the fake posts the signed
``RecordingStatusCallback`` to ``/voice/recording-status``; a real RQ worker then
fetches the audio, stores it encrypted, deletes it from Twilio and hands it to the
transcription job; ``GET /api/recordings/<id>`` streams it back to authorised users.
If the pause fails the recording may hold the digits: it is deleted, never stored.

The app gets its ``CallRecorder`` here the way ``ivr.app`` is to wire it
(``CallRecorder.from_settings``), pointed at the fake.

A note on what is not Twilio here: the fake completes the recording when the call
ends and serves a tone of the recorded length; it checks our requests and models the
pause (``skip`` leaves the paused stretch out), not Twilio's audio.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from ivr.app import create_app
from ivr.settings import Settings
from ivr.simulator import SimulatedCall, Simulator, TestClientTransport
from ivr.twilio_rest import RECORDER_RETRY, CallRecorder, TwilioRest
from recordings.storage import RecordingStorage
from tests.fakes import FakeTwilioCloud, basic_auth
from tests.ivr.conftest import ADMIN_TOKEN, AUTH_TOKEN, BASE, flush
from tests.ivr.test_calls_e2e import MADRID, at
from tests.jobs import run_jobs

LINE = "+34930000000"
CARD = "4111111111111111"
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
FLOW = """\
flow: pay
version: "1"
languages: [es]
start: menu
human: agent
nodes:
  menu:
    type: menu
    prompt: "Para pagar con tarjeta, pulse 1."
    options:
      pay: {key: 1, say: [pagar], next: card}
  card:
    type: ask
    var: card
    sensitive: true
    validate: {length: [13, 19], luhn: true}
    prompt: "Marque el número de la tarjeta y pulse almohadilla."
    next: done
  done:
    type: hangup
    prompt: "Pago registrado con la tarjeta terminada en {vars.card|last4}. Adiós."
  agent:
    type: queue
    topic: payments
"""
LINES = f"""\
lines:
  pay:
    default: true
    numbers: ["{LINE}"]
    flow: pay
    language: es
    languages: [es]
    timezone: Europe/Madrid
    record_calls: true
"""


@pytest.fixture()
def recorded_app(data_dir: Path, redis_url: str, cloud: FakeTwilioCloud,
                 tmp_path: Path) -> Iterator[Flask]:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "pay.yaml").write_text(FLOW, encoding="utf-8")
    (flows / "lines.yaml").write_text(LINES, encoding="utf-8")
    settings = Settings(data_dir=data_dir, redis_url=redis_url, twilio_auth_token=AUTH_TOKEN,
                        twilio_account_sid=cloud.account_sid, twilio_api_url=cloud.url,
                        admin_token=ADMIN_TOKEN, flows_dir=flows, secret_key="test-secret",
                        public_url=BASE)
    app = create_app(settings)
    services = app.extensions["centralita"]
    # As CallRecorder.from_settings, with patient timeouts: a loaded CI machine must not
    # turn a slow fake into a failed request (the retry count, which the tests rely on,
    # stays the production one).
    rest = TwilioRest.from_settings(settings, retry=replace(RECORDER_RETRY, timeout=(10.0, 30.0)))
    services.components["calls"].recorder = CallRecorder(rest, settings.public_url)
    at(app, datetime(2026, 11, 23, 10, 30, tzinfo=MADRID))
    yield app
    flush(app)


@pytest.fixture()
def job_env(monkeypatch: pytest.MonkeyPatch, data_dir: Path, redis_url: str,
            cloud: FakeTwilioCloud) -> None:
    env = {"IVR_DATA_DIR": str(data_dir), "REDIS_URL": redis_url,
           "IVR_SECRET_KEY": "test-secret", "IVR_FINALIZE_SETTLE_S": "0", **cloud.env()}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for key in ("DATABASE_URL", "IVR_JOB_FAILPOINT"):
        monkeypatch.delenv(key, raising=False)


@pytest.fixture()
def client(recorded_app: Flask) -> FlaskClient:
    return recorded_app.test_client()


@pytest.fixture()
def sim(client: FlaskClient) -> Simulator:
    return Simulator(BASE, AUTH_TOKEN, transport=TestClientTransport(client))


def card_call(sim: Simulator, cloud: FakeTwilioCloud) -> SimulatedCall:
    call = cloud.track(sim.call(from_="+34699000111", to=LINE))
    call.start()
    assert call.heard("Le informamos de que esta llamada se grabará")
    assert call.heard("Para pagar con tarjeta")
    return call


def recording_requests(cloud: FakeTwilioCloud) -> list[tuple[str, dict[str, list[str]], int]]:
    return [(r.path.split("/Calls/", 1)[1].split("/", 1)[1], r.form, r.status)
            for r in cloud.requests if "/Recordings" in r.path and "/Calls/" in r.path]


def test_the_caller_is_told_then_recorded_and_card_digits_are_left_out(
        sim: Simulator, cloud: FakeTwilioCloud, recorded_app: Flask, client: FlaskClient,
        job_env: None, redis_url: str, data_dir: Path) -> None:
    call = card_call(sim, cloud)
    [start] = recording_requests(cloud)
    assert start[0] == "Recordings.json" and start[2] == 201
    assert start[1]["RecordingStatusCallback"] == [f"{BASE}/voice/recording-status"]
    assert start[1]["RecordingStatusCallbackEvent"] == ["completed", "absent"]
    [live] = cloud.live_recordings.values()
    assert live.call_sid == call.call_sid and live.started_at > 0  # after the notice played
    call.press("1")
    assert call.heard("Marque el número de la tarjeta")
    assert live.status == "paused"
    paused_at = call.clock
    call.press(CARD + "#")
    assert call.heard("terminada en 1 1 1 1") and call.ended
    assert live.history == ["in-progress", "paused", "in-progress", "completed"]
    assert [(path, form.get("Status"), form.get("PauseBehavior")) for path, form, _ in
            recording_requests(cloud)[1:]] == [
        ("Recordings/Twilio.CURRENT.json", ["paused"], ["skip"]),
        ("Recordings/Twilio.CURRENT.json", ["in-progress"], None)]
    # The paused stretch (the card prompt and the keys) is not in the recording.
    assert live.kept < call.clock - live.started_at - (call.clock - paused_at) + 5
    [posted] = cloud.recording_callbacks
    assert posted["answer"] == "204" and posted["CallSid"] == call.call_sid
    flush(recorded_app)
    run_jobs(redis_url)
    database = recorded_app.extensions["centralita"].components["database"]
    doc = database.calls.get(call.call_sid)
    [recording] = doc["recordings"]
    assert recording["kind"] == "call" and recording["recording_sid"] == live.sid
    assert cloud.deleted_recordings == [live.sid]
    stored = RecordingStorage(data_dir, "test-secret")
    audio = stored.read(call.call_sid, live.sid)
    assert audio[:4] == b"RIFF" and audio[:64] not in (data_dir / recording["path"]).read_bytes()
    controls = [e["data"] for e in doc["events"] if e["kind"] == "call_recording"]
    assert [c["state"] for c in controls] == ["start", "paused", "in-progress"]
    assert not any("error" in c for c in controls)
    assert CARD not in str(doc)  # nowhere in the call's record
    # No Spanish model here: the transcription job says so instead of guessing.
    assert any(e["kind"] == "transcript_pending" and live.sid in e["data"]["reason"]
               for e in doc["events"])
    # The call lists its recording by id; the id streams it back, audited.
    listed = client.get(f"/api/calls/{call.call_sid}", headers=AUTH).get_json()
    assert listed["recording_ids"] == [recording["id"]]
    assert listed["recordings"][0]["url"] == f"/api/recordings/{recording['id']}"
    got = client.get(f"/api/recordings/{recording['id']}", headers=AUTH)
    assert got.status_code == 200 and got.data == audio and got.mimetype == "audio/wav"


def test_a_duplicate_or_forged_status_callback_changes_nothing(
        sim: Simulator, cloud: FakeTwilioCloud, recorded_app: Flask, client: FlaskClient,
        job_env: None, redis_url: str) -> None:
    call = card_call(sim, cloud)
    call.hangup()
    [posted] = cloud.recording_callbacks
    params = {k: v for k, v in posted.items() if k != "answer"}
    again = cloud.recording_callbacks
    from twilio.request_validator import RequestValidator

    url = f"{BASE}/voice/recording-status"
    signature = RequestValidator(AUTH_TOKEN).compute_signature(url, params)
    assert client.post(url, data=params, headers={"X-Twilio-Signature": signature}
                       ).status_code == 204  # Twilio retried: still one job
    assert client.post(url, data=params, headers={"X-Twilio-Signature": "forged"}
                       ).status_code == 403
    bad = dict(params, RecordingSid="RE123")
    assert client.post(url, data=bad, headers={
        "X-Twilio-Signature": RequestValidator(AUTH_TOKEN).compute_signature(url, bad)}
    ).status_code == 400
    flush(recorded_app)
    run_jobs(redis_url)
    doc = recorded_app.extensions["centralita"].components["database"].calls.get(call.call_sid)
    assert len(doc["recordings"]) == 1 and len(again) == 1


def test_a_failed_pause_means_the_recording_is_deleted_not_stored(
        sim: Simulator, cloud: FakeTwilioCloud, recorded_app: Flask, job_env: None,
        redis_url: str, data_dir: Path) -> None:
    call = card_call(sim, cloud)
    cloud.fail(times=2, status=503)  # the pause request and its one retry
    call.press("1").press(CARD + "#")
    assert call.ended and call.heard("terminada en 1 1 1 1")  # the caller noticed nothing
    [live] = cloud.live_recordings.values()
    assert "paused" not in live.history
    flush(recorded_app)
    run_jobs(redis_url)
    doc = recorded_app.extensions["centralita"].components["database"].calls.get(call.call_sid)
    assert doc["recordings"] == [] and cloud.deleted_recordings == [live.sid]
    [discarded] = [e["data"] for e in doc["events"] if e["kind"] == "recording_discarded"]
    assert "never stored" in discarded["reason"]
    assert not list(data_dir.glob("recordings/*"))


def test_fake_cloud_refuses_recordings_like_twilio(cloud: FakeTwilioCloud, sim: Simulator
                                                   ) -> None:
    auth = {"Authorization": basic_auth(cloud.account_sid, cloud.auth_token)}
    base = f"{cloud.url}/2010-04-01/Accounts/{cloud.account_sid}/Calls"
    unknown = requests.post(f"{base}/CA{'0' * 32}/Recordings.json", headers=auth, timeout=5)
    assert unknown.status_code == 404 and unknown.json()["code"] == 20404
    call = cloud.track(sim.call(from_="+34699000111", to=LINE))  # not answered yet
    early = requests.post(f"{base}/{call.call_sid}/Recordings.json", headers=auth, timeout=5)
    assert early.status_code == 400 and early.json()["code"] == 21220
    none = requests.post(f"{base}/{call.call_sid}/Recordings/Twilio.CURRENT.json",
                         data={"Status": "paused"}, headers=auth, timeout=5)
    assert none.status_code == 404 and none.json()["code"] == 20404


def test_without_a_public_url_the_callback_is_the_url_twilio_called(
        recorded_app: Flask, sim: Simulator, cloud: FakeTwilioCloud) -> None:
    calls = recorded_app.extensions["centralita"].components["calls"]
    calls.recorder = CallRecorder(calls.recorder.rest, None)  # IVR_PUBLIC_URL unset
    card_call(sim, cloud)
    starts = [r for r in recording_requests(cloud) if r[0] == "Recordings.json"]
    assert len(starts) == 1 and starts[0][2] == 201
    assert starts[0][1]["RecordingStatusCallback"] == [f"{BASE}/voice/recording-status"]


def test_a_retried_step_does_not_start_a_second_recording(
        recorded_app: Flask, client: FlaskClient, sim: Simulator,
        cloud: FakeTwilioCloud) -> None:
    from twilio.request_validator import RequestValidator

    call = card_call(sim, cloud)
    first = next(r for r in call.requests if "/voice/step" in r.url)  # after the notice
    path = first.url.removeprefix(BASE)
    params = dict(first.params)
    signature = RequestValidator(AUTH_TOKEN).compute_signature(BASE + path, params)
    again = client.post(path, data=params, headers={"X-Twilio-Signature": signature})
    assert again.status_code == 200  # Twilio's retry gets its answer...
    starts = [r for r in recording_requests(cloud) if r[0] == "Recordings.json"]
    assert len(starts) == 1  # ...and the recording is started once
