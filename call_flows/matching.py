"""Matching what the caller did, and what we know of the call, against a node.

Voice input goes through the shared intent matcher (:mod:`speech.intents`); the
recogniser's confidence and the text-match score combine into one of three
decisions: act, confirm first ("You said billing, is that right?"), or treat as
not understood. Branch conditions and ``ask`` validators are matched here too, so
the engine only decides where to go.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from call_flows.actions import CustomerInfo
from call_flows.hours import Line
from call_flows.model import Condition, Validator
from speech.intents import match_intent, parse_yes_no
from speech.numbers import parse_digits

#: Longer speech results are cut before matching: nobody picks a menu option in a
#: paragraph, and a 10 kB result must not cost more than a short one.
MAX_SPEECH_CHARS = 200


class Decision(str, Enum):
    ACT = "act"
    CONFIRM = "confirm"
    REJECT = "reject"


@dataclass(frozen=True)
class Heard:
    """The option a speech result points to, and what to do about it."""

    intent: str | None
    decision: Decision
    score: float  # combined confidence 0..1
    language: str | None = None


def _confidence(value: float) -> float | None:
    """The recogniser's confidence, or None when it gave none (0, negative, NaN)."""
    if not isinstance(value, (int, float)) or math.isnan(value) or value <= 0:
        return None
    return min(float(value), 1.0)


def classify(text: str, confidence: float,
             options_by_language: Mapping[str, Mapping[str, Sequence[str]]],
             high: float, low: float) -> Heard:
    """Match ``text`` against each language's options and keep the best.

    Combined score = recogniser confidence x text-match score. ``>= high`` acts,
    ``>= low`` confirms, below is not understood. A result without a confidence
    (Twilio sends 0 for some models) can never act straight away: it is confirmed
    when the words match well enough, else rejected.
    """
    text = text[:MAX_SPEECH_CHARS] if isinstance(text, str) else ""
    best: Heard = Heard(None, Decision.REJECT, 0.0)
    asr = _confidence(confidence)
    for language, options in options_by_language.items():
        if not options:
            continue
        found = match_intent(text, options, language)
        if found.intent is None:
            continue
        score = found.score if asr is None else asr * found.score
        if score > best.score:
            if score < low:
                decision = Decision.REJECT
            elif asr is None or score < high:
                decision = Decision.CONFIRM
            else:
                decision = Decision.ACT
            best = Heard(found.intent, decision, round(score, 4), language)
    return best


def yes_no(event_digits: str | None, text: str | None, language: str) -> bool | None:
    """Yes/no by key (1 yes, 2 no) or by voice; None when unclear."""
    if event_digits is not None:
        return {"1": True, "2": False}.get(event_digits.strip().rstrip("#"))
    if text:
        return parse_yes_no(text[:MAX_SPEECH_CHARS], language)
    return None


def spoken_digits(text: str, language: str) -> str | None:
    """Digits said aloud ("uno dos tres" -> "123"), or None."""
    return parse_digits(text[:MAX_SPEECH_CHARS], language) if text else None


# --------------------------------------------------------------------------- validators


def luhn_ok(digits: str) -> bool:
    if not digits.isdigit() or len(digits) < 2:
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2 == 1:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def valid_answer(validator: Validator | None, value: str, digits_only: bool) -> bool:
    """Whether an ``ask`` answer passes every check its node sets."""
    if not value or (digits_only and not value.isdigit()):
        return False
    if validator is None:
        return True
    if validator.min_len is not None and len(value) < validator.min_len:
        return False
    if validator.max_len is not None and len(value) > validator.max_len:
        return False
    if validator.pattern is not None and not re.fullmatch(validator.pattern, value):
        return False
    return not validator.luhn or luhn_ok(value)


# --------------------------------------------------------------------------- conditions


@dataclass(frozen=True)
class Facts:
    """What a branch may test, gathered once per step."""

    caller: str
    language: str | None
    customer: CustomerInfo | None
    vars: Mapping[str, str]
    line: Line
    now: datetime


def holds(cond: Condition, facts: Facts) -> bool:
    """True when every check the condition sets holds for these facts."""
    customer = facts.customer
    checks: list[tuple[bool | None, bool]] = [
        (cond.known_customer, customer is not None),
        (cond.open_follow_up, bool(customer and customer.open_follow_up)),
        (cond.vip, bool(customer and customer.vip)),
    ]
    for wanted, actual in checks:
        if wanted is not None and wanted != actual:
            return False
    if cond.within_hours is not None and cond.within_hours != facts.line.hours.is_open(facts.now):
        return False
    if cond.language is not None and facts.language not in cond.language:
        return False
    if cond.caller is not None and facts.caller not in cond.caller:
        return False
    if cond.caller_prefix is not None and not any(facts.caller.startswith(p)
                                                  for p in cond.caller_prefix):
        return False
    for name, allowed in cond.vars.items():
        if facts.vars.get(name) not in allowed:
            return False
    fields = customer.fields if customer else {}
    return all(fields.get(name) in allowed for name, allowed in cond.fields.items())
