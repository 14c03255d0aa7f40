"""What happened on a call, from its recorded events: the facts and the summary.

Pure and deterministic (no I/O, no cloud): the same events always give the same
summary. :func:`analyse` reads the ordered events (see ``recordings.live_calls``)
and the last session into :class:`CallFacts` (outcome, path, intents, queue wait...);
:func:`build_summary` turns those facts, the transcripts and the open follow-ups
into the structured summary agents correct and approve. Nothing is guessed: a fact
the events do not hold is ``None`` and the summary says it is unknown.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

SCHEMA = 1
FINAL_FAILED = {"busy", "failed", "no-answer", "canceled"}
# Menu options that steer the call rather than say why the caller called.
NAVIGATION = {"done", "more", "repeat", "back", "yes", "no", "skip", "confirm", "cancel",
              "menu", "main", "other", "continue", "exit"}
ROUTING = {"agent", "voicemail", "callback", "operator", "human"}
LANGUAGES = {"es", "ca", "en", "ko", "fr", "de", "it", "pt", "eu", "gl"}


class CallOutcome(str, Enum):
    RESOLVED_IVR = "resolved_ivr"  # a self-service answer was given, no person needed
    SERVED = "served"  # an agent took the call from the queue
    ABANDONED = "abandoned"  # the caller hung up in the IVR or while waiting
    VOICEMAIL = "voicemail"  # a message was recorded
    CALLBACK = "callback"  # a call back was requested
    TRANSFER = "transfer"  # sent to an outside number
    IVR_ENDED = "ivr_ended"  # the flow itself ended the call without an answer
    UNANSWERED = "unanswered"  # busy, failed, no answer (outbound calls)


@dataclass(frozen=True)
class CallerInput:
    t: float | None
    node: str
    kind: str  # "dtmf" | "speech" | "recording" | "no_input" | ...
    value: str | None
    confidence: float | None
    result: str  # the engine's outcome: "option:billing", "no_match:1"...


@dataclass(frozen=True)
class CallFacts:
    call_sid: str
    started_at: float | None
    ended_at: float | None
    duration_s: float | None
    line: str | None
    flow: str | None
    flow_version: str | None
    language: str | None
    customer_id: int | None
    from_number: str | None
    to_number: str | None
    outcome: CallOutcome
    path: tuple[str, ...]
    last_node: str | None
    inputs: tuple[CallerInput, ...]
    intents: tuple[str, ...]
    reason: str | None
    answers: tuple[str, ...]
    queue: str | None
    queue_result: str | None
    queue_wait_s: float | None
    agent_id: str | None
    handle_time_s: float | None
    callback: bool
    voicemail_s: float | None
    recordings: tuple[Mapping[str, Any], ...]
    survey: Mapping[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["outcome"] = self.outcome.value
        return data


def _num(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _split_input(raw: Any) -> tuple[str, str | None, float | None]:
    text = str(raw or "")
    kind, _, rest = text.partition(":")
    if kind == "speech":
        said, _, conf = rest.rpartition("@")
        return "speech", said or rest, _num(conf)
    if kind in ("dtmf", "recording", "queue", "dial", "lookup"):
        return kind, rest, None
    return text or "none", None, None


def _intent(result: str, node_type: str) -> str | None:
    if node_type not in ("menu", "confirm", "ask") or not result.startswith("option:"):
        return None
    option = result.split(":", 1)[1]
    if option in NAVIGATION or option in LANGUAGES:
        return None
    return option


def analyse(call_sid: str, events: Sequence[Mapping[str, Any]],
            session: Mapping[str, Any] | None) -> CallFacts:
    """The call's facts from its ordered events and last session."""
    session = session or {}
    started = next((e for e in events if e.get("kind") == "call_started"), {})
    statuses = [e for e in events if e.get("kind") == "status"]
    path: list[str] = []
    inputs: list[CallerInput] = []
    intents: list[str] = []
    answers: list[str] = []
    queue = queue_result = agent = None
    enqueued_t = left_t = wait = None
    callback = False
    voicemail_s: float | None = None
    transfer = False
    recordings: list[Mapping[str, Any]] = []
    survey: dict[str, int] = {}
    flow_hangup = False
    for event in events:
        kind = event.get("kind")
        if kind == "enqueued":
            queue, enqueued_t = event.get("queue") or queue, event.get("t")
        elif kind == "queue_left":
            queue_result = str(event.get("result") or queue_result)
            wait = _num(event.get("wait_s"))
            left_t = event.get("t")
        elif kind == "callback_requested":
            callback = True
        elif kind in ("agent_assigned", "agent_answered"):
            agent = str(event.get("agent_id") or agent)
        elif kind == "recording":
            recordings.append({k: event.get(k) for k in
                               ("recording_sid", "url", "purpose", "duration_s")})
        elif kind == "survey":
            for key, low, high in (("csat", 1, 5), ("nps", 0, 10)):
                score = event.get(key)
                if isinstance(score, int) and low <= score <= high:
                    survey[key] = score
        node, node_type = event.get("node"), str(event.get("type") or "")
        if not node or node_type in ("call", "engine"):
            continue
        if not path or path[-1] != node:
            path.append(str(node))
        result = str(event.get("outcome") or "")
        if event.get("input") is not None:
            what, value, conf = _split_input(event.get("input"))
            if what in ("dtmf", "speech", "recording", "no_input"):
                inputs.append(CallerInput(event.get("t"), str(node), what, value, conf, result))
            if what == "queue":
                queue_result, left_t = value, event.get("t") if left_t is None else left_t
            if what == "recording" and result == "recorded":
                voicemail_s = _num((value or "").rstrip("s"))
            if what == "dial":
                transfer = True
        intent = _intent(result, node_type)
        if intent and intent not in intents:
            intents.append(intent)
        if node_type == "answer" and result == "answered":
            answers.append(str(node))
        if node_type == "transfer":
            transfer = True
        if node_type == "hangup" and result == "hangup":
            flow_hangup = True
    if wait is None and enqueued_t is not None and left_t is not None:
        wait = max(0.0, float(left_t) - float(enqueued_t))
    duration = next((_num(s.get("duration")) for s in reversed(statuses)
                     if _num(s.get("duration")) is not None), None)
    started_at = _num(started.get("at"))
    ended_at = (started_at + duration if started_at is not None and duration is not None
                else next((_num(s.get("at")) for s in reversed(statuses)), None))
    final_status = next((str(s.get("status")) for s in reversed(statuses)), None)
    handle = None
    if queue_result == "bridged" and duration is not None:
        # Talk time: from the answer (queue entry + wait) to the end of the call.
        answered_t = (float(enqueued_t) + wait if enqueued_t is not None and wait is not None
                      else left_t)
        handle = max(0.0, duration - float(answered_t)) if answered_t is not None else None
    topic = (session.get("vars") or {}).get("topic")
    routing = [i for i in intents if i in ROUTING]
    reasons = [i for i in intents if i not in ROUTING]
    reason = reasons[0] if reasons else (topic if topic and topic != "general" else None)
    reason = reason or (routing[0] if routing else None)
    if final_status in FINAL_FAILED and not path:
        outcome = CallOutcome.UNANSWERED
    elif callback:
        outcome = CallOutcome.CALLBACK
    elif queue_result == "bridged":
        outcome = CallOutcome.SERVED
    elif voicemail_s:
        outcome = CallOutcome.VOICEMAIL
    elif queue is not None:
        outcome = CallOutcome.ABANDONED
    elif transfer or session.get("outcome") == "transfer":
        outcome = CallOutcome.TRANSFER
    elif session.get("outcome") == "resolved_ivr" or answers:
        outcome = CallOutcome.RESOLVED_IVR
    elif flow_hangup:
        outcome = CallOutcome.IVR_ENDED
    else:
        outcome = CallOutcome.ABANDONED
    customer = session.get("customer") or {}
    customer_id = customer.get("id")
    return CallFacts(
        call_sid=call_sid, started_at=started_at, ended_at=ended_at, duration_s=duration,
        line=session.get("line") or None, flow=session.get("flow") or None,
        flow_version=session.get("flow_version") or None, language=session.get("language"),
        customer_id=int(str(customer_id)) if str(customer_id or "").isdigit() else None,
        from_number=started.get("from") or session.get("caller") or None,
        to_number=started.get("to") or session.get("called") or None,
        outcome=outcome, path=tuple(path), last_node=path[-1] if path else None,
        inputs=tuple(inputs), intents=tuple(intents), reason=reason, answers=tuple(answers),
        queue=queue, queue_result=queue_result, queue_wait_s=wait, agent_id=agent,
        handle_time_s=handle, callback=callback, voicemail_s=voicemail_s,
        recordings=tuple(recordings), survey=survey)


