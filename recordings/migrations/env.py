"""Alembic environment: runs on the connection ``Database.migrate()`` hands over.

There is no alembic.ini: ``recordings.store`` builds the Config in code, so the same
migrations run from the server, the CLI and tests, on SQLite and PostgreSQL alike.
Offline mode (``--sql``) renders the SQL for the URL in ``sqlalchemy.url``.
"""

from __future__ import annotations

from alembic import context

from recordings.model import Base

config = context.config
target_metadata = Base.metadata


def run_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"),
                      target_metadata=target_metadata, literal_binds=True,
                      render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through recordings.store.Database.migrate()")
    # render_as_batch: SQLite cannot ALTER most things; batch mode copies the table.
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=True, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
