"""What a caller hears while holding: honest position and wait, music, a way out.

Twilio requests the ``waitUrl`` again each time its TwiML finishes, so the length of
the music IS the announcement period. Each period the caller hears their position and
the estimated wait (a range when uncertain), as their queue's rules allow
(``announce_position``, ``announce_estimate``), then ``announce_every_s`` seconds of
music: the 30-second clip looped, plus one shorter clip for the remainder. Once the
router says the caller may have a callback (``offer_callback_after_s``) they hear the
offer; pressing 1 asks for a callback that keeps their place (``<Leave>`` → the flow's
callback node) at any time, before the offer too, unless the queue takes no callbacks.
When nobody signed in could take the call, the caller is told so plainly and offered
the callback at once, instead of a position and a wait nobody can keep. Once the call
has aged into its queue's ``offer_voicemail`` step, each period ends with the way to
leave a message (key 2: :mod:`ivr.hold_routes` takes it from there).
"""

from __future__ import annotations

import io
import logging
import math
import wave
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import numpy as np

from call_flows.model import NodeType
from ivr import render
from queueing.rules import QueueRules

log = logging.getLogger(__name__)

MUSIC_SECONDS = 30  # the main clip, /static/hold.wav
MUSIC_URL = "/static/hold.wav"

TEXTS = {
    "es": {
        "position": "Está en la posición {n}.",
        "first": "Es el siguiente en ser atendido.",
        "range": "El tiempo de espera estimado es de entre {lo} y {hi} minutos.",
        "under": "El tiempo de espera estimado es de menos de un minuto.",
        "about": "El tiempo de espera estimado es de unos {m} minutos.",
        "unknown": "Le atenderemos lo antes posible.",
        "offer": "Si prefiere que le llamemos sin perder su turno, pulse 1 en cualquier momento.",
        "unstaffed": "Ahora mismo no hay ningún agente conectado que pueda atender su consulta. Mantenemos su turno.",
        "voicemail": "Si lo prefiere, deje un mensaje tras la señal pulsando 2.",
    },
    "ca": {
        "position": "Esteu a la posició {n}.",
        "first": "Sou el següent a ser atès.",
        "range": "El temps d'espera estimat és d'entre {lo} i {hi} minuts.",
        "under": "El temps d'espera estimat és de menys d'un minut.",
        "about": "El temps d'espera estimat és d'uns {m} minuts.",
        "unknown": "Us atendrem tan aviat com puguem.",
        "offer": "Si preferiu que us truquem sense perdre el torn, premeu 1 en qualsevol moment.",
        "unstaffed": "Ara mateix no hi ha cap agent connectat que pugui atendre la vostra consulta. Us mantenim el torn.",
        "voicemail": "Si ho preferiu, deixeu un missatge després del senyal prement 2.",
    },
    "en": {
        "position": "You are number {n} in line.",
        "first": "You are next in line.",
        "range": "The estimated wait is between {lo} and {hi} minutes.",
        "under": "The estimated wait is less than a minute.",
        "about": "The estimated wait is about {m} minutes.",
        "unknown": "We will be with you as soon as we can.",
        "offer": "If you would rather we call you back without losing your place, press 1 at any time.",
        "unstaffed": "Right now no agent who can take your call is signed in. We are keeping your place.",
        "voicemail": "If you prefer, leave a message after the tone by pressing 2.",
    },
}


