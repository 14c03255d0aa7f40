"""The store: the only place in ``recordings`` that talks SQL (and Redis, for erase).

``Database(url)`` opens SQLite or PostgreSQL through SQLAlchemy 2, brings the schema
up to date with Alembic (once per process, under a lock) and offers small
repositories, one per kind of record, each opening a session per call:

    db.customers  db.calls  db.summaries  db.follow_ups  db.users  db.flows  db.audit

Every method takes and returns plain data (dataclasses, dicts), never ORM objects.
Text that may carry card or identity numbers is redacted before it is written.
The repositories live in this package's modules, one per area;
``redis_sweep`` is the Redis side of erasing a person.
"""

from __future__ import annotations

import fcntl
import functools
import json
import logging
import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from call_flows.actions import CustomerInfo
from recordings import model as m
from recordings.customers import DEFAULT_REGION, DEMO_CSV, normalise_phone
from recordings.errors import InvalidPhone, MigrationError
from recordings.store.accounts import AuditRepo, FlowRepo, UserRepo
from recordings.store.calls import CallRepo, FollowUpRepo, SummaryRepo, parse_time
from recordings.store.customers import CustomerRepo
from recordings.store.erasure import erase_rows

__all__ = ["MIGRATIONS", "Database", "parse_time"]

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
_migrated: set[str] = set()
_migrate_lock = threading.Lock()


