"""Follow-ups through the API on a real app (SQLite + Redis)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from recordings.customers import CustomerInput
from recordings.store import Database
from tests.ivr.conftest import ADMIN_TOKEN

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
SID = "CA" + "7" * 32
NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def _db(app: Flask) -> Database:
    database: Database = app.extensions["centralita"].components["database"]
    return database


def _bearer(app: Flask, name: str, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {_db(app).users.add(name, role).token}"}


@pytest.fixture()
def ana(app: Flask) -> int:
    db = _db(app)
    customer, _ = db.customers.upsert(CustomerInput(name="Ana García", phone="+34600112233"))
    db.calls.record_start(SID, from_number="+34600112233", to_number="+34910000000",
                          started_at=NOW)
    return customer.id


def _open(client: FlaskClient, customer_id: int, headers: dict[str, str], **body: Any) -> Any:
    return client.post(f"/api/customers/{customer_id}/follow-ups", json=body, headers=headers)


def test_open_list_overdue_and_close(app: Flask, client: FlaskClient, ana: int) -> None:
    agent = _bearer(app, "maria", "agent")
    past = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    future = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    late = _open(client, ana, agent, description="devolver 20 €", owner="maria",
                 due_at=past, call_sid=SID)
    assert late.status_code == 201, late.json
    assert (late.json["description"], late.json["owner"], late.json["state"],
            late.json["call_sid"], late.json["customer_id"]) == (
        "devolver 20 €", "maria", "open", SID, ana)
    assert datetime.fromisoformat(late.json["due_at"]) == datetime.fromisoformat(past)
    on_time = _open(client, ana, agent, description="llamar el lunes", due_at=future)
    undated = _open(client, ana, agent, description="enviar factura")
    assert on_time.status_code == undated.status_code == 201

    supervisor = _bearer(app, "sofia", "supervisor")
    listed = client.get("/api/follow-ups?overdue=1", headers=supervisor)
    assert listed.status_code == 200
    assert [f["id"] for f in listed.json["follow_ups"]] == [late.json["id"]]
    assert listed.json["count"] == 1

    closed = client.post(f"/api/follow-ups/{late.json['id']}/close", headers=agent)
    assert closed.status_code == 200 and closed.json["state"] == "done"
    assert client.get("/api/follow-ups?overdue=1", headers=ADMIN).json["follow_ups"] == []
    cancelled = client.post(f"/api/follow-ups/{undated.json['id']}/close",
                            json={"state": "cancelled"}, headers=supervisor)
    assert cancelled.json["state"] == "cancelled"

    customer = client.get(f"/api/customers/{ana}", headers=ADMIN).json
    states = {f["description"]: f["state"] for f in customer["follow_ups"]}
    assert states == {"devolver 20 €": "done", "llamar el lunes": "open",
                      "enviar factura": "cancelled"}
    actions = [(e["actor"], e["action"]) for e in _db(app).audit.entries()
               if e["action"].startswith("follow_up.")]
    assert actions == [("maria", "follow_up.open")] * 3 + [
        ("maria", "follow_up.close"), ("sofia", "follow_up.close")]


def test_only_supervisors_and_admins_list_overdue(app: Flask, client: FlaskClient) -> None:
    agent = _bearer(app, "maria", "agent")
    assert client.get("/api/follow-ups?overdue=1", headers=agent).status_code == 403
    assert client.get("/api/follow-ups?overdue=1").status_code == 401
    plain = client.get("/api/follow-ups", headers=ADMIN)
    assert plain.status_code == 400 and "overdue=1" in plain.json["detail"]


@pytest.mark.parametrize(("body", "says"), [
    ({}, "description"),
    ({"description": "   "}, "description"),
    ({"description": 5}, "description"),
    ({"description": "x" * 2001}, "description"),
    ({"description": "x", "due_at": "mañana"}, "ISO 8601"),
    ({"description": "x", "due_at": "2026-03-02T17:00:00"}, "time zone"),
    ({"description": "x", "owner": ["a"]}, "owner"),
    ({"description": "x", "call_sid": "CA" + "0" * 32}, "no call"),
])
def test_bad_follow_ups_are_400(client: FlaskClient, ana: int, body: dict[str, Any],
                                says: str) -> None:
    response = _open(client, ana, ADMIN, **body)
    assert response.status_code == 400
    assert says in response.json["detail"]


def test_a_call_of_another_customer_is_refused(app: Flask, client: FlaskClient,
                                               ana: int) -> None:
    other, _ = _db(app).customers.upsert(CustomerInput(name="Luis", phone="+34600445566"))
    response = _open(client, other.id, ADMIN, description="x", call_sid=SID)
    assert response.status_code == 400 and "another customer" in response.json["detail"]


def test_unknown_customer_follow_up_and_state(client: FlaskClient, ana: int) -> None:
    assert _open(client, 999, ADMIN, description="x").status_code == 404
    assert client.post("/api/follow-ups/999/close", headers=ADMIN).status_code == 404
    opened = _open(client, ana, ADMIN, description="x").json
    bad = client.post(f"/api/follow-ups/{opened['id']}/close", json={"state": "open"},
                      headers=ADMIN)
    assert bad.status_code == 400 and "cancelled" in bad.json["detail"]
    not_json = client.post(f"/api/customers/{ana}/follow-ups", data="x", headers=ADMIN)
    assert not_json.status_code == 400
