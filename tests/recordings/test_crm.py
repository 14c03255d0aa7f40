"""The CRM adapters against a real HTTP server on 127.0.0.1 playing the external CRM.

The server records every request and answers with scripted statuses; the RQ job
``recordings.jobs.push_to_crm`` runs on a real ``SimpleWorker`` and real Redis,
with zero backoff so the retries happen within one burst.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import redis
from rq import Queue, SimpleWorker
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from recordings.config import ConfigError, JobConfig
from recordings.crm import (
    CrmRejected,
    CrmRetryable,
    SqlCrm,
    WebhookCrm,
    adapter_from_config,
    enqueue_push,
    idempotency_key,
    signature_matches,
)
from recordings.customers import CustomerInput
from recordings.store import Database

SECRET = "crm-shared-secret"
SID = "CA" + "c" * 32
NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
SUMMARY = {"version": 3, "status": "approved", "approved_by": "maria",
           "approved_at": "2026-03-02T10:05:00+00:00",
           "body": {"reason": {"summary": "reembolso", "intents": ["refund"]}}}


class FakeCrmServer:
    """A real HTTP server; ``statuses`` are answered in order (then 200)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests.append({"path": self.path, "headers": dict(self.headers),
                                       "body": body})
                status = outer.statuses.pop(0) if outer.statuses else 200
                reply = json.dumps({"status": status}).encode()
                self.send_response(status)
                if status in (301, 302, 307):
                    self.send_header("Location", "http://127.0.0.1:9/elsewhere")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hooks/centralita"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture()
def crm() -> Iterator[FakeCrmServer]:
    server = FakeCrmServer()
    yield server
    server.close()


def _expected_signature(body: bytes) -> str:
    return "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


def test_webhook_posts_signed_json_with_the_idempotency_key(crm: FakeCrmServer) -> None:
    adapter = WebhookCrm(crm.url, SECRET)
    customer = {"id": 7, "name": "Ana García", "phone": "+34600112233"}
    result = adapter.push_summary(SID, customer, SUMMARY, idempotency_key(SID, 3))
    adapter.session.close()
    assert (result.adapter, result.status) == ("webhook", 200)
    (request,) = crm.requests
    assert request["path"] == "/hooks/centralita"
    assert request["headers"]["Content-Type"] == "application/json"
    assert request["headers"]["X-Centralita-Signature"] == _expected_signature(request["body"])
    assert signature_matches(SECRET, request["body"], request["headers"]["X-Centralita-Signature"])
    assert not signature_matches("other", request["body"],
                                 request["headers"]["X-Centralita-Signature"])
    assert request["headers"]["Idempotency-Key"] == f"centralita-summary-{SID}-v3"
    sent = json.loads(request["body"])
    assert sent == {"event": "call.summary.approved", "call_sid": SID, "customer": customer,
                    "summary_version": 3, "approved_by": "maria",
                    "approved_at": "2026-03-02T10:05:00+00:00", "summary": SUMMARY["body"]}


def test_the_same_summary_gives_the_same_bytes_and_key(crm: FakeCrmServer) -> None:
    adapter = WebhookCrm(crm.url, SECRET)
    for _ in range(2):
        adapter.push_summary(SID, None, SUMMARY, idempotency_key(SID, 3))
    adapter.session.close()
    first, second = crm.requests
    assert first["body"] == second["body"]
    assert first["headers"]["Idempotency-Key"] == second["headers"]["Idempotency-Key"]
    assert idempotency_key(SID, 4) != idempotency_key(SID, 3)


@pytest.mark.parametrize(("status", "error"), [
    (500, CrmRetryable), (503, CrmRetryable), (429, CrmRetryable), (408, CrmRetryable),
    (400, CrmRejected), (401, CrmRejected), (422, CrmRejected), (302, CrmRejected)])
def test_status_decides_whether_to_retry(crm: FakeCrmServer, status: int,
                                         error: type[Exception]) -> None:
    crm.statuses = [status]
    adapter = WebhookCrm(crm.url, SECRET)
    with pytest.raises(error, match=str(status)):
        adapter.push_summary(SID, None, SUMMARY, idempotency_key(SID, 3))
    adapter.session.close()
    assert len(crm.requests) == 1  # a redirect is not followed


def test_unreachable_crm_is_retryable() -> None:
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    adapter = WebhookCrm(f"http://127.0.0.1:{port}/hooks", SECRET, timeout=2)
    with pytest.raises(CrmRetryable, match="unreachable"):
        adapter.push_summary(SID, None, SUMMARY, idempotency_key(SID, 3))
    adapter.session.close()


