"""Speech fixtures: Korean speech synthesised with espeak-ng, the Korean Vosk model.

The model (≈ 530 MB resident) is loaded once per test session; synthesised audio
is cached per session too.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from speech.audio import read_wav

IN_GRAMMAR = ["예약", "상담원", "환불", "네", "아니요"]
"""The Korean test menu. espeak-ng renders 예약/네/아니요 well enough to recognise."""


def _need(tool: str) -> str:
    exe = shutil.which(tool)
    if exe is None:
        pytest.fail(f"{tool} is not installed: run `make test` (it installs it)")
    return exe


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """synth(text, rate=8000, encoding="signed-integer"|"u-law", pad_s=0) -> WAV path."""
    espeak, sox = _need("espeak-ng"), _need("sox")
    base = tmp_path_factory.mktemp("synth")
    made: dict[tuple[str, int, str, float], Path] = {}

    def make(text: str, rate: int = 8000, encoding: str = "signed-integer",
             pad_s: float = 0.0) -> Path:
        key = (text, rate, encoding, pad_s)
        if key not in made:
            raw = base / f"raw{len(made)}.wav"
            subprocess.run([espeak, "-v", "ko", "-w", str(raw), text], check=True)
            out = base / f"s{len(made)}.wav"
            bits = ["-b", "8"] if encoding == "u-law" else ["-b", "16"]
            cmd = [sox, str(raw), "-r", str(rate), "-e", encoding, *bits, "-c", "1", str(out)]
            if pad_s:
                cmd += ["pad", str(pad_s), str(pad_s)]
            subprocess.run(cmd, check=True)
            made[key] = out
        return made[key]

    return make


@pytest.fixture(scope="session")
def ko_recognizer():  # type: ignore[no-untyped-def]
    from speech.vosk_recognizer import VoskRecognizer

    return VoskRecognizer("ko")


def pcm_of(path: Path) -> tuple[bytes, int]:
    audio = read_wav(path)
    return audio.pcm16(), audio.rate
