"""The WSGI fast path answers exactly as the Flask views would, signature rules included."""

from __future__ import annotations

import json

from flask import Flask
from flask.testing import FlaskClient
from hypothesis import given
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from ivr.fastpath import VoiceFastPath, parse_form, twilio_signature
from tests.ivr.conftest import AUTH_TOKEN, BASE, flush
from tests.ivr.test_webhooks import assert_twiml, incoming_params, next_step_url, signed_post

SID = "CA" + "fedcba9876543210" * 2

names = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=8)
values = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)


@given(st.lists(st.tuples(names, values), max_size=8))
def test_signature_is_the_libraries_for_any_parameters(pairs: list[tuple[str, str]]) -> None:
    from werkzeug.datastructures import MultiDict

    url = "https://example.com/voice/step?s=abc&event=x"
    expected = RequestValidator(AUTH_TOKEN).compute_signature(url, MultiDict(pairs))
    assert twilio_signature(AUTH_TOKEN.encode(), url, pairs) == expected


@given(st.lists(st.tuples(names, values), max_size=8), st.sampled_from(["", "&", "&&", "x"]))
def test_form_parsing_is_parse_qsl(pairs: list[tuple[str, str]], extra: str) -> None:
    from urllib.parse import parse_qsl, urlencode

    body = urlencode(pairs) + ("&" + extra if extra else "")
    assert parse_form(body) == parse_qsl(body, keep_blank_values=True)
    raw = "a=%41+b&c&=d&e=%zz&%2B=+"
    assert parse_form(raw) == parse_qsl(raw, keep_blank_values=True)


def _flask_only(app: Flask) -> FlaskClient:
    """A client of the same app with the fast path taken out (the views answer)."""
    assert isinstance(app.wsgi_app, VoiceFastPath)
    plain = Flask.__new__(Flask)
    plain.__dict__.update(app.__dict__)
    plain.wsgi_app = app.wsgi_app.app  # type: ignore[method-assign]
    return plain.test_client()


def test_fast_path_and_views_give_the_same_bytes(app: Flask, client: FlaskClient) -> None:
    params = incoming_params(SID)
    fast = signed_post(client, "/voice/incoming", params)
    slow = signed_post(_flask_only(app), "/voice/incoming", params)
    assert fast.status_code == slow.status_code == 200
    assert fast.headers["Content-Type"] == slow.headers["Content-Type"] == "text/xml; charset=utf-8"
    assert fast.get_data() == slow.get_data()  # a retry: byte-identical answer
    step = next_step_url(assert_twiml(fast))
    menu = dict(params, Digits="9", CallStatus="in-progress")
    a = signed_post(client, step, menu)
    b = signed_post(_flask_only(app), step, menu)
    assert a.get_data() == b.get_data() and a.status_code == 200
    flush(app)


def test_bad_signatures_are_refused_on_the_fast_path(client: FlaskClient) -> None:
    params = incoming_params(SID)
    for headers in ({}, {"X-Twilio-Signature": "AAAA"}):
        response = client.post("/voice/incoming", data=params, headers=headers)
        assert response.status_code == 403
        assert response.get_data() == b"invalid Twilio signature\n"
    # A parameter changed after signing is refused too.
    signature = RequestValidator(AUTH_TOKEN).compute_signature(BASE + "/voice/incoming", params)
    response = client.post("/voice/incoming", data=dict(params, From="+34999"),
                           headers={"X-Twilio-Signature": signature})
    assert response.status_code == 403


def test_port_variants_and_repeated_names_are_accepted(client: FlaskClient) -> None:
    params = incoming_params(SID)
    # Twilio may sign with the default port although the Host header has none.
    signature = RequestValidator(AUTH_TOKEN).compute_signature(
        "http://localhost:80/voice/incoming", params)
    ok = client.post("/voice/incoming", data=params, headers={"X-Twilio-Signature": signature})
    assert_twiml(ok)
    # A repeated name is signed with every value; the call sees the first.
    body = "&".join(f"{k}={v}" for k, v in params.items()) + "&Extra=b&Extra=a"
    from werkzeug.datastructures import MultiDict

    pairs = MultiDict(list(params.items()) + [("Extra", "b"), ("Extra", "a")])
    signature = RequestValidator(AUTH_TOKEN).compute_signature(BASE + "/voice/incoming", pairs)
    ok = client.post("/voice/incoming", data=body.replace("+", "%2B"),
                     content_type="application/x-www-form-urlencoded",
                     headers={"X-Twilio-Signature": signature})
    assert_twiml(ok)


def test_other_bodies_and_routes_go_to_the_views(client: FlaskClient) -> None:
    # JSON bodies are signed with bodySHA256: the Flask view handles (and refuses) them.
    response = client.post("/voice/incoming", data=json.dumps({"CallSid": SID}),
                           content_type="application/json",
                           headers={"X-Twilio-Signature": "AAAA"})
    assert response.status_code == 403
    assert client.get("/healthz").status_code in (200, 503)
    assert client.get("/voice/incoming").status_code == 405  # POST only, as before


def test_internal_failure_is_an_apology_not_an_error(app: Flask, client: FlaskClient) -> None:
    service = app.extensions["centralita"].components["calls"]

    def broken(params: object) -> str:
        raise RuntimeError("engine exploded")

    service.incoming = broken
    response = signed_post(client, "/voice/incoming", incoming_params(SID))
    root = assert_twiml(response)
    assert root.find("Say") is not None and root.find("Enqueue") is not None


def test_a_body_that_cannot_be_read_gets_the_apology_not_an_error(app: Flask) -> None:
    class Broken:
        def read(self, size: int = -1) -> bytes:
            raise OSError("connection reset while reading the body")

    statuses: list[str] = []
    body = b"".join(app.wsgi_app(
        {"REQUEST_METHOD": "POST", "PATH_INFO": "/voice/incoming", "QUERY_STRING": "",
         "CONTENT_TYPE": "application/x-www-form-urlencoded", "CONTENT_LENGTH": "10",
         "wsgi.input": Broken(), "wsgi.url_scheme": "http", "HTTP_HOST": "localhost",
         "SERVER_NAME": "localhost", "SERVER_PORT": "80"},
        lambda status, headers, exc=None: statuses.append(status)))
    assert statuses == ["200 OK"]
    assert b"<Enqueue" in body and body.startswith(b"<?xml")
