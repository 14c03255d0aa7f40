"""A call's recording, decrypted and streamed: by id or by Call and Recording SID.

`GET /api/recordings/<id>` (the ids listed by `GET /api/calls/<CallSid>`) and
`GET /api/recordings/<CallSid>/<RecordingSid>`. Only agents, supervisors and admins
(401 without a token). Every access is written to the audit log (who, which
recording, when) before a byte is sent. 404 for an unknown or erased call or
recording, a recording that is not this call's, or a file already removed
(retention). The file is decrypted chunk by chunk (memory stays flat); the first
chunk is checked before answering, so a missing or foreign file is a clean 404/500,
never a half-sent 200.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, g, jsonify, stream_with_context

from ivr.auth import api_auth
from ivr.services import current
from ivr.state import installation_secret
from recordings.config import JobConfig
from recordings.storage import EncryptedStore, StorageError, open_storage

log = logging.getLogger(__name__)
bp = Blueprint("api_recordings", __name__, url_prefix="/api/recordings")


def _error(status: int, error: str, detail: str) -> Any:
    response = jsonify(error=error, detail=detail)
    response.status_code = status
    return response


def _storage() -> EncryptedStore:
    """The process's recording store, opened once (an S3 client is built once, not per
    request)."""
    services = current()
    store: EncryptedStore | None = services.components.get("recording_store")
    if store is None:
        settings = services.settings
        where = JobConfig.from_env()  # IVR_RECORDINGS_URL / IVR_S3_ENDPOINT_URL, as the jobs
        # The same secret the RQ jobs encrypt with (IVR_SECRET_KEY, else the secret file).
        store = open_storage(settings.data_dir, installation_secret(settings),
                             where.recordings_url, where.s3_endpoint_url)
        services.components["recording_store"] = store
    return store


@bp.get("/<int:recording_id>")
@api_auth("agent", "supervisor")
def by_id(recording_id: int) -> Any:
    database = current().get("database")
    row = database.calls.recording(recording_id)
    if row is None or not row.get("recording_sid") or database.calls.get(row["call_sid"]) is None:
        return _error(404, "not_found", f"no recording {recording_id}")
    return _stream(database, row["call_sid"], str(row["recording_sid"]), row)


@bp.get("/<call_sid>/<recording_sid>")
@api_auth("agent", "supervisor")
def recording(call_sid: str, recording_sid: str) -> Any:
    database = current().get("database")
    call = database.calls.get(call_sid)
    row = next((r for r in (call or {}).get("recordings", [])
                if r.get("recording_sid") == recording_sid), None)
    if row is None:
        return _error(404, "not_found", f"no recording {recording_sid} on call {call_sid}")
    return _stream(database, call_sid, recording_sid, row)


def _stream(database: Any, call_sid: str, recording_sid: str, row: dict[str, Any]) -> Any:
    storage = _storage()
    if not storage.exists(call_sid, recording_sid):
        return _error(404, "not_found", f"recording {recording_sid} is no longer stored "
                      "(removed by the retention policy or erased)")
    chunks = storage.chunks(call_sid, recording_sid)
    try:
        first = next(chunks)
    except StorageError as exc:
        log.error("recording %s of call %s unreadable: %s", recording_sid, call_sid, exc)
        return _error(500, "unreadable", f"recording {recording_sid} cannot be decrypted; "
                      "check IVR_SECRET_KEY / secret.key (see the server log)")
    database.audit.write(g.principal.name, "recording.read", "recording", recording_sid,
                         {"call_sid": call_sid, "recording_id": row.get("id"),
                          "role": g.principal.role})

    def body() -> Iterator[bytes]:
        yield first
        try:
            yield from chunks
        except StorageError:  # damaged after the first chunk: cut the stream short
            log.exception("recording %s of call %s damaged mid-stream", recording_sid, call_sid)

    response = Response(stream_with_context(body()), mimetype="audio/wav")
    response.headers["Cache-Control"] = "no-store, private"
    response.headers["Content-Disposition"] = f'inline; filename="{recording_sid}.wav"'
    return response
