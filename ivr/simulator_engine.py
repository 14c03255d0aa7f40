"""Twilio's voice engine, simulated: what each TwiML verb does to a call.

:class:`VerbPlayer` is the verb-by-verb half of :class:`ivr.simulator.SimulatedCall`
(which adds HTTP, signatures and the call's lifecycle). Behaviour follows Twilio's
documentation: a ``<Gather>`` that hears nothing goes on with the next verb unless
``actionOnEmptyResult="true"``; a ``<Record>`` that records nothing skips its action;
``<Enqueue>`` loops its ``waitUrl`` document until the caller leaves the queue and then
requests its ``action`` with ``QueueResult``; ``<Reject>`` as the first verb ends the
call unanswered (busy or no-answer); running out of verbs hangs up.
"""

from __future__ import annotations

import contextlib
import hashlib
import uuid
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urljoin

from ivr.simulator_parts import (
    DialOutcome,
    EventKind,
    HangUp,
    LoopGuardTripped,
    Press,
    QueueOutcome,
    RecordAudio,
    ScriptError,
    ScriptItem,
    Silence,
    SimulatorError,
    Speak,
    WebhookError,
    new_call_sid,
)

PROMPT_VERBS = ("Say", "Play", "Pause")
WAIT_VERBS = ("Say", "Play", "Pause", "Gather", "Redirect", "Leave", "Hangup")
"""What Twilio allows in an ``<Enqueue waitUrl>`` document."""
NOT_SIMULATED = {"Connect", "Stop", "Echo", "Pay", "Prompt", "Refer", "Sms",
                 "Queue", "Conference", "Stream", "Siprec", "Transcription"}
KEYS = set("0123456789*#")
WORDS_PER_SECOND = 2.5  # how long a <Say> takes, for the simulated clock
PLAY_SECONDS = 5.0  # an audio file's length is unknown without fetching it
DEFAULT_HOLD_SECONDS = 10.0  # one loop of Twilio's own hold music (no waitUrl)


def _num(value: str | None, default: float) -> float:
    try:
        return float(value) if value not in (None, "") else default
    except ValueError:
        return default  # Twilio warns (13xxx) and uses the default


def _collect(keys: str, finish_on: str, num_digits: int) -> str:
    """The ``Digits`` Twilio sends: up to the finish key or ``numDigits``, key excluded."""
    digits = ""
    for key in keys:
        if finish_on and key in finish_on:
            break
        digits += key
        if num_digits and len(digits) >= num_digits:
            break
    return digits


@dataclass
class QueueVisit:
    """The caller's stay in one ``<Enqueue>``."""

    name: str
    action: str | None
    method: str
    wait_url: str | None
    wait_method: str
    entered: float
    position: int
    wait_gather: tuple[ET.Element, str] | None = None

    @property
    def sid(self) -> str:
        return "QU" + hashlib.md5(self.name.encode()).hexdigest()

    def wait_params(self, now: float) -> dict[str, str]:
        return {"QueueSid": self.sid, "QueuePosition": str(self.position),
                "QueueTime": str(int(now - self.entered)), "AvgQueueTime": "0",
                "CurrentQueueSize": str(self.position), "MaxQueueSize": "100"}

    def result_params(self, result: str, waited: float) -> dict[str, str]:
        return {"QueueResult": result, "QueueSid": self.sid, "QueueTime": str(int(waited))}


