"""Putting a caller through to the agent the router reserved for them.

The caller holds in Twilio's queue (``<Enqueue>``); once the agent accepts we update
the caller's live call (REST) to ``<Dial>`` the agent's contact, which takes them
out of the queue. Agents' contacts (E.164 phone, ``client:NAME`` for Twilio Client,
or ``sip:...``) live in Redis (``ivr:agent_contact``), set through the agents API.

Twilio's view of the call settles the router's: :func:`put_through` accepts and then
bridges, undoing the answer when the bridge fails; :func:`agent_leg_ended` applies the
Dial result of the agent's leg; :func:`call_ended` ends a call Twilio says is over.
Every one is idempotent (a repeated or late webhook changes nothing twice) and returns
the reservations it produced, for the caller to dispatch (ring, time, dial).
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

import redis

from ivr import render
from ivr.errors import IvrError
from ivr.security import REQUEST_BASE
from ivr.twilio_rest import RetryPolicy, TwilioRestError
from queueing.errors import InvalidTransition, UnknownCall
from queueing.model import AgentState, Assignment, Call, CallStatus, PauseReason

log = logging.getLogger(__name__)
CONTACTS = "ivr:agent_contact"
ANSWERED = "ivr:agent_answered:"  # + router call id: the agent picked up


FINAL_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
#: Twilio's answers to an update of a call that is over: not found, not in progress.
GONE_CODES = frozenset({20404, 21220})

#: The customer we called back is on the line but the agent's phone did not answer.
CALLBACK_MISSED = {
    "es": "Disculpe, el agente no ha podido atenderle. Conserva su turno: le volveremos "
          "a llamar en breve.",
    "ca": "Disculpeu, l'agent no us ha pogut atendre. Conserveu el torn: us tornarem a "
          "trucar aviat.",
    "en": "Sorry, the agent could not take your call. You keep your place: we will call "
          "you back shortly.",
}


class BridgeError(IvrError):
    """The caller could not be put through; the message says why and what to do.
    ``assignments``: reservations made while undoing (to dispatch all the same)."""

    status = 502

    def __init__(self, message: str, assignments: tuple[Assignment, ...] = ()) -> None:
        super().__init__(message)
        self.assignments = assignments


class NotReachable(BridgeError):
    """The agent cannot be rung at all (no contact, outbound calls off): refused before
    anything changes -- the reservation stands until it is declined or expires."""

    status = 409


class CallerGone(BridgeError):
    """The caller's call is already over (at Twilio or in the router)."""

    status = 409


class LegOutcome(str, Enum):
    """What follows the agent's leg, for the caller still on the line (if any)."""

    HANG_UP = "hang_up"  # nobody left to talk to, or a callback leg that is done
    FLOW = "flow"  # the caller's flow goes on (the survey after the talk)
    HOLD_AGAIN = "hold_again"  # back to the head of the line, holding
    CALL_BACK_LATER = "call_back_later"  # a callback leg: we call them again
    APOLOGY = "apology"  # we hold no call for it: an apology and a human


@dataclass(frozen=True)
class LegResult:
    outcome: LegOutcome
    assignments: tuple[Assignment, ...] = ()


def _some(*items: Assignment | None, skip: str = "") -> tuple[Assignment, ...]:
    return tuple(a for a in items if a is not None and a.call_id != skip)


def call_ended(store: Any, call_id: str, twilio_status: str,
               now: float | None = None, agent_answered: bool | None = None,
               ) -> tuple[Assignment, ...]:
    """Twilio says the call is over (a final status): end it in the router. Waiting or
    ringing: abandoned, its wait recorded; talking: completed; a callback keeps its
    place; already over or unknown: nothing. ``agent_answered`` False: the caller was
    put through but hung up while the agent's phone still rang (the status can beat
    the dial result): abandoned, not answered, and the agent freed -- or, when they had
    asked for a callback meanwhile (``callback_wish``), the callback is booked, at the
    head of the line."""
    call = store.call(call_id)
    if (call is not None and agent_answered is False and not call.callback_number
            and call.status == CallStatus.BRIDGED):
        wish = store.noted(call_id, "callback_wish")
        if wish:  # asked for a callback while being put through, then hung up unanswered
            _, booked, _ = store.enqueue_callback(
                call_id, call.queue, wish, call.needs, call.priority, call.caller, now=now,
                line=store.noted(call_id, "callback_line") or "", lost=True)
            return _some(booked)
        return caller_left_while_ringing(store, call_id, now)
    try:
        return _some(store.end_call(call_id, reason=twilio_status, now=now))
    except UnknownCall:
        return ()


