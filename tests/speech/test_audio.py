"""WAV parsing, μ-law and resampling, checked against sox's own conversions."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from speech.audio import (
    AudioError,
    read_wav,
    resample,
    rms_dbfs,
    ulaw_decode,
    ulaw_encode,
    write_wav,
)


def sox(*args: str) -> None:
    exe = shutil.which("sox")
    if exe is None:
        pytest.fail("sox is not installed: run `make test`")
    subprocess.run([exe, *args], check=True)


@pytest.fixture()
def tone(tmp_path: Path) -> Path:
    path = tmp_path / "tone.wav"
    sox("-n", "-r", "8000", "-b", "16", "-c", "1", str(path), "synth", "1.0", "sine", "440", "vol", "0.5")
    return path


def test_reads_pcm16(tone: Path) -> None:
    audio = read_wav(tone)
    assert audio.rate == 8000 and audio.channels == 1
    assert len(audio.samples) == 8000 and audio.samples.dtype == np.int16
    assert -9.5 < rms_dbfs(audio.samples) < -8.5  # sine at half scale: -6 dB peak, -9 dB rms
    assert not audio.truncated


def test_ulaw_wav_matches_sox_decoding(tone: Path, tmp_path: Path) -> None:
    ulaw = tmp_path / "tone-ulaw.wav"
    back = tmp_path / "tone-back.wav"
    sox(str(tone), "-e", "u-law", "-b", "8", str(ulaw))
    sox(str(ulaw), "-e", "signed-integer", "-b", "16", str(back))
    ours, theirs = read_wav(ulaw), read_wav(back)
    assert ours.rate == 8000
    assert np.array_equal(ours.samples, theirs.samples)


def test_ulaw_encode_roundtrip_and_table() -> None:
    samples = np.linspace(-32768, 32767, 20000).astype(np.int16)
    decoded = ulaw_decode(ulaw_encode(samples))
    # μ-law keeps about 2-3 % relative precision
    err = np.abs(decoded.astype(int) - samples.astype(int))
    assert np.all(err <= np.maximum(np.abs(samples.astype(int)) * 0.07, 40))
    assert ulaw_decode(b"\xff")[0] == 0 and ulaw_decode(b"\x00")[0] == -32124


def test_stereo_44k_is_mixed_down(tmp_path: Path) -> None:
    path = tmp_path / "stereo.wav"
    sox("-n", "-r", "44100", "-b", "16", "-c", "2", str(path), "synth", "0.5", "sine", "300")
    audio = read_wav(path)
    assert audio.channels == 2 and audio.rate == 44100 and len(audio.samples) == 22050
    down = resample(audio.samples, 44100, 16000)
    assert len(down) == 8000
    assert abs(rms_dbfs(down) - rms_dbfs(audio.samples)) < 0.5


def test_resample_removes_content_above_new_nyquist() -> None:
    t = np.arange(16000) / 16000
    high = (10000 * np.sin(2 * np.pi * 6000 * t)).astype(np.int16)  # above 4 kHz
    assert rms_dbfs(resample(high, 16000, 8000)) < -60


def test_long_recording_is_capped(tmp_path: Path) -> None:
    path = tmp_path / "long.wav"
    sox("-n", "-r", "8000", "-b", "16", "-c", "1", str(path), "synth", "600", "whitenoise", "vol", "0.1")
    audio = read_wav(path, max_seconds=30)
    assert audio.truncated and audio.seconds == 30 and audio.source_seconds == 600


def test_clipping_is_measured(tmp_path: Path) -> None:
    path = tmp_path / "clip.wav"
    t = np.arange(8000) / 8000
    write_wav(path, np.clip(80000 * np.sin(2 * np.pi * 200 * t), -32768, 32767).astype(np.int16), 8000)
    assert read_wav(path).clipped_fraction > 0.5


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (b"", "empty"),
        (b"ID3\x03\x00\x00\x00garbage", "MP3"),
        (b"hello world, not audio at all", "not a WAV"),
        (b"RIFF\x24\x00\x00\x00WAVE", "fmt"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00" + struct.pack("<HHIIHH", 1, 1, 8000, 16000, 2, 16), "data"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00" + struct.pack("<HHIIHH", 1, 1, 10, 20, 2, 16)
         + b"data\x04\x00\x00\x00\x00\x00\x00\x00", "sample rate"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00" + struct.pack("<HHIIHH", 85, 1, 8000, 8000, 1, 8)
         + b"data\x04\x00\x00\x00\x00\x00\x00\x00", "unsupported"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00" + struct.pack("<HHIIHH", 1, 1, 8000, 16000, 2, 16)
         + b"data\x00\x00\x00\x00", "no audio"),
    ],
)
def test_bad_files_raise_clear_errors(blob: bytes, message: str) -> None:
    with pytest.raises(AudioError, match=message):
        read_wav(blob)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="no such file"):
        read_wav(tmp_path / "nope.wav")


def test_truncated_download_keeps_what_exists(tone: Path) -> None:
    blob = tone.read_bytes()[:3001]  # cut mid-sample
    audio = read_wav(blob)
    assert 0 < len(audio.samples) < 8000
