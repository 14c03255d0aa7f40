"""`ivr models ...` commands: list and download Vosk models."""

from __future__ import annotations

import sys

import click

from speech.errors import ModelDownloadError
from speech.models import BASE_URL_ENV, OFFICIAL_MODELS, download_model, list_models, model_root


@click.group("models")
def models() -> None:
    """Vosk speech models: what is installed, and fetching the official ones."""


@models.command("list")
def list_command() -> None:
    """Show installed models: language, name, size and directory."""
    found = list_models()
    if not found:
        click.echo(f"no models in {model_root()}; fetch one with `ivr models download es|ca|en`")
        return
    for model in found:
        click.echo(f"{model.language}\t{model.name}\t{model.size_bytes / 1e6:.1f} MB\t"
                   f"{model.source}\t{model.path}")


@models.command("download")
@click.argument("language", type=click.Choice(sorted(OFFICIAL_MODELS)))
@click.option("--force", is_flag=True, help="Replace a model already installed.")
@click.option("--base-url", default=None, envvar=BASE_URL_ENV,
              help="Download site (default: the Vosk project's model page).")
def download_command(language: str, force: bool, base_url: str | None) -> None:
    """Fetch the official small model for LANGUAGE into IVR_VOSK_MODEL_DIR/LANGUAGE.

    Checks the archive size, the zip's integrity and that no file lands outside the
    target directory.
    """
    spec = OFFICIAL_MODELS[language]
    with click.progressbar(length=spec.size, label=f"{spec.name}.zip",
                           file=sys.stderr) as bar:
        last = [0]

        def progress(done: int, total: int) -> None:
            bar.update(done - last[0])
            last[0] = done

        try:
            model = download_model(language, base_url=base_url, force=force, progress=progress)
        except ModelDownloadError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"installed {model.name} ({model.size_bytes / 1e6:.1f} MB) in {model.path}")
