"""Web logins: server-side sessions in Redis, CSRF tokens, roles, page API tokens.

The browser's cookie (Flask's signed session, HttpOnly, SameSite=Lax) carries only a
random session id, the CSRF token and the chosen language. Who is logged in lives in
Redis (``ivr:web:session:{sid}``, expiring after ``SESSION_TTL_S`` of inactivity), so
logging out revokes the session everywhere at once.

Every POST/PUT/DELETE to a page route must carry the CSRF token (form field
``csrf_token`` or header ``X-CSRF-Token``). The pages' JavaScript calls the JSON API
(``/api/...``) with a bearer token minted per session (``ivrweb_...``): a browser never
sends a bearer token on its own, so those calls need no CSRF token, and the token dies
with the session.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlparse

from flask import abort, g, jsonify, redirect, render_template, request, session, url_for
from flask.blueprints import BlueprintSetupState

from ivr.services import Principal, current

F = TypeVar("F", bound=Callable[..., Any])

SESSION_TTL_S = 8 * 3600
WEB_TOKEN_PREFIX = "ivrweb_"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: Where each role lands after logging in; admins may open every page.
HOME = {"admin": "web.flows_index", "supervisor": "web.dashboard", "agent": "web.agent"}


class CsrfError(Exception):
    """A state-changing request without the session's CSRF token."""


@dataclass(frozen=True)
class WebUser:
    name: str
    role: str
    agent_id: str | None
    sid: str
    api_token: str

    def may(self, *roles: str) -> bool:
        return self.role == "admin" or self.role in roles


def _key(sid: str) -> str:
    return f"ivr:web:session:{sid}"


def _token_key(token: str) -> str:
    return "ivr:web:token:" + hashlib.sha256(token.encode()).hexdigest()


# --------------------------------------------------------------------------- CSRF


def csrf_token() -> str:
    token = session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return str(token)


def check_csrf() -> None:
    if request.method not in UNSAFE:
        return
    expected = session.get("csrf")
    given = request.headers.get("X-CSRF-Token") or request.form.get("csrf_token") or ""
    if not expected or not hmac.compare_digest(str(expected), given):
        raise CsrfError("missing or wrong CSRF token: reload the page and try again")


# --------------------------------------------------------------------------- sessions


def log_in(name: str, role: str, agent_id: str | None) -> WebUser:
    """Start a fresh session (a new id: no session fixation) for a verified user."""
    client = current().redis
    sid = secrets.token_urlsafe(24)
    api_token = WEB_TOKEN_PREFIX + secrets.token_urlsafe(32)
    lang = session.get("lang")
    session.clear()
    session.update(sid=sid, csrf=secrets.token_urlsafe(32))
    if lang:
        session["lang"] = lang
    pipe = client.pipeline()
    pipe.hset(_key(sid), mapping={"name": name, "role": role, "agent_id": agent_id or "",
                                  "api": api_token, "since": str(int(time.time()))})
    pipe.expire(_key(sid), SESSION_TTL_S)
    pipe.set(_token_key(api_token), sid, ex=SESSION_TTL_S)
    pipe.execute()
    user = WebUser(name, role, agent_id, sid, api_token)
    g.web_user = user
    return user


def log_out() -> None:
    sid = session.get("sid")
    if sid:
        client = current().redis
        api = client.hget(_key(sid), "api")
        pipe = client.pipeline()
        pipe.delete(_key(sid))
        if api:
            pipe.delete(_token_key(str(api)))
        pipe.execute()
    lang = session.get("lang")
    session.clear()
    g.web_user = None
    if lang:
        session["lang"] = lang


def _load(sid: str) -> WebUser | None:
    client = current().redis
    data: Any = client.hgetall(_key(sid))
    if not data or not data.get("name"):
        return None
    pipe = client.pipeline()  # sliding expiry: an active user stays logged in
    pipe.expire(_key(sid), SESSION_TTL_S)
    pipe.expire(_token_key(data["api"]), SESSION_TTL_S)
    pipe.execute()
    return WebUser(data["name"], data["role"], data.get("agent_id") or None, sid, data["api"])


def current_user() -> WebUser | None:
    if "web_user" not in g:
        sid = session.get("sid")
        g.web_user = _load(str(sid)) if sid else None
    user: WebUser | None = g.web_user
    return user


def principal_for_web_token(token: str) -> Principal | None:
    """Resolve a page's bearer token to its user while the session lives."""
    if not token.startswith(WEB_TOKEN_PREFIX):
        return None
    sid = current().redis.get(_token_key(token))
    user = _load(str(sid)) if sid else None
    if user is None or not hmac.compare_digest(user.api_token, token):
        return None
    return Principal(name=user.name, role=user.role, agent_id=user.agent_id)


def safe_next(target: str | None) -> str | None:
    """Only same-site paths may be a redirect target after logging in."""
    if not target:
        return None
    parsed = urlparse(target)
    if parsed.scheme or parsed.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


def home_for(user: WebUser) -> str:
    return url_for(HOME.get(user.role, "web.login"))


# --------------------------------------------------------------------------- decorators


def page(*roles: str) -> Callable[[F], F]:
    """An HTML page for ``roles`` (admins always): no session -> /login, else 403."""
    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            user = current_user()
            if user is None:
                return redirect(url_for("web.login", next=request.full_path.rstrip("?")))
            if not user.may(*roles):
                return render_template("web/forbidden.html", home=home_for(user)), 403
            return view(*args, **kwargs)
        return wrapper  # type: ignore[return-value]
    return decorate


def json_view(*roles: str) -> Callable[[F], F]:
    """A JSON helper for the pages: 401 without a session, 403 outside the roles."""
    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            user = current_user()
            if user is None:
                return jsonify(error="unauthorized", detail="log in again"), 401
            if not user.may(*roles):
                return jsonify(error="forbidden", detail=f"not for role {user.role!r}"), 403
            return view(*args, **kwargs)
        return wrapper  # type: ignore[return-value]
    return decorate


def require_user() -> WebUser:
    user = current_user()
    if user is None:
        abort(401)
    return user


# --------------------------------------------------------------------------- wiring


def install(state: BlueprintSetupState) -> None:
    """Cookie flags and the page-token lookup, once per app."""
    app = state.app
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    services = app.extensions.get("centralita")
    if services is None:
        return
    if (services.settings.public_url or "").startswith("https://"):
        app.config["SESSION_COOKIE_SECURE"] = True  # served over TLS: never send it in clear
    users_lookup = services.lookup_token

    def lookup(token: str) -> Principal | None:
        if token.startswith(WEB_TOKEN_PREFIX):
            return principal_for_web_token(token)
        return users_lookup(token)

    services.lookup_token = lookup
