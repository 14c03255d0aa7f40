"""`ivr speech ...` commands."""

from __future__ import annotations

import click


@click.group("speech")
def speech() -> None:
    """speech commands."""
