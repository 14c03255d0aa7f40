"""`ivr simulate`: webhooks, API, pages, embedded Redis and RQ workers."""

from __future__ import annotations

import click


@click.command("simulate")
def simulate() -> None:
    """Place a simulated call (work in progress)."""
    raise click.ClickException("not built yet")
