"""Recordings in an S3-compatible store, tested against an S3 *emulator*, not S3.

No real S3-compatible server installs on this machine (not on Debian, PyPI or npm;
no Docker engine), so these tests start ``moto`` in server mode (``python -m
moto.server``) in a subprocess and talk to it over HTTP with boto3, exactly as the
store talks to S3, MinIO or Ceph through ``IVR_S3_ENDPOINT_URL``. moto emulates S3's
API; it proves our requests, encryption, idempotency, retention and erasure, not
S3's own durability or consistency.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from recordings import jobs
from recordings.customers import CustomerInput
from recordings.model import utcnow
from recordings.privacy import erase
from recordings.s3_storage import S3RecordingStorage
from recordings.storage import MAGIC, StorageError, open_storage
from recordings.store import Database
from tests.fakes import FakeTwilioCloud, make_wav, twilio_cloud  # noqa: F401  (fixture)

BUCKET = "centralita-recordings"
CALL = "CA" + "b" * 32
PHONE = "+34611223344"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def s3_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's S3 emulator in server mode, over real HTTP on 127.0.0.1."""
    port = _free_port()
    log_path = tmp_path_factory.mktemp("moto") / "moto.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                                 "-p", str(port)], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                requests.get(f"{url}/moto-api/", timeout=1).close()
                break
            except requests.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("moto server did not start: "
                                + log_path.read_text(errors="replace")[-2000:])
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture()
def s3_env(monkeypatch: pytest.MonkeyPatch, s3_emulator: str) -> str:
    """Standard AWS credentials for the emulator, and a fresh bucket."""
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    client = raw_client(s3_emulator)
    existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    if BUCKET in existing:
        for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
            client.delete_object(Bucket=BUCKET, Key=item["Key"])
    else:
        client.create_bucket(Bucket=BUCKET)
    return s3_emulator


def raw_client(endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing",
                        aws_secret_access_key="testing", region_name="us-east-1")


