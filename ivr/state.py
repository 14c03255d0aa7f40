"""Call state carried in the action URL, encrypted and authenticated.

Twilio logs the URLs it requests, so the session is sealed with AES-GCM (key
derived from the server's secret); tampering or a token from another server is
refused. Carrying the state keeps Redis off the webhook's hot path: any worker can
answer the next request of a call, and a worker crash loses nothing. Redis keeps
the durable record (written behind the response, see ``ivr.events``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import zlib
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ivr.errors import IvrError
from ivr.settings import Settings
from recordings.config import load_or_create_secret

_VERSION = b"\x01"
# Deflate's set-up costs more than it saves on the small states most calls have.
_COMPRESS_ABOVE = 768


def dumps(state: dict[str, Any]) -> str:
    """Compact UTF-8 JSON (orjson: a webhook's state is written on every request)."""
    return orjson.dumps(state, option=orjson.OPT_NON_STR_KEYS).decode()


class InvalidState(IvrError):
    """The token was not made by this server, was altered, or is not a token."""


def derive_key(secret: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"centralita-call-state",
                info=b"v1").derive(secret.encode())


def installation_secret(settings: Settings) -> str:
    """``IVR_SECRET_KEY``, else the installation's secret file (shared with RQ jobs)."""
    return settings.secret_key or load_or_create_secret(settings.data_dir)


class StateCodec:
    def __init__(self, secret: str) -> None:
        key = derive_key(secret)
        self._aead = AESGCM(key)
        self._nonce_key = hashlib.sha256(b"nonce" + key).digest()

    def tag(self, text: str) -> str:
        """A short keyed MAC of ``text`` (e.g. the Media Streams parameter that proves a
        websocket was opened by a call we answered)."""
        return hmac.new(self._nonce_key, b"tag:" + text.encode(), hashlib.sha256).hexdigest()[:32]

    def encode(self, state: dict[str, Any]) -> str:
        return self.seal(dumps(state).encode())

    def seal(self, raw: bytes) -> str:
        """Seal already-serialised JSON (the web layer reuses it for the Redis record)."""
        packed = b"z" + zlib.compress(raw, 6) if len(raw) > _COMPRESS_ABOVE else b"j" + raw
        # Synthetic nonce (as in SIV): the same state always seals to the same token,
        # so a Twilio retry gets a byte-identical answer; distinct states never share one.
        nonce = hmac.new(self._nonce_key, packed, hashlib.sha256).digest()[:12]
        sealed = self._aead.encrypt(nonce, packed, _VERSION)
        return base64.urlsafe_b64encode(_VERSION + nonce + sealed).rstrip(b"=").decode()

    def decode(self, token: str) -> dict[str, Any]:
        try:
            blob = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (ValueError, TypeError) as exc:
            raise InvalidState("not a state token") from exc
        if len(blob) < 1 + 12 + 16 or blob[:1] != _VERSION:
            raise InvalidState("not a state token")
        try:
            packed = self._aead.decrypt(blob[1:13], blob[13:], _VERSION)
            raw = zlib.decompress(packed[1:]) if packed[:1] == b"z" else packed[1:]
            data = orjson.loads(raw)
        except (InvalidTag, zlib.error, ValueError) as exc:
            raise InvalidState("state token altered or from another server") from exc
        if not isinstance(data, dict):
            raise InvalidState("state token holds no session")
        return data
