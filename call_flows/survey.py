"""The post-call survey node: consent, CSAT (1-5), NPS (0-10), an optional comment.

Each question is asked again once (after the node's ``reprompt``) when unanswered
or invalid, then the caller hears the goodbye: a survey never loops and always ends
the call. Scores come by keypad (NPS takes two keys, or one and ``#``, so 10 can be
entered) or by voice through the same number reader as ``ask`` nodes. Each answer is
logged as an event of kind ``survey`` (``{"csat": 4}``), which the KPI report reads;
the comment is a ``<Record>`` (purpose ``survey``) that the after-call jobs fetch,
transcribe and redact like a voicemail.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from call_flows.actions import Record, RecordingDone
from call_flows.matching import spoken_digits
from call_flows.model import Localized, Node
from call_flows.turn import describe, end_call, fits, say_texts, silent, yes_no_of

if TYPE_CHECKING:
    from call_flows.engine import Turn

__all__ = ["enter_survey", "handle_survey", "present_survey"]


_SURVEY_RANGES = {"csat": (1, 5), "nps": (0, 10)}


def _survey_order(node: Node) -> list[str]:
    return ["consent"] + [s for s in ("csat", "nps", "comment") if getattr(node, s)]


def _stage(t: Turn, node: Node) -> str:
    """The question being asked; a session that names no such stage starts over."""
    stage = t.pending.get("stage", "consent")
    return stage if stage in _survey_order(node) else "consent"


def enter_survey(t: Turn, node: Node) -> str | None:
    t.pending = {"stage": "consent"}
    present_survey(t, node, 0, None)
    t.note(node, None, "asked")
    return None


def present_survey(t: Turn, node: Node, attempt: int, extra: Localized | None) -> None:
    stage = _stage(t, node)
    texts = (node.reprompt or t.msg("not_understood"),) if attempt else ()
    if stage == "comment":
        t.actions.append(Record(prompts=t.prompts(*texts, node.comment), purpose="survey",
                                max_length_s=node.max_length_s, timeout_s=node.timeout_s))
        return
    question = {"consent": node.prompt, "csat": node.csat, "nps": node.nps}[stage]
    # NPS needs "10": two keys (or one and #); CSAT and yes/no take a single key.
    t.gather(node, t.prompts(*texts, question), 0, num_digits=2 if stage == "nps" else 1)


def _score(t: Turn, event: Any, stage: str) -> int | None:
    digits, text, conf = fits(event)
    raw: str | None = None
    if digits is not None:
        raw = digits.rstrip("#")
    elif text is not None and (conf <= 0 or conf >= t.flow.low_confidence):
        raw = spoken_digits(text, t.lang())
    if not raw or not raw.isdigit() or len(raw) > 2:
        return None
    low, high = _SURVEY_RANGES[stage]
    return int(raw) if low <= int(raw) <= high else None


def handle_survey(t: Turn, node: Node, event: Any) -> None:
    stage = _stage(t, node)
    what = describe(event)
    if stage == "comment":
        got = isinstance(event, RecordingDone)
        t.note(node, what, "comment" if got else "no_comment")
        _survey_end(t, node, node.thanks)
        return
    if stage == "consent":
        answer = yes_no_of(t, node, event)
        if answer is None:
            _survey_retry(t, node, event, stage, what)
        elif not answer:
            t.note(node, what, "declined")
            _survey_end(t, node, node.goodbye or node.thanks)
        else:
            t.note(node, what, "consent")
            _survey_next(t, node, stage)
        return
    score = _score(t, event, stage)
    if score is None:
        _survey_retry(t, node, event, stage, what)
        return
    # The answer itself is an event of kind "survey": what the KPI report reads.
    t.log.append({"node": node.id, "type": node.type.value, "input": what,
                  "outcome": f"{stage}:{score}", "kind": "survey", stage: score})
    _survey_next(t, node, stage)


def _survey_retry(t: Turn, node: Node, event: Any, stage: str, what: str) -> None:
    t.attempts += 1
    why = "no_input" if silent(event) else "invalid"
    t.note(node, what, f"{stage}_{why}:{t.attempts}")
    if t.attempts >= 2:
        _survey_end(t, node, node.goodbye or node.thanks)
    else:
        present_survey(t, node, t.attempts, None)


def _survey_next(t: Turn, node: Node, done: str) -> None:
    order = _survey_order(node)
    position = order.index(done) + 1
    if position >= len(order):
        _survey_end(t, node, node.thanks)
        return
    t.pending, t.attempts = {"stage": order[position]}, 0
    present_survey(t, node, 0, None)


def _survey_end(t: Turn, node: Node, text: Localized | None) -> None:
    say_texts(t, text)
    end_call(t, "hangup")


