"""Settings: parsed once from the environment into a frozen dataclass.

Every variable named in CONTRACT.md is read here and nowhere else; the rest of the
code receives a :class:`Settings`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ivr.errors import IvrError


class SettingsError(IvrError):
    """A setting is missing or malformed; the message says what to set."""


def _flag(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() not in {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("var")
    twilio_auth_token: str | None = None
    twilio_account_sid: str | None = None
    twilio_api_url: str = "https://api.twilio.com"
    public_url: str | None = None
    redis_url: str | None = None  # None: embedded redis-server under data_dir
    database_url: str | None = None  # None: sqlite file under data_dir
    admin_token: str | None = None
    vosk_model_dir: Path | None = None
    validate_signature: bool = True
    flows_dir: Path | None = None  # None: the shipped call_flows/definitions
    secret_key: str | None = None  # signs web sessions and encrypts call state
    trust_forwarded: bool = False  # honour X-Forwarded-Proto/Host from a proxy
    speech_mode: str = "twilio"  # twilio | vosk-record | vosk-stream (IVR_SPEECH)
    media_stream_url: str | None = None  # public wss:// URL of our Media Streams server
    media_stream_port: int = 5001
    speech_tuning: Path | None = None  # endpointing / barge-in knobs YAML (IVR_SPEECH_TUNING)
    queues_file: Path | None = None  # queue rules YAML (IVR_QUEUES_FILE)
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def redis_socket(self) -> Path:
        return self.data_dir / "redis" / "redis.sock"

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'centralita.db').resolve()}"

    @property
    def effective_redis_url(self) -> str:
        if self.redis_url:
            return self.redis_url
        return f"unix://{self.redis_socket.resolve()}"

    @property
    def effective_model_dir(self) -> Path:
        return self.vosk_model_dir or (self.data_dir / "models")

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        data_dir = Path(env.get("IVR_DATA_DIR") or "var")
        model_dir = env.get("IVR_VOSK_MODEL_DIR")
        flows_dir = env.get("IVR_FLOWS_DIR")
        return cls(
            data_dir=data_dir,
            twilio_auth_token=env.get("TWILIO_AUTH_TOKEN") or None,
            twilio_account_sid=env.get("TWILIO_ACCOUNT_SID") or None,
            twilio_api_url=(env.get("TWILIO_API_URL") or "https://api.twilio.com").rstrip("/"),
            public_url=(env.get("IVR_PUBLIC_URL") or "").rstrip("/") or None,
            redis_url=env.get("REDIS_URL") or None,
            database_url=env.get("DATABASE_URL") or None,
            admin_token=env.get("IVR_ADMIN_TOKEN") or None,
            vosk_model_dir=Path(model_dir) if model_dir else None,
            validate_signature=_flag(env.get("IVR_VALIDATE_SIGNATURE"), True),
            flows_dir=Path(flows_dir) if flows_dir else None,
            secret_key=env.get("IVR_SECRET_KEY") or None,
            trust_forwarded=_flag(env.get("IVR_TRUST_FORWARDED"), False),
            speech_mode=(env.get("IVR_SPEECH") or "twilio").strip().lower(),
            media_stream_url=env.get("IVR_MEDIA_STREAM_URL") or None,
            media_stream_port=int(env.get("IVR_MEDIA_STREAM_PORT") or 5001),
            speech_tuning=Path(env["IVR_SPEECH_TUNING"]) if env.get("IVR_SPEECH_TUNING") else None,
            queues_file=Path(env["IVR_QUEUES_FILE"]) if env.get("IVR_QUEUES_FILE") else None,
            # Live-screen feeds (ivr.api.queues.StreamSlots checks the values).
            extra={key: env[name] for name, key in (
                ("IVR_SSE_MAX_STREAMS", "sse_max_streams"),
                ("IVR_SSE_MAX_SECONDS", "sse_max_seconds"),
                ("IVR_SSE_HEARTBEAT_S", "sse_heartbeat_s")) if env.get(name)},
        )
