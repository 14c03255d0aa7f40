"""`ivr bench speech`: Vosk speed and memory on synthesised Korean phone audio.

Prints one JSON line:

* ``grammar_rtf`` / ``free_rtf``: decoding time over audio time (grammar vs full model);
* ``eos_to_result_ms_p50/p95``: on the streaming path, from the arrival of the frame
  that ends the utterance (the endpointer's decision, ``end_silence_ms`` after the
  last voiced audio) to the recognition result;
* ``streams_per_core``: how many grammar streams one core keeps real-time (all
  streams decoded interleaved on one thread; CPU time vs audio time);
* ``model_rss_mb``: resident memory added by loading the model;
  ``per_stream_rss_mb``: added by each extra open recogniser.

The baseline for comparison is vosk-server's published figure (about 50 streams on
12 cores with a large model) and the issue's targets (rtf ≤ 0.05, p95 ≤ 300 ms,
≥ 50 streams per core).
"""

from __future__ import annotations

import base64
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
import numpy as np

from speech.audio import read_wav, ulaw_encode
from speech.endpointing import EndpointConfig

PHRASES = ["예약", "상담원", "환불", "네", "아니요"]
SPOKEN = ["예약", "네", "아니요", "감사합니다", "안녕하세요"]


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _synth(texts: list[str], workdir: Path) -> list[np.ndarray]:
    espeak, sox = shutil.which("espeak-ng"), shutil.which("sox")
    if not espeak or not sox:
        raise click.ClickException("espeak-ng and sox are needed: apt-get install espeak-ng sox")
    out = []
    for i, text in enumerate(texts):
        raw, wav = workdir / f"r{i}.wav", workdir / f"s{i}.wav"
        subprocess.run([espeak, "-v", "ko", "-w", str(raw), text], check=True)
        subprocess.run([sox, str(raw), "-r", "8000", "-b", "16", "-c", "1", str(wav)], check=True)
        out.append(read_wav(wav).samples)
    return out


def _frames(samples: np.ndarray) -> list[dict]:
    pad = np.zeros(3200, np.int16)
    ulaw = ulaw_encode(np.concatenate([pad, samples, pad, pad, pad]))
    return [{"event": "media", "media": {"payload": base64.b64encode(ulaw[i:i + 160]).decode()}}
            for i in range(0, len(ulaw) - 159, 160)]


@click.command("speech")
@click.option("--lang", "language", default="ko", show_default=True)
@click.option("--model", "model_dir", type=click.Path(path_type=Path), default=None)
@click.option("--rounds", default=20, show_default=True, help="Streamed utterances timed.")
@click.option("--streams", default=40, show_default=True, help="Streams decoded together.")
def command(language: str, model_dir: Path | None, rounds: int, streams: int) -> None:
    """Measure recognition speed and memory; print one JSON line."""
    from speech.streaming import MediaStreamHandler, UtteranceResult
    from speech.vosk_recognizer import VoskRecognizer

    with tempfile.TemporaryDirectory() as tmp:
        clips = _synth(SPOKEN, Path(tmp))
    click.echo("loading model...", err=True)
    before = _rss_mb()
    recognizer = VoskRecognizer(language, model_dir)
    model_rss = _rss_mb() - before

    # Memory per extra recogniser, measured first (before freed memory can be reused):
    # many grammar streams held open, each fed half a second of speech.
    extra = 100
    base = _rss_mb()
    open_streams = [recognizer.open_stream(8000, PHRASES) for _ in range(extra)]
    for st in open_streams:
        st.feed(clips[0][:4000].tobytes())
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
    grammar_rtf = rtf(PHRASES, clips * 4)
    free_rtf = rtf(None, clips[:3])

    click.echo("streaming latency...", err=True)
    latencies: list[float] = []
    config = EndpointConfig()
    frame_lists = [_frames(c) for c in clips]
    with click.progressbar(range(rounds), label="utterances",
                           file=sys.stderr) as bar:
        for i in bar:
            handler = MediaStreamHandler(lambda lang: recognizer, default_language=language,
                                         endpoint=config)
            handler.handle({"event": "start", "start": {"callSid": f"CA{i}", "streamSid": "MZ",
                            "customParameters": {"phrases": "|".join(PHRASES)}}})
            for message in frame_lists[i % len(frame_lists)]:
                started = time.perf_counter()
                events = handler.handle(message)
                if any(isinstance(e, UtteranceResult) for e in events):
                    latencies.append((time.perf_counter() - started) * 1000)
                    break

    click.echo("simultaneous streams...", err=True)
    handlers = []
    for s in range(streams):
        h = MediaStreamHandler(lambda lang: recognizer, default_language=language)
        h.handle({"event": "start", "start": {"callSid": f"CS{s}", "streamSid": "MZ",
                  "customParameters": {"phrases": "|".join(PHRASES)}}})
        handlers.append((h, frame_lists[s % len(frame_lists)]))
    longest = max(len(f) for _, f in handlers)
    rss_before_streams = _rss_mb()
    peak = rss_before_streams
    cpu_start = time.process_time()
    for n in range(longest):
        for h, frames in handlers:
            if n < len(frames):
                h.handle(frames[n])
        if n % 25 == 0:
            peak = max(peak, _rss_mb())
    cpu = time.process_time() - cpu_start
    audio_per_stream = longest * 0.02
    streams_per_core = streams * audio_per_stream / cpu if cpu else 0.0


    latencies.sort()
    print(json.dumps({
        "language": language,
        "grammar_rtf": round(grammar_rtf, 4),
        "free_rtf": round(free_rtf, 4),
        "eos_to_result_ms_p50": round(statistics.median(latencies), 2) if latencies else None,
        "eos_to_result_ms_p95": round(latencies[max(0, int(len(latencies) * 0.95) - 1)], 2)
        if latencies else None,
        "end_silence_ms": config.end_silence_ms,
        "utterances_timed": len(latencies),
        "streams_per_core": round(streams_per_core, 1),
        "streams_decoded": streams,
        "model_rss_mb": round(model_rss, 1),
        "per_stream_rss_mb": round(per_stream, 2),
        "baseline_vosk_server_streams_per_core": round(50 / 12, 1),
    }))
