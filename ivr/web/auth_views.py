"""Logging in and out, the language switcher, and what every page template gets."""

from __future__ import annotations

from typing import Any

from flask import (
    Response,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from ivr.services import current
from ivr.web import bp
from ivr.web.i18n import LANGUAGE_NAMES, LANGUAGES, language, t
from ivr.web.session import (
    CsrfError,
    check_csrf,
    csrf_token,
    current_user,
    home_for,
    log_in,
    log_out,
    safe_next,
)
from ivr.web.throttle import LoginThrottle

MAX_FIELD = 200
#: Pages each role may be sent back to after logging in (admins: any).
ROLE_PATHS = {"supervisor": ("/dashboard", "/admin/agents"), "agent": ("/agent",)}


@bp.before_request
def _csrf() -> None:
    check_csrf()


# Scripts only from our own files (the inline JSON blocks are data, not code); styles
# may be set by the scripts (chart bars); no framing (clickjacking).
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; "
                               "style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                               "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


@bp.after_request
def _security_headers(response: Response) -> Response:
    for header, value in SECURITY_HEADERS.items():
        response.headers.setdefault(header, value)
    if response.mimetype == "text/html":
        response.headers.setdefault("Cache-Control", "no-store")
    return response


@bp.errorhandler(CsrfError)
def _csrf_refused(exc: CsrfError) -> Any:
    if request.is_json or request.headers.get("X-CSRF-Token") is not None:
        return jsonify(error="csrf", detail=str(exc)), 403
    return render_template("web/forbidden.html", message=t("csrf_failed"),
                           home=url_for("web.login")), 403


@bp.app_context_processor
def _template_globals() -> dict[str, Any]:
    return {"t": t, "csrf_token": csrf_token, "web_user": current_user,
            "ui_lang": language, "LANGUAGES": LANGUAGES, "LANGUAGE_NAMES": LANGUAGE_NAMES}


@bp.get("/login")
def login() -> Any:
    user = current_user()
    if user is not None and request.args.get("next") is None:
        return redirect(home_for(user))
    return render_template("web/login.html", next=safe_next(request.args.get("next")) or "")


@bp.post("/login")
def login_post() -> Any:
    name = request.form.get("username", "").strip()[:MAX_FIELD]
    password = request.form.get("password", "")[:MAX_FIELD]
    target = safe_next(request.form.get("next"))
    database = current().components.get("database")
    throttle = LoginThrottle(current().redis)
    address = _client_address()
    lock = throttle.attempt(name, address)
    if lock is not None:
        return _locked(lock.minutes, name, target)
    found = database.users.verify_password(name, password) if database and name else None
    if database is None or found is None:
        lock = throttle.failed(name, address)
        if lock is not None:
            return _locked(lock.minutes, name, target)
        return render_template("web/login.html", next=target or "", error=t("login_failed"),
                               username=name), 401
    throttle.succeeded(name, address)
    user = log_in(found.name, found.role, found.agent_id)
    database.audit.write(found.name, "web.login", "user", str(found.id))
    if target and (user.role == "admin" or target.startswith(ROLE_PATHS.get(user.role, ()))):
        return redirect(target)
    return redirect(home_for(user))


def _locked(minutes: int, name: str, target: str | None) -> Any:
    answer = render_template("web/login.html", next=target or "", username=name,
                             error=t("too_many_attempts", n=minutes))
    return answer, 429, {"Retry-After": str(minutes * 60)}


@bp.post("/logout")
def logout() -> Any:
    log_out()
    flash(t("logged_out"))
    return redirect(url_for("web.login"))


@bp.post("/lang")
def set_language() -> Any:
    chosen = request.form.get("lang", "")
    if chosen in LANGUAGES:
        session["lang"] = chosen
    return redirect(safe_next(request.form.get("next")) or url_for("web.login"))


def _client_address() -> str:
    """Who is trying to log in: behind a trusted proxy (IVR_TRUST_FORWARDED=1) the address
    that proxy appended (the last X-Forwarded-For hop: earlier ones are whatever the client
    sent), else the connection's address."""
    if current().settings.trust_forwarded:
        forwarded = request.headers.get("X-Forwarded-For", "").split(",")[-1].strip()
        if forwarded:
            return forwarded[:64]
    return request.remote_addr or "unknown"
