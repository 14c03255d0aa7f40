"""Drive the engine with scripted calls, without Flask, Redis or Twilio.

    call = FlowHarness(registry, customers=[...]).call(caller="+34600111222")
    call.press("1"); call.say("factura", 0.9); call.silence()
    assert "Le pasamos con el departamento de facturación." in call.heard()

The harness does what the web layer does between two requests: it answers
``LookupCustomer`` effects from its own customer list and steps again, and it keeps
the session. Every step is checked for the engine's promises (never empty, an effect
that needs an answer comes last, the same request gives the same step).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from call_flows.actions import (
    Action,
    CallStarted,
    Continue,
    CustomerInfo,
    DialDone,
    Digits,
    Enqueue,
    Event,
    Gather,
    Hangup,
    LookupCustomer,
    LookupResult,
    NoInput,
    QueueLeft,
    Record,
    RecordingControl,
    RecordingDone,
    RequestCallback,
    Say,
    Speech,
)
from call_flows.engine import Engine
from call_flows.registry import FlowRegistry
from call_flows.session import Session, Step

DEFAULT_NOW = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)  # a Tuesday, open


class HarnessError(AssertionError):
    """The engine broke one of its promises during a scripted call."""


class FlowHarness:
    """One scripted call at a time; reuse the harness for many calls."""

    def __init__(self, registry: FlowRegistry, customers: Iterable[CustomerInfo] = (),
                 phones: Mapping[str, CustomerInfo] | None = None, check_replay: bool = True):
        self.registry = registry
        self.engine = Engine(registry)
        self.accounts = {c.account: c for c in customers if c.account}
        self.phones = dict(phones or {})
        self.check_replay = check_replay
        self.session: Session | None = None
        self.steps: list[Step] = []
        self.journal: list[Mapping[str, Any]] = []  # log records of every call, never reset
        self.actions: tuple[Action, ...] = ()
        self.effects: list[Action] = []
        self.now = DEFAULT_NOW

    # ------------------------------------------------------------------ the call

    def call(self, caller: str = "+34600111222", called: str = "+34930001000",
             now: datetime | None = None, customer: CustomerInfo | None = None,
             call_sid: str = "CA0123456789abcdef0123456789abcdef") -> FlowHarness:
        """Start a call; ``customer`` is what the caller-ID lookup found (or None)."""
        self.now = now or DEFAULT_NOW
        self.steps, self.effects, self.session = [], [], None
        if customer is None:
            customer = self.phones.get(caller)
        self._run(CallStarted(call_sid=call_sid, caller=caller, called=called, now=self.now,
                              customer=customer), first=True)
        return self

    def press(self, digits: str) -> FlowHarness:
        return self.send(Digits(digits=digits, now=self._tick()))

    def say(self, text: str, confidence: float = 0.9) -> FlowHarness:
        return self.send(Speech(text=text, confidence=confidence, now=self._tick()))

    def silence(self) -> FlowHarness:
        return self.send(NoInput(now=self._tick()))

    def record(self, url: str = "https://example.test/rec.wav", seconds: int = 12
               ) -> FlowHarness:
        return self.send(RecordingDone(recording_url=url, duration_s=seconds, now=self._tick()))

    def queue_left(self, result: str = "bridged", wait_s: int = 30) -> FlowHarness:
        return self.send(QueueLeft(result=result, wait_s=wait_s, now=self._tick()))

    def dial_done(self, status: str = "completed") -> FlowHarness:
        return self.send(DialDone(status=status, now=self._tick()))

    def resume(self) -> FlowHarness:
        return self.send(Continue(now=self._tick()))

    def send(self, event: Event) -> FlowHarness:
        if self.session is None:
            raise HarnessError("call() first")
        self._run(event)
        return self

    # ------------------------------------------------------------------ what happened

    def heard(self) -> list[str]:
        """Texts the caller heard in the last step (audio files as ``play:URL``)."""
        out: list[str] = []
        for action in self.actions:
            prompts = (action.prompt,) if isinstance(action, Say) else (
                action.prompts if isinstance(action, (Gather, Record)) else ())
            out.extend(p.text or f"play:{p.audio_url}" for p in prompts)
        return out

    def heard_text(self) -> str:
        return " ".join(self.heard())

    @property
    def node(self) -> str:
        return self.session.node if self.session else ""

    @property
    def ended(self) -> bool:
        return bool(self.session and self.session.ended)

    @property
    def outcome(self) -> str | None:
        return self.session.outcome if self.session else None

    @property
    def log(self) -> list[Mapping[str, Any]]:
        return [record for step in self.steps for record in step.log]

    @property
    def visited(self) -> list[str]:
        return [str(record["node"]) for record in self.log]

    def last(self, kind: type) -> Any:
        """The last action of that type in the last step, or None."""
        return next((a for a in reversed(self.actions) if isinstance(a, kind)), None)

    @property
    def gather(self) -> Gather | None:
        found: Gather | None = self.last(Gather)
        return found

    @property
    def enqueued(self) -> Enqueue | None:
        found: Enqueue | None = self.last(Enqueue)
        return found

    @property
    def recording_controls(self) -> list[str]:
        """The whole-call recording changes asked for so far in this call, in order."""
        return [a.state.value for a in self.effects if isinstance(a, RecordingControl)]

    @property
    def callback(self) -> RequestCallback | None:
        return next((a for a in reversed(self.effects) if isinstance(a, RequestCallback)), None)

    # ------------------------------------------------------------------ internals

    def _tick(self) -> datetime:
        self.now = self.now + timedelta(seconds=5)
        return self.now

    def _step(self, event: Event, first: bool) -> Step:
        if first:
            assert isinstance(event, CallStarted)
            step = self.engine.start(event)
            again = self.engine.start(event) if self.check_replay else step
        else:
            assert self.session is not None
            step = self.engine.step(self.session, event)
            again = self.engine.step(self.session, event) if self.check_replay else step
        if again != step:
            raise HarnessError(f"the same request gave two different steps: {event!r}")
        self._check(step)
        self.steps.append(step)
        self.journal.extend(step.log)
        self.session = step.session
        return step

    def _run(self, event: Event, first: bool = False) -> None:
        step = self._step(event, first)
        actions = list(step.actions)
        for _ in range(10):  # answer lookups the way the web layer does
            if not actions or not isinstance(actions[-1], LookupCustomer):
                break
            lookup = actions.pop()
            assert isinstance(lookup, LookupCustomer)
            self.effects.append(lookup)
            found = (self.accounts if lookup.by == "account" else self.phones).get(lookup.value)
            step = self._step(LookupResult(customer=found, now=self.now), False)
            actions.extend(step.actions)
        self.effects.extend(a for a in actions if isinstance(a, (RequestCallback,
                                                                 RecordingControl)))
        self.actions = tuple(actions)

    @staticmethod
    def _check(step: Step) -> None:
        actions = step.actions
        if not actions:
            raise HarnessError("a step without actions")
        for i, action in enumerate(actions):
            if isinstance(action, LookupCustomer) and i != len(actions) - 1:
                raise HarnessError("LookupCustomer must be the last action of a step")
        twiml = [a for a in actions
                 if not isinstance(a, (LookupCustomer, RequestCallback, RecordingControl))]
        if not twiml and not isinstance(actions[-1], LookupCustomer):
            raise HarnessError("a step with nothing for Twilio to do")
        if step.session.ended and not any(isinstance(a, (Hangup, Enqueue, Record))
                                          for a in actions):
            raise HarnessError("the call ended without a hang-up or hand-over")
