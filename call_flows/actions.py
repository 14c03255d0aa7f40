"""The vocabulary between the pure flow engine and the outside world.

The engine consumes *events* (what the caller or Twilio did) and emits *actions*
(what the caller should hear and do next, plus side effects for the web layer to
perform). Only ``ivr/render.py`` turns actions into TwiML; only the web layer
performs effects. Everything here is a frozen dataclass of plain data so steps can
be logged, replayed and compared in tests.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

# --------------------------------------------------------------------------- prompts


@dataclass(frozen=True)
class Prompt:
    """One thing to say: text spoken with ``<Say>`` or an audio file with ``<Play>``."""

    text: str = ""
    language: str = "es"
    voice: str | None = None
    audio_url: str | None = None
    locale: str | None = None  # Twilio's language tag for <Say> (es-ES, ca-ES, en-GB)
    filled: bool = False  # the text was filled in from the call (a name, an order status)


# --------------------------------------------------------------------------- data the engine is given


@dataclass(frozen=True)
class CustomerInfo:
    """What the flow may know about a caller: enough to greet, route and branch."""

    id: str
    name: str
    language: str | None = None
    vip: bool = False
    account: str | None = None
    open_follow_up: str | None = None  # short description of the newest open follow-up
    fields: Mapping[str, str] = field(default_factory=dict)  # e.g. order_status

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["fields"] = dict(self.fields)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CustomerInfo:
        return cls(
            id=str(data["id"]),
            name=str(data.get("name", "")),
            language=data.get("language"),
            vip=bool(data.get("vip", False)),
            account=data.get("account"),
            open_follow_up=data.get("open_follow_up"),
            fields={str(k): str(v) for k, v in (data.get("fields") or {}).items()},
        )


# --------------------------------------------------------------------------- events (input)


@dataclass(frozen=True)
class CallStarted:
    """A new call reached a line. ``customer`` is the caller-ID lookup, if any."""

    call_sid: str
    caller: str  # E.164 when it parses, else as Twilio sent it
    called: str
    now: datetime  # timezone-aware
    customer: CustomerInfo | None = None


@dataclass(frozen=True)
class Digits:
    digits: str
    now: datetime


@dataclass(frozen=True)
class Speech:
    """Recognised words (Twilio ``SpeechResult`` or our own Vosk result)."""

    text: str
    confidence: float
    now: datetime


@dataclass(frozen=True)
class NoInput:
    """The caller said and pressed nothing before the timeout."""

    now: datetime


@dataclass(frozen=True)
class LookupResult:
    """Answer to a :class:`LookupCustomer` effect."""

    customer: CustomerInfo | None
    now: datetime


@dataclass(frozen=True)
class RecordingDone:
    """A ``<Record>`` finished (voicemail or a spoken answer)."""

    recording_url: str
    duration_s: int
    now: datetime


@dataclass(frozen=True)
class QueueLeft:
    """The caller left a queue: ``result`` is Twilio's ``QueueResult``."""

    result: str
    wait_s: int
    now: datetime


@dataclass(frozen=True)
class DialDone:
    """A ``<Dial>`` ended: ``status`` is Twilio's ``DialCallStatus``."""

    status: str
    now: datetime


@dataclass(frozen=True)
class Continue:
    """Resume after a ``Redirect`` (no caller input)."""

    now: datetime


Event = (
    CallStarted | Digits | Speech | NoInput | LookupResult | RecordingDone | QueueLeft
    | DialDone | Continue
)


# --------------------------------------------------------------------------- actions (output)


@dataclass(frozen=True)
class Say:
    prompt: Prompt


@dataclass(frozen=True)
class Pause:
    seconds: int = 1


@dataclass(frozen=True)
class Gather:
    """Collect keys and/or speech while ``prompts`` play (barge-in allowed)."""

    prompts: tuple[Prompt, ...]
    language: str
    dtmf: bool = True
    speech: bool = True
    num_digits: int | None = None
    finish_on_key: str = "#"
    timeout_s: int = 5
    hints: tuple[str, ...] = ()
    locale: str | None = None  # Twilio's speech-recognition language tag (es-ES...)


@dataclass(frozen=True)
class Record:
    """Record the caller (voicemail, or a spoken answer for offline recognition)."""

    prompts: tuple[Prompt, ...]
    purpose: str = "voicemail"  # "voicemail" | "speech" | "survey" (a survey comment)
    max_length_s: int = 120
    timeout_s: int = 5
    play_beep: bool = True


@dataclass(frozen=True)
class Enqueue:
    """Hand the call to a queue of humans."""

    queue: str
    skills: Mapping[str, str]  # e.g. {"language": "es", "topic": "billing"}
    priority: int = 0


@dataclass(frozen=True)
class Dial:
    number: str
    timeout_s: int = 30


@dataclass(frozen=True)
class Hangup:
    pass


@dataclass(frozen=True)
class Redirect:
    """Come straight back (``Continue`` event) after the actions before it play."""


# Effects: performed by the web layer; those marked "re-step" are answered with an event.


@dataclass(frozen=True)
class LookupCustomer:
    """Re-step with :class:`LookupResult`. ``by`` is "account" or "phone"."""

    by: str
    value: str


@dataclass(frozen=True)
class RequestCallback:
    """Register a callback request (no re-step)."""

    number: str
    skills: Mapping[str, str]
    priority: int = 0
    reason: str = ""


class RecordingState(str, Enum):
    """What a :class:`RecordingControl` asks of the whole-call recording."""

    START = "start"  # begin recording the call (after the caller was told)
    PAUSED = "paused"  # card or identity digits are being collected: record nothing
    IN_PROGRESS = "in-progress"  # resume after a pause


@dataclass(frozen=True)
class RecordingControl:
    """Start, pause or resume the whole-call recording (no re-step).

    The web layer performs it through Twilio's REST API before it answers the
    request, so a pause is in force before the caller hears the question that
    collects sensitive digits."""

    state: RecordingState


Action = (
    Say | Pause | Gather | Record | Enqueue | Dial | Hangup | Redirect | LookupCustomer
    | RequestCallback | RecordingControl
)

TWIML_ACTIONS = (Say, Pause, Gather, Record, Enqueue, Dial, Hangup, Redirect)
EFFECTS = (LookupCustomer, RequestCallback, RecordingControl)
