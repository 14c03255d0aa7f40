"""`ivr users ...` commands."""

from __future__ import annotations

import click


@click.group("users")
def users() -> None:
    """users commands."""
