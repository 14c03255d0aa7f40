"""The fake Twilio cloud itself: auth, Twilio's error shapes, calls answered for real.

An outbound call created through the fake is "answered" by the simulator, which
fetches the call's Url from a small Flask app (checking Twilio's signature made with
the account's auth token) and posts the status callback; the fake tracks the call's
status from queued to completed.
"""

from __future__ import annotations

from typing import Any

import requests
from flask import Flask, Response, abort, request
from twilio.request_validator import RequestValidator

from ivr.simulator import TestClientTransport
from tests.fakes import FakeTwilioCloud, basic_auth, twilio_cloud  # noqa: F401  (fixture)

APP = "http://app.example.test"


def callback_app(token: str, seen: list[tuple[str, dict[str, str]]]) -> Flask:
    app = Flask(__name__)
    validator = RequestValidator(token)

    @app.before_request
    def check() -> None:
        if not validator.validate(request.url, request.form,
                                  request.headers.get("X-Twilio-Signature", "")):
            abort(403)
        seen.append((request.path, request.form.to_dict()))

    @app.post("/voice/callback")
    def callback() -> Response:
        return Response('<Response><Gather numDigits="1" action="/voice/confirm">'
                        "<Say>Press 1 to talk to an agent.</Say></Gather></Response>",
                        mimetype="text/xml")

    @app.post("/voice/confirm")
    def confirm() -> Response:
        return Response("<Response><Say>Connecting you.</Say></Response>", mimetype="text/xml")

    @app.post("/voice/status")
    def status() -> Response:
        return Response("", status=204)

    return app


def _url(cloud: FakeTwilioCloud, path: str) -> str:
    return f"{cloud.url}/2010-04-01/Accounts/{cloud.account_sid}{path}"


def test_routes_need_basic_auth(twilio_cloud: FakeTwilioCloud) -> None:  # noqa: F811
    resp = requests.get(_url(twilio_cloud, "/Calls/CA1.json"), timeout=5)
    assert resp.status_code == 401 and resp.json()["code"] == 20003
    assert "Basic" in resp.headers["WWW-Authenticate"]
    other = requests.get(f"{twilio_cloud.url}/2010-04-01/Accounts/AC9/Calls/CA1.json",
                         headers={"Authorization": basic_auth(twilio_cloud.account_sid,
                                                              twilio_cloud.auth_token)},
                         timeout=5)
    assert other.status_code == 404 and other.json() == {
        "code": 20404, "status": 404,
        "message": "The requested resource /2010-04-01/Accounts/AC9/Calls/CA1.json was not found",
        "more_info": "https://www.twilio.com/docs/errors/20404"}


def test_create_call_validates_like_twilio(twilio_cloud: FakeTwilioCloud) -> None:  # noqa: F811
    auth = {"Authorization": basic_auth(twilio_cloud.account_sid, twilio_cloud.auth_token)}
    resp = requests.post(_url(twilio_cloud, "/Calls.json"), data={"From": "+34900000000"},
                         headers=auth, timeout=5)
    assert resp.status_code == 400 and resp.json()["code"] == 21201
    twilio_cloud.throttle(retry_after=7)
    throttled = requests.post(_url(twilio_cloud, "/Calls.json"), headers=auth, timeout=5)
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "7"
    assert throttled.json()["code"] == 20429


def test_outbound_call_is_answered_through_our_webhooks(twilio_cloud: FakeTwilioCloud) -> None:  # noqa: F811
    seen: list[tuple[str, dict[str, str]]] = []
    transport = TestClientTransport(callback_app(twilio_cloud.auth_token, seen).test_client())
    with twilio_cloud.rest_client() as rest:
        sid = rest.create_call(to="+34600111222", from_="+34900000000",
                               url=f"{APP}/voice/callback",
                               status_callback=f"{APP}/voice/status")["sid"]
        assert rest.fetch_call(sid)["status"] == "queued"
        call = twilio_cloud.answer(sid, transport=transport)
        assert rest.fetch_call(sid)["status"] == "in-progress"
        assert call.heard("Press 1 to talk to an agent")
        first: dict[str, Any] = seen[0][1]
        assert first["Direction"] == "outbound-api" and first["CallStatus"] == "in-progress"
        assert first["CallSid"] == sid and first["AccountSid"] == twilio_cloud.account_sid
        assert first["To"] == "+34600111222" and first["From"] == "+34900000000"
        call.press("1")
        assert call.heard("Connecting you") and call.ended
        fetched = rest.fetch_call(sid)
    assert fetched["status"] == "completed" and int(fetched["duration"]) == call.duration
    assert [path for path, _ in seen] == ["/voice/callback", "/voice/confirm", "/voice/status"]


