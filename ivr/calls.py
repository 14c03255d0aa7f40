"""Answering one webhook request of a call: state in, engine step, effects, TwiML out.

Views stay thin; this service owns the sequence: open the sealed state → turn
Twilio's parameters into an event → ``engine.step`` → perform effects (customer
lookup, callback request, queueing) → seal the new state → hand the record to the
background writer → render. Any failure inside gives the caller an apology and a
safe path, never a 5xx.
"""

from __future__ import annotations

import functools
import logging
import re
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import phonenumbers

from call_flows import actions as a
from call_flows.session import Session, Step
from ivr import render
from ivr.events import EndedCalls, StepWriter
from ivr.state import InvalidState, StateCodec, dumps

log = logging.getLogger(__name__)

MAX_SPEECH_CHARS = 500  # Twilio's transcripts are short; longer input is noise
MAX_DIGITS = 64
_SID = re.compile(r"^CA[0-9a-fA-F]{32}$")
_MAX_EFFECT_ROUNDS = 4


def normalize_number(raw: str, region: str = "ES") -> str:
    """E.164 when the number parses (caller IDs come in many shapes), else as sent."""
    raw = (raw or "").strip()[:64]
    if not raw:
        return ""
    try:
        number = phonenumbers.parse(raw, None if raw.startswith("+") else region)
    except phonenumbers.NumberParseException:
        return raw
    if not phonenumbers.is_possible_number(number):
        return raw
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# The lines' own numbers come on every call: parsed once. Callers' numbers are personal
# data and are not kept in memory.
_line_number = functools.lru_cache(maxsize=256)(normalize_number)


def valid_call_sid(value: str | None) -> bool:
    return bool(value) and bool(_SID.match(value or ""))