# ---------------------------------------------------------------------- summary

_STOP_WORDS = """a an and are as at be but by for from have i in is it me my no not of on
or our so that the this to was we with you your yes hello hi please thanks thank want would like
need el la los las un una unos unas y o de del al en que es por para con si sí mi le lo se su
sus yo hola gracias pues muy pero como cuando este esta eso esto hay quiero quería querría
necesito els les per amb em et ho hi jo bon dia vull voldria necessito"""
_STOP = frozenset(_STOP_WORDS.split())
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
KEY_PHRASES = 5


def key_phrases(words: Sequence[Sequence[Any]], limit: int = KEY_PHRASES) -> list[dict[str, Any]]:
    """The transcript's most repeated content words, each linked to where it is
    first said: ``{"text", "start", "end", "word"}`` (``word`` indexes ``words``)."""
    first: dict[str, int] = {}
    counts: Counter[str] = Counter()
    for index, item in enumerate(words):
        token = str(item[0]).lower() if item else ""
        if not _WORD.fullmatch(token) or token in _STOP or len(token) < (2 if any(
                "\uac00" <= ch <= "\ud7a3" for ch in token) else 4):
            continue
        counts[token] += 1
        first.setdefault(token, index)
    ranked = sorted(counts, key=lambda w: (-counts[w], first[w]))[:limit]
    out = []
    for token in sorted(ranked, key=lambda w: first[w]):
        item = words[first[token]]
        out.append({"text": token, "start": _num(item[1]) if len(item) > 1 else None,
                    "end": _num(item[2]) if len(item) > 2 else None, "word": first[token]})
    return out


