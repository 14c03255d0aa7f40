"""Checking ``X-Twilio-Signature``: a pure function plus a thin Flask decorator.

Twilio signs the full URL it requested (scheme, host, port if any, path, query)
followed by the sorted POST parameters. Behind a proxy or tunnel the URL Flask sees
is not the one Twilio requested, so the URL is rebuilt deliberately:
``IVR_PUBLIC_URL`` when set, else ``X-Forwarded-Proto``/``X-Forwarded-Host`` only when
``IVR_TRUST_FORWARDED=1``, else the request's own URL. Port variants (with and
without the default port) are accepted, as Twilio signs both ways.
"""

from __future__ import annotations

import functools
import hmac
import logging
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

from flask import Response, request
from twilio.request_validator import RequestValidator, get_signature_algorithm

from ivr.services import current

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])

_VALIDATORS: dict[str, RequestValidator] = {}

#: The base URL (scheme://host) Twilio requested for the webhook being answered, for
#: callback URLs we hand Twilio (recording status) when IVR_PUBLIC_URL is unset. Set by
#: the fast path (:mod:`ivr.fastpath`), which answers outside Flask's request context.
REQUEST_BASE: ContextVar[str | None] = ContextVar("request_base", default=None)


def public_base(public_url: str | None) -> str | None:
    """The base URL Twilio reaches us on, without a trailing slash: ``IVR_PUBLIC_URL``,
    else the one Twilio used for the webhook being answered (fast path or Flask view)."""
    base = public_url or REQUEST_BASE.get()
    if not base:
        from flask import has_request_context

        base = request.url_root if has_request_context() else ""
    return base.rstrip("/") if base else None


def signature_is_valid(auth_token: str, url: str, params: Mapping[str, Any] | str,
                       signature: str, algorithm: str | None = None) -> bool:
    """True when ``signature`` is Twilio's signature of ``url`` + ``params``."""
    if not signature:
        return False
    validator = _VALIDATORS.get(auth_token)
    if validator is None:
        validator = _VALIDATORS.setdefault(auth_token, RequestValidator(auth_token))
    try:
        if isinstance(params, str):  # JSON bodies: bodySHA256 in the query
            return bool(validator.validate(url, params, signature, algorithm))
        # The URL as requested first: one HMAC in the common case; the library's check
        # (with and without the default port) only when that fails.
        expected = validator.compute_signature(url, params, algorithm)
        if hmac.compare_digest(expected.encode(), signature.encode()):
            return True
        return bool(validator.validate(url, params, signature, algorithm))
    except (ValueError, TypeError, UnicodeError):
        return False


def signed_url(public_url: str | None, trust_forwarded: bool, url: str,
               headers: Mapping[str, str]) -> str:
    """The URL Twilio requested, as it would have signed it."""
    parts = urlsplit(url)
    if public_url:
        base = urlsplit(public_url)
        path = base.path.rstrip("/") + parts.path
        return urlunsplit((base.scheme, base.netloc, path, parts.query, ""))
    if trust_forwarded:
        scheme = headers.get("X-Forwarded-Proto", parts.scheme).split(",")[0].strip()
        host = headers.get("X-Forwarded-Host", parts.netloc).split(",")[0].strip()
        return urlunsplit((scheme or parts.scheme, host or parts.netloc, parts.path,
                           parts.query, ""))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, parts.query, ""))


def raw_url(environ: Mapping[str, Any]) -> str:
    """The URL as the client sent it (percent-encoding and query untouched: what Twilio
    signed), built cheaply from the WSGI environ (Flask views and the fast path alike)."""
    scheme = environ.get("wsgi.url_scheme", "http")
    host = environ.get("HTTP_HOST") or (
        f"{environ.get('SERVER_NAME', '')}:{environ.get('SERVER_PORT', '')}")
    base = f"{scheme}://{host}"
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")  # gunicorn / werkzeug
    if raw and raw.startswith("/"):
        return base + raw
    path = quote(environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""), safe="/:@!$&'()*+,;=-._~%")
    query = environ.get("QUERY_STRING", "")
    return f"{base}{path}?{query}" if query else base + path


def _request_is_signed() -> bool:
    settings = current().settings
    if not settings.validate_signature:
        return True
    token = settings.twilio_auth_token
    if not token:
        return False
    url = signed_url(settings.public_url, settings.trust_forwarded, raw_url(request.environ),
                     request.headers)
    params: Mapping[str, Any] | str
    if request.mimetype == "application/json":
        params = request.get_data(as_text=True)
    elif request.method == "POST":
        params = request.form  # a MultiDict: repeated names are signed each
    else:
        params = {}
    algorithm = get_signature_algorithm(
        request.headers.get("X-Twilio-Webhooks-Signature-Settings"))
    return signature_is_valid(token, url, params,
                              request.headers.get("X-Twilio-Signature", ""), algorithm)


def twilio_signed(view: F) -> F:
    """Refuse (403, nothing changed) a request whose Twilio signature is missing or wrong."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not _request_is_signed():
            log.warning("refused %s %s: missing or wrong X-Twilio-Signature",
                        request.method, request.path)
            return Response("invalid Twilio signature\n", status=403, mimetype="text/plain")
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
