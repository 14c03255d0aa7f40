"""Webhooks through the whole stack: signature, sealed state, engine, render, Redis."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from ivr.app import create_app
from ivr.settings import Settings
from tests.ivr.conftest import AUTH_TOKEN, BASE, flush

SID = "CA" + "0123456789abcdef" * 2


def signed_post(client: FlaskClient, path: str, params: dict[str, str]):  # type: ignore[no-untyped-def]
    signature = RequestValidator(AUTH_TOKEN).compute_signature(BASE + path, params)
    return client.post(path, data=params, headers={"X-Twilio-Signature": signature})


def incoming_params(sid: str = SID, caller: str = "+34600999888") -> dict[str, str]:
    return {"CallSid": sid, "AccountSid": "AC" + "0" * 32, "From": caller,
            "To": "+34930000001", "CallStatus": "ringing", "Direction": "inbound",
            "ApiVersion": "2010-04-01"}


def assert_twiml(response, allow_empty: bool = False) -> ET.Element:  # type: ignore[no-untyped-def]
    assert response.status_code == 200
    assert response.mimetype == "text/xml"
    root = ET.fromstring(response.get_data())
    assert root.tag == "Response" and (allow_empty or len(root) > 0)
    return root


def next_step_url(root: ET.Element) -> str:
    for element in root.iter():
        if element.tag == "Gather":
            return str(element.get("action"))
    raise AssertionError("no Gather in the answer")


def test_unsigned_or_wrongly_signed_requests_get_403_and_change_nothing(
        client: FlaskClient, redis_client: redis.Redis) -> None:
    assert client.post("/voice/incoming", data=incoming_params()).status_code == 403
    bad = client.post("/voice/incoming", data=incoming_params(),
                      headers={"X-Twilio-Signature": "AAAA"})
    assert bad.status_code == 403
    for path in ("/voice/step?s=x", "/voice/status", "/voice/wait", "/voice/recording",
                 "/voice/queue-result", "/voice/dial-result", "/voice/fallback"):
        assert client.post(path, data=incoming_params()).status_code == 403
    assert redis_client.keys("ivr:call*") == [] and redis_client.keys("ivr:phone*") == []


def test_incoming_call_answers_twiml_and_records_the_step(app: Flask, client: FlaskClient,
                                                         redis_client: redis.Redis) -> None:
    root = assert_twiml(signed_post(client, "/voice/incoming", incoming_params()))
    assert next_step_url(root).startswith("/voice/step?s=")
    flush(app)
    assert redis_client.hget(f"ivr:call:{SID}", "seq") is not None
    events = redis_client.xrange(f"ivr:call:{SID}:events")
    assert events and '"call_started"' in events[0][1]["data"]
    # The caller's number is not in the URL Twilio will log.
    assert "600999888" not in next_step_url(root)


def test_twilio_retry_gets_identical_answer_and_records_once(app: Flask, client: FlaskClient,
                                                            redis_client: redis.Redis) -> None:
    first = assert_twiml(signed_post(client, "/voice/incoming", incoming_params()))
    step = next_step_url(first)
    answer1 = signed_post(client, step, dict(incoming_params(), Digits="1"))
    answer2 = signed_post(client, step, dict(incoming_params(), Digits="1"))
    assert answer1.get_data() == answer2.get_data()
    flush(app)
    seqs = [fields["seq"] for _, fields in redis_client.xrange(f"ivr:call:{SID}:events")]
    assert len(seqs) == len(set(zip(seqs, range(len(seqs))))) and seqs == sorted(seqs, key=int)
    # Two requests, two steps recorded once each: no sequence number appears twice
    # in a way that would mean the retry was recorded again.
    assert redis_client.scard(f"ivr:call:{SID}:seqs") == 2


def test_status_callbacks_duplicates_and_out_of_order_are_harmless(
        app: Flask, client: FlaskClient, redis_client: redis.Redis) -> None:
    step = next_step_url(assert_twiml(signed_post(client, "/voice/incoming", incoming_params())))
    completed = dict(incoming_params(), CallStatus="completed", CallDuration="42",
                     SequenceNumber="3")
    ringing = dict(incoming_params(), CallStatus="ringing", SequenceNumber="0")
    for params in (completed, completed, ringing, completed):
        assert signed_post(client, "/voice/status", params).status_code == 204
    assert redis_client.hget(f"ivr:call:{SID}", "ended") is not None
    statuses = [f["data"] for _, f in redis_client.xrange(f"ivr:call:{SID}:events")
                if '"status"' in f["data"]]
    assert len(statuses) == 2  # completed once, ringing once
    # A late request for the ended call is told to hang up, with valid TwiML.
    root = assert_twiml(signed_post(client, step, dict(incoming_params(), Digits="1")))
    assert [child.tag for child in root] == ["Hangup"]


def test_status_callback_without_call_sid_is_a_client_error(client: FlaskClient) -> None:
    assert signed_post(client, "/voice/status", {"CallStatus": "completed"}).status_code == 400


def test_tampered_or_foreign_state_gets_apology_not_an_error(client: FlaskClient) -> None:
    step = next_step_url(assert_twiml(signed_post(client, "/voice/incoming", incoming_params())))
    tampered = step[:-4] + ("AAAA" if not step.endswith("AAAA") else "BBBB")
    root = assert_twiml(signed_post(client, tampered, dict(incoming_params(), Digits="1")))
    assert [child.tag for child in root] == ["Say", "Enqueue"]
    other = "CA" + "f" * 32
    root = assert_twiml(signed_post(client, step, dict(incoming_params(other), Digits="1")))
    assert [child.tag for child in root] == ["Say", "Enqueue"]


def test_internal_failure_gives_apology_and_general_queue(app: Flask,
                                                          client: FlaskClient) -> None:
    service = app.extensions["centralita"].components["calls"]

    class Broken:
        def start(self, event: object) -> None:
            raise RuntimeError("boom")

    service.engine = Broken()
    root = assert_twiml(signed_post(client, "/voice/incoming", incoming_params()))
    assert [child.tag for child in root] == ["Say", "Enqueue"]
    assert root.find("Enqueue").text == "general"  # type: ignore[union-attr]


def test_forwarded_and_public_url_signatures(settings: Settings) -> None:
    public = create_app(settings.with_(public_url="https://ivr.example.com"))
    params = incoming_params()
    sig = RequestValidator(AUTH_TOKEN).compute_signature(
        "https://ivr.example.com/voice/incoming", params)
    client = public.test_client()
    assert client.post("/voice/incoming", data=params,
                       headers={"X-Twilio-Signature": sig}).status_code == 200
    # Same request, signature for the URL the server sees: refused (Twilio never signs that).
    assert signed_post(client, "/voice/incoming", params).status_code == 403
    trusting = create_app(settings.with_(trust_forwarded=True)).test_client()
    headers = {"X-Twilio-Signature": sig, "X-Forwarded-Proto": "https",
               "X-Forwarded-Host": "ivr.example.com"}
    assert trusting.post("/voice/incoming", data=params, headers=headers).status_code == 200


_text = st.text(max_size=200)
_params = st.fixed_dictionaries(
    {"CallSid": st.one_of(st.just(SID), _text)},
    optional={"Digits": _text, "SpeechResult": st.text(max_size=10_000),
              "Confidence": _text, "From": _text, "To": _text, "RecordingUrl": _text,
              "RecordingDuration": _text, "QueueResult": _text, "QueueTime": _text,
              "DialCallStatus": _text, "QueuePosition": _text, "AvgQueueTime": _text})


@hyp_settings(max_examples=60, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture,
                                     HealthCheck.too_slow])
@given(params=_params, route=st.sampled_from(
    ["/voice/incoming", "step", "/voice/recording", "/voice/queue-result",
     "/voice/dial-result", "/voice/wait", "/voice/hold-key", "/voice/fallback",
     "/voice/step?s=garbage", "/voice/step"]))
def test_any_signed_input_gets_valid_twiml(client: FlaskClient, params: dict[str, str],
                                           route: str) -> None:
    if route == "step":
        route = next_step_url(assert_twiml(signed_post(client, "/voice/incoming",
                                                       incoming_params())))
    response = signed_post(client, route, params)
    # A key other than 1 while holding answers an empty document: back to the music.
    assert_twiml(response, allow_empty=route == "/voice/hold-key")


def test_healthz_ok_then_503_when_redis_is_gone(client: FlaskClient, settings: Settings,
                                                tmp_path) -> None:  # type: ignore[no-untyped-def]
    ok = client.get("/healthz")
    assert ok.status_code == 200 and ok.get_json()["status"] == "ok"
    down = create_app(settings.with_(redis_url=f"unix://{tmp_path}/nothing.sock"))
    response = down.test_client().get("/healthz")
    assert response.status_code == 503 and response.get_json()["status"] != "ok"
    # Even with Redis down a caller is answered (state travels in the URL).
    root = assert_twiml(signed_post(down.test_client(), "/voice/incoming", incoming_params()))
    assert next_step_url(root)


def test_metrics_exposition_has_no_personal_data(client: FlaskClient) -> None:
    signed_post(client, "/voice/incoming", incoming_params(caller="+34600111222"))
    body = client.get("/metrics").get_data(as_text=True)
    assert "ivr_redis_up 1.0" in body
    assert "600111222" not in body


def test_hold_music_is_a_wav(client: FlaskClient) -> None:
    response = client.get("/static/hold.wav")
    assert response.status_code == 200 and response.get_data()[:4] == b"RIFF"


@pytest.mark.parametrize("digits,expected", [("1", ["Leave"]), ("5", [])])
def test_hold_key_one_leaves_towards_callback(client: FlaskClient, digits: str,
                                               expected: list[str]) -> None:
    response = signed_post(client, "/voice/hold-key", dict(incoming_params(), Digits=digits))
    assert response.status_code == 200
    assert [child.tag for child in ET.fromstring(response.get_data())] == expected
