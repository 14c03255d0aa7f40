"""Customer records in SQL: lookup, upsert, CSV import, export, the API view."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, bindparam, select
from sqlalchemy.orm import Session

from call_flows.actions import CustomerInfo
from recordings import model as m
from recordings.customers import (
    Customer,
    CustomerInput,
    ImportReport,
    Skipped,
    count_rows,
    customer_info,
    read_csv,
)
from recordings.errors import Conflict, ImportFileError, NotFound
from recordings.privacy import redact_value
from recordings.store.calls import call_document

if TYPE_CHECKING:
    from recordings.store import Database

IMPORT_BATCH = 500


def _info_query(column: str) -> Any:
    """What the flow engine may know of the customer whose ``column`` is ``:value``,
    with their newest open follow-up."""
    c, f = m.CustomerRow.__table__.c, m.FollowUpRow.__table__.c
    newest_open = (select(f.description)
                   .where(f.customer_id == c.id, f.state == m.FollowUpState.OPEN.value)
                   .order_by(f.created_at.desc(), f.id.desc()).limit(1)
                   .scalar_subquery())
    return (select(c.id, c.name, c.language, c.vip, c.account, c.fields,
                   newest_open.label("follow_up"))
            .where(c[column] == bindparam("value")).limit(1))

ProgressFn = Callable[[int, int], None]


class PreparedQuery:
    """A read-only SELECT compiled once for the engine's dialect and run on a pooled
    DBAPI connection: for lookups on the webhook path, where SQLAlchemy's per-execution
    work (cache key, result set-up) costs more than the query. Rows are plain tuples."""

    def __init__(self, engine: Engine, statement: Any) -> None:
        compiled = statement.compile(dialect=engine.dialect)
        self.engine = engine
        self.sql = str(compiled)
        self.defaults = dict(compiled.params)
        self.order = tuple(compiled.positiontup or ()) if engine.dialect.positional else None

    def first(self, **values: Any) -> tuple[Any, ...] | None:
        params = dict(self.defaults, **values)
        args: Any = tuple(params[k] for k in self.order) if self.order is not None else params
        connection = self.engine.raw_connection()
        try:
            cursor = connection.cursor()
            try:
                cursor.execute(self.sql, args)
                row = cursor.fetchone()
            finally:
                cursor.close()
            connection.rollback()  # end the read transaction PostgreSQL opened
        finally:
            connection.close()  # back to the pool
        return tuple(row) if row is not None else None


class CustomerRepo:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._prepared: dict[str, PreparedQuery] = {}

    def get(self, customer_id: int) -> Customer | None:
        with self.db.session() as session:
            row = session.get(m.CustomerRow, customer_id)
            return _customer(row) if row else None

    def find_by_phone(self, e164: str) -> Customer | None:
        return self._find(m.CustomerRow.phone == e164)

    def find_by_account(self, account: str) -> Customer | None:
        return self._find(m.CustomerRow.account == account) if account else None

    def _find(self, condition: Any) -> Customer | None:
        with self.db.session() as session:
            row = session.scalars(select(m.CustomerRow).where(condition)).first()
            return _customer(row) if row else None

    def info_by_phone(self, e164: str) -> CustomerInfo | None:
        """Caller-ID lookup on every new call: a statement compiled once, run on a pooled
        DBAPI connection (a third of the cost of a Core execution)."""
        return self._info("phone", e164)

    def info_by_account(self, account: str) -> CustomerInfo | None:
        return self._info("account", account) if account else None

    def _info(self, column: str, value: str) -> CustomerInfo | None:
        query = self._prepared.get(column)
        if query is None:
            query = self._prepared[column] = PreparedQuery(self.db.engine, _info_query(column))
        row = query.first(value=value)
        if row is None:
            return None
        ident, name, language, vip, account, fields, follow_up = row
        if isinstance(fields, (str, bytes)):  # SQLite hands JSON back as text
            fields = json.loads(fields)
        return CustomerInfo(
            id=str(ident), name=name, language=language, vip=bool(vip),
            account=account, open_follow_up=follow_up,
            fields={str(k): str(v) for k, v in (fields or {}).items() if v is not None})

    def customer_info(self, customer: Customer) -> CustomerInfo:
        """What the flow engine may know about ``customer`` (newest open follow-up too)."""
        with self.db.session() as session:
            description = session.scalars(
                select(m.FollowUpRow.description)
                .where(m.FollowUpRow.customer_id == customer.id,
                       m.FollowUpRow.state == m.FollowUpState.OPEN.value)
                .order_by(m.FollowUpRow.created_at.desc(), m.FollowUpRow.id.desc())).first()
        return customer_info(customer, description)

    def upsert(self, data: CustomerInput) -> tuple[Customer, bool]:
        """Create or update by phone (then account); return ``(customer, created)``."""
        with self.db.session() as session:
            existing = _existing(session, [data])
            clash = _account_clash(existing, data)
            if clash:
                raise Conflict(clash)
            row, created = _apply(session, existing, data)
            session.flush()
            _link_unknown_calls(session, [row])
            _open_follow_ups(session, [(row, data)] if data.follow_up else [])
            session.flush()
            return _customer(row), created

    def import_csv(self, path: Path, *, region: str | None = None,
                   progress: ProgressFn | None = None) -> ImportReport:
        """Load a CSV file; bad rows are reported with their line, never fatal."""
        report = ImportReport()
        if not path.is_file():
            raise ImportFileError(f"{path}: no such file")
        total = count_rows(path) if progress else 0
        batch: list[CustomerInput] = []
        reported = 0
        try:
            for item in read_csv(path, region or self.db.region):
                report.rows += 1
                if isinstance(item, Skipped):
                    report.skipped.append(item)
                else:
                    batch.append(item)
                if len(batch) >= IMPORT_BATCH:
                    self._write_batch(batch, report)
                    batch = []
                    if progress:
                        progress(report.rows, total)
                        reported = report.rows
        except ImportFileError as exc:
            if report.imported:
                raise ImportFileError(f"{exc}; {report.imported} customers before that point "
                                      "were imported: importing the fixed file again is "
                                      "safe") from None
            raise
        if batch:
            self._write_batch(batch, report)
        if progress and report.rows != reported:
            progress(report.rows, max(total, report.rows))
        return report

    def _write_batch(self, batch: list[CustomerInput], report: ImportReport) -> None:
        with self.db.session() as session:
            existing = _existing(session, batch)
            touched: list[m.CustomerRow] = []
            touched_inputs: list[tuple[m.CustomerRow, CustomerInput]] = []
            for data in batch:
                clash = _account_clash(existing, data)
                if clash:
                    report.skipped.append(Skipped(data.line, clash))
                    continue
                row, created = _apply(session, existing, data)
                touched.append(row)
                touched_inputs.append((row, data))
                if created:
                    report.created += 1
                else:
                    report.updated += 1
            session.flush()
            _link_unknown_calls(session, touched)
            _open_follow_ups(session, [(row, d) for row, d in touched_inputs if d.follow_up])

    def export(self, customer_id: int) -> dict[str, Any]:
        """Everything stored about one person, as one JSON-ready document."""
        with self.db.session() as session:
            row = session.get(m.CustomerRow, customer_id)
            if row is None:
                raise NotFound(f"no customer with id {customer_id}")
            sids = list(session.scalars(select(m.CallRow.call_sid).where(
                m.CallRow.customer_id == customer_id).order_by(m.CallRow.started_at)))
            follow_ups = session.scalars(select(m.FollowUpRow).where(
                m.FollowUpRow.customer_id == customer_id).order_by(m.FollowUpRow.id))
            audit = session.scalars(select(m.AuditRow).where(
                m.AuditRow.target_kind == "customer", m.AuditRow.target_id == str(customer_id)))
            document: dict[str, Any] = {
                "customer": _customer(row).to_dict(),
                "calls": [call_document(session, sid, full=True) for sid in sids],
                "follow_ups": [f.to_dict() for f in follow_ups],
                "audit": [a.to_dict() for a in audit],
                "exported_at": m.utcnow().isoformat(),
            }
        return document

    def view(self, customer_id: int) -> dict[str, Any] | None:
        """The API's view: the record, its calls (each with its summary), follow-ups."""
        customer = self.get(customer_id)
        if customer is None:
            return None
        data = customer.to_dict()
        data["calls"] = self.db.calls.for_customer(customer_id)
        data["follow_ups"] = self.db.follow_ups.for_customer(customer_id)
        return data


