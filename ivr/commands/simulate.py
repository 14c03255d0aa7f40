"""`ivr simulate`: place a call against a running server the way Twilio would.

The script is built from ``--digits``/``--say``/``--silence``/``--record``/``--hangup``
in the order given; ``--interactive`` asks the person at each point the caller must
act once the script runs out. Requests are signed with ``TWILIO_AUTH_TOKEN``.
"""

from __future__ import annotations

import os
import re
from typing import Any

import click

from ivr.simulator import (
    DEFAULT_FROM,
    DEFAULT_TO,
    DialOutcome,
    Event,
    HangUp,
    Press,
    QueueOutcome,
    RecordAudio,
    ScriptItem,
    ServerUnreachable,
    Silence,
    SimulatedCall,
    SimulatorError,
    Speak,
)

KEYS = set("0123456789*#")
E164 = re.compile(r"\+[1-9]\d{5,14}")
QUEUE_RESULTS = ("bridged", "leave", "hangup")


class _SimulateCommand(click.Command):
    """Keeps the raw arguments: the script's order spans several options."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["simulate.argv"] = list(args)
        return super().parse_args(ctx, args)


SCRIPT_OPTIONS = {"digits", "say", "silence", "record", "queue", "hangup"}


def _ordered_script(command: click.Command, argv: list[str]) -> list[ScriptItem]:
    """The script options in the order typed (click groups repeated options together)."""
    takes_value: dict[str, tuple[str, bool]] = {}
    for param in command.params:
        if isinstance(param, click.Option):
            for opt in param.opts:
                takes_value[opt] = (param.name or "", not param.is_flag)
    items: list[ScriptItem] = []
    args = iter(argv)
    for arg in args:
        name, eq, value = arg.partition("=") if arg.startswith("--") else (arg[:2], "", arg[2:])
        if name not in takes_value:
            continue
        dest, needs_value = takes_value[name]
        if needs_value and not eq and not value:
            value = next(args, "")
        if dest in SCRIPT_OPTIONS:
            items.extend(_items(dest, value))
    return items


def _items(dest: str, value: str) -> list[ScriptItem]:
    if dest == "digits":
        groups = [g.strip() for g in value.split(",")]
        for group in groups:
            if not group or set(group) - KEYS:
                raise click.BadParameter(f"{value!r}: keys are 0-9, * and #, one group per "
                                         f"Gather separated by commas (--digits 1,2)",
                                         param_hint="--digits")
        return [Press(g) for g in groups]
    if dest == "say":
        return [Speak(value)]
    if dest == "silence":
        return [Silence()]
    if dest == "hangup":
        return [HangUp()]
    if dest == "record":
        try:
            return [RecordAudio(seconds=float(value))]
        except ValueError:
            raise click.BadParameter(f"{value!r} is not a number of seconds",
                                     param_hint="--record") from None
    return [_queue_item(value)]


def _queue_item(text: str) -> QueueOutcome:
    words = text.split()
    result = words[0] if words else "hangup"
    if result not in QUEUE_RESULTS:
        raise click.BadParameter(f"{text!r}: say bridged, leave or hangup, then optionally "
                                 f"the seconds waited ('bridged 30')", param_hint="--queue")
    try:
        after = float(words[1]) if len(words) > 1 else 0.0
    except ValueError:
        raise click.BadParameter(f"{words[1]!r} is not a number of seconds",
                                 param_hint="--queue") from None
    return QueueOutcome(result, after)


def _ask(call: SimulatedCall) -> ScriptItem | None:
    """Interactive input: what the person types becomes the caller's next action."""
    pending = call.pending
    if pending == "Gather" or (pending == "Enqueue" and call.queue_listening):
        text = click.prompt("keys or words (empty: silence, 'hangup')", default="",
                            show_default=False).strip()
        if not text:
            return Silence()
        if text.lower() == "hangup":
            return HangUp()
        return Press(text) if set(text) <= KEYS else Speak(text)
    if pending == "Record":
        text = click.prompt("seconds to record (empty: silence, 'hangup')", default="",
                            show_default=False).strip()
        if text.lower() == "hangup":
            return HangUp()
        try:
            return RecordAudio(seconds=float(text)) if text else Silence()
        except ValueError:
            click.echo("type a number of seconds", err=True)
            return _ask(call)
    if pending == "Enqueue":
        text = click.prompt("queue outcome: bridged|leave|hangup [seconds]", default="hangup")
        try:
            return _queue_item(text)
        except click.BadParameter as exc:
            click.echo(exc.format_message(), err=True)
            return _ask(call)
    if pending == "Dial":
        return DialOutcome(click.prompt("dial outcome", default="completed"))
    return None


