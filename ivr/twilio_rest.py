"""The server's side of Twilio's REST API: the shared client plus call-recording glue.

The client itself is :mod:`recordings.twilio_rest` (one client for the server and the
after-call jobs, which must not import ``ivr``); every public name the server used
from here still works. This module adds :meth:`TwilioRest.from_settings` and
:class:`CallRecorder`, which performs the engine's ``RecordingControl`` effects on a
live call: start the whole-call recording (status callback to
``/voice/recording-status``), pause it while sensitive digits are collected, resume.
:meth:`TwilioRest.list_live_calls` pages through the calls Twilio still holds live
(``queued``, ``ringing``, ``in-progress``), for reconciling the router with Twilio.

TwiML sent to a live call (``update_call(twiml=...)``) has no document URL for Twilio to
resolve relative URLs against: Twilio refuses such actions (error 15004), so
:meth:`TwilioRest.update_call` makes them absolute with ``IVR_PUBLIC_URL`` (or, inside a
webhook, the URL Twilio used) and refuses, with what to set, when it has neither.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode, urljoin

from ivr.security import REQUEST_BASE, public_base
from ivr.settings import Settings
from recordings.twilio_rest import (
    API_VERSION,
    CURRENT_RECORDING,
    DEFAULT_API_URL,
    RETRYABLE,
    RETRYABLE_UNSAFE,
    NotReady,
    RetryPolicy,
    TooLarge,
    TwilioDisabled,
    TwilioRestError,
    recording_sid,
)
from recordings.twilio_rest import TwilioRest as _Client

__all__ = [
    "API_VERSION",
    "CURRENT_RECORDING",
    "DEFAULT_API_URL",
    "LIVE_STATUSES",
    "RETRYABLE",
    "RETRYABLE_UNSAFE",
    "CallRecorder",
    "NotReady",
    "RetryPolicy",
    "TooLarge",
    "TwilioDisabled",
    "TwilioRest",
    "TwilioRestError",
    "recording_sid",
]

log = logging.getLogger(__name__)

RECORDING_STATUS_PATH = "/voice/recording-status"
#: The statuses of a call Twilio still holds (the list filter takes one at a time).
LIVE_STATUSES = ("queued", "ringing", "in-progress")
#: Twilio's largest page of a list resource.
MAX_PAGE_SIZE = 1000
#: Inside a webhook (Twilio waits at most 15 s for the whole answer): one quick retry.
RECORDER_RETRY = RetryPolicy(attempts=2, base_delay=0.2, max_delay=0.5, timeout=(1.0, 2.5))


#: TwiML attributes and verb bodies that hold a URL of ours (relative when rendered).
_RELATIVE_ATTR = re.compile(r'\b(action|url|waitUrl|statusCallback|recordingStatusCallback|'
                            r'transcribeCallback)="(/[^"]*)"')
_RELATIVE_BODY = re.compile(r"(<(Redirect|Play)\b[^>]*>)(/[^<]*)(</\2>)")
ABSOLUTE_URLS_NEEDED = 15004  # Twilio: "Action Callback URL must be an absolute URL ..."


def absolute_twiml(twiml: str, base: str | None) -> str:
    """``twiml`` with every relative URL of ours made absolute on ``base``; raises
    :class:`TwilioRestError` (code 15004) when there is one and no base to put first."""
    if not (_RELATIVE_ATTR.search(twiml) or _RELATIVE_BODY.search(twiml)):
        return twiml
    if not base:
        raise TwilioRestError(0, ABSOLUTE_URLS_NEEDED,
                              "TwiML sent to a live call needs absolute URLs: set "
                              "IVR_PUBLIC_URL to the base URL Twilio calls")
    root = html.escape(base.rstrip("/"), quote=True)
    out = _RELATIVE_ATTR.sub(lambda m: f'{m.group(1)}="{root}{m.group(2)}"', twiml)
    return _RELATIVE_BODY.sub(lambda m: f"{m.group(1)}{root}{m.group(3)}{m.group(4)}", out)


class TwilioRest(_Client):
    """The shared client, built from the server's settings."""

    #: The base URL Twilio reaches us at (``IVR_PUBLIC_URL``), for TwiML sent by REST.
    public_url: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> TwilioRest:
        client = cls(settings.twilio_account_sid, settings.twilio_auth_token,
                     settings.twilio_api_url, **kwargs)
        client.public_url = settings.public_url
        return client

    def update_call(self, call_sid: str, *, url: str | None = None, twiml: str | None = None,
                    method: str = "POST", status: str | None = None) -> dict[str, Any]:
        """As the shared client's, with the TwiML's URLs made absolute (see the module)."""
        if twiml:
            twiml = absolute_twiml(twiml, self.public_url or REQUEST_BASE.get())
        return super().update_call(call_sid, url=url, twiml=twiml, method=method,
                                   status=status)

    def list_calls(self, status: str, *, to: str | None = None, from_: str | None = None,
                   page_size: int = 100) -> Iterator[dict[str, Any]]:
        """Every call with ``status`` (optionally to / from a number), page after page
        (Twilio's ``next_page_uri``). Raises :class:`TwilioRestError` on any failure, so
        a caller never mistakes a partial list for the whole one."""
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{MAX_PAGE_SIZE}, got {page_size}")
        query = [("Status", status), ("PageSize", str(page_size))]
        query += [("To", to)] if to else []
        query += [("From", from_)] if from_ else []
        url: str | None = self._url("/Calls.json") + "?" + urlencode(query)
        while url:
            page: dict[str, Any] = self._request("GET", url).json()
            yield from page.get("calls") or []
            next_uri = page.get("next_page_uri")
            # Twilio gives the next page as a path on its API host.
            url = self.api_url + next_uri if next_uri else None

    def list_live_calls(self, *, to: str | None = None,
                        from_: str | None = None) -> dict[str, dict[str, Any]]:
        """The calls Twilio still has live (queued, ringing, in progress) by CallSid."""
        live: dict[str, dict[str, Any]] = {}
        for status in LIVE_STATUSES:
            for call in self.list_calls(status, to=to, from_=from_):
                live[str(call["sid"])] = call
        return live


class CallRecorder:
    """Starts, pauses and resumes a live call's whole-call recording."""

    def __init__(self, rest: _Client, public_url: str | None = None) -> None:
        self.rest = rest
        self.public_url = public_url  # IVR_PUBLIC_URL; else the webhook request's own

    @classmethod
    def from_settings(cls, settings: Settings) -> CallRecorder:
        return cls(TwilioRest.from_settings(settings, retry=RECORDER_RETRY),
                   settings.public_url)

    def callback_url(self) -> str:
        """Where Twilio posts the finished recording: ``IVR_PUBLIC_URL``, else the base
        URL of the webhook being answered (fast path or Flask view)."""
        base = public_base(self.public_url)
        if not base:
            raise TwilioRestError(0, None, "no public URL for the recording status callback: "
                                           "set IVR_PUBLIC_URL to the URL Twilio calls")
        return urljoin(base + "/", RECORDING_STATUS_PATH.lstrip("/"))

    def control(self, call_sid: str, state: str) -> dict[str, Any]:
        """Apply ``state`` ("start", "paused", "in-progress"); returns Twilio's answer.
        Raises :class:`TwilioRestError` (the caller decides what a failure means)."""
        if state == "start":
            return self.rest.start_call_recording(call_sid, status_callback=self.callback_url())
        if state in ("paused", "in-progress"):
            return self.rest.update_call_recording(call_sid, state)
        raise ValueError(f"unknown recording state {state!r}: use start, paused or in-progress")