def caller_left_while_ringing(store: Any, call_id: str,
                              now: float | None = None) -> tuple[Assignment, ...]:
    """The caller hung up while the agent's phone rang: the answer never happened. The
    call is abandoned with its wait, the agent is free again (not paused)."""
    call = store.call(call_id)
    if call is None or not call.status.active:
        return ()
    agent_id = call.agent_id
    out: list[Assignment | None] = []
    if call.status == CallStatus.BRIDGED:
        _, again = store.bounce(call_id, now=now)  # undo the answer: back in line...
        out.append(again)
    if call.callback_number:  # a callback leg: the place is kept, we call again
        out = [a for a in out if a is not None]
    else:
        out.append(store.abandon(call_id, reason="hangup", now=now))  # ...and gone
    if agent_id:
        agent = store.agent(agent_id)
        if (agent is not None and agent.state == AgentState.PAUSED
                and agent.pause_reason == PauseReason.NO_ANSWER.value):
            out.append(store.set_state(agent_id, AgentState.AVAILABLE, now=now))
    return _some(*out, skip="" if call.callback_number else call_id)


def agent_leg_ended(store: Any, call_id: str, values: Mapping[str, str],
                    has_flow: bool, now: float | None = None) -> LegResult:
    """Twilio's Dial action for the agent's leg (``DialCallStatus``, and ``CallStatus``
    of the caller's own leg): release or requeue the call, say what the caller gets."""
    dialled = (values.get("DialCallStatus") or "").strip().lower()
    caller_gone = (values.get("CallStatus") or "").strip().lower() in FINAL_STATUSES
    call = store.call(call_id) if call_id else None
    if call is None:
        if caller_gone:
            return LegResult(LegOutcome.HANG_UP)
        return LegResult(LegOutcome.FLOW if has_flow and dialled == "completed"
                         else LegOutcome.APOLOGY)
    if dialled == "completed":  # they talked; whoever hung up first, the talk is over
        done: tuple[Assignment, ...] = ()
        if call.status == CallStatus.BRIDGED and call.agent_id:  # callbacks included
            done = _some(store.complete(call.agent_id, call_id, now=now))
        follow = LegOutcome.FLOW if has_flow and not caller_gone else LegOutcome.HANG_UP
        return LegResult(follow, done)
    if caller_gone:
        return LegResult(LegOutcome.HANG_UP, caller_left_while_ringing(store, call_id, now))
    # The agent's phone did not answer (no-answer, busy, failed, canceled): the caller
    # goes back to the head of the line and the agent is paused (no-answer).
    _, again = store.bounce(call_id, now=now)
    if call.callback_number:
        return LegResult(LegOutcome.CALL_BACK_LATER, _some(again))
    return LegResult(LegOutcome.HOLD_AGAIN if has_flow else LegOutcome.APOLOGY, _some(again))


class Accepted(str, Enum):
    BRIDGED = "bridged"  # the caller's live call now rings the agent
    ALREADY = "already_bridged"  # a repeated accept: nothing sent again
    CALLING_CUSTOMER = "calling_customer"  # a callback: bridged when the customer answers


#: The agent is waiting on the accept (and a web thread with them): one quick retry,
#: well inside the web server's timeout, then the call goes back to the head of the line.
BRIDGE_RETRY = RetryPolicy(attempts=2, base_delay=0.2, max_delay=0.5, timeout=(2.0, 5.0))

#: A put-through holds its reservation's claim this long while it runs (a double click
#: waits it out): longer than the slowest (BRIDGE_RETRY: two tries of up to 7 s). One
#: that died leaves the claim to lapse, so the hold's next request finishes the job.
BRIDGE_CLAIM_S = 30
#: Once Twilio has the caller ringing the agent, the reservation is put through for
#: good: no later accept or recovery job touches that call again.
BRIDGED_FOR_GOOD_S = 86400


def claim_name(call_id: str, reservation_id: str | None) -> str:
    """The claim a put-through of this reservation holds (while running, then for good)."""
    return f"bridge:{call_id}:{reservation_id or ''}"


def put_through_in_router(call: Call | None) -> bool:
    """The router has the call put through to an agent (not a callback: its customer
    never holds): whether Twilio heard of it is for the put-through's claim to say."""
    return (call is not None and call.status == CallStatus.BRIDGED
            and not call.callback_number and bool(call.agent_id))


