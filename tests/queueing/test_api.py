"""The agents' and queues' JSON API through the real app, Redis and router."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient

from ivr.app import create_app
from ivr.settings import Settings
from queueing.model import requirements

ADMIN = {"Authorization": "Bearer secret"}


@pytest.fixture()
def client(tmp_path: Path, redis_url: str) -> FlaskClient:
    settings = Settings(data_dir=tmp_path, redis_url=redis_url, admin_token="secret",
                        validate_signature=False)
    return create_app(settings).test_client()


def test_agent_lifecycle_and_queue_figures(client: FlaskClient) -> None:
    assert client.get("/api/queues").status_code == 401
    r = client.put("/api/agents/ana", json={"skills": {"lang:es": 1, "topic:billing": 3}},
                   headers=ADMIN)
    assert r.status_code == 200, r.get_json()
    store = client.application.extensions["centralita"].get("queue")
    store.enqueue("CA1", "billing", requirements("es", "billing", 2))
    store.enqueue("CA2", "billing", requirements("es", "billing", 2))
    queues = client.get("/api/queues", headers=ADMIN).get_json()
    billing = next(q for q in queues if q["name"] == "billing")
    assert {"name", "waiting", "longest_wait_s", "ewt_s", "agents_available"} <= set(billing)
    assert billing["waiting"] == 2 and billing["agents_available"] == 0

    got = client.post("/api/agents/ana/login", headers=ADMIN).get_json()
    assert [a["call_id"] for a in got["assignments"]] == ["CA1"]
    accepted = client.post("/api/agents/ana/accept", json={"call_id": "CA1"},
                           headers=ADMIN).get_json()
    # No Twilio account here: accepted, and the answer says why nobody was bridged.
    assert accepted["status"] == "accepted" and accepted["bridged"] is False
    assert "contact" in accepted["detail"] or "TWILIO_ACCOUNT_SID" in accepted["detail"]
    detail = client.get("/api/queues/billing", headers=ADMIN).get_json()
    assert [c["call_id"] for c in detail["calls"]] == ["CA2"]
    assert detail["calls"][0]["requirements"] == {"lang:es": 1, "topic:billing": 2}
    assert detail["agents"][0]["state"] == "busy"
    r = client.post("/api/agents/ana/complete", json={"call_id": "CA1", "wrap_up_s": 0},
                    headers=ADMIN)
    assert [a["call_id"] for a in r.get_json()["assignments"]] == ["CA2"]
    billing = next(q for q in client.get("/api/queues", headers=ADMIN).get_json()
                   if q["name"] == "billing")
    assert billing["answered"] == 1 and billing["service_level"] == 1.0
    assert billing["waiting"] == 0 and billing["asa_s"] is not None


def test_bad_input_gets_a_reason(client: FlaskClient) -> None:
    r = client.put("/api/agents/bob", json={"skills": {"lang:es": 7}}, headers=ADMIN)
    assert r.status_code == 400 and "1..5" in r.get_json()["detail"]
    r = client.post("/api/agents/ghost/login", headers=ADMIN)
    assert r.status_code == 404 and "ghost" in r.get_json()["detail"]
    client.put("/api/agents/bob", json={"skills": {"lang:es": 1}}, headers=ADMIN)
    r = client.post("/api/agents/bob/state", json={"state": "busy"}, headers=ADMIN)
    assert r.status_code == 400
    r = client.post("/api/agents/bob/accept", json={}, headers=ADMIN)
    assert r.status_code == 400 and "call_id" in r.get_json()["detail"]
    r = client.post("/api/agents/bob/accept", json={"call_id": "nope"}, headers=ADMIN)
    assert r.status_code == 404
    assert client.get("/api/events/queues?max_seconds=x", headers=ADMIN).status_code == 400


def test_event_feed_is_bounded(client: FlaskClient) -> None:
    r = client.get("/api/events/queues?max_seconds=0.5", headers=ADMIN)
    assert r.status_code == 200 and r.mimetype == "text/event-stream"
    body = r.get_data(as_text=True)
    assert body.startswith("event: queues\ndata: [") and body.endswith("event: end\ndata: {}\n\n")
