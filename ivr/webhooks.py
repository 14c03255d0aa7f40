"""Twilio's webhooks: thin views over :class:`ivr.calls.CallService`.

Each view: check the signature → hand the parameters to the call service → answer
TwiML as ``text/xml``. ``guarded`` turns any internal failure into an apology and
the general queue: Twilio never gets a 5xx or invalid TwiML from us.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import redis
from flask import Blueprint, Response, request

from call_flows import actions as a
from ivr import bridge, calls, hold, render
from ivr.security import twilio_signed
from ivr.services import current

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__)

FINAL_STATUSES = bridge.FINAL_STATUSES


def twiml(body: str) -> Response:
    return Response(body, status=200, mimetype="text/xml")


def guarded(view: Callable[..., Response]) -> Callable[..., Response]:
    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        try:
            return view(*args, **kwargs)
        except Exception:
            log.exception("webhook %s failed: the caller hears an apology", request.path)
            return twiml(render.apology(None))

    return wrapper


def service() -> calls.CallService:
    svc: calls.CallService = current().get("calls")
    return svc


# The call's own webhooks: one table, answered by :func:`answer` from the Flask views
# below and from the WSGI fast path (:mod:`ivr.fastpath`) alike.
RESUME_EVENTS: dict[str, Callable[[Any, Any], Any]] = {
    "/voice/step": calls.gather_event,
    "/voice/recording": calls.recording_event,
    "/voice/queue-result": calls.queue_event,
    "/voice/dial-result": calls.dial_event,
}
FAST_ROUTES = frozenset({"/voice/incoming", *RESUME_EVENTS})


def answer(svc: calls.CallService, path: str, args: Mapping[str, str],
           values: Mapping[str, str]) -> str:
    """TwiML for a call webhook; any failure inside gives the apology, never an error."""
    try:
        if path == "/voice/incoming":
            return svc.incoming(values)
        token = args.get("s", "")
        if path == "/voice/queue-result" and not token:
            return render.hangup()  # the apology path's queue: nothing more to do
        return svc.resume(token, values, RESUME_EVENTS[path])
    except Exception:
        log.exception("webhook %s failed: the caller hears an apology", path)
        return render.apology(None)


@bp.post("/voice/incoming")
@bp.post("/voice/step")
@bp.post("/voice/recording")
@bp.post("/voice/queue-result")
@bp.post("/voice/dial-result")
@twilio_signed
def call_webhook() -> Response:
    return twiml(answer(service(), request.path, request.args, request.values))


@bp.post("/voice/wait")
@twilio_signed
@guarded
def wait() -> Response:
    return twiml(hold.wait_twiml(service(), request.args.get("s", ""), request.values))


@bp.post("/voice/hold-key")
@twilio_signed
@guarded
def hold_key() -> Response:
    return twiml(hold.key_twiml(request.values))


@bp.post("/voice/fallback")
@twilio_signed
def fallback() -> Response:
    """The number's Fallback URL: Twilio calls it when our Voice URL failed."""
    log.error("Twilio used the fallback URL (ErrorCode=%s ErrorUrl=%s)",
              request.values.get("ErrorCode"), request.values.get("ErrorUrl"))
    return twiml(render.apology(None))


@bp.post("/voice/status")
@twilio_signed
def status() -> Response:
    """Status callbacks: idempotent by CallSid + status + SequenceNumber, any order."""
    values = request.values
    call_sid = values.get("CallSid", "")
    if not calls.valid_call_sid(call_sid):
        return Response("CallSid missing or malformed\n", status=400, mimetype="text/plain")
    call_status = (values.get("CallStatus") or "unknown").strip().lower()[:20]
    data = {"kind": "status", "status": call_status,
            "duration": values.get("CallDuration"), "at": time.time(),
            "sequence": values.get("SequenceNumber", "")}
    services = current()
    records = services.get("call_records")
    final = call_status in FINAL_STATUSES
    caller = calls.normalize_number(values.get("From", ""))
    sequence = values.get("SequenceNumber", "") or values.get("Timestamp", "")
    number = caller if caller.startswith("+") else None
    on_end = services.components.get("on_call_end")
    # record() may run later in the writer's thread (Redis down): no app context there.
    store = services.components.get("queue")
    dispatch = services.components.get("queue_dispatch")
    legs = services.components.get("bridge")

    def record() -> None:
        if records.record_status(call_sid, call_status, sequence, final, data, number,
                                 time.time()) == 1:
            # The first time the call is seen ending: the router lets it go, then file it.
            _end_in_router(store, dispatch, call_sid, call_status, legs)
            if on_end is not None:
                on_end(call_sid)

    if final:
        service().ended.add(call_sid)
    try:
        record()
    except redis.RedisError as exc:
        # Never a 5xx to Twilio: kept and written when Redis is back.
        log.warning("status of %s kept for later: Redis unavailable (%s)", call_sid, exc)
        services.components["writer"].defer(record)
    return Response(status=204)


def _dispatch(assignments: tuple[Any, ...]) -> None:
    dispatch = current().components.get("queue_dispatch")
    for assignment in assignments:
        if dispatch is not None:
            dispatch(assignment)


def _end_in_router(store: Any, dispatch: Callable[[Any], None] | None, call_sid: str,
                   call_status: str, legs: Any = None) -> None:
    """A final status: the router's call ends too (no ghost left waiting for an agent)."""
    if store is None:
        return
    try:
        answered = legs.agent_answered(call_sid) if legs is not None else None
        for assignment in bridge.call_ended(store, call_sid, call_status,
                                            agent_answered=answered):
            if dispatch is not None:
                dispatch(assignment)
    except Exception:  # never a 5xx to Twilio: reconciliation ends it at the latest
        log.exception("call %s ended (%s) but the router could not be told", call_sid,
                      call_status)