def claim_lost_put_through(store: Any, call: Call) -> str | None:
    """``call`` is put through in the router, yet no put-through is running or done for
    its reservation (the claim lapsed: the process died before Twilio heard). Takes that
    claim -- so nobody else can ring the agent or undo the answer meanwhile -- and
    returns its name (give it back with ``store.release``); None when not lost."""
    if not put_through_in_router(call):
        return None
    claim = claim_name(call.call_id, call.reservation_id)
    if not store.claim(claim, ttl_s=BRIDGE_CLAIM_S):
        return None
    again = store.call(call.call_id)  # (the accept may have ended, or been undone, meanwhile)
    if not put_through_in_router(again) or again.reservation_id != call.reservation_id:
        store.release(claim)
        return None
    return claim


def put_through(store: Any, bridge: Bridge | None, agent_id: str, call_id: str,
                now: float | None = None) -> Accepted:
    """The agent accepts: the router marks the call answered (atomic: one agent only),
    then Twilio rings the agent. When Twilio refuses, the answer is undone: the call goes
    back to the head of the line (the agent paused), or, when the caller has already
    hung up, is ended as abandoned (the agent freed). Raises :class:`CallerGone` (409)
    or :class:`BridgeError` (502) with the reason; the reservations made are on it.

    A repeated accept of a call already put through to this agent sends nothing again
    (it would restart the agent's leg mid-conversation); a callback's reservation is
    put through when the customer answers our call, so accepting it changes nothing."""
    call = store.call(call_id)
    if call is None:
        raise UnknownCall(f"no call {call_id!r} in the router")
    if not call.status.active:
        raise CallerGone(f"call {call_id} is already over ({call.status.value})")
    if call.agent_id == agent_id and call.status == CallStatus.BRIDGED:
        return Accepted.ALREADY
    if call.callback_number and call.agent_id == agent_id:
        return Accepted.CALLING_CUSTOMER
    if call.agent_id != agent_id:  # (before the claim: it is that reservation's)
        raise InvalidTransition(f"call {call_id} is {call.status.value} and not at agent "
                                f"{agent_id}")
    if bridge is None:
        raise NotReachable("no bridge configured in this app: the agent cannot be rung")
    bridge.check(agent_id)  # a configuration gap changes nothing: fix it, accept again
    claim = claim_name(call_id, call.reservation_id)
    if not store.claim(claim, ttl_s=BRIDGE_CLAIM_S):
        return Accepted.ALREADY  # a concurrent accept is putting it through right now
    bridge.forget_answer(call_id)  # an earlier talk's pick-up is not this leg's
    try:
        store.accept(agent_id, call_id, now=now)
    except Exception:
        store.release(claim)
        raise
    try:
        bridge.connect(agent_id, call_id)
    except Exception as exc:
        error = _undo(store, call_id, agent_id, exc, now)
        store.release(claim)
        raise error from exc
    store.keep_claim(claim, BRIDGED_FOR_GOOD_S)
    return Accepted.BRIDGED


def _undo(store: Any, call_id: str, agent_id: str, exc: Exception,
          now: float | None) -> BridgeError:
    """Twilio refused to put the caller through: undo the answer (the caller gone: ended
    as abandoned; else back to the head of the line, the agent paused)."""
    gone = getattr(exc, "status", None) == 404 or getattr(exc, "code", None) in GONE_CODES
    error: BridgeError
    if gone:
        error = CallerGone(f"the caller of {call_id} has already hung up (Twilio: {exc})",
                           caller_left_while_ringing(store, call_id, now))
    else:
        _, again = store.bounce(call_id, now=now)
        error = BridgeError(f"could not ring agent {agent_id} ({exc}); the call is back "
                            "at the head of the line and the agent paused (no_answer)",
                            _some(again))
    log.warning("accept of %s by %s undone: %s", call_id, agent_id, error,
                exc_info=not isinstance(exc, (IvrError, OSError, TwilioRestError)))
    return error


def put_through_again(store: Any, bridge: Bridge | None, call_id: str,
                      now: float | None = None) -> tuple[Assignment, ...]:
    """Twilio asks for the hold of a call the router has put through to an agent: the
    caller is still in Twilio's queue, so the accept's REST update never reached Twilio
    (the process died between the router's accept and the update). Ring the agent now,
    as that accept would have; when Twilio refuses, the answer is undone as in
    :func:`put_through`. Nothing is done while that accept may still be running (its
    claim lasts :data:`BRIDGE_CLAIM_S`), nor for a callback (its customer does not hold).
    Returns the reservations made while undoing, for the caller to dispatch."""
    call = store.call(call_id)
    if bridge is None or call is None:
        return ()
    claim = claim_lost_put_through(store, call)
    if claim is None:
        return ()  # being put through, put through for good, or not put through at all
    if bridge.agent_answered(call_id):
        store.release(claim)
        return ()
    agent_id = call.agent_id
    assert agent_id is not None  # (put through in the router: at an agent)
    log.warning("call %s is holding although agent %s accepted it: its put-through was "
                "lost; ringing the agent now", call_id, agent_id)
    try:
        bridge.check(agent_id)
        bridge.connect(agent_id, call_id)
    except Exception as exc:  # noqa: BLE001 -- undone; the caller's hold goes on
        store.release(claim)
        return _undo(store, call_id, agent_id, exc, now).assignments
    store.keep_claim(claim, BRIDGED_FOR_GOOD_S)
    return ()


