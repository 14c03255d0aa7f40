"""The routing vocabulary: calls' requirements and priority, agents' skills and states.

Plain frozen dataclasses and ``str`` enums, no I/O. A *skill* is a string such as
``lang:es`` or ``topic:billing``; a level is an integer from 1 (can handle it) to 5
(expert). A call's requirements are a mapping skill -> minimum level; calls with the
same queue and requirements wait in the same *bucket* (one sorted set per priority
level in Redis), so routing touches a handful of buckets, never every call.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

MAX_LEVEL = 5
MAX_PRIORITY = 9

# How much each reason adds to a call's priority (capped at MAX_PRIORITY).
PRIORITY_WEIGHTS: Mapping[str, int] = {"vip": 3, "urgent": 2, "repeat": 1, "callback": 1}

#: How long Twilio rings the customer we call back (the REST ``Timeout``), seconds.
CALLBACK_RING_TIMEOUT_S = 25
#: Extra time a callback's agent stays reserved beyond that ringing: the dial job may
#: start late, and Twilio's final status of the leg must arrive before the reservation
#: lapses (or the call would be requeued while the customer is picking up).
CALLBACK_MARGIN_S = 15


def callback_hold_s(ring_timeout_s: float = CALLBACK_RING_TIMEOUT_S,
                    margin_s: float = CALLBACK_MARGIN_S) -> float:
    """Seconds a callback's agent stays reserved: the ringing plus the margin."""
    if ring_timeout_s <= 0 or margin_s < 0:
        raise ValueError(f"callback ring timeout must be > 0 and margin >= 0, got "
                         f"{ring_timeout_s!r} and {margin_s!r}")
    return float(ring_timeout_s) + float(margin_s)


class AgentState(str, Enum):
    OFFLINE = "offline"
    AVAILABLE = "available"
    RESERVED = "reserved"  # a call is ringing at the agent
    BUSY = "busy"
    WRAP_UP = "wrap_up"
    PAUSED = "paused"


class CallStatus(str, Enum):
    WAITING = "waiting"
    CALLBACK_PENDING = "callback_pending"  # caller hung up, keeps the place, we call back
    RESERVED = "reserved"  # an agent was chosen and is being rung
    BRIDGED = "bridged"  # talking to an agent
    COMPLETED = "completed"
    ABANDONED = "abandoned"  # the caller hung up while waiting (wait recorded)
    RESUMED = "resumed"  # replaced by a new call from the same number that took its place
    CALLBACK_FAILED = "callback_failed"  # every callback attempt went unanswered
    VOICEMAIL = "voicemail"  # left a message from the hold instead of waiting on

    @property
    def active(self) -> bool:
        return self in _ACTIVE


_ACTIVE = {CallStatus.WAITING, CallStatus.CALLBACK_PENDING, CallStatus.RESERVED,
           CallStatus.BRIDGED}


class PauseReason(str, Enum):
    NO_ANSWER = "no_answer"  # a reservation timed out
    DECLINED = "declined"
    BREAK = "break"
    TRAINING = "training"
    OTHER = "other"


def requirements(language: str | None = None, topic: str | None = None,
                 min_level: int = 1, **extra: int) -> dict[str, int]:
    """Requirements as skill -> level: the language at level 1, the topic at ``min_level``."""
    if not 1 <= min_level <= MAX_LEVEL:
        raise ValueError(f"min_level must be 1..{MAX_LEVEL}, got {min_level}")
    needed: dict[str, int] = {}
    if language:
        needed[f"lang:{language}"] = 1
    if topic:
        needed[f"topic:{topic}"] = min_level
    for skill, level in extra.items():
        needed[skill] = int(level)
    return needed


def priority(*, vip: bool = False, urgent: bool = False, repeat: bool = False,
             callback: bool = False, base: int = 0) -> int:
    """A call's priority from the reasons that apply (higher is served first)."""
    total = base
    for reason, applies in (("vip", vip), ("urgent", urgent), ("repeat", repeat),
                            ("callback", callback)):
        if applies:
            total += PRIORITY_WEIGHTS[reason]
    return max(0, min(MAX_PRIORITY, total))


def validate_skills(skills: Mapping[str, Any], what: str) -> dict[str, int]:
    """Check a skill -> level mapping; raise ValueError naming the bad entry."""
    clean: dict[str, int] = {}
    for skill, level in skills.items():
        if not isinstance(skill, str) or not skill or any(c in skill for c in "|,=#"):
            raise ValueError(f"{what}: skill names are non-empty strings without | , = #;"
                             f" got {skill!r}")
        if isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= MAX_LEVEL:
            raise ValueError(f"{what}: level of {skill!r} must be an integer 1..{MAX_LEVEL},"
                             f" got {level!r}")
        clean[skill] = level
    return clean


