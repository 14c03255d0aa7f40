"""The speech package's exceptions: one root, messages a person can act on."""

from __future__ import annotations


class SpeechError(Exception):
    """Root of every error raised by the ``speech`` package."""


class AudioError(SpeechError):
    """Audio that cannot be used: missing, empty, corrupt or in an unsupported format."""


class ModelNotFoundError(SpeechError):
    """No Vosk model for a language; the message names the command that fetches one."""


class ModelLoadError(SpeechError):
    """A model directory exists but Vosk could not load it."""


class ModelDownloadError(SpeechError):
    """A model download failed or the archive did not pass its checks."""


class RecognitionError(SpeechError):
    """The recogniser refused the audio or the grammar."""
