"""`ivr flows ...`: check call-flow files before they reach a caller."""

from __future__ import annotations

from pathlib import Path

import click

from call_flows.loader import check_paths, flow_files
from call_flows.registry import DEFAULT_DIR, LINES_FILES


@click.group("flows")
def flows() -> None:
    """Call flows: the YAML files that say what callers hear."""


@flows.command("check")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
def check(paths: tuple[Path, ...]) -> None:
    """Validate flow files (default: the shipped definitions).

    PATHS are flow files, lines.yaml files or directories (searched for *.yaml).
    Prints "N flows OK" and exits 0 when everything is valid; otherwise prints one
    FILE:LINE: message per problem and exits 1.
    """
    targets = list(paths) or [DEFAULT_DIR]
    files = flow_files(targets)
    if not files:
        click.echo(f"{', '.join(map(str, targets))}:1: no flow files (*.yaml) found")
        raise SystemExit(1)
    problems = check_paths(files)
    if problems:
        for problem in problems:
            click.echo(str(problem))
        raise SystemExit(1)
    count = sum(1 for f in files if f.name not in LINES_FILES)
    click.echo(f"{count} flow{'' if count == 1 else 's'} OK")
