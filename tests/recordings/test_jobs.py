"""The recording job against the fake Twilio cloud, real SQLite, real Vosk (Korean),
real Redis and RQ: stored encrypted, deleted from Twilio, transcribed, idempotent."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from rq import Queue, SimpleWorker
from rq.job import Job
from rq.serializers import JSONSerializer

from ivr.store import CallRecords
from recordings import jobs
from recordings.model import utcnow
from recordings.storage import RecordingStorage
from recordings.store import Database
from recordings.twilio_rest import TwilioRestError, recording_sid
from tests.fakes import FakeTwilioCloud, make_wav

CALL = "CA" + "a" * 32


@pytest.fixture(scope="session")
def korean_wav(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    espeak, sox = shutil.which("espeak-ng"), shutil.which("sox")
    if espeak is None or sox is None:
        pytest.fail("espeak-ng and sox are needed: run `make test` (it installs them)")
    base = tmp_path_factory.mktemp("ko")
    subprocess.run([espeak, "-v", "ko", "-w", str(base / "raw.wav"),
                    "안녕하세요 주문 상태를 알고 싶어요"], check=True)
    subprocess.run([sox, str(base / "raw.wav"), "-r", "8000", "-b", "16", "-c", "1",
                    str(base / "ko.wav")], check=True)
    return (base / "ko.wav").read_bytes()


@pytest.fixture()
def env(monkeypatch: pytest.MonkeyPatch, data_dir: Path, redis_url: str,
        twilio_cloud: FakeTwilioCloud) -> dict[str, str]:
    values = {"IVR_DATA_DIR": str(data_dir), "REDIS_URL": redis_url,
              "IVR_SECRET_KEY": "job-secret", "IVR_FINALIZE_SETTLE_S": "0",
              "IVR_VOSK_MODEL_DIR": str(data_dir / "models"), **twilio_cloud.env()}
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    for key in ("DATABASE_URL", "IVR_JOB_FAILPOINT", "IVR_MAX_RECORDING_MB",
                "IVR_RETENTION_RECORDINGS_DAYS"):
        monkeypatch.delenv(key, raising=False)
    return values


@pytest.fixture()
def db(env: dict[str, str], data_dir: Path) -> Database:
    return Database(f"sqlite:///{(data_dir / 'centralita.db').resolve()}")


def a_call(db: Database, language: str | None) -> None:
    db.calls.record_start(CALL, from_number="+34699000111", to_number="+34930001000",
                          started_at=utcnow(), language=language)


def rows(db: Database) -> dict[str, Any]:
    doc = db.calls.get(CALL)
    assert doc is not None
    return doc


def test_recording_sid_from_a_url_or_a_sid() -> None:
    sid = "RE" + "0123456789abcdef" * 2
    assert recording_sid(sid) == sid
    assert recording_sid(f"https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/{sid}.wav") == sid
    with pytest.raises(TwilioRestError, match="neither"):
        recording_sid("https://example.com/voice.mp3")


def test_korean_voicemail_stored_encrypted_deleted_from_twilio_and_transcribed(
        db: Database, twilio_cloud: FakeTwilioCloud, korean_wav: bytes, data_dir: Path) -> None:
    a_call(db, "ko")
    rec = twilio_cloud.add_recording(wav=korean_wav, call_sid=CALL, not_ready_for=1)
    result = jobs.fetch_recording(CALL, rec.url, "voicemail")
    assert result == {"call_sid": CALL, "recording_sid": rec.sid, "stored": True,
                      "transcript": "done"}
    assert twilio_cloud.deleted_recordings == [rec.sid]
    assert rec.fetches == 2  # 404 while "processing", then the audio
    doc = rows(db)
    [recording] = doc["recordings"]
    assert recording["recording_sid"] == rec.sid and recording["kind"] == "voicemail"
    assert recording["duration_s"] == pytest.approx(3.2, abs=0.05)
    stored = RecordingStorage(data_dir, "job-secret").read(CALL, rec.sid)
    assert stored == korean_wav
    assert korean_wav[:64] not in (data_dir / recording["path"]).read_bytes()
    [transcript] = doc["transcripts"]
    assert transcript["language"] == "ko" and transcript["recording_id"] == recording["id"]
    words = transcript["words"]
    assert words and transcript["text"] == " ".join(w[0] for w in words)
    assert all(0 <= w[1] <= w[2] <= 3.3 for w in words)
    assert [w[1] for w in words] == sorted(w[1] for w in words)
    # Again: nothing new is fetched, stored or transcribed.
    again = jobs.fetch_recording(CALL, rec.sid, "voicemail")
    assert again["stored"] == "already" and again["transcript"] == "already"
    assert rec.fetches == 2 and len(rows(db)["transcripts"]) == 1


def test_no_model_for_the_language_leaves_the_transcript_pending_with_the_reason(
        db: Database, twilio_cloud: FakeTwilioCloud) -> None:
    a_call(db, "es")
    rec = twilio_cloud.add_recording(seconds=1.0, call_sid=CALL)
    result = jobs.fetch_recording(CALL, rec.sid)
    assert result["stored"] is True and result["transcript"] == "pending"
    [note] = [e for e in rows(db)["events"] if e["kind"] == "transcript_pending"]
    assert "ivr models download es" in note["data"]["reason"]
    jobs.fetch_recording(CALL, rec.sid)
    assert len([e for e in rows(db)["events"] if e["kind"] == "transcript_pending"]) == 1


def test_killed_after_storing_then_rerun_finishes_without_duplicates(
        db: Database, twilio_cloud: FakeTwilioCloud, monkeypatch: pytest.MonkeyPatch) -> None:
    a_call(db, "es")
    rec = twilio_cloud.add_recording(seconds=1.0, call_sid=CALL)
    monkeypatch.setenv("IVR_JOB_FAILPOINT", "after_recording_row")
    with pytest.raises(jobs.FailpointHit):
        jobs.fetch_recording(CALL, rec.sid)
    assert rec.sid in twilio_cloud.recordings  # not deleted before it was safely stored
    monkeypatch.delenv("IVR_JOB_FAILPOINT")
    assert jobs.fetch_recording(CALL, rec.sid)["stored"] == "already"
    assert twilio_cloud.deleted_recordings == [rec.sid]
    assert len(rows(db)["recordings"]) == 1 and rec.fetches == 1


def test_a_too_large_recording_stays_on_twilio_and_is_reported(
        db: Database, twilio_cloud: FakeTwilioCloud, monkeypatch: pytest.MonkeyPatch,
        data_dir: Path) -> None:
    a_call(db, "es")
    monkeypatch.setenv("IVR_MAX_RECORDING_MB", "0.01")  # about 10 kB
    rec = twilio_cloud.add_recording(seconds=2.0, call_sid=CALL)  # 32 kB
    result = jobs.fetch_recording(CALL, rec.sid)
    assert result["stored"] is False and "IVR_MAX_RECORDING_MB" in result["reason"]
    assert rec.sid in twilio_cloud.recordings and not rows(db)["recordings"]
    assert not list(data_dir.glob("recordings/*"))  # no partial file left behind
    assert [e["kind"] for e in rows(db)["events"]] == ["recording_pending"]


def test_finalize_queues_the_recording_job_once_and_the_worker_stores_it(
        db: Database, twilio_cloud: FakeTwilioCloud, redis_url: str,
        redis_client: redis.Redis) -> None:
    rec = twilio_cloud.add_recording(wav=make_wav(1.5), call_sid=CALL)
    session = {"call_sid": CALL, "line": "support", "flow": "demo", "node": "leave_voicemail",
               "language": "es", "vars": {}, "outcome": None}
    now = time.time()
    records = CallRecords(redis_client)
    records.record_steps([
        (CALL, 1, session, [{"kind": "call_started", "from": "+34699000111",
                             "to": "+34930001000", "at": now},
                            {"node": "leave_voicemail", "type": "voicemail", "input": None,
                             "outcome": "recording"}]),
        (CALL, 2, session, [{"node": "leave_voicemail", "type": "voicemail",
                             "input": "recording:2s", "outcome": "recorded"},
                            {"kind": "recording", "recording_sid": rec.sid, "url": rec.url,
                             "purpose": "voicemail", "duration_s": 2, "at": now + 9}])])
    records.record_status(CALL, "completed", "0", True, {"kind": "status", "status": "completed",
                          "duration": "12", "at": now + 12}, "+34699000111", now + 12)
    first = jobs.finalize_call(CALL)
    assert first["outcome"] == "voicemail" and first["recordings_queued"] == 1
    assert jobs.finalize_call(CALL)["recordings_queued"] == 0  # already queued
    conn = redis.Redis.from_url(redis_url)
    assert Job.exists(f"recording-{rec.sid}", conn)
    queue = Queue("default", connection=conn, serializer=JSONSerializer)
    SimpleWorker([queue], connection=conn, serializer=JSONSerializer).work(
        burst=True, logging_level="WARNING")
    assert twilio_cloud.deleted_recordings == [rec.sid]
    doc = rows(db)
    assert [r["recording_sid"] for r in doc["recordings"]] == [rec.sid]
    assert jobs.finalize_call(CALL)["recordings_queued"] == 0  # stored: not again
    assert doc["summary"]["body"]["pending"] and doc["summary"]["version"] == 2


def test_retention_removes_old_recordings_transcripts_and_events(
        db: Database, twilio_cloud: FakeTwilioCloud, data_dir: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    a_call(db, "es")
    rec = twilio_cloud.add_recording(seconds=1.0, call_sid=CALL)
    jobs.fetch_recording(CALL, rec.sid)
    db.calls.add_transcript(CALL, "hola", language="es")
    path = data_dir / rows(db)["recordings"][0]["path"]
    assert jobs.apply_retention() == {"recordings": 0, "recording_files": 0, "transcripts": 0,
                                      "events": 0}
    monkeypatch.setenv("IVR_RETENTION_RECORDINGS_DAYS", "30")
    removed = jobs.apply_retention(time.time() + 31 * 86400)
    assert removed == {"recordings": 1, "recording_files": 1, "transcripts": 0, "events": 0}
    assert not path.exists() and rows(db)["transcripts"]
    removed = jobs.apply_retention(time.time() + 400 * 86400)
    assert removed["transcripts"] == 1 and removed["events"] == 1
