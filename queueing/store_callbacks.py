"""The router's callback operations (a part of :class:`queueing.store.QueueStore`).

A callback keeps its caller's place: it waits in line as ``callback_pending``; at the
front an agent is reserved, then the customer is rung (``queueing.callbacks.dial``).
Each method is one call of the router (``lua/callbacks.lua``), so it is atomic
with every other routing decision. Results of a callback leg name the reservation and
the leg they belong to: a late result of an earlier leg changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from queueing import errors
from queueing.model import Assignment, assignment_from_json


class CallbackOps:
    """Mixed into ``QueueStore``: uses its ``_run``, ``enqueue_args`` and ``clock``."""

    clock: Callable[[], float]
    _run: Callable[[str, Mapping[str, Any], float | None], Any]

    enqueue_args: Callable[..., dict[str, Any]]

    def enqueue_callback(self, call_id: str, queue: str, number: str,
                         needs: Mapping[str, int] | None = None, priority: int = 0,
                         caller: str = "", now: float | None = None, line: str = "",
                         lost: bool = False) -> tuple[str, Assignment | None, str | None]:
        """A confirmed callback request, in one atomic step.

        A call not yet in the router joins its line directly as ``callback_pending`` (an
        agent free now is reserved for it at once, while open); one already holding keeps
        its place and becomes a callback; one that had an agent reserved while the caller
        was choosing the callback becomes a callback at the head of its line (that agent is
        freed, not paused). Returns (status, assignment or None, id of an abandoned call
        whose place it took back or None). Asking again changes only the number.
        ``line``: the line the customer called, whose business hours the callback keeps
        ("": the default line's). ``lost``: the call is put through to an agent but the
        caller still holds (our update never reached Twilio): the answer is undone and the
        call becomes a callback at the head of its line, its agent freed.
        """
        if not number:
            raise errors.QueueError("a callback needs a confirmed phone number")
        at = self.clock() if now is None else now
        args = self.enqueue_args(call_id, queue, needs, priority, caller, at)
        args["number"] = number
        if line:
            args["hours_line"] = line
        if lost:
            args["lost"] = True
        out = self._run("enqueue_callback", args, at)
        return (out["status"], assignment_from_json(out.get("assignment")),
                out.get("resumed_from"))

    def request_callback(self, call_id: str, number: str, now: float | None = None,
                         line: str = "") -> None:
        """A call waiting in line becomes a callback that keeps its place (dialled within
        the hours of ``line``, the line the customer called; "": the default line's)."""
        if not number:
            raise errors.QueueError("a callback needs a confirmed phone number")
        self._run("callback", {"call": call_id, "number": number, "hours_line": line or None},
                  now)

    def callback_result(self, call_id: str, answered: bool, now: float | None = None, *,
                        reservation_id: str | None = None, leg_sid: str | None = None,
                        ended: bool = False, why: str | None = None
                        ) -> tuple[str, Assignment | None]:
        """What became of a callback leg. ``answered``: bridged to the reserved agent;
        ``ended``: the answered leg is over (the call is complete); otherwise the attempt
        failed (``why``): the agent is freed, a retry follows or the callback fails.

        Applied only to the current reservation / leg when they are given; a stale or
        repeated result, or a no-answer for a call already bridged, changes nothing.
        Returns the call's status afterwards and the agent's next reservation, if any.
        """
        out = self._run("callback_result", {"call": call_id, "answered": bool(answered),
                                            "ended": bool(ended), "res": reservation_id,
                                            "leg": leg_sid, "why": why}, now)
        return str(out["status"]), assignment_from_json(out.get("assignment"))

    def callback_dialing(self, call_id: str, reservation_id: str, hold_s: float,
                         now: float | None = None,
                         dispatch: Callable[[Assignment], None] | None = None) -> str | None:
        """Before ringing the customer: the number to dial if ``reservation_id`` is still
        the call's reservation (else None), its deadline pushed to at least ``hold_s``
        from now so the agent stays reserved for the whole ringing. If the line has
        closed meanwhile, nobody is rung (None): the call keeps the head of its line, the
        agent is freed, and a reservation that frees them into goes to ``dispatch``."""
        out = self._run("cb_dialing", {"call": call_id, "res": reservation_id,
                                       "hold": float(hold_s)}, now)
        freed = assignment_from_json(out.get("assignment"))
        if freed is not None and dispatch is not None:
            dispatch(freed)
        return str(out["number"]) if out.get("ok") else None

    def callback_leg(self, call_id: str, reservation_id: str, leg_sid: str,
                     now: float | None = None) -> bool:
        """Remember Twilio's CallSid of the leg placed for ``reservation_id``."""
        return bool(self._run("cb_leg", {"call": call_id, "res": reservation_id,
                                         "leg": leg_sid}, now).get("ok"))
