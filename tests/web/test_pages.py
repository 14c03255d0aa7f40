"""Agents' admin form, the agent console's offer, and the dashboard snapshot (test client)."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from tests.web.conftest import login


def test_supervisor_configures_an_agent_with_the_form(web_client: FlaskClient,
                                                      web_app: Flask) -> None:
    token = login(web_client, "sergi")
    page = web_client.get("/admin/agents").get_data(as_text=True)
    assert '<option value="alba">' in page  # an agent login not yet in the router
    web_client.post("/admin/agents", data={"csrf_token": token, "agent_id": "alba",
                                           "skills": "lang:es=3, topic:billing=2",
                                           "capacity": "1", "queues": "support"})
    agent = web_app.extensions["centralita"].get("queue").agent("alba")
    assert dict(agent.skills) == {"lang:es": 3, "topic:billing": 2}
    assert tuple(agent.queues) == ("support",)
    refused = web_client.post("/admin/agents", data={"csrf_token": token, "agent_id": "alba",
                                                     "skills": "lang:es=9"},
                              follow_redirects=True)
    assert "level 1..5" in refused.get_data(as_text=True)
    assert web_app.extensions["centralita"].get("queue").agent("alba").skills["lang:es"] == 3


def test_agents_cannot_configure_agents(web_client: FlaskClient) -> None:
    token = login(web_client, "alba")
    assert web_client.get("/admin/agents").status_code == 403
    answer = web_client.post("/admin/agents", data={"csrf_token": token, "agent_id": "alba",
                                                    "skills": "lang:es=5"})
    assert answer.status_code == 403


def test_offer_shows_the_reserved_call_and_what_the_caller_chose(web_client: FlaskClient,
                                                                 web_app: Flask) -> None:
    services = web_app.extensions["centralita"]
    store = services.get("queue")
    store.upsert_agent("alba", {"lang:es": 1}, 1, ())
    store.set_state("alba", "available")
    store.enqueue("CA" + "7" * 32, "support", {"lang:es": 1}, caller="+34600000001")
    login(web_client, "alba")
    offer = web_client.get("/agent/offer.json").get_json()
    assert offer["agent"]["state"] == "reserved"
    [call] = offer["calls"]
    assert call["caller"] == "+34600000001" and call["queue"] == "support"
    assert call["ivr"]["inputs"] == []  # no IVR record for a call put in line by hand


def test_dashboard_snapshot_counts_waiting_calls_and_agents(web_client: FlaskClient,
                                                            web_app: Flask) -> None:
    store = web_app.extensions["centralita"].get("queue")
    store.enqueue("CA" + "8" * 32, "support", {"lang:ca": 1}, caller="+34600000002")
    store.upsert_agent("alba", {"lang:es": 1}, 1, ())
    store.set_state("alba", "paused", "break")
    login(web_client, "sergi")
    snap = web_client.get("/dashboard/live.json").get_json()
    support = next(q for q in snap["queues"] if q["name"] == "support")
    assert support["waiting"] == 1 and snap["totals"]["waiting"] == 1
    assert snap["agents_by_state"]["paused"] == 1
    assert snap["agents"][0]["pause_reason"] == "break"
    assert web_client.get("/agent/offer.json").status_code == 403