class VerbPlayer:
    """Plays TwiML verbs and answers them with the caller's input."""

    if TYPE_CHECKING:  # provided by SimulatedCall
        queue_position: int
        recordings_url: str
        account_sid: str
        max_requests: int
        answered: bool

        @property
        def ended(self) -> bool: ...
        def _fetch(self, method: str, url: str,
                   extra: Mapping[str, str] | None = None) -> ET.Element: ...
        def _send(self, method: str, url: str, extra: Mapping[str, str],
                  twiml: bool = True) -> tuple[object, ET.Element | None]: ...
        def _event(self, kind: EventKind, text: str = "", language: str | None = None,
                   **detail: object) -> None: ...
        def _finish(self, status: str) -> None: ...

    def __init__(self) -> None:
        self.clock = 0.0  # simulated seconds since the call was answered
        self._verbs: deque[ET.Element] = deque()
        self._doc_url = ""
        self._pending: ET.Element | None = None
        self._queue: QueueVisit | None = None

    # ------------------------------------------------------------------ documents

    def _load(self, root: ET.Element, url: str) -> None:
        self._verbs = deque(root)
        self._doc_url = url

    def _resolve(self, href: str | None, base: str | None = None) -> str:
        href = (href or "").strip()
        base = base or self._doc_url
        return urljoin(base, href) if href else base

    @contextlib.contextmanager
    def _document(self, url: str) -> Iterator[None]:
        saved, self._doc_url = self._doc_url, url
        try:
            yield
        finally:
            self._doc_url = saved

    def _advance(self) -> None:
        while not self.ended and self._pending is None:
            if not self._verbs:
                self._event(EventKind.NOTE, "no more TwiML: Twilio hangs up")
                self._finish("completed")
                return
            self._play(self._verbs.popleft())

    def _play(self, verb: ET.Element) -> None:
        handler = getattr(self, f"_verb_{verb.tag.lower()}", None) if verb.tag.isalpha() else None
        if handler is None:
            if verb.tag in NOT_SIMULATED:
                raise SimulatorError(f"<{verb.tag}> is valid TwiML but the simulator does not "
                                     f"simulate it ({self._doc_url})")
            raise WebhookError(f"unknown TwiML verb <{verb.tag}> in {self._doc_url} "
                               f"(Twilio error 12100)")
        handler(verb)

    # ------------------------------------------------------------------ verbs

    def _verb_say(self, verb: ET.Element) -> None:
        text = " ".join("".join(verb.itertext()).split())  # SSML children are spoken too
        loops = int(_num(verb.get("loop"), 1)) or 1
        self._event(EventKind.HEARD, text, verb.get("language", "en-US"),
                    voice=verb.get("voice"), loop=loops)
        self.clock += loops * max(1.0, len(text.split()) / WORDS_PER_SECOND)

    def _verb_play(self, verb: ET.Element) -> None:
        loops = int(_num(verb.get("loop"), 1)) or 1
        if verb.get("digits"):
            self._event(EventKind.NOTE, f"sends DTMF {verb.get('digits')}")
            return
        self._event(EventKind.PLAYED, self._resolve(verb.text), loop=loops)
        self.clock += loops * PLAY_SECONDS

    def _verb_start(self, verb: ET.Element) -> None:
        """``<Start><Stream>`` forks the caller's audio while the TwiML goes on: noted (the
        simulator has no audio; streams are opened by the tests or a real Twilio)."""
        for child in verb:
            if child.tag != "Stream":
                raise SimulatorError(f"<Start><{child.tag}> is not simulated ({self._doc_url})")
            params = {p.get("name", ""): p.get("value", "") for p in child.iter("Parameter")}
            self.streams.append({"url": child.get("url", ""), "params": params})
            self._event(EventKind.NOTE, f"media stream to {child.get('url', '')} "
                                        f"({', '.join(sorted(params))})")

    def _verb_pause(self, verb: ET.Element) -> None:
        length = _num(verb.get("length"), 1)
        self._event(EventKind.PAUSED, f"{length:g} s")
        self.clock += length

    def _verb_gather(self, verb: ET.Element) -> None:
        for child in verb:
            if child.tag not in PROMPT_VERBS:
                raise WebhookError(f"<{child.tag}> cannot be nested in <Gather> "
                                   f"({self._doc_url}, Twilio error 12100)")
            self._play(child)
        self._pending = verb

    def _verb_record(self, verb: ET.Element) -> None:
        if verb.get("playBeep", "true").lower() != "false":
            self._event(EventKind.NOTE, "beep")
        self._pending = verb

    def _verb_enqueue(self, verb: ET.Element) -> None:
        name = (verb.text or "").strip()
        action, wait_url = verb.get("action"), verb.get("waitUrl")
        self._queue = QueueVisit(
            name, self._resolve(action) if action else None, verb.get("method", "POST"),
            self._resolve(wait_url) if wait_url else None, verb.get("waitUrlMethod", "POST"),
            self.clock, self.queue_position)
        self._pending = verb
        self._event(EventKind.QUEUED, name, position=self.queue_position)
        self._wait_once()

    def _verb_dial(self, verb: ET.Element) -> None:
        targets = [" ".join("".join(c.itertext()).split()) for c in verb] or [
            (verb.text or "").strip()]
        self._event(EventKind.DIALED, ", ".join(t for t in targets if t))
        self._pending = verb

    def _verb_redirect(self, verb: ET.Element) -> None:
        if not (verb.text or "").strip():
            raise WebhookError(f"<Redirect> without a URL in {self._doc_url} (Twilio error 12100)")
        target = self._resolve(verb.text)
        self._event(EventKind.REDIRECTED, target)
        self._load(self._fetch(verb.get("method", "POST"), target), target)

    def _verb_hangup(self, verb: ET.Element) -> None:
        self._event(EventKind.HUNG_UP, "the server hung up")
        self._finish("completed")

    def _verb_reject(self, verb: ET.Element) -> None:
        reason = verb.get("reason", "rejected")
        self._event(EventKind.REJECTED, reason)
        if self.answered:  # only a first <Reject> keeps the call unanswered
            self._finish("completed")
        else:
            self._finish("busy" if reason == "busy" else "no-answer")

    def _verb_leave(self, verb: ET.Element) -> None:
        self._event(EventKind.NOTE, "<Leave> outside a queue does nothing")

    # ------------------------------------------------------------------ the caller's input

    def _respond(self, item: ScriptItem | None) -> None:
        verb = self._pending
        if verb is None:
            raise ScriptError("the call is not waiting for the caller")
        if isinstance(item, HangUp):
            if self._queue is not None:
                item = QueueOutcome("hangup")
            else:
                self._pending = None
                self._event(EventKind.HUNG_UP, "the caller hung up")
                self._finish("completed")
                return
        getattr(self, f"_answer_{verb.tag.lower()}")(verb, item)

    def _gather_input(self, verb: ET.Element, item: ScriptItem | None) -> dict[str, str]:
        """The parameters a ``<Gather>`` sends for ``item``; empty when it heard nothing."""
        inputs = set((verb.get("input") or "dtmf").split())
        if isinstance(item, Press):
            if not item.digits or set(item.digits) - KEYS:
                raise ScriptError(f"press({item.digits!r}): a phone has only 0-9, * and #")
            self._event(EventKind.PRESSED, item.digits)
            if "dtmf" not in inputs:
                self._event(EventKind.NOTE, "keys ignored: this <Gather> listens for speech")
                return {}
            digits = _collect(item.digits, verb.get("finishOnKey", "#"),
                              int(_num(verb.get("numDigits"), 0)))
            return {"Digits": digits} if digits else {}
        if isinstance(item, Speak):
            self._event(EventKind.SAID, item.text, verb.get("language", "en-US"),
                        confidence=item.confidence)
            self.clock += max(1.0, len(item.text.split()) / WORDS_PER_SECOND)
            if "speech" not in inputs:
                self._event(EventKind.NOTE, "speech ignored: this <Gather> listens for keys")
                return {}
            return {"SpeechResult": item.text, "Confidence": str(round(item.confidence, 8))}
        if item is None or isinstance(item, Silence):
            return {}
        raise ScriptError(f"{item!r} does not fit a <Gather>: press(), say(), silence() "
                          f"or hangup()")

    def _answer_gather(self, verb: ET.Element, item: ScriptItem | None) -> None:
        params = self._gather_input(verb, item)
        self._pending = None
        if not params:
            timeout = _num(verb.get("timeout"), 5)
            self.clock += timeout
            self._event(EventKind.SILENT, f"no input after {timeout:g} s")
            if verb.get("actionOnEmptyResult", "false").lower() != "true":
                return  # Twilio goes on with the verb after <Gather>
        target = self._resolve(verb.get("action"))
        self._load(self._fetch(verb.get("method", "POST"), target, params), target)

    def _answer_record(self, verb: ET.Element, item: ScriptItem | None) -> None:
        if item is None or isinstance(item, Silence):
            self._pending = None
            self.clock += _num(verb.get("timeout"), 5)
            self._event(EventKind.SILENT, "nothing recorded: Twilio skips the action")
            return
        if not isinstance(item, RecordAudio):
            raise ScriptError(f"{item!r} does not fit a <Record>: record(), silence() or hangup()")
        self._pending = None
        seconds = min(item.seconds, _num(verb.get("maxLength"), 3600) or 3600)
        sid = item.sid or "RE" + uuid.uuid4().hex
        url = item.url or (f"{self.recordings_url}/2010-04-01/Accounts/{self.account_sid}"
                           f"/Recordings/{sid}")
        self.clock += seconds
        self._event(EventKind.RECORDED, f"{seconds:g} s", url=url, sid=sid)
        params = {"RecordingUrl": url, "RecordingSid": sid,
                  "RecordingDuration": str(round(seconds))}
        if item.ended_by:
            params["Digits"] = item.ended_by
        target = self._resolve(verb.get("action"))
        root = self._fetch(verb.get("method", "POST"), target, params)
        callback = verb.get("recordingStatusCallback")
        if callback:
            self._send(verb.get("recordingStatusCallbackMethod", "POST"), self._resolve(callback),
                       {"RecordingSid": sid, "RecordingUrl": url, "RecordingStatus": "completed",
                        "RecordingDuration": params["RecordingDuration"],
                        "RecordingChannels": "1", "RecordingSource": "RecordVerb"}, twiml=False)
        if item.ended_by == "hangup":  # Twilio still posts the action, ignores its TwiML
            self._event(EventKind.HUNG_UP, "the caller hung up")
            self._finish("completed")
            return
        self._load(root, target)

    def _answer_dial(self, verb: ET.Element, item: ScriptItem | None) -> None:
        item = DialOutcome() if item is None else item
        if not isinstance(item, DialOutcome):
            raise ScriptError(f"{item!r} does not fit a <Dial>: dial_outcome() or hangup()")
        self._pending = None
        params = {"DialCallStatus": item.status, "DialCallSid": new_call_sid()}
        if item.status in ("completed", "answered"):
            self.clock += item.seconds
            params["DialCallDuration"] = str(round(item.seconds))
        else:
            self.clock += _num(verb.get("timeout"), 30) if item.status == "no-answer" else 1
        self._event(EventKind.NOTE, f"dial {item.status}")
        if verb.get("action"):
            target = self._resolve(verb.get("action"))
            self._load(self._fetch(verb.get("method", "POST"), target, params), target)

    # ------------------------------------------------------------------ queues

    def _answer_enqueue(self, verb: ET.Element, item: ScriptItem | None) -> None:
        visit = self._queue
        assert visit is not None
        if item is None:  # the script ran out: the caller gives up
            item = QueueOutcome("hangup")
        if isinstance(item, Silence):
            self._wait_once()
        elif isinstance(item, (Press, Speak)):
            if visit.wait_gather is None:
                raise ScriptError(f"nothing listens for input while waiting in {visit.name!r}")
            gather, url = visit.wait_gather
            params = self._gather_input(gather, item)
            if not params:
                self._wait_once()
                return
            target = self._resolve(gather.get("action"), url)
            root = self._fetch(gather.get("method", "POST"), target,
                               {**visit.wait_params(self.clock), **params})
            self._wait_once(root, target)
            if self._queue is visit and visit.wait_gather is None:
                # That document ended without listening (an empty answer to a key):
                # Twilio requests the waitUrl again, and its <Gather> listens again.
                self._wait_once()
        elif isinstance(item, QueueOutcome):
            before, loops = self.clock - visit.entered, 0
            while self._queue is visit and self.clock < visit.entered + item.after:
                loops += 1
                if loops > self.max_requests:
                    raise LoopGuardTripped(f"the waitUrl of {visit.name!r} looped {loops} "
                                           f"times without time passing")
                self._wait_once()
            if self._queue is not visit:
                return  # the wait document ended the stay itself (<Leave/>, <Hangup/>)
            # the outcome interrupts the hold music: the stay lasted `after` seconds
            waited = max(item.after, before)
            self.clock = visit.entered + waited
            if item.result == "bridged":
                self._event(EventKind.NOTE, f"talking with an agent for {item.talk:g} s")
                self.clock += item.talk
            elif item.result == "hangup":
                self._event(EventKind.HUNG_UP, "the caller hung up while waiting")
            self._leave_queue(item.result, waited)
        else:
            raise ScriptError(f"{item!r} does not fit an <Enqueue>: queue_outcome(), press(), "
                              f"say(), silence() or hangup()")

    def _wait_once(self, root: ET.Element | None = None, url: str | None = None) -> None:
        """Play the wait document once (fetching the waitUrl unless ``root`` is given)."""
        visit = self._queue
        assert visit is not None
        started = self.clock
        if root is None:
            if visit.wait_url is None:
                self.clock += DEFAULT_HOLD_SECONDS
                return
            url = visit.wait_url
            root = self._fetch(visit.wait_method, url, visit.wait_params(self.clock))
        assert url is not None
        visit.wait_gather = None
        verbs = deque(root)
        while verbs:
            verb = verbs.popleft()
            if verb.tag not in WAIT_VERBS:
                raise WebhookError(f"<{verb.tag}> is not allowed in a waitUrl document ({url}; "
                                   f"Twilio allows {', '.join(WAIT_VERBS)})")
            if verb.tag == "Leave":
                self._leave_queue("leave", self.clock - visit.entered)
                return
            if verb.tag == "Hangup":
                self._event(EventKind.HUNG_UP, "the server hung up")
                self._leave_queue("hangup", self.clock - visit.entered)
                return
            if verb.tag == "Redirect":
                url = self._resolve(verb.text, url)
                root = self._fetch(verb.get("method", "POST"), url, visit.wait_params(self.clock))
                verbs = deque(root)
                continue
            # a <Gather> here plays its prompts and listens while the caller stays queued
            prompts = list(verb) if verb.tag == "Gather" else [verb]
            with self._document(url):
                for prompt in prompts:
                    if prompt.tag not in PROMPT_VERBS:
                        raise WebhookError(f"<{prompt.tag}> cannot be nested in <Gather> ({url})")
                    self._play(prompt)
            if verb.tag == "Gather":
                visit.wait_gather = (verb, url)
        self.clock = max(self.clock, started + 1)  # even an empty document takes time to loop

    def _leave_queue(self, result: str, waited: float) -> None:
        visit = self._queue
        assert visit is not None
        self._queue = None
        self._pending = None
        self._event(EventKind.LEFT_QUEUE, result, waited=int(waited))
        root = None
        if visit.action:
            root = self._fetch(visit.method, visit.action, visit.result_params(result, waited))
        if result == "hangup":  # the action is still requested; its TwiML is ignored
            self._finish("completed")
        elif root is not None and visit.action:
            self._load(root, visit.action)
