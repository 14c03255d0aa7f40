"""A hand-written fake of Twilio's cloud: a real HTTP server on 127.0.0.1.

It speaks the REST routes ``ivr.twilio_rest`` uses, with Twilio's JSON shapes and
status codes: 401 (code 20003) without the right basic auth, 404 (code 20404) for an
unknown call or recording, 429 (code 20429, ``Retry-After``) and 5xx when told to,
recordings that answer 404 while "processing" for their first N fetches, calls that go
queued → in-progress → completed. Every request is recorded for assertions. When a
test "answers" an outbound call, the fake fetches its ``Url`` from our app through the
simulator (signed with the account's auth token, as Twilio signs), so the webhooks run
for real; REST updates of a live call reach that simulated call.

Call recordings (``Calls/{sid}/Recordings.json``, then ``.../Recordings/{sid or
Twilio.CURRENT}.json`` with ``Status=paused|in-progress|stopped``) work on calls the
fake knows: outbound ones, and inbound simulated calls handed to :meth:`track`. As on
Twilio: 404 (20404) for an unknown call or no active recording, 400 (21220) for a call
not in progress, 400 (21218) for a bad ``Status``. Paused stretches are left out
(``PauseBehavior=skip``) or kept silent; when the call ends the recording is completed,
held as audio, and its ``RecordingStatusCallback`` is posted (signed, as Twilio signs).

Use the ``twilio_cloud`` fixture, or ``with FakeTwilioCloud() as cloud: ...``.
"""

from __future__ import annotations

import base64
import math
import struct
import threading
import uuid
import wave
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from io import BytesIO
from typing import Any, Self

import pytest
from twilio.request_validator import RequestValidator
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from ivr.simulator import RecordAudio, ScriptItem, SimulatedCall, Transport
from ivr.simulator_parts import RequestsTransport
from ivr.twilio_rest import TwilioRest
from tests.fakes_http import _error, _json, _not_found, _relative_url
from tests.fakes_twilio_calls import CallListing
from tests.fakes_twilio_recordings import RecordingRoutes

FAKE_ACCOUNT_SID = "AC" + "f" * 32
FAKE_AUTH_TOKEN = "fake-auth-token-0123456789abcdef"
PREFIX = "/2010-04-01/Accounts/<account>"


