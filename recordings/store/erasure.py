"""Erasing one person's rows (the SQL part of ``recordings.privacy.erase``)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from recordings import model as m
from recordings.errors import NotFound


def _deleted(session: Session, statement: Any) -> int:
    """Run a DELETE; the number of rows it removed."""
    return int(getattr(session.execute(statement), "rowcount", 0) or 0)


def erase_rows(session: Session, customer_id: int | None, phone: str | None,
               extra_sids: Iterable[str] = ()) -> dict[str, Any]:
    """Delete a customer (by id, else by phone) and every row about their calls.

    The calls are the customer's, those from or to ``phone`` and ``extra_sids``
    (calls other stores know of, e.g. Redis's per-number index). Audit entries
    about them are anonymised. Raises :class:`NotFound` when nothing matches.
    """
    customer = session.get(m.CustomerRow, customer_id) if customer_id is not None else None
    if customer is None and phone:
        customer = session.scalars(select(m.CustomerRow).where(
            m.CustomerRow.phone == phone)).first()
    if customer_id is not None and customer is None:
        raise NotFound(f"no customer with id {customer_id}")
    phone = phone or (customer.phone if customer else None)
    conditions: list[ColumnElement[bool]] = []
    if customer is not None:
        conditions.append(m.CallRow.customer_id == customer.id)
    if phone:
        conditions += [m.CallRow.from_number == phone, m.CallRow.to_number == phone]
    sids = set(extra_sids)
    if conditions:
        sids |= set(session.scalars(select(m.CallRow.call_sid).where(or_(*conditions))))
    if customer is None and not sids:
        raise NotFound(f"nobody with phone {phone} in the database")
    sids_sorted = sorted(sids)
    identity: dict[str, Any] = {
        "name": customer.name if customer else None,
        "email": customer.email if customer else None,
        "account": customer.account if customer else None, "phone": phone,
        "customer_id": customer.id if customer else None}
    recording_paths = [p for p in session.scalars(select(m.RecordingRow.path).where(
        m.RecordingRow.call_sid.in_(sids))) if p]
    removed: dict[str, int] = {}
    for table in (m.CallEventRow, m.SummaryRow, m.TranscriptRow, m.RecordingRow):
        removed[table.__tablename__] = _deleted(session, delete(table).where(
            table.call_sid.in_(sids)))
    follow_conditions: list[ColumnElement[bool]] = [m.FollowUpRow.call_sid.in_(sids)]
    if customer is not None:
        follow_conditions.append(m.FollowUpRow.customer_id == customer.id)
    removed["follow_ups"] = _deleted(session, delete(m.FollowUpRow).where(
        or_(*follow_conditions)))
    removed["calls"] = _deleted(session, delete(m.CallRow).where(m.CallRow.call_sid.in_(sids)))
    removed["customers"] = 0
    if customer is not None:
        session.delete(customer)
        removed["customers"] = 1
    needles = [v for v in (identity["name"], identity["email"], phone, *sids) if v]
    anonymised = 0
    for entry in session.scalars(select(m.AuditRow)):
        about = ((entry.target_kind == "customer" and customer is not None
                  and entry.target_id == str(customer.id))
                 or (entry.target_kind == "call" and entry.target_id in sids))
        blob = json.dumps(entry.detail, ensure_ascii=False) + entry.target_id
        if about or any(n in blob for n in needles):
            entry.target_id, entry.detail = "erased", {"anonymised": True}
            anonymised += 1
    removed["audit_log (anonymised)"] = anonymised
    return {"identity": identity, "call_sids": sids_sorted, "recording_paths": recording_paths,
            "removed": removed}
