"""The one client for Twilio's REST API (``TWILIO_API_URL``): calls and recordings.

Used by the server (``ivr.twilio_rest`` adds the settings and call-recording glue)
and by the after-call jobs (``recordings`` must not import ``ivr``, so it lives here).
Only what the project needs: create an outbound call (callbacks), update a live call
(new TwiML or URL, or hang it up), start/pause/resume a call's recording, and
fetch/download/delete a recording. Every request has a timeout; 429, 5xx and
connection failures are retried with bounded exponential backoff (``Retry-After``
honoured); a recording still being processed answers 404 for a while, so downloads
retry 404s a bounded number of times before :class:`NotReady`; a download is streamed
and cut at a size limit (:class:`TooLarge`) so a huge recording cannot exhaust memory
or disk. Credentials only ever go to ``TWILIO_API_URL``'s host. Failures raise
:class:`TwilioRestError` carrying Twilio's status, error code and message. Without
``TWILIO_ACCOUNT_SID``/``TWILIO_AUTH_TOKEN`` the client is *disabled*: it says so once
in the log and every call raises :class:`TwilioDisabled`.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Self
from urllib.parse import urlsplit

import requests

from recordings.errors import RecordingsError

log = logging.getLogger(__name__)

API_VERSION = "2010-04-01"
DEFAULT_API_URL = "https://api.twilio.com"
RECORDING_SID = re.compile(r"RE[0-9a-fA-F]{32}")
CURRENT_RECORDING = "Twilio.CURRENT"  # the call's active recording, in Twilio's URLs


class TwilioRestError(RecordingsError):
    """Twilio refused or failed a request. ``code`` is Twilio's error code (20404...)."""

    def __init__(self, status: int, code: int | None, message: str,
                 more_info: str | None = None) -> None:
        self.status, self.code, self.message, self.more_info = status, code, message, more_info
        where = f" (code {code})" if code else ""
        super().__init__(f"Twilio API error {status}{where}: {message}")


class TwilioDisabled(TwilioRestError):
    """TWILIO_ACCOUNT_SID is not set: outbound calls and recording access are off."""

    def __init__(self) -> None:
        super().__init__(0, None, "TWILIO_ACCOUNT_SID is not set: outbound calls and "
                                  "recording downloads are disabled")


class NotReady(TwilioRestError):
    """Twilio still answers 404 for a recording's audio after every retry."""


class TooLarge(TwilioRestError):
    """The recording is larger than the size limit (``IVR_MAX_RECORDING_MB``)."""


def recording_sid(value: str) -> str:
    """The ``RE...`` SID in a SID or a ``RecordingUrl``."""
    last = urlsplit(value).path.rstrip("/").rsplit("/", 1)[-1].split(".", 1)[0]
    if not RECORDING_SID.fullmatch(last):
        raise TwilioRestError(0, None, f"{value!r} is neither a recording SID (RE + 32 hex "
                                       "digits) nor a Twilio RecordingUrl")
    return last


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4  # tries in all for 429/5xx/connection failures
    base_delay: float = 0.5  # seconds, doubled every retry
    max_delay: float = 8.0  # also caps a server's Retry-After
    recording_attempts: int = 8  # tries while a recording is "not found" (processing)
    recording_delay: float = 1.0
    timeout: tuple[float, float] = (5.0, 15.0)  # connect, read

    def delay(self, attempt: int) -> float:
        return float(min(self.max_delay, self.base_delay * 2.0 ** attempt))


RETRYABLE = {429, 500, 502, 503, 504}
# Creating a call is not idempotent: after a 500/502/504 or a read timeout Twilio may
# have created it, so only answers that prove nothing happened are retried.
RETRYABLE_UNSAFE = {429, 503}