def _print(event: Event) -> None:
    click.echo(f"  {event}")


@click.command("simulate", cls=_SimulateCommand)
@click.option("--url", required=True, help="The server's base URL, e.g. http://127.0.0.1:5000")
@click.option("--from", "from_", default=DEFAULT_FROM, show_default=True,
              help="Caller ID (E.164).")
@click.option("--to", default=DEFAULT_TO, show_default=True, help="Dialled number (E.164).")
@click.option("--digits", "-d", multiple=True, metavar="1,2",
              help="Keys for the next Gathers, one comma-separated group per Gather.")
@click.option("--say", "-s", multiple=True, metavar="WORDS", help="Words for the next Gather.")
@click.option("--silence", is_flag=True, multiple=True, help="Stay silent at the next Gather.")
@click.option("--record", multiple=True, metavar="SECONDS", help="Speak for N s at a Record.")
@click.option("--queue", multiple=True, metavar="'bridged 30'",
              help="Outcome of the next Enqueue: bridged|leave|hangup, then seconds waited.")
@click.option("--hangup", is_flag=True, multiple=True, help="Hang up at that point.")
@click.option("--interactive", "-i", is_flag=True,
              help="When the script runs out, ask for keys or words at each Gather.")
@click.option("--call-sid", default=None, help="CallSid to use (default: a new random one).")
@click.option("--max-requests", default=100, show_default=True,
              help="Loop guard: give up after this many webhook requests.")
@click.pass_context
def simulate(ctx: click.Context, /, url: str, from_: str, to: str, interactive: bool,
             call_sid: str | None, max_requests: int, **_script_options: Any) -> None:
    """Place a call the way Twilio would and print what the caller hears and does.

    Script options are played in the order given, e.g.
    `ivr simulate --url http://127.0.0.1:5000 --digits 1 --say factura --digits 2`.
    Requests are signed with TWILIO_AUTH_TOKEN (unsigned, with a warning, when unset).
    """
    for flag, number in (("--from", from_), ("--to", to)):
        if not E164.fullmatch(number):
            raise click.BadParameter(f"{number!r} is not an E.164 number like +34600000001",
                                     param_hint=flag)
    script = _ordered_script(ctx.command, ctx.meta.get("simulate.argv", []))
    token = os.environ.get("TWILIO_AUTH_TOKEN") or None
    if token is None:
        click.echo("warning: TWILIO_AUTH_TOKEN is not set: requests are unsigned and a "
                   "server that checks signatures answers 403", err=True)
    call = SimulatedCall(url, token, from_, to, call_sid, script, max_requests=max_requests,
                         on_event=_print)
    click.echo(f"calling {url} from {from_} to {to} (CallSid {call.call_sid})")
    try:
        call.run(_ask if interactive else None)
    except ServerUnreachable as exc:
        raise click.ClickException(str(exc)) from None
    except SimulatorError as exc:
        raise click.ClickException(f"the call failed: {exc}") from None
    if call.script:
        click.echo(f"warning: the call ended before {len(call.script)} script item(s): "
                   + ", ".join(map(str, call.script)), err=True)
    click.echo(f"call {call.status}: {call.duration} s, {len(call.requests)} requests")