def objects(endpoint: str) -> dict[str, bytes]:
    client = raw_client(endpoint)
    return {item["Key"]: client.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read()
            for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", [])}


@pytest.fixture()
def job_env(monkeypatch: pytest.MonkeyPatch, data_dir: Path, redis_url: str, s3_env: str,
            twilio_cloud: FakeTwilioCloud) -> str:  # noqa: F811
    values = {"IVR_DATA_DIR": str(data_dir), "REDIS_URL": redis_url,
              "IVR_SECRET_KEY": "s3-secret", "IVR_RECORDINGS_URL": f"s3://{BUCKET}/prod",
              "IVR_S3_ENDPOINT_URL": s3_env, **twilio_cloud.env()}
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    for key in ("DATABASE_URL", "IVR_JOB_FAILPOINT", "IVR_MAX_RECORDING_MB",
                "IVR_RETENTION_RECORDINGS_DAYS"):
        monkeypatch.delenv(key, raising=False)
    return s3_env


def test_the_bucket_only_ever_sees_ciphertext(s3_env: str, data_dir: Path) -> None:
    store = open_storage(data_dir, "s3-secret", f"s3://{BUCKET}/prod", s3_env)
    assert isinstance(store, S3RecordingStorage)
    audio = make_wav(3.0)
    stored = store.write(CALL, "RE" + "1" * 32, iter([audio[:1000], audio[1000:]]))
    assert stored.path == f"recordings/{CALL}-RE{'1' * 32}.wav.enc" and stored.size == len(audio)
    [(key, blob)] = objects(s3_env).items()
    assert key == f"prod/{stored.path}" and blob.startswith(MAGIC)
    assert audio[44:200] not in blob and b"RIFF" not in blob  # no audio in the clear
    assert store.read(CALL, "RE" + "1" * 32) == audio
    assert store.verify(CALL, "RE" + "1" * 32) == len(audio)
    store.write(CALL, "RE" + "1" * 32, [audio])  # again: replaced whole, still one object
    assert len(objects(s3_env)) == 1
    other_key = open_storage(data_dir, "another-secret", f"s3://{BUCKET}/prod", s3_env)
    with pytest.raises(StorageError, match="cannot decrypt"):
        other_key.read(CALL, "RE" + "1" * 32)
    assert store.exists(CALL, "RE" + "1" * 32)
    assert store.delete(CALL, "RE" + "1" * 32) is True
    assert not store.exists(CALL, "RE" + "1" * 32) and objects(s3_env) == {}
    assert store.delete(CALL, "RE" + "1" * 32) is False
    with pytest.raises(StorageError, match="missing"):
        store.read(CALL, "RE" + "1" * 32)
    with pytest.raises(StorageError, match="not a recording path"):
        store.delete_relative("../secret.key")


def test_bad_recordings_url_is_refused_with_the_fix(data_dir: Path) -> None:
    with pytest.raises(StorageError, match="s3://bucket/prefix"):
        open_storage(data_dir, "x", "ftp://somewhere")


def test_the_recording_job_stores_in_the_bucket_and_nothing_on_disk(
        job_env: str, data_dir: Path, twilio_cloud: FakeTwilioCloud) -> None:  # noqa: F811
    db = Database(f"sqlite:///{(data_dir / 'centralita.db').resolve()}")
    db.calls.record_start(CALL, from_number=PHONE, to_number="+34930001000",
                          started_at=utcnow(), language="es")
    rec = twilio_cloud.add_recording(seconds=1.5, call_sid=CALL, not_ready_for=1)
    result = jobs.fetch_recording(CALL, rec.sid, "voicemail")
    assert result["stored"] is True and twilio_cloud.deleted_recordings == [rec.sid]
    assert list(objects(job_env)) == [f"prod/recordings/{CALL}-{rec.sid}.wav.enc"]
    assert not (data_dir / "recordings").exists()
    doc = db.calls.get(CALL)
    assert doc is not None
    [row] = doc["recordings"]
    assert row["duration_s"] == pytest.approx(1.5, abs=0.01)  # read back from the bucket
    assert jobs.fetch_recording(CALL, rec.sid)["stored"] == "already"  # idempotent
    assert len(objects(job_env)) == 1
    # Retention applies to the bucket too.
    gone = jobs.apply_retention((utcnow() + timedelta(days=91)).timestamp())
    assert gone["recordings"] == 1 and gone["recording_files"] == 1
    assert objects(job_env) == {}
    db.dispose()


def test_erasure_removes_the_persons_objects_and_checks_none_is_left(
        job_env: str, data_dir: Path, twilio_cloud: FakeTwilioCloud) -> None:  # noqa: F811
    db = Database(f"sqlite:///{(data_dir / 'centralita.db').resolve()}")
    customer, _ = db.customers.upsert(CustomerInput(name="Pau Serra Vidal", phone=PHONE))
    db.calls.record_start(CALL, from_number=PHONE, to_number="+34930001000",
                          started_at=utcnow(), language="es", customer_id=customer.id)
    rec = twilio_cloud.add_recording(seconds=1.0, call_sid=CALL)
    jobs.fetch_recording(CALL, rec.sid, "voicemail")
    stray = open_storage(data_dir, "s3-secret", f"s3://{BUCKET}/prod", job_env)
    stray.write(CALL, "RE" + "2" * 32, [b"a later copy with no row"])  # no SQL row points here
    other = "CA" + "c" * 32
    stray.write(other, "RE" + "3" * 32, [b"someone else"])
    assert len(objects(job_env)) == 3
    report = erase(db, None, data_dir, customer_id=customer.id)
    [bucket] = [s for s in report.stores if s.store == "recordings store"]
    assert bucket.removed == {"recordings": 2}
    assert not any(CALL in place for place in report.remaining), report.remaining
    assert list(objects(job_env)) == [f"prod/recordings/{other}-RE{'3' * 32}.wav.enc"]
    db.dispose()
