"""`ivr report kpis`: service KPIs from the filed calls, as a table, JSON or CSV.

Reads the same database as the server (``DATABASE_URL`` / ``IVR_DATA_DIR``). The
definitions are in ``recordings/kpis.py``; a KPI whose base is empty prints "n/a"
(``null`` in JSON, empty in CSV) rather than a number nobody measured.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import date, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click

from ivr.commands.customers import open_database
from ivr.settings import Settings
from recordings.config import ConfigError, JobConfig
from recordings.kpi_source import kpi_document
from recordings.kpis import COLUMNS, GROUPS

HEADERS = {"calls": "calls", "csat_pct": "CSAT %", "csat_avg": "CSAT avg", "csat_n": "CSAT n",
           "nps": "NPS", "nps_n": "NPS n", "fcr_pct": "FCR %", "fcr_n": "FCR n",
           "fcr_pending": "FCR pend", "aht_s": "AHT s", "asa_s": "ASA s",
           "service_level_pct": "SL %", "abandon_pct": "aband %",
           "containment_pct": "contain %", "served": "served", "abandoned": "aband",
           "resolved_ivr": "IVR res"}


def _day(value: str, name: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date: write YYYY-MM-DD",
                                 param_hint=name) from None


def _cell(value: object) -> str:
    if value is None:
        return "n/a"
    return f"{value:g}" if isinstance(value, float) else str(value)


def table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        lines.append("  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(row, widths))).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


@click.group("report")
def report_group() -> None:
    """Reports on the filed calls."""


@report_group.command("kpis")
@click.option("--from", "from_", required=True, help="First day (YYYY-MM-DD), inclusive.")
@click.option("--to", "to", required=True, help="Last day (YYYY-MM-DD), inclusive.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table",
              show_default=True)
@click.option("--tz", default="UTC", show_default=True,
              help="Time zone of the days (e.g. Europe/Madrid).")
@click.option("--by", "groups", multiple=True, type=click.Choice(GROUPS),
              help="Groupings to show (repeatable); default: all of them.")
@click.option("--fcr-days", type=float, default=None,
              help="First-call-resolution window in days [IVR_FCR_WINDOW_DAYS or 7].")
@click.option("--sl-seconds", type=float, default=20.0, show_default=True,
              help="Service level: answered within this many seconds.")
def kpis(from_: str, to: str, fmt: str, tz: str, groups: tuple[str, ...],
         fcr_days: float | None, sl_seconds: float) -> None:
    """CSAT, NPS, FCR, AHT, ASA, service level, abandonment, IVR containment per line,
    queue, agent and day, then the per-node drop-off funnel of each flow."""
    first, last = _day(from_, "--from"), _day(to, "--to")
    if last < first:
        raise click.BadParameter("--to is before --from", param_hint="--to")
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise click.BadParameter(f"unknown time zone {tz!r}", param_hint="--tz") from None
    try:
        window = timedelta(days=fcr_days if fcr_days is not None
                           else JobConfig.from_env().fcr_window_days)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    database = open_database(Settings.from_env())
    click.echo(f"reading calls {first.isoformat()} .. {last.isoformat()} ({tz})", err=True)
    doc = kpi_document(database, first, last, zone, window, sl_seconds, groups)
    if fmt == "json":
        click.echo(json.dumps(doc, indent=2))
        return
    rows, steps = doc["rows"], doc["funnel"]
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["group", "key", *COLUMNS])
        for r in rows:
            writer.writerow([r["group"], r["key"], *("" if r[c] is None else r[c]
                                                      for c in COLUMNS)])
        click.echo(out.getvalue(), nl=False)
    else:
        grid = [["group", "key", *(HEADERS[c] for c in COLUMNS)]]
        grid += [[r["group"], r["key"], *(_cell(r[c]) for c in COLUMNS)] for r in rows]
        click.echo(table(grid))
        if steps:
            click.echo("\nDrop-off funnel")
            grid = [["flow", "node", "reached", "dropped", "drop %"]]
            grid += [[st["flow"], st["node"], str(st["reached"]), str(st["dropped"]),
                      _cell(st["drop_pct"])] for st in steps]
            click.echo(table(grid))
