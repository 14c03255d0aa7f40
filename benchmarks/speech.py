"""`ivr bench speech`: Vosk speed and memory on synthesised Korean phone audio.

Prints one JSON line:

* ``grammar_rtf`` / ``free_rtf``: decoding time over audio time (grammar vs full model);
* ``eos_to_twiml_ms_p50/p95``: from the **end of the last voiced frame** of the caller's
  answer to the next TwiML being ready for the REST call update, through the real
  path: μ-law JSON frames -> :class:`~speech.streaming.MediaStreamHandler` (early end
  of grammar turns) -> :class:`~ivr.media_streams.LiveTurns` -> ``CallService.advance``
  (engine, sealed state, Redis record, TwiML) on an app built by ``create_app`` with an
  embedded redis-server and the Korean test flows. It is the stream time from the
  last voiced frame to the frame that ended the turn (the silence the caller must
  leave) plus the wall time from that frame's arrival to the update body. Excluded:
  Twilio's side (audio buffering, network) and the REST request itself
  (``update_call`` is timed when called, not sent);
* ``eos_to_result_ms_p50/p95``: the older figure, from the endpointer's decision to
  the recognition result (handler only);
* ``streams_per_core``: how many grammar streams one core keeps real-time, with
  realistic turns: per turn the caller is silent (line noise, about -60 dBFS) for
  :data:`PROMPT_S` while the prompt plays, says the answer, then is silent
  :data:`TAIL_S` (``duty_cycle`` says the share of speech); every stream's messages
  are JSON text as the websocket delivers them (parsed in the timing; the websocket
  framing is not). ``streams_per_core_live_calls``: the same with every stream a
  call of the app, its turn read from Redis every 250 ms of silence as in
  production (redis-server's CPU included). ``streams_per_core_continuous``:
  callers who never pause (decoding-bound: about 1 / grammar_rtf);
* ``model_rss_mb``: resident memory added by loading the model in this process;
  ``per_stream_rss_mb``: added by each extra open recogniser (both per process: a
  model is loaded once per process and shared by all its streams).

The baseline for comparison is vosk-server's published figure (about 50 streams on
12 cores with a large model) and the issue's targets (rtf ≤ 0.05, p95 ≤ 300 ms,
≥ 50 streams per core).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import numpy as np

from speech.audio import read_wav, ulaw_encode

PHRASES = ["예약", "상담원", "환불", "네", "아니요"]
SPOKEN = ["예약", "네", "아니요", "환불", "감사합니다"]
PROMPT_S = 3.0
"""Simulated caller silence while each turn's prompt plays."""
TAIL_S = 1.0
"""Simulated caller silence after each answer."""
NOISE_RMS = 30.0  # ≈ -61 dBFS: a quiet phone line, never digital zero
FLOWS = Path(__file__).resolve().parents[1] / "tests" / "flows_ko"
LINES = {"menu": ("+34930009000", ["예약", "환불"]), "confirm": ("+34930009001", ["네", "아니요"])}


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _synth(texts: list[str], workdir: Path) -> dict[str, np.ndarray]:
    espeak, sox = shutil.which("espeak-ng"), shutil.which("sox")
    if not espeak or not sox:
        raise click.ClickException("espeak-ng and sox are needed: apt-get install espeak-ng sox")
    out = {}
    for i, text in enumerate(texts):
        raw, wav = workdir / f"r{i}.wav", workdir / f"s{i}.wav"
        subprocess.run([espeak, "-v", "ko", "-w", str(raw), text], check=True)
        subprocess.run([sox, str(raw), "-r", "8000", "-b", "16", "-c", "1", str(wav)], check=True)
        out[text] = read_wav(wav).samples
    return out


_rng = np.random.default_rng(7)


def _noise(seconds: float) -> np.ndarray:
    return np.clip(_rng.normal(0, NOISE_RMS, int(8000 * seconds)), -32768, 32767).astype(np.int16)


def _messages(samples: np.ndarray) -> list[str]:
    """Twilio ``media`` messages (JSON text, 20 ms of μ-law each)."""
    ulaw = ulaw_encode(samples)
    return [json.dumps({"event": "media", "streamSid": "MZ1", "media": {
        "track": "inbound", "payload": base64.b64encode(ulaw[i:i + 160]).decode()}})
        for i in range(0, len(ulaw) - 159, 160)]


def _start(call_sid: str, phrases: list[str] | None = None) -> dict[str, Any]:
    params = {"language": "ko", "phrases": "|".join(phrases)} if phrases else {}
    return {"event": "start", "start": {"callSid": call_sid, "streamSid": "MZ1",
                                        "customParameters": params}}


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))], 1)