def test_configuration() -> None:
    config = JobConfig.from_env({"IVR_CRM_WEBHOOK_URL": " https://crm.example.com/h ",
                                 "IVR_CRM_WEBHOOK_SECRET": SECRET})
    assert (config.crm_webhook_url, config.crm_webhook_secret) == (
        "https://crm.example.com/h", SECRET)
    assert SECRET not in repr(config)
    adapter = adapter_from_config(config)
    assert isinstance(adapter, WebhookCrm) and adapter.url == "https://crm.example.com/h"
    adapter.session.close()
    assert isinstance(adapter_from_config(JobConfig.from_env({})), SqlCrm)
    with pytest.raises(ConfigError, match="IVR_CRM_WEBHOOK_SECRET"):
        adapter_from_config(JobConfig.from_env({"IVR_CRM_WEBHOOK_URL": "https://crm.example"}))
    with pytest.raises(ConfigError, match="not an http"):
        WebhookCrm("ftp://crm.example.com", SECRET)


# ---------------------------------------------------------------------- the RQ job


@pytest.fixture()
def approved(db: Database) -> int:
    customer, _ = db.customers.upsert(CustomerInput(name="Ana García", phone="+34600112233",
                                                    email="ana@example.com"))
    db.calls.record_start(SID, from_number="+34600112233", to_number="+34910000000",
                          started_at=NOW)
    db.summaries.save_draft(SID, {"reason": {"summary": "pedido"}})
    version = db.summaries.save_draft(SID, {"reason": {"summary": "reembolso"}})
    db.summaries.approve(SID, version, "maria")
    return customer.id


@pytest.fixture()
def job_env(monkeypatch: pytest.MonkeyPatch, data_dir: Path, redis_url: str,
            crm: FakeCrmServer) -> None:
    for key, value in {"IVR_DATA_DIR": str(data_dir), "REDIS_URL": redis_url,
                       "IVR_SECRET_KEY": "test-secret", "IVR_CRM_WEBHOOK_URL": crm.url,
                       "IVR_CRM_WEBHOOK_SECRET": SECRET}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("IVR_JOB_FAILPOINT", raising=False)


def _push_and_work(redis_url: str, retries: int) -> Job:
    connection = redis.Redis.from_url(redis_url)
    job_id = enqueue_push(connection, SID, 2, intervals=(0,) * retries)
    queue = Queue("default", connection=connection, serializer=JSONSerializer)
    SimpleWorker([queue], connection=connection, serializer=JSONSerializer).work(
        burst=True, logging_level="CRITICAL")
    job = Job.fetch(job_id, connection=connection, serializer=JSONSerializer)
    connection.close()
    return job


def _crm_events(db: Database) -> list[str]:
    return [e["kind"] for e in db.calls.events(SID) if e["kind"].startswith("crm_")]


def test_job_retries_5xx_with_the_same_key_then_succeeds(
        crm: FakeCrmServer, db: Database, approved: int, job_env: None, redis_url: str) -> None:
    crm.statuses = [503, 500]
    job = _push_and_work(redis_url, retries=3)
    assert job.get_status() == JobStatus.FINISHED
    assert len(crm.requests) == 3
    keys = {r["headers"]["Idempotency-Key"] for r in crm.requests}
    assert keys == {idempotency_key(SID, 2)}
    assert len({r["body"] for r in crm.requests}) == 1
    for request in crm.requests:
        assert request["headers"]["X-Centralita-Signature"] == _expected_signature(
            request["body"])
    sent = json.loads(crm.requests[0]["body"])
    assert sent["summary"] == {"reason": {"summary": "reembolso"}}
    assert (sent["summary_version"], sent["approved_by"]) == (2, "maria")
    assert (sent["customer"]["id"], sent["customer"]["email"]) == (approved, "ana@example.com")
    assert job.return_value()["status"] == 200
    assert _crm_events(db) == ["crm_pushed"]

    # Queued again (a duplicate): the same key goes out, and still one event.
    _push_and_work(redis_url, retries=0)
    assert {r["headers"]["Idempotency-Key"] for r in crm.requests} == keys
    assert _crm_events(db) == ["crm_pushed"]


def test_job_does_not_retry_4xx(crm: FakeCrmServer, db: Database, approved: int,
                                job_env: None, redis_url: str) -> None:
    crm.statuses = [422]
    job = _push_and_work(redis_url, retries=3)
    assert len(crm.requests) == 1
    assert job.get_status() == JobStatus.FINISHED
    result = job.return_value()
    assert (result["pushed"], result["status"]) == (False, 422)
    assert _crm_events(db) == ["crm_rejected"]


def test_job_fails_after_the_last_retry_and_nothing_is_lost(
        crm: FakeCrmServer, db: Database, approved: int, job_env: None, redis_url: str) -> None:
    crm.statuses = [500, 502, 503]
    job = _push_and_work(redis_url, retries=2)
    assert len(crm.requests) == 3
    assert job.get_status() == JobStatus.FAILED
    assert _crm_events(db) == []
    assert db.summaries.current(SID)["status"] == "approved"  # still there to re-queue


def test_job_without_an_approved_summary_sends_nothing(
        crm: FakeCrmServer, db: Database, job_env: None, redis_url: str) -> None:
    db.calls.record_start(SID, from_number=None, to_number=None, started_at=NOW)
    db.summaries.save_draft(SID, {"reason": {"summary": "pedido"}})
    job = _push_and_work(redis_url, retries=0)
    assert crm.requests == []
    assert job.return_value()["pushed"] is False
