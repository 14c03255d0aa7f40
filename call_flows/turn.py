"""The input of one turn: what an event says, and how the call log shows it.

The engine's :class:`~call_flows.engine.Turn` and the node handlers in
:mod:`call_flows.nodes` both read events through these helpers. This module imports
neither of them, so the imports run one way: engine -> nodes -> turn.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from call_flows.actions import (
    CallStarted,
    Continue,
    DialDone,
    Digits,
    Hangup,
    LookupResult,
    NoInput,
    QueueLeft,
    RecordingDone,
    Say,
    Speech,
)
from call_flows.matching import yes_no
from call_flows.model import Localized, Node

if TYPE_CHECKING:  # the engine imports this module; only the type checker imports it back
    from call_flows.engine import Turn

__all__ = ["describe", "end_call", "fits", "say_texts", "silent", "yes_no_of"]

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


def fits(event: Any) -> tuple[str | None, str | None, float]:
    """(digits, speech text, confidence) of an input event; (None, None, 0) otherwise."""
    if isinstance(event, Digits):
        return str(event.digits).strip(), None, 1.0
    if isinstance(event, Speech) and str(event.text).strip():
        return None, str(event.text), float(event.confidence)
    return None, None, 0.0


def silent(event: Any) -> bool:
    """Whether the caller gave nothing: a timeout, empty speech or no keys."""
    return isinstance(event, (NoInput, Continue)) or (
        isinstance(event, Speech) and not str(event.text).strip()) or (
        isinstance(event, Digits) and not str(event.digits).strip())


# --------------------------------------------------------------------------- shared by node handlers


def say_texts(t: Turn, *texts: Localized | None) -> None:
    t.actions.extend(Say(p) for p in t.prompts(*texts))


def end_call(t: Turn, outcome: str) -> None:
    """Hang up; a plain hang-up keeps the outcome reached before (e.g. resolved_ivr)."""
    t.actions.append(Hangup())
    t.ended = True
    t.outcome = t.outcome if outcome == "hangup" and t.outcome else outcome


def yes_no_of(t: Turn, node: Node, event: Any) -> bool | None:
    """Yes/no by key or voice; None when unclear or heard with low confidence."""
    digits, text, conf = fits(event)
    if text is not None and 0 < conf < t.flow.low_confidence:
        return None
    return yes_no(digits, text, t.lang())
