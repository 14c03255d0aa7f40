"""Logins, roles and CSRF on the web pages (Flask test client, real Redis and SQLite)."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from ivr.web.i18n import STRINGS
from tests.web.conftest import csrf_of, login

PAGES = ("/admin/flows", "/agent", "/dashboard")


@pytest.mark.parametrize("path", PAGES)
def test_pages_redirect_to_login_without_a_session(web_client: FlaskClient, path: str) -> None:
    answer = web_client.get(path)
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith("/login?next=" + path)


@pytest.mark.parametrize(("user", "allowed", "refused"), [
    ("ana", PAGES, ()),
    ("sergi", ("/dashboard",), ("/admin/flows", "/agent")),
    ("alba", ("/agent",), ("/admin/flows", "/dashboard")),
])
def test_each_role_sees_its_pages_only(web_client: FlaskClient, user: str,
                                       allowed: tuple[str, ...], refused: tuple[str, ...]
                                       ) -> None:
    login(web_client, user)
    for path in allowed:
        assert web_client.get(path).status_code == 200, path
    for path in refused:
        answer = web_client.get(path)
        assert answer.status_code == 403, path
        assert "not for your role" in answer.get_data(as_text=True) or \
            "no es para su rol" in answer.get_data(as_text=True)


def test_login_lands_on_the_role_home_and_honours_next(web_client: FlaskClient) -> None:
    token = csrf_of(web_client.get("/login").get_data(as_text=True))
    answer = web_client.post("/login", data={"username": "sergi", "password": "correct horse battery",
                                             "csrf_token": token, "next": "/dashboard?x=1"})
    assert answer.headers["Location"] == "/dashboard?x=1"


def test_next_cannot_leave_the_site_or_the_role(web_app: Flask) -> None:
    for target in ("https://evil.example/", "//evil.example/", "/admin/flows"):
        web_client = web_app.test_client()
        token = csrf_of(web_client.get("/login").get_data(as_text=True))
        answer = web_client.post("/login", data={"username": "alba",
                                                 "password": "correct horse battery",
                                                 "csrf_token": token, "next": target})
        assert answer.headers["Location"] == "/agent", target


def test_wrong_password_is_refused_without_a_session(web_client: FlaskClient) -> None:
    token = csrf_of(web_client.get("/login").get_data(as_text=True))
    answer = web_client.post("/login", data={"username": "ana", "password": "nope-nope-nope",
                                             "csrf_token": token})
    assert answer.status_code == 401
    assert web_client.get("/admin/flows").status_code == 302


def test_post_without_csrf_token_is_refused(web_client: FlaskClient) -> None:
    web_client.get("/login")
    answer = web_client.post("/login", data={"username": "ana",
                                             "password": "correct horse battery"})
    assert answer.status_code == 403
    assert web_client.get("/admin/flows").status_code == 302  # not logged in
    token = login(web_client, "ana")
    refused = web_client.post("/admin/flows/demo/check", json={"text": "flow: demo"},
                              headers={"X-CSRF-Token": "forged"})
    assert refused.status_code == 403
    assert refused.get_json()["error"] == "csrf"
    accepted = web_client.post("/admin/flows/demo/check", json={"text": "flow: demo"},
                               headers={"X-CSRF-Token": token})
    assert accepted.status_code == 200


def test_session_cookie_is_httponly_and_samesite_lax(web_client: FlaskClient) -> None:
    answer = web_client.get("/login")
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_logout_revokes_the_session_and_its_page_token(web_client: FlaskClient) -> None:
    token = login(web_client, "alba")
    page = web_client.get("/agent").get_data(as_text=True)
    api_token = page.split('"token": "')[1].split('"')[0]
    bearer = {"Authorization": f"Bearer {api_token}"}
    assert web_client.get("/api/queues", headers=bearer).status_code == 200
    cookie = web_client.get_cookie("session")
    assert cookie is not None
    web_client.post("/logout", data={"csrf_token": token})
    assert web_client.get("/agent").status_code == 302
    assert web_client.get("/api/queues", headers=bearer).status_code == 401
    # Replaying the old cookie does not bring the session back: it lived in Redis.
    web_client.set_cookie("session", cookie.value)
    assert web_client.get("/agent").status_code == 302


def test_page_token_carries_the_role(web_client: FlaskClient) -> None:
    login(web_client, "alba")
    page = web_client.get("/agent").get_data(as_text=True)
    api_token = page.split('"token": "')[1].split('"')[0]
    bearer = {"Authorization": f"Bearer {api_token}"}
    assert web_client.get("/api/agents", headers=bearer).status_code == 403  # supervisors only


def test_language_switcher_changes_the_interface(web_client: FlaskClient) -> None:
    token = csrf_of(web_client.get("/login").get_data(as_text=True))
    web_client.post("/lang", data={"lang": "ca", "csrf_token": token, "next": "/login"})
    html = web_client.get("/login").get_data(as_text=True)
    assert 'lang="ca"' in html and STRINGS["ca"]["login_title"] in html
    web_client.post("/lang", data={"lang": "en", "csrf_token": token, "next": "/login"})
    assert STRINGS["en"]["login_title"] in web_client.get("/login").get_data(as_text=True)


def test_every_language_has_every_string() -> None:
    keys = set(STRINGS["en"])
    for lang, table in STRINGS.items():
        assert set(table) == keys, (lang, keys ^ set(table))


def test_pages_send_a_strict_content_security_policy(web_client: FlaskClient) -> None:
    answer = web_client.get("/login")
    policy = answer.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "<script>" not in answer.get_data(as_text=True)  # no inline code to allow