# ---------------------------------------------------------------------- helpers

def _customer(row: m.CustomerRow) -> Customer:
    return Customer(id=row.id, name=row.name, phone=row.phone, email=row.email,
                    language=row.language, account=row.account, vip=bool(row.vip),
                    fields=dict(row.fields or {}), created_at=row.created_at,
                    updated_at=row.updated_at)


def _existing(session: Session, batch: list[CustomerInput]) -> dict[str, m.CustomerRow]:
    """Rows already stored for the batch's phones and accounts, keyed ``p:``/``a:``."""
    phones = {d.phone for d in batch if d.phone}
    accounts = {d.account for d in batch if d.account}
    found: dict[str, m.CustomerRow] = {}
    if phones:
        for row in session.scalars(select(m.CustomerRow).where(m.CustomerRow.phone.in_(phones))):
            found[f"p:{row.phone}"] = row
    if accounts:
        for row in session.scalars(
                select(m.CustomerRow).where(m.CustomerRow.account.in_(accounts))):
            found[f"a:{row.account}"] = row
    return found


def _account_clash(existing: Mapping[str, m.CustomerRow], data: CustomerInput) -> str | None:
    by_phone = existing.get(f"p:{data.phone}")
    by_account = existing.get(f"a:{data.account}") if data.account else None
    if by_account is not None and by_phone is not None and by_account is not by_phone:
        return (f"account {data.account} belongs to another customer (id {by_account.id}) "
                f"than phone {data.phone} (id {by_phone.id})")
    if by_account is not None and by_phone is None and by_account.phone not in (None, data.phone):
        return (f"account {data.account} already belongs to customer id {by_account.id} "
                "with another phone")
    return None