def _said(item: CallerInput) -> dict[str, Any]:
    entry: dict[str, Any] = {"t": item.t, "node": item.node}
    if item.kind == "speech":
        entry.update(said=item.value, confidence=item.confidence)
    elif item.kind == "dtmf":
        entry["pressed"] = item.value
    elif item.kind == "recording":
        entry["recorded_s"] = _num((item.value or "").rstrip("s"))
    else:
        entry["silent"] = True
    entry["understood_as"] = item.result
    return entry


def build_summary(facts: CallFacts, transcripts: Iterable[Mapping[str, Any]] = (),
                  follow_ups: Iterable[Mapping[str, Any]] = (),
                  pending: Iterable[str] = ()) -> dict[str, Any]:
    """The structured summary (JSON-ready) of one call."""
    follow_up_reasons: list[str] = []
    if facts.callback:
        follow_up_reasons.append("callback requested")
    if facts.outcome is CallOutcome.VOICEMAIL:
        follow_up_reasons.append(f"voicemail left ({facts.voicemail_s:g} s)"
                                 if facts.voicemail_s else "voicemail left")
    if facts.outcome is CallOutcome.ABANDONED and facts.queue:
        follow_up_reasons.append("hung up while waiting for an agent")
    open_items = [{"id": f.get("id"), "description": f.get("description"),
                   "due_at": f.get("due_at"), "owner": f.get("owner")} for f in follow_ups]
    if open_items:
        follow_up_reasons.append(f"{len(open_items)} open follow-up(s) on the customer")
    transcript_items = []
    for t in transcripts:
        words = list(t.get("words") or [])
        transcript_items.append({
            "id": t.get("id"), "recording_id": t.get("recording_id"),
            "excerpt": str(t.get("text") or "")[:280], "key_phrases": key_phrases(words)})
    body: dict[str, Any] = {
        "schema": SCHEMA,
        "call_sid": facts.call_sid,
        "language": facts.language,
        "line": facts.line,
        "flow": facts.flow,
        "customer_id": facts.customer_id,
        "reason": {"summary": facts.reason, "intents": list(facts.intents)},
        "caller_said": [_said(i) for i in facts.inputs],
        "self_service_answers": list(facts.answers),
        "ivr_path": list(facts.path),
        "queue": ({"name": facts.queue, "result": facts.queue_result,
                   "wait_s": facts.queue_wait_s} if facts.queue else None),
        "agent": facts.agent_id,
        "handle_time_s": facts.handle_time_s,
        "duration_s": facts.duration_s,
        "resolution": facts.outcome.value,
        "follow_up": {"needed": bool(follow_up_reasons), "reasons": follow_up_reasons,
                      "open": open_items},
        "transcripts": transcript_items,
        "survey": dict(facts.survey) or None,
        "pending": sorted(set(pending)),
    }
    body["text"] = _sentence(facts, follow_up_reasons)
    return body


_RESOLUTION = {
    CallOutcome.RESOLVED_IVR: "answered by the IVR",
    CallOutcome.SERVED: "served by an agent",
    CallOutcome.ABANDONED: "caller hung up before being helped",
    CallOutcome.VOICEMAIL: "left a voicemail",
    CallOutcome.CALLBACK: "asked to be called back",
    CallOutcome.TRANSFER: "transferred to an outside number",
    CallOutcome.IVR_ENDED: "the IVR ended the call without an answer",
    CallOutcome.UNANSWERED: "the call was not answered",
}


def _sentence(facts: CallFacts, follow_up: Sequence[str]) -> str:
    parts = [f"Reason: {facts.reason}." if facts.reason else "Reason not stated."]
    if facts.answers:
        parts.append("Self-service: " + ", ".join(facts.answers) + ".")
    if facts.queue:
        wait = (f", waited {facts.queue_wait_s:.0f} s" if facts.queue_wait_s is not None
                else ", wait unknown")
        parts.append(f"Queue {facts.queue}{wait}.")
    if facts.agent_id:
        parts.append(f"Agent {facts.agent_id}.")
    parts.append(f"Outcome: {_RESOLUTION[facts.outcome]}.")
    parts.append("Follow-up: " + "; ".join(follow_up) + "." if follow_up
                 else "No follow-up needed.")
    if facts.language:
        parts.append(f"Language: {facts.language}.")
    return " ".join(parts)
