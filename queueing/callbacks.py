"""Callbacks that keep the caller's place: dial once an agent is reserved.

The router keeps a ``callback_pending`` call in line like any other; when it reaches
the front an agent is reserved first (``Assignment.callback_number`` set), then
:func:`dial` places the outbound call through Twilio's REST API. Twilio's status
callback for that leg comes back through :func:`on_status`: answered -> bridged to the
agent; busy / no-answer / failed -> the agent is freed and the call goes back to the
head of the line after the queue's ``callback.retry_s``, until ``max_attempts``; the
answered leg's ``completed`` completes the call. Only the current leg counts (its
reservation id and CallSid). Callbacks are only routed while the business hours of the
line the customer called hold (``QueueStore.is_open``): outside them they keep their
place and are dialled when that line opens, from that line's own number.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from queueing.errors import QueueError
from queueing.model import (
    CALLBACK_MARGIN_S,
    CALLBACK_RING_TIMEOUT_S,
    Assignment,
    CallStatus,
    callback_hold_s,
)
from queueing.store import QueueStore

log = logging.getLogger(__name__)

UNANSWERED = ("busy", "no-answer", "failed", "canceled")
ANSWERED = ("in-progress", "answered")
ENDED = ("completed",)  # Twilio's final status of a leg that was answered

Dispatch = Callable[[Assignment], None]


class OutboundCaller(Protocol):
    """The part of ``ivr.twilio_rest.TwilioRest`` a callback needs."""

    def create_call(self, *, to: str, from_: str, url: str | None = None,
                    status_callback: str | None = None,
                    status_callback_events: tuple[str, ...] = (),
                    timeout: int | None = None) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class CallbackConfig:
    """How we call customers back. ``status_url`` may name ``{reservation_id}``; when it
    does not, ``res=<reservation id>`` is added to its query so a late status of an
    earlier leg is recognised (and ignored)."""

    from_number: str  # our caller ID (E.164)
    answer_url: str  # TwiML for the callee once answered, ``{call_id}`` is filled in
    status_url: str | None = None  # Twilio posts the leg's status here, ``{call_id}`` too
    ring_timeout_s: int = CALLBACK_RING_TIMEOUT_S
    margin_s: float = CALLBACK_MARGIN_S  # the agent stays reserved this much longer
    # each line's own caller ID: the customer sees the number they called
    line_numbers: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 5 <= self.ring_timeout_s <= 600:  # Twilio's own bounds for Timeout
            raise QueueError(f"callback ring timeout must be 5..600 seconds, got "
                             f"{self.ring_timeout_s!r}")
        if self.margin_s < 0:
            raise QueueError(f"callback reservation margin must be >= 0, got {self.margin_s!r}")

    def caller_id(self, line: str) -> str:
        """The number we call from for a callback of ``line``: its own, else the default
        line's (``""``), else ``from_number``."""
        return self.line_numbers.get(line) or self.line_numbers.get("") or self.from_number

    @property
    def hold_s(self) -> float:
        """How long the callback's agent stays reserved once we start ringing."""
        return callback_hold_s(self.ring_timeout_s, self.margin_s)

    def status_for(self, call_id: str, reservation_id: str) -> str | None:
        if not self.status_url:
            return None
        if "{reservation_id}" in self.status_url:
            return self.status_url.format(call_id=call_id, reservation_id=reservation_id)
        parts = urlsplit(self.status_url.format(call_id=call_id))
        query = parse_qsl(parts.query, keep_blank_values=True) + [("res", reservation_id)]
        return urlunsplit(parts._replace(query=urlencode(query)))


