"""Logins: API tokens and password hashes (pure functions; the SQL is in ``store.py``).

A token looks like ``ivr_<12 hex>_<43 url-safe chars>``. The part up to the second
underscore is its *prefix*, stored in clear to find the row; the whole token is
stored only as a SHA-256 hash, so a copy of the database does not give anyone a
working token. Tokens carry 256 bits of randomness: a fast hash is the right tool
(a slow password hash is for guessable secrets). Passwords use scrypt.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from recordings.errors import UserError
from recordings.model import Role

TOKEN_RE = re.compile(r"^(ivr_[0-9a-f]{12})_[A-Za-z0-9_-]{20,}$")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")

# scrypt cost: N=2**14, r=8, p=1 (16 MiB, the OWASP minimum) keeps a login ~50 ms.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1


@dataclass(frozen=True)
class User:
    id: int
    name: str
    role: str
    agent_id: str | None
    created_at: datetime
    disabled: bool = False


@dataclass(frozen=True)
class NewUser:
    """A user just created: the plaintext token exists only here, shown once."""

    user: User
    token: str


def new_token() -> tuple[str, str, str]:
    """Return ``(token, prefix, sha256 hex)`` for a fresh API token."""
    prefix = f"ivr_{secrets.token_hex(6)}"
    token = f"{prefix}_{secrets.token_urlsafe(32)}"
    return token, prefix, token_digest(token)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_prefix(token: str) -> str | None:
    """The lookup prefix of a well-formed token, else None (no database query needed)."""
    match = TOKEN_RE.match(token)
    return match.group(1) if match else None


def token_matches(token: str, digest: str) -> bool:
    return hmac.compare_digest(token_digest(token), digest)


def hash_password(password: str) -> str:
    if len(password) < 8:
        raise UserError("the password is too short: use at least 8 characters")
    salt = secrets.token_bytes(16)
    key = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    return "$".join(["scrypt", str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P),
                     _b64(salt), _b64(key)])


def password_matches(password: str, stored: str | None) -> bool:
    if not stored:
        return False
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        if scheme != "scrypt":
            return False
        actual = hashlib.scrypt(password.encode(), salt=_unb64(salt), n=int(n), r=int(r),
                                p=int(p))
    except ValueError:
        return False
    return hmac.compare_digest(actual, _unb64(key))


def check_new_user(name: str, role: str) -> Role:
    """Validate a user name and role; return the role."""
    if not NAME_RE.match(name):
        raise UserError(f"invalid user name {name!r}: use letters, digits and . _ @ - "
                        "(at most 100 characters, starting with a letter or digit)")
    try:
        return Role(role)
    except ValueError:
        allowed = ", ".join(r.value for r in Role)
        raise UserError(f"unknown role {role!r}: use one of {allowed}") from None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode())
