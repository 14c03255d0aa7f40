"""The recordings side of the fake Twilio cloud (mixed into ``tests.fakes.FakeTwilioCloud``).

``Calls/{sid}/Recordings.json`` (start a call recording, list them),
``Calls/{sid}/Recordings/{sid or Twilio.CURRENT}.json`` (pause, resume, stop: paused
stretches skipped or kept silent) and ``Recordings/{sid}[.json|.wav]`` (metadata, audio
that answers 404 while "processing", delete), with Twilio's codes: 404 (20404) for an
unknown call or no active recording, 400 (21220) for a call not in progress, 400
(21218) for a bad ``Status`` or ``RecordingChannels``.
"""

from __future__ import annotations

import uuid
from email.utils import formatdate
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request, Response

from tests.fakes_http import _error, _json, _not_found

if TYPE_CHECKING:
    from tests.fakes import FakeRecording, LiveRecording


class RecordingRoutes:
    """Mixin: needs ``calls``, ``recordings``, ``live_recordings``, ``deleted_recordings``
    and ``account_sid``."""

    calls: dict[str, Any]
    recordings: dict[str, Any]
    live_recordings: dict[str, Any]
    deleted_recordings: list[str]
    account_sid: str

    def _live(self, call: Any) -> bool:
        sim = call.simulation
        if sim is not None:
            return bool(sim.answered and not sim.ended)
        return bool(call.status == "in-progress")

    def _route_call_recordings(self, request: Request, sid: str) -> Response:
        call = self.calls.get(sid)
        if call is None:
            return _not_found(request.path)
        if request.method == "GET":
            return _json(200, {"recordings": [self._live_json(r) for r in
                                              self.live_recordings.values()
                                              if r.call_sid == sid]})
        if not self._live(call):
            return _error(400, 21220, "Requested resource is not eligible for recording: "
                                      "the call is not in-progress")
        form = request.form
        channels = form.get("RecordingChannels", "mono")
        if channels not in ("mono", "dual"):
            return _error(400, 21218, f"Invalid RecordingChannels: {channels}")
        events = tuple(e for value in form.getlist("RecordingStatusCallbackEvent")
                       for e in value.split()) or ("completed",)
        from tests.fakes import LiveRecording

        now = call.simulation.clock if call.simulation is not None else 0.0
        rec = LiveRecording("RE" + uuid.uuid4().hex, sid, "in-progress",
                            form.get("RecordingStatusCallback"),
                            form.get("RecordingStatusCallbackMethod", "POST").upper(), events,
                            2 if channels == "dual" else 1, now, now)
        rec.history.append("in-progress")
        self.live_recordings[rec.sid] = rec
        return _json(201, self._live_json(rec))

    def _route_call_recording(self, request: Request, sid: str, rec: str) -> Response:
        call = self.calls.get(sid)
        if call is None:
            return _not_found(request.path)
        mine = [r for r in self.live_recordings.values() if r.call_sid == sid]
        if rec == "Twilio.CURRENT":
            active = [r for r in mine if r.status in ("in-progress", "paused")]
            found = active[-1] if active else None
        else:
            found = next((r for r in mine if r.sid == rec), None)
        if found is None:
            return _not_found(request.path)
        if request.method == "GET":
            return _json(200, self._live_json(found))
        status = request.form.get("Status")
        if status not in ("paused", "in-progress", "stopped"):
            return _error(400, 21218, f"Invalid Status: {status}")
        if found.status in ("stopped", "completed"):
            return _error(400, 21220, "Recording is not in-progress or paused")
        now = call.simulation.clock if call.simulation is not None else 0.0
        if status == "paused" and found.status == "in-progress":
            found.kept += max(0.0, now - found.since)
            found.paused_at = now
            found.pause_behavior = request.form.get("PauseBehavior", "silence")
        elif status != "paused" and found.status == "paused":
            if found.pause_behavior == "silence":
                found.silent += max(0.0, now - found.paused_at)
            found.since = now
        elif status == "stopped" and found.status == "in-progress":
            found.kept += max(0.0, now - found.since)
        found.status = status
        found.history.append(status)
        return _json(200, self._live_json(found))

    def _live_json(self, rec: LiveRecording) -> dict[str, Any]:
        base = f"/2010-04-01/Accounts/{self.account_sid}/Calls/{rec.call_sid}/Recordings"
        return {"sid": rec.sid, "account_sid": self.account_sid, "call_sid": rec.call_sid,
                "conference_sid": None, "status": rec.status, "channels": rec.channels,
                "source": "StartCallRecordingAPI", "track": "both", "duration": None,
                "price": None, "price_unit": "USD", "api_version": "2010-04-01",
                "error_code": None, "encryption_details": None,
                "date_created": formatdate(usegmt=True),
                "date_updated": formatdate(usegmt=True), "start_time": formatdate(usegmt=True),
                "uri": f"{base}/{rec.sid}.json"}

    def _route_recording(self, request: Request, name: str) -> Response:
        sid, _, ext = name.partition(".")
        rec = self.recordings.get(sid)
        if rec is None:
            return _not_found(request.path)
        if request.method == "DELETE":
            del self.recordings[sid]
            self.deleted_recordings.append(sid)
            return Response(status=204)
        if ext == "json":
            return _json(200, self._recording_json(rec))
        if ext not in ("", "wav"):
            return _not_found(request.path)  # the fake only holds WAV audio
        rec.fetches += 1
        if rec.fetches <= rec.not_ready_for:
            return _not_found(request.path)
        return Response(rec.wav, status=200, mimetype="audio/x-wav")

    def _recording_json(self, rec: FakeRecording) -> dict[str, Any]:
        ready = rec.fetches >= rec.not_ready_for
        return {
            "sid": rec.sid, "account_sid": self.account_sid, "call_sid": rec.call_sid,
            "conference_sid": None, "status": "completed" if ready else "processing",
            "duration": str(rec.duration), "channels": 1, "source": rec.source,
            "price": None, "price_unit": "USD", "api_version": "2010-04-01",
            "date_created": rec.created, "date_updated": rec.created,
            "start_time": rec.created, "error_code": None, "encryption_details": None,
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Recordings/{rec.sid}.json",
        }
