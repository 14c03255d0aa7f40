"""RQ jobs after a call: file it, fetch its recordings, enforce retention.

Jobs take IDs, use the JSON serializer and are idempotent: every write is keyed
(call row by CallSid, events by their stable ``seq``, recordings by RecordingSid,
transcripts by recording, summary drafts saved only when the content changed), so
a retried job, a duplicate, or a job killed with ``kill -9`` half-way and run again
leaves exactly one of each. Settings come from the environment
(:class:`recordings.config.JobConfig`); the Redis connection is the worker's.

``IVR_JOB_FAILPOINT=<point>`` (or ``<point>:kill``) makes a job fail (or kill its
own process) at a named point; the tests use it to prove the above.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
import zlib
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from rq import Queue, Retry, get_current_job
from rq.job import Job
from rq.serializers import JSONSerializer
from sqlalchemy import delete, select

from recordings import model as m
from recordings.config import JobConfig
from recordings.errors import RecordingsError
from recordings.live_calls import read_call
from recordings.privacy import redact_value
from recordings.storage import EncryptedStore
from recordings.store import Database
from recordings.summaries import CallFacts, analyse, build_summary
from recordings.twilio_rest import NotReady, TooLarge, TwilioRest, TwilioRestError
from recordings.twilio_rest import recording_sid as parse_recording_sid

log = logging.getLogger(__name__)

JOB_EVENT_BASE = 1_100_000_000  # seq space of events the jobs add (after status events)
RECORDING_RETRY_INTERVALS = [10, 60, 300, 1800]
_databases: dict[str, Database] = {}
_lock = threading.Lock()


class JobError(RecordingsError):
    """An after-call job cannot do its work; the message says why and what to do."""


class FailpointHit(JobError):
    """Raised at ``IVR_JOB_FAILPOINT`` (fault-injection for the reliability tests)."""


def _failpoint(name: str) -> None:
    wanted = os.environ.get("IVR_JOB_FAILPOINT", "")
    point, _, action = wanted.partition(":")
    if point != name:
        return
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    raise FailpointHit(f"failpoint {name} reached (IVR_JOB_FAILPOINT)")


def _database(config: JobConfig) -> Database:
    url = config.effective_database_url
    with _lock:
        if url not in _databases:
            if url.startswith("sqlite:///"):
                config.data_dir.mkdir(parents=True, exist_ok=True)
            _databases[url] = Database(url)
        return _databases[url]


def _redis(config: JobConfig) -> redis.Redis:
    job = get_current_job()
    if job is not None:
        return job.connection
    return redis.Redis.from_url(config.effective_redis_url)


def _time(value: float | None) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if value is not None else None


def job_event_seq(kind: str, key: str) -> int:
    """A stable event number for what a job records (same kind and key: same seq)."""
    return JOB_EVENT_BASE + zlib.crc32(f"{kind}:{key}".encode()) % 90_000_000


# ---------------------------------------------------------------------- finalize_call


def finalize_call(call_sid: str) -> dict[str, Any]:
    """File an ended call: SQL call row, events (redacted), recordings jobs, summary."""
    config = JobConfig.from_env()
    client = _redis(config)
    db = _database(config)
    live = read_call(client, call_sid)
    if live.ended_at is not None and config.settle_s > 0:
        # The status callback may beat the webhook's last step records to Redis.
        left = live.ended_at + config.settle_s - time.time()
        if left > 0:
            time.sleep(min(left, config.settle_s))
            live = read_call(client, call_sid)
    if live.session is None and not live.events:
        if db.calls.get(call_sid) is not None:
            return {"call_sid": call_sid, "note": "already filed; Redis record expired"}
        raise JobError(f"no record of call {call_sid} in Redis: it never reached the "
                       "webhooks, or it was erased or expired")
    facts = analyse(call_sid, live.events, live.session)
    started = _time(facts.started_at) or _time(live.ended_at) or m.utcnow()
    db.calls.record_start(call_sid, from_number=facts.from_number, to_number=facts.to_number,
                          started_at=started, line=facts.line, language=facts.language,
                          customer_id=facts.customer_id, flow=facts.flow,
                          flow_version=facts.flow_version)
    _failpoint("after_call_row")
    db.calls.record_end(call_sid, ended_at=_time(facts.ended_at) or started,
                        outcome=facts.outcome.value, queue=facts.queue,
                        queue_wait_s=facts.queue_wait_s, agent_id=facts.agent_id,
                        handle_time_s=facts.handle_time_s, intents=facts.intents,
                        language=facts.language)
    added = db.calls.add_events(call_sid, [_sql_event(e, facts, started) for e in live.events])
    _failpoint("after_events")
    queued = _queue_recordings(client, db, call_sid, facts)
    version, created = save_summary(db, call_sid, facts)
    return {"call_sid": call_sid, "outcome": facts.outcome.value, "events_added": added,
            "recordings_queued": queued, "summary_version": version,
            "summary_created": created}


def _sql_event(event: Mapping[str, Any], facts: CallFacts, started: datetime
               ) -> dict[str, Any]:
    at = event.get("at")
    if at is None:
        t = event.get("t")
        at = (started + timedelta(seconds=float(t))) if t is not None else started
    kind = event.get("kind") or ("node" if event.get("node") else "event")
    data = {k: v for k, v in event.items() if k not in ("seq", "at", "kind")}
    return {"seq": event["seq"], "at": at, "kind": kind, "data": data}


def _queue_recordings(client: redis.Redis, db: Database, call_sid: str,
                      facts: CallFacts) -> int:
    queued = 0
    for rec in facts.recordings:
        try:
            sid = parse_recording_sid(str(rec.get("recording_sid") or rec.get("url") or ""))
        except TwilioRestError:
            log.warning("call %s: recording event without a usable SID: %s", call_sid, rec)
            continue
        if _recording_row(db, sid) is not None or Job.exists(f"recording-{sid}", client):
            continue
        Queue("default", connection=client, serializer=JSONSerializer).enqueue(
            "recordings.jobs.fetch_recording", call_sid, sid,
            str(rec.get("purpose") or "voicemail"), job_id=f"recording-{sid}",
            retry=Retry(max=len(RECORDING_RETRY_INTERVALS), interval=RECORDING_RETRY_INTERVALS),
            result_ttl=3600, failure_ttl=30 * 24 * 3600)
        queued += 1
    return queued


def save_summary(db: Database, call_sid: str, facts: CallFacts) -> tuple[int | None, bool]:
    """Save a new draft unless the newest version already says the same, or an agent
    approved one (their version wins). Returns (current version, whether saved)."""
    document = db.calls.get(call_sid) or {}
    transcripts = document.get("transcripts") or []
    pending = [str((e.get("data") or {}).get("reason")) for e in document.get("events") or []
               if e.get("kind") in ("transcript_pending", "recording_pending")]
    follow_ups = ([f for f in db.follow_ups.for_customer(facts.customer_id)
                   if f.get("state") == m.FollowUpState.OPEN.value]
                  if facts.customer_id is not None else [])
    body = redact_value(build_summary(facts, transcripts, follow_ups, pending))
    versions = document.get("summaries") or []
    if any(s.get("status") == m.SummaryStatus.APPROVED.value for s in versions):
        return max(s["version"] for s in versions), False
    if versions and versions[-1].get("body") == body:
        return versions[-1]["version"], False
    _failpoint("before_summary")
    return db.summaries.save_draft(call_sid, body), True


def refresh_summary(db: Database, client: redis.Redis, call_sid: str) -> None:
    live = read_call(client, call_sid)
    if live.session is not None or live.events:
        save_summary(db, call_sid, analyse(call_sid, live.events, live.session))


# ---------------------------------------------------------------------- recordings


def _recording_row(db: Database, sid: str) -> dict[str, Any] | None:
    with db.session() as session:
        row = session.scalars(select(m.RecordingRow).where(
            m.RecordingRow.recording_sid == sid)).first()
        return row.to_dict() if row else None


def _note(db: Database, call_sid: str, kind: str, key: str, **data: Any) -> None:
    db.calls.add_events(call_sid, [{"seq": job_event_seq(kind, key), "at": m.utcnow(),
                                    "kind": kind, "data": data}])


def fetch_recording(call_sid: str, recording_sid_or_url: str,
                    kind: str = "voicemail") -> dict[str, Any]:
    """Download a recording from Twilio, store it encrypted, delete it from Twilio,
    transcribe it when a Vosk model for the call's language exists."""
    config = JobConfig.from_env()
    db = _database(config)
    sid = parse_recording_sid(recording_sid_or_url)
    storage = config.storage()
    row = _recording_row(db, sid)
    result: dict[str, Any] = {"call_sid": call_sid, "recording_sid": sid}
    if kind == "call" and row is None:
        from recordings.call_recordings import discard, pause_failed

        if pause_failed(_redis(config), db, call_sid):
            return discard(config, db, call_sid, sid, result)
    if row is None or storage.verify(call_sid, sid) is None:
        rest = _twilio(config)
        if rest is None:
            reason = ("TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN must be set to fetch "
                      "recordings from Twilio")
            _note(db, call_sid, "recording_pending", sid, recording_sid=sid, reason=reason)
            return {**result, "stored": False, "reason": reason}
        with rest:
            try:
                stored = storage.write(call_sid, sid, rest.stream_recording(
                    sid, config.max_recording_bytes))
            except TooLarge as exc:  # left on Twilio, nothing lost: an admin decides
                _note(db, call_sid, "recording_pending", sid, recording_sid=sid,
                      reason=str(exc))
                return {**result, "stored": False, "reason": str(exc)}
            except NotReady as exc:
                _note(db, call_sid, "recording_pending", sid, recording_sid=sid,
                      reason=str(exc))
                raise  # RQ retries later (Retry intervals); Twilio still holds it
            _failpoint("after_download")
            seconds = _wav_seconds(storage, call_sid, sid)
            recording_id = db.calls.add_recording(call_sid, path=stored.path, kind=kind,
                                                  recording_sid=sid, duration_s=seconds)
            _failpoint("after_recording_row")
            rest.delete_recording(sid)
        result["stored"] = True
    else:
        recording_id = int(row["id"])
        result["stored"] = "already"
        _delete_from_twilio(config, sid)
    result["transcript"] = _transcribe(config, db, storage, call_sid, sid, recording_id)
    filed = (db.calls.get(call_sid) or {}).get("ended_at") is not None
    if filed and result["transcript"] in ("done", "pending"):  # the summary mentions it
        try:
            refresh_summary(db, _redis(config), call_sid)
        except redis.RedisError as exc:
            log.warning("call %s: summary not refreshed (%s)", call_sid, exc)
    return result