def _streams_per_core(factory: Callable[[str], Any], turns: list[list[str]],
                      streams: int, live: _Live | None = None) -> tuple[float, float]:
    """(streams one core keeps real-time, audio seconds per stream). With ``live``,
    each stream is a call of the app whose turn is read from Redis as in production
    (redis-server's CPU counted too)."""
    from speech.streaming import MediaStreamHandler

    handlers = []
    for s in range(streams):
        sid = f"CA9{s:031d}"
        if live is not None:
            live.call(sid, LINES["menu"][0])
            turn = live.grammars.get(sid)
            if turn is None or not turn.phrases:
                raise click.ClickException(f"call {sid} did not reach the menu: no grammar")
            h = MediaStreamHandler(factory, live.grammars, "ko")
            h.handle(_start(sid))
        else:
            h = MediaStreamHandler(factory, default_language="ko")
            h.handle(_start(sid, PHRASES))
        handlers.append((h, turns[s % len(turns)]))
    longest = max(len(m) for _, m in handlers)
    cpu_start = time.process_time() + (live.redis_cpu_s() if live else 0.0)
    for n in range(longest):
        for h, messages in handlers:
            if n < len(messages):
                h.handle(messages[n])
    cpu = time.process_time() + (live.redis_cpu_s() if live else 0.0) - cpu_start
    audio = sum(len(m) for _, m in handlers) * 0.02
    return (audio / cpu if cpu else 0.0), audio / streams


class _BodyReady:
    """Stands in for Twilio's REST API: notes when each update body is ready."""

    def __init__(self) -> None:
        self.updates: list[tuple[float, str]] = []

    def update_call(self, call_sid: str, **kwargs: Any) -> dict[str, Any]:
        self.updates.append((time.perf_counter(), str(kwargs.get("twiml", ""))))
        return {"sid": call_sid}


