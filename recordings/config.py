"""Settings of the after-call jobs, read once from the environment.

``recordings`` must not import ``ivr`` (dependency rule), so the RQ jobs read the
few variables they need here, with the same meaning and defaults as
``ivr.settings`` (see CONTRACT.md): ``REDIS_URL``, ``DATABASE_URL``,
``IVR_DATA_DIR``, ``IVR_SECRET_KEY``, ``TWILIO_*``, ``IVR_VOSK_MODEL_DIR``, plus
the after-call knobs ``IVR_RETENTION_*_DAYS``, ``IVR_FCR_WINDOW_DAYS`` and
``IVR_MAX_RECORDING_MB``, the CRM webhook's ``IVR_CRM_WEBHOOK_URL`` and
``IVR_CRM_WEBHOOK_SECRET``, and where recordings live: ``IVR_RECORDINGS_URL``
(unset: files under ``IVR_DATA_DIR``; ``s3://bucket/prefix``: an S3-compatible store)
with ``IVR_S3_ENDPOINT_URL``.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from recordings.errors import RecordingsError

if TYPE_CHECKING:
    from recordings.storage import EncryptedStore

SECRET_FILE = "secret.key"


def load_or_create_secret(data_dir: Path) -> str:
    """The per-installation secret shared by every process (web workers, RQ jobs, CLI):
    a 0600 file under ``IVR_DATA_DIR``, created once; a process that loses the race to
    create it uses the winner's."""
    path = data_dir / SECRET_FILE
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    return value


class ConfigError(RecordingsError):
    """An after-call setting is malformed; the message names the variable to fix."""


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number; set it to e.g. {default:g}") from None
    if value < 0:
        raise ConfigError(f"{name}={raw!r} must not be negative")
    return value


@dataclass(frozen=True)
class RetentionDays:
    """How long each kind of data is kept after the call (0: keep for ever)."""

    recordings: float = 90
    transcripts: float = 365
    events: float = 365


@dataclass(frozen=True)
class JobConfig:
    data_dir: Path = Path("var")
    redis_url: str | None = None
    database_url: str | None = None
    secret_key: str | None = None
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_api_url: str = "https://api.twilio.com"
    vosk_model_dir: Path | None = None
    retention: RetentionDays = field(default_factory=RetentionDays)
    fcr_window_days: float = 7
    max_recording_bytes: int = 512 * 1024 * 1024
    settle_s: float = 3.0  # wait after the end for the last step records to land
    crm_webhook_url: str | None = None  # unset: summaries stay in the SQL store only
    crm_webhook_secret: str | None = field(default=None, repr=False)  # HMAC-SHA256 key
    recordings_url: str | None = None  # s3://bucket/prefix; None: files under data_dir
    s3_endpoint_url: str | None = None  # a non-AWS S3-compatible service

    @property
    def effective_redis_url(self) -> str:
        return self.redis_url or f"unix://{(self.data_dir / 'redis' / 'redis.sock').resolve()}"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'centralita.db').resolve()}"

    @property
    def recordings_dir(self) -> Path:
        return self.data_dir / "recordings"

    def storage(self, secret: str | None = None) -> EncryptedStore:
        """The recording store this installation is configured for."""
        from recordings.storage import open_storage

        return open_storage(self.data_dir, secret or self.secret(), self.recordings_url,
                            self.s3_endpoint_url)

    def secret(self) -> str:
        """The installation secret: ``IVR_SECRET_KEY``, else the 0600 file the web
        layer creates under ``IVR_DATA_DIR`` (created here the same way if missing)."""
        if self.secret_key:
            return self.secret_key
        return load_or_create_secret(self.data_dir)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> JobConfig:
        env = os.environ if env is None else env
        model_dir = env.get("IVR_VOSK_MODEL_DIR")
        max_mb = _number(env, "IVR_MAX_RECORDING_MB", 512)
        return cls(
            data_dir=Path(env.get("IVR_DATA_DIR") or "var"),
            redis_url=env.get("REDIS_URL") or None,
            database_url=env.get("DATABASE_URL") or None,
            secret_key=env.get("IVR_SECRET_KEY") or None,
            twilio_account_sid=env.get("TWILIO_ACCOUNT_SID") or None,
            twilio_auth_token=env.get("TWILIO_AUTH_TOKEN") or None,
            twilio_api_url=(env.get("TWILIO_API_URL") or "https://api.twilio.com").rstrip("/"),
            vosk_model_dir=Path(model_dir) if model_dir else None,
            retention=RetentionDays(
                recordings=_number(env, "IVR_RETENTION_RECORDINGS_DAYS", 90),
                transcripts=_number(env, "IVR_RETENTION_TRANSCRIPTS_DAYS", 365),
                events=_number(env, "IVR_RETENTION_EVENTS_DAYS", 365)),
            fcr_window_days=_number(env, "IVR_FCR_WINDOW_DAYS", 7),
            max_recording_bytes=int(max_mb * 1024 * 1024),
            settle_s=_number(env, "IVR_FINALIZE_SETTLE_S", 3.0),
            crm_webhook_url=(env.get("IVR_CRM_WEBHOOK_URL") or "").strip() or None,
            crm_webhook_secret=env.get("IVR_CRM_WEBHOOK_SECRET") or None,
            recordings_url=(env.get("IVR_RECORDINGS_URL") or "").strip() or None,
            s3_endpoint_url=(env.get("IVR_S3_ENDPOINT_URL") or "").strip() or None,
        )
