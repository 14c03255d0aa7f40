"""`ivr users add|list`: logins for the web pages and their API tokens."""

from __future__ import annotations

import sys

import click

from ivr.commands.customers import open_database
from ivr.settings import Settings
from recordings.errors import RecordingsError
from recordings.model import Role


@click.group("users")
def users() -> None:
    """Logins for the web pages and the JSON API."""


@users.command("add")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]),
              help="What the user may see: admin everything, supervisor /dashboard, "
                   "agent /agent.")
@click.option("--password-stdin", is_flag=True,
              help="Read the web password from the first line of stdin (at least 8 "
                   "characters). Without it the user has only the API token.")
@click.option("--agent-id", help="The agent id in the queues (default: NAME for agents).")
def add(name: str, role: str, password_stdin: bool, agent_id: str | None) -> None:
    """Create user NAME and print their API token (shown this once only)."""
    password = None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise click.UsageError("--password-stdin: the first line of stdin is empty")
    database = open_database(Settings.from_env())
    try:
        created = database.users.add(name, role, password=password, agent_id=agent_id)
    except RecordingsError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        database.dispose()
    click.echo(f"created {created.user.role} {created.user.name!r}; API token (shown once, "
               "keep it secret):", err=True)
    click.echo(created.token)


@users.command("list")
def list_() -> None:
    """List users: name, role, agent id."""
    database = open_database(Settings.from_env())
    try:
        for user in database.users.list():
            state = " (disabled)" if user.disabled else ""
            click.echo(f"{user.name}\t{user.role}\t{user.agent_id or '-'}{state}")
    finally:
        database.dispose()