class TwilioRest:
    """Client for ``/2010-04-01/Accounts/{AccountSid}/...`` on ``api_url``."""

    def __init__(self, account_sid: str | None, auth_token: str | None,
                 api_url: str = DEFAULT_API_URL, *, retry: RetryPolicy = RetryPolicy(),
                 session: requests.Session | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.account_sid = account_sid
        self.api_url = api_url.rstrip("/")
        self.retry = retry
        self.session = session or requests.Session()
        self.session.auth = (account_sid or "", auth_token or "")
        self.sleep = sleep
        self.enabled = bool(account_sid and auth_token)
        if not self.enabled:
            missing = "TWILIO_ACCOUNT_SID" if not account_sid else "TWILIO_AUTH_TOKEN"
            log.warning("Twilio REST API disabled: %s is not set; outbound calls "
                        "(callbacks) and recording downloads are off", missing)

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ calls

    def create_call(self, *, to: str, from_: str, url: str | None = None,
                    twiml: str | None = None, method: str = "POST",
                    status_callback: str | None = None,
                    status_callback_events: tuple[str, ...] = (),
                    timeout: int | None = None) -> dict[str, Any]:
        """Place an outbound call; Twilio fetches ``url`` (or runs ``twiml``) on answer."""
        if (url is None) == (twiml is None):
            raise ValueError("give exactly one of url or twiml")
        form: list[tuple[str, str]] = [("To", to), ("From", from_)]
        form += [("Url", url), ("Method", method)] if url else [("Twiml", twiml or "")]
        if status_callback:
            form.append(("StatusCallback", status_callback))
            form += [("StatusCallbackEvent", e) for e in status_callback_events]
        if timeout is not None:
            form.append(("Timeout", str(timeout)))
        return self._json("POST", "/Calls.json", form, idempotent=False)

    def fetch_call(self, call_sid: str) -> dict[str, Any]:
        return self._json("GET", f"/Calls/{call_sid}.json")

    def update_call(self, call_sid: str, *, url: str | None = None, twiml: str | None = None,
                    method: str = "POST", status: str | None = None) -> dict[str, Any]:
        """Redirect a live call to new TwiML/URL, or end it (``status="completed"``)."""
        form: list[tuple[str, str]] = []
        if url:
            form += [("Url", url), ("Method", method)]
        if twiml:
            form.append(("Twiml", twiml))
        if status:
            form.append(("Status", status))
        if not form:
            raise ValueError("nothing to update: give url, twiml or status")
        return self._json("POST", f"/Calls/{call_sid}.json", form)

    def hangup_call(self, call_sid: str) -> dict[str, Any]:
        return self.update_call(call_sid, status="completed")

    # ------------------------------------------------------------------ recordings

    def fetch_recording(self, recording_sid: str) -> dict[str, Any]:
        return self._json("GET", f"/Recordings/{recording_sid}.json")

    def download_recording(self, recording: str, fmt: str = "wav") -> bytes:
        """The audio of a recording (its SID or the ``RecordingUrl`` Twilio sent).

        Twilio answers 404 until it has processed a fresh recording, so a 404 is retried
        ``retry.recording_attempts`` times before it is believed.
        """
        url = self._recording_url(recording, fmt)
        for attempt in range(self.retry.recording_attempts):
            try:
                return self._request("GET", url).content
            except TwilioRestError as exc:
                if exc.status != 404 or attempt + 1 == self.retry.recording_attempts:
                    raise
                log.info("recording %s not ready yet (404), retrying", recording)
                self.sleep(self.retry.recording_delay)
        raise AssertionError("unreachable")

    def stream_recording(self, recording: str, max_bytes: int, fmt: str = "wav"
                         ) -> Iterator[bytes]:
        """The audio in chunks, never more than ``max_bytes`` in all. Raises before
        yielding anything when Twilio does not have it yet (:class:`NotReady`, after
        the same bounded 404 retries as :meth:`download_recording`) or declares it too
        large (:class:`TooLarge`); a body that grows past the limit raises mid-way."""
        url = self._recording_url(recording, fmt)
        for attempt in range(self.retry.recording_attempts):
            try:
                resp = self._request("GET", url, stream=True)
                break
            except TwilioRestError as exc:
                if exc.status != 404:
                    raise
                if attempt + 1 == self.retry.recording_attempts:
                    raise NotReady(404, exc.code, f"Twilio has no audio for recording "
                                                  f"{recording} yet (404 after "
                                                  f"{self.retry.recording_attempts} tries)"
                                   ) from exc
                log.info("recording %s not ready yet (404), retrying", recording)
                self.sleep(self.retry.recording_delay)
        declared = int(resp.headers.get("Content-Length") or 0)
        if declared > max_bytes:
            resp.close()
            raise TooLarge(413, None, f"recording {recording} is {declared} bytes, above the "
                                      f"{max_bytes}-byte limit (IVR_MAX_RECORDING_MB)")
        return _capped(resp, recording, max_bytes)

    def delete_recording(self, recording_sid: str) -> bool:
        """Delete a recording; False when Twilio no longer has it (already deleted)."""
        try:
            self._request("DELETE", self._url(f"/Recordings/{recording_sid}.json"))
        except TwilioRestError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    # ------------------------------------------------------------------ a call's recording

    def start_call_recording(self, call_sid: str, *, status_callback: str | None = None,
                             channels: str = "dual", trim: str = "do-not-trim"
                             ) -> dict[str, Any]:
        """Record a live call from now on (``Calls/{sid}/Recordings.json``); Twilio posts
        ``status_callback`` when the recording is complete (or absent). Twilio refuses a
        call that is not in progress (400) and an unknown call (404)."""
        form: list[tuple[str, str]] = [("RecordingChannels", channels), ("Trim", trim)]
        if status_callback:
            form += [("RecordingStatusCallback", status_callback),
                     ("RecordingStatusCallbackMethod", "POST"),
                     ("RecordingStatusCallbackEvent", "completed"),
                     ("RecordingStatusCallbackEvent", "absent")]
        # Starting twice would record twice: only answers that prove nothing happened retry.
        return self._json("POST", f"/Calls/{call_sid}/Recordings.json", form, idempotent=False)

    def update_call_recording(self, call_sid: str, status: str,
                              recording: str = CURRENT_RECORDING,
                              pause_behavior: str = "skip") -> dict[str, Any]:
        """Pause (``paused``; ``skip`` leaves the paused stretch out of the file),
        resume (``in-progress``) or stop (``stopped``) a call's recording."""
        form: list[tuple[str, str]] = [("Status", status)]
        if status == "paused":
            form.append(("PauseBehavior", pause_behavior))
        return self._json("POST", f"/Calls/{call_sid}/Recordings/{recording}.json", form)

    # ------------------------------------------------------------------ plumbing

    def _url(self, path: str) -> str:
        if not self.enabled:
            raise TwilioDisabled()
        return f"{self.api_url}/{API_VERSION}/Accounts/{self.account_sid}{path}"

    def _recording_url(self, recording: str, fmt: str) -> str:
        if not recording.startswith(("http://", "https://")):
            return self._url(f"/Recordings/{recording}.{fmt}")
        self._url("")  # raises when disabled
        ours, theirs = urlsplit(self.api_url), urlsplit(recording)
        if (theirs.scheme, theirs.netloc) != (ours.scheme, ours.netloc):
            # never send our credentials to a host a webhook parameter named
            raise TwilioRestError(0, None, f"recording URL {recording} is not on "
                                           f"TWILIO_API_URL {self.api_url}")
        last = theirs.path.rsplit("/", 1)[-1]
        return recording if "." in last else f"{recording}.{fmt}"

    def _json(self, method: str, path: str, form: list[tuple[str, str]] | None = None,
              idempotent: bool = True) -> dict[str, Any]:
        resp = self._request(method, self._url(path), form, idempotent)
        data: dict[str, Any] = resp.json()
        return data

    def _request(self, method: str, url: str, form: list[tuple[str, str]] | None = None,
                 idempotent: bool = True, stream: bool = False) -> requests.Response:
        retry_on = RETRYABLE if idempotent else RETRYABLE_UNSAFE
        for attempt in range(self.retry.attempts):
            last = attempt + 1 == self.retry.attempts
            try:
                resp = self.session.request(method, url, data=form, timeout=self.retry.timeout,
                                            stream=stream)
            except (requests.ConnectionError, requests.Timeout) as exc:
                sent = not isinstance(exc, requests.ConnectTimeout) and not _refused(exc)
                if last or (sent and not idempotent):
                    raise TwilioRestError(0, None, f"{method} {url}: {type(exc).__name__}: "
                                                   f"{exc}") from exc
                self._wait(attempt, None, f"{type(exc).__name__}")
                continue
            if resp.status_code < 400:
                return resp
            if resp.status_code in retry_on and not last:
                resp.close()
                self._wait(attempt, resp.headers.get("Retry-After"), str(resp.status_code))
                continue
            error = _error(resp)
            resp.close()
            raise error
        raise AssertionError("unreachable")

    def _wait(self, attempt: int, retry_after: str | None, why: str) -> None:
        delay = self.retry.delay(attempt)
        if retry_after:
            try:
                delay = min(self.retry.max_delay, max(0.0, float(retry_after)))
            except ValueError:
                pass  # an HTTP date: keep our own backoff
        log.warning("Twilio API answered %s; retrying in %.1f s", why, delay)
        self.sleep(delay)


def _capped(resp: requests.Response, recording: str, max_bytes: int) -> Iterator[bytes]:
    total = 0
    with resp:
        for chunk in resp.iter_content(1 << 16):
            total += len(chunk)
            if total > max_bytes:
                raise TooLarge(413, None, f"recording {recording} is larger than the "
                                          f"{max_bytes}-byte limit (IVR_MAX_RECORDING_MB)")
            yield chunk


def _refused(exc: Exception) -> bool:
    """Whether the connection failed before anything was sent (safe to retry a POST)."""
    text = repr(exc)
    return "NewConnectionError" in text or "Connection refused" in text


def _error(resp: requests.Response) -> TwilioRestError:
    body: Mapping[str, Any] = {}
    try:
        parsed = resp.json()
        if isinstance(parsed, dict):
            body = parsed
    except ValueError:
        pass
    code = body.get("code")
    message = str(body.get("message") or resp.reason or "no message")
    return TwilioRestError(resp.status_code, int(code) if isinstance(code, int) else None,
                           message, body.get("more_info"))
