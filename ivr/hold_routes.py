"""Ways out of the hold besides an agent: a voicemail once the call has aged, and a
callback asked for by voice ("llámenme").

Twilio's hold document (``<Enqueue waitUrl>``) may only Play, Say, Pause, Gather,
Redirect, Leave and Hangup: no ``<Record>``, and ``<Leave>`` always ends at the
Enqueue's action (the flow's callback offer). So both exits take the call out of
Twilio's queue with a REST update of the live call (``Calls/{sid}`` with ``Url=`` one
of the routes below). Twilio then posts ``QueueResult=redirected`` to the Enqueue's
action (the flow answers with a pause that Twilio ignores) and fetches our URL.

* Key 2 while the voicemail is offered (:func:`ivr.hold.key_twiml`) →
  ``/voice/hold-voicemail``: the call leaves the router as voicemail (no agent is
  reserved for it later), hears the prompt and the beep, ``<Record>`` →
  ``/voice/hold-voicemail-done``: the message is filed like every voicemail (a
  ``recording`` event: the after-call job fetches, encrypts and transcribes it),
  thanks, hang up.
* "llámenme" heard on the call's media stream (:class:`ivr.media_streams.LiveTurns`)
  → ``/voice/hold-callback``: the flow steps as if the caller had pressed 1
  (``QueueLeft(leave)`` → the queue node's ``on_leave``: the callback that keeps the
  place).

Steps: the hold's token is the Enqueue step's (``seq`` N) and Twilio's ``redirected``
answer is step N+1, so these exits continue from N+1 (:func:`past_redirect`): no step
record of theirs is deduplicated away by the call's records.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, request

from call_flows import actions as a
from call_flows.session import Session
from ivr import render, security
from ivr.security import twilio_signed
from ivr.services import current
from ivr.state import dumps
from ivr.webhooks import guarded, twiml

log = logging.getLogger(__name__)
bp = Blueprint("hold_routes", __name__)

VOICEMAIL_ROUTE = "hold-voicemail"
VOICEMAIL_DONE_ROUTE = "hold-voicemail-done"
CALLBACK_ROUTE = "hold-callback"
VOICEMAIL_MAX_S = 120
"""Longest message (``<Record maxLength>``); a hold voicemail is a short note."""
VOICEMAIL_SILENCE_S = 5
"""Seconds of silence that end the message."""

TEXTS = {
    "es": {"prompt": "Deje su mensaje después de la señal y pulse almohadilla al terminar.",
           "thanks": "Gracias, hemos recibido su mensaje. Le responderemos lo antes posible. Adiós.",
           "none": "No hemos recibido ningún mensaje. Adiós."},
    "ca": {"prompt": "Deixeu el vostre missatge després del senyal i premeu coixinet en acabar.",
           "thanks": "Gràcies, hem rebut el vostre missatge. Us respondrem tan aviat com puguem. Adéu.",
           "none": "No hem rebut cap missatge. Adéu."},
    "en": {"prompt": "Please leave your message after the tone and press the pound key when you are done.",
           "thanks": "Thank you, we have your message. We will get back to you as soon as we can. Goodbye.",
           "none": "We did not receive a message. Goodbye."},
}


class HoldExitError(Exception):
    """The call could not be taken out of the hold (it holds on; keys still work)."""


def texts(language: str | None) -> Mapping[str, str]:
    return TEXTS.get(language or "es", TEXTS["es"])


def public_base(settings: Any) -> str | None:
    """The base URL Twilio reaches us on: ``IVR_PUBLIC_URL``, else the request's own."""
    return security.public_base(getattr(settings, "public_url", None))


def past_redirect(session: Session) -> Session:
    """The session as of after Twilio's ``redirected`` step (see the module's note)."""
    return replace(session, seq=session.seq + 1)


def seal(service: Any, session: Session) -> tuple[str, str]:
    """(state JSON, token) of ``session``: one serialisation for Redis and the URL."""
    state = dumps(session.to_dict())
    return state, service.codec.seal(state.encode())


def redirect(rest: Any, call_sid: str, base: str | None, route: str, token: str) -> str:
    """Move the live call (out of Twilio's queue) to ``route``; the URL it was sent to.
    Raises HoldExitError when Twilio could not be asked or said no."""
    if not base:
        raise HoldExitError("no public URL to send the call to: set IVR_PUBLIC_URL")
    if rest is None or not getattr(rest, "enabled", True):
        raise HoldExitError("the Twilio REST API is not configured (TWILIO_ACCOUNT_SID)")
    url = f"{base}/voice/{route}?s={quote(token, safe='')}"
    try:
        rest.update_call(call_sid, url=url, method="POST")
    except Exception as exc:
        raise HoldExitError(f"Twilio did not move call {call_sid}: {exc}") from exc
    return url


