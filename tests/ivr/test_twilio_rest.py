"""Our Twilio REST client against the fake Twilio cloud (a real HTTP server).

``sleep`` is replaced by a list that records the delays asked for: the retry policy is
asserted without waiting for it.
"""

from __future__ import annotations

import io
import logging
import socket
import wave
from collections.abc import Iterator

import pytest

from ivr.settings import Settings
from ivr.twilio_rest import (
    NotReady,
    RetryPolicy,
    TooLarge,
    TwilioDisabled,
    TwilioRest,
    TwilioRestError,
)
from tests.fakes import FakeTwilioCloud, twilio_cloud  # noqa: F401  (fixture)


@pytest.fixture()
def slept() -> list[float]:
    return []


@pytest.fixture()
def rest(twilio_cloud: FakeTwilioCloud, slept: list[float]) -> Iterator[TwilioRest]:  # noqa: F811
    with twilio_cloud.rest_client(sleep=slept.append) as client:
        yield client


def test_create_call_sends_twilios_form_with_basic_auth(twilio_cloud: FakeTwilioCloud,  # noqa: F811
                                                        rest: TwilioRest) -> None:
    call = rest.create_call(to="+34600111222", from_="+34900000000",
                            url="https://ivr.example/voice/callback?ticket=7",
                            status_callback="https://ivr.example/voice/status")
    assert call["sid"].startswith("CA") and call["status"] == "queued"
    assert call["direction"] == "outbound-api" and call["to"] == "+34600111222"
    sent = twilio_cloud.requests[-1]
    assert sent.authorized and sent.path.endswith(f"/Accounts/{twilio_cloud.account_sid}/Calls.json")
    assert sent.form["Url"] == ["https://ivr.example/voice/callback?ticket=7"]
    assert sent.form["StatusCallback"] == ["https://ivr.example/voice/status"]
    assert rest.fetch_call(call["sid"])["sid"] == call["sid"]


def test_update_and_hangup_a_call(twilio_cloud: FakeTwilioCloud, rest: TwilioRest) -> None:  # noqa: F811
    sid = rest.create_call(to="+34600111222", from_="+34900000000",
                           twiml="<Response><Say>hola</Say></Response>")["sid"]
    rest.update_call(sid, twiml="<Response><Hangup/></Response>")
    assert twilio_cloud.calls[sid].updates[-1] == {"Twiml": "<Response><Hangup/></Response>"}
    assert rest.hangup_call(sid)["status"] == "canceled"  # it was never answered
    with pytest.raises(TwilioRestError) as err:
        rest.update_call(sid, url="https://ivr.example/x")
    assert (err.value.status, err.value.code) == (400, 21220)
    with pytest.raises(ValueError, match="nothing to update"):
        rest.update_call(sid)


def test_unknown_call_is_20404(rest: TwilioRest) -> None:
    with pytest.raises(TwilioRestError) as err:
        rest.fetch_call("CA" + "0" * 32)
    assert (err.value.status, err.value.code) == (404, 20404)
    assert "was not found" in str(err.value)


def test_wrong_credentials_are_401(twilio_cloud: FakeTwilioCloud, slept: list[float]) -> None:  # noqa: F811
    with TwilioRest(twilio_cloud.account_sid, "wrong", twilio_cloud.url,
                    sleep=slept.append) as client, pytest.raises(TwilioRestError) as err:
        client.fetch_call("CA" + "0" * 32)
    assert (err.value.status, err.value.code) == (401, 20003)
    assert slept == []  # an auth failure is not retried


def test_429_is_retried_after_retry_after(twilio_cloud: FakeTwilioCloud, rest: TwilioRest,  # noqa: F811
                                          slept: list[float]) -> None:
    twilio_cloud.throttle(times=2, retry_after=3)
    call = rest.create_call(to="+34600111222", from_="+34900000000", url="https://x/y")
    assert slept == [3.0, 3.0]
    assert [r.status for r in twilio_cloud.requests] == [429, 429, 201]
    assert len(twilio_cloud.calls) == 1 and call["sid"] in twilio_cloud.calls


def test_retries_are_bounded(twilio_cloud: FakeTwilioCloud, rest: TwilioRest,  # noqa: F811
                             slept: list[float]) -> None:
    twilio_cloud.fail(times=10, status=503)
    with pytest.raises(TwilioRestError) as err:
        rest.fetch_call("CA" + "0" * 32)
    assert err.value.status == 503
    assert len(twilio_cloud.requests) == RetryPolicy().attempts
    assert slept == [0.5, 1.0, 2.0]  # exponential backoff


