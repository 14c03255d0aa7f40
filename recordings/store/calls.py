"""Calls in SQL: records, durable events, transcripts, recordings, summaries, follow-ups."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from recordings import model as m
from recordings.errors import NotFound
from recordings.privacy import redact_value

if TYPE_CHECKING:
    from recordings.store import Database


def call_document(session: Session, call_sid: str, full: bool = False) -> dict[str, Any]:
    """A call with its summary; ``full`` adds events, transcripts and recordings."""
    call = session.get(m.CallRow, call_sid)
    data: dict[str, Any] = call.to_dict() if call else {"call_sid": call_sid}
    data["summary"] = _summary(session, call_sid)
    if full:
        data["events"] = [_event(e) for e in session.scalars(select(m.CallEventRow).where(
            m.CallEventRow.call_sid == call_sid).order_by(m.CallEventRow.seq))]
        transcripts = list(session.scalars(select(m.TranscriptRow).where(
            m.TranscriptRow.call_sid == call_sid).order_by(m.TranscriptRow.id)))
        data["transcript"] = "\n".join(t.text for t in transcripts) if transcripts else None
        data["transcripts"] = [t.to_dict() for t in transcripts]
        data["summaries"] = [s.to_dict() for s in session.scalars(select(m.SummaryRow).where(
            m.SummaryRow.call_sid == call_sid).order_by(m.SummaryRow.version))]
        data["recordings"] = [r.to_dict() for r in session.scalars(select(m.RecordingRow).where(
            m.RecordingRow.call_sid == call_sid).order_by(m.RecordingRow.id))]
    return data


def _event(row: m.CallEventRow) -> dict[str, Any]:
    return {"seq": row.seq, "at": row.at.isoformat(), "kind": row.kind, "data": row.data}


def _summary(session: Session, call_sid: str) -> dict[str, Any] | None:
    """The approved summary (newest approved version), else the newest draft."""
    rows = list(session.scalars(select(m.SummaryRow).where(m.SummaryRow.call_sid == call_sid)
                                .order_by(m.SummaryRow.version.desc())))
    approved = [r for r in rows if r.status == m.SummaryStatus.APPROVED.value]
    chosen = approved[0] if approved else (rows[0] if rows else None)
    return chosen.to_dict() if chosen else None


def _aware(value: datetime | None) -> None:
    if value is not None and value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: pass a timezone-aware time")


def parse_time(value: Any) -> datetime:
    """An event time: aware datetime, ISO 8601 string or Unix seconds -> aware UTC."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware time")
        return value
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(float(value), UTC)
    if isinstance(value, str) and value:
        try:
            return datetime.fromtimestamp(float(value), UTC)
        except ValueError:
            parsed = datetime.fromisoformat(value)
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise ValueError(f"cannot read {value!r} as a time")


