"""The call path's view of the router: enqueue, leave, hold announcements, metrics.

Keeps ``ivr.calls`` ignorant of the router's vocabulary; every method is a single
router operation (one Lua call) so the webhook stays fast.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Callable

from prometheus_client import CollectorRegistry, Gauge

from call_flows import actions as a
from call_flows.session import Session
from queueing.model import needs_from_skills

log = logging.getLogger(__name__)

# (queue, call_id, waited_s, now) -> (expected_s, low_s, high_s) or None
EstimateFn = Callable[[str, str, float, float], "tuple[float, float, float] | None"]


@dataclass(frozen=True)
class HoldEstimate:
    position: int
    waiting: int
    low_s: float | None
    high_s: float | None
    offer_callback: bool


class QueueAdapter:
    def __init__(self, store: Any, estimator: EstimateFn | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.estimator = estimator
        self.clock = clock

    def enqueue(self, session: Session, action: a.Enqueue) -> None:
        status, assignment, resumed = self.store.enqueue(
            session.call_sid, action.queue, needs_from_skills(action.skills),
            priority=action.priority, caller=session.caller, now=self.clock())
        if resumed:
            log.info("call %s took back the place of %s", session.call_sid, resumed)

    def request_callback(self, session: Session, action: a.RequestCallback) -> None:
        """A callback asked from the flow: the call joins the line (keeping any place it
        had) and waits there as a callback."""
        self.store.enqueue(session.call_sid, str(action.skills.get("queue", "support")),
                           needs_from_skills(action.skills), priority=action.priority,
                           caller=session.caller, now=self.clock())
        self.store.request_callback(session.call_sid, action.number, now=self.clock())

    def left(self, call_sid: str, result: str) -> None:
        """Twilio's QueueResult for a caller who left the hold."""
        if result in {"hangup", "error", "system-error"}:
            self.store.abandon(call_sid, reason=result, now=self.clock())
        elif result == "leave":
            # Pressed 1 for a callback: the flow confirms the number; the place is kept
            # by the request_callback that follows.
            pass

    def estimate(self, call_sid: str) -> HoldEstimate | None:
        info = self.store.hold_info(call_sid, now=self.clock())
        if info.position <= 0:
            return None
        low = high = None
        if self.estimator is not None:
            call = self.store.call(call_sid)
            queue = getattr(call, "queue", "support") if call is not None else "support"
            guess = self.estimator(queue, call_sid, info.wait_s, self.clock())
            if guess is not None:
                _, low, high = guess
        return HoldEstimate(position=info.position, waiting=info.waiting, low_s=low,
                            high_s=high, offer_callback=info.offer_callback)

    def export_metrics(self, registry: CollectorRegistry) -> None:
        waiting = Gauge("ivr_queue_waiting", "calls waiting", ["queue"], registry=registry)
        try:
            counts: dict[str, int] = {}
            for call in self.store.waiting():
                counts[call.queue] = counts.get(call.queue, 0) + 1
            for queue, count in counts.items():
                waiting.labels(queue=queue).set(count)
        except Exception:  # metrics must never fail the scrape
            log.debug("queue metrics unavailable", exc_info=True)
