"""A caller and Twilio's voice engine, simulated: places a call against our webhooks.

Every request is made the way Twilio makes it (form parameters, ``X-Twilio-Signature``,
``CallStatus`` ringing then in-progress, relative URLs resolved against the document's
URL) and every answer is checked the way Twilio checks it (2xx, ``text/xml``, a
``<Response>`` document). The TwiML is followed verb by verb; the call stops wherever
the caller must act (``<Gather>``, ``<Record>``, ``<Enqueue>``, ``<Dial>``) until a
script item or a fluent call (``call.press("1")``) says what the caller does. At the
end the status callback is posted. Used by ``ivr simulate``, tests and the fake cloud.
"""

from __future__ import annotations

import contextlib
import queue
import uuid
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any
from urllib.parse import urldefrag

from twilio.request_validator import RequestValidator

from ivr.simulator_engine import VerbPlayer
from ivr.simulator_parts import (  # re-exported: the simulator's public vocabulary
    API_VERSION,
    DEFAULT_ACCOUNT_SID,
    DEFAULT_FROM,
    DEFAULT_TO,
    DialOutcome,
    Event,
    EventKind,
    Exchange,
    HangUp,
    HttpResponse,
    LoopGuardTripped,
    Press,
    QueueOutcome,
    RecordAudio,
    RequestsTransport,
    ScriptError,
    ScriptItem,
    ServerUnreachable,
    Silence,
    SimulatorError,
    Speak,
    TestClientTransport,
    Transport,
    WebhookError,
    dial_outcome,
    hangup,
    new_call_sid,
    press,
    queue_outcome,
    record,
    say,
    silence,
    with_query,
)

__all__ = [
    "API_VERSION",
    "DEFAULT_ACCOUNT_SID",
    "DEFAULT_FROM",
    "DEFAULT_TO",
    "DialOutcome",
    "Event",
    "EventKind",
    "Exchange",
    "HangUp",
    "HttpResponse",
    "LoopGuardTripped",
    "Press",
    "QueueOutcome",
    "RecordAudio",
    "RequestsTransport",
    "ScriptError",
    "ScriptItem",
    "ServerUnreachable",
    "Silence",
    "SimulatedCall",
    "Simulator",
    "SimulatorError",
    "Speak",
    "TestClientTransport",
    "Transport",
    "WebhookError",
    "dial_outcome",
    "hangup",
    "press",
    "queue_outcome",
    "record",
    "run_call",
    "say",
    "silence",
]

InputProvider = Callable[["SimulatedCall"], "ScriptItem | None"]


@dataclass(frozen=True)
class LiveUpdate:
    """A change Twilio's REST API asked for while the call runs (Calls/{sid} update)."""

    url: str | None = None
    method: str = "POST"
    twiml: str | None = None
    status: str | None = None  # completed | canceled


