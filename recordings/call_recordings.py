"""Whole-call recordings after the call: queue the fetch, or discard an unsafe one.

Twilio posts ``/voice/recording-status`` when a call's recording is complete; the
webhook hands the parameters to :func:`queue_call_recording`, which queues
``recordings.jobs.fetch_recording`` once per RecordingSid (the same job id the filing
uses, so duplicates and retries add nothing). A recording whose pause for sensitive
digits failed may hold card or identity digits: :func:`discard` deletes it from
Twilio and never stores it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

import redis
from rq import Queue, Retry
from rq.job import Job
from rq.serializers import JSONSerializer

from recordings.config import JobConfig
from recordings.jobs import RECORDING_RETRY_INTERVALS
from recordings.jobs import _delete_from_twilio as delete_from_twilio
from recordings.jobs import _note as note
from recordings.live_calls import read_call
from recordings.store import Database
from recordings.twilio_rest import TwilioRestError
from recordings.twilio_rest import recording_sid as parse_recording_sid

log = logging.getLogger(__name__)


def pause_failed(client: redis.Redis, db: Database, call_sid: str) -> bool:
    """Whether the whole-call recording kept running while sensitive digits were asked
    for (a failed pause): such a recording may hold card or identity digits."""
    events = list((db.calls.get(call_sid) or {}).get("events") or [])
    try:
        events += [{"kind": e.get("kind"), "data": e}
                   for e in read_call(client, call_sid).events]
    except redis.RedisError as exc:
        log.warning("call %s: live events unreadable (%s); using the filed ones", call_sid, exc)
    return any(e.get("kind") == "call_recording" and (e.get("data") or {}).get("error")
               and (e.get("data") or {}).get("state") == "paused" for e in events)


def discard(config: JobConfig, db: Database, call_sid: str, sid: str,
             result: dict[str, Any]) -> dict[str, Any]:
    """Delete a call recording from Twilio without storing it (it may hold digits)."""
    reason = (f"recording {sid} discarded: pausing it for sensitive digits failed, so it "
              "may hold them; deleted from Twilio, never stored")
    delete_from_twilio(config, sid)
    note(db, call_sid, "recording_discarded", sid, recording_sid=sid, reason=reason)
    log.warning("call %s: %s", call_sid, reason)
    return {**result, "stored": False, "reason": reason}


def queue_call_recording(connection: redis.Redis, params: Mapping[str, str]
                         ) -> tuple[int, str]:
    """Twilio's RecordingStatusCallback for a whole-call recording: queue its fetch
    (stored encrypted, deleted from Twilio, transcribed), once per RecordingSid.
    Returns (HTTP status, text) for the webhook to answer."""
    call_sid = str(params.get("CallSid") or "")
    status = str(params.get("RecordingStatus") or "").strip().lower()
    if not re.fullmatch(r"CA[0-9a-fA-F]{32}", call_sid):
        return 400, "CallSid missing or malformed"
    try:
        sid = parse_recording_sid(str(params.get("RecordingSid") or ""))
    except TwilioRestError:
        return 400, "RecordingSid missing or malformed"
    if status != "completed":  # in-progress, or absent (nothing was recorded): no file
        log.info("call %s: recording %s is %s; nothing to fetch", call_sid, sid, status)
        return 204, ""
    if Job.exists(f"recording-{sid}", connection):
        return 204, ""  # a duplicate callback: already queued (or done)
    Queue("default", connection=connection, serializer=JSONSerializer).enqueue(
        "recordings.jobs.fetch_recording", call_sid, sid, "call", job_id=f"recording-{sid}",
        retry=Retry(max=len(RECORDING_RETRY_INTERVALS), interval=RECORDING_RETRY_INTERVALS),
        result_ttl=3600, failure_ttl=30 * 24 * 3600)
    return 204, ""
