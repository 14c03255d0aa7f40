"""IVR_SPEECH chooses who hears the caller: Twilio, or Vosk through recordings/streams."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from flask.testing import FlaskClient
from twilio.request_validator import RequestValidator

from ivr.app import create_app
from ivr.settings import Settings
from tests.ivr.conftest import AUTH_TOKEN, BASE

KO_FLOWS = Path(__file__).resolve().parents[1] / "flows_ko"


def first_answer(client: FlaskClient) -> ET.Element:
    params = {"CallSid": "CA" + "7" * 32, "From": "+34699000111", "To": "+34930009999",
              "CallStatus": "ringing"}
    sig = RequestValidator(AUTH_TOKEN).compute_signature(BASE + "/voice/incoming", params)
    response = client.post("/voice/incoming", data=params, headers={"X-Twilio-Signature": sig})
    assert response.status_code == 200
    return ET.fromstring(response.get_data())


def test_twilio_mode_gathers_speech_with_twilio(settings: Settings) -> None:
    root = first_answer(create_app(settings.with_(flows_dir=KO_FLOWS)).test_client())
    gather = root.find("Gather")
    assert gather is not None and "speech" in (gather.get("input") or "")


def test_vosk_record_mode_records_the_answer_after_a_keys_only_gather(settings: Settings) -> None:
    app = create_app(settings.with_(flows_dir=KO_FLOWS, speech_mode="vosk-record"))
    root = first_answer(app.test_client())
    tags = [child.tag for child in root]
    assert "Record" in tags
    gather = root.find("Gather")
    assert gather is not None and gather.get("input") == "dtmf"
    assert "purpose=speech" in (root.find("Record").get("action") or "")  # type: ignore[union-attr]


def test_vosk_stream_mode_forks_audio_to_our_websocket(settings: Settings) -> None:
    app = create_app(settings.with_(flows_dir=KO_FLOWS, speech_mode="vosk-stream",
                                    media_stream_url="wss://ivr.example.com/media",
                                    public_url=BASE))
    root = first_answer(app.test_client())
    stream = root.find("Start/Stream")
    assert stream is not None and stream.get("url") == "wss://ivr.example.com/media"


def test_vosk_stream_without_the_public_url_falls_back_to_recordings(
        settings: Settings, caplog) -> None:  # type: ignore[no-untyped-def]
    """The next turn goes to the live call as TwiML, whose URLs must be absolute."""
    app = create_app(settings.with_(flows_dir=KO_FLOWS, speech_mode="vosk-stream",
                                    media_stream_url="wss://ivr.example.com/media"))
    root = first_answer(app.test_client())
    assert root.find("Start") is None and root.find("Record") is not None
    assert "IVR_PUBLIC_URL" in caplog.text


def test_vosk_stream_without_public_url_falls_back_to_recordings(settings: Settings,
                                                                 caplog) -> None:  # type: ignore[no-untyped-def]
    app = create_app(settings.with_(flows_dir=KO_FLOWS, speech_mode="vosk-stream"))
    root = first_answer(app.test_client())
    assert root.find("Start") is None and root.find("Record") is not None
    assert "IVR_MEDIA_STREAM_URL" in caplog.text
