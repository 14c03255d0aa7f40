"""Fixtures for the SQL store: a real, migrated SQLite file per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from recordings.store import Database


@pytest.fixture()
def db(data_dir: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{data_dir / 'centralita.db'}")
    yield database
    database.dispose()


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path
