"""Login throttling: 5 failures in 15 minutes lock the account and the address, in Redis."""

from __future__ import annotations

import time

import redis
from flask import Flask
from flask.testing import FlaskClient

from ivr.app import create_app
from ivr.settings import Settings
from ivr.web.throttle import MAX_FAILURES, WINDOW_S, LoginThrottle
from tests.web.conftest import PASSWORD, csrf_of


def attempt(client: FlaskClient, name: str, password: str,
            address: str = "192.0.2.10") -> tuple[int, str]:
    token = csrf_of(client.get("/login").get_data(as_text=True))
    answer = client.post("/login", data={"username": name, "password": password,
                                         "csrf_token": token},
                         environ_base={"REMOTE_ADDR": address})
    return answer.status_code, answer.get_data(as_text=True)


def test_five_failures_lock_the_account_even_for_the_right_password(
        web_client: FlaskClient) -> None:
    for _ in range(MAX_FAILURES - 1):
        assert attempt(web_client, "ana", "wrong")[0] == 401
    status, html = attempt(web_client, "ana", "wrong")
    assert status == 429
    assert "Demasiados intentos fallidos: vuelva a intentarlo dentro de 15 minutos." in html
    status, html = attempt(web_client, "ana", PASSWORD, address="198.51.100.7")
    assert status == 429  # from another address too: the account is locked
    assert attempt(web_client, "sergi", PASSWORD, address="198.51.100.7")[0] == 302


def test_the_lock_holds_in_every_worker_process(web_client: FlaskClient,
                                                web_settings: Settings) -> None:
    for _ in range(MAX_FAILURES):
        attempt(web_client, "alba", "wrong")
    other_worker = create_app(web_settings).test_client()  # same Redis, another app
    status, html = attempt(other_worker, "alba", PASSWORD)
    assert status == 429 and "15" in html


def test_one_address_guessing_many_accounts_is_locked(web_client: FlaskClient) -> None:
    for name in ("ana", "sergi", "alba", "nobody", "root"):
        attempt(web_client, name, "wrong", address="203.0.113.5")
    assert attempt(web_client, "ana", PASSWORD, address="203.0.113.5")[0] == 429
    assert attempt(web_client, "ana", PASSWORD, address="203.0.113.6")[0] == 302


def test_success_resets_the_account_counter(web_client: FlaskClient, web_app: Flask) -> None:
    for _ in range(MAX_FAILURES - 1):
        attempt(web_client, "sergi", "wrong", address="192.0.2.20")
    login_ok = attempt(web_client, "sergi", PASSWORD, address="192.0.2.21")
    assert login_ok[0] == 302
    fresh = web_app.test_client()  # another browser, logged out
    for _ in range(MAX_FAILURES - 1):  # four more are fine again: the count restarted
        assert attempt(fresh, "sergi", "wrong", address="192.0.2.22")[0] == 401
    assert attempt(fresh, "sergi", PASSWORD, address="192.0.2.22")[0] == 302


def test_counters_expire_with_the_window(redis_client: redis.Redis, web_app: Flask) -> None:
    throttle = LoginThrottle(redis_client)
    for _ in range(MAX_FAILURES):
        assert throttle.attempt("ana", "192.0.2.30") is None
        lock = throttle.failed("ana", "192.0.2.30")
    assert lock is not None and 0 < lock.retry_after_s <= WINDOW_S and lock.minutes == 15
    assert throttle.attempt("ana", "192.0.2.30") is not None  # a sixth try is refused
    keys = list(redis_client.scan_iter("ivr:web:login-fail:*"))
    assert len(keys) == 2 and all(0 < redis_client.ttl(k) <= WINDOW_S for k in keys)
    assert not any("ana" in str(k) for k in keys)  # typed names are not stored in clear
    short = LoginThrottle(redis_client, max_failures=2, window_s=1)
    for _ in range(2):
        short.attempt("bea", "192.0.2.31")
    assert short.failed("bea", "192.0.2.31") is not None
    time.sleep(1.3)  # the window runs out: bea may try again
    assert short.attempt("bea", "192.0.2.31") is None


def test_parallel_guesses_cannot_pass_the_limit_together(redis_client: redis.Redis) -> None:
    throttle = LoginThrottle(redis_client)
    # Ten guesses arrive at once, before any of them has been checked and failed:
    # each is counted on arrival, so only the first MAX_FAILURES get to the password.
    allowed = [throttle.attempt("carla", f"198.51.100.{i}") is None for i in range(10)]
    assert allowed == [True] * MAX_FAILURES + [False] * (10 - MAX_FAILURES)


def test_behind_a_trusted_proxy_the_forwarded_client_is_counted(web_settings: Settings,
                                                                web_app: Flask) -> None:
    proxied = create_app(web_settings.with_(trust_forwarded=True)).test_client()

    def via_proxy(client: FlaskClient, name: str, password: str, client_ip: str) -> int:
        token = csrf_of(client.get("/login").get_data(as_text=True))
        return client.post("/login", data={"username": name, "password": password,
                                           "csrf_token": token},
                           headers={"X-Forwarded-For": f"6.6.6.{len(name)}, {client_ip}"},
                           environ_base={"REMOTE_ADDR": "10.0.0.1"}).status_code

    # One client guessing accounts, each time with a made-up first hop (ignored).
    for name in ("ana", "sergi", "alba", "nobody", "root"):
        via_proxy(proxied, name, "wrong", "203.0.113.9")
    assert via_proxy(proxied, "ana", PASSWORD, "203.0.113.9") == 429
    # Everyone else comes through the same proxy address and is not locked out.
    assert via_proxy(proxied.application.test_client(), "ana", PASSWORD, "198.51.100.4") == 302