def test_a_500_on_create_is_not_retried(twilio_cloud: FakeTwilioCloud,  # noqa: F811
                                        rest: TwilioRest) -> None:
    # Twilio may have created the call: retrying could ring the customer twice
    twilio_cloud.fail(times=1, status=500)
    with pytest.raises(TwilioRestError) as err:
        rest.create_call(to="+34600111222", from_="+34900000000", url="https://x/y")
    assert err.value.status == 500 and len(twilio_cloud.requests) == 1


def test_recording_download_waits_while_processing(twilio_cloud: FakeTwilioCloud,  # noqa: F811
                                                   rest: TwilioRest,
                                                   slept: list[float]) -> None:
    rec = twilio_cloud.add_recording(seconds=1.5, not_ready_for=3)
    assert rest.fetch_recording(rec.sid)["status"] == "processing"
    audio = rest.download_recording(rec.url)  # the RecordingUrl of the webhook
    with wave.open(io.BytesIO(audio)) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getnframes()) == (8000, 1, 12000)
    assert slept == [1.0, 1.0, 1.0]
    assert twilio_cloud.requests[-1].path.endswith(f"/Recordings/{rec.sid}.wav")
    assert rest.fetch_recording(rec.sid)["status"] == "completed"


def test_recording_that_never_appears_gives_up(twilio_cloud: FakeTwilioCloud,  # noqa: F811
                                               rest: TwilioRest, slept: list[float]) -> None:
    rec = twilio_cloud.add_recording(not_ready_for=100)
    with pytest.raises(TwilioRestError) as err:
        rest.download_recording(rec.sid)
    assert (err.value.status, err.value.code) == (404, 20404)
    assert len(slept) == RetryPolicy().recording_attempts - 1


def test_delete_recording(twilio_cloud: FakeTwilioCloud, rest: TwilioRest) -> None:  # noqa: F811
    rec = twilio_cloud.add_recording()
    assert rest.delete_recording(rec.sid) is True
    assert rest.delete_recording(rec.sid) is False  # already gone
    assert twilio_cloud.deleted_recordings == [rec.sid]


def test_credentials_never_go_to_another_host(rest: TwilioRest) -> None:
    with pytest.raises(TwilioRestError, match="not on TWILIO_API_URL"):
        rest.download_recording("https://evil.example/2010-04-01/Accounts/AC1/Recordings/RE1")


def test_connection_refused_is_retried_then_reported(slept: list[float]) -> None:
    with socket.socket() as s:  # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = TwilioRest("AC" + "1" * 32, "token", f"http://127.0.0.1:{port}",
                        sleep=slept.append)
    with client, pytest.raises(TwilioRestError, match="ConnectionError"):
        client.fetch_call("CA" + "0" * 32)
    assert len(slept) == RetryPolicy().attempts - 1


def test_disabled_without_account_sid(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="ivr.twilio_rest"):
        client = TwilioRest.from_settings(Settings(twilio_auth_token="t"))
    with client:
        assert not client.enabled
        assert "TWILIO_ACCOUNT_SID is not set" in caplog.text
        with pytest.raises(TwilioDisabled, match="TWILIO_ACCOUNT_SID"):
            client.create_call(to="+34600111222", from_="+34900000000", url="https://x/y")


def test_streamed_download_waits_then_is_capped(twilio_cloud: FakeTwilioCloud,  # noqa: F811
                                                rest: TwilioRest, slept: list[float]) -> None:
    rec = twilio_cloud.add_recording(seconds=1.0, not_ready_for=2)
    audio = b"".join(rest.stream_recording(rec.sid, max_bytes=1 << 20))
    assert audio == rec.wav and slept == [1.0, 1.0]
    with pytest.raises(TooLarge, match="IVR_MAX_RECORDING_MB"):
        rest.stream_recording(rec.sid, max_bytes=1000)  # Content-Length says too much
    missing = twilio_cloud.add_recording(not_ready_for=100)
    with pytest.raises(NotReady, match="404 after 8 tries"):
        rest.stream_recording(missing.sid, max_bytes=1 << 20)


