"""Users: API tokens stored hashed, scrypt passwords, roles."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from recordings.errors import UserError
from recordings.store import Database


def test_token_is_shown_once_and_stored_only_hashed(db: Database) -> None:
    created = db.users.add("ana", "agent", password="correct horse")
    assert created.token.startswith("ivr_")
    found = db.users.find_by_token(created.token)
    assert found is not None
    assert (found.name, found.role, found.agent_id, found.id) == ("ana", "agent", "ana",
                                                                  created.user.id)
    with db.engine.connect() as connection:
        row = connection.execute(text("SELECT * FROM users")).one()._mapping
    assert created.token not in " ".join(str(v) for v in row.values())
    assert "correct horse" not in str(row["password_hash"])


def test_wrong_tokens_find_nobody(db: Database) -> None:
    created = db.users.add("ana", "supervisor")
    assert db.users.find_by_token(created.token[:-1] + ("A" if created.token[-1] != "A" else "B")) is None
    assert db.users.find_by_token("") is None
    assert db.users.find_by_token("secret") is None
    assert db.users.find_by_token(created.token + "x") is None
    assert created.user.agent_id is None


def test_passwords(db: Database) -> None:
    db.users.add("ana", "admin", password="s3cret-enough")
    assert db.users.verify_password("ana", "s3cret-enough") is not None
    assert db.users.verify_password("ana", "s3cret-enougH") is None
    assert db.users.verify_password("bob", "s3cret-enough") is None
    db.users.add("tokenonly", "agent")
    assert db.users.verify_password("tokenonly", "") is None


@pytest.mark.parametrize(("name", "role", "message"), [
    ("ana", "boss", "unknown role"),
    ("bad name", "agent", "invalid user name"),
    ("", "agent", "invalid user name"),
])
def test_bad_users_are_refused(db: Database, name: str, role: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        db.users.add(name, role)


def test_duplicate_names_and_short_passwords(db: Database) -> None:
    db.users.add("ana", "agent")
    with pytest.raises(UserError, match="exists already"):
        db.users.add("ana", "admin")
    with pytest.raises(UserError, match="too short"):
        db.users.add("bob", "agent", password="short")
