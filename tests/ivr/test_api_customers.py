"""`/api/customers` and `/api/calls/<CallSid>` on a real app (SQLite + Redis)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from recordings.customers import CustomerInput
from recordings.privacy import erase
from recordings.store import Database
from tests.ivr.conftest import ADMIN_TOKEN

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
SID = "CA" + "d" * 32
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def _db(app: Flask) -> Database:
    database: Database = app.extensions["centralita"].components["database"]
    return database


@pytest.fixture()
def ana(app: Flask) -> int:
    db = _db(app)
    customer, _ = db.customers.upsert(CustomerInput(
        name="Ana García", phone="+34600112233", email="ana@example.com", language="es",
        vip=True, fields={"order_status": "enviado"}))
    db.calls.record_start(SID, from_number="+34600112233", to_number="+34910000000",
                          started_at=NOW, language="es")
    db.calls.add_events(SID, [
        {"seq": 1, "at": NOW, "kind": "menu", "data": {"digits": "2"}},
        {"seq": 2, "at": NOW, "kind": "gather", "data": {"speech": "4111 1111 1111 1111"}}])
    db.calls.record_end(SID, ended_at=NOW, outcome="resolved_ivr")
    db.summaries.save_draft(SID, {"reason": "estado del pedido"})
    db.follow_ups.open(customer.id, "llamar el lunes", call_sid=SID)
    return customer.id


@pytest.mark.parametrize("phone", ["+34600112233", "+34 600 11 22 33", "600112233",
                                   "0034600112233", " 34600112233"])
def test_customer_by_phone_in_any_format(client: FlaskClient, ana: int, phone: str) -> None:
    response = client.get("/api/customers", query_string={"phone": phone}, headers=ADMIN)
    assert response.status_code == 200, response.json
    body = response.json
    assert (body["id"], body["name"], body["phone"], body["vip"]) == (
        ana, "Ana García", "+34600112233", True)
    assert body["fields"] == {"order_status": "enviado"}
    (call,) = body["calls"]
    assert call["call_sid"] == SID
    assert call["summary"]["body"] == {"reason": "estado del pedido"}
    assert [f["description"] for f in body["follow_ups"]] == ["llamar el lunes"]


def test_unencoded_plus_in_the_query_string(client: FlaskClient, ana: int) -> None:
    response = client.get("/api/customers?phone=+34600112233", headers=ADMIN)
    assert response.status_code == 200 and response.json["id"] == ana


def test_customer_by_id_and_errors(client: FlaskClient, ana: int) -> None:
    assert client.get(f"/api/customers/{ana}", headers=ADMIN).json["email"] == "ana@example.com"
    assert client.get("/api/customers/999", headers=ADMIN).status_code == 404
    unknown = client.get("/api/customers?phone=%2B34699000000", headers=ADMIN)
    assert unknown.status_code == 404 and unknown.json["error"] == "not_found"
    bad = client.get("/api/customers?phone=not-a-phone", headers=ADMIN)
    assert bad.status_code == 400 and "not a phone number" in bad.json["detail"]
    assert client.get("/api/customers", headers=ADMIN).status_code == 400


def test_without_a_valid_token_401(client: FlaskClient, ana: int) -> None:
    assert client.get("/api/customers?phone=%2B34600112233").status_code == 401
    wrong = {"Authorization": "Bearer ivr_000000000000_wrongwrongwrongwrongwrong"}
    assert client.get(f"/api/customers/{ana}", headers=wrong).status_code == 401
    assert client.get(f"/api/calls/{SID}").status_code == 401


def test_agents_read_with_their_own_token(app: Flask, client: FlaskClient, ana: int) -> None:
    token = _db(app).users.add("maria", "agent").token
    response = client.get(f"/api/customers/{ana}", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    reads = _db(app).audit.entries("customer", str(ana))
    assert [(r["actor"], r["action"]) for r in reads] == [("maria", "customer.read")]


def test_call_with_events_transcript_summary_outcome(client: FlaskClient, ana: int) -> None:
    response = client.get(f"/api/calls/{SID}", headers=ADMIN)
    assert response.status_code == 200
    body = response.json
    assert body["outcome"] == "resolved_ivr"
    assert [e["kind"] for e in body["events"]] == ["menu", "gather"]
    assert body["events"][1]["data"] == {"speech": "**** **** **** 1111"}
    assert body["transcript"] is None
    assert body["summary"]["status"] == "draft"
    assert client.get("/api/calls/CA" + "9" * 32, headers=ADMIN).status_code == 404


def test_erased_customer_and_calls_give_404(app: Flask, client: FlaskClient, ana: int,
                                            data_dir: Path) -> None:
    services = app.extensions["centralita"]
    report = erase(_db(app), services.redis, data_dir, customer_id=ana)
    assert report.clean, report.remaining
    assert client.get("/api/customers?phone=%2B34600112233", headers=ADMIN).status_code == 404
    assert client.get(f"/api/customers/{ana}", headers=ADMIN).status_code == 404
    assert client.get(f"/api/calls/{SID}", headers=ADMIN).status_code == 404