def _twilio(config: JobConfig) -> TwilioRest | None:
    """The REST client, or None when the Twilio credentials are not configured."""
    if not (config.twilio_account_sid and config.twilio_auth_token):
        return None
    return TwilioRest(config.twilio_account_sid, config.twilio_auth_token,
                      config.twilio_api_url)


def _delete_from_twilio(config: JobConfig, sid: str) -> None:
    """Finish a run killed after storing: Twilio may still hold the recording."""
    rest = _twilio(config)
    if rest is not None:
        with rest:
            rest.delete_recording(sid)


def _wav_seconds(storage: EncryptedStore, call_sid: str, sid: str) -> float | None:
    from speech.audio import read_wav
    from speech.errors import AudioError
    try:
        audio = read_wav(storage.read(call_sid, sid), max_seconds=None)
    except AudioError:
        return None
    return round(audio.source_seconds, 3)


MAX_TRANSCRIBE_S = 3600.0


def _transcribe(config: JobConfig, db: Database, storage: EncryptedStore, call_sid: str,
                sid: str, recording_id: int) -> str:
    from speech.audio import read_wav
    from speech.errors import SpeechError
    from speech.models import resolve_model_dir
    from speech.vosk_recognizer import VoskRecognizer

    with db.session() as session:
        if session.scalars(select(m.TranscriptRow.id).where(
                m.TranscriptRow.recording_id == recording_id)).first() is not None:
            return "already"
        call = session.get(m.CallRow, call_sid)
        language = call.language if call is not None else None
    if not language:  # not filed yet (a whole-call recording beats the filing): Redis
        try:
            language = (read_call(_redis(config), call_sid).session or {}).get("language")
        except redis.RedisError:
            language = None
    if not language:
        _note(db, call_sid, "transcript_pending", sid, recording_sid=sid,
              reason=f"recording {sid}: the call's language is unknown; not transcribed")
        return "pending"
    env = dict(os.environ)
    if config.vosk_model_dir is not None:
        env["IVR_VOSK_MODEL_DIR"] = str(config.vosk_model_dir)
    try:
        model_dir = resolve_model_dir(language, None, env)
        audio = read_wav(storage.read(call_sid, sid), max_seconds=MAX_TRANSCRIBE_S)
        recognizer = VoskRecognizer(language, model_dir)
        stream = recognizer.open_stream(audio.rate)
        pcm = audio.pcm16()
        step = audio.rate * 2 * 5  # five seconds at a time
        for start in range(0, len(pcm), step):
            stream.feed(pcm[start:start + step])
        recognized = stream.finish()
    except SpeechError as exc:
        _note(db, call_sid, "transcript_pending", sid, recording_sid=sid,
              reason=f"recording {sid}: {exc}")
        return "pending"
    kept = [w for w in recognized.words if w.word != "[unk]"]
    words = [[w.word, round(w.start, 2), round(w.end, 2), round(w.conf, 3)] for w in kept]
    text = " ".join(w.word for w in kept)
    with db.session() as session:  # a concurrent run may have won meanwhile
        if session.scalars(select(m.TranscriptRow.id).where(
                m.TranscriptRow.recording_id == recording_id)).first() is not None:
            return "already"
    db.calls.add_transcript(call_sid, text, language=language, words=words,
                            recording_id=recording_id)
    return "done"


