"""Approved call summaries handed to a CRM, behind one small adapter interface.

:class:`CrmAdapter` has one method, ``push_summary``. :class:`SqlCrm` is the built-in
store: the summary already lives in SQL on the customer's record, so it does nothing
more. :class:`WebhookCrm` posts the summary as JSON to an external CRM, signed with
HMAC-SHA256 over the raw body (``X-Centralita-Signature: sha256=<hex>``) and carrying
an ``Idempotency-Key`` that is the same every time the same summary version is sent,
so the CRM can drop the duplicates retries produce.

The RQ job ``recordings.jobs.push_to_crm`` does the sending; :func:`enqueue_push`
queues it with backoff. A 5xx, 408, 429 or an unreachable CRM raises
:class:`CrmRetryable` (RQ retries); any other answer raises :class:`CrmRejected`
(final: retrying the same request cannot succeed).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import redis
import requests
from rq import Queue, Retry
from rq.serializers import JSONSerializer

from recordings import model as m
from recordings.config import ConfigError, JobConfig
from recordings.errors import RecordingsError

SIGNATURE_HEADER = "X-Centralita-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
CRM_RETRY_INTERVALS: tuple[int, ...] = (10, 60, 300, 1800, 7200)
RETRYABLE_STATUS = frozenset({408, 425, 429})


class CrmError(RecordingsError):
    """A summary could not be handed to the CRM; the message says why."""


class CrmRetryable(CrmError):
    """The CRM is down or overloaded (5xx, 408/429, no connection): try again later."""


class CrmRejected(CrmError):
    """The CRM refused the summary (4xx, redirect): retrying the same request won't help."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class PushResult:
    adapter: str
    status: int | None  # the CRM's HTTP status, None for the SQL store
    detail: str


class CrmAdapter(ABC):
    """Where approved summaries go besides the call record."""

    name = "crm"

    @abstractmethod
    def push_summary(self, call_sid: str, customer: Mapping[str, Any] | None,
                     summary: Mapping[str, Any], idempotency_key: str) -> PushResult:
        """Hand over one approved summary version; raise CrmRetryable or CrmRejected."""


class SqlCrm(CrmAdapter):
    """The built-in CRM: the SQL store, which already holds the approved summary."""

    name = "sql"

    def push_summary(self, call_sid: str, customer: Mapping[str, Any] | None,
                     summary: Mapping[str, Any], idempotency_key: str) -> PushResult:
        return PushResult(self.name, None, "kept on the customer record in the SQL store")


