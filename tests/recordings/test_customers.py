"""Customer records: phone normalisation, CSV import, lookup, export."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from call_flows.actions import CustomerInfo
from recordings.customers import DEMO_CSV, CustomerInput, normalise_phone
from recordings.errors import Conflict, ImportFileError, InvalidPhone
from recordings.store import Database
from tests.recordings.conftest import write_csv

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(("raw", "region", "expected"), [
    ("+34 600 11 22 33", "ES", "+34600112233"),
    ("0034 600 112 233", "ES", "+34600112233"),
    ("600-11-22-33", "ES", "+34600112233"),
    ("(202) 555-0143", "US", "+12025550143"),
    ("+1 (202) 555-0143", "ES", "+12025550143"),
    ("93 200 00 03", "es", "+34932000003"),
])
def test_phones_in_common_formats_become_e164(raw: str, region: str, expected: str) -> None:
    assert normalise_phone(raw, region) == expected


@pytest.mark.parametrize("raw", ["", "abc", "12345", "(555) 123-4567", "+34 600"])
def test_invalid_phones_are_refused_with_a_reason(raw: str) -> None:
    with pytest.raises(InvalidPhone):
        normalise_phone(raw)


MESSY = """name,phone,email,language,vip,order_status,account
Ana García,+34 600 11 22 33,ana@example.com,es,yes,enviado,A-1
Pere Vidal,0034 611 22 33 44,PERE@example.org,català,no,,A-2
John Smith,(555) 123-4567,john@example.com,en,,,
"Multi
Line",+34 622 33 44 55,multi@example.com,en,,,
,+34 633 44 55 66,noname@example.com,es,,,
Bad Mail,+34 644 55 66 77,not-an-email,es,,,
Bad Lang,+34 655 66 77 88,lang@example.com,klingon language,,,
Too Many,+34 666 77 88 99,x@example.com,es,,,,extra
Ana Again,600112233,ana.new@example.com,es,no,entregado,A-1
"""


def test_import_reports_created_updated_and_skipped_lines(db: Database, data_dir: Path) -> None:
    report = db.customers.import_csv(write_csv(data_dir / "messy.csv", MESSY))
    assert (report.created, report.updated) == (3, 1)
    skipped = {s.line: s.reason for s in report.skipped}
    assert sorted(skipped) == [4, 7, 8, 9, 10]
    assert "(555) 123-4567" in skipped[4] and "not a valid phone number" in skipped[4]
    assert "name is empty" in skipped[7]
    assert "not-an-email" in skipped[8]
    assert "klingon" in skipped[9]
    assert "cells" in skipped[10]

    ana = db.customers.find_by_phone("+34600112233")
    assert ana is not None
    assert (ana.name, ana.email, ana.vip, ana.account) == (
        "Ana Again", "ana.new@example.com", False, "A-1")
    assert ana.fields == {"order_status": "entregado"}
    pere = db.customers.find_by_account("A-2")
    assert pere is not None and pere.language == "ca" and pere.email == "pere@example.org"
    multi = db.customers.find_by_phone("+34622334455")
    assert multi is not None and multi.name == "Multi\nLine"


def test_missing_columns_are_named(db: Database, data_dir: Path) -> None:
    path = write_csv(data_dir / "bad.csv", "name,telefono\nAna,600112233\n")
    with pytest.raises(ImportFileError) as err:
        db.customers.import_csv(path)
    assert "phone, email, language" in str(err.value)


def test_semicolon_files_from_spreadsheets_import(db: Database, data_dir: Path) -> None:
    text = "\ufeffName;Phone;Email;Language\nAna;600 11 22 33;ana@example.com;ES\n"
    report = db.customers.import_csv(write_csv(data_dir / "excel.csv", text))
    assert report.created == 1
    customer = db.customers.find_by_phone("+34600112233")
    assert customer is not None and customer.language == "es"


def test_card_numbers_in_extra_columns_are_redacted(db: Database, data_dir: Path) -> None:
    text = "name,phone,email,language,notes\nAna,600112233,,es,paid with 4111 1111 1111 1111\n"
    db.customers.import_csv(write_csv(data_dir / "notes.csv", text))
    customer = db.customers.find_by_phone("+34600112233")
    assert customer is not None
    assert customer.fields["notes"] == "paid with **** **** **** 1111"


def test_progress_is_reported_for_big_files(db: Database, data_dir: Path) -> None:
    lines = ["name,phone,email,language"] + [
        f"Person {i},+34 6{i:08d},p{i}@example.com,es" for i in range(1200)]
    calls: list[tuple[int, int]] = []
    report = db.customers.import_csv(write_csv(data_dir / "big.csv", "\n".join(lines)),
                                     progress=lambda done, total: calls.append((done, total)))
    assert report.created == 1200
    assert calls[0] == (500, 1200) and calls[-1] == (1200, 1200)


def test_account_of_another_customer_is_not_stolen(db: Database) -> None:
    db.customers.upsert(CustomerInput(name="Ana", phone="+34600112233", account="A-1"))
    with pytest.raises(Conflict):
        db.customers.upsert(CustomerInput(name="Eve", phone="+34699999999", account="A-1"))


def test_flow_view_has_newest_open_follow_up_and_fields(db: Database) -> None:
    customer, created = db.customers.upsert(CustomerInput(
        name="Ana", phone="+34600112233", language="es", vip=True, account="A-1",
        fields={"order_status": "enviado"}))
    assert created
    first = db.follow_ups.open(customer.id, "old request")
    db.follow_ups.open(customer.id, "refund pending")
    db.follow_ups.close(first)
    expected = CustomerInfo(id=str(customer.id), name="Ana", language="es", vip=True,
                            account="A-1", open_follow_up="refund pending",
                            fields={"order_status": "enviado"})
    assert db.customer_info_by_phone("600 11 22 33") == expected
    assert db.customer_info_by_account("A-1") == expected
    assert db.customer_info_by_phone("+34 699 000 000") is None
    assert db.customer_info_by_phone("garbage") is None


def test_unknown_caller_calls_merge_when_the_number_is_identified(db: Database) -> None:
    db.calls.record_start("CA" + "1" * 32, from_number="+34600112233",
                          to_number="+34910000000", started_at=NOW)
    assert db.calls.get("CA" + "1" * 32)["customer_id"] is None
    customer, _ = db.customers.upsert(CustomerInput(name="Ana", phone="+34600112233"))
    assert db.calls.get("CA" + "1" * 32)["customer_id"] == customer.id
    # a caller from another number identified by account: that call is linked too
    db.calls.record_start("CA" + "2" * 32, from_number="+34611111111", to_number=None,
                          started_at=NOW)
    assert db.calls.identify("CA" + "2" * 32, customer.id) == 1
    assert [c["call_sid"] for c in db.customers.view(customer.id)["calls"]] == [
        "CA" + "1" * 32, "CA" + "2" * 32]


def test_export_holds_everything_about_the_person(db: Database) -> None:
    customer, _ = db.customers.upsert(CustomerInput(name="Ana", phone="+34600112233",
                                                    email="ana@example.com"))
    sid = "CA" + "a" * 32
    db.calls.record_start(sid, from_number="+34600112233", to_number="+34910000000",
                          started_at=NOW, language="es")
    db.calls.add_events(sid, [{"seq": 1, "at": NOW, "kind": "menu", "data": {"digits": "1"}}])
    db.calls.add_transcript(sid, "quiero pagar con la 4111111111111111", language="es")
    db.summaries.save_draft(sid, {"reason": "pago"})
    db.follow_ups.open(customer.id, "call back", call_sid=sid)
    document = db.customers.export(customer.id)
    assert document["customer"]["email"] == "ana@example.com"
    (call,) = document["calls"]
    assert call["call_sid"] == sid and call["language"] == "es"
    assert call["events"] == [{"seq": 1, "at": NOW.isoformat(), "kind": "menu",
                               "data": {"digits": "1"}}]
    assert call["transcript"] == "quiero pagar con la **** **** **** 1111"
    assert call["summaries"][0]["body"] == {"reason": "pago"}
    assert document["follow_ups"][0]["description"] == "call back"


def test_demo_customers_cover_the_demo_flow(db: Database) -> None:
    report = db.customers.import_csv(DEMO_CSV)
    assert report.skipped == [] and report.created >= 4
    infos = [db.customer_info_by_phone(c.phone) for c in _all(db)]
    assert {i.language for i in infos if i} >= {"es", "ca", "en"}
    assert any(i.vip for i in infos if i)
    assert any(i.open_follow_up for i in infos if i)
    assert any("order_status" in i.fields for i in infos if i)
    assert db.customers.import_csv(DEMO_CSV).created == 0  # re-import: updates only


def test_load_demo_only_fills_an_empty_database(db: Database) -> None:
    assert db.load_demo() == 4
    assert db.load_demo() == 0


def _all(db: Database) -> list:
    return [c for c in (db.customers.get(i) for i in range(1, 20)) if c is not None]


def test_unreadable_files_are_explained(db: Database, data_dir: Path) -> None:
    latin1 = data_dir / "latin1.csv"
    latin1.write_bytes("name,phone,email,language\nLucía,600112233,,es\n".encode("latin-1"))
    with pytest.raises(ImportFileError, match="not UTF-8"):
        db.customers.import_csv(latin1)
    empty = write_csv(data_dir / "empty.csv", "")
    with pytest.raises(ImportFileError, match="empty"):
        db.customers.import_csv(empty)
