"""Login throttling: failed attempts counted in Redis per account and per client address.

``MAX_FAILURES`` failures within ``WINDOW_S`` lock that account (from any address) and
that address (for any account) until the window, which starts at the first failure,
runs out. The counters live in Redis, so every worker process sees the same ones. A
successful login clears the account's counter; the address's counter is left to run
out, so an attacker who owns one account cannot use it to reset their guessing.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

MAX_FAILURES = 5
WINDOW_S = 15 * 60


def _key(kind: str, value: str) -> str:
    # Hashed: user names typed by strangers are not kept in clear as key names.
    digest = hashlib.sha256(value.strip().lower().encode()).hexdigest()[:32]
    return f"ivr:web:login-fail:{kind}:{digest}"


@dataclass(frozen=True)
class Lock:
    """A refusal: wait ``retry_after_s`` seconds."""

    retry_after_s: int

    @property
    def minutes(self) -> int:
        return max(1, math.ceil(self.retry_after_s / 60))


class LoginThrottle:
    def __init__(self, client: Any, max_failures: int = MAX_FAILURES,
                 window_s: int = WINDOW_S) -> None:
        self.redis = client
        self.max_failures = max_failures
        self.window_s = window_s

    def _keys(self, account: str, address: str) -> list[str]:
        return [_key("account", account), _key("address", address)]

    def locked(self, account: str, address: str) -> Lock | None:
        """A lock on the account or the address, else None."""
        pipe = self.redis.pipeline(transaction=False)
        for key in self._keys(account, address):
            pipe.get(key)
            pipe.ttl(key)
        found = pipe.execute()
        waits = [int(ttl) for count, ttl in zip(found[::2], found[1::2])
                 if count is not None and int(count) >= self.max_failures]
        if not waits:
            return None
        return Lock(max(max(waits), 1))

    def attempt(self, account: str, address: str) -> Lock | None:
        """Count this attempt *before* the password is checked, so parallel guesses cannot
        slip past the limit together; a lock when the limit was already reached."""
        pipe = self.redis.pipeline()
        for key in self._keys(account, address):
            pipe.incr(key)
            pipe.expire(key, self.window_s, nx=True)  # the window starts at the first failure
        counts = pipe.execute()[::2]
        if any(int(count) > self.max_failures for count in counts):
            return self.locked(account, address)
        return None

    def failed(self, account: str, address: str) -> Lock | None:
        """The attempt failed (it is already counted): the lock it causes, if any."""
        return self.locked(account, address)

    def succeeded(self, account: str, address: str | None = None) -> None:
        """A good password: the account's counter is cleared and this attempt is taken
        off the address's (which counts failures only)."""
        pipe = self.redis.pipeline()
        pipe.delete(_key("account", account))
        if address is not None:
            pipe.decr(_key("address", address))
        pipe.execute()