@bp.post("/voice/recording-status")
@twilio_signed
def recording_status() -> Response:
    """A whole-call recording is complete: fetch, encrypt, delete from Twilio and
    transcribe it in the background, once per RecordingSid (duplicates are harmless)."""
    from ivr import worker
    from recordings.call_recordings import queue_call_recording

    services = current()
    connection = services.components.get("rq_connection") or services.components.setdefault(
        "rq_connection", worker.connection(services.settings))
    values = request.values.to_dict()
    try:
        status, text = queue_call_recording(connection, values)
    except redis.RedisError as exc:  # never a 5xx: queued once Redis is back
        log.warning("recording of %s kept for later: Redis unavailable (%s)",
                    values.get("CallSid"), exc)
        services.components["writer"].defer(lambda: queue_call_recording(connection, values))
        status, text = 204, ""
    except Exception:  # never a 5xx to Twilio; the reconcile/retention jobs see the call
        log.exception("recording callback for %s not queued", values.get("CallSid"))
        status, text = 204, ""
    return Response(text, status=status, mimetype="text/plain")


@bp.post("/voice/callback")
@twilio_signed
@guarded
def callback_answered() -> Response:
    """The customer we called back answered: put them through to the reserved agent."""
    services = current()
    call_id = request.args.get("call", "")
    store = services.components.get("queue")
    legs = services.components.get("bridge")
    call = store.call(call_id) if store is not None and call_id else None
    if call is None or not call.agent_id or legs is None:
        log.warning("callback answered for %r with no reserved agent", call_id)
        return twiml(render.apology(None))
    return twiml(legs.twiml_for(call.agent_id, call_id, callback=True))


@bp.post("/voice/callback-status")
@twilio_signed
def callback_status() -> Response:
    """Status of a callback leg: answered, or retry later / give up (idempotent)."""
    from queueing.callbacks import on_status

    services = current()
    call_id = request.args.get("call", "")
    store = services.components.get("queue")
    if store is None or not call_id:
        return Response("unknown callback\n", status=400, mimetype="text/plain")
    status_value = (request.values.get("CallStatus") or "").strip().lower()
    try:
        legs = services.components.get("bridge")
        on_status(store, call_id, status_value,
                  leg_sid=request.values.get("CallSid") or None,
                  reservation_id=request.args.get("res") or None,
                  dispatch=services.components.get("queue_dispatch"),
                  agent_joined=legs.agent_answered(call_id) if legs is not None else None)
    except Exception:
        log.exception("callback status for %s not applied", call_id)
    return Response(status=204)


@bp.post(render.AGENT_ANSWERED_PATH)
@twilio_signed
def agent_answered() -> Response:
    """The agent picked up (Twilio runs this on their leg before joining it to the
    caller): noted, and an empty document so the two are joined at once. Whatever
    happens here the answer is that empty document: anything else would be played to
    the agent, or hang their leg up."""
    call_id = request.args.get("call", "")
    legs = current().components.get("bridge")
    try:
        if call_id and legs is not None:
            legs.mark_answered(call_id)
    except Exception:  # never break the bridge over a note
        log.exception("agent answered %s: not noted", call_id)
    return twiml("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response />")


@bp.post("/voice/agent-dial-result")
@twilio_signed
@guarded
def agent_dial_result() -> Response:
    """The agent's leg ended (Twilio's Dial action; ``?call=`` names the router's call,
    which for a callback is not this leg's CallSid). Talked: the call is over, and a
    caller still on the line goes on in their flow (the survey). The agent's phone did
    not answer: back to the head of the line (the agent paused) and holding again, or
    for a callback, called again later. The caller hung up meanwhile: abandoned, the
    agent freed. Idempotent: a repeated request changes nothing twice."""
    from call_flows.session import Session

    values = request.values
    call_sid = values.get("CallSid", "")
    call_id = request.args.get("call") or call_sid
    store = current().components.get("queue")
    raw = current().get("call_records").session(call_sid) if calls.valid_call_sid(
        call_sid) else None
    if store is None:
        return twiml(render.apology(None))
    result = bridge.agent_leg_ended(store, call_id, values, has_flow=raw is not None)
    _dispatch(result.assignments)
    outcome = result.outcome
    now = datetime.fromtimestamp(service().clock(), UTC)  # the calls' own clock
    session = Session.from_dict(raw) if raw is not None else None
    if outcome is bridge.LegOutcome.FLOW and session is not None:
        return twiml(service().advance(session, calls.dial_event(values, now)))
    if outcome is bridge.LegOutcome.HOLD_AGAIN and session is not None:
        again = service().advance(session, a.Continue(now=now))  # the queue node: <Enqueue>
        return twiml(render.with_notice(again, session.language, render.AGENT_MISSED))
    if outcome is bridge.LegOutcome.CALL_BACK_LATER:
        language = _language_of(call_id)
        return twiml(render.with_notice(render.hangup(), language, bridge.CALLBACK_MISSED))
    if outcome is bridge.LegOutcome.APOLOGY:
        return twiml(render.apology(None))
    return twiml(render.hangup())


def _language_of(call_id: str) -> str | None:
    """The language of the router call's own flow session, if we still hold it."""
    components = current().components
    legs = components.get("bridge")
    return legs.language_of(call_id) if legs is not None else None