class CallRepo:
    """Call records: start, end, durable events, transcripts, recordings."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def record_start(self, call_sid: str, *, from_number: str | None, to_number: str | None,
                     started_at: datetime, line: str | None = None,
                     language: str | None = None, customer_id: int | None = None,
                     flow: str | None = None, flow_version: str | None = None,
                     direction: str = "inbound") -> None:
        """Create the call record (a repeat only fills what is still empty).

        Without ``customer_id`` the call is linked to the customer owning
        ``from_number``, if any; otherwise it stays an "unknown caller" record.
        """
        _aware(started_at)
        with self.db.session() as session:
            call = session.get(m.CallRow, call_sid) or m.CallRow(call_sid=call_sid, intents=[])
            session.add(call)
            if customer_id is None and from_number:
                customer_id = session.scalars(select(m.CustomerRow.id).where(
                    m.CustomerRow.phone == from_number)).first()
            for key, value in (("from_number", from_number), ("to_number", to_number),
                               ("started_at", started_at), ("line", line),
                               ("language", language), ("customer_id", customer_id),
                               ("flow", flow), ("flow_version", flow_version)):
                if getattr(call, key) is None and value is not None:
                    setattr(call, key, value)
            call.direction = call.direction or direction

    def record_end(self, call_sid: str, *, ended_at: datetime, outcome: str | None = None,
                   queue: str | None = None, queue_wait_s: float | None = None,
                   agent_id: str | None = None, handle_time_s: float | None = None,
                   intents: Iterable[str] = (), language: str | None = None) -> None:
        """Close the call record; creates it when the start was never recorded."""
        _aware(ended_at)
        with self.db.session() as session:
            call = session.get(m.CallRow, call_sid) or m.CallRow(call_sid=call_sid, intents=[])
            session.add(call)
            call.ended_at = call.ended_at or ended_at
            for key, value in (("outcome", outcome), ("queue", queue),
                               ("queue_wait_s", queue_wait_s), ("agent_id", agent_id),
                               ("handle_time_s", handle_time_s), ("language", language)):
                if value is not None:
                    setattr(call, key, value)
            known = list(call.intents or [])
            call.intents = known + [i for i in intents if i not in known]

    def identify(self, call_sid: str, customer_id: int) -> int:
        """The caller was identified (e.g. by account): link this call and the other
        unknown-caller calls from the same number. Returns how many calls were linked."""
        with self.db.session() as session:
            call = session.get(m.CallRow, call_sid)
            if call is None:
                raise NotFound(f"no call {call_sid}")
            linked = 0
            rows = [call] + (list(session.scalars(select(m.CallRow).where(
                m.CallRow.customer_id.is_(None), m.CallRow.from_number == call.from_number)))
                if call.from_number else [])
            for row in rows:
                if row.customer_id != customer_id:
                    row.customer_id = customer_id
                    linked += 1
            return linked

    def add_events(self, call_sid: str, events: Iterable[Mapping[str, Any]]) -> int:
        """Store events ``{"seq", "at", "kind", "data"}`` (other keys go into ``data``;
        ``type`` or ``event`` stand for a missing ``kind``; ``at`` is an aware datetime,
        ISO 8601 or Unix seconds).

        Idempotent: an event whose ``(call_sid, seq)`` is stored already is ignored.
        Strings are redacted first. Returns the number of new events.
        """
        rows = []
        for ev in events:
            extra = {k: v for k, v in ev.items() if k not in {"seq", "at", "kind", "data"}}
            data = {**dict(ev.get("data") or {}), **extra}
            kind = ev.get("kind") or ev.get("type") or ev.get("event") or "event"
            rows.append({"call_sid": call_sid, "seq": int(ev["seq"]),
                         "at": parse_time(ev.get("at") or m.utcnow()),
                         "kind": str(kind)[:64], "data": redact_value(data)})
        if not rows:
            return 0
        with self.db.session() as session:
            stored = set(session.scalars(select(m.CallEventRow.seq).where(
                m.CallEventRow.call_sid == call_sid,
                m.CallEventRow.seq.in_({r["seq"] for r in rows}))))
            new = {r["seq"]: r for r in rows if r["seq"] not in stored}
            if new:  # a concurrent writer may win a seq: the insert then skips it
                session.execute(_insert_ignoring_duplicates(self.db, m.CallEventRow),
                                list(new.values()))
            return len(new)

    def events(self, call_sid: str) -> list[dict[str, Any]]:
        with self.db.session() as session:
            return [_event(e) for e in session.scalars(select(m.CallEventRow).where(
                m.CallEventRow.call_sid == call_sid).order_by(m.CallEventRow.seq))]

    def add_transcript(self, call_sid: str, text: str, *, language: str | None = None,
                       words: Iterable[Any] = (), recording_id: int | None = None) -> int:
        with self.db.session() as session:
            row = m.TranscriptRow(call_sid=call_sid, text=redact_value(text),
                                  language=language, words=redact_value(list(words)),
                                  recording_id=recording_id)
            session.add(row)
            session.flush()
            return row.id

    def add_recording(self, call_sid: str, *, path: str | None, kind: str = "voicemail",
                      recording_sid: str | None = None, duration_s: float | None = None) -> int:
        """Register a stored recording (idempotent on ``recording_sid``)."""
        with self.db.session() as session:
            row = session.scalars(select(m.RecordingRow).where(
                m.RecordingRow.recording_sid == recording_sid)).first() if recording_sid else None
            if row is None:
                row = m.RecordingRow(call_sid=call_sid, recording_sid=recording_sid, kind=kind)
                session.add(row)
            row.path, row.duration_s = path or row.path, duration_s or row.duration_s
            session.flush()
            return row.id

    def recording(self, recording_id: int) -> dict[str, Any] | None:
        """One stored recording's row by its id (None when unknown or erased)."""
        with self.db.session() as session:
            row = session.get(m.RecordingRow, recording_id)
            return row.to_dict() if row is not None else None

    def get(self, call_sid: str) -> dict[str, Any] | None:
        """The API's view of a call: record, events, transcript, summary, outcome."""
        with self.db.session() as session:
            if session.get(m.CallRow, call_sid) is None:
                return None
            return call_document(session, call_sid, full=True)

    def for_customer(self, customer_id: int) -> list[dict[str, Any]]:
        with self.db.session() as session:
            sids = session.scalars(select(m.CallRow.call_sid).where(
                m.CallRow.customer_id == customer_id).order_by(m.CallRow.started_at.desc()))
            return [call_document(session, sid) for sid in list(sids)]