class Database:
    """SQL access for customers, calls and everything after a call."""

    def __init__(self, url: str, *, migrate: bool = True, region: str = DEFAULT_REGION) -> None:
        self.url = url
        self.region = region
        self.engine = _engine(url)
        self.Session = sessionmaker(self.engine, expire_on_commit=False)
        self.customers = CustomerRepo(self)
        self.calls = CallRepo(self)
        self.summaries = SummaryRepo(self)
        self.follow_ups = FollowUpRepo(self)
        self.users = UserRepo(self)
        self.flows = FlowRepo(self)
        self.audit = AuditRepo(self)
        if migrate:
            self.migrate()

    # ------------------------------------------------------------------ plumbing

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @property
    def sqlite_path(self) -> Path | None:
        """The database file for a file-based SQLite URL, else None."""
        if not self.is_sqlite:
            return None
        database = make_url(self.url).database
        if not database or database == ":memory:":
            return None
        return Path(database).resolve()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: committed on success, rolled back on error."""
        with self.Session() as session, session.begin():
            yield session

    def migrate(self) -> None:
        """Upgrade the schema to the newest Alembic revision (idempotent, locked)."""
        with _migrate_lock:
            if self.url in _migrated:
                return
            with _process_lock(self.sqlite_path), self.engine.begin() as connection:
                if self.engine.dialect.name == "postgresql":
                    connection.execute(text("SELECT pg_advisory_xact_lock(74201)"))
                config = Config()
                config.set_main_option("script_location", str(MIGRATIONS))
                config.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
                config.attributes["connection"] = connection
                try:
                    command.upgrade(config, "head")
                except Exception as exc:
                    raise MigrationError(
                        f"could not migrate the database {make_url(self.url).render_as_string()}: "
                        f"{exc}; check DATABASE_URL and that the database is writable") from exc
            _migrated.add(self.url)

    def schema_revision(self) -> str | None:
        with self.engine.connect() as connection:
            if not inspect(connection).has_table("alembic_version"):
                return None
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()

    def dispose(self) -> None:
        self.engine.dispose()

    def load_demo(self) -> int:
        """Import the shipped fictional customers into an empty database; how many."""
        with self.session() as session:
            if session.scalars(select(m.CustomerRow.id).limit(1)).first() is not None:
                return 0
        return self.customers.import_csv(DEMO_CSV).created

    # ------------------------------------------------------------------ for the flow engine

    def customer_info_by_phone(self, raw: str, region: str | None = None) -> CustomerInfo | None:
        """Caller-ID lookup: any phone format; None for unknown or unparseable numbers."""
        try:
            e164 = normalise_phone(raw, region or self.region)
        except InvalidPhone:
            return None
        return self.customers.info_by_phone(e164)

    def customer_info_by_e164(self, e164: str) -> CustomerInfo | None:
        """Caller-ID lookup of a number already in E.164 (the webhook normalised it)."""
        return self.customers.info_by_phone(e164)

    def customer_info_by_account(self, account: str) -> CustomerInfo | None:
        return self.customers.info_by_account(account.strip())

    # The webhooks' three writes, named as in the design brief (see CallRepo).

    def record_call_start(self, call_sid: str, **details: Any) -> None:
        self.calls.record_start(call_sid, **details)

    def record_call_end(self, call_sid: str, **details: Any) -> None:
        self.calls.record_end(call_sid, **details)

    def add_events(self, call_sid: str, events: Iterable[Mapping[str, Any]]) -> int:
        return self.calls.add_events(call_sid, events)

    # ------------------------------------------------------------------ privacy support

    def erase_person(self, customer_id: int | None, phone: str | None,
                     extra_sids: Iterable[str] = ()) -> dict[str, Any]:
        """Delete a person's rows; anonymise audit entries about them.

        Returns ``{"identity": {...}, "call_sids": [...], "recording_paths": [...],
        "removed": {table: rows}}``. Raises :class:`NotFound` when nothing matches.
        """
        with self.session() as session:
            return erase_rows(session, customer_id, phone, extra_sids)

    def vacuum(self) -> str:
        """Make deleted rows unrecoverable from the database files; say what was done."""
        if self.is_sqlite:
            with self.engine.connect() as connection:
                connection = connection.execution_options(isolation_level="AUTOCOMMIT")
                connection.exec_driver_sql("VACUUM")
                busy, _, _ = connection.exec_driver_sql(
                    "PRAGMA wal_checkpoint(TRUNCATE)").one()
            return "VACUUM and WAL checkpoint done" + (" (WAL busy: retry)" if busy else "")
        if self.engine.dialect.name == "postgresql":
            with self.engine.connect() as connection:
                connection = connection.execution_options(isolation_level="AUTOCOMMIT")
                connection.exec_driver_sql("VACUUM")
            return "VACUUM done (run VACUUM FULL in a quiet hour to rewrite table files)"
        return f"no vacuum for {self.engine.dialect.name}"

    def search_text(self, needles: Iterable[tuple[str, str]]) -> list[str]:
        """Every ``table.column (kind)`` whose text contains one of ``(kind, needle)``."""
        needles = [(kind, needle) for kind, needle in needles if needle]
        found: list[str] = []
        with self.engine.connect() as connection:
            for table in m.Base.metadata.sorted_tables:
                for row in connection.execute(table.select()):
                    for column, value in row._mapping.items():
                        if value is None:
                            continue
                        text_value = value if isinstance(value, str) else json.dumps(
                            value, default=str, ensure_ascii=False)
                        for kind, needle in needles:
                            if needle in text_value:
                                found.append(f"{table.name}.{column} ({kind})")
        return sorted(set(found))


def _engine(url: str) -> Engine:
    parsed = make_url(url)
    # JSON kept as UTF-8 (not \u escapes): what is stored is what a search finds.
    serializer = functools.partial(json.dumps, ensure_ascii=False)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, json_serializer=serializer)
    if parsed.database in (None, "", ":memory:"):
        return create_engine(url, poolclass=StaticPool, json_serializer=serializer,
                             connect_args={"check_same_thread": False})
    path = Path(parsed.database)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():  # personal data: owner only (SQLite gives -wal/-shm the same)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    engine = create_engine(url, connect_args={"timeout": 15}, json_serializer=serializer)

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        # WAL: web workers, RQ workers and the CLI read while one writes.
        # secure_delete: deleted rows are zeroed, not left in free pages (erase).
        for pragma in ("journal_mode=WAL", "foreign_keys=ON", "secure_delete=ON",
                       "busy_timeout=15000"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    return engine


@contextmanager
def _process_lock(sqlite_path: Path | None) -> Iterator[None]:
    """Serialise migrations between processes sharing one SQLite file."""
    if sqlite_path is None:
        yield
        return
    with open(sqlite_path.with_name(sqlite_path.name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
