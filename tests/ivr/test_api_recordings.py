"""`GET /api/recordings/<id>` and `/<CallSid>/<RecordingSid>`: decrypted, authorised, audited.

The recording is written encrypted by the real ``RecordingStorage`` with the app's
secret (what ``recordings.jobs.fetch_recording`` does), on a real app.
"""

from __future__ import annotations

import io
import math
import struct
import wave
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from recordings.customers import CustomerInput
from recordings.privacy import erase
from recordings.storage import CHUNK, RecordingStorage
from recordings.store import Database
from tests.ivr.conftest import ADMIN_TOKEN

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
SID = "CA" + "8" * 32
REC = "RE" + "8" * 32
NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def _wav(seconds: float, rate: int = 16000) -> bytes:
    """A 440 Hz tone, long enough to span several encrypted chunks."""
    frames = b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate)))
                      for i in range(int(seconds * rate)))
    out = io.BytesIO()
    with wave.open(out, "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(frames)
    return out.getvalue()


AUDIO = _wav(70)  # 2.2 MB: three 1 MiB chunks


def _db(app: Flask) -> Database:
    database: Database = app.extensions["centralita"].components["database"]
    return database


@pytest.fixture()
def stored(app: Flask, data_dir: Path) -> int:
    db = _db(app)
    customer, _ = db.customers.upsert(CustomerInput(name="Ana García", phone="+34600112233"))
    db.calls.record_start(SID, from_number="+34600112233", to_number="+34910000000",
                          started_at=NOW)
    storage = RecordingStorage(data_dir, "test-secret")  # the app's IVR_SECRET_KEY
    written = storage.write(SID, REC, [AUDIO[i:i + 300_000]
                                       for i in range(0, len(AUDIO), 300_000)])
    db.calls.add_recording(SID, path=written.path, kind="voicemail", recording_sid=REC,
                           duration_s=70.0)
    return customer.id


def test_agents_get_the_decrypted_audio_and_it_is_audited(app: Flask, client: FlaskClient,
                                                          stored: int, data_dir: Path) -> None:
    assert len(AUDIO) > 2 * CHUNK
    assert AUDIO[:200] not in (data_dir / "recordings" / f"{SID}-{REC}.wav.enc").read_bytes()
    token = _db(app).users.add("maria", "agent").token
    response = client.get(f"/api/recordings/{SID}/{REC}",
                          headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.mimetype == "audio/wav"
    assert response.headers["Cache-Control"] == "no-store, private"
    assert response.is_streamed
    assert response.get_data() == AUDIO
    with wave.open(io.BytesIO(response.get_data())) as handle:
        assert handle.getnframes() == 70 * 16000

    assert client.get(f"/api/recordings/{SID}/{REC}", headers=ADMIN).get_data() == AUDIO
    reads = _db(app).audit.entries("recording", REC)
    assert [(r["actor"], r["action"], r["detail"]["call_sid"], r["detail"]["role"])
            for r in reads] == [("maria", "recording.read", SID, "agent"),
                                ("admin", "recording.read", SID, "admin")]
    assert all(datetime.fromisoformat(r["at"]) for r in reads)


def test_no_token_no_audio(client: FlaskClient, stored: int) -> None:
    for headers in ({}, {"Authorization": "Bearer ivr_000000000000_wrongwrongwrongwrong"}):
        response = client.get(f"/api/recordings/{SID}/{REC}", headers=headers)
        assert response.status_code == 401
        assert AUDIO[:44] not in response.get_data()


def test_unknown_recording_or_call_404(app: Flask, client: FlaskClient, stored: int) -> None:
    other = "RE" + "1" * 32
    assert client.get(f"/api/recordings/{SID}/{other}", headers=ADMIN).status_code == 404
    assert client.get(f"/api/recordings/CA{'1' * 32}/{REC}", headers=ADMIN).status_code == 404
    assert _db(app).audit.entries("recording") == []


def test_file_removed_by_retention_404(client: FlaskClient, stored: int,
                                       data_dir: Path) -> None:
    (data_dir / "recordings" / f"{SID}-{REC}.wav.enc").unlink()
    response = client.get(f"/api/recordings/{SID}/{REC}", headers=ADMIN)
    assert response.status_code == 404 and "no longer stored" in response.json["detail"]


def test_erased_customer_recording_404(app: Flask, client: FlaskClient, stored: int,
                                       data_dir: Path) -> None:
    report = erase(_db(app), app.extensions["centralita"].redis, data_dir, customer_id=stored)
    assert report.clean, report.remaining
    assert client.get(f"/api/recordings/{SID}/{REC}", headers=ADMIN).status_code == 404


def test_file_from_another_secret_is_not_served(app: Flask, client: FlaskClient, stored: int,
                                                data_dir: Path) -> None:
    RecordingStorage(data_dir, "another-secret").write(SID, REC, [AUDIO])
    response = client.get(f"/api/recordings/{SID}/{REC}", headers=ADMIN)
    assert response.status_code == 500 and "IVR_SECRET_KEY" in response.json["detail"]
    assert _db(app).audit.entries("recording") == []


def test_by_id_listed_on_the_call_streams_audits_and_404s(app: Flask, client: FlaskClient,
                                                          stored: int, data_dir: Path) -> None:
    call = client.get(f"/api/calls/{SID}", headers=ADMIN).get_json()
    [rid] = call["recording_ids"]
    assert call["recordings"][0]["url"] == f"/api/recordings/{rid}"
    token = _db(app).users.add("jordi", "agent").token
    response = client.get(f"/api/recordings/{rid}", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200 and response.is_streamed
    assert response.get_data() == AUDIO
    [read] = _db(app).audit.entries("recording", REC)
    assert (read["actor"], read["detail"]["recording_id"]) == ("jordi", rid)
    assert client.get(f"/api/recordings/{rid}").status_code == 401
    assert client.get(f"/api/recordings/{rid + 1}", headers=ADMIN).status_code == 404
    report = erase(_db(app), app.extensions["centralita"].redis, data_dir, customer_id=stored)
    assert report.clean, report.remaining
    before = _db(app).audit.entries("recording")
    assert client.get(f"/api/recordings/{rid}", headers=ADMIN).status_code == 404
    assert _db(app).audit.entries("recording") == before  # a 404 reads nothing
