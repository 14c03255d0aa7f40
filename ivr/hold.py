"""What a caller hears while holding: honest position and wait, music, a way out.

Twilio requests the ``waitUrl`` again each time its TwiML finishes, so every
announcement period the caller hears their position and the estimated wait (a range
when uncertain), then music during which pressing 1 asks for a callback that keeps
their place (``<Leave>`` → the flow's callback node).
"""

from __future__ import annotations

import io
import math
import wave
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import numpy as np

from ivr import render

MUSIC_SECONDS = 30

TEXTS = {
    "es": {
        "position": "Está en la posición {n}.",
        "first": "Es el siguiente en ser atendido.",
        "range": "El tiempo de espera estimado es de entre {lo} y {hi} minutos.",
        "under": "El tiempo de espera estimado es de menos de un minuto.",
        "about": "El tiempo de espera estimado es de unos {m} minutos.",
        "unknown": "Le atenderemos lo antes posible.",
        "offer": "Si prefiere que le llamemos sin perder su turno, pulse 1 en cualquier momento.",
    },
    "ca": {
        "position": "Esteu a la posició {n}.",
        "first": "Sou el següent a ser atès.",
        "range": "El temps d'espera estimat és d'entre {lo} i {hi} minuts.",
        "under": "El temps d'espera estimat és de menys d'un minut.",
        "about": "El temps d'espera estimat és d'uns {m} minuts.",
        "unknown": "Us atendrem tan aviat com puguem.",
        "offer": "Si preferiu que us truquem sense perdre el torn, premeu 1 en qualsevol moment.",
    },
    "en": {
        "position": "You are number {n} in line.",
        "first": "You are next in line.",
        "range": "The estimated wait is between {lo} and {hi} minutes.",
        "under": "The estimated wait is less than a minute.",
        "about": "The estimated wait is about {m} minutes.",
        "unknown": "We will be with you as soon as we can.",
        "offer": "If you would rather we call you back without losing your place, press 1 at any time.",
    },
}


def announcement(language: str, position: int | None, low_s: float | None,
                 high_s: float | None) -> list[str]:
    """Sentences for one announcement; the wait is rounded outwards, never flattering."""
    t = TEXTS.get(language, TEXTS["es"])
    out: list[str] = []
    if position is not None and position >= 1:
        out.append(t["first"] if position == 1 else t["position"].format(n=position))
    if low_s is None or high_s is None:
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
    out.append(t["offer"])
    return out


def _int(raw: str | None) -> int | None:
    try:
        return int(raw) if raw not in (None, "") else None
    except ValueError:
        return None


def wait_twiml(service: Any, token: str, params: Mapping[str, str]) -> str:
    session = service.session_of(token, params) if token else None
    language = (session.language if session else None) or "es"
    position = _int(params.get("QueuePosition"))
    low = high = None
    estimate = None
    if session is not None and service.queue is not None:
        try:
            estimate = service.queue.estimate(session.call_sid)
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
    return render.hold(language, announcement(language, position, low, high), token)


def key_twiml(params: Mapping[str, str]) -> str:
    """A key pressed while holding: 1 leaves the queue towards the callback offer."""
    if (params.get("Digits") or "").strip() == "1":
        return render.leave_queue()
    # Any other key: back to the music; Twilio re-requests the waitUrl.
    return render.empty()


@lru_cache(maxsize=1)
def hold_music() -> bytes:
    """Calm music written here (a slow arpeggio over four chords), 8 kHz mono WAV.

    Generated, not sampled, so it is ours to ship (CC0) and nothing is downloaded.
    """
    rate = 8000
    chords = [(261.63, 329.63, 392.00), (220.00, 261.63, 329.63),
              (174.61, 220.00, 261.63), (196.00, 246.94, 293.66)]
    note_s = 0.5
    samples: list[np.ndarray] = []
    t = np.arange(int(rate * note_s)) / rate
    envelope = np.minimum(1.0, t / 0.05) * np.exp(-2.2 * t)
    total_notes = int(MUSIC_SECONDS / note_s)
    for i in range(total_notes):
        chord = chords[(i // 8) % len(chords)]
        freq = chord[i % 3] * (2 if (i // 3) % 2 else 1)
        bass = chord[0] / 2
        tone = 0.35 * np.sin(2 * np.pi * freq * t) + 0.15 * np.sin(2 * np.pi * bass * t)
        samples.append(tone * envelope)
    signal = np.concatenate(samples)
    pcm = (signal / np.max(np.abs(signal)) * 0.6 * 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.tobytes())
    return buf.getvalue()