class CallService:
    def __init__(self, engine: Any, codec: StateCodec, writer: StepWriter, ended: EndedCalls,
                 customers: Any | None = None, queue: Any | None = None,
                 clock: Callable[[], float] = time.time, flow_sync: Any | None = None) -> None:
        self.engine = engine
        self.codec = codec
        self.writer = writer
        self.ended = ended
        self.customers = customers  # recordings.store.Database, when configured
        self.queue = queue  # queueing adapter, when configured
        self.clock = clock
        self.stream_url: str | None = None  # Media Streams websocket (IVR_SPEECH=vosk-stream)
        # Other speech modes with IVR_MEDIA_STREAM_URL set: a stream started when the
        # caller joins a queue, so "llámenme" is heard while holding.
        self.hold_stream_url: str | None = None
        self.speech: Any | None = None  # ivr.speech_turns.SpeechTurns: offline recognition
        self.flow_sync = flow_sync  # fetches the flow version a call started on
        self.recorder: Any | None = None  # ivr.twilio_rest.CallRecorder (whole-call recording)

    # ------------------------------------------------------------------ entry points

    def incoming(self, params: Mapping[str, str]) -> str:
        call_sid = params.get("CallSid", "")
        if not valid_call_sid(call_sid):
            log.warning("incoming call without a valid CallSid: answering with the safe path")
            return render.apology(None)
        if call_sid in self.ended:
            return render.hangup()
        now = self._now()
        caller = normalize_number(params.get("From", ""))
        called = _line_number(params.get("To", ""))
        customer = self._customer_by_phone(caller)
        step = self.engine.start(a.CallStarted(call_sid=call_sid, caller=caller, called=called,
                                               now=now, customer=customer))
        return self._finish(step, {"kind": "call_started", "from": caller, "to": called,
                                   "known": customer is not None}, stream=True)

    def resume(self, token: str, params: Mapping[str, str],
               make_event: Callable[[Mapping[str, str], datetime], a.Event]) -> str:
        """Any request after the first: ``make_event`` turns parameters into an event."""
        session = self._open(token, params)
        if session is None:
            return render.apology(None)
        if session.ended or session.call_sid in self.ended:
            return render.hangup()
        if self.flow_sync is not None:
            self.flow_sync.ensure(session.flow, session.flow_version)
        event = make_event(params, self._now())
        if self.speech is not None and params.get("purpose") == "speech":
            event = self.speech.event(session, params, event.now)  # recorded answer: Vosk
        first: dict[str, Any] | None = None
        if isinstance(event, a.QueueLeft):
            first = {"kind": "queue_left", "result": event.result, "wait_s": event.wait_s}
            if self.queue is not None:
                try:
                    self.queue.left(session.call_sid, event.result)
                except Exception:
                    log.exception("router could not record that %s left the queue",
                                  session.call_sid)
        elif isinstance(event, a.RecordingDone) and params.get("purpose") != "speech":
            first = {"kind": "recording", "recording_sid": params.get("RecordingSid", "")[:64],
                     "url": event.recording_url, "purpose": params.get("purpose") or "voicemail",
                     "duration_s": event.duration_s}
        return self._finish(self.engine.step(session, event), first)

    def advance(self, session: Session, event: a.Event) -> str:
        """Step a call outside a webhook (live speech, REST updates): effects, seal,
        record and render exactly as a webhook does; the TwiML for a call update."""
        if session.ended or session.call_sid in self.ended:
            return render.hangup()
        return self._finish(self.engine.step(session, event))

    def stream_auth(self, call_sid: str) -> str:
        """The ``auth`` parameter of a call's Media Stream: only streams our TwiML started
        carry it (the websocket server refuses the others)."""
        return self.codec.tag("media-stream:" + call_sid)

    def session_of(self, token: str, params: Mapping[str, str]) -> Session | None:
        return self._open(token, params)

    # ------------------------------------------------------------------ internals

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), tz=UTC)

    def _open(self, token: str, params: Mapping[str, str]) -> Session | None:
        try:
            session = Session.from_dict(self.codec.decode(token))
        except (InvalidState, KeyError, TypeError, ValueError) as exc:
            log.warning("request with an unusable call state (%s)", exc)
            return None
        sid = params.get("CallSid")
        if sid and sid != session.call_sid:
            log.warning("call state of %s presented by %s: refused", session.call_sid, sid)
            return None
        return session

    def _customer_by_phone(self, caller: str) -> a.CustomerInfo | None:
        if self.customers is None or not caller.startswith("+"):
            return None
        try:
            info: a.CustomerInfo | None = self.customers.customer_info_by_e164(caller)
            return info
        except Exception:  # the caller must not hear a database failure
            log.exception("customer lookup by phone failed; continuing as unknown caller")
            return None

    def _lookup(self, effect: a.LookupCustomer) -> a.CustomerInfo | None:
        if self.customers is None:
            return None
        try:
            if effect.by == "account":
                info: a.CustomerInfo | None = self.customers.customer_info_by_account(
                    effect.value)
            else:
                info = self.customers.customer_info_by_phone(normalize_number(effect.value))
            return info
        except Exception:
            log.exception("customer lookup failed; treating as not found")
            return None

    def _finish(self, step: Step, first: Mapping[str, Any] | None = None,
                stream: bool = False) -> str:
        records: list[Mapping[str, Any]] = [dict(first, at=self.clock())] if first else []
        spoken: list[a.Action] = []  # what played before a lookup still plays
        for _ in range(_MAX_EFFECT_ROUNDS):
            records.extend(step.log)
            effect = step.actions[-1] if step.actions else None
            if not isinstance(effect, a.LookupCustomer):
                break
            spoken.extend(step.actions[:-1])
            customer = self._lookup(effect)
            records.append({"kind": "lookup", "by": effect.by, "found": customer is not None,
                            "at": self.clock()})
            step = self.engine.step(step.session, a.LookupResult(customer, self._now()))
        actions = tuple(spoken) + tuple(step.actions)
        for action in actions:
            if isinstance(action, a.RequestCallback):
                records.append(self._callback(step.session, action))
            elif isinstance(action, a.Enqueue) and self.queue is not None:
                records.append(self._enqueue(step.session, action))
            elif isinstance(action, a.RecordingControl):
                records.append(self._record_call(step.session, action))
        session = step.session
        state = dumps(session.to_dict())  # once: sealed into the URL and kept in Redis
        self.writer.submit((session.call_sid, session.seq, state, records))
        token = self.codec.seal(state.encode())
        url = self.stream_url if stream else None
        if url is None and self.hold_stream_url and any(isinstance(x, a.Enqueue)
                                                        for x in actions) \
                and self.writer.records.claim_once(session.call_sid, "hold-stream"):
            url = self.hold_stream_url  # once: a fork lasts until the call ends
        if url:
            return render.render(actions, token, stream_url=url,
                                 stream_params={"call": session.call_sid,
                                                "auth": self.stream_auth(session.call_sid)})
        return render.render(actions, token)

    def _callback(self, session: Session, action: a.RequestCallback) -> Mapping[str, Any]:
        record: dict[str, Any] = {"kind": "callback_requested", "number": action.number,
                                  "skills": dict(action.skills), "priority": action.priority,
                                  "at": self.clock()}
        if self.queue is None:
            record["note"] = "no queue configured: recorded for follow-up"
            return record
        try:
            self.queue.request_callback(session, action)
        except Exception:
            log.exception("callback request could not be queued; kept in the call record")
            record["error"] = "not queued"
        return record

    def _record_call(self, session: Session, action: a.RecordingControl) -> Mapping[str, Any]:
        """Start, pause or resume the whole-call recording through Twilio's REST API
        (``self.recorder``: ``ivr.twilio_rest.CallRecorder``) before the caller hears
        what follows. A failure is noted on the call, never heard; a failed pause makes
        the recording job discard that recording (it may hold the digits)."""
        state = str(getattr(action.state, "value", action.state))
        record: dict[str, Any] = {"kind": "call_recording", "state": state,
                                  "at": self.clock()}
        recorder = self.recorder
        if recorder is None:
            record["error"] = "call recording unavailable: TWILIO_ACCOUNT_SID/AUTH_TOKEN unset"
            return record
        if state == "start":
            try:
                first = self.writer.records.claim_once(session.call_sid, "recording-start")
            except Exception:  # noqa: BLE001 -- Redis down: one recording too many, not none
                log.warning("call %s: could not claim the recording start", session.call_sid)
                first = True
            if not first:  # a retried step: the recording is already running
                record["note"] = "already started"
                return record
        try:
            answer = recorder.control(session.call_sid, state)
            record["recording_sid"] = str(answer.get("sid") or "")[:64]
        except Exception as exc:
            log.exception("call %s: recording %s failed", session.call_sid, state)
            record["error"] = str(exc)[:300]
        return record

    def _enqueue(self, session: Session, action: a.Enqueue) -> Mapping[str, Any]:
        record: dict[str, Any] = {"kind": "enqueued", "queue": action.queue,
                                  "skills": dict(action.skills), "priority": action.priority,
                                  "at": self.clock()}
        try:
            self.queue.enqueue(session, action)
        except Exception:
            log.exception("router unavailable: the call waits in Twilio's queue only")
            record["error"] = "router unavailable"
        return record


