"""Queue rules: timers, aging steps and agent ordering per queue, from YAML.

Example (``queues.yaml``)::

    default:
      reservation_timeout_s: 20   # ringing agent must accept within this
      wrap_up_s: 30               # after-call work before the agent is offered again
      service_level_s: 20         # answered within this counts for the service level
      agent_order: most_skilled   # or longest_idle
      head_start_s: {2: 30}       # priority 2 calls count as having waited 30 s more
      offer_callback_after_s: 120
      callback: {max_attempts: 3, retry_s: 120}
      resume_window_s: 300        # a caller who hangs up and calls back gets the place
      announce_every_s: 30        # holding callers hear position/estimate this often (15-300)
      announce_position: true     # "you are number 3 in line"
      announce_estimate: true     # "the estimated wait is between 2 and 4 minutes"
      steps:
        - {after_s: 60, min_level: 1}       # relax the required level
        - {after_s: 120, raise_priority: 1}
        - {after_s: 300, overflow_to: general}
        - {after_s: 600, offer_voicemail: true}
    queues:
      billing: {wrap_up_s: 45}      # keys not given come from default

The rules are stored in Redis as JSON so every process, and the Lua router, applies the
same ones; aging is evaluated lazily from each call's ``entered_at`` and ``now``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from queueing.errors import RulesError
from queueing.model import MAX_LEVEL, MAX_PRIORITY

AGENT_ORDERS = ("most_skilled", "longest_idle")
ANNOUNCE_EVERY_RANGE = (15, 300)  # seconds; shorter nags, longer leaves callers wondering


@dataclass(frozen=True)
class AgingStep:
    after_s: float
    min_level: int | None = None  # relax every required level down to this
    raise_priority: int = 0
    overflow_to: str | None = None  # agents of this queue may take the call too
    offer_voicemail: bool = False


@dataclass(frozen=True)
class QueueRules:
    reservation_timeout_s: float = 20.0
    wrap_up_s: float = 30.0
    service_level_s: float = 20.0
    agent_order: str = "most_skilled"
    head_start_s: Mapping[int, float] = field(default_factory=dict)
    offer_callback_after_s: float | None = 120.0
    callback_max_attempts: int = 3
    callback_retry_s: float = 120.0
    resume_window_s: float = 300.0
    steps: tuple[AgingStep, ...] = ()
    announce_every_s: int = 30  # the hold music between two announcements lasts this
    announce_position: bool = True
    announce_estimate: bool = True

    def to_json(self) -> str:
        data = asdict(self)
        data["head_start_s"] = {str(k): v for k, v in self.head_start_s.items()}
        return json.dumps(data, sort_keys=True)

    def aging(self, wait_s: float) -> tuple[int | None, int, str | None, bool]:
        """(relaxed min level, priority boost, overflow queue, offer voicemail) at a wait."""
        level: int | None = None
        boost = 0
        overflow: str | None = None
        voicemail = False
        for step in self.steps:
            if wait_s < step.after_s:
                continue
            if step.min_level is not None:
                level = step.min_level if level is None else min(level, step.min_level)
            boost += step.raise_priority
            overflow = step.overflow_to or overflow
            voicemail = voicemail or step.offer_voicemail
        return level, boost, overflow, voicemail


@dataclass(frozen=True)
class RulesConfig:
    default: QueueRules = field(default_factory=QueueRules)
    queues: Mapping[str, QueueRules] = field(default_factory=dict)

    def for_queue(self, name: str) -> QueueRules:
        return self.queues.get(name, self.default)


def _number(value: Any, where: str, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
        raise RulesError(f"{where}: expected a number >= {minimum:g}, got {value!r}")
    return float(value)


def _int(value: Any, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise RulesError(f"{where}: expected an integer {low}..{high}, got {value!r}")
    return value


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise RulesError(f"{where}: expected true or false, got {value!r}")
    return value


def _every(value: Any, where: str) -> int:
    low, high = ANNOUNCE_EVERY_RANGE
    whole = isinstance(value, (int, float)) and not isinstance(value, bool) \
        and float(value).is_integer()
    if not whole or not low <= value <= high:
        raise RulesError(f"{where}: expected whole seconds {low}..{high}, got {value!r}")
    return int(value)


def _step(raw: Any, where: str) -> AgingStep:
    if not isinstance(raw, dict):
        raise RulesError(f"{where}: each step is a mapping with after_s and an action")
    known = {"after_s", "min_level", "raise_priority", "overflow_to", "offer_voicemail"}
    unknown = set(raw) - known
    if unknown:
        raise RulesError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(known)}")
    if "after_s" not in raw:
        raise RulesError(f"{where}: after_s is required")
    overflow = raw.get("overflow_to")
    if overflow is not None and (not isinstance(overflow, str) or not overflow):
        raise RulesError(f"{where}.overflow_to: expected a queue name, got {overflow!r}")
    step = AgingStep(
        after_s=_number(raw["after_s"], f"{where}.after_s"),
        min_level=(None if raw.get("min_level") is None
                   else _int(raw["min_level"], f"{where}.min_level", 1, MAX_LEVEL)),
        raise_priority=_int(raw.get("raise_priority", 0), f"{where}.raise_priority",
                            0, MAX_PRIORITY),
        overflow_to=overflow,
        offer_voicemail=bool(raw.get("offer_voicemail", False)),
    )
    if (step.min_level is None and not step.raise_priority and step.overflow_to is None
            and not step.offer_voicemail):
        raise RulesError(f"{where}: the step does nothing; give min_level, raise_priority,"
                         " overflow_to or offer_voicemail")
    return step


def parse_queue(raw: Any, where: str, base: QueueRules) -> QueueRules:
    if raw is None:
        return base
    if not isinstance(raw, dict):
        raise RulesError(f"{where}: expected a mapping of rule names to values")
    changes: dict[str, Any] = {}
    for key, value in raw.items():
        at = f"{where}.{key}"
        if key in ("reservation_timeout_s", "callback_retry_s"):
            changes[key] = _number(value, at, 1.0)
        elif key in ("wrap_up_s", "service_level_s", "resume_window_s"):
            changes[key] = _number(value, at)
        elif key == "offer_callback_after_s":
            changes[key] = None if value is None else _number(value, at)
        elif key == "announce_every_s":
            changes[key] = _every(value, at)
        elif key in ("announce_position", "announce_estimate"):
            changes[key] = _bool(value, at)
        elif key == "agent_order":
            if value not in AGENT_ORDERS:
                raise RulesError(f"{at}: expected one of {AGENT_ORDERS}, got {value!r}")
            changes[key] = value
        elif key == "head_start_s":
            if not isinstance(value, dict):
                raise RulesError(f"{at}: expected a mapping priority -> seconds")
            changes[key] = {_int(int(p) if str(p).isdigit() else p, at, 0, MAX_PRIORITY):
                            _number(s, f"{at}.{p}") for p, s in value.items()}
        elif key == "callback":
            if not isinstance(value, dict) or set(value) - {"max_attempts", "retry_s"}:
                raise RulesError(f"{at}: expected {{max_attempts: N, retry_s: S}}")
            if "max_attempts" in value:
                changes["callback_max_attempts"] = _int(value["max_attempts"],
                                                        f"{at}.max_attempts", 1, 20)
            if "retry_s" in value:
                changes["callback_retry_s"] = _number(value["retry_s"], f"{at}.retry_s", 1.0)
        elif key == "steps":
            if not isinstance(value, list):
                raise RulesError(f"{at}: expected a list of steps")
            steps = tuple(_step(s, f"{at}[{i}]") for i, s in enumerate(value))
            changes[key] = tuple(sorted(steps, key=lambda s: s.after_s))
        else:
            raise RulesError(f"{at}: unknown rule {key!r}")
    return replace(base, **changes)


def parse_rules(data: Any, source: str = "rules") -> RulesConfig:
    if data is None:
        return RulesConfig()
    if not isinstance(data, dict) or set(data) - {"default", "queues"}:
        raise RulesError(f"{source}: top level must be a mapping with 'default' and/or 'queues'")
    default = parse_queue(data.get("default"), f"{source}: default", QueueRules())
    queues_raw = data.get("queues") or {}
    if not isinstance(queues_raw, dict):
        raise RulesError(f"{source}: queues must map queue names to rules")
    queues = {str(name): parse_queue(raw, f"{source}: queues.{name}", default)
              for name, raw in queues_raw.items()}
    for name, rules in {"default": default, **queues}.items():
        for step in rules.steps:
            if step.overflow_to == name:
                raise RulesError(f"{source}: queue {name!r} overflows to itself")
    return RulesConfig(default=default, queues=queues)


def load_rules(path: Path | str) -> RulesConfig:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesError(f"{path}: cannot read queue rules ({exc.strerror})") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RulesError(f"{path}: not valid YAML: {exc}") from exc
    return parse_rules(data, str(path))


def rules_from_json(text: str) -> QueueRules:
    data = json.loads(text)
    data["head_start_s"] = {int(k): float(v) for k, v in data.get("head_start_s", {}).items()}
    data["steps"] = tuple(AgingStep(**s) for s in data.get("steps", ()))
    return QueueRules(**data)
