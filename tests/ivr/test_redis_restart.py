"""Redis goes away and comes back: health follows, callers are answered throughout."""

from __future__ import annotations

import time
from pathlib import Path

from twilio.request_validator import RequestValidator

from ivr.app import create_app
from ivr.embedded import EmbeddedRedis
from ivr.settings import Settings
from tests.ivr.conftest import AUTH_TOKEN, BASE


def _incoming(client, sid: str):  # type: ignore[no-untyped-def]
    params = {"CallSid": sid, "From": "+34699000111", "To": "+34930001000",
              "CallStatus": "ringing"}
    sig = RequestValidator(AUTH_TOKEN).compute_signature(BASE + "/voice/incoming", params)
    return client.post("/voice/incoming", data=params, headers={"X-Twilio-Signature": sig})


def test_health_recovers_and_nothing_answered_meanwhile_is_lost(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path)
    server.start()
    app = create_app(Settings(data_dir=tmp_path, redis_url=server.url,
                              twilio_auth_token=AUTH_TOKEN, secret_key="k"))
    client = app.test_client()
    records = app.extensions["centralita"].components["call_records"]
    try:
        assert client.get("/healthz").status_code == 200
        server.stop()
        assert client.get("/healthz").status_code == 503
        during = "CA" + "d" * 32
        answer = _incoming(client, during)  # the caller is still answered
        assert answer.status_code == 200 and b"<Gather" in answer.get_data()
        params = {"CallSid": during, "CallStatus": "completed", "SequenceNumber": "2",
                  "From": "+34699000111"}
        sig = RequestValidator(AUTH_TOKEN).compute_signature(BASE + "/voice/status", params)
        status = client.post("/voice/status", data=params, headers={"X-Twilio-Signature": sig})
        assert status.status_code == 204  # never a 5xx, even with Redis down
        server.start()  # same data directory: the AOF brings the state back
        deadline = time.monotonic() + 15
        while client.get("/healthz").status_code != 200:
            assert time.monotonic() < deadline, "healthz still failing 15 s after Redis returned"
            time.sleep(0.2)
        assert app.extensions["centralita"].components["writer"].flush(15)
        # The step answered while Redis was down was written once it came back.
        assert records.session(during) is not None
        assert records.is_ended(during)  # the deferred status callback was applied
        assert _incoming(client, "CA" + "e" * 32).status_code == 200
    finally:
        server.stop()