def announcement(language: str, position: int | None, low_s: float | None,
                 high_s: float | None, *, estimate: bool = True,
                 offer: bool = True, staffed: bool = True,
                 voicemail: bool = False) -> list[str]:
    """Sentences for one announcement; the wait is rounded outwards, never flattering.

    ``position`` None says no position; ``estimate`` False says nothing of the wait;
    ``offer`` False leaves out the callback offer; ``staffed`` False (nobody signed in
    could take the call) says so instead of a position and a wait nobody can keep;
    ``voicemail`` True (the call has aged into its queue's ``offer_voicemail`` step)
    ends with the way to leave a message.
    """
    t = TEXTS.get(language, TEXTS["es"])
    out: list[str] = []
    if not staffed:
        out = [t["unstaffed"], t["offer"]] if offer else [t["unstaffed"]]
        return out + [t["voicemail"]] if voicemail else out
    if position is not None and position >= 1:
        out.append(t["first"] if position == 1 else t["position"].format(n=position))
    if not estimate:
        pass
    elif low_s is None or high_s is None:
        out.append(t["unknown"])
    elif high_s < 60:
        out.append(t["under"])
    else:
        lo = max(1, math.floor(low_s / 60))
        hi = max(lo, math.ceil(high_s / 60))
        if hi - lo <= 1:
            out.append(t["about"].format(m=hi))
        else:
            out.append(t["range"].format(lo=lo, hi=hi))
    if offer:
        out.append(t["offer"])
    if voicemail:
        out.append(t["voicemail"])
    return out


def music_plan(every_s: int) -> list[tuple[str, int]]:
    """(clip URL, loop count) whose lengths add up to ``every_s`` seconds."""
    whole, rest = divmod(int(every_s), MUSIC_SECONDS)
    plan = [(MUSIC_URL, whole)] if whole else []
    if rest:
        plan.append((f"/static/hold-{rest}.wav", 1))
    return plan


def queue_rules(service: Any, session: Any) -> QueueRules:
    """The rules of the queue the caller holds in; the built-in ones when unknown."""
    store = getattr(service.queue, "store", None)
    if session is None or store is None:
        return QueueRules()
    try:
        rules = store.rules()
        name = _queue_of(service, session)
        if name is None:
            held = store.call(session.call_sid)
            name = held.queue if held is not None else None
        return rules.for_queue(name) if name else rules.default
    except Exception:
        log.warning("queue rules unavailable for %s: built-in ones used", session.call_sid,
                    exc_info=True)
        return QueueRules()


def _queue_of(service: Any, session: Any) -> str | None:
    """The queue named by the flow node the call is holding at (no I/O)."""
    registry = getattr(getattr(service, "engine", None), "registry", None)
    flow = registry.get(session.flow, session.flow_version) if registry is not None else None
    node = flow.nodes.get(session.node) if flow is not None else None
    return node.queue if node is not None and node.type == NodeType.QUEUE else None


def _int(raw: str | None) -> int | None:
    try:
        return int(raw) if raw not in (None, "") else None
    except ValueError:
        return None


def wait_twiml(service: Any, token: str, params: Mapping[str, str]) -> str:
    session = service.session_of(token, params) if token else None
    language = (session.language if session else None) or "es"
    rules = queue_rules(service, session)
    position = _int(params.get("QueuePosition"))
    low = high = None
    estimate = None
    offer = True  # without our router (or if it fails) the offer stands, as Twilio's queue
    staffed = True
    if session is not None and service.queue is not None:
        try:
            estimate = service.queue.estimate(session.call_sid)
            staffed = estimate is None or estimate.staffed
            # Spoken once the queue's threshold has passed, at once when nobody could answer.
            offer = estimate is not None and (estimate.offer_callback or not staffed)
        except Exception:  # noqa: BLE001 -- an estimate is a courtesy; the hold goes on
            estimate = None
    if estimate is not None:
        position = estimate.position or position
        low, high = estimate.low_s, estimate.high_s
    elif service.queue is None:
        avg = _int(params.get("AvgQueueTime"))
        waited = _int(params.get("QueueTime")) or 0
        if avg:  # Twilio's own average: widen it, it knows nothing of skills
            left = max(avg - waited, 0)
            low, high = left * 0.5, left * 1.5 + 30
    offer = offer and rules.offer_callback_after_s is not None
    voicemail = session is not None and voicemail_offered(session, estimate)
    sentences = announcement(language, position if rules.announce_position else None,
                             low, high, estimate=rules.announce_estimate, offer=offer,
                             staffed=staffed, voicemail=voicemail)
    # The key works at any time (a caller may ask before the offer is spoken), unless the
    # queue takes no callbacks at all.
    return render.hold(language, sentences, token, music=music_plan(rules.announce_every_s),
                       offer=rules.offer_callback_after_s is not None, voicemail=voicemail)