def rebridge(call_id: str) -> None:
    """RQ job (``high``): :func:`put_through_again` on the worker, with its Twilio client,
    so the hold's webhook answers at once however slow Twilio is."""
    from queueing import jobs

    store = jobs.job_store()
    rest: Any = jobs.outbound()
    if rest is not None:  # the put-through's own tries: all done within BRIDGE_CLAIM_S
        rest = copy.copy(rest)
        rest.retry = BRIDGE_RETRY
    bridge = Bridge(store.redis, rest) if rest is not None else None
    if bridge is None:
        log.warning("call %s holds although its agent accepted it, and this worker has no "
                    "Twilio client (TWILIO_ACCOUNT_SID) to put it through", call_id)
    jobs.follow_up(list(put_through_again(store, bridge, call_id)))


class Bridge:
    def __init__(self, client: redis.Redis, rest: Any | None) -> None:
        self.client = client
        self.rest = rest

    def set_contact(self, agent_id: str, contact: str) -> None:
        self.client.hset(CONTACTS, agent_id, contact)

    def mark_answered(self, call_id: str) -> None:
        """The agent picked up the leg we rang for ``call_id`` (kept a day)."""
        self.client.set(ANSWERED + call_id, "1", ex=86400)

    def agent_answered(self, call_id: str) -> bool:
        return bool(self.client.exists(ANSWERED + call_id))

    def forget_answer(self, call_id: str) -> None:
        """A new leg to an agent starts: an earlier leg's pick-up no longer counts."""
        self.client.delete(ANSWERED + call_id)

    def contact(self, agent_id: str) -> str | None:
        value = self.client.hget(CONTACTS, agent_id)
        return str(value) if value else None

    def language_of(self, call_sid: str) -> str | None:
        raw = self.client.hget(f"ivr:call:{call_sid}", "session")
        try:
            return json.loads(raw).get("language") if raw else None
        except ValueError:
            return None

    def twiml_for(self, agent_id: str, call_sid: str, callback: bool = False) -> str:
        """The <Dial> of a new leg to the agent (an earlier leg's pick-up is forgotten)."""
        contact = self.contact(agent_id)
        if not contact:
            raise BridgeError(f"agent {agent_id!r} has no contact: PUT /api/agents/{agent_id} "
                              'with {"contact": "+34..." | "client:name"}')
        self.client.delete(ANSWERED + call_sid)
        return render.connect_to_agent(contact, self.language_of(call_sid), callback=callback,
                                       call_id=call_sid)

    def check(self, agent_id: str) -> None:
        """Raise :class:`NotReachable` when this agent cannot be rung at all."""
        if not self.contact(agent_id):
            raise NotReachable(f"agent {agent_id!r} has no contact: PUT /api/agents/{agent_id} "
                               'with {"contact": "+34..." | "client:name"}, then accept again')
        if self.rest is None or not getattr(self.rest, "enabled", True):
            raise NotReachable("outbound REST calls are disabled (TWILIO_ACCOUNT_SID unset): "
                               "the caller cannot be put through to the agent")
        if not (getattr(self.rest, "public_url", None) or REQUEST_BASE.get()):
            raise NotReachable("IVR_PUBLIC_URL is not set: the agent's <Dial> sent to the "
                               "live call needs the absolute URL Twilio reports back to")

    def connect(self, agent_id: str, call_sid: str) -> None:
        """Take the caller out of the hold and ring the agent (:func:`put_through` has
        made :meth:`check` before accepting: not repeated here)."""
        twiml = self.twiml_for(agent_id, call_sid)
        if self.rest is None:
            raise NotReachable("outbound REST calls are disabled (TWILIO_ACCOUNT_SID unset)")
        self.rest.update_call(call_sid, twiml=twiml)
        log.info("call %s put through to agent %s", call_sid, agent_id)