# ---------------------------------------------------------------------- CRM


def push_to_crm(call_sid: str) -> dict[str, Any]:
    """Hand the call's approved summary to the CRM (``recordings.crm``; the webhook when
    ``IVR_CRM_WEBHOOK_URL`` is set). An unreachable CRM or a 5xx raises, so RQ retries
    with backoff, always with the same Idempotency-Key; a 4xx is final: noted on the call."""
    from recordings.crm import (
        CrmRejected,
        adapter_from_config,
        idempotency_key,
        push_approved_summary,
    )

    config = JobConfig.from_env()
    db = _database(config)
    try:
        result = push_approved_summary(db, adapter_from_config(config), call_sid)
    except CrmRejected as exc:
        version = (db.summaries.current(call_sid) or {}).get("version", 0)
        _note(db, call_sid, "crm_rejected", idempotency_key(call_sid, version),
              status=exc.status, reason=str(exc))
        log.error("call %s: %s", call_sid, exc)
        return {"call_sid": call_sid, "pushed": False, "status": exc.status, "reason": str(exc)}
    if result["pushed"]:
        _note(db, call_sid, "crm_pushed", result["idempotency_key"], adapter=result["adapter"],
              status=result["status"], summary_version=result["summary_version"])
    return result


# ---------------------------------------------------------------------- retention