# ---------------------------------------------------------------------- parameter parsing


def gather_event(params: Mapping[str, str], now: datetime) -> a.Event:
    """``<Gather>`` action: keys, speech, or nothing (timeout)."""
    digits = re.sub(r"[^0-9*#]", "", params.get("Digits", ""))[:MAX_DIGITS]
    if digits:
        return a.Digits(digits=digits, now=now)
    speech = (params.get("SpeechResult") or "").strip()[:MAX_SPEECH_CHARS]
    if speech:
        return a.Speech(text=speech, confidence=_confidence(params.get("Confidence")), now=now)
    if params.get("event") == "continue":
        return a.Continue(now=now)
    return a.NoInput(now=now)


def _confidence(raw: str | None) -> float:
    try:
        value = float(raw or "0")
    except ValueError:
        return 0.0
    return value if 0.0 <= value <= 1.0 else 0.0


def recording_event(params: Mapping[str, str], now: datetime) -> a.Event:
    url = (params.get("RecordingUrl") or "").strip()
    if not url:  # nothing recorded (silence, or the guard redirect after <Record>)
        return a.NoInput(now=now)
    try:
        duration = max(0, int(params.get("RecordingDuration") or 0))
    except ValueError:
        duration = 0
    return a.RecordingDone(recording_url=url[:1000], duration_s=duration, now=now)


def queue_event(params: Mapping[str, str], now: datetime) -> a.Event:
    result = (params.get("QueueResult") or "error").strip()[:32]
    try:
        wait = max(0, int(params.get("QueueTime") or 0))
    except ValueError:
        wait = 0
    return a.QueueLeft(result=result, wait_s=wait, now=now)


def dial_event(params: Mapping[str, str], now: datetime) -> a.Event:
    return a.DialDone(status=(params.get("DialCallStatus") or "failed").strip()[:32], now=now)