def dial(store: QueueStore, caller: OutboundCaller, config: CallbackConfig, call_id: str,
         reservation_id: str, dispatch: Dispatch | None = None) -> str | None:
    """Dial the callback for a reservation; returns Twilio's CallSid, or None when there is
    nothing to do (reservation gone, already dialled: retries of the job are harmless).

    The agent's reservation is first extended to cover the whole ringing plus a margin
    (``config.hold_s``), so it cannot lapse while the customer is picking up. A leg that
    cannot be placed counts as an unanswered attempt; the agent's next reservation, if
    that frees them into one, goes to ``dispatch``.
    """
    call = store.call(call_id)
    if call is None or call.status != CallStatus.RESERVED or not call.callback_number:
        return None
    number = store.callback_dialing(call_id, reservation_id, config.hold_s,
                                    dispatch=dispatch)
    if number is None:  # no longer this reservation
        return None
    if not store.claim(f"dial:{call_id}:{reservation_id}", ttl_s=3600):
        return None
    from_number = config.caller_id(call.hours_line)
    try:
        created = caller.create_call(to=number, from_=from_number,
                                     url=config.answer_url.format(call_id=call_id),
                                     status_callback=config.status_for(call_id, reservation_id),
                                     status_callback_events=("answered", "completed"),
                                     timeout=config.ring_timeout_s)
    except Exception as exc:
        placed = _placed_anyway(caller, exc, number, from_number)
        if placed is not None:  # Twilio created it though we never heard back: adopt it
            store.callback_leg(call_id, reservation_id, placed)
            log.warning("callback %s: %s after Twilio had placed %s; adopted", call_id,
                        exc, placed)
            return placed
        # the leg never started: count it as unanswered
        _, nxt = store.callback_result(call_id, answered=False, reservation_id=reservation_id,
                                       why="dial_failed")
        _send(dispatch, nxt)
        raise QueueError(f"callback to {number} could not be placed: {exc}") from exc
    sid = str(created.get("sid", ""))
    if sid:
        store.callback_leg(call_id, reservation_id, sid)
    return sid


def live_call_to(caller: OutboundCaller, number: str, from_number: str) -> str | None:
    """The CallSid of a live call Twilio has from us to ``number`` (a leg placed by a
    request whose answer never reached us), or None; raises when Twilio cannot be read."""
    lister = getattr(caller, "list_live_calls", None)
    placed = lister(to=number, from_=from_number) if lister is not None else None
    return min(placed) if placed else None


def _placed_anyway(caller: OutboundCaller, exc: Exception, number: str,
                   from_number: str) -> str | None:
    """After an ambiguous failure (a timeout, a 5xx: Twilio may have created the call),
    the live call to ``number`` Twilio has, if any. A 4xx is a refusal: nothing placed."""
    status = getattr(exc, "status", 0) or 0
    if 400 <= status < 500:
        return None
    try:
        return live_call_to(caller, number, from_number)
    except Exception as again:  # noqa: BLE001  (cannot tell: counted unanswered)
        log.warning("callback to %s: could not check whether it was placed (%s)", number,
                    again)
        return None


def on_status(store: QueueStore, call_id: str, twilio_status: str,
              now: float | None = None, *, leg_sid: str | None = None,
              reservation_id: str | None = None, dispatch: Dispatch | None = None,
              agent_joined: bool | None = None) -> str:
    """Apply Twilio's status for the callback leg; returns the call's status afterwards.

    ``leg_sid`` (the status request's ``CallSid``) and ``reservation_id`` (the ``res``
    of the status URL) tie the status to one leg: a status of an earlier leg, a repeat,
    or a no-answer for a call already bridged changes nothing. A reservation the change
    produces (the freed agent's next call) goes to ``dispatch``. ``agent_joined`` False
    with a final "completed": the customer hung up before the agent picked up (during
    the greeting, or while the agent's phone rang): an attempt that did not reach them,
    not a call served.
    """
    status = (twilio_status or "").strip().lower()
    if status in ANSWERED or status in UNANSWERED or status in ENDED:
        left = status in ENDED and agent_joined is False
        after, nxt = store.callback_result(
            call_id, answered=not left and status not in UNANSWERED, now=now,
            reservation_id=reservation_id, leg_sid=leg_sid, ended=not left and status in ENDED,
            why="customer_left" if left else status)
        _send(dispatch, nxt)
        return after
    call = store.call(call_id)
    return call.status.value if call else "unknown"


def _send(dispatch: Dispatch | None, assignment: Assignment | None) -> None:
    if dispatch is not None and assignment is not None:
        dispatch(assignment)


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
