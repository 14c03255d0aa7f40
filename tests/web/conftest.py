"""Fixtures for the web pages: an app on real Redis and SQLite with a writable copy of
the shipped flows, three users (admin, supervisor, agent), and logged-in clients."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from call_flows.registry import DEFAULT_DIR
from ivr.app import create_app
from ivr.settings import Settings

PASSWORD = "correct horse battery"
USERS = {"ana": "admin", "sergi": "supervisor", "alba": "agent"}


@pytest.fixture()
def flows_dir(tmp_path: Path) -> Path:
    target = tmp_path / "flows"
    shutil.copytree(DEFAULT_DIR, target)
    return target


@pytest.fixture()
def web_settings(data_dir: Path, redis_url: str, flows_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, redis_url=redis_url, twilio_auth_token="test-token",
                    admin_token="admin-secret", secret_key="web-test-secret",
                    flows_dir=flows_dir)


@pytest.fixture()
def web_app(web_settings: Settings) -> Iterator[Flask]:
    app = create_app(web_settings)
    app.config["TESTING"] = True
    database = app.extensions["centralita"].get("database")
    for name, role in USERS.items():
        database.users.add(name, role, password=PASSWORD)
    yield app
    writer = app.extensions["centralita"].components.get("writer")
    if writer is not None:
        writer.flush(5)


@pytest.fixture()
def web_client(web_app: Flask) -> FlaskClient:
    return web_app.test_client()


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert found, "the page has no CSRF meta tag"
    return found.group(1)


def login(client: FlaskClient, name: str, password: str = PASSWORD) -> str:
    """Log in through the form; returns the CSRF token of the new session."""
    page = client.get("/login")
    token = csrf_of(page.get_data(as_text=True))
    answer = client.post("/login", data={"username": name, "password": password,
                                         "csrf_token": token})
    assert answer.status_code == 302, answer.get_data(as_text=True)
    landed = client.get(answer.headers["Location"])
    return csrf_of(landed.get_data(as_text=True))