def rest_client(services: Any) -> Any | None:
    """The app's REST client for live-call updates from webhooks (built once), or None
    when Twilio's REST API is not configured."""
    settings = services.settings
    if not (settings.twilio_account_sid and settings.twilio_auth_token):
        return None
    client = services.components.get("hold_rest")
    if client is None:
        from ivr.twilio_rest import RECORDER_RETRY, TwilioRest

        client = services.components.setdefault(
            "hold_rest", TwilioRest.from_settings(settings, retry=RECORDER_RETRY))
    return client


# ----------------------------------------------------------------------------- voicemail


def voicemail_twiml(service: Any, token: str, params: Mapping[str, str],
                    dispatch: Callable[[Any], None] | None = None) -> str:
    """The caller chose the voicemail: out of the router, the prompt, ``<Record>``."""
    held = service.session_of(token, params) if token else None
    if held is None:
        return render.apology(None)
    if held.ended or held.call_sid in service.ended:
        return render.hangup()
    session = past_redirect(held)
    wait_s = _leave_router(service, session.call_sid, dispatch)
    records = [{"kind": "queue_left", "result": "voicemail", "wait_s": wait_s,
                "at": service.clock()}]
    session = replace(session, seq=session.seq + 1, pending={**session.pending,
                                                             "hold": "voicemail"})
    state, sealed = seal(service, session)
    service.writer.submit((session.call_sid, session.seq, state, records))
    lang = session.language or "es"
    return render.hold_voicemail(lang, texts(lang)["prompt"], sealed,
                                 max_length_s=VOICEMAIL_MAX_S, silence_s=VOICEMAIL_SILENCE_S)


def _leave_router(service: Any, call_sid: str, dispatch: Callable[[Any], None] | None
                  ) -> int | None:
    """Take the call out of the line as voicemail; its wait in seconds when known."""
    store = getattr(service.queue, "store", None)
    if store is None:
        return None
    try:
        call = store.call(call_sid)
        assignment = store.end_call(call_sid, reason="voicemail")
    except Exception:
        log.exception("call %s: the router could not take the call out as voicemail", call_sid)
        return None
    if assignment is not None and dispatch is not None:
        dispatch(assignment)  # the agent freed by a ringing reservation takes the next call
    return max(0, int(service.clock() - call.entered_at)) if call is not None else None


def voicemail_done_twiml(service: Any, token: str, params: Mapping[str, str]) -> str:
    """The message is recorded (or nothing was): file it, thank the caller, hang up."""
    from ivr.calls import recording_event

    session = service.session_of(token, params) if token else None
    if session is None:
        return render.apology(None)
    lang = session.language or "es"
    event = recording_event(params, datetime.fromtimestamp(service.clock(), tz=UTC))
    records: list[dict[str, Any]] = []
    if isinstance(event, a.RecordingDone):
        records.append({"kind": "recording", "recording_sid": params.get("RecordingSid", "")[:64],
                        "url": event.recording_url, "purpose": "voicemail",
                        "duration_s": event.duration_s, "at": service.clock()})
        records.append({"node": session.node, "type": "queue",
                        "input": f"recording:{event.duration_s}s", "outcome": "recorded"})
        outcome, said = "voicemail", _thanks(service, session, lang)
    else:
        records.append({"node": session.node, "type": "queue", "input": "no_input",
                        "outcome": "no_recording"})
        outcome, said = "hangup", texts(lang)["none"]
    done = replace(session, seq=session.seq + 1, ended=True, outcome=outcome,
                   pending={k: v for k, v in session.pending.items() if k != "hold"})
    state, _ = seal(service, done)
    service.writer.submit((done.call_sid, done.seq, state, records))
    return render.say_and_hang_up(lang, said)


def _thanks(service: Any, session: Session, lang: str) -> str:
    """The flow's own ``voicemail_thanks`` wording when it has one, else ours."""
    registry = getattr(service.engine, "registry", None)
    flow = registry.get(session.flow, session.flow_version) if registry is not None else None
    own = (flow.messages.get("voicemail_thanks") or {}).get(lang) if flow is not None else None
    template = getattr(own, "template", None)
    if template is not None and not template.refs:
        return str(template.render({}) or texts(lang)["thanks"])
    return texts(lang)["thanks"]