def test_call_recording_start_pause_resume(twilio_cloud: FakeTwilioCloud,  # noqa: F811
                                           rest: TwilioRest) -> None:
    sid = rest.create_call(to="+34600111222", from_="+34900000000",
                           twiml="<Response><Gather><Say>Hola</Say></Gather></Response>")["sid"]
    with pytest.raises(TwilioRestError) as err:  # ringing, not answered: not recordable
        rest.start_call_recording(sid, status_callback="https://ivr.example/voice/rs")
    assert (err.value.status, err.value.code) == (400, 21220)
    twilio_cloud.answer(sid)
    started = rest.start_call_recording(sid, status_callback="https://ivr.example/voice/rs")
    assert started["sid"].startswith("RE") and started["status"] == "in-progress"
    sent = twilio_cloud.requests[-1]
    assert sent.form["RecordingStatusCallbackEvent"] == ["completed", "absent"]
    assert sent.form["RecordingChannels"] == ["dual"]
    assert rest.update_call_recording(sid, "paused")["status"] == "paused"
    assert twilio_cloud.requests[-1].form == {"Status": ["paused"], "PauseBehavior": ["skip"]}
    assert twilio_cloud.requests[-1].path.endswith(f"/Calls/{sid}/Recordings/Twilio.CURRENT.json")
    assert rest.update_call_recording(sid, "in-progress")["status"] == "in-progress"
    with pytest.raises(TwilioRestError) as err:
        rest.update_call_recording(sid, "sideways")
    assert (err.value.status, err.value.code) == (400, 21218)
    with pytest.raises(TwilioRestError) as err:
        rest.update_call_recording("CA" + "0" * 32, "paused")
    assert (err.value.status, err.value.code) == (404, 20404)


def test_list_live_calls_follows_next_page_uri(twilio_cloud: FakeTwilioCloud,  # noqa: F811
                                               rest: TwilioRest) -> None:
    live = {twilio_cloud.add_live_call(status="in-progress") for _ in range(7)}
    live |= {twilio_cloud.add_live_call(status="ringing"), twilio_cloud.add_live_call(status="queued")}
    ended = twilio_cloud.add_live_call(status="completed")
    pages = list(rest.list_calls("in-progress", page_size=3))
    assert {c["sid"] for c in pages} == {s for s in live
                                         if twilio_cloud.calls[s].status == "in-progress"}
    gets = [r for r in twilio_cloud.requests if r.method == "GET"]
    assert len(gets) == 3  # 7 calls in pages of 3: the client followed next_page_uri twice
    found = rest.list_live_calls()
    assert set(found) == live and ended not in found
    assert found[min(live)]["status"] in ("queued", "ringing", "in-progress")


def test_list_live_calls_filters_by_number(twilio_cloud: FakeTwilioCloud,  # noqa: F811
                                          rest: TwilioRest) -> None:
    mine = twilio_cloud.add_live_call(to="+34600111222", status="ringing")
    twilio_cloud.add_live_call(to="+34600999999", status="ringing")
    assert list(rest.list_live_calls(to="+34600111222")) == [mine]


def test_a_failed_page_raises_instead_of_giving_a_partial_list(
        twilio_cloud: FakeTwilioCloud, rest: TwilioRest) -> None:  # noqa: F811
    for _ in range(4):
        twilio_cloud.add_live_call()
    calls = rest.list_calls("in-progress", page_size=2)
    assert next(calls)["sid"].startswith("CA")
    next(calls)
    twilio_cloud.fail(times=5, status=500)  # every retry of the second page fails
    with pytest.raises(TwilioRestError) as err:
        next(calls)
    assert err.value.status == 500


def test_list_calls_refuses_a_bad_page_size(rest: TwilioRest) -> None:
    with pytest.raises(ValueError, match="page_size"):
        next(rest.list_calls("in-progress", page_size=0))


def test_twiml_sent_to_a_live_call_gets_absolute_urls() -> None:
    from ivr.twilio_rest import absolute_twiml

    twiml = ('<Response><Dial action="/voice/agent-dial-result?call=CA1&amp;x=1">'
             '<Number>+34911000222</Number></Dial><Play loop="2">/static/hold.wav</Play>'
             '<Start><Stream url="wss://ivr.example/media"/></Start>'
             '<Redirect method="POST">/voice/step?s=T</Redirect></Response>')
    out = absolute_twiml(twiml, "https://ivr.example/")
    assert 'action="https://ivr.example/voice/agent-dial-result?call=CA1&amp;x=1"' in out
    assert ">https://ivr.example/static/hold.wav</Play>" in out
    assert ">https://ivr.example/voice/step?s=T</Redirect>" in out
    assert 'url="wss://ivr.example/media"' in out  # already absolute: untouched
    assert absolute_twiml("<Response><Hangup/></Response>", None) == \
        "<Response><Hangup/></Response>"  # nothing relative: no base needed
    with pytest.raises(TwilioRestError) as refused:
        absolute_twiml(twiml, None)
    assert refused.value.code == 15004 and "IVR_PUBLIC_URL" in str(refused.value)
