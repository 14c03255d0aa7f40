"""The call-flow model: frozen dataclasses a loaded YAML flow becomes.

Everything here is plain, immutable data; :mod:`call_flows.loader` builds it and
checks it, :mod:`call_flows.engine` walks it. Templates (``{customer.name}``) are
parsed here so the loader can refuse unknown placeholders and the engine can fill
them without re-parsing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum


class CallFlowsError(Exception):
    """Root of every error raised by the ``call_flows`` package."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a flow file, located at the offending key or reference."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


class FlowError(CallFlowsError):
    """A flow (or lines) file is invalid; ``problems`` lists every error found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.file, p.line, p.message))
        super().__init__("\n".join(str(p) for p in self.problems) or "invalid flow")


class UnknownFlow(CallFlowsError):
    """The registry holds no flow (or version) with that id; the message names it."""


class NodeType(str, Enum):
    SAY = "say"
    MENU = "menu"
    ASK = "ask"
    CONFIRM = "confirm"
    BRANCH = "branch"
    LOOKUP = "lookup"
    ANSWER = "answer"
    QUEUE = "queue"
    VOICEMAIL = "voicemail"
    CALLBACK = "callback"
    TRANSFER = "transfer"
    GOTO = "goto"
    RETURN = "return"
    HANGUP = "hangup"
    SURVEY = "survey"


#: Node types that wait for the caller (or Twilio) before going on.
WAITING_TYPES = frozenset({NodeType.MENU, NodeType.ASK, NodeType.CONFIRM, NodeType.CALLBACK,
                           NodeType.VOICEMAIL, NodeType.QUEUE, NodeType.TRANSFER,
                           NodeType.SURVEY})
#: Node types that can end a call (or leave the flow), so a cycle through them exits.
ENDING_TYPES = frozenset({NodeType.QUEUE, NodeType.VOICEMAIL, NodeType.CALLBACK,
                          NodeType.TRANSFER, NodeType.HANGUP, NodeType.RETURN,
                          NodeType.SURVEY})
#: Node types whose failures (no input / no match) follow the retry policy.
INPUT_TYPES = frozenset({NodeType.MENU, NodeType.ASK, NodeType.CONFIRM, NodeType.CALLBACK})


# --------------------------------------------------------------------------- templates

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_REF = re.compile(
    r"^(customer\.(?:name|account|open_follow_up|fields\.[A-Za-z0-9_]+)"
    r"|vars\.[A-Za-z0-9_]+|caller|called|language|heard)(?:\|(digits|last4))?$"
)


@dataclass(frozen=True)
class Template:
    """Text with ``{ref}`` or ``{ref|filter}`` placeholders, split once at load time.

    ``parts`` alternates literal text (even indexes) and references (odd indexes).
    """

    parts: tuple[str, ...]

    @property
    def refs(self) -> tuple[str, ...]:
        return self.parts[1::2]

    @classmethod
    def parse(cls, text: str) -> tuple[Template, list[str]]:
        """Return the template and the list of bad placeholders (empty when valid)."""
        parts: list[str] = []
        bad: list[str] = []
        pos = 0
        for m in _PLACEHOLDER.finditer(text):
            parts.append(text[pos:m.start()])
            ref = m.group(1).strip()
            if not _REF.match(ref):
                bad.append(ref)
            parts.append(ref)
            pos = m.end()
        parts.append(text[pos:])
        return cls(tuple(parts)), bad

    def render(self, values: Mapping[str, str | None], missing: str | None = None
               ) -> str | None:
        """Fill the placeholders. A missing or empty value makes the result None, or is
        replaced by ``missing`` when that is given."""
        out: list[str] = []
        for i, part in enumerate(self.parts):
            if i % 2 == 0:
                out.append(part)
                continue
            ref, _, filt = part.partition("|")
            value = values.get(ref)
            if value is None or value == "":
                if missing is None:
                    return None
                value = missing
            if filt == "digits":
                value = " ".join(ch for ch in value if not ch.isspace())
            elif filt == "last4":
                digits = [ch for ch in value if ch.isdigit()]
                value = " ".join(digits[-4:])
            out.append(value)
        return "".join(out)


# --------------------------------------------------------------------------- flow parts


@dataclass(frozen=True)
class Text:
    """One language's version of a prompt: words to say, or an audio URL to play."""

    template: Template | None = None
    play: str | None = None


