"""The pure flow engine: ``step(session, event) -> Step(session, actions, log)``.

No I/O and no clock: time comes in the events, customers come in ``CallStarted`` or
``LookupResult``. The same session and event always give the same step, so a Twilio
retry replays exactly. Any input -- garbage digits, 10 kB of speech, an event that
does not fit the node, a session pointing at a node that no longer exists -- ends in
a safe step (a reprompt, or the route to a person), never an exception.

:class:`Turn` moves a call between nodes; what each node type does lives in
:mod:`call_flows.nodes`.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from call_flows.actions import (
    Action,
    CallStarted,
    Enqueue,
    Event,
    Gather,
    Hangup,
    Prompt,
    Record,
    RecordingControl,
    RecordingState,
    Redirect,
    Say,
)
from call_flows.hours import Line
from call_flows.model import CallFlowsError, Flow, Localized, Node, Text
from call_flows.nodes import ENTER, HANDLE, PRESENT
from call_flows.registry import FlowRegistry
from call_flows.session import Session, Step
from call_flows.turn import describe
from call_flows.validate import DEFAULT_MESSAGES, fail_target

__all__ = ["Engine"]


class Engine:
    """Walks flows from a :class:`FlowRegistry`; stateless between calls."""

    def __init__(self, registry: FlowRegistry) -> None:
        self.registry = registry

    # ------------------------------------------------------------------ entry points

    def start(self, event: CallStarted) -> Step:
        """First step of a new call: pick the line, flow version and language."""
        line = self.registry.line_for(event.called)
        try:
            flow = self.registry.current(line.flow)
        except CallFlowsError:
            return _emergency(Session(call_sid=event.call_sid, caller=event.caller,
                                      called=event.called, line=line.name, flow=line.flow,
                                      flow_version="", node=""), line, "unknown flow")
        language = _pick_language(flow, line, event)
        session = Session(call_sid=event.call_sid, caller=event.caller, called=event.called,
                          line=line.name, flow=flow.id, flow_version=flow.version,
                          node=flow.start, language=language, customer=event.customer)
        turn = Turn(self.registry, session, flow, line, event.now)
        try:
            first = flow.language_menu if language is None and flow.language_menu else flow.start
            turn.log_input("call", describe(event), "start")
            if line.record_calls:
                turn.announce_recording(first)
            else:
                turn.go(first)
            return turn.finish()
        except Exception as exc:  # noqa: BLE001  (last line of defence: never fail a caller)
            return _emergency(session, line, f"error: {type(exc).__name__}", event.now)

    def step(self, session: Session, event: Event) -> Step:
        """Advance a call by one event."""
        if isinstance(event, CallStarted):
            return self.start(event)
        line = self.registry.line(session.line) or self.registry.default_line
        if session.ended:
            return Step(session=_next(session), actions=(Hangup(),),
                        log=({"node": session.node, "type": "ended", "input": describe(event),
                              "outcome": "already_ended"},))
        flow = self._flow_of(session)
        if flow is None:
            return _emergency(session, line, "unknown flow", getattr(event, "now", None))
        turn = Turn(self.registry, session, flow, line, event.now)
        try:
            turn.handle(event)
            return turn.finish()
        except Exception as exc:  # noqa: BLE001  (last line of defence: never fail a caller)
            return _emergency(session, line, f"error: {type(exc).__name__}", event.now)

    def _flow_of(self, session: Session) -> Flow | None:
        flow = self.registry.get(session.flow, session.flow_version)
        if flow is not None:
            return flow
        try:  # the version is gone (restart without the database copy): use today's
            return self.registry.current(session.flow)
        except CallFlowsError:
            return None


def _pick_language(flow: Flow, line: Line, event: CallStarted) -> str | None:
    """Customer record first, then the line's language, else None (ask)."""
    allowed = [lang for lang in flow.languages if not line.languages or lang in line.languages]
    customer = event.customer
    if customer and customer.language:
        wanted = customer.language.split("-")[0].lower()
        if wanted in allowed:
            return wanted
    if line.language in flow.languages:
        return line.language
    if len(allowed) == 1 or not flow.language_menu:
        return (allowed or list(flow.languages))[0]
    return None


def _next(session: Session, **changes: Any) -> Session:
    return replace(session, seq=session.seq + 1, **changes)


