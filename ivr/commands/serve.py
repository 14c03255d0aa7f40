"""`ivr serve`: webhooks, API, pages, embedded Redis and RQ workers."""

from __future__ import annotations

import click


@click.command("serve")
def serve() -> None:
    """Answer calls (work in progress)."""
    raise click.ClickException("not built yet")