class _Live:
    """The app as ``ivr serve`` builds it (vosk-stream mode), on an embedded
    redis-server, with the Korean test flows; REST updates noted, not sent."""

    def __init__(self, tmp: Path) -> None:
        from ivr.app import create_app
        from ivr.embedded import EmbeddedRedis
        from ivr.media_streams import LiveTurns, SessionGrammars
        from ivr.settings import Settings

        self.redis = EmbeddedRedis(tmp)
        self.redis.start()
        settings = Settings(data_dir=tmp, redis_url=self.redis.url, twilio_auth_token="bench",
                            twilio_account_sid="AC" + "0" * 32, flows_dir=FLOWS,
                            secret_key="bench", speech_mode="vosk-stream",
                            media_stream_url="wss://bench.invalid/media")
        parts = create_app(settings).extensions["centralita"].components
        self.calls, self.writer = parts["calls"], parts["writer"]
        self.grammars = SessionGrammars(parts["call_records"], parts["flows"])
        self.rest = _BodyReady()
        self.turns = LiveTurns(self.calls, parts["call_records"], self.rest,  # type: ignore[arg-type]
                               self.grammars)

    def call(self, sid: str, number: str) -> None:
        self.calls.incoming({"CallSid": sid, "From": "+34611000111", "To": number,
                             "CallStatus": "ringing"})
        self.writer.flush(5)

    def redis_cpu_s(self) -> float:
        assert self.redis.process is not None
        fields = Path(f"/proc/{self.redis.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        self.writer.flush(5)
        self.redis.stop()


def _eos_to_twiml(factory: Callable[[str], Any], clips: dict[str, np.ndarray],
                  rounds: int, live: _Live) -> tuple[list[float], list[float], list[str]]:
    """Real LiveTurns -> CallService.advance; (eos->twiml ms, eos->decision ms, reasons)."""
    from speech.streaming import BargeIn, MediaStreamHandler, UtteranceResult

    totals, waits, reasons = [], [], []
    kinds = list(LINES)
    with click.progressbar(range(rounds), label="utterances to TwiML", file=sys.stderr) as bar:
        for i in bar:
            number, answers = LINES[kinds[i % len(kinds)]]
            sid = f"CA{i:032d}"
            live.call(sid, number)
            handler = MediaStreamHandler(factory, live.grammars, "ko")
            handler.handle(_start(sid))
            clip = clips[answers[(i // len(kinds)) % len(answers)]]
            for message in _messages(np.concatenate([_noise(1.0), clip, _noise(1.5)])):
                arrived = time.perf_counter()
                events = handler.handle(message)
                done = next((e for e in events if isinstance(e, UtteranceResult)), None)
                for event in events:
                    if isinstance(event, BargeIn):
                        live.turns.on_event(event)
                if done is not None:
                    before = len(live.rest.updates)
                    live.turns.on_result(sid, done)
                    if len(live.rest.updates) > before:
                        waited = (done.decided_at - done.speech_end_at) * 1000
                        totals.append(waited + (live.rest.updates[-1][0] - arrived) * 1000)
                        waits.append(waited)
                        reasons.append(done.end_reason.value)
                    break
            handler.close("stop")
    return totals, waits, reasons


@click.command("speech")
@click.option("--lang", "language", default="ko", show_default=True)
@click.option("--model", "model_dir", type=click.Path(path_type=Path), default=None)
@click.option("--rounds", default=20, show_default=True, help="Streamed utterances timed.")
@click.option("--streams", default=60, show_default=True, help="Streams decoded together.")
def command(language: str, model_dir: Path | None, rounds: int, streams: int) -> None:
    """Measure recognition speed, end-of-speech latency and memory; print one JSON line."""
    from speech.streaming import MediaStreamHandler, UtteranceResult, recognizer_cache
    from speech.vosk_recognizer import VoskRecognizer

    with tempfile.TemporaryDirectory() as tmp:
        clips = _synth(SPOKEN, Path(tmp))
    click.echo("loading model...", err=True)
    before = _rss_mb()
    recognizer = VoskRecognizer(language, model_dir)
    model_rss = _rss_mb() - before
    factory = recognizer_cache(lambda lang: recognizer)

    # Memory per extra recogniser, measured first (before freed memory can be reused):
    # many grammar streams held open, each fed half a second of speech.
    extra = 100
    base = _rss_mb()
    open_streams = [recognizer.open_stream(8000, PHRASES) for _ in range(extra)]
    for st in open_streams:
        st.feed(clips["예약"][:4000].tobytes())
    per_stream = (_rss_mb() - base) / extra
    del open_streams

    def rtf(phrases: list[str] | None, clip_list: list[np.ndarray]) -> float:
        busy = audio = 0.0
        for clip in clip_list:
            started = time.perf_counter()
            recognizer.recognize(clip.tobytes(), 8000, phrases)
            busy += time.perf_counter() - started
            audio += len(clip) / 8000
        return busy / audio

    click.echo("grammar and free decoding...", err=True)
    grammar_rtf = rtf(PHRASES, list(clips.values()) * 4)
    free_rtf = rtf(None, list(clips.values())[:3])

    click.echo("endpointer decision to result...", err=True)
    latencies: list[float] = []
    utterances = [_messages(np.concatenate([_noise(0.4), c, _noise(1.5)])) for c in clips.values()]
    for i in range(rounds):
        handler = MediaStreamHandler(factory, default_language=language)
        handler.handle(_start(f"CA{i}", PHRASES))
        for message in utterances[i % len(utterances)]:
            started = time.perf_counter()
            events = handler.handle(message)
            if any(isinstance(e, UtteranceResult) for e in events):
                latencies.append((time.perf_counter() - started) * 1000)
                break

    totals: list[float] = []
    waits: list[float] = []
    reasons: list[str] = []
    realistic = [_messages(np.concatenate([_noise(PROMPT_S), c, _noise(TAIL_S)] * 2))
                 for c in clips.values()]
    speech_s = sum(len(c) for c in clips.values()) / 8000 / len(clips)
    duty = speech_s / (PROMPT_S + speech_s + TAIL_S)
    per_core_live: float | None = None
    if FLOWS.is_dir() and language == "ko":
        with tempfile.TemporaryDirectory(prefix="ivr-bench-speech-") as tmp:
            live = _Live(Path(tmp))
            try:
                totals, waits, reasons = _eos_to_twiml(factory, clips, rounds, live)
                click.echo("simultaneous streams of live calls...", err=True)
                per_core_live, _ = _streams_per_core(factory, realistic, streams, live)
            finally:
                live.close()
    else:
        click.echo(f"note: {FLOWS} missing or language not ko: the live-call figures "
                   "(eos_to_twiml, streams_per_core_live_calls) are not measured", err=True)

    click.echo("simultaneous streams...", err=True)
    per_core, audio_s = _streams_per_core(factory, realistic, streams)
    continuous = [_messages(np.concatenate([x for c in clips.values() for x in (c, _noise(0.1))] * 2))]
    per_core_continuous, _ = _streams_per_core(factory, continuous, max(10, streams // 3))

    print(json.dumps({
        "language": language,
        "grammar_rtf": round(grammar_rtf, 4),
        "free_rtf": round(free_rtf, 4),
        "eos_to_twiml_ms_p50": _pct(totals, 0.5),
        "eos_to_twiml_ms_p95": _pct(totals, 0.95),
        "eos_silence_waited_ms_p50": _pct(waits, 0.5),
        "eos_end_reasons": {r: reasons.count(r) for r in sorted(set(reasons))},
        "eos_to_result_ms_p50": round(statistics.median(latencies), 2) if latencies else None,
        "eos_to_result_ms_p95": _pct(latencies, 0.95),
        "utterances_timed": len(totals),
        "streams_per_core": round(per_core, 1),
        "duty_cycle": round(duty, 3),
        "stream_audio_s": round(audio_s, 1),
        "streams_per_core_live_calls": round(per_core_live, 1) if per_core_live else None,
        "streams_per_core_continuous": round(per_core_continuous, 1),
        "streams_decoded": streams,
        "model_rss_mb": round(model_rss, 1),
        "per_stream_rss_mb": round(per_stream, 2),
        "baseline_vosk_server_streams_per_core": round(50 / 12, 1),
    }, ensure_ascii=False))
