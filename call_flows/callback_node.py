"""The callback node: which number we will call back, confirmed by the caller.

Where the caller's own number (From) is a valid phone number it is offered first
(the node's ``prompt``: "we'll call you on the number ending 1234, press 1..."). Else,
or when they want another one, they key it in; a number that is not a valid phone
number for the line's region is refused like any invalid answer, and a valid one is
read back digit by digit in the caller's language (message ``callback_readback``:
"Le llamaremos al 6 1 2, 3 4, 5 6, 7 8. Pulse 1 para confirmar, 2 para cambiarlo")
before the callback is requested. Numbers are checked and formatted with phonenumbers.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import phonenumbers

from call_flows.actions import RequestCallback
from call_flows.matching import spoken_digits
from call_flows.model import Localized, Node
from call_flows.turn import describe, fits, silent
from call_flows.turn import end_call as _end
from call_flows.turn import say_texts as _say
from call_flows.turn import yes_no_of as _yes_no_of

if TYPE_CHECKING:
    from call_flows.engine import Turn

__all__ = ["enter_stage", "handle_callback", "present_callback", "spoken_number",
           "valid_number"]

READBACK = "callback_readback"
_STAGE_READBACK = "readback:"  # + the E.164 number being read back (kept across retries)


def valid_number(raw: str | None, region: str | None) -> str | None:
    """The number in E.164 when it is a valid phone number (not merely one of a
    possible length) for ``region``, else None."""
    if not raw:
        return None
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def spoken_number(e164: str, region: str | None) -> str:
    """Digits one by one, in the groups people write them: "6 1 2, 3 4, 5 6, 7 8" for
    a number of the line's own country, "0 0 4 4, 2 0, ..." (the international prefix
    dialled from Spain and most of the world) for one from abroad."""
    parsed = phonenumbers.parse(e164, None)
    home = region is not None and phonenumbers.region_code_for_number(parsed) == region.upper()
    if home:
        text = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
    else:
        text = "00" + phonenumbers.format_number(
            parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL).lstrip("+")
    return ", ".join(" ".join(group) for group in re.findall(r"\d+", text))


def enter_stage(t: Turn) -> dict[str, str]:
    """The node's first stage: offer the caller's own number, or ask for one."""
    own = valid_number(t.session.caller, t.line.region)
    return {"stage": "confirm" if own else "number"}


def present_callback(t: Turn, node: Node, attempt: int, extra: Localized | None) -> None:
    stage = t.pending.get("stage", "")
    if stage == "confirm":
        t.gather(node, t.prompts(*t.retry_text(node, attempt, node.prompt)), attempt,
                 num_digits=1)
        return
    if stage.startswith(_STAGE_READBACK):
        heard = spoken_number(stage[len(_STAGE_READBACK):], t.line.region)
        said = (t.msg(READBACK),) if attempt == 0 else (t.msg("not_understood"), t.msg(READBACK))
        t.gather(node, t.prompts(*said, heard=heard), attempt, num_digits=1)
        return
    base = node.number_prompt or t.msg("callback_number")
    texts: tuple[Localized | None, ...] = (extra,) + ((base,) if attempt == 0 else (
        t.msg("not_understood" if attempt == 1 else "keypad_only"), base))
    t.gather(node, t.prompts(*texts), attempt)


def handle_callback(t: Turn, node: Node, event: Any) -> None:
    what = describe(event)
    stage = t.pending.get("stage", "")
    if stage == "confirm" or stage.startswith(_STAGE_READBACK):
        answer = _yes_no_of(t, node, event)
        if answer is None:
            t.fail(node, "no_input" if silent(event) else "no_match", what)
        elif answer:
            number = (stage[len(_STAGE_READBACK):] if stage != "confirm"
                      else valid_number(t.session.caller, t.line.region))
            _request(t, node, number or "", what)
        else:
            t.pending, t.attempts = {"stage": "number"}, 0
            t.note(node, what, "other_number")
            present_callback(t, node, 0, None)
        return
    digits, text, _ = fits(event)
    raw = digits.rstrip("#") if digits is not None else (
        spoken_digits(text, t.lang()) if text is not None else None)
    number = valid_number(raw, t.line.region) if raw and raw.isdigit() else None
    if number is None:
        t.fail(node, "no_input" if silent(event) else "invalid", what)
    elif t.lang() not in t.msg(READBACK):
        _request(t, node, number, what)  # a language with no read-back wording yet
    else:
        t.pending, t.attempts = {"stage": _STAGE_READBACK + number}, 0
        t.note(node, what, "read_back")
        present_callback(t, node, 0, None)


def _request(t: Turn, node: Node, number: str, what: str) -> None:
    # nodes imports this module: its helpers (shared with the queue node) come late
    from call_flows.nodes import _priority, _skills

    topic = node.topic or t.vars.get("topic") or "general"
    t.actions.append(RequestCallback(number=number, skills=_skills(t, node),
                                     priority=_priority(t, node), reason=topic))
    _say(t, node.thanks or t.msg("callback_done"))
    t.note(node, what, "callback")
    _end(t, "callback")