def _insert_ignoring_duplicates(db: Database, table: type[m.Base]) -> Any:
    if db.engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert
        return pg_insert(table).on_conflict_do_nothing()
    if db.is_sqlite:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert
        return sqlite_insert(table).on_conflict_do_nothing()
    from sqlalchemy import insert
    return insert(table)


class SummaryRepo:
    """Versioned call summaries: drafts from the summariser, approved by agents."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def save_draft(self, call_sid: str, body: Mapping[str, Any]) -> int:
        """Store a new draft version; returns its version number."""
        with self.db.session() as session:
            newest = session.scalars(select(m.SummaryRow.version).where(
                m.SummaryRow.call_sid == call_sid).order_by(
                m.SummaryRow.version.desc())).first() or 0
            session.add(m.SummaryRow(call_sid=call_sid, version=newest + 1,
                                     status=m.SummaryStatus.DRAFT.value,
                                     body=redact_value(dict(body))))
            return newest + 1

    def approve(self, call_sid: str, version: int, by: str,
                body: Mapping[str, Any] | None = None) -> None:
        """Approve a version, with the agent's corrections if given."""
        with self.db.session() as session:
            row = session.scalars(select(m.SummaryRow).where(
                m.SummaryRow.call_sid == call_sid, m.SummaryRow.version == version)).first()
            if row is None:
                raise NotFound(f"no summary version {version} for call {call_sid}")
            if body is not None:
                row.body = redact_value(dict(body))
            row.status, row.approved_by, row.approved_at = (
                m.SummaryStatus.APPROVED.value, by, m.utcnow())

    def current(self, call_sid: str) -> dict[str, Any] | None:
        with self.db.session() as session:
            return _summary(session, call_sid)


class FollowUpRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    def open(self, customer_id: int, description: str, *, owner: str | None = None,
             due_at: datetime | None = None, call_sid: str | None = None) -> int:
        _aware(due_at)
        with self.db.session() as session:
            if session.get(m.CustomerRow, customer_id) is None:
                raise NotFound(f"no customer with id {customer_id}")
            row = m.FollowUpRow(customer_id=customer_id, description=redact_value(description),
                                owner=owner, due_at=due_at, call_sid=call_sid,
                                state=m.FollowUpState.OPEN.value)
            session.add(row)
            session.flush()
            return row.id

    def close(self, follow_up_id: int, state: m.FollowUpState = m.FollowUpState.DONE) -> None:
        with self.db.session() as session:
            row = session.get(m.FollowUpRow, follow_up_id)
            if row is None:
                raise NotFound(f"no follow-up with id {follow_up_id}")
            row.state, row.closed_at = m.FollowUpState(state).value, m.utcnow()

    def overdue(self, now: datetime | None = None) -> list[dict[str, Any]]:
        with self.db.session() as session:
            rows = session.scalars(select(m.FollowUpRow).where(
                m.FollowUpRow.state == m.FollowUpState.OPEN.value,
                m.FollowUpRow.due_at.is_not(None), m.FollowUpRow.due_at < (now or m.utcnow()))
                .order_by(m.FollowUpRow.due_at))
            return [r.to_dict() for r in rows]

    def for_customer(self, customer_id: int) -> list[dict[str, Any]]:
        with self.db.session() as session:
            rows = session.scalars(select(m.FollowUpRow).where(
                m.FollowUpRow.customer_id == customer_id).order_by(m.FollowUpRow.id.desc()))
            return [r.to_dict() for r in rows]