def _apply(session: Session, existing: dict[str, m.CustomerRow], data: CustomerInput
           ) -> tuple[m.CustomerRow, bool]:
    row = existing.get(f"p:{data.phone}") or (
        existing.get(f"a:{data.account}") if data.account else None)
    created = row is None
    if row is None:
        row = m.CustomerRow(name=data.name, fields={})
        session.add(row)
    row.name = data.name
    row.phone = data.phone or row.phone
    row.email = data.email or row.email
    row.language = data.language or row.language
    row.account = data.account or row.account
    row.vip = data.vip
    row.fields = {**(row.fields or {}), **redact_value(dict(data.fields))}
    if row.phone:
        existing[f"p:{row.phone}"] = row
    if row.account:
        existing[f"a:{row.account}"] = row
    return row, created


def _open_follow_ups(session: Session, items: list[tuple[m.CustomerRow, CustomerInput]]
                     ) -> None:
    """A ``follow_up`` column opens one follow-up (not again on a re-import)."""
    for row, data in items:
        already = session.scalars(select(m.FollowUpRow.id).where(
            m.FollowUpRow.customer_id == row.id, m.FollowUpRow.state == "open",
            m.FollowUpRow.description == data.follow_up)).first()
        if already is None:
            session.add(m.FollowUpRow(customer_id=row.id, description=data.follow_up,
                                      state=m.FollowUpState.OPEN.value))


def _link_unknown_calls(session: Session, rows: Iterable[m.CustomerRow]) -> None:
    """Merge "unknown caller" calls into the customer who now owns their number."""
    by_phone = {row.phone: row.id for row in rows if row.phone}
    if not by_phone:
        return
    calls = session.scalars(select(m.CallRow).where(
        m.CallRow.customer_id.is_(None), m.CallRow.from_number.in_(by_phone)))
    for call in calls:
        call.customer_id = by_phone[call.from_number or ""]