def sign(secret: str, body: bytes) -> str:
    """The signature header's value for ``body``: ``sha256=<hex HMAC>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_matches(secret: str, body: bytes, header: str | None) -> bool:
    """What a receiving CRM checks (constant-time)."""
    return bool(header) and hmac.compare_digest(sign(secret, body), str(header))


def idempotency_key(call_sid: str, version: int) -> str:
    """Stable per summary version: every retry and re-queue sends the same key."""
    return f"centralita-summary-{call_sid}-v{int(version)}"


def payload(call_sid: str, customer: Mapping[str, Any] | None,
            summary: Mapping[str, Any]) -> bytes:
    """The JSON body (keys sorted: the same summary always gives the same bytes)."""
    document = {
        "event": "call.summary.approved",
        "call_sid": call_sid,
        "customer": dict(customer) if customer is not None else None,
        "summary_version": summary.get("version"),
        "approved_by": summary.get("approved_by"),
        "approved_at": summary.get("approved_at"),
        "summary": summary.get("body"),
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False, default=str).encode()


class WebhookCrm(CrmAdapter):
    """An external CRM reached by a signed HTTP POST."""

    name = "webhook"

    def __init__(self, url: str, secret: str, *, timeout: float = 10.0,
                 session: requests.Session | None = None) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"IVR_CRM_WEBHOOK_URL={url!r} is not an http(s) URL; "
                              "set it to e.g. https://crm.example.com/hooks/centralita")
        if not secret:
            raise ConfigError("IVR_CRM_WEBHOOK_URL is set but IVR_CRM_WEBHOOK_SECRET is empty; "
                              "set the shared secret the CRM uses to check signatures")
        self.url, self.secret, self.timeout = url, secret, timeout
        self.session = session or requests.Session()

    def push_summary(self, call_sid: str, customer: Mapping[str, Any] | None,
                     summary: Mapping[str, Any], idempotency_key: str) -> PushResult:
        body = payload(call_sid, customer, summary)
        headers = {"Content-Type": "application/json", "User-Agent": "centralita-crm/1",
                   SIGNATURE_HEADER: sign(self.secret, body), IDEMPOTENCY_HEADER: idempotency_key}
        try:
            # No redirects: the signed body must not be replayed to another address.
            response = self.session.post(self.url, data=body, headers=headers,
                                         timeout=self.timeout, allow_redirects=False)
        except requests.RequestException as exc:
            raise CrmRetryable(f"CRM webhook {self.url} unreachable: {exc}") from exc
        status = response.status_code
        text = response.text[:200]
        response.close()
        if 200 <= status < 300:
            return PushResult(self.name, status, f"accepted by {self.url}")
        if status >= 500 or status in RETRYABLE_STATUS:
            raise CrmRetryable(f"CRM webhook {self.url} answered {status}: {text!r}; "
                               "will retry with the same Idempotency-Key")
        raise CrmRejected(f"CRM webhook {self.url} refused call {call_sid}'s summary with "
                          f"{status}: {text!r}; not retried: fix the CRM's configuration or "
                          "IVR_CRM_WEBHOOK_URL/SECRET, then re-queue the job", status)


def adapter_from_config(config: JobConfig) -> CrmAdapter:
    """The webhook when ``IVR_CRM_WEBHOOK_URL`` is set, else the SQL store."""
    if config.crm_webhook_url:
        return WebhookCrm(config.crm_webhook_url, config.crm_webhook_secret or "")
    return SqlCrm()


def push_approved_summary(db: Any, adapter: CrmAdapter, call_sid: str) -> dict[str, Any]:
    """Push the call's approved summary (newest approved version) through ``adapter``.

    ``db`` is a :class:`recordings.store.Database`. Nothing to push (call erased, no
    approved summary) is not an error: the result says so.
    """
    result: dict[str, Any] = {"call_sid": call_sid, "pushed": False}
    summary = db.summaries.current(call_sid)
    if summary is None or summary.get("status") != m.SummaryStatus.APPROVED.value:
        return {**result, "reason": "no approved summary for this call"}
    call = db.calls.get(call_sid) or {}
    customer_id = call.get("customer_id")
    customer = db.customers.get(customer_id) if customer_id is not None else None
    key = idempotency_key(call_sid, summary["version"])
    pushed = adapter.push_summary(call_sid, customer.to_dict() if customer else None,
                                  summary, key)
    return {**result, "pushed": True, "adapter": pushed.adapter, "status": pushed.status,
            "detail": pushed.detail, "summary_version": summary["version"],
            "idempotency_key": key}


def enqueue_push(connection: redis.Redis, call_sid: str, version: int,
                 intervals: Sequence[int] = CRM_RETRY_INTERVALS) -> str:
    """Queue ``recordings.jobs.push_to_crm`` for an approved version; returns the job id.

    ``connection`` must not decode responses (RQ stores bytes). One job id per
    version, so approving twice in a row does not queue two pushes.
    """
    job_id = f"crm-{call_sid}-v{int(version)}"
    Queue("default", connection=connection, serializer=JSONSerializer).enqueue(
        "recordings.jobs.push_to_crm", call_sid, job_id=job_id,
        retry=Retry(max=len(intervals), interval=list(intervals)) if intervals else None,
        result_ttl=24 * 3600, failure_ttl=30 * 24 * 3600)
    return job_id
