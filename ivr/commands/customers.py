"""`ivr customers import|export|erase`: customer records on the server's own state.

The commands read ``DATABASE_URL`` / ``IVR_DATA_DIR`` like the server and, for
``erase``, reach Redis through ``ivr.embedded.ensure_redis`` (the embedded server
under ``IVR_DATA_DIR`` is started for the command when none is running).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import redis

from ivr.settings import Settings
from recordings.customers import DEFAULT_REGION
from recordings.errors import RecordingsError
from recordings.privacy import EraseReport, erase
from recordings.store import Database

MAX_SKIPPED_SHOWN = 50


def open_database(settings: Settings) -> Database:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        return Database(settings.effective_database_url)
    except RecordingsError as exc:
        raise click.ClickException(str(exc)) from None


@click.group("customers")
def customers() -> None:
    """Customer records: import a CSV file, export or erase one person."""


@customers.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--region", default=DEFAULT_REGION, show_default=True,
              help="Country whose national numbers the file holds (ISO code).")
def import_(file: Path, region: str) -> None:
    """Load customers from FILE.csv (header: at least name,phone,email,language).

    Other columns (vip, account, order_status, ...) are kept with the record; phones
    may be written in any common format and are stored as E.164. A row whose phone
    is already known updates that customer. Exits 1 when nothing was imported.
    """
    settings = Settings.from_env()
    database = open_database(settings)

    def progress(done: int, total: int) -> None:
        if total >= 1000:
            click.echo(f"  {done}/{total} rows", err=True)

    try:
        report = database.customers.import_csv(file, region=region, progress=progress)
    except RecordingsError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        database.dispose()
    click.echo(f"{file}: {report.rows} rows, {report.created} created, "
               f"{report.updated} updated, {len(report.skipped)} skipped")
    for skipped in report.skipped[:MAX_SKIPPED_SHOWN]:
        click.echo(f"{file}:{skipped.line}: skipped: {skipped.reason}")
    if len(report.skipped) > MAX_SKIPPED_SHOWN:
        click.echo(f"... and {len(report.skipped) - MAX_SKIPPED_SHOWN} more skipped rows")
    if report.imported == 0:
        click.echo("error: no customer could be imported", err=True)
        sys.exit(1)


@customers.command("export")
@click.argument("customer_id", metavar="ID", type=int)
def export(customer_id: int) -> None:
    """Print everything stored about customer ID as one JSON document."""
    database = open_database(Settings.from_env())
    try:
        document = database.customers.export(customer_id)
    except RecordingsError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        database.dispose()
    click.echo(json.dumps(document, ensure_ascii=False, indent=2))


@customers.command("erase")
@click.argument("customer_id", metavar="[ID]", type=int, required=False)
@click.option("--phone", help="Erase by phone number (also callers with no record).")
@click.option("--region", default=DEFAULT_REGION, show_default=True,
              help="Country for a phone number written without +country code.")
def erase_(customer_id: int | None, phone: str | None, region: str) -> None:
    """Remove a person everywhere (SQL, Redis, files under IVR_DATA_DIR) and verify.

    Give the customer ID or --phone. Prints what was removed store by store, then
    where the person can still be found (nothing, when it worked). Exits 1 when a
    trace remains.
    """
    if (customer_id is None) == (phone is None):
        raise click.UsageError("give either a customer ID or --phone +E164, not both")
    settings = Settings.from_env()
    database = open_database(settings)
    try:
        report = _erase_with_redis(settings, database, customer_id, phone, region)
    except RecordingsError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        database.dispose()
    click.echo(format_report(report))
    if not report.clean:
        sys.exit(1)


def _erase_with_redis(settings: Settings, database: Database, customer_id: int | None,
                      phone: str | None, region: str) -> EraseReport:
    from ivr.embedded import ensure_redis

    skip = [settings.effective_model_dir]  # speech models: big and not personal
    with ensure_redis(settings) as url:
        client = redis.Redis.from_url(url)
        try:
            return erase(database, client, settings.data_dir, customer_id, phone,
                         region=region, skip_dirs=skip)
        finally:
            client.close()


def format_report(report: EraseReport) -> str:
    who = f"customer {report.customer_id}" if report.customer_id is not None else "caller"
    lines = [f"erased {who} ({report.calls} calls)"]
    for store in report.stores:
        removed = ", ".join(f"{k}: {v}" for k, v in store.removed.items()) or "nothing found"
        lines.append(f"  {store.store}: {removed}")
        lines += [f"    {note}" for note in store.notes]
    searched = ", ".join(report.searched_for)
    if not report.remaining:
        lines.append(f"  verification: no trace left (searched SQL, Redis and files for "
                     f"{searched})")
    elif report.clean:
        lines.append(f"  verification: no phone, email or call of theirs left (searched for "
                     f"{searched}); their name still appears here (a namesake?):")
        lines += [f"    {place}" for place in report.remaining]
    else:
        lines.append(f"  verification: TRACES REMAIN (searched for {searched}):")
        lines += [f"    {place}" for place in report.remaining]
    return "\n".join(lines)
