"""Offline speech: audio, Vosk recognition, intents."""
