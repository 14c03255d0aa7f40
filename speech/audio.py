"""Phone audio in, 16-bit PCM mono out: WAV parsing, G.711 μ-law, resampling.

* :func:`read_wav` parses the RIFF container itself because the standard ``wave``
  module cannot read μ-law WAV files (Twilio can store either); it accepts PCM
  8/16/24/32-bit, float32, μ-law and A-law, mono or more channels (averaged).
* :func:`ulaw_decode` / :func:`ulaw_encode` are numpy lookups (``audioop`` is
  deprecated and gone in Python 3.13).
* :func:`resample` is FFT-based (band-limited, no aliasing).

Long recordings are capped: only the first :data:`MAX_AUDIO_SECONDS` seconds are
kept (``Audio.truncated`` tells); a caller's answer to an IVR question is seconds
long, so a 10-minute recording costs the same bounded decoding time as a 2-minute
one instead of blocking a worker for minutes. Corrupt, empty or unsupported files
raise :class:`AudioError` with a message saying what is wrong.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from speech.errors import AudioError

MAX_AUDIO_SECONDS = 120.0
"""Audio beyond this is dropped before recognition (see module docstring)."""

MIN_RATE, MAX_RATE = 4000, 192_000
_PCM, _FLOAT, _ALAW, _ULAW, _EXTENSIBLE = 1, 3, 6, 7, 0xFFFE
_CLIP_LEVEL = 32000


def _ulaw_table() -> np.ndarray:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    sign = u & 0x80
    exponent = (u >> 4) & 0x07
    mantissa = u & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return np.where(sign != 0, -magnitude, magnitude).astype(np.int16)


def _alaw_table() -> np.ndarray:
    a = np.arange(256, dtype=np.int32) ^ 0x55
    sign = a & 0x80
    exponent = (a >> 4) & 0x07
    mantissa = a & 0x0F
    magnitude = np.where(exponent == 0, (mantissa << 4) + 8,
                         ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0))
    return np.where(sign != 0, magnitude, -magnitude).astype(np.int16)


ULAW_TABLE = _ulaw_table()
"""G.711 μ-law byte -> 16-bit linear sample."""
ALAW_TABLE = _alaw_table()


@dataclass(frozen=True)
class Audio:
    """Mono 16-bit samples at ``rate`` Hz plus what was done to get them."""

    samples: np.ndarray  # int16, 1-D
    rate: int
    channels: int = 1  # in the source
    source_seconds: float = 0.0  # before any cap
    truncated: bool = False

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.rate if self.rate else 0.0

    @property
    def clipped_fraction(self) -> float:
        """Share of samples at full scale: high values mean a distorted line."""
        if len(self.samples) == 0:
            return 0.0
        return float(np.count_nonzero(np.abs(self.samples.astype(np.int32)) >= _CLIP_LEVEL)
                     / len(self.samples))

    def pcm16(self) -> bytes:
        return self.samples.astype("<i2").tobytes()


def ulaw_decode(data: bytes) -> np.ndarray:
    """μ-law bytes (Twilio Media Streams payload) -> int16 samples."""
    return ULAW_TABLE[np.frombuffer(data, dtype=np.uint8)]


def ulaw_encode(samples: np.ndarray) -> bytes:
    """int16 samples -> μ-law bytes (for tests, benchmarks and outbound audio)."""
    x = np.asarray(samples, dtype=np.int32)
    sign = (x < 0).astype(np.int32) << 7
    magnitude = np.minimum(np.abs(x), 32635) + 0x84
    exponent = np.clip(np.floor(np.log2(magnitude)).astype(np.int32) - 7, 0, 7)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    encoded: bytes = (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8).tobytes()
    return encoded


def resample(samples: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """Band-limited resampling of int16 samples (FFT method)."""
    if src_rate == dst_rate or len(samples) == 0:
        return np.asarray(samples, dtype=np.int16)
    n_in = len(samples)
    n_out = max(1, round(n_in * dst_rate / src_rate))
    spectrum = np.fft.rfft(samples.astype(np.float64))
    keep = n_out // 2 + 1
    if keep <= len(spectrum):
        spectrum = spectrum[:keep]
    else:
        spectrum = np.concatenate([spectrum, np.zeros(keep - len(spectrum), dtype=complex)])
    out = np.fft.irfft(spectrum, n_out) * (n_out / n_in)
    return np.clip(np.round(out), -32768, 32767).astype(np.int16)


def _to_int16(raw: bytes, fmt: int, bits: int, channels: int) -> np.ndarray:
    width = bits // 8
    usable = len(raw) - len(raw) % (width * channels)
    raw = raw[:usable]
    if fmt == _ULAW and bits == 8:
        data = ulaw_decode(raw).astype(np.float64)
    elif fmt == _ALAW and bits == 8:
        data = ALAW_TABLE[np.frombuffer(raw, dtype=np.uint8)].astype(np.float64)
    elif fmt == _PCM and bits == 8:
        data = (np.frombuffer(raw, dtype=np.uint8).astype(np.float64) - 128.0) * 256.0
    elif fmt == _PCM and bits == 16:
        data = np.frombuffer(raw, dtype="<i2").astype(np.float64)
    elif fmt == _PCM and bits == 24:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        value = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        data = (np.where(value >= 1 << 23, value - (1 << 24), value) >> 8).astype(np.float64)
    elif fmt == _PCM and bits == 32:
        data = (np.frombuffer(raw, dtype="<i4") >> 16).astype(np.float64)
    elif fmt == _FLOAT and bits == 32:
        data = np.nan_to_num(np.frombuffer(raw, dtype="<f4").astype(np.float64)) * 32767.0
    else:
        raise AudioError(f"unsupported WAV encoding (format {fmt}, {bits} bits): "
                         "use PCM 16-bit or μ-law")
    if channels > 1:  # stereo call recordings: both legs, averaged
        data = data.reshape(-1, channels).mean(axis=1)
    return np.clip(np.round(data), -32768, 32767).astype(np.int16)


def read_wav(source: str | Path | bytes, max_seconds: float | None = MAX_AUDIO_SECONDS) -> Audio:
    """Parse a WAV file (path or bytes) into mono int16 :class:`Audio`."""
    if isinstance(source, (bytes, bytearray)):
        blob, name = bytes(source), "audio"
    else:
        path = Path(source)
        try:
            blob, name = path.read_bytes(), str(path)
        except FileNotFoundError:
            raise AudioError(f"{path}: no such file") from None
        except OSError as exc:
            raise AudioError(f"{path}: cannot read ({exc.strerror})") from None
    if len(blob) == 0:
        raise AudioError(f"{name}: the file is empty")
    if len(blob) < 12 or blob[:4] not in (b"RIFF", b"RIFX") or blob[8:12] != b"WAVE":
        hint = " (it looks like MP3: ask Twilio for the .wav)" if blob[:3] == b"ID3" else ""
        raise AudioError(f"{name}: not a WAV file{hint}")
    if blob[:4] == b"RIFX":
        raise AudioError(f"{name}: big-endian WAV (RIFX) is not supported")
    fmt_chunk: bytes | None = None
    data: bytes | None = None
    pos = 12
    while pos + 8 <= len(blob):
        chunk_id = blob[pos:pos + 4]
        size = struct.unpack_from("<I", blob, pos + 4)[0]
        body = blob[pos + 8:pos + 8 + size]  # short when the file was cut: keep what exists
        if chunk_id == b"fmt ":
            fmt_chunk = body
        elif chunk_id == b"data":
            data = body
            break
        pos += 8 + size + (size & 1)
    if fmt_chunk is None or len(fmt_chunk) < 16:
        raise AudioError(f"{name}: corrupt WAV (no valid 'fmt ' chunk)")
    fmt, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", fmt_chunk)
    if fmt == _EXTENSIBLE and len(fmt_chunk) >= 26:
        fmt = struct.unpack_from("<H", fmt_chunk, 24)[0]
    if channels < 1 or channels > 16:
        raise AudioError(f"{name}: corrupt WAV ({channels} channels)")
    if not MIN_RATE <= rate <= MAX_RATE:
        raise AudioError(f"{name}: unusable sample rate {rate} Hz "
                         f"(expected {MIN_RATE}-{MAX_RATE})")
    if bits not in (8, 16, 24, 32):
        raise AudioError(f"{name}: corrupt WAV ({bits} bits per sample)")
    if data is None:
        raise AudioError(f"{name}: corrupt WAV (no 'data' chunk)")
    frame_bytes = bits // 8 * channels
    source_seconds = (len(data) // frame_bytes) / rate
    truncated = False
    if max_seconds is not None and source_seconds > max_seconds:
        data = data[: int(max_seconds * rate) * frame_bytes]
        truncated = True
    samples = _to_int16(data, fmt, bits, channels)
    if len(samples) == 0:
        raise AudioError(f"{name}: the recording holds no audio")
    return Audio(samples, rate, channels, source_seconds, truncated)


def write_wav(path: str | Path, samples: np.ndarray, rate: int) -> None:
    """Write int16 mono PCM WAV (tests and tools)."""
    pcm = np.asarray(samples, dtype="<i2").tobytes()
    header = b"RIFF" + struct.pack("<I", 36 + len(pcm)) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, _PCM, 1, rate, rate * 2, 2, 16)
    Path(path).write_bytes(header + b"data" + struct.pack("<I", len(pcm)) + pcm)


def rms_dbfs(samples: np.ndarray) -> float:
    """Loudness of a block in dB full scale (-120 for digital silence)."""
    if len(samples) == 0:
        return -120.0
    rms = float(np.sqrt(np.mean(np.square(samples.astype(np.float64)))))
    return max(-120.0, 20.0 * np.log10(rms / 32768.0)) if rms > 0 else -120.0