def _emergency(session: Session, line: Line, why: str, now: Any = None) -> Step:
    """Apologise and hand the caller to people: the general queue while the line is
    open, voicemail while it is closed (nobody is queued to an empty room)."""
    lang = session.language or line.language or (line.languages[0] if line.languages else "es")
    text = DEFAULT_MESSAGES["apology"].get(lang) or DEFAULT_MESSAGES["apology"]["en"]
    prompt = Prompt(text=text, language=lang, voice=line.voice(lang), locale=line.locale(lang))
    is_open = not isinstance(now, datetime) or line.hours.is_open(now)
    actions: tuple[Action, ...]
    if is_open:
        actions = (Say(prompt), Enqueue(queue="general", skills={"language": lang,
                                                                 "topic": "general"}))
        outcome = "queued"
    else:
        actions = (Record(prompts=(prompt,), purpose="voicemail"),)
        outcome = "voicemail"
    return Step(session=_next(session, ended=True, outcome=outcome, pending={}),
                actions=actions,
                log=({"node": session.node, "type": "engine", "input": None, "outcome": why},))


# --------------------------------------------------------------------------- one step

MAX_HOPS = 64  # nodes entered in one step; validation forbids loops that never wait


class Turn:
    """The mutable working state of one step; :meth:`finish` freezes it into a Step."""

    def __init__(self, registry: FlowRegistry, session: Session, flow: Flow, line: Line,
                 now: datetime) -> None:
        self.registry, self.session, self.flow, self.line, self.now = (
            registry, session, flow, line, now)
        self.node_id = session.node
        self.language = session.language
        self.customer = session.customer
        self.vars = dict(session.vars)
        self.attempts = session.attempts
        self.pending = dict(session.pending)
        self.stack = list(session.stack)
        self.ended = session.ended
        self.outcome = session.outcome
        self.recording = session.recording
        self.actions: list[Action] = []
        self.log: list[dict[str, Any]] = []
        self.hops = 0
        self.rescued = False

    def finish(self) -> Step:
        session = replace(self.session, flow=self.flow.id, flow_version=self.flow.version,
                          node=self.node_id, language=self.language, customer=self.customer,
                          vars=self.vars, attempts=self.attempts, pending=self.pending,
                          stack=tuple(self.stack), ended=self.ended, outcome=self.outcome,
                          recording=self.recording, seq=self.session.seq + 1)
        if not self.actions:  # every step must tell Twilio something
            self.actions.append(Hangup())
            session = replace(session, ended=True, outcome=session.outcome or "hangup")
        return Step(session=session, actions=tuple(self.actions), log=tuple(self.log))

    def log_input(self, node: str, what: str | None, outcome: str, kind: str = "") -> None:
        self.log.append({"node": node, "type": kind or "call", "input": what,
                         "outcome": outcome})

    def note(self, node: Node, what: str | None, outcome: str) -> None:
        self.log.append({"node": node.id, "type": node.type.value, "input": what,
                         "outcome": outcome})

    # ------------------------------------------------------------------ speaking

    def lang(self) -> str:
        return self.language or self.line.language or self.flow.languages[0]

    def values(self, heard: str | None = None) -> dict[str, str | None]:
        c = self.customer
        vals: dict[str, str | None] = {
            "caller": self.session.caller, "called": self.session.called,
            "language": self.language, "heard": heard,
            "customer.name": c.name if c else None, "customer.account": c.account if c else None,
            "customer.open_follow_up": c.open_follow_up if c else None}
        if c:
            vals.update({f"customer.fields.{k}": v for k, v in c.fields.items()})
        vals.update({f"vars.{k}": v for k, v in self.vars.items()})
        return vals

    def prompt(self, text: Text, lang: str, heard: str | None = None,
               strict: bool = False) -> Prompt | None:
        voice, locale = self.line.voice(lang), self.line.locale(lang)
        if text.play:
            return Prompt(language=lang, voice=voice, audio_url=text.play, locale=locale)
        if text.template is None:
            return None
        parts = text.template.parts
        if len(parts) == 1:  # no placeholders (most prompts): nothing to fill in
            words: str | None = parts[0]
        else:
            words = text.template.render(self.values(heard), missing=None if strict else "")
        if words is None:
            return None
        return Prompt(text=words, language=lang, voice=voice, locale=locale,
                      filled=len(parts) > 1)

    def prompts(self, *texts: Localized | None, lang: str | None = None,
                heard: str | None = None) -> tuple[Prompt, ...]:
        """Each text in the caller's language; every language in turn while unknown."""
        langs = [lang] if lang else [self.language] if self.language else list(
            self.flow.languages)
        out: list[Prompt] = []
        for code in langs:
            for loc in texts:
                text = loc.get(code) if loc else None
                if text is None and loc:
                    text = loc.get(self.flow.languages[0])
                p = self.prompt(text, code, heard) if text else None
                if p and (p.text.strip() or p.audio_url):
                    out.append(p)
        return tuple(out)

    def msg(self, name: str) -> Localized:
        return self.flow.messages.get(name) or {}

    # ------------------------------------------------------------------ moving

    def go(self, target: str | None) -> None:
        """Enter ``target`` and keep going through nodes that do not wait."""
        while True:
            self.hops += 1
            node = self.flow.nodes.get(target or "")
            if node is None or self.hops > MAX_HOPS:
                self.rescue(f"no node '{target}'" if node is None else "too many hops")
                return
            self.node_id, self.attempts, self.pending = node.id, 0, {}
            self._record_around(node)
            target = ENTER[node.type](self, node)
            if target is None:
                return

    def rescue(self, why: str) -> None:
        """The flow cannot go on: apologise and take the human route, or queue."""
        self.log_input(self.node_id, None, why, "engine")
        human = self.flow.nodes.get(self.flow.human or "")
        for p in self.prompts(self.msg("apology")):
            self.actions.append(Say(p))
        if human is not None and not self.rescued:
            self.rescued = True
            self.hops = MAX_HOPS - 8  # a few hops to reach the queue, no more
            self.go(human.id)
            return
        lang = self.lang()
        if self.line.hours.is_open(self.now):
            self.actions.append(Enqueue(queue="general", skills={"language": lang,
                                                                 "topic": "general"}))
            self.outcome = "queued"
        else:
            self.actions.append(Record(prompts=(), purpose="voicemail"))
            self.outcome = "voicemail"
        self.ended = True

    def fail(self, node: Node, why: str, what: str | None) -> None:
        """No input or not understood: reprompt differently, then keypad only, then on."""
        self.attempts += 1
        self.note(node, what, f"{why}:{self.attempts}")
        if self.attempts >= 3:
            target = fail_target(self.flow, node)
            if target is None or target == node.id:
                self.rescue("no failure route")
            else:
                self.go(target)
            return
        extra = node.invalid if why == "invalid" and node.invalid else None
        self.pending = {k: v for k, v in self.pending.items() if k == "stage"}
        PRESENT[node.type](self, node, self.attempts, extra)

    def gather(self, node: Node, prompts: tuple[Prompt, ...], attempt: int,
               num_digits: int | None = None, speech: bool = True,
               hints: tuple[str, ...] = ()) -> None:
        lang = self.lang()
        self.actions.append(Gather(
            prompts=prompts, language=lang, dtmf=True, speech=speech and attempt < 2,
            num_digits=num_digits, timeout_s=node.timeout_s, hints=hints[:50] if speech else (),
            locale=self.line.locale(lang)))

    def retry_text(self, node: Node, attempt: int, base: Localized | None
                   ) -> tuple[Localized | None, ...]:
        if attempt == 1:
            return (node.reprompt,) if node.reprompt else (self.msg("not_understood"), base)
        if attempt >= 2:
            return (node.keypad_prompt,) if node.keypad_prompt else (self.msg("keypad_only"),
                                                                     base)
        return (base,)

    # ------------------------------------------------------------------ call recording

    def announce_recording(self, first: str) -> None:
        """Tell the caller the call is recorded (every flow language while theirs is
        unknown), then come straight back to start recording: the recording begins
        only after the notice has played."""
        for p in self.prompts(self.msg("recording_notice")):
            self.actions.append(Say(p))
        self.node_id, self.pending = first, {"recording": "notice"}
        self.actions.append(Redirect())
        self.log_input("call", None, "recording_notice")

    def _record_around(self, node: Node) -> None:
        """Pause the whole-call recording while a sensitive node (card or identity
        digits) is active; resume once the call moves on."""
        if not self.recording:
            return
        want = RecordingState.PAUSED if node.sensitive else RecordingState.IN_PROGRESS
        if want.value != self.recording:
            self.actions.append(RecordingControl(want))
            self.recording = want.value

    def handle(self, event: Any) -> None:
        if self.pending.get("recording") == "notice":  # the notice has played
            self.actions.append(RecordingControl(RecordingState.START))
            self.recording = RecordingState.IN_PROGRESS.value
            self.log_input("call", describe(event), "recording_started")
            self.go(self.node_id)
            return
        node = self.flow.nodes.get(self.node_id)
        if node is None:
            self.log_input(self.node_id, describe(event), "node gone", "engine")
            self.rescue(f"no node '{self.node_id}'")
            return
        HANDLE[node.type](self, node, event)
