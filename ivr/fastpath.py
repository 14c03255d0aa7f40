"""The call webhooks answered straight from WSGI, without Flask's request machinery.

A call's webhooks are the hot path: every key a caller presses is one of them, and
Twilio waits for the answer while the caller hears silence. Flask's request and
response objects, its session and URL adapter cost more than the call's own work,
so :class:`VoiceFastPath` sits in front of the Flask app (as WSGI middleware) and
answers ``POST /voice/incoming`` and the resume webhooks (``step``, ``recording``,
``dial-result``, ``queue-result``) itself, with exactly the views' behaviour:

* the body is parsed once (``application/x-www-form-urlencoded``; anything else, an
  absent or oversized ``Content-Length`` or the SharedKey signature header goes to
  the Flask views, which handle every case);
* ``X-Twilio-Signature`` is checked over the URL as Twilio requested it (the same
  :func:`ivr.security.signed_url`) and every parameter value, sorted, as Twilio
  signs; only when that fails are the port variants tried, through the library;
  a bad signature gets 403 and changes nothing;
* the parameters are Flask's ``request.values`` (query first, then the form; the
  first value of a repeated name), the state token is the query's ``s``;
* any failure inside gives the apology TwiML (:func:`ivr.webhooks.answer` is the
  one place both paths call), never a 5xx.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import unquote_plus

from werkzeug.datastructures import MultiDict

from ivr import render, webhooks
from ivr.security import REQUEST_BASE, raw_url, signature_is_valid, signed_url

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024  # Twilio's webhook bodies are a few hundred bytes
FORM = "application/x-www-form-urlencoded"
_TWIML_HEADERS = [("Content-Type", "text/xml; charset=utf-8")]
_FORBIDDEN = b"invalid Twilio signature\n"

StartResponse = Callable[..., Any]


def parse_form(text: str) -> list[tuple[str, str]]:
    """``urllib.parse.parse_qsl(text, keep_blank_values=True)``, faster on Twilio's bodies
    (most names and many values need no unquoting)."""
    pairs: list[tuple[str, str]] = []
    for chunk in text.split("&"):
        if not chunk:
            continue
        name, _, value = chunk.partition("=")
        if "%" in name or "+" in name:
            name = unquote_plus(name)
        if "%" in value or "+" in value:
            value = unquote_plus(value)
        pairs.append((name, value))
    return pairs


def twilio_signature(auth_token: bytes, url: str, pairs: Iterable[tuple[str, str]]) -> str:
    """Twilio's HMAC-SHA1 signature of ``url`` + parameters (each name's distinct values
    sorted, names sorted), as ``twilio.request_validator`` computes it."""
    by_name: dict[str, set[str]] = {}
    for name, value in pairs:
        by_name.setdefault(name, set()).add(value)
    text = url + "".join(name + value for name in sorted(by_name)
                         for value in sorted(by_name[name]))
    digest = hmac.new(auth_token, text.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


class _Headers:
    """The two forwarded headers :func:`signed_url` may read, from the environ."""

    def __init__(self, environ: Mapping[str, Any]) -> None:
        self.environ = environ

    def get(self, name: str, default: str = "") -> str:
        value = self.environ.get("HTTP_" + name.upper().replace("-", "_"))
        return default if value is None else str(value)


class VoiceFastPath:
    """WSGI middleware: the call webhooks here, everything else to ``app``."""

    def __init__(self, app: Callable[..., Iterable[bytes]], services: Any) -> None:
        self.app = app
        self.services = services
        settings = services.settings
        self.check = settings.validate_signature
        token = settings.twilio_auth_token or ""
        self.auth_token = token
        self.key = token.encode("utf-8")
        self.public_url = settings.public_url
        self.trust_forwarded = settings.trust_forwarded

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if (path not in webhooks.FAST_ROUTES or environ.get("REQUEST_METHOD") != "POST"
                or environ.get("HTTP_X_TWILIO_WEBHOOKS_SIGNATURE_SETTINGS")
                or not str(environ.get("CONTENT_TYPE", "")).startswith(FORM)):
            return self.app(environ, start_response)
        try:
            length = int(environ.get("CONTENT_LENGTH") or "")
        except ValueError:
            return self.app(environ, start_response)
        if not 0 <= length <= MAX_BODY:
            return self.app(environ, start_response)
        try:
            body = environ["wsgi.input"].read(length) if length else b""
            form = parse_form(body.decode("utf-8", "replace"))
            query = parse_form(environ.get("QUERY_STRING", ""))
            url = self._url(environ)
            signed = not self.check or self._signed(environ, url, form)
        except Exception:  # a broken read or header: the caller still hears us, nothing changes
            log.exception("webhook %s could not be read: the caller hears an apology", path)
            return self._twiml(start_response, render.apology(None))
        if not signed:
            log.warning("refused POST %s: missing or wrong X-Twilio-Signature", path)
            start_response("403 FORBIDDEN", [("Content-Type", "text/plain; charset=utf-8"),
                                             ("Content-Length", str(len(_FORBIDDEN)))])
            return [_FORBIDDEN]
        args: dict[str, str] = {}
        for name, value in query:
            args.setdefault(name, value)
        values: dict[str, str] = {}
        for name, value in form:
            values.setdefault(name, value)
        values.update(args)  # Flask's request.values: the query string wins
        service = self.services.components["calls"]
        slash = url.find("/", url.find("//") + 2)
        token = REQUEST_BASE.set(url[:slash] if slash > 0 else url)  # scheme://host[:port]
        try:
            return self._twiml(start_response, webhooks.answer(service, path, args, values))
        finally:
            REQUEST_BASE.reset(token)

    @staticmethod
    def _twiml(start_response: StartResponse, text: str) -> list[bytes]:
        answer = text.encode("utf-8")
        start_response("200 OK", _TWIML_HEADERS + [("Content-Length", str(len(answer)))])
        return [answer]

    def _url(self, environ: Mapping[str, Any]) -> str:
        """The URL Twilio requested (and signed)."""
        url = raw_url(environ)
        if self.public_url or self.trust_forwarded:
            url = signed_url(self.public_url, self.trust_forwarded, url, _Headers(environ))
        return url

    def _signed(self, environ: Mapping[str, Any], url: str,
                form: list[tuple[str, str]]) -> bool:
        signature = environ.get("HTTP_X_TWILIO_SIGNATURE", "")
        if not signature or not self.auth_token:
            return False
        expected = twilio_signature(self.key, url, form)
        if hmac.compare_digest(expected.encode(), str(signature).encode()):
            return True
        # Port variants (Twilio signs with and without the default port): the library.
        return signature_is_valid(self.auth_token, url, MultiDict(form), str(signature))
