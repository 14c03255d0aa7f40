"""The pieces of a simulated call: script items, transcript events, errors, transports.

:mod:`ivr.simulator` drives a call with them (and re-exports them); ``ivr simulate``
and the fake Twilio cloud in ``tests/fakes.py`` build scripts and transports with them.
A transport is the only thing that touches HTTP, so the same call runs against a real
server (``RequestsTransport``) or in-process against a Flask app (``TestClientTransport``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol
from urllib.parse import urlencode, urlsplit

import requests

from ivr.errors import IvrError

API_VERSION = "2010-04-01"
DEFAULT_ACCOUNT_SID = "AC" + uuid.uuid5(uuid.NAMESPACE_URL, "centralita-simulator").hex
"""A well-formed (34 characters, ``AC`` prefix) account id for simulated calls."""
DEFAULT_FROM = "+34600000001"
DEFAULT_TO = "+34900000000"
TWILIO_TIMEOUT_S = 15.0
"""Twilio gives a webhook 15 s in total (FIELD-NOTES)."""


class SimulatorError(IvrError):
    """The simulated call could not go on; the message says what the server did wrong."""


class ServerUnreachable(SimulatorError):
    """Nothing answers at the URL (connection refused, DNS, timeout)."""


class WebhookError(SimulatorError):
    """The server answered a webhook in a way Twilio rejects (5xx, bad TwiML...)."""

    def __init__(self, message: str, exchange: Exchange | None = None) -> None:
        super().__init__(message)
        self.exchange = exchange


class LoopGuardTripped(SimulatorError):
    """The call made more requests than ``max_requests``: the flow loops."""


class ScriptError(SimulatorError):
    """A script item or fluent call does not fit what the call is doing now."""


# --------------------------------------------------------------------------- script items


@dataclass(frozen=True)
class Press:
    digits: str


@dataclass(frozen=True)
class Speak:
    text: str
    confidence: float = 0.9


@dataclass(frozen=True)
class Silence:
    pass


@dataclass(frozen=True)
class RecordAudio:
    url: str | None = None  # None: a URL on ``recordings_url`` is made up
    seconds: float = 5.0
    ended_by: str | None = None  # a key pressed to finish, or "hangup"
    sid: str | None = None


@dataclass(frozen=True)
class HangUp:
    pass


@dataclass(frozen=True)
class QueueOutcome:
    result: str  # bridged | leave | hangup | redirected | error | system-error
    after: float = 0.0  # seconds waited in the queue before the outcome
    talk: float = 0.0  # seconds talked with the agent once bridged


@dataclass(frozen=True)
class DialOutcome:
    status: str = "completed"  # completed | answered | busy | no-answer | failed | canceled
    seconds: float = 10.0


ScriptItem = Press | Speak | Silence | RecordAudio | HangUp | QueueOutcome | DialOutcome


def press(digits: str) -> Press:
    return Press(str(digits))


def say(text: str, confidence: float = 0.9) -> Speak:
    return Speak(text, confidence)


def silence() -> Silence:
    return Silence()


def record(url: str | None = None, seconds: float = 5.0, *, ended_by: str | None = None,
           sid: str | None = None) -> RecordAudio:
    return RecordAudio(url, seconds, ended_by, sid)


def hangup() -> HangUp:
    return HangUp()


def queue_outcome(result: str, after: float = 0.0, talk: float = 0.0) -> QueueOutcome:
    return QueueOutcome(result, after, talk)


def dial_outcome(status: str = "completed", seconds: float = 10.0) -> DialOutcome:
    return DialOutcome(status, seconds)


# --------------------------------------------------------------------------- transcript


class EventKind(str, Enum):
    HEARD = "heard"  # <Say>
    PLAYED = "played"  # <Play>
    PAUSED = "paused"
    PRESSED = "pressed"
    SAID = "said"
    SILENT = "silent"
    RECORDED = "recorded"
    REDIRECTED = "redirected"
    QUEUED = "queued"
    LEFT_QUEUE = "left-queue"
    DIALED = "dialed"
    REJECTED = "rejected"
    HUNG_UP = "hung-up"  # the server's <Hangup/> or the caller
    ERROR = "error"
    NOTE = "note"  # something Twilio would do silently (ignored input...)
    ENDED = "ended"


@dataclass(frozen=True)
class Event:
    """One line of the call's transcript."""

    kind: EventKind
    text: str = ""
    language: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        lang = f" [{self.language}]" if self.language else ""
        return f"{self.kind.value}{lang}: {self.text}" if self.text else self.kind.value


@dataclass(frozen=True)
class Exchange:
    """One webhook request Twilio made and what the server answered."""

    method: str
    url: str
    params: Mapping[str, str]
    status: int
    content_type: str
    body: str


# --------------------------------------------------------------------------- transports


@dataclass(frozen=True)
class HttpResponse:
    status: int
    content_type: str
    body: bytes


class Transport(Protocol):
    """Sends one HTTP request. ``url`` is absolute and already carries any query."""

    def send(self, method: str, url: str, form: Mapping[str, str] | None,
             headers: Mapping[str, str]) -> HttpResponse: ...


class RequestsTransport:
    """Real HTTP with ``requests``, Twilio's timeout, no redirects followed."""

    def __init__(self, session: requests.Session | None = None,
                 timeout: float = TWILIO_TIMEOUT_S) -> None:
        self.session = session or requests.Session()
        self.timeout = timeout

    def close(self) -> None:
        self.session.close()

    def send(self, method: str, url: str, form: Mapping[str, str] | None,
             headers: Mapping[str, str]) -> HttpResponse:
        try:
            resp = self.session.request(method, url, data=dict(form) if form is not None else None,
                                        headers=dict(headers), timeout=self.timeout,
                                        allow_redirects=False)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise ServerUnreachable(
                f"cannot reach {url}: {type(exc).__name__}; is `ivr serve` running?") from exc
        return HttpResponse(resp.status_code, resp.headers.get("Content-Type", ""), resp.content)


class TestClientTransport:
    """In-process requests through a Werkzeug/Flask test client (``app.test_client()``)."""

    __test__ = False  # not a pytest test class despite the name

    def __init__(self, client: Any) -> None:
        self.client = client

    def send(self, method: str, url: str, form: Mapping[str, str] | None,
             headers: Mapping[str, str]) -> HttpResponse:
        parts = urlsplit(url)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        resp = self.client.open(path, base_url=f"{parts.scheme}://{parts.netloc}", method=method,
                                data=dict(form) if form is not None else None,
                                headers=dict(headers))
        return HttpResponse(resp.status_code, resp.headers.get("Content-Type", ""),
                            resp.get_data())


# --------------------------------------------------------------------------- helpers


def new_call_sid() -> str:
    return "CA" + uuid.uuid4().hex


def with_query(url: str, params: Mapping[str, str]) -> str:
    """The URL Twilio requests for a GET: the parameters appended to the query."""
    if not params:
        return url
    return url + ("&" if urlsplit(url).query else "?") + urlencode(sorted(params.items()))
