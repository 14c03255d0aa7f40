"""Call records, durable events, summaries, follow-ups, flow versions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from recordings.customers import CustomerInput
from recordings.errors import NotFound
from recordings.model import FollowUpState
from recordings.store import Database

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
SID = "CA" + "0" * 32


def test_start_and_end_are_idempotent_and_order_free(db: Database) -> None:
    db.calls.record_end(SID, ended_at=NOW + timedelta(minutes=3), outcome="served",
                        agent_id="ana", handle_time_s=150.0, queue_wait_s=12.5,
                        intents=["billing"])
    db.calls.record_start(SID, from_number="+34600112233", to_number="+34910000000",
                          started_at=NOW, line="support", language="ca", flow="demo")
    db.calls.record_start(SID, from_number="+34699999999", to_number="x", started_at=NOW)
    db.calls.record_end(SID, ended_at=NOW + timedelta(minutes=9), intents=["billing", "refund"])
    call = db.calls.get(SID)
    assert call is not None
    assert call["from_number"] == "+34600112233"  # the first start wins
    assert call["ended_at"] == (NOW + timedelta(minutes=3)).isoformat()
    assert (call["outcome"], call["agent_id"], call["handle_time_s"]) == ("served", "ana", 150.0)
    assert call["intents"] == ["billing", "refund"]
    assert call["summary"] is None and call["transcript"] is None


def test_events_are_stored_once_and_redacted(db: Database) -> None:
    events = [{"seq": 1, "at": NOW, "kind": "gather", "data": {"speech": "mi DNI es 12345678Z"}},
              {"seq": 2, "at": NOW.isoformat(), "type": "menu", "node": "main"},
              {"seq": "3", "at": NOW.timestamp(), "kind": "say"}]
    assert db.calls.add_events(SID, events) == 3
    assert db.calls.add_events(SID, events + [{"seq": 4, "kind": "hangup"}]) == 1
    stored = db.calls.events(SID)
    assert [e["seq"] for e in stored] == [1, 2, 3, 4]
    assert stored[0]["data"] == {"speech": "mi DNI es [DNI]"}
    assert stored[1]["kind"] == "menu" and stored[1]["data"] == {"type": "menu", "node": "main"}
    assert stored[2]["at"] == NOW.isoformat()


def test_summary_versions_and_approval(db: Database) -> None:
    db.calls.record_start(SID, from_number=None, to_number=None, started_at=NOW)
    assert db.summaries.save_draft(SID, {"reason": "factura"}) == 1
    assert db.summaries.save_draft(SID, {"reason": "factura duplicada"}) == 2
    assert db.summaries.current(SID)["version"] == 2
    db.summaries.approve(SID, 1, by="ana", body={"reason": "factura; IBAN ES9121000418450200051332"})
    current = db.summaries.current(SID)
    assert (current["version"], current["status"], current["approved_by"]) == (1, "approved", "ana")
    assert current["body"] == {"reason": "factura; IBAN [IBAN ES… 1332]"}
    with pytest.raises(NotFound):
        db.summaries.approve(SID, 9, by="ana")


def test_overdue_follow_ups(db: Database) -> None:
    customer, _ = db.customers.upsert(CustomerInput(name="Ana", phone="+34600112233"))
    late = db.follow_ups.open(customer.id, "refund", due_at=NOW - timedelta(days=1), owner="ana")
    db.follow_ups.open(customer.id, "later", due_at=NOW + timedelta(days=1))
    done = db.follow_ups.open(customer.id, "done", due_at=NOW - timedelta(days=2))
    db.follow_ups.close(done, FollowUpState.DONE)
    overdue = db.follow_ups.overdue(NOW)
    assert [f["id"] for f in overdue] == [late]
    assert overdue[0]["due_at"] == (NOW - timedelta(days=1)).isoformat()
    with pytest.raises(NotFound):
        db.follow_ups.open(999, "nobody")


def test_naive_times_are_refused(db: Database) -> None:
    with pytest.raises(ValueError):
        db.calls.record_start(SID, from_number=None, to_number=None,
                              started_at=datetime(2026, 1, 1))


def test_flow_versions_publish_one_at_a_time(db: Database) -> None:
    assert db.flows.save("demo", "start: a\n", author="ana") == 1
    assert db.flows.save("demo", "start: b\n", author="ana") == 2
    assert db.flows.get("demo") is None
    db.flows.publish("demo", 2)
    db.flows.publish("demo", 1)
    assert db.flows.get("demo")["text"] == "start: a\n"
    assert [v["published"] for v in db.flows.versions("demo")] == [True, False]
    with pytest.raises(NotFound):
        db.flows.publish("demo", 3)


def test_webhook_writes_through_the_database_facade(db: Database) -> None:
    db.record_call_start(SID, from_number="+34600112233", to_number="+34910000000",
                         started_at=NOW, line="support")
    assert db.add_events(SID, [{"seq": 1, "at": NOW, "kind": "start"}]) == 1
    db.record_call_end(SID, ended_at=NOW + timedelta(seconds=40), outcome="voicemail")
    call = db.calls.get(SID)
    assert call is not None
    assert (call["line"], call["outcome"], len(call["events"])) == ("support", "voicemail", 1)
