"""Users (logins, API tokens), flow versions and the audit log in SQL."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from recordings import model as m
from recordings import users
from recordings.errors import NotFound, UserError
from recordings.privacy import redact_value
from recordings.users import NewUser, User

if TYPE_CHECKING:
    from recordings.store import Database


class UserRepo:
    """Logins and API tokens (see ``recordings.users`` for the hashing)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, name: str, role: str, *, password: str | None = None,
            agent_id: str | None = None) -> NewUser:
        """Create a user; the returned plaintext token is never stored nor shown again."""
        checked = users.check_new_user(name, role)
        password_hash = users.hash_password(password) if password is not None else None
        token, prefix, digest = users.new_token()
        if agent_id is None and checked is m.Role.AGENT:
            agent_id = name
        with self.db.session() as session:
            if session.scalars(select(m.UserRow.id).where(m.UserRow.name == name)).first():
                raise UserError(f"a user named {name!r} exists already; choose another name")
            row = m.UserRow(name=name, role=checked.value, password_hash=password_hash,
                            token_prefix=prefix, token_hash=digest, agent_id=agent_id,
                            disabled=False)
            session.add(row)
            session.flush()
            return NewUser(user=_user(row), token=token)

    def find_by_token(self, token: str) -> User | None:
        prefix = users.token_prefix(token)
        if prefix is None:
            return None
        with self.db.session() as session:
            for row in session.scalars(select(m.UserRow).where(
                    m.UserRow.token_prefix == prefix, m.UserRow.disabled.is_(False))):
                if users.token_matches(token, row.token_hash):
                    return _user(row)
        return None

    def verify_password(self, name: str, password: str) -> User | None:
        with self.db.session() as session:
            row = session.scalars(select(m.UserRow).where(m.UserRow.name == name)).first()
        if row is None or row.disabled or not users.password_matches(password, row.password_hash):
            return None
        return _user(row)

    def get(self, name: str) -> User | None:
        with self.db.session() as session:
            row = session.scalars(select(m.UserRow).where(m.UserRow.name == name)).first()
            return _user(row) if row else None

    def list(self) -> list[User]:
        with self.db.session() as session:
            return [_user(r) for r in session.scalars(select(m.UserRow).order_by(m.UserRow.name))]


def _user(row: m.UserRow) -> User:
    return User(id=row.id, name=row.name, role=row.role, agent_id=row.agent_id,
                created_at=row.created_at, disabled=bool(row.disabled))


class FlowRepo:
    """Versions of call-flow YAML written in the flow editor."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def save(self, flow_id: str, text_: str, author: str | None = None) -> int:
        with self.db.session() as session:
            newest = session.scalars(select(m.FlowVersionRow.version).where(
                m.FlowVersionRow.flow_id == flow_id).order_by(
                m.FlowVersionRow.version.desc())).first() or 0
            session.add(m.FlowVersionRow(flow_id=flow_id, version=newest + 1, text=text_,
                                         author=author, published=False))
            return newest + 1

    def publish(self, flow_id: str, version: int) -> None:
        with self.db.session() as session:
            rows = list(session.scalars(select(m.FlowVersionRow).where(
                m.FlowVersionRow.flow_id == flow_id)))
            if not any(r.version == version for r in rows):
                raise NotFound(f"flow {flow_id!r} has no version {version}")
            for row in rows:
                row.published = row.version == version

    def get(self, flow_id: str, version: int | None = None) -> dict[str, Any] | None:
        """One version, or the published one when ``version`` is None."""
        with self.db.session() as session:
            query = select(m.FlowVersionRow).where(m.FlowVersionRow.flow_id == flow_id)
            query = query.where(m.FlowVersionRow.version == version) if version is not None \
                else query.where(m.FlowVersionRow.published.is_(True))
            row = session.scalars(query).first()
            return row.to_dict() if row else None

    def versions(self, flow_id: str) -> list[dict[str, Any]]:
        with self.db.session() as session:
            rows = session.scalars(select(m.FlowVersionRow).where(
                m.FlowVersionRow.flow_id == flow_id).order_by(m.FlowVersionRow.version))
            return [r.to_dict() for r in rows]


class AuditRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    def write(self, actor: str, action: str, target_kind: str, target_id: str,
              detail: Mapping[str, Any] | None = None) -> None:
        with self.db.session() as session:
            session.add(m.AuditRow(actor=actor, action=action, target_kind=target_kind,
                                   target_id=str(target_id),
                                   detail=redact_value(dict(detail or {}))))

    def entries(self, target_kind: str | None = None, target_id: str | None = None
                ) -> list[dict[str, Any]]:
        with self.db.session() as session:
            query = select(m.AuditRow).order_by(m.AuditRow.id)
            if target_kind is not None:
                query = query.where(m.AuditRow.target_kind == target_kind)
            if target_id is not None:
                query = query.where(m.AuditRow.target_id == str(target_id))
            return [r.to_dict() for r in session.scalars(query)]
