"""Twilio recordings over HTTP for the after-call jobs: download (streamed) and delete.

``ivr.twilio_rest`` is the server's client, but ``recordings`` must not import
``ivr``; this is the small part the recording job needs, with the same rules:
credentials go only to ``TWILIO_API_URL``'s host; a fresh recording answers 404
while Twilio processes it, so 404 is retried a bounded number of times before it
is believed; 429 (``Retry-After`` honoured) and 5xx are retried with backoff;
the body is streamed and cut at a size limit so a huge recording cannot exhaust
memory or disk.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests

from recordings.errors import RecordingsError

log = logging.getLogger(__name__)
API_VERSION = "2010-04-01"
RECORDING_SID = re.compile(r"RE[0-9a-fA-F]{32}")
_RETRY = {429, 500, 502, 503, 504}


class MediaError(RecordingsError):
    """Twilio refused or failed a recording request; ``status`` is its HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


class NotReady(MediaError):
    """Twilio still answers 404 for the recording after every retry."""


class TooLarge(MediaError):
    """The recording is larger than ``IVR_MAX_RECORDING_MB``."""


class Disabled(MediaError):
    """``TWILIO_ACCOUNT_SID``/``TWILIO_AUTH_TOKEN`` are not set: no recording access."""


def recording_sid(value: str) -> str:
    """The ``RE...`` SID in a SID or a ``RecordingUrl``."""
    last = urlsplit(value).path.rstrip("/").rsplit("/", 1)[-1].split(".", 1)[0]
    if not RECORDING_SID.fullmatch(last):
        raise MediaError(0, f"{value!r} is neither a recording SID (RE + 32 hex digits) nor "
                            "a Twilio RecordingUrl")
    return last


@dataclass(frozen=True)
class Backoff:
    attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    not_ready_attempts: int = 8
    not_ready_delay: float = 1.0
    timeout: tuple[float, float] = (5.0, 30.0)


class TwilioMedia:
    def __init__(self, account_sid: str | None, auth_token: str | None, api_url: str, *,
                 backoff: Backoff = Backoff(), sleep: Callable[[float], None] = time.sleep
                 ) -> None:
        if not (account_sid and auth_token):
            raise Disabled(0, "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN must be set to fetch "
                              "recordings from Twilio")
        self.account_sid, self.api_url = account_sid, api_url.rstrip("/")
        self.session = requests.Session()
        self.session.auth = (account_sid, auth_token)
        self.backoff, self.sleep = backoff, sleep

    def close(self) -> None:
        self.session.close()

    def _url(self, sid: str, ext: str) -> str:
        return f"{self.api_url}/{API_VERSION}/Accounts/{self.account_sid}/Recordings/{sid}.{ext}"

    def download(self, sid: str, max_bytes: int) -> Iterator[bytes]:
        """The WAV audio, in chunks. Raises before yielding anything when Twilio
        does not have it (:class:`NotReady`) or it is too large (:class:`TooLarge`)."""
        url = self._url(sid, "wav")
        for attempt in range(self.backoff.not_ready_attempts):
            resp = self._request("GET", url, stream=True)
            if resp.status_code != 404:
                break
            resp.close()
            if attempt + 1 == self.backoff.not_ready_attempts:
                raise NotReady(404, f"Twilio has no audio for recording {sid} yet (404 after "
                                    f"{self.backoff.not_ready_attempts} tries)")
            log.info("recording %s not ready (404); retrying", sid)
            self.sleep(self.backoff.not_ready_delay)
        declared = int(resp.headers.get("Content-Length") or 0)
        if declared > max_bytes:
            resp.close()
            raise TooLarge(413, f"recording {sid} is {declared} bytes, above the "
                                f"{max_bytes}-byte limit (IVR_MAX_RECORDING_MB)")
        return self._body(resp, sid, max_bytes)

    @staticmethod
    def _body(resp: requests.Response, sid: str, max_bytes: int) -> Iterator[bytes]:
        total = 0
        with resp:
            for chunk in resp.iter_content(1 << 16):
                total += len(chunk)
                if total > max_bytes:
                    raise TooLarge(413, f"recording {sid} is larger than the {max_bytes}-byte "
                                        "limit (IVR_MAX_RECORDING_MB)")
                yield chunk

    def delete(self, sid: str) -> bool:
        """Delete it from Twilio; False when Twilio no longer has it."""
        resp = self._request("DELETE", self._url(sid, "json"))
        resp.close()
        return resp.status_code != 404

    def _request(self, method: str, url: str, stream: bool = False) -> requests.Response:
        for attempt in range(self.backoff.attempts):
            last = attempt + 1 == self.backoff.attempts
            try:
                resp = self.session.request(method, url, stream=stream,
                                            timeout=self.backoff.timeout)
            except (requests.ConnectionError, requests.Timeout) as exc:
                if last:
                    raise MediaError(0, f"{method} {url}: {type(exc).__name__}") from exc
                self.sleep(min(self.backoff.max_delay, self.backoff.base_delay * 2 ** attempt))
                continue
            if resp.status_code < 400 or resp.status_code == 404:
                return resp
            if resp.status_code in _RETRY and not last:
                delay = min(self.backoff.max_delay, self.backoff.base_delay * 2 ** attempt)
                try:
                    delay = min(self.backoff.max_delay, float(resp.headers["Retry-After"]))
                except (KeyError, ValueError):
                    pass
                resp.close()
                self.sleep(delay)
                continue
            resp.close()
            raise MediaError(resp.status_code, f"Twilio answered {resp.status_code} to "
                                               f"{method} {url}")
        raise AssertionError("unreachable")
