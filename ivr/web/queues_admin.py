"""The queue-rules form's work apart from HTTP: YAML <-> fields, checked by queueing.rules.

Each queue is a set of fields; in a named queue an empty field means "as in default"
(the YAML key is left out, exactly how ``queueing.rules`` reads inheritance). Aging
steps are rows: after N seconds relax the required level, raise the priority,
overflow to another queue's agents and/or offer voicemail. A queue with no step rows
inherits default's steps; "no steps" on a named queue is written as ``steps: []``.

The text is validated by ``queueing.rules.parse_rules`` -- the parser the server
uses at start-up -- and its message is shown next to the field it names.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from queueing.errors import RulesError
from queueing.rules import AGENT_ORDERS, RulesConfig, parse_rules

NUMBER_FIELDS = ("reservation_timeout_s", "wrap_up_s", "service_level_s",
                 "offer_callback_after_s", "resume_window_s", "callback_max_attempts",
                 "callback_retry_s", "announce_every_s")
FLAG_FIELDS = ("announce_position", "announce_estimate")  # "yes" / "no" / "" (inherit)
STEP_FIELDS = ("after_s", "min_level", "raise_priority", "overflow_to", "offer_voicemail")
MAX_QUEUES = 50
MAX_STEPS = 12
QUEUE_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
HEADER = ("# Queue rules, edited on the admin page /admin/queues (every version is kept\n"
          "# there with its author). Keys left out of a queue come from default.\n")


@dataclass
class QueueForm:
    name: str
    values: dict[str, str] = field(default_factory=dict)
    steps: list[dict[str, str]] = field(default_factory=list)
    no_steps: bool = False
    errors: dict[str, str] = field(default_factory=dict)


def _text(value: Any) -> str:
    if value is None:
        return "never"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def forms_of(text: str) -> list[QueueForm]:
    """The queues of a rules file as forms: default first, then each named queue."""
    data = yaml.safe_load(text) if text.strip() else None
    data = data if isinstance(data, dict) else {}
    given = data.get("queues")
    raw_queues: dict[str, Any] = given if isinstance(given, dict) else {}
    forms = []
    for name, raw in [("default", data.get("default")), *raw_queues.items()]:
        raw = raw if isinstance(raw, dict) else {}
        form = QueueForm(str(name))
        for key, value in raw.items():
            if key == "callback" and isinstance(value, dict):
                for sub in ("max_attempts", "retry_s"):
                    if sub in value:
                        form.values[f"callback_{sub}"] = _text(value[sub])
            elif key == "head_start_s" and isinstance(value, dict):
                form.values[key] = ", ".join(f"{p}={_text(s)}" for p, s in value.items())
            elif key == "steps" and isinstance(value, list):
                form.steps = [{k: ("yes" if v is True else "" if v in (False, None) else _text(v))
                               for k, v in step.items()} for step in value
                              if isinstance(step, dict)]
                form.no_steps = not value and name != "default"
            elif key in NUMBER_FIELDS or key == "agent_order":
                form.values[key] = _text(value)
            elif key in FLAG_FIELDS:
                form.values[key] = "yes" if value is True else "no" if value is False \
                    else _text(value)
        forms.append(form)
    return forms


def _number(text: str, key: str, errors: dict[str, str], whole: bool = False) -> Any:
    try:
        value = float(text)
    except ValueError:
        errors[key] = f"'{text}' is not a number of seconds"
        return None
    if not math.isfinite(value):
        errors[key] = f"'{text}' is not a number of seconds"
        return None
    if whole or value.is_integer():
        if not value.is_integer():
            errors[key] = f"'{text}' must be a whole number"
            return None
        return int(value)
    return value


def queue_data(form: QueueForm) -> dict[str, Any]:
    """The YAML mapping of one queue form; field errors go to ``form.errors``."""
    err = form.errors
    out: dict[str, Any] = {}
    values = form.values
    for key in ("reservation_timeout_s", "wrap_up_s", "service_level_s",
                "offer_callback_after_s", "resume_window_s", "announce_every_s"):
        given = values.get(key, "").strip()
        if not given:
            continue
        if key == "offer_callback_after_s" and given.lower() in {"never", "nunca", "mai"}:
            out[key] = None
        else:
            out[key] = _number(given, key, err)
    for key in FLAG_FIELDS:
        given = values.get(key, "").strip()
        if given in {"yes", "no"}:
            out[key] = given == "yes"
        elif given:
            err[key] = "choose yes or no"
    if values.get("agent_order"):
        if values["agent_order"] not in AGENT_ORDERS:
            err["agent_order"] = f"choose {' or '.join(AGENT_ORDERS)}"
        out["agent_order"] = values["agent_order"]
    head = values.get("head_start_s", "").strip()
    if head:
        starts: dict[int, Any] = {}
        for part in (p.strip() for p in head.split(",") if p.strip()):
            priority, _, seconds = part.partition("=")
            if not priority.strip().isdigit() or not seconds.strip():
                err["head_start_s"] = f"'{part}': write priority=seconds, e.g. 2=90"
                continue
            starts[int(priority)] = _number(seconds.strip(), "head_start_s", err)
        out["head_start_s"] = starts
    callback = {}
    for sub in ("max_attempts", "retry_s"):
        given = values.get(f"callback_{sub}", "").strip()
        if given:
            callback[sub] = _number(given, f"callback_{sub}", err, whole=sub == "max_attempts")
    if callback:
        out["callback"] = callback
    steps = []
    for i, row in enumerate(form.steps[:MAX_STEPS]):
        if not any(str(v).strip() for v in row.values()):
            continue
        step: dict[str, Any] = {}
        key = f"step_{i}"
        if not row.get("after_s", "").strip():
            err[key] = "give the seconds after which the step applies"
            continue
        step["after_s"] = _number(row["after_s"].strip(), key, err)
        for name in ("min_level", "raise_priority"):
            if row.get(name, "").strip():
                step[name] = _number(row[name].strip(), key, err, whole=True)
        if row.get("overflow_to", "").strip():
            step["overflow_to"] = row["overflow_to"].strip()
        if row.get("offer_voicemail") == "yes":
            step["offer_voicemail"] = True
        steps.append(step)
    if steps or form.no_steps:
        out["steps"] = steps
    return out


def rules_text(forms: list[QueueForm]) -> tuple[str, RulesConfig | None]:
    """The YAML text of the forms and its parsed rules (None when a form has errors)."""
    data: dict[str, Any] = {"default": {}, "queues": {}}
    for form in forms[:MAX_QUEUES]:
        mapping = queue_data(form)
        if form.name == "default":
            data["default"] = mapping
        elif not QUEUE_NAME.match(form.name):
            form.errors["name"] = "a queue name is 1-64 letters, digits, _ . : -"
        else:
            data["queues"][form.name] = mapping or None
    text = HEADER + yaml.safe_dump(data, sort_keys=False, allow_unicode=True,
                                   default_flow_style=None)
    if any(f.errors for f in forms):
        return text, None
    try:
        rules = parse_rules(yaml.safe_load(text), "queues")
    except RulesError as exc:
        _attach(forms, str(exc))
        return text, None
    return text, rules


def _attach(forms: list[QueueForm], message: str) -> None:
    """Show a ``queueing.rules`` error next to the queue and field it names."""
    found = re.search(r"(default|queues\.([^.:\s]+))\.?([a-z_]+)?(\[(\d+)\])?", message)
    queue = "default"
    key = "form"
    if found:
        queue = found.group(2) or "default"
        key = found.group(3) or "form"
        if key == "steps" and found.group(5) is not None:
            key = f"step_{found.group(5)}"
        elif key in {"max_attempts", "retry_s"}:
            key = f"callback_{key}"
        elif key == "callback":
            key = "callback_max_attempts"
    if "overflows to itself" in message:
        queue = re.search(r"queue '([^']+)'", message).group(1)  # type: ignore[union-attr]
        key = "steps"
    target = next((f for f in forms if f.name == queue), forms[0])
    target.errors[key] = message.split(": ", 1)[-1] if ": " in message else message


def forms_from_post(post: Mapping[str, Any], getlist: Any) -> list[QueueForm]:
    """Forms from the posted fields ``q{i}-...``; a blank new queue is ignored."""
    forms = []
    for i in range(MAX_QUEUES + 1):
        name = str(post.get(f"q{i}-name", "")).strip()
        if f"q{i}-name" not in post:
            break
        if name and post.get(f"q{i}-remove") == "1" and name != "default":
            continue
        form = QueueForm(name or "")
        for key in (*NUMBER_FIELDS, *FLAG_FIELDS, "agent_order", "head_start_s"):
            form.values[key] = str(post.get(f"q{i}-{key}", "")).strip()
        columns = {k: getlist(f"q{i}-step-{k}") for k in STEP_FIELDS}
        count = max((len(v) for v in columns.values()), default=0)
        form.steps = [{k: (columns[k][j] if j < len(columns[k]) else "") for k in STEP_FIELDS}
                      for j in range(count)]
        form.no_steps = post.get(f"q{i}-no_steps") == "1"
        if not name:
            if any(form.values.values()) or any(any(s.values()) for s in form.steps):
                form.errors["name"] = "give the new queue a name"
                forms.append(form)
            continue
        forms.append(form)
    return forms