def voicemail_offered(session: Any, estimate: Any, reachable: bool | None = None) -> bool:
    """Whether the call has aged into its queue's ``offer_voicemail`` step (the router
    says so in this announcement's ``estimate``, from the call's own wait) and a message
    can be taken: the call can only leave Twilio's queue for a ``<Record>`` through the
    REST API (``reachable``; by default read from the app's settings)."""
    if estimate is None or not getattr(estimate, "offer_voicemail", False):
        return False
    if reachable is None:
        reachable = _exits_reachable()
    if not reachable:
        log.warning("call %s: its queue offers voicemail but the hold cannot reach it "
                    "(set TWILIO_ACCOUNT_SID and IVR_PUBLIC_URL)", session.call_sid)
        return False
    return True


def _exits_reachable() -> bool:
    from ivr.hold_routes import public_base, rest_client
    from ivr.services import current

    services = current()
    return rest_client(services) is not None and public_base(services.settings) is not None


def key_twiml(params: Mapping[str, str]) -> str:
    """A key pressed while holding: 1 leaves the queue towards the callback that keeps
    the place, at any time, unless the queue takes no callbacks (``offer=0`` in the URL);
    2, once a voicemail is offered (``vm=1``), moves the call to the voicemail."""
    key = (params.get("Digits") or "").strip()
    if key == "1" and params.get("offer") != "0":
        return render.leave_queue()
    if key == "2" and params.get("vm") == "1":
        to_voicemail(params)
    # Any other key (or a voicemail that could not be reached): back to the music;
    # Twilio re-requests the waitUrl.
    return render.empty()


def to_voicemail(params: Mapping[str, str]) -> bool:
    """Move the live call out of Twilio's queue to ``/voice/hold-voicemail`` (REST)."""
    from ivr import hold_routes
    from ivr.services import current

    services = current()
    call_sid, token = params.get("CallSid", ""), params.get("s", "")
    try:
        hold_routes.redirect(hold_routes.rest_client(services), call_sid,
                             hold_routes.public_base(services.settings),
                             hold_routes.VOICEMAIL_ROUTE, token)
    except hold_routes.HoldExitError as exc:
        log.error("call %s pressed 2 for the voicemail but holds on: %s", call_sid, exc)
        return False
    log.info("call %s: out of the hold to leave a message", call_sid)
    return True


@lru_cache(maxsize=MUSIC_SECONDS)
def hold_music(seconds: int = MUSIC_SECONDS) -> bytes:
    """Calm music written here (a slow arpeggio over four chords), 8 kHz mono WAV.

    Generated, not sampled, so it is ours to ship (CC0) and nothing is downloaded.
    Any whole number of seconds up to ``MUSIC_SECONDS``: the shorter clips are the
    start of the long one, ending on a note's decay.
    """
    if not 1 <= seconds <= MUSIC_SECONDS:
        raise ValueError(f"hold music lasts 1..{MUSIC_SECONDS} s, not {seconds}")
    rate = 8000
    chords = [(261.63, 329.63, 392.00), (220.00, 261.63, 329.63),
              (174.61, 220.00, 261.63), (196.00, 246.94, 293.66)]
    note_s = 0.5
    samples: list[np.ndarray] = []
    t = np.arange(int(rate * note_s)) / rate
    envelope = np.minimum(1.0, t / 0.05) * np.exp(-2.2 * t)
    total_notes = int(seconds / note_s)
    for i in range(total_notes):
        chord = chords[(i // 8) % len(chords)]
        freq = chord[i % 3] * (2 if (i // 3) % 2 else 1)
        bass = chord[0] / 2
        tone = 0.35 * np.sin(2 * np.pi * freq * t) + 0.15 * np.sin(2 * np.pi * bass * t)
        samples.append(tone * envelope)
    signal = np.concatenate(samples)
    peak = 0.5  # the loudest a note can be: every clip, long or short, at the same level
    pcm = (signal / peak * 0.6 * 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.tobytes())
    return buf.getvalue()