def test_rest_hangup_reaches_the_live_call(twilio_cloud: FakeTwilioCloud) -> None:  # noqa: F811
    seen: list[tuple[str, dict[str, str]]] = []
    transport = TestClientTransport(callback_app(twilio_cloud.auth_token, seen).test_client())
    with twilio_cloud.rest_client() as rest:
        sid = rest.create_call(to="+34600111222", from_="+34900000000",
                               url=f"{APP}/voice/callback",
                               status_callback=f"{APP}/voice/status")["sid"]
        call = twilio_cloud.answer(sid, transport=transport)
        rest.hangup_call(sid)
        call.apply_updates()
    assert call.ended and seen[-1][0] == "/voice/status"
    assert twilio_cloud.calls[sid].status == "completed"


def test_unanswered_call_only_posts_the_status(twilio_cloud: FakeTwilioCloud) -> None:  # noqa: F811
    seen: list[tuple[str, dict[str, str]]] = []
    transport = TestClientTransport(callback_app(twilio_cloud.auth_token, seen).test_client())
    with twilio_cloud.rest_client() as rest:
        sid = rest.create_call(to="+34600111222", from_="+34900000000",
                               url=f"{APP}/voice/callback",
                               status_callback=f"{APP}/voice/status")["sid"]
        twilio_cloud.no_answer(sid, "busy", transport=transport)
        assert rest.fetch_call(sid)["status"] == "busy"
    assert [(p, f["CallStatus"]) for p, f in seen] == [("/voice/status", "busy")]


def test_call_list_pages_like_twilio(twilio_cloud: FakeTwilioCloud) -> None:  # noqa: F811
    sids = [twilio_cloud.add_live_call(status="in-progress") for _ in range(3)]
    auth = {"Authorization": basic_auth(twilio_cloud.account_sid, twilio_cloud.auth_token)}
    first = requests.get(_url(twilio_cloud, "/Calls.json"), headers=auth, timeout=5,
                         params={"Status": "in-progress", "PageSize": 2}).json()
    assert [c["sid"] for c in first["calls"]] == sids[::-1][:2]  # newest first
    assert first["page"] == 0 and first["page_size"] == 2 and first["previous_page_uri"] is None
    assert first["next_page_uri"].startswith(f"/2010-04-01/Accounts/{twilio_cloud.account_sid}/")
    second = requests.get(twilio_cloud.url + first["next_page_uri"], headers=auth,
                          timeout=5).json()
    assert [c["sid"] for c in second["calls"]] == [sids[0]]
    assert second["next_page_uri"] is None and second["page"] == 1
    bad = requests.get(_url(twilio_cloud, "/Calls.json"), headers=auth, timeout=5,
                       params={"Status": "talking"})
    assert bad.status_code == 400 and bad.json()["code"] == 20001


def test_create_gate_holds_the_answer_after_the_call_exists(
        twilio_cloud: FakeTwilioCloud) -> None:  # noqa: F811
    import threading

    gate = twilio_cloud.hold_creates()
    answers: list[int] = []
    rest = twilio_cloud.rest_client()
    worker = threading.Thread(target=lambda: answers.append(len(rest.create_call(
        to="+34600111222", from_="+34900000000", twiml="<Response/>"))))
    worker.start()
    assert gate.arrived.wait(5)
    assert len(twilio_cloud.calls) == 1 and answers == []  # created, not yet answered
    gate.release()
    worker.join(5)
    assert answers and answers[0] > 0
