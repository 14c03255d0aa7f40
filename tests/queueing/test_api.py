"""The agents' and queues' JSON API through the real app, Redis and router."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from ivr.api.queues import SLOTS_KEY
from ivr.app import create_app
from ivr.settings import Settings, SettingsError
from queueing.model import requirements
from tests.fakes import FakeTwilioCloud, twilio_cloud  # noqa: F401  (fixture)

ADMIN = {"Authorization": "Bearer secret"}


@pytest.fixture()
def client(tmp_path: Path, redis_url: str) -> FlaskClient:
    settings = Settings(data_dir=tmp_path, redis_url=redis_url, admin_token="secret",
                        validate_signature=False)
    return create_app(settings).test_client()


@pytest.fixture()
def bridged_client(tmp_path: Path, redis_url: str,
                   twilio_cloud: FakeTwilioCloud) -> FlaskClient:  # noqa: F811
    """The app pointed at the fake Twilio cloud, so accepting a call rings the agent."""
    settings = Settings(data_dir=tmp_path, redis_url=redis_url, admin_token="secret",
                        validate_signature=False, twilio_account_sid=twilio_cloud.account_sid,
                        twilio_auth_token=twilio_cloud.auth_token,
                        twilio_api_url=twilio_cloud.url, public_url="https://ivr.example.test")
    return create_app(settings).test_client()


def test_agent_lifecycle_and_queue_figures(bridged_client: FlaskClient,
                                           twilio_cloud: FakeTwilioCloud) -> None:  # noqa: F811
    client = bridged_client
    assert client.get("/api/queues").status_code == 401
    r = client.put("/api/agents/ana", json={"skills": {"lang:es": 1, "topic:billing": 3},
                                            "contact": "+34600000100"}, headers=ADMIN)
    assert r.status_code == 200, r.get_json()
    store = client.application.extensions["centralita"].get("queue")
    for sid in ("CA1", "CA2"):  # two callers holding at Twilio
        twilio_cloud.add_live_call(sid)
        store.enqueue(sid, "billing", requirements("es", "billing", 2))
    queues = client.get("/api/queues", headers=ADMIN).get_json()
    billing = next(q for q in queues if q["name"] == "billing")
    assert {"name", "waiting", "longest_wait_s", "ewt_s", "agents_available"} <= set(billing)
    assert billing["waiting"] == 2 and billing["agents_available"] == 0

    got = client.post("/api/agents/ana/login", headers=ADMIN).get_json()
    assert [a["call_id"] for a in got["assignments"]] == ["CA1"]
    accepted = client.post("/api/agents/ana/accept", json={"call_id": "CA1"},
                           headers=ADMIN).get_json()
    assert accepted["status"] == "bridged" and accepted["bridged"] is True
    assert "+34600000100" in twilio_cloud.calls["CA1"].updates[-1]["Twiml"]  # ana rings
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
    assert body.startswith("retry: 3000\n\nevent: queues\ndata: [")
    assert body.endswith('event: end\ndata: {"reason": "lifetime", "reconnect_ms": 3000}\n\n')


def _app(tmp_path: Path, redis_url: str, **extra: Any) -> Flask:
    settings = Settings(data_dir=tmp_path, redis_url=redis_url, admin_token="secret",
                        validate_signature=False, extra=extra)
    return create_app(settings)


def _events(chunks: Iterator[bytes]) -> Iterator[tuple[str, str]]:
    """(kind, payload) per SSE block: ("queues", json), ("retry", ms), ("comment", text)."""
    buffer = ""
    for chunk in chunks:
        buffer += chunk.decode()
        while "\n\n" in buffer:
            block, buffer = buffer.split("\n\n", 1)
            fields = dict(line.split(": ", 1) if not line.startswith(":") else ("comment", line[2:])
                          for line in block.split("\n"))
            if "event" in fields:
                yield fields["event"], fields["data"]
            else:
                kind, value = next(iter(fields.items()))
                yield kind, value


def test_event_feed_streams_each_change_of_the_real_router(tmp_path: Path,
                                                           redis_url: str) -> None:
    app = _app(tmp_path, redis_url, sse_heartbeat_s=0.2)
    store = app.extensions["centralita"].get("queue")
    r = app.test_client().get("/api/events/queues?max_seconds=30", headers=ADMIN,
                              buffered=False)
    try:
        events = _events(r.iter_encoded())
        assert next(events) == ("retry", "3000")
        kind, data = next(events)
        assert kind == "queues" and json.loads(data) == []  # nothing waiting yet
        store.enqueue("CA1", "billing", requirements("es", "billing", 2))
        kind, data = next(events)
        assert kind == "queues"
        billing = next(q for q in json.loads(data) if q["name"] == "billing")
        assert billing["waiting"] == 1 and billing["agents_available"] == 0
        store.enqueue("CA2", "billing", requirements("es", "billing", 2))
        assert _billing(next(events))["waiting"] == 2
        store.abandon("CA1")  # the caller hung up: one frame, with the abandonment counted
        billing = _billing(next(events))
        assert billing["waiting"] == 1 and billing["abandoned"] == 1
        # A quiet stream sends heartbeat comments (0.2 s here) instead of frames.
        assert next(events) == ("comment", "keep-alive")
    finally:
        r.close()
    assert app.extensions[SLOTS_KEY].open == 0


def _billing(event: tuple[str, str]) -> dict[str, Any]:
    kind, data = event
    assert kind == "queues", event
    found: dict[str, Any] = next(q for q in json.loads(data) if q["name"] == "billing")
    return found


class _Holder(threading.Thread):
    """Opens a feed in its own thread (as a gunicorn thread would) and holds it."""

    def __init__(self, app: Flask) -> None:
        super().__init__(daemon=True)
        self.app = app
        self.status: int | None = None
        self.opened = threading.Event()
        self.done = threading.Event()

    def run(self) -> None:
        r = self.app.test_client().get("/api/events/queues?max_seconds=60", headers=ADMIN,
                                       buffered=False)
        self.status = r.status_code
        self.opened.set()
        self.done.wait(30)
        r.close()


def test_feeds_are_capped_per_process_and_a_closed_one_frees_its_slot(
        tmp_path: Path, redis_url: str) -> None:
    app = _app(tmp_path, redis_url, sse_max_streams=2)
    holders = [_Holder(app), _Holder(app)]
    for h in holders:
        h.start()
        assert h.opened.wait(10)
    try:
        assert [h.status for h in holders] == [200, 200]
        client = app.test_client()
        r = client.get("/api/events/queues", headers=ADMIN)
        assert r.status_code == 503
        body = r.get_json()
        assert body["error"] == "busy" and "2 live feed" in body["detail"]
        assert "GET /api/queues" in body["detail"]
        # The streams end within 60 s, so that is the longest anyone is told to wait.
        assert 1 <= int(r.headers["Retry-After"]) <= 60
        assert body["retry_after_s"] == int(r.headers["Retry-After"])
        assert client.get("/api/queues", headers=ADMIN).status_code == 200  # polling still works
        holders[0].done.set()
        holders[0].join(10)
        assert app.extensions[SLOTS_KEY].open == 1
        r = client.get("/api/events/queues?max_seconds=0.3", headers=ADMIN)
        assert r.status_code == 200 and r.get_data(as_text=True).endswith("}\n\n")
    finally:
        for h in holders:
            h.done.set()
            h.join(10)
    assert app.extensions[SLOTS_KEY].open == 0


def test_stream_lifetime_is_capped_and_feeds_can_be_turned_off(tmp_path: Path,
                                                               redis_url: str) -> None:
    app = _app(tmp_path, redis_url, sse_max_seconds=0.3)
    r = app.test_client().get("/api/events/queues?max_seconds=3600", headers=ADMIN)
    assert r.status_code == 200 and r.headers["X-Stream-Max-Seconds"] == "0.3"
    assert r.get_data(as_text=True).endswith('"reason": "lifetime", "reconnect_ms": 3000}\n\n')
    for bad in ("0", "-1", "nan", "inf"):
        r = app.test_client().get(f"/api/events/queues?max_seconds={bad}", headers=ADMIN)
        assert r.status_code == 400 and "max_seconds" in r.get_json()["detail"], bad
    off = _app(tmp_path, redis_url, sse_max_streams=0)
    r = off.test_client().get("/api/events/queues", headers=ADMIN)
    assert r.status_code == 503 and "turned off" in r.get_json()["detail"]
    assert r.headers["Retry-After"].isdigit()
    for bad in ({"sse_max_streams": -1}, {"sse_max_seconds": 0}, {"sse_heartbeat_s": "often"}):
        with pytest.raises(SettingsError, match="sse_"):
            _app(tmp_path, redis_url, **bad)


def test_feed_limits_come_from_the_environment(tmp_path: Path) -> None:
    settings = Settings.from_env({"IVR_DATA_DIR": str(tmp_path), "IVR_SSE_MAX_STREAMS": "5",
                                  "IVR_SSE_MAX_SECONDS": "60", "IVR_SSE_HEARTBEAT_S": ""})
    assert settings.extra == {"sse_max_streams": "5", "sse_max_seconds": "60"}