@dataclass(frozen=True)
class Call:
    """A call as the router sees it. Times are seconds since the epoch (or a simulation)."""

    call_id: str
    queue: str
    needs: Mapping[str, int] = field(default_factory=dict)
    priority: int = 0
    entered_at: float = 0.0
    status: CallStatus = CallStatus.WAITING
    caller: str = ""
    agent_id: str | None = None
    callback_number: str | None = None
    callback_attempts: int = 0
    front: bool = False  # put back at the head of the line after a no-answer
    hours_line: str = ""  # the line the customer called: a callback keeps its hours ("": default)
    reservation_id: str | None = None  # the current (or answered) reservation

    def wait_s(self, now: float) -> float:
        return max(0.0, now - self.entered_at)


@dataclass(frozen=True)
class Agent:
    agent_id: str
    skills: Mapping[str, int] = field(default_factory=dict)
    capacity: int = 1
    queues: tuple[str, ...] = ()  # empty: every queue
    state: AgentState = AgentState.OFFLINE
    pause_reason: str | None = None
    load: int = 0
    calls: tuple[str, ...] = ()
    idle_since: float | None = None
    state_since: float | None = None
    wrap_up_until: float | None = None

    def serves(self, queue: str) -> bool:
        return not self.queues or queue in self.queues


@dataclass(frozen=True)
class Assignment:
    """A routing decision: ``agent_id`` is reserved for ``call_id``.

    ``callback_number`` is set when the call is a callback that keeps its place: the
    agent is reserved first, then the number is dialled.
    """

    call_id: str
    agent_id: str
    queue: str
    reservation_id: str
    deadline: float
    callback_number: str | None = None

    @property
    def is_callback(self) -> bool:
        return self.callback_number is not None


def assignment_from_json(raw: Any) -> Assignment | None:
    """The router script's JSON of a reservation (or null) as an :class:`Assignment`."""
    if not raw:
        return None
    return Assignment(call_id=raw["call_id"], agent_id=raw["agent_id"], queue=raw["queue"],
                      reservation_id=str(raw["reservation_id"]), deadline=float(raw["deadline"]),
                      callback_number=raw.get("callback_number"))


@dataclass(frozen=True)
class HoldInfo:
    """What the web layer needs to talk to a waiting caller."""

    call_id: str
    status: CallStatus
    position: int  # 1 = next; 0 when no longer waiting
    waiting: int  # calls waiting in the same queue
    wait_s: float
    offer_callback: bool
    offer_voicemail: bool
    overflowed_to: str | None = None


def needs_from_skills(skills: Mapping[str, Any]) -> dict[str, int]:
    """Translate a flow's ``Enqueue.skills`` ({"language": "es", "topic": "billing",
    "min_level": "3"}) into requirements; other keys become ``key:value`` at level 1."""
    rest = {str(k): v for k, v in skills.items()}
    level_raw = rest.pop("min_level", rest.pop("level", 1))
    try:
        level = int(level_raw)
    except (TypeError, ValueError):
        raise ValueError(f"min_level must be an integer 1..{MAX_LEVEL}, got {level_raw!r}") from None
    language = rest.pop("language", None)
    topic = rest.pop("topic", None)
    needs = requirements(language=str(language) if language else None,
                         topic=str(topic) if topic else None, min_level=level)
    for key, value in rest.items():
        if value not in (None, ""):
            needs[f"{key}:{value}"] = 1
    return validate_skills(needs, "requirements")


def _f(raw: Mapping[str, str], key: str) -> float | None:
    value = raw.get(key)
    return float(value) if value not in (None, "") else None


def call_from_hash(call_id: str, raw: Mapping[str, str]) -> Call:
    """A call from its hash in the router (``{prefix}call:{id}``)."""
    return Call(call_id=call_id, queue=raw.get("queue", ""),
                needs=json.loads(raw.get("needs") or "{}"), priority=int(raw.get("prio", 0)),
                entered_at=float(raw.get("entered_at", 0)),
                status=CallStatus(raw.get("status", "waiting")), caller=raw.get("caller", ""),
                agent_id=raw.get("agent") or None, callback_number=raw.get("cb") or None,
                callback_attempts=int(raw.get("cb_attempts") or 0),
                front=raw.get("front") == "1", hours_line=raw.get("hours_line") or "",
                reservation_id=raw.get("res_id") or None)


def agent_from_hash(agent_id: str, raw: Mapping[str, str]) -> Agent:
    """An agent from their hash in the router (``{prefix}agent:{id}``)."""
    return Agent(agent_id=agent_id, skills=json.loads(raw.get("skills") or "{}"),
                 capacity=int(raw.get("capacity", 1)),
                 queues=tuple(json.loads(raw.get("queues") or "[]")),
                 state=AgentState(raw.get("state", "offline")),
                 pause_reason=raw.get("reason") or None, load=int(raw.get("load", 0)),
                 calls=tuple(json.loads(raw.get("calls") or "[]")),
                 idle_since=_f(raw, "idle_since"), state_since=_f(raw, "state_since"),
                 wrap_up_until=_f(raw, "wrap_until"))