def apply_retention(now_ts: float | None = None) -> dict[str, int]:
    """Delete recordings, transcripts and events older than their retention period
    (``IVR_RETENTION_<KIND>_DAYS``; 0 keeps for ever). Returns counts per kind."""
    config = JobConfig.from_env()
    db = _database(config)
    now = _time(now_ts) or m.utcnow()
    storage = config.storage()
    removed = {"recordings": 0, "recording_files": 0, "transcripts": 0, "events": 0}
    with db.session() as session:
        if config.retention.recordings > 0:
            cutoff = now - timedelta(days=config.retention.recordings)
            rows = list(session.scalars(select(m.RecordingRow).where(
                m.RecordingRow.created_at < cutoff)))
            for row in rows:
                if row.path and storage.delete_relative(row.path):
                    removed["recording_files"] += 1
                session.delete(row)
            removed["recordings"] = len(rows)
        if config.retention.transcripts > 0:
            cutoff = now - timedelta(days=config.retention.transcripts)
            result = session.execute(delete(m.TranscriptRow).where(
                m.TranscriptRow.created_at < cutoff))
            removed["transcripts"] = int(getattr(result, "rowcount", 0) or 0)
        if config.retention.events > 0:
            cutoff = now - timedelta(days=config.retention.events)
            result = session.execute(delete(m.CallEventRow).where(m.CallEventRow.at < cutoff))
            removed["events"] = int(getattr(result, "rowcount", 0) or 0)
    return removed
