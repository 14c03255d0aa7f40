"""A call's state between two webhook requests, as plain, serialisable data.

The engine never mutates a session: it returns a new one. The web layer stores it
(encrypted in the action URL, with Redis as the durable record), so any worker can
answer the next request of a call and a Twilio retry of the same request replays the
same step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from call_flows.actions import Action, CustomerInfo


@dataclass(frozen=True)
class Session:
    call_sid: str
    caller: str
    called: str
    line: str  # the line (dialled number configuration) the call came in on
    flow: str  # flow id
    flow_version: str  # the version the call started on; it finishes on it
    node: str  # current node id
    language: str | None = None
    customer: CustomerInfo | None = None
    vars: Mapping[str, str] = field(default_factory=dict)
    attempts: int = 0  # failed tries (no-input / no-match) at the current node
    seq: int = 0  # steps taken; names each request so retries are recognised
    pending: Mapping[str, str] = field(default_factory=dict)  # e.g. confirm-in-progress
    stack: tuple[str, ...] = ()  # return points for goto sub-flows ("flow:node")
    ended: bool = False
    outcome: str | None = None  # resolved_ivr | queued | voicemail | callback | transfer | hangup
    recording: str = ""  # whole-call recording: "" (none), "in-progress" or "paused"

    def to_dict(self) -> dict[str, Any]:
        # Built by hand: dataclasses.asdict deep-copies and is the slowest step of a
        # webhook request.
        return {
            "call_sid": self.call_sid, "caller": self.caller, "called": self.called,
            "line": self.line, "flow": self.flow, "flow_version": self.flow_version,
            "node": self.node, "language": self.language,
            "customer": self.customer.to_dict() if self.customer else None,
            "vars": dict(self.vars), "attempts": self.attempts, "seq": self.seq,
            "pending": dict(self.pending), "stack": list(self.stack), "ended": self.ended,
            "outcome": self.outcome, "recording": self.recording,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Session:
        customer = data.get("customer")
        return cls(
            call_sid=str(data["call_sid"]),
            caller=str(data.get("caller", "")),
            called=str(data.get("called", "")),
            line=str(data.get("line", "")),
            flow=str(data["flow"]),
            flow_version=str(data.get("flow_version", "")),
            node=str(data["node"]),
            language=data.get("language"),
            customer=CustomerInfo.from_dict(customer) if customer else None,
            vars={str(k): str(v) for k, v in (data.get("vars") or {}).items()},
            attempts=int(data.get("attempts", 0)),
            seq=int(data.get("seq", 0)),
            pending={str(k): str(v) for k, v in (data.get("pending") or {}).items()},
            stack=tuple(data.get("stack") or ()),
            ended=bool(data.get("ended", False)),
            outcome=data.get("outcome"),
            recording=str(data.get("recording") or ""),
        )


@dataclass(frozen=True)
class Step:
    """What one engine step produced.

    ``log`` is one record per node visited in this step (node id, node type, input,
    outcome) that the web layer appends to the call's event stream.
    """

    session: Session
    actions: tuple[Action, ...]
    log: tuple[Mapping[str, Any], ...] = ()