Localized = Mapping[str, Text]


@dataclass(frozen=True)
class Option:
    """A menu choice: a key, spoken phrases per language, and where it leads."""

    name: str
    next: str
    key: str | None = None
    phrases: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    label: Mapping[str, str] = field(default_factory=dict)  # said in "You said X"
    set: Mapping[str, str] = field(default_factory=dict)
    language: str | None = None


@dataclass(frozen=True)
class Validator:
    """Checks for an ``ask`` node's answer; every set check must pass."""

    min_len: int | None = None
    max_len: int | None = None
    pattern: str | None = None
    luhn: bool = False
    exists: str | None = None  # "account": the answer must name a known customer


@dataclass(frozen=True)
class Condition:
    """A branch test: every given check must hold (None means "don't care")."""

    known_customer: bool | None = None
    open_follow_up: bool | None = None
    within_hours: bool | None = None
    vip: bool | None = None
    language: tuple[str, ...] | None = None
    caller: tuple[str, ...] | None = None
    caller_prefix: tuple[str, ...] | None = None
    vars: Mapping[str, tuple[str | None, ...]] = field(default_factory=dict)
    fields: Mapping[str, tuple[str | None, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Case:
    when: Condition
    next: str


@dataclass(frozen=True)
class Node:
    """One step of a flow. Which fields matter depends on ``type`` (see the README)."""

    id: str
    type: NodeType
    line: int
    prompt: Localized | None = None
    reprompt: Localized | None = None
    keypad_prompt: Localized | None = None
    next: str | None = None
    on_fail: str | None = None
    on_leave: str | None = None  # queue: the caller pressed 1 on hold (callback offer)
    after: str | None = None  # queue / transfer: where the caller goes once the person hangs up
    timeout_s: int = 5
    # menu
    options: tuple[Option, ...] = ()
    confirm_voice: str = "auto"  # auto (middle confidence) | always | never
    # ask
    var: str | None = None
    input: str = "digits"  # digits | speech
    max_digits: int | None = None
    validator: Validator | None = None
    invalid: Localized | None = None
    skip: Option | None = None
    sensitive: bool = False
    # confirm
    yes: str | None = None
    no: str | None = None
    # branch
    cases: tuple[Case, ...] = ()
    default: str | None = None
    # lookup
    by: str = "account"
    value: Template | None = None
    found: str | None = None
    not_found: str | None = None
    # answer
    missing: str | None = None
    # queue / callback
    queue: str = "general"
    topic: str | None = None
    skills: Mapping[str, str] = field(default_factory=dict)
    priority: int = 0
    # voicemail / callback
    thanks: Localized | None = None
    number_prompt: Localized | None = None
    max_length_s: int = 120
    # transfer
    number: str | None = None
    # survey (``prompt`` asks for consent; ``thanks`` ends it, ``goodbye`` when declined)
    csat: Localized | None = None
    nps: Localized | None = None
    comment: Localized | None = None
    goodbye: Localized | None = None
    # goto
    flow: str | None = None
    entry: str | None = None
    return_to: str | None = None


@dataclass(frozen=True)
class Flow:
    """A whole flow file: its nodes plus flow-wide settings."""

    id: str
    version: str
    file: str
    languages: tuple[str, ...]
    start: str
    nodes: Mapping[str, Node]
    messages: Mapping[str, Localized]
    language_menu: str | None = None
    human: str | None = None  # default on_fail target: the route to a person
    closed: str | None = None  # where queue nodes send callers while the line is closed
    entries: tuple[str, ...] = ()  # extra entry points for goto from other flows
    high_confidence: float = 0.75
    low_confidence: float = 0.45
    vip_priority: int = 5
    source: str = ""
    digest: str = ""
    #: (target flow, entry node or None, file line) of every goto, for cross-flow checks
    gotos: tuple[tuple[str, str | None, int], ...] = ()
