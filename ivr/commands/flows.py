"""`ivr flows ...` commands."""

from __future__ import annotations

import click


@click.group("flows")
def flows() -> None:
    """flows commands."""
