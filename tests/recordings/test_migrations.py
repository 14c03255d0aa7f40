"""Alembic migrations: an empty database is brought to head, matching the model."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from recordings.model import Base
from recordings.store import Database


def test_upgrade_on_an_empty_database_creates_every_table(tmp_path: Path) -> None:
    path = tmp_path / "fresh.db"
    database = Database(f"sqlite:///{path}")
    try:
        assert database.schema_revision() == "0001"
        tables = set(inspect(database.engine).get_table_names())
        assert {t.name for t in Base.metadata.sorted_tables} <= tables
        assert "alembic_version" in tables
        assert path.stat().st_mode & 0o777 == 0o600  # personal data: owner only
    finally:
        database.dispose()


def test_migrated_schema_matches_the_declared_tables(tmp_path: Path) -> None:
    path = tmp_path / "compare.db"
    Database(f"sqlite:///{path}").dispose()
    engine = create_engine(f"sqlite:///{path}")
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    engine.dispose()
    assert differences == []


def test_migrate_again_is_harmless_and_keeps_data(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'again.db'}"
    first = Database(url)
    first.users.add("ana", "agent")
    first.dispose()
    second = Database(url, migrate=False)
    second.migrate()
    assert second.users.get("ana") is not None
    second.dispose()


def test_migrations_render_for_postgresql() -> None:
    """Offline mode renders PostgreSQL DDL (no server here to run it against)."""
    import io

    from alembic import command
    from alembic.config import Config

    from recordings.store import MIGRATIONS

    buffer = io.StringIO()
    config = Config(output_buffer=buffer)
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", "postgresql://user@localhost/centralita")
    command.upgrade(config, "head", sql=True)
    sql = buffer.getvalue()
    assert "CREATE TABLE customers" in sql
    assert "TIMESTAMP WITH TIME ZONE" in sql
    assert "CONSTRAINT uq_call_events_call_sid_seq UNIQUE (call_sid, seq)" in sql
