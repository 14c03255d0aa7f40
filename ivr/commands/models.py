"""`ivr models ...` commands."""

from __future__ import annotations

import click


@click.group("models")
def models() -> None:
    """models commands."""
