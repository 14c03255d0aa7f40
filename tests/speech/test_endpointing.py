"""End-of-speech detection on synthetic signals (20 ms frames at 8 kHz)."""

from __future__ import annotations

import numpy as np

from speech.endpointing import EndpointConfig, Endpointer, EndReason, SpeechEnded, SpeechStarted

RATE, FRAME = 8000, 160
rng = np.random.default_rng(3)


def tone(seconds: float, level: float = 8000) -> np.ndarray:
    t = np.arange(int(RATE * seconds)) / RATE
    # syllable-like bursts: 200 Hz carrier modulated at 4 Hz
    return (level * np.sin(2 * np.pi * 200 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t))).astype(np.int16)


def silence(seconds: float, level: float = 0) -> np.ndarray:
    return rng.normal(0, level, int(RATE * seconds)).astype(np.int16) if level else np.zeros(int(RATE * seconds), np.int16)


def feed(ep: Endpointer, signal: np.ndarray) -> list:
    events = []
    for i in range(0, len(signal) - FRAME + 1, FRAME):
        events += ep.process(signal[i:i + FRAME])
    return events


def test_speech_then_silence_ends_the_utterance() -> None:
    ep = Endpointer(RATE, EndpointConfig(end_silence_ms=700))
    events = feed(ep, np.concatenate([silence(0.5, 30), tone(1.0), silence(1.0, 30)]))
    assert [type(e) for e in events] == [SpeechStarted, SpeechEnded]
    start, end = events
    assert abs(start.at - 0.5) < 0.1 and not start.barge_in
    assert end.reason is EndReason.SILENCE
    assert abs(end.last_voiced_at - 1.5) < 0.05
    assert abs(end.at - (end.last_voiced_at + 0.7)) < 0.05
    assert 0.9 < end.voiced_seconds <= 1.05


def test_short_pause_does_not_split_an_utterance() -> None:
    ep = Endpointer(RATE)
    events = feed(ep, np.concatenate([tone(0.6), silence(0.3), tone(0.6), silence(1.0)]))
    assert [type(e) for e in events] == [SpeechStarted, SpeechEnded]


def test_barge_in_flag_when_a_prompt_plays() -> None:
    ep = Endpointer(RATE)
    ep.prompt_playing = True
    events = feed(ep, np.concatenate([silence(0.2), tone(0.5)]))
    assert isinstance(events[0], SpeechStarted) and events[0].barge_in


def test_max_utterance_length() -> None:
    ep = Endpointer(RATE, EndpointConfig(max_utterance_s=2.0))
    events = feed(ep, tone(3.0))
    ended = [e for e in events if isinstance(e, SpeechEnded)]
    assert ended and ended[0].reason is EndReason.MAX_LENGTH and abs(ended[0].at - 2.0) < 0.1


def test_steady_noise_is_absorbed_by_the_noise_floor() -> None:
    ep = Endpointer(RATE)
    events = feed(ep, silence(20.0, 2000))  # a loud hiss for 20 s
    started = [e for e in events if isinstance(e, SpeechStarted)]
    ended = [e for e in events if isinstance(e, SpeechEnded)]
    assert len(started) <= 1 and len(ended) == len(started)  # at most one blip, then quiet
    assert not ep.in_speech
    # speech over the hiss is still heard
    assert any(isinstance(e, SpeechStarted) for e in feed(ep, tone(0.6, 20000) + silence(0.6, 2000)))


def test_click_is_too_short_and_disconnect_reports_open_utterance() -> None:
    ep = Endpointer(RATE)
    feed(ep, np.concatenate([silence(0.2), tone(0.08)]))
    assert ep.in_speech and not ep.long_enough
    ended = ep.disconnect()
    assert ended is not None and ended.reason is EndReason.DISCONNECTED
    assert ep.disconnect() is None
