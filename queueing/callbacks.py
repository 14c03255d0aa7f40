"""Callbacks that keep the caller's place: dial once an agent is reserved.

The router keeps a ``callback_pending`` call in line like any other; when it reaches
the front an agent is reserved first (``Assignment.callback_number`` set), then
:func:`dial` places the outbound call through Twilio's REST API. Twilio's status
callback for that leg comes back through :func:`on_status`: answered -> bridged to the
agent; busy / no-answer / failed -> the agent is freed and the call goes back to the
head of the line after the queue's ``callback.retry_s``, until ``max_attempts``.
Callbacks are only routed while ``is_open(now)`` (business hours) holds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from queueing.errors import QueueError
from queueing.model import CallStatus
from queueing.store import QueueStore

UNANSWERED = ("busy", "no-answer", "failed", "canceled")
ANSWERED = ("in-progress", "answered")


class OutboundCaller(Protocol):
    """The part of ``ivr.twilio_rest.TwilioRest`` a callback needs."""

    def create_call(self, *, to: str, from_: str, url: str | None = None,
                    status_callback: str | None = None,
                    status_callback_events: tuple[str, ...] = (),
                    timeout: int | None = None) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class CallbackConfig:
    from_number: str  # our caller ID (E.164)
    answer_url: str  # TwiML for the callee once answered, ``{call_id}`` is filled in
    status_url: str | None = None  # Twilio posts the leg's status here, ``{call_id}`` too
    ring_timeout_s: int = 25


def dial(store: QueueStore, caller: OutboundCaller, config: CallbackConfig, call_id: str,
         reservation_id: str) -> str | None:
    """Dial the callback for a reservation; returns Twilio's CallSid, or None when there is
    nothing to do (reservation gone, already dialled: retries of the job are harmless)."""
    call = store.call(call_id)
    if call is None or call.status != CallStatus.RESERVED or not call.callback_number:
        return None
    if not store.claim(f"dial:{call_id}:{reservation_id}", ttl_s=3600):
        return None
    answer = config.answer_url.format(call_id=call_id)
    status = config.status_url.format(call_id=call_id) if config.status_url else None
    try:
        created = caller.create_call(to=call.callback_number, from_=config.from_number,
                                     url=answer, status_callback=status,
                                     status_callback_events=("answered", "completed"),
                                     timeout=config.ring_timeout_s)
    except Exception as exc:  # the leg never started: count it as unanswered
        store.callback_result(call_id, answered=False)
        raise QueueError(f"callback to {call.callback_number} could not be placed: {exc}") from exc
    sid = str(created.get("sid", ""))
    store.note(call_id, callback_sid=sid)
    return sid


def on_status(store: QueueStore, call_id: str, twilio_status: str,
              now: float | None = None) -> str:
    """Apply Twilio's status for the callback leg; returns the call's status afterwards."""
    if twilio_status in ANSWERED:
        return store.callback_result(call_id, answered=True, now=now)[0]
    if twilio_status in UNANSWERED:
        return store.callback_result(call_id, answered=False, now=now)[0]
    call = store.call(call_id)
    return call.status.value if call else "unknown"


def business_hours(open_hour: int, close_hour: int,
                   days: tuple[int, ...] = (0, 1, 2, 3, 4),
                   tz: str = "Europe/Madrid") -> Callable[[float], bool]:
    """An ``is_open(now)`` for simple opening hours (weekday numbers, Monday = 0)."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(tz)

    def is_open(now: float) -> bool:
        local = datetime.fromtimestamp(now, zone)
        return local.weekday() in days and open_hour <= local.hour < close_hour

    return is_open
