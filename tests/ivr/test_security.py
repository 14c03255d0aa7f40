"""X-Twilio-Signature: the pure check and the URL Twilio signed, behind proxies."""

from __future__ import annotations

from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict

from ivr.security import signature_is_valid, signed_url

TOKEN = "12345678901234567890123456789012"
PARAMS = MultiDict({"CallSid": "CA" + "a" * 32, "Digits": "1", "From": "+34600112233"})


def sign(url: str, params: MultiDict | dict[str, str]) -> str:
    return RequestValidator(TOKEN).compute_signature(url, params)


def test_valid_signature_accepted() -> None:
    url = "https://ivr.example.com/voice/step?s=abc"
    assert signature_is_valid(TOKEN, url, PARAMS, sign(url, PARAMS))


def test_wrong_token_missing_or_garbage_signature_refused() -> None:
    url = "https://ivr.example.com/voice/step?s=abc"
    good = RequestValidator("x" * 32).compute_signature(url, PARAMS)
    assert not signature_is_valid(TOKEN, url, PARAMS, good)
    assert not signature_is_valid(TOKEN, url, PARAMS, "")
    assert not signature_is_valid(TOKEN, url, PARAMS, "not base64 at all!!")


def test_tampered_parameter_or_query_refused() -> None:
    url = "https://ivr.example.com/voice/step?s=abc"
    sig = sign(url, PARAMS)
    assert not signature_is_valid(TOKEN, url, MultiDict({**PARAMS.to_dict(), "Digits": "2"}), sig)
    assert not signature_is_valid(TOKEN, url.replace("abc", "abd"), PARAMS, sig)


def test_port_variants_accepted_both_ways() -> None:
    with_port = "https://ivr.example.com:443/voice/incoming"
    without = "https://ivr.example.com/voice/incoming"
    assert signature_is_valid(TOKEN, without, PARAMS, sign(with_port, PARAMS))
    assert signature_is_valid(TOKEN, with_port, PARAMS, sign(without, PARAMS))


def test_get_request_signs_url_only() -> None:
    url = "https://ivr.example.com/voice/incoming?CallSid=CA1&From=%2B34600"
    assert signature_is_valid(TOKEN, url, {}, sign(url, {}))


def test_public_url_rebuilds_what_twilio_requested() -> None:
    # Behind a tunnel Flask sees http://127.0.0.1:5000; Twilio requested the public URL.
    url = signed_url("https://abc.ngrok.app", False, "http://127.0.0.1:5000/voice/step?s=x", {})
    assert url == "https://abc.ngrok.app/voice/step?s=x"
    url = signed_url("https://proxy.example.com/ivr", False, "http://10.0.0.5/voice/status", {})
    assert url == "https://proxy.example.com/ivr/voice/status"


def test_forwarded_headers_only_when_trusted() -> None:
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "ivr.example.com"}
    seen = "http://127.0.0.1:5000/voice/incoming"
    assert signed_url(None, True, seen, headers) == "https://ivr.example.com/voice/incoming"
    # An attacker's forged headers change nothing unless the operator trusts a proxy.
    assert signed_url(None, False, seen, headers) == seen
