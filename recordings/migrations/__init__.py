"""Alembic migrations of the SQL schema; run programmatically by ``Database.migrate()``."""
