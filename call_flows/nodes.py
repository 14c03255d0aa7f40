"""What each kind of node does; :class:`~call_flows.engine.Turn` moves between them.

``ENTER[type](turn, node)`` speaks and returns the next node id, or None to wait;
``PRESENT[type](turn, node, attempt, extra)`` (re)asks an input node;
``HANDLE[type](turn, node, event)`` reacts to an event while the call waits at a node.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from call_flows.actions import (
    Dial,
    DialDone,
    Enqueue,
    LookupCustomer,
    LookupResult,
    Pause,
    QueueLeft,
    Record,
    RecordingDone,
)
from call_flows.callback_node import enter_stage, handle_callback, present_callback
from call_flows.matching import (
    Decision,
    Facts,
    classify,
    holds,
    spoken_digits,
    valid_answer,
    yes_no,
)
from call_flows.model import Localized, Node, NodeType, Option
from call_flows.survey import enter_survey, handle_survey, present_survey
from call_flows.turn import describe, fits, silent
from call_flows.turn import end_call as _end
from call_flows.turn import say_texts as _say
from call_flows.turn import yes_no_of as _yes_no_of

if TYPE_CHECKING:  # Turn calls into this module, so only the type checker imports it back
    from call_flows.engine import Turn

__all__ = ["ENTER", "HANDLE", "PRESENT"]


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
        t.pending = enter_stage(t)
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
    # Card or identity digits are keyed, never spoken: a recogniser (Twilio's or ours)
    # would hear them, and the recording path would record them.
    t.gather(node, t.prompts(*texts), 0 if node.input == "speech" else attempt,
             num_digits=node.max_digits or fixed, speech=not node.sensitive)


def _present_confirm(t: Turn, node: Node, attempt: int, extra: Localized | None) -> None:
    t.gather(node, t.prompts(*t.retry_text(node, attempt, node.prompt)), attempt, num_digits=1)


def _handle_menu(t: Turn, node: Node, event: Any) -> None:
    digits, text, conf = fits(event)
    what = describe(event)
    if "confirm" in t.pending:
        option = next((o for o in node.options if o.name == t.pending["confirm"]), None)
        answer = yes_no(digits, text, t.pending.get("lang") or t.lang())
        if option is not None and answer:
            _choose(t, node, option, what)
        else:
            t.fail(node, "no_input" if silent(event) else
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
    t.fail(node, "no_input" if silent(event) else "no_match", what)


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
    digits, text, conf = fits(event)
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
        t.fail(node, "no_input" if silent(event) else "no_match", what)
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


def _handle_confirm(t: Turn, node: Node, event: Any) -> None:
    answer = _yes_no_of(t, node, event)
    what = describe(event)
    if answer is None:
        t.fail(node, "no_input" if silent(event) else "no_match", what)
        return
    t.note(node, what, "yes" if answer else "no")
    t.go(node.yes if answer else node.no)


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
        if str(event.result) == "redirected":
            # Taken out of the queue by a REST update (put through to the agent): Twilio
            # ignores this answer; the call stays here until the agent's <Dial> ends.
            t.note(node, describe(event), "redirected")
            t.actions.append(Pause(1))
            return
        if str(event.result) == "leave" and node.on_leave:
            t.note(node, describe(event), "left_for_callback")
            t.go(node.on_leave)
            return
        done = str(event.result) in {"bridged", "hangup"}
    elif isinstance(event, DialDone):  # a transfer, or a queued caller put through to an agent
        done = str(event.status) in {"completed", "answered"}
    else:  # nothing else belongs here: hand over again
        t.go(node.id)
        return
    gone = isinstance(event, QueueLeft) and str(event.result) == "hangup"
    if done and node.after and not gone:  # the person hung up first: the caller is still here
        t.outcome = "queued" if node.type == NodeType.QUEUE else "transfer"
        t.note(node, describe(event), "done")
        t.go(node.after)
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
         NodeType.CONFIRM: _enter_input, NodeType.CALLBACK: _enter_input,
         NodeType.SURVEY: enter_survey}
PRESENT = {NodeType.MENU: _present_menu, NodeType.ASK: _present_ask,
           NodeType.CONFIRM: _present_confirm, NodeType.CALLBACK: present_callback,
           NodeType.SURVEY: present_survey}
HANDLE = {NodeType.MENU: _handle_menu, NodeType.ASK: _handle_ask,
          NodeType.CONFIRM: _handle_confirm, NodeType.CALLBACK: handle_callback,
          NodeType.VOICEMAIL: _handle_voicemail, NodeType.QUEUE: _handle_handover,
          NodeType.TRANSFER: _handle_handover, NodeType.LOOKUP: _handle_lookup,
          NodeType.SAY: _handle_reenter, NodeType.ANSWER: _handle_reenter,
          NodeType.BRANCH: _handle_reenter, NodeType.GOTO: _handle_reenter,
          NodeType.RETURN: _handle_reenter, NodeType.HANGUP: _handle_reenter,
          NodeType.SURVEY: handle_survey}