class SimulatedCall(VerbPlayer):
    """One call. Drive it with :meth:`run` (scripted) or fluently, one step at a time."""

    def __init__(self, base_url: str, auth_token: str | None, from_: str = DEFAULT_FROM,
                 to: str = DEFAULT_TO, call_sid: str | None = None,
                 script: Iterable[ScriptItem] = (), *, transport: Transport | None = None,
                 account_sid: str = DEFAULT_ACCOUNT_SID, url: str | None = None,
                 method: str = "POST", twiml: str | None = None,
                 status_callback: str | None = None, direction: str = "inbound",
                 max_requests: int = 100, recordings_url: str = "https://api.twilio.com",
                 queue_position: int = 1, on_event: Callable[[Event], None] | None = None,
                 on_end: Callable[[SimulatedCall], None] | None = None,
                 extra_params: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/")
        self.auth_token = auth_token
        self.from_, self.to = from_, to
        self.call_sid = call_sid or new_call_sid()
        self.account_sid = account_sid
        self.script: deque[ScriptItem] = deque(script)
        self.transport: Transport = transport or RequestsTransport()
        self.start_url = url or f"{self.base_url}/voice/incoming"
        self.start_method = method.upper()
        self.start_twiml = twiml
        self.status_callback = (f"{self.base_url}/voice/status" if status_callback is None
                                else status_callback) or None
        self.direction = direction
        self.max_requests = max_requests
        self.recordings_url = recordings_url.rstrip("/")
        self.queue_position = queue_position
        self.on_event, self.on_end = on_event, on_end
        self.extra_params = dict(extra_params or {})
        self.requests: list[Exchange] = []
        self.streams: list[dict[str, Any]] = []  # <Start><Stream>s: url and parameters
        self.events: list[Event] = []
        self.status: str | None = None  # the final CallStatus once ended
        self.started = False
        self.answered = direction.startswith("outbound")  # Twilio fetches Url on answer
        self._sequence = 0
        self._updates: queue.SimpleQueue[LiveUpdate] = queue.SimpleQueue()
        self._validator = RequestValidator(auth_token) if auth_token else None

    # ------------------------------------------------------------------ reading the call

    @property
    def ended(self) -> bool:
        return self.status is not None

    @property
    def pending(self) -> str | None:
        """The verb waiting for the caller (``"Gather"``, ``"Record"``...), or None."""
        return None if self._pending is None else self._pending.tag

    @property
    def queue_listening(self) -> bool:
        """Whether the caller is queued under a wait document with a ``<Gather>``."""
        return self._queue is not None and self._queue.wait_gather is not None

    @property
    def duration(self) -> int:
        return round(self.clock)

    def heard(self, substring: str, language: str | None = None) -> bool:
        """Whether any ``<Say>`` (or ``<Play>`` URL) so far contains ``substring``."""
        needle = substring.casefold()
        return any(needle in e.text.casefold() and (language is None or e.language == language)
                   for e in self.events if e.kind in (EventKind.HEARD, EventKind.PLAYED))

    @property
    def heard_texts(self) -> list[str]:
        return [e.text for e in self.events if e.kind is EventKind.HEARD]

    def transcript(self) -> list[str]:
        return [str(e) for e in self.events]

    # ------------------------------------------------------------------ driving the call

    def start(self) -> SimulatedCall:
        """Ring our server and follow its TwiML to the first point the caller must act."""
        if self.started:
            raise ScriptError("the call has already started")
        self.started = True
        with self._driving():
            if self.start_twiml is not None:
                self.answered = True
                self._load(self._parse(self.start_twiml, self.start_url), self.start_url)
            else:
                self._load(self._fetch(self.start_method, self.start_url), self.start_url)
            self._advance()
        return self

    def run(self, provider: InputProvider | None = None) -> SimulatedCall:
        """Play the script to the end; when it runs out ask ``provider`` (None: silence)."""
        if not self.started:
            self.start()
        while True:
            self.apply_updates()
            if self.ended:
                return self
            item = self.script.popleft() if self.script else (provider(self) if provider else None)
            self._feed(item)

    def press(self, digits: str) -> SimulatedCall:
        return self._feed(Press(str(digits)))

    def say(self, text: str, confidence: float = 0.9) -> SimulatedCall:
        return self._feed(Speak(text, confidence))

    def silence(self) -> SimulatedCall:
        return self._feed(Silence())

    def record(self, url: str | None = None, seconds: float = 5.0, *,
               ended_by: str | None = None, sid: str | None = None) -> SimulatedCall:
        return self._feed(RecordAudio(url, seconds, ended_by, sid))

    def hangup(self) -> SimulatedCall:
        return self._feed(HangUp())

    def queue_outcome(self, result: str, after: float = 0.0, talk: float = 0.0) -> SimulatedCall:
        return self._feed(QueueOutcome(result, after, talk))

    def dial_outcome(self, status: str = "completed", seconds: float = 10.0) -> SimulatedCall:
        return self._feed(DialOutcome(status, seconds))

    def unanswered(self, status: str = "no-answer") -> SimulatedCall:
        """An outbound call that nobody picks up: only the status callback is sent."""
        if self.started:
            raise ScriptError("the call was already answered")
        self.started = True
        with self._driving():
            self._finish(status)
        return self

    def update(self, url: str | None = None, method: str = "POST", twiml: str | None = None,
               status: str | None = None) -> None:
        """Queue a live change (REST ``Calls/{sid}`` update); applied at the next step.

        Thread-safe: the fake Twilio cloud calls it from its server thread.
        """
        self._updates.put(LiveUpdate(url, method.upper(), twiml, status))

    def apply_updates(self) -> SimulatedCall:
        with self._driving():
            while not self.ended:
                try:
                    change = self._updates.get_nowait()
                except queue.Empty:
                    break
                self._apply(change)
        return self

    def send_status(self, status: str = "completed", sequence: int | None = None) -> Exchange:
        """Post a status callback now (tests use it for duplicates and out-of-order ones)."""
        if not self.status_callback:
            raise ScriptError("this call has no status callback URL")
        params = {"CallStatus": status, "Timestamp": formatdate(usegmt=True),
                  "CallbackSource": "call-progress-events",
                  "SequenceNumber": str(self._sequence if sequence is None else sequence)}
        if self.answered:
            params["CallDuration"] = str(self.duration)
        if sequence is None:
            self._sequence += 1
        return self._send("POST", self.status_callback, params, twiml=False)[0]

    # ------------------------------------------------------------------ plumbing

    @contextlib.contextmanager
    def _driving(self) -> Iterator[None]:
        """Ends the call the way Twilio does when the server fails, then re-raises."""
        try:
            yield
        except (WebhookError, LoopGuardTripped) as exc:
            if not self.ended:
                self._event(EventKind.ERROR, str(exc))
                if isinstance(exc, WebhookError):  # what Twilio says before hanging up
                    self._event(EventKind.HEARD, "An application error has occurred. Goodbye.",
                                "en-US")
                self._pending = None
                with contextlib.suppress(SimulatorError):
                    self._finish("completed")
            raise

    def _feed(self, item: ScriptItem | None) -> SimulatedCall:
        if not self.started:
            raise ScriptError("start() the call first")
        self.apply_updates()
        if self.ended:
            raise ScriptError(f"the call has ended ({self.status}); nothing hears {item!r}")
        with self._driving():
            self._respond(item)
            if not self.ended and self._pending is None:
                self._advance()
        return self

    def _params(self, extra: Mapping[str, str]) -> dict[str, str]:
        params = {
            "AccountSid": self.account_sid, "ApiVersion": API_VERSION, "CallSid": self.call_sid,
            "CallStatus": "in-progress" if self.answered else "ringing",
            "Direction": self.direction, "From": self.from_, "To": self.to,
            "Caller": self.from_, "Called": self.to, **self.extra_params,
        }
        params.update(extra)
        return params

    def _send(self, method: str, url: str, extra: Mapping[str, str],
              twiml: bool = True) -> tuple[Exchange, ET.Element | None]:
        if twiml and len(self.requests) >= self.max_requests:
            raise LoopGuardTripped(
                f"{len(self.requests)} requests without the call ending (loop guard "
                f"max_requests={self.max_requests}); last URL {self.requests[-1].url}")
        url, _ = urldefrag(url)  # Twilio reads #rc=... overrides; they are not sent
        params = self._params(extra)
        method = method.upper()
        if method == "GET":
            target, form, signed = with_query(url, params), None, {}
        elif method == "POST":
            target, form, signed = url, params, params
        else:
            raise WebhookError(f"method {method!r} for {url}: Twilio only uses GET or POST")
        headers = {"User-Agent": "TwilioProxy/1.1", "Accept": "*/*",
                   "I-Twilio-Idempotency-Token": str(uuid.uuid4())}
        if self._validator is not None:
            headers["X-Twilio-Signature"] = self._validator.compute_signature(target, signed)
        resp = self.transport.send(method, target, form, headers)
        exchange = Exchange(method, target, params, resp.status,
                            resp.content_type, resp.body.decode("utf-8", "replace"))
        self.requests.append(exchange)
        if not 200 <= resp.status < 300:
            raise WebhookError(f"{method} {target} answered HTTP {resp.status} (Twilio error "
                               f"11200: the caller hears an application error)", exchange)
        if not twiml:
            return exchange, None
        mime = resp.content_type.split(";")[0].strip().lower()
        if mime != "text/xml":
            raise WebhookError(f"{method} {target} answered Content-Type {resp.content_type!r}, "
                               f"not text/xml (Twilio error 12300)", exchange)
        return exchange, self._parse(exchange.body, target, exchange)

    def _fetch(self, method: str, url: str, extra: Mapping[str, str] | None = None) -> ET.Element:
        root = self._send(method, url, extra or {})[1]
        assert root is not None
        if not self.answered and (len(root) == 0 or root[0].tag != "Reject"):
            self.answered = True
        return root

    @staticmethod
    def _parse(body: str, url: str, exchange: Exchange | None = None) -> ET.Element:
        try:
            root = ET.fromstring(body.encode("utf-8"))
        except ET.ParseError as exc:
            raise WebhookError(f"invalid TwiML from {url}: {exc} (Twilio error 12100)",
                               exchange) from exc
        if root.tag != "Response":
            raise WebhookError(f"TwiML from {url} has root <{root.tag}>, not <Response> "
                               f"(Twilio error 12100)", exchange)
        return root

    def _event(self, kind: EventKind, text: str = "", language: str | None = None,
               **detail: Any) -> None:
        event = Event(kind, text, language, detail)
        self.events.append(event)
        if self.on_event is not None:
            self.on_event(event)

    def _finish(self, status: str) -> None:
        self._pending = None
        self._verbs.clear()
        self.status = status
        self._event(EventKind.ENDED, f"{status} after {self.duration} s")
        if self.status_callback:
            self.send_status(status)
        if self.on_end is not None:
            self.on_end(self)

    def _apply(self, change: LiveUpdate) -> None:
        visit = self._queue
        if visit is not None and visit.action:
            outcome = "hangup" if change.status else "redirected"
            self._send(visit.method, visit.action, visit.result_params(outcome, self.clock))
        self._queue = None
        self._pending = None
        if change.status in ("completed", "canceled"):
            self._event(EventKind.HUNG_UP, f"ended through the REST API ({change.status})")
            self._finish("completed" if self.answered else "canceled")
            return
        self._event(EventKind.REDIRECTED, change.url or "new TwiML", via="REST API")
        if change.twiml is not None:
            self._load(self._parse(change.twiml, self.start_url), self.start_url)
        elif change.url:
            self._load(self._fetch(change.method, change.url), change.url)
        self._advance()


class Simulator:
    """Makes :class:`SimulatedCall` objects that share a server, key and transport."""

    def __init__(self, base_url: str, auth_token: str | None, *,
                 transport: Transport | None = None, **defaults: Any) -> None:
        self.base_url = base_url.rstrip("/")
        self.auth_token = auth_token
        self.transport = transport or RequestsTransport()
        self.defaults = defaults

    def call(self, from_: str = DEFAULT_FROM, to: str = DEFAULT_TO, **options: Any) -> SimulatedCall:
        merged = {"transport": self.transport, **self.defaults, **options}
        return SimulatedCall(self.base_url, self.auth_token, from_, to, **merged)


def run_call(base_url: str, auth_token: str | None, script: Iterable[ScriptItem], *,
             provider: InputProvider | None = None, **options: Any) -> SimulatedCall:
    """Place one call, play ``script`` to the end and return the finished call."""
    return SimulatedCall(base_url, auth_token, script=script, **options).run(provider)