def make_wav(seconds: float = 1.0, rate: int = 8000, tone_hz: float = 440.0) -> bytes:
    """A mono 16-bit PCM WAV (what Twilio serves for ``.wav``) holding a quiet tone."""
    frames = int(seconds * rate)
    samples = (int(3000 * math.sin(2 * math.pi * tone_hz * i / rate)) for i in range(frames))
    buf = BytesIO()
    with wave.open(buf, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(struct.pack(f"<{frames}h", *samples))
    return buf.getvalue()


@dataclass
class RecordedRequest:
    method: str
    path: str
    form: dict[str, list[str]]
    authorized: bool
    status: int = 0


@dataclass
class FakeCall:
    sid: str
    to: str
    from_: str
    url: str | None
    method: str
    twiml: str | None
    status_callback: str | None
    status: str = "queued"
    duration: int | None = None
    created: str = field(default_factory=lambda: formatdate(usegmt=True))
    updates: list[dict[str, str]] = field(default_factory=list)
    simulation: SimulatedCall | None = None


@dataclass
class FakeRecording:
    sid: str
    url: str
    call_sid: str | None
    wav: bytes
    duration: int
    not_ready_for: int  # audio fetches answered 404 before the file is there
    fetches: int = 0
    created: str = field(default_factory=lambda: formatdate(usegmt=True))
    source: str = "RecordVerb"


@dataclass
class LiveRecording:
    """A recording of a live call started through the REST API."""

    sid: str
    call_sid: str
    status: str  # in-progress | paused | stopped | completed
    callback: str | None
    callback_method: str
    events: tuple[str, ...]
    channels: int
    started_at: float  # the simulated call's clock
    since: float  # when the current in-progress stretch began
    kept: float = 0.0  # recorded seconds before ``since``
    silent: float = 0.0  # paused seconds kept as silence (PauseBehavior=silence)
    pause_behavior: str = "silence"
    paused_at: float = 0.0
    history: list[str] = field(default_factory=list)


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # tests read ``cloud.requests`` instead


class FakeTwilioCloud(CallListing, RecordingRoutes):
    """Twilio's REST API and voice engine, enough for our server's tests (the call list,
    its paging and the create gate are in :mod:`tests.fakes_twilio_calls`)."""

    def __init__(self, account_sid: str = FAKE_ACCOUNT_SID, auth_token: str = FAKE_AUTH_TOKEN,
                 *, webhook_transport: Transport | None = None) -> None:
        self.account_sid, self.auth_token = account_sid, auth_token
        self.webhook_transport = webhook_transport  # None: real HTTP to the call's Url
        self.requests: list[RecordedRequest] = []
        self.calls: dict[str, FakeCall] = {}
        self.recordings: dict[str, FakeRecording] = {}
        self.live_recordings: dict[str, LiveRecording] = {}
        self.recording_callbacks: list[dict[str, str]] = []  # posted, with their answer
        self.deleted_recordings: list[str] = []
        self._throttle: list[int] = []  # Retry-After of each throttled answer to come
        self._failures: list[int] = []
        self._lock = threading.RLock()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""
        self._routes = Map([
            Rule(f"{PREFIX}/Calls.json", endpoint="calls", methods=["POST"]),
            Rule(f"{PREFIX}/Calls.json", endpoint="calls_list", methods=["GET"]),
            Rule(f"{PREFIX}/Calls/<sid>.json", endpoint="call", methods=["GET", "POST"]),
            Rule(f"{PREFIX}/Calls/<sid>/Recordings.json", endpoint="call_recordings",
                 methods=["GET", "POST"]),
            Rule(f"{PREFIX}/Calls/<sid>/Recordings/<rec>.json", endpoint="call_recording",
                 methods=["GET", "POST"]),
            Rule(f"{PREFIX}/Recordings/<name>", endpoint="recording",
                 methods=["GET", "DELETE"]),
        ])

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Self:
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True,
                                   request_handler=_QuietHandler)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        name="fake-twilio", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def env(self) -> dict[str, str]:
        """The environment that points our server at this fake."""
        return {"TWILIO_ACCOUNT_SID": self.account_sid, "TWILIO_AUTH_TOKEN": self.auth_token,
                "TWILIO_API_URL": self.url}

    def rest_client(self, **kwargs: Any) -> TwilioRest:
        return TwilioRest(self.account_sid, self.auth_token, self.url, **kwargs)

    # ------------------------------------------------------------------ behaviour switches

    def throttle(self, times: int = 1, retry_after: int = 1) -> None:
        """Answer the next ``times`` authorised requests with 429 and ``Retry-After``."""
        with self._lock:
            self._throttle += [retry_after] * times

    def fail(self, times: int = 1, status: int = 500) -> None:
        """Answer the next ``times`` authorised requests with a 5xx."""
        with self._lock:
            self._failures += [status] * times

    def add_recording(self, *, seconds: float = 2.0, not_ready_for: int = 0,
                      call_sid: str | None = None, wav: bytes | None = None,
                      sid: str | None = None) -> FakeRecording:
        sid = sid or "RE" + uuid.uuid4().hex
        rec = FakeRecording(sid, f"{self.url}/2010-04-01/Accounts/{self.account_sid}"
                                 f"/Recordings/{sid}", call_sid, wav or make_wav(seconds),
                            round(seconds), not_ready_for)
        with self._lock:
            self.recordings[sid] = rec
        return rec

    def recording_item(self, seconds: float = 2.0, not_ready_for: int = 0,
                       ended_by: str | None = None) -> RecordAudio:
        """A script item whose ``RecordingUrl`` points at a recording this fake holds."""
        rec = self.add_recording(seconds=seconds, not_ready_for=not_ready_for)
        return RecordAudio(rec.url, seconds, ended_by, rec.sid)

    # ------------------------------------------------------------------ the phone network

    def answer(self, call_sid: str, script: Iterable[ScriptItem] = (), *,
               transport: Transport | None = None, run: bool = False) -> SimulatedCall:
        """The callee picks up: Twilio fetches the call's Url (or runs its Twiml)."""
        with self._lock:
            call = self._call(call_sid)
            call.status = "in-progress"
        sim = SimulatedCall(call.url or self.url, self.auth_token, call.from_, call.to,
                            call.sid, script, transport=transport or self.webhook_transport,
                            account_sid=self.account_sid, url=call.url, method=call.method,
                            twiml=call.twiml, status_callback=call.status_callback or "",
                            direction="outbound-api", recordings_url=self.url,
                            on_end=lambda s: self._ended(call, s))
        call.simulation = sim
        return sim.run() if run else sim.start()

    def no_answer(self, call_sid: str, status: str = "no-answer", *,
                  transport: Transport | None = None) -> None:
        """The callee does not pick up (``busy``, ``no-answer``, ``failed``)."""
        call = self._call(call_sid)
        sim = SimulatedCall(call.url or self.url, self.auth_token, call.from_, call.to,
                            call.sid, transport=transport or self.webhook_transport,
                            account_sid=self.account_sid, url=call.url,
                            status_callback=call.status_callback or "", direction="outbound-api",
                            on_end=lambda s: self._ended(call, s))
        sim.answered = False
        sim.unanswered(status)

    def track(self, sim: SimulatedCall) -> SimulatedCall:
        """Know an inbound simulated call (before ``start()``), so that REST requests
        about it (recordings, updates) reach it the way they reach a Twilio call."""
        call = FakeCall(sim.call_sid, sim.to, sim.from_, None, "POST", None,
                        sim.status_callback, status="ringing", simulation=sim)
        with self._lock:
            self.calls[call.sid] = call
        before = sim.on_end

        def ended(done: SimulatedCall) -> None:
            self._ended(call, done)
            if before is not None:
                before(done)

        sim.on_end = ended
        return sim

    def _ended(self, call: FakeCall, sim: SimulatedCall) -> None:
        with self._lock:
            call.status = sim.status or "completed"
            call.duration = sim.duration if sim.answered else 0
            finished = [self._complete(rec, sim.clock) for rec in self.live_recordings.values()
                        if rec.call_sid == call.sid and rec.status != "completed"]
        transport = sim.transport or RequestsTransport()
        for rec in finished:  # after the call, as Twilio posts them
            self._post_recording_status(rec, transport)

    def _complete(self, rec: LiveRecording, now: float) -> LiveRecording:
        if rec.status == "in-progress":
            rec.kept += max(0.0, now - rec.since)
        elif rec.status == "paused" and rec.pause_behavior == "silence":
            rec.silent += max(0.0, now - rec.paused_at)
        rec.status = "completed"
        rec.history.append("completed")
        seconds = rec.kept + rec.silent
        stored = self.add_recording(seconds=max(seconds, 0.5), call_sid=rec.call_sid,
                                    sid=rec.sid)
        stored.source = "StartCallRecordingAPI"
        stored.duration = round(seconds)
        return rec

    def _post_recording_status(self, rec: LiveRecording, transport: Transport) -> None:
        if not rec.callback or "completed" not in rec.events:
            return
        stored = self.recordings[rec.sid]
        params = {"AccountSid": self.account_sid, "CallSid": rec.call_sid,
                  "RecordingSid": rec.sid, "RecordingUrl": stored.url,
                  "RecordingStatus": "completed", "RecordingDuration": str(stored.duration),
                  "RecordingChannels": str(rec.channels),
                  "RecordingStartTime": stored.created, "RecordingSource": "StartCallRecordingAPI",
                  "RecordingTrack": "both"}
        signature = RequestValidator(self.auth_token).compute_signature(rec.callback, params)
        resp = transport.send(rec.callback_method, rec.callback, params,
                              {"X-Twilio-Signature": signature,
                               "User-Agent": "TwilioProxy/1.1"})
        self.recording_callbacks.append({**params, "answer": str(resp.status)})

    def _call(self, sid: str) -> FakeCall:
        try:
            return self.calls[sid]
        except KeyError:
            raise KeyError(f"the fake cloud has no call {sid}") from None

    # ------------------------------------------------------------------ HTTP

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        response = self._handle(request)
        return response(environ, start_response)

    def _handle(self, request: Request) -> Response:
        form = {k: request.form.getlist(k) for k in request.form}
        record = RecordedRequest(request.method, request.path, form, self._authorized(request))
        with self._lock:
            self.requests.append(record)
            response = self._dispatch(request, record)
            record.status = response.status_code
        self._hold_answer()  # a held "create call" answer (see ``hold_creates``)
        return response

    def _authorized(self, request: Request) -> bool:
        auth = request.authorization
        return bool(auth and auth.type == "basic" and auth.username == self.account_sid
                    and auth.password == self.auth_token)

    def _dispatch(self, request: Request, record: RecordedRequest) -> Response:
        if not record.authorized:
            resp = _error(401, 20003, "Authenticate")
            resp.headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
            return resp
        if self._throttle:
            resp = _error(429, 20429, "Too Many Requests")
            resp.headers["Retry-After"] = str(self._throttle.pop(0))
            return resp
        if self._failures:
            status = self._failures.pop(0)
            return _error(status, None, "Service Unavailable" if status == 503 else
                          "Internal Server Error")
        adapter = self._routes.bind_to_environ(request.environ)
        try:
            endpoint, matched = adapter.match()
        except HTTPException:  # NotFound, MethodNotAllowed
            return _not_found(request.path)
        args = dict(matched)
        if args.pop("account") != self.account_sid:
            return _not_found(request.path)
        handler = getattr(self, f"_route_{endpoint}")
        result: Response = handler(request, **args)
        return result

    def _route_calls(self, request: Request) -> Response:
        form = request.form
        if not form.get("To"):
            return _error(400, 21201, "No 'To' number is specified")
        if not form.get("From"):
            return _error(400, 21213, "No 'From' number is specified")
        if not (form.get("Url") or form.get("Twiml")):
            return _error(400, 21205, "Url parameter is required")
        call = FakeCall("CA" + uuid.uuid4().hex, form["To"], form["From"], form.get("Url"),
                        form.get("Method", "POST").upper(), form.get("Twiml"),
                        form.get("StatusCallback"))
        self.calls[call.sid] = call
        self._created()  # a test may hold the answer here (see ``hold_creates``)
        return _json(201, self._call_json(call))

    def _route_call(self, request: Request, sid: str) -> Response:
        call = self.calls.get(sid)
        if call is None:
            return _not_found(request.path)
        if request.method == "GET":
            return _json(200, self._call_json(call))
        form = request.form
        status, url, twiml = form.get("Status"), form.get("Url"), form.get("Twiml")
        if status not in (None, "completed", "canceled"):
            return _error(400, 21218, f"Invalid Status: {status}")
        if (url or twiml) and call.status in ("completed", "canceled", "busy", "no-answer",
                                              "failed"):
            return _error(400, 21220, "Call is not in-progress. Cannot redirect.")
        if twiml and _relative_url(twiml):
            # Twilio resolves nothing against inline TwiML: it fails such an update
            # (error 15004). Refused here outright, so no test passes with one.
            return _error(400, 15004, "Action Callback URL must be an absolute URL when "
                                      "using TwiML to update in-progress calls")
        call.updates.append(form.to_dict())
        if status:
            if call.status in ("queued", "ringing"):
                call.status = "canceled"
            elif call.simulation is not None and not call.simulation.ended:
                call.simulation.update(status=status)
                call.status = "completed"
        elif call.simulation is not None and not call.simulation.ended:
            call.simulation.update(url=url, method=form.get("Method", "POST"), twiml=twiml)
        else:
            call.url, call.twiml = url or call.url, twiml or call.twiml
        return _json(200, self._call_json(call))

    def _call_json(self, call: FakeCall) -> dict[str, Any]:
        base = f"/2010-04-01/Accounts/{self.account_sid}/Calls/{call.sid}"
        return {
            "sid": call.sid, "account_sid": self.account_sid, "parent_call_sid": None,
            "to": call.to, "to_formatted": call.to, "from": call.from_,
            "from_formatted": call.from_, "phone_number_sid": None, "status": call.status,
            "start_time": call.created if call.status != "queued" else None,
            "end_time": None, "duration": None if call.duration is None else str(call.duration),
            "price": None, "price_unit": "USD", "direction": "outbound-api",
            "answered_by": None, "api_version": "2010-04-01", "forwarded_from": None,
            "caller_name": None, "queue_time": "0", "trunk_sid": None, "group_sid": None,
            "date_created": call.created, "date_updated": formatdate(usegmt=True),
            "uri": f"{base}.json",
            "subresource_uris": {"recordings": f"{base}/Recordings.json",
                                 "notifications": f"{base}/Notifications.json"},
        }


def basic_auth(user: str, password: str) -> str:
    """An ``Authorization`` header value, for tests that talk to the fake directly."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture()
def twilio_cloud() -> Iterator[FakeTwilioCloud]:
    """A running fake of Twilio's cloud; point ``TWILIO_API_URL`` at ``cloud.url``."""
    with FakeTwilioCloud() as cloud:
        yield cloud