# ----------------------------------------------------------------------------- callback


def callback_twiml(service: Any, token: str, params: Mapping[str, str]) -> str:
    """"Llámenme" was heard while holding: the flow goes on as if 1 had been pressed."""
    held = service.session_of(token, params) if token else None
    if held is None:
        return render.apology(None)
    waited = waited_s(service, held.call_sid)

    def left(_values: Mapping[str, str], now: datetime) -> a.Event:
        return a.QueueLeft(result="leave", wait_s=waited, now=now)

    return str(service.resume(token, params, left))


def waited_s(service: Any, call_sid: str) -> int:
    """How long the call has held, from the router (0 when unknown)."""
    store = getattr(service.queue, "store", None)
    call = store.call(call_sid) if store is not None else None
    return max(0, int(service.clock() - call.entered_at)) if call is not None else 0


def callback_by_voice(turns: Any, session: Session, node: Any, flow: Any,
                      utterance: Any) -> str | None:
    """Speech heard on the call's stream while it holds (``turns``:
    :class:`ivr.media_streams.LiveTurns`). Only a callback request ("llámenme") counts,
    heard cleanly, while the router still has the call waiting (never once an agent is
    ringing or talking to the caller), on a queue that takes callbacks (``on_leave``).
    Then the live call leaves Twilio's queue for the callback offer, exactly as if 1
    had been pressed; what it was updated with (URL or TwiML) is returned. Anything
    else is dropped: the caller holds on, music and keys unchanged."""
    from speech.endpointing import EndReason
    from speech.grammars import is_callback_request

    sid = session.call_sid
    result = utterance.result
    # A clean grammar decode (no garbage words, plausible timing: ``reason`` empty) above
    # the flow's low confidence: the callback offer that follows asks the caller to
    # confirm anyway, as the engine confirms a menu choice heard in that band.
    wanted = (utterance.end_reason is not EndReason.DISCONNECTED and not result.reason
              and is_callback_request(result.text, utterance.language)
              and result.confidence > float(getattr(flow, "low_confidence", 0.45)))
    if not wanted:
        log.info("call %s: speech while holding is no callback request; ignored", sid)
        return None
    if not node.on_leave:
        log.info("call %s: asked for a callback but queue node %s takes none", sid, node.id)
        return None
    if session.ended or turns.records.is_ended(sid) or not _still_waiting(turns.calls, sid):
        log.info("call %s: asked for a callback but no longer waits; ignored", sid)
        return None
    after = past_redirect(session)
    if not turns.public_url:  # no URL to send the call to: the offer's TwiML itself
        twiml = turns.calls.advance(after, a.QueueLeft(
            result="leave", wait_s=waited_s(turns.calls, sid),
            now=datetime.fromtimestamp(turns.clock(), tz=UTC)))
        return str(twiml) if turns._update(sid, twiml) else None
    _state, token = seal(turns.calls, after)
    try:
        url = redirect(turns.rest, sid, turns.public_url, CALLBACK_ROUTE, token)
    except HoldExitError as exc:
        log.warning("call %s asked for a callback but holds on: %s", sid, exc)
        return None
    log.info("call %s: callback asked for by voice; out of the hold", sid)
    return url


def _still_waiting(service: Any, call_sid: str) -> bool:
    store = getattr(service.queue, "store", None)
    if store is None:
        return False  # without the router nothing says no agent is on the line
    call = store.call(call_sid)
    return call is not None and str(getattr(call.status, "value", call.status)) == "waiting"


# ----------------------------------------------------------------------------- views


@bp.post(f"/voice/{VOICEMAIL_ROUTE}")
@twilio_signed
@guarded
def hold_voicemail() -> Response:
    components = current().components
    return twiml(voicemail_twiml(components["calls"], request.args.get("s", ""),
                                 request.values, components.get("queue_dispatch")))


@bp.post(f"/voice/{VOICEMAIL_DONE_ROUTE}")
@twilio_signed
@guarded
def hold_voicemail_done() -> Response:
    return twiml(voicemail_done_twiml(current().components["calls"],
                                      request.args.get("s", ""), request.values))


@bp.post(f"/voice/{CALLBACK_ROUTE}")
@twilio_signed
@guarded
def hold_callback() -> Response:
    return twiml(callback_twiml(current().components["calls"],
                                request.args.get("s", ""), request.values))
