"""The pure flow engine: ``step(session, event) -> Step(session, actions, log)``.

No I/O and no clock: time comes in the events, customers come in ``CallStarted`` or
``LookupResult``. The same session and event always give the same step, so a Twilio
retry replays exactly. Any input -- garbage digits, 10 kB of speech, an event that
does not fit the node, a session pointing at a node that no longer exists -- ends in
a safe step (a reprompt, or the route to a person), never an exception.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime
from typing import Any

from call_flows.actions import (
    Action,
    CallStarted,
    Continue,
    Dial,
    DialDone,
    Digits,
    Enqueue,
    Event,
    Gather,
    Hangup,
    LookupCustomer,
    LookupResult,
    NoInput,
    Prompt,
    QueueLeft,
    Record,
    RecordingDone,
    RequestCallback,
    Say,
    Speech,
)
from call_flows.hours import Line, to_e164
from call_flows.matching import (
    Decision,
    Facts,
    classify,
    holds,
    spoken_digits,
    valid_answer,
    yes_no,
)
from call_flows.model import CallFlowsError, Flow, Localized, Node, NodeType, Option, Text
from call_flows.registry import FlowRegistry
from call_flows.session import Session, Step
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
_LONG_DIGITS = re.compile(r"\d[\d ]{10,}\d")


def _mask(text: str) -> str:
    """Keep long digit runs (card or account numbers said aloud) out of logs."""
    return _LONG_DIGITS.sub(lambda m: "****" + re.sub(r"\D", "", m.group())[-4:], text)


def describe(event: Any, sensitive: bool = False) -> str:
    """A short, log-safe description of an event."""
    if isinstance(event, Digits):
        digits = str(event.digits)[:32]
        return "dtmf:" + ("****" + digits[-4:] if sensitive and len(digits) > 4 else digits)
    if isinstance(event, Speech):
        text = _mask(str(event.text)[:120])
        return f"speech:{'****' if sensitive else text}@{float(event.confidence):.2f}"
    if isinstance(event, LookupResult):
        return "lookup:" + ("found" if event.customer else "none")
    if isinstance(event, RecordingDone):
        return f"recording:{event.duration_s}s"
    if isinstance(event, QueueLeft):
        return f"queue:{event.result}"
    if isinstance(event, DialDone):
        return f"dial:{event.status}"
    if isinstance(event, CallStarted):
        return "call"
    return {NoInput: "no_input", Continue: "continue"}.get(type(event), type(event).__name__)


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
        self.actions: list[Action] = []
        self.log: list[dict[str, Any]] = []
        self.hops = 0
        self.rescued = False

    def finish(self) -> Step:
        session = replace(self.session, flow=self.flow.id, flow_version=self.flow.version,
                          node=self.node_id, language=self.language, customer=self.customer,
                          vars=self.vars, attempts=self.attempts, pending=self.pending,
                          stack=tuple(self.stack), ended=self.ended, outcome=self.outcome,
                          seq=self.session.seq + 1)
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
        words = text.template.render(self.values(heard), missing=None if strict else "")
        if words is None:
            return None
        return Prompt(text=words, language=lang, voice=voice, locale=locale)

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

    def handle(self, event: Any) -> None:
        node = self.flow.nodes.get(self.node_id)
        if node is None:
            self.log_input(self.node_id, describe(event), "node gone", "engine")
            self.rescue(f"no node '{self.node_id}'")
            return
        HANDLE[node.type](self, node, event)


# --------------------------------------------------------------------------- node types
# ENTER[type](turn, node) speaks and returns the next node id, or None to wait.
# PRESENT[type](turn, node, attempt, extra) (re)asks an input node.
# HANDLE[type](turn, node, event) reacts to an event while the call waits at a node.


def _say(t: Turn, *texts: Localized | None) -> None:
    t.actions.extend(Say(p) for p in t.prompts(*texts))


def _enter_say(t: Turn, node: Node) -> str | None:
    _say(t, node.prompt)
    t.note(node, None, "said")
    return node.next


def _enter_answer(t: Turn, node: Node) -> str | None:
    text = (node.prompt or {}).get(t.lang())
    if text and t.language and t.prompt(text, t.lang(), strict=True) is None:
        t.note(node, None, "missing")
        return node.missing or node.next
    _say(t, node.prompt)
    t.outcome = "resolved_ivr"
    t.note(node, None, "answered")
    return node.next


def _enter_branch(t: Turn, node: Node) -> str | None:
    facts = Facts(caller=t.session.caller, language=t.language, customer=t.customer,
                  vars=t.vars, line=t.line, now=t.now)
    for i, case in enumerate(node.cases):
        if holds(case.when, facts):
            t.note(node, None, f"case:{i}")
            return case.next
    t.note(node, None, "else")
    return node.default


def _enter_lookup(t: Turn, node: Node) -> str | None:
    value = node.value.render(t.values()) if node.value else None
    if node.by == "phone" and not value:
        value = t.session.caller
    if not value:
        t.note(node, None, "no_value")
        return node.not_found
    t.pending = {"lookup": value}
    t.actions.append(LookupCustomer(by=node.by, value=value))
    t.note(node, None, "lookup")
    return None


def _enter_goto(t: Turn, node: Node) -> str | None:
    other = t.registry.current(node.flow or "")
    t.stack.append(f"{t.flow.id}@{t.flow.version}:{node.return_to or ''}")
    t.note(node, None, f"goto:{other.id}")
    t.flow = other
    return node.entry or other.start


def _enter_return(t: Turn, node: Node) -> str | None:
    _say(t, node.prompt)
    target: str | None = None
    if t.stack:
        flow_id, _, rest = t.stack.pop().partition("@")
        version, _, target = rest.rpartition(":")
        t.flow = t.registry.get(flow_id, version) or t.registry.current(flow_id)
        t.note(node, None, f"return:{flow_id}")
    else:  # nothing to return to: the sub-flow was started on its own
        t.note(node, None, "return:human")
    target = target or t.flow.human
    if target is None:
        _end(t, "hangup")
    return target


def _end(t: Turn, outcome: str) -> None:
    """Hang up; a plain hang-up keeps the outcome reached before (e.g. resolved_ivr)."""
    t.actions.append(Hangup())
    t.ended = True
    t.outcome = t.outcome if outcome == "hangup" and t.outcome else outcome


def _enter_hangup(t: Turn, node: Node) -> str | None:
    _say(t, node.prompt)
    t.note(node, None, "hangup")
    _end(t, "hangup")
    return None


def _skills(t: Turn, node: Node) -> dict[str, str]:
    skills = {"language": t.lang(), "topic": node.topic or t.vars.get("topic") or "general"}
    skills.update(node.skills)
    return skills


def _priority(t: Turn, node: Node) -> int:
    urgency = t.vars.get("urgency", "0")
    bonus = int(urgency) if urgency.isdigit() and len(urgency) < 3 else 0
    vip = t.flow.vip_priority if t.customer and t.customer.vip else 0
    return node.priority + bonus + vip


def _enter_queue(t: Turn, node: Node) -> str | None:
    if t.flow.closed and t.flow.closed != node.id and not t.line.hours.is_open(t.now):
        t.note(node, None, "closed")
        return t.flow.closed
    _say(t, node.prompt)
    t.actions.append(Enqueue(queue=node.queue, skills=_skills(t, node),
                             priority=_priority(t, node)))
    t.outcome = "queued"
    t.note(node, None, "enqueued")
    return None


def _enter_voicemail(t: Turn, node: Node) -> str | None:
    t.actions.append(Record(prompts=t.prompts(node.prompt), purpose="voicemail",
                            max_length_s=node.max_length_s))
    t.note(node, None, "recording")
    return None


def _enter_transfer(t: Turn, node: Node) -> str | None:
    _say(t, node.prompt)
    t.actions.append(Dial(number=node.number or "", timeout_s=30 if node.timeout_s == 5
                          else node.timeout_s))
    t.note(node, None, "dialling")
    return None


def _enter_input(t: Turn, node: Node) -> str | None:
    if node.type == NodeType.CALLBACK:
        known = to_e164(t.session.caller, t.line.region)
        t.pending = {"stage": "confirm" if known else "number"}
    PRESENT[node.type](t, node, 0, None)
    t.note(node, None, "asked")
    return None


def _present_menu(t: Turn, node: Node, attempt: int, extra: Localized | None) -> None:
    keys = [o.key for o in node.options if o.key]
    same = len({len(k) for k in keys}) == 1 and len(keys) == len(node.options)
    langs = [t.language] if t.language else list(t.flow.languages)
    hints = tuple(p for o in node.options for lang in langs for p in o.phrases.get(lang, ()))
    t.gather(node, t.prompts(*t.retry_text(node, attempt, node.prompt)), attempt,
             num_digits=len(keys[0]) if same and keys else None, hints=hints)


def _present_ask(t: Turn, node: Node, attempt: int, extra: Localized | None) -> None:
    v = node.validator
    fixed = v.max_len if v and v.min_len == v.max_len else None
    texts = (extra,) + t.retry_text(node, attempt, node.prompt)
    t.gather(node, t.prompts(*texts), 0 if node.input == "speech" else attempt,
             num_digits=node.max_digits or fixed)


def _present_confirm(t: Turn, node: Node, attempt: int, extra: Localized | None) -> None:
    t.gather(node, t.prompts(*t.retry_text(node, attempt, node.prompt)), attempt, num_digits=1)


def _present_callback(t: Turn, node: Node, attempt: int, extra: Localized | None) -> None:
    if t.pending.get("stage") == "confirm":
        _present_confirm(t, node, attempt, extra)
        return
    base = node.number_prompt or t.msg("callback_number")
    texts = (extra,) + ((base,) if attempt == 0 else (
        t.msg("not_understood" if attempt == 1 else "keypad_only"), base))
    t.gather(node, t.prompts(*texts), attempt)


def _fits(event: Any) -> tuple[str | None, str | None, float]:
    """(digits, speech text, confidence) of an input event; (None, None, 0) otherwise."""
    if isinstance(event, Digits):
        return str(event.digits).strip(), None, 1.0
    if isinstance(event, Speech) and str(event.text).strip():
        return None, str(event.text), float(event.confidence)
    return None, None, 0.0


def _silent(event: Any) -> bool:
    return isinstance(event, (NoInput, Continue)) or (
        isinstance(event, Speech) and not str(event.text).strip()) or (
        isinstance(event, Digits) and not str(event.digits).strip())


def _handle_menu(t: Turn, node: Node, event: Any) -> None:
    digits, text, conf = _fits(event)
    what = describe(event)
    if "confirm" in t.pending:
        option = next((o for o in node.options if o.name == t.pending["confirm"]), None)
        answer = yes_no(digits, text, t.pending.get("lang") or t.lang())
        if option is not None and answer:
            _choose(t, node, option, what)
        else:
            t.fail(node, "no_input" if _silent(event) else
                   "not_confirmed" if answer is False else "no_match", what)
        return
    if digits is not None:
        option = next((o for o in node.options if o.key and o.key == digits.rstrip("#")), None)
        if option is not None:
            _choose(t, node, option, what)
            return
    elif text is not None:
        langs = [t.language] if t.language else list(t.flow.languages)
        table = {lang: {o.name: o.phrases[lang] for o in node.options if lang in o.phrases}
                 for lang in langs}
        heard = classify(text, conf, table, t.flow.high_confidence, t.flow.low_confidence)
        option = next((o for o in node.options if o.name == heard.intent), None)
        if option is not None and heard.decision != Decision.REJECT:
            confirm = node.confirm_voice == "always" or (
                heard.decision == Decision.CONFIRM and node.confirm_voice == "auto")
            if not confirm:
                _choose(t, node, option, what)
                return
            lang = t.language or option.language or heard.language or t.lang()
            t.pending = {"confirm": option.name, "lang": lang}
            label = option.label.get(lang) or option.name
            t.note(node, what, f"confirm:{option.name}")
            t.gather(node, t.prompts(t.msg("confirm_heard"), lang=lang, heard=label), 0,
                     num_digits=1)
            return
    t.fail(node, "no_input" if _silent(event) else "no_match", what)


def _choose(t: Turn, node: Node, option: Option, what: str) -> None:
    t.note(node, what, f"option:{option.name}")
    t.vars.update(option.set)
    if option.language:
        t.language = option.language
    t.go(option.next)


def _handle_ask(t: Turn, node: Node, event: Any) -> None:
    what = describe(event, node.sensitive)
    if "lookup" in t.pending:
        if isinstance(event, LookupResult):
            if event.customer is not None:
                t.customer = event.customer
                t.vars[node.var or "answer"] = t.pending["lookup"]
                t.note(node, what, "found")
                t.go(node.next)
            else:
                t.fail(node, "invalid", what)
        else:
            t.actions.append(LookupCustomer(by="account", value=t.pending["lookup"]))
            t.note(node, what, "awaiting_lookup")
        return
    digits, text, conf = _fits(event)
    skip = node.skip
    if skip and ((digits is not None and skip.key and digits == skip.key) or (
            text is not None and classify(text, conf, {t.lang(): {"skip": skip.phrases.get(
                t.lang(), ())}}, t.flow.high_confidence, t.flow.low_confidence
            ).decision != Decision.REJECT)):
        _choose(t, node, skip, what)
        return
    value: str | None = None
    if digits is not None:
        value = digits.rstrip("#")
    elif text is not None and (conf <= 0 or conf >= t.flow.low_confidence):
        value = spoken_digits(text, t.lang()) if node.input == "digits" else (
            " ".join(text.split())[:200])
    if value is None:
        t.fail(node, "no_input" if _silent(event) else "no_match", what)
    elif not valid_answer(node.validator, value, node.input == "digits"):
        t.fail(node, "invalid", what)
    elif node.validator and node.validator.exists:
        t.pending = {"lookup": value}
        t.actions.append(LookupCustomer(by="account", value=value))
        t.note(node, what, "lookup")
    else:
        t.vars[node.var or "answer"] = value[-4:] if node.sensitive else value
        t.note(node, what, "answered")
        t.go(node.next)


def _yes_no_of(t: Turn, node: Node, event: Any) -> bool | None:
    digits, text, conf = _fits(event)
    if text is not None and 0 < conf < t.flow.low_confidence:
        return None
    return yes_no(digits, text, t.lang())


def _handle_confirm(t: Turn, node: Node, event: Any) -> None:
    answer = _yes_no_of(t, node, event)
    what = describe(event)
    if answer is None:
        t.fail(node, "no_input" if _silent(event) else "no_match", what)
        return
    t.note(node, what, "yes" if answer else "no")
    t.go(node.yes if answer else node.no)


def _handle_callback(t: Turn, node: Node, event: Any) -> None:
    what = describe(event)
    if t.pending.get("stage") == "confirm":
        answer = _yes_no_of(t, node, event)
        if answer is None:
            t.fail(node, "no_input" if _silent(event) else "no_match", what)
        elif answer:
            _request_callback(t, node, to_e164(t.session.caller, t.line.region) or "", what)
        else:
            t.pending, t.attempts = {"stage": "number"}, 0
            t.note(node, what, "other_number")
            _present_callback(t, node, 0, None)
        return
    digits, text, _ = _fits(event)
    raw = digits.rstrip("#") if digits is not None else (
        spoken_digits(text, t.lang()) if text is not None else None)
    number = to_e164(raw, t.line.region) if raw and raw.isdigit() else None
    if number is None:
        t.fail(node, "no_input" if _silent(event) else "invalid", what)
    else:
        _request_callback(t, node, number, what)


def _request_callback(t: Turn, node: Node, number: str, what: str) -> None:
    topic = node.topic or t.vars.get("topic") or "general"
    t.actions.append(RequestCallback(number=number, skills=_skills(t, node),
                                     priority=_priority(t, node), reason=topic))
    _say(t, node.thanks or t.msg("callback_done"))
    t.note(node, what, "callback")
    _end(t, "callback")


def _handle_voicemail(t: Turn, node: Node, event: Any) -> None:
    if isinstance(event, RecordingDone):
        _say(t, node.thanks or t.msg("voicemail_thanks"))
        t.note(node, describe(event), "recorded")
        _end(t, "voicemail")
    else:
        t.note(node, describe(event), "no_recording")
        _end(t, "hangup")


def _handle_handover(t: Turn, node: Node, event: Any) -> None:
    """Queue and transfer nodes: the person answered, or the hand-over failed."""
    if isinstance(event, QueueLeft) and node.type == NodeType.QUEUE:
        if str(event.result) == "leave" and node.on_leave:
            t.note(node, describe(event), "left_for_callback")
            t.go(node.on_leave)
            return
        done = str(event.result) in {"bridged", "hangup"}
    elif isinstance(event, DialDone) and node.type == NodeType.TRANSFER:
        done = str(event.status) in {"completed", "answered"}
    else:  # nothing else belongs here: hand over again
        t.go(node.id)
        return
    if done:
        t.note(node, describe(event), "done")
        _end(t, "queued" if node.type == NodeType.QUEUE else "transfer")
        return
    t.note(node, describe(event), "failed")
    if node.on_fail:
        t.go(node.on_fail)
    else:
        _say(t, t.msg("apology"))
        _end(t, "hangup")


def _handle_lookup(t: Turn, node: Node, event: Any) -> None:
    if isinstance(event, LookupResult):
        if event.customer is not None:
            t.customer = event.customer
        t.note(node, describe(event), "found" if event.customer else "not_found")
        t.go(node.found if event.customer else node.not_found)
    else:
        t.go(node.id)


def _handle_reenter(t: Turn, node: Node, event: Any) -> None:
    t.log_input(node.id, describe(event), "re-entered", node.type.value)
    t.go(node.id)


ENTER = {NodeType.SAY: _enter_say, NodeType.ANSWER: _enter_answer,
         NodeType.BRANCH: _enter_branch, NodeType.LOOKUP: _enter_lookup,
         NodeType.GOTO: _enter_goto, NodeType.RETURN: _enter_return,
         NodeType.HANGUP: _enter_hangup, NodeType.QUEUE: _enter_queue,
         NodeType.VOICEMAIL: _enter_voicemail, NodeType.TRANSFER: _enter_transfer,
         NodeType.MENU: _enter_input, NodeType.ASK: _enter_input,
         NodeType.CONFIRM: _enter_input, NodeType.CALLBACK: _enter_input}
PRESENT = {NodeType.MENU: _present_menu, NodeType.ASK: _present_ask,
           NodeType.CONFIRM: _present_confirm, NodeType.CALLBACK: _present_callback}
HANDLE = {NodeType.MENU: _handle_menu, NodeType.ASK: _handle_ask,
          NodeType.CONFIRM: _handle_confirm, NodeType.CALLBACK: _handle_callback,
          NodeType.VOICEMAIL: _handle_voicemail, NodeType.QUEUE: _handle_handover,
          NodeType.TRANSFER: _handle_handover, NodeType.LOOKUP: _handle_lookup,
          NodeType.SAY: _handle_reenter, NodeType.ANSWER: _handle_reenter,
          NodeType.BRANCH: _handle_reenter, NodeType.GOTO: _handle_reenter,
          NodeType.RETURN: _handle_reenter, NodeType.HANGUP: _handle_reenter}
