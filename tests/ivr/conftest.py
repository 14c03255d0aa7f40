"""Fixtures for the web layer: app → client → simulator, on real Redis and SQLite."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from twilio.request_validator import RequestValidator

from ivr.app import create_app
from ivr.settings import Settings
from ivr.simulator import SimulatedCall, Simulator, TestClientTransport
from tests.fakes import FakeTwilioCloud

AUTH_TOKEN = "test-auth-token-0123456789abcdef"
ADMIN_TOKEN = "admin-secret"
BASE = "http://localhost"


@pytest.fixture()
def settings(data_dir: Path, redis_url: str) -> Settings:
    return Settings(data_dir=data_dir, redis_url=redis_url, twilio_auth_token=AUTH_TOKEN,
                    admin_token=ADMIN_TOKEN, validate_signature=True,
                    secret_key="test-secret")


@pytest.fixture()
def app(settings: Settings) -> Iterator[Flask]:
    app = create_app(settings)
    app.config["TESTING"] = True
    yield app
    writer = app.extensions["centralita"].components.get("writer")
    if writer is not None:
        writer.flush(5)


@pytest.fixture()
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture()
def sim(client: FlaskClient) -> Simulator:
    return Simulator(BASE, AUTH_TOKEN, transport=TestClientTransport(client))


def flush(app: Flask) -> None:
    assert app.extensions["centralita"].components["writer"].flush(5)


@pytest.fixture(scope="module")
def ko_factory() -> Callable[[str], object]:
    """Korean Vosk recognisers (the model loads once per process)."""
    from speech.streaming import recognizer_cache
    from speech.vosk_recognizer import VoskRecognizer

    factory = recognizer_cache(lambda language: VoskRecognizer(language))
    factory("ko")
    return factory


@pytest.fixture()
def cloud() -> Iterator[FakeTwilioCloud]:
    """The fake Twilio cloud, signing with the test auth token."""
    with FakeTwilioCloud(auth_token=AUTH_TOKEN) as fake:
        yield fake


def wait_again(client: FlaskClient, call: SimulatedCall) -> ET.Element:
    """Twilio fetching the waitUrl again once the previous hold TwiML ended."""
    last = [r for r in call.requests if "/voice/wait" in r.url][-1]
    path = last.url.removeprefix(BASE)
    params = dict(last.params)
    signature = RequestValidator(AUTH_TOKEN).compute_signature(BASE + path, params)
    answer = client.post(path, data=params, headers={"X-Twilio-Signature": signature})
    assert answer.status_code == 200 and answer.mimetype == "text/xml"
    return ET.fromstring(answer.get_data())
