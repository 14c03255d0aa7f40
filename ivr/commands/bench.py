"""`ivr bench ...`: benchmarks that print one JSON line of figures.

Each benchmark is the ``command`` object of a module ``benchmarks/<name>.py``; they
are imported only when run, so ``ivr --help`` stays fast.
"""

from __future__ import annotations

import importlib
import pkgutil

import click

import benchmarks


class _LazyBenchGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        names = [m.name for m in pkgutil.iter_modules(benchmarks.__path__) if not m.name.startswith("_")]
        return sorted(n for n in names if not n.startswith("common"))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.list_commands(ctx):
            return None
        module = importlib.import_module(f"benchmarks.{cmd_name}")
        command = getattr(module, "command", None)
        return command if isinstance(command, click.Command) else None


@click.group("bench", cls=_LazyBenchGroup)
def bench() -> None:
    """Benchmarks: each prints one JSON line and compares against a baseline run alongside."""
