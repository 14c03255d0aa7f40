"""/admin/queues: queue rules as a form, checked by queueing.rules, applied without restart."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import yaml
from flask import Flask
from flask.testing import FlaskClient

from ivr.app import create_app
from ivr.settings import Settings
from queueing.rules import load_rules
from tests.web.conftest import login


def rules_form(token: str, **changes: Any) -> dict[str, Any]:
    """Default rules plus a 'support' queue, as the page posts them."""
    data: dict[str, Any] = {
        "csrf_token": token, "action": "publish",
        "q0-name": "default", "q0-wrap_up_s": "30", "q0-reservation_timeout_s": "20",
        "q0-agent_order": "most_skilled",
        "q0-step-after_s": ["60", "300", ""], "q0-step-min_level": ["1", "", ""],
        "q0-step-raise_priority": ["", "1", ""], "q0-step-overflow_to": ["", "general", ""],
        "q0-step-offer_voicemail": ["", "yes", ""],
        "q1-name": "support", "q1-wrap_up_s": "45", "q1-head_start_s": "2=90",
        "q1-step-after_s": [""], "q1-step-min_level": [""], "q1-step-raise_priority": [""],
        "q1-step-overflow_to": [""], "q1-step-offer_voicemail": [""],
        "q2-name": "",  # the blank "new queue" block
    }
    data.update(changes)
    return data


def test_page_says_where_the_rules_live_when_ivr_queues_file_is_unset(
        web_client: FlaskClient, data_dir: Path) -> None:
    login(web_client, "ana")
    html = web_client.get("/admin/queues").get_data(as_text=True)
    assert "IVR_QUEUES_FILE" in html and str(data_dir / "queues.yaml") in html
    assert '<label for="q0-wrap_up_s">' in html and 'placeholder="30.0"' in html


def test_publish_applies_the_rules_to_the_running_router(web_client: FlaskClient,
                                                         web_app: Flask, data_dir: Path,
                                                         web_settings: Settings) -> None:
    token = login(web_client, "ana")
    store = web_app.extensions["centralita"].get("queue")
    assert store.rules().for_queue("support").wrap_up_s == 30.0
    answer = web_client.post("/admin/queues", data=rules_form(token))
    assert answer.status_code == 302, answer.get_data(as_text=True)
    path = data_dir / "queues.yaml"
    on_disk = load_rules(path)
    live = store.rules()  # what every worker process and the Lua router read
    support = live.for_queue("support")
    assert support.wrap_up_s == 45.0 and dict(support.head_start_s) == {2: 90.0}
    assert [(s.after_s, s.min_level, s.overflow_to, s.offer_voicemail)
            for s in support.steps] == [(60, 1, None, False), (300, None, "general", True)]
    assert live.for_queue("support") == on_disk.for_queue("support")
    assert live.for_queue("billing") == on_disk.default  # a queue without rules: default
    # The page shows what it saved, and a restarted server loads the same file.
    html = web_client.get("/admin/queues").get_data(as_text=True)
    assert re.search(r'name="q1-wrap_up_s" value="45"', html)
    store.configure(type(live)())  # forget them in Redis: only the file remains
    create_app(web_settings)
    assert store.rules().for_queue("support").wrap_up_s == 45.0
    versions = web_app.extensions["centralita"].get("database").flows.versions("@queues")
    assert [(v["author"], v["published"]) for v in versions] == [("ana", True)]


def test_errors_are_shown_next_to_the_field(web_client: FlaskClient, data_dir: Path) -> None:
    token = login(web_client, "ana")
    bad_number = web_client.post("/admin/queues", data=rules_form(token, **{
        "q1-wrap_up_s": "cuarenta"}))
    assert bad_number.status_code == 400
    html = bad_number.get_data(as_text=True)
    assert re.search(r'id="q1-wrap_up_s-error">[^<]*&#39;cuarenta&#39; is not a number', html)
    assert 'aria-describedby="q1-wrap_up_s-error"' in html
    # queueing.rules' own checks: priority beyond the maximum, a queue overflowing to itself
    too_high = web_client.post("/admin/queues", data=rules_form(token, **{
        "q1-step-after_s": ["30"], "q1-step-raise_priority": ["99"]}))
    assert too_high.status_code == 400
    assert re.search(r'id="q1-step_0-error">[^<]*raise_priority: expected an integer',
                     too_high.get_data(as_text=True))
    itself = web_client.post("/admin/queues", data=rules_form(token, **{
        "q1-step-after_s": ["30"], "q1-step-overflow_to": ["support"]}))
    assert itself.status_code == 400
    assert "overflows to itself" in itself.get_data(as_text=True)
    assert not (data_dir / "queues.yaml").exists()


def test_new_queue_draft_then_roll_back(web_client: FlaskClient, web_app: Flask,
                                        tmp_path: Path, monkeypatch: Any) -> None:
    target = tmp_path / "rules" / "queues.yaml"
    services = web_app.extensions["centralita"]
    monkeypatch.setattr(services, "settings",
                        dataclasses.replace(services.settings, queues_file=target))
    token = login(web_client, "ana")
    assert str(target) in web_client.get("/admin/queues").get_data(as_text=True)
    first = web_client.post("/admin/queues", data=rules_form(token))
    assert first.status_code == 302
    draft = web_client.post("/admin/queues", data=rules_form(token, **{
        "action": "draft", "q2-name": "billing", "q2-wrap_up_s": "60",
        "q2-no_steps": "1"}))
    assert draft.status_code == 302
    store = services.get("queue")
    assert "billing" not in store.rules().queues  # a draft is not applied
    versions = services.get("database").flows.versions("@queues")
    assert [v["published"] for v in versions] == [True, False]
    saved = yaml.safe_load(versions[-1]["text"])
    assert saved["queues"]["billing"] == {"wrap_up_s": 60, "steps": []}
    web_client.post(f"/admin/queues/versions/{versions[-1]['version']}/publish",
                    data={"csrf_token": token})
    billing = store.rules().for_queue("billing")
    assert billing.wrap_up_s == 60.0 and billing.steps == ()
    web_client.post(f"/admin/queues/versions/{versions[0]['version']}/publish",
                    data={"csrf_token": token})
    assert "billing" not in store.rules().queues
    assert "billing" not in yaml.safe_load(target.read_text(encoding="utf-8"))["queues"]


def test_only_admins_edit_queue_rules(web_client: FlaskClient) -> None:
    token = login(web_client, "sergi")
    assert web_client.get("/admin/queues").status_code == 403
    assert web_client.post("/admin/queues", data=rules_form(token)).status_code == 403


def test_hold_announcements_per_queue(web_client: FlaskClient, web_app: Flask,
                                      data_dir: Path) -> None:
    token = login(web_client, "ana")
    html = web_client.get("/admin/queues").get_data(as_text=True)
    assert '<label for="q0-announce_every_s">Avisar cada</label>' in html
    assert 'placeholder="30"' in html and '<label for="q0-announce_estimate">' in html
    answer = web_client.post("/admin/queues", data=rules_form(token, **{
        "q1-announce_every_s": "60", "q1-announce_estimate": "no",
        "q0-announce_position": "yes"}))
    assert answer.status_code == 302, answer.get_data(as_text=True)
    saved = yaml.safe_load((data_dir / "queues.yaml").read_text(encoding="utf-8"))
    assert saved["queues"]["support"]["announce_every_s"] == 60
    assert saved["queues"]["support"]["announce_estimate"] is False
    assert "announce_estimate" not in saved["default"]  # empty: the built-in value
    support = web_app.extensions["centralita"].get("queue").rules().for_queue("support")
    assert (support.announce_every_s, support.announce_position,
            support.announce_estimate) == (60, True, False)
    html = web_client.get("/admin/queues").get_data(as_text=True)
    assert re.search(r'name="q1-announce_every_s" value="60"', html)
    assert re.search(r'name="q1-announce_estimate".*?<option value="no" selected>', html, re.DOTALL)


def test_hold_announcement_errors_at_their_field(web_client: FlaskClient,
                                                 data_dir: Path) -> None:
    token = login(web_client, "ana")
    for value, text in [("10", "expected whole seconds 15..300, got 10"),
                        ("30.5", "expected whole seconds 15..300, got 30.5"),
                        ("soon", "&#39;soon&#39; is not a number")]:
        answer = web_client.post("/admin/queues", data=rules_form(token, **{
            "q1-announce_every_s": value}))
        assert answer.status_code == 400
        html = answer.get_data(as_text=True)
        assert re.search(rf'id="q1-announce_every_s-error">[^<]*{text}', html), value
        assert 'aria-describedby="q1-announce_every_s-error"' in html
    odd = web_client.post("/admin/queues", data=rules_form(token, **{
        "q0-announce_position": "maybe"}))
    assert re.search(r'id="q0-announce_position-error">choose yes or no',
                     odd.get_data(as_text=True))
    assert not (data_dir / "queues.yaml").exists()


def test_infinite_or_nan_numbers_are_field_errors_not_crashes() -> None:
    from ivr.web.queues_admin import QueueForm, queue_data

    for bad in ("inf", "-inf", "nan", "1e999"):
        form = QueueForm("default", values={"callback_max_attempts": bad, "wrap_up_s": bad})
        queue_data(form)
        assert "wrap_up_s" in form.errors and "callback_max_attempts" in form.errors


def test_a_save_built_on_an_old_version_is_refused(web_client: FlaskClient) -> None:
    import re

    token = login(web_client, "ana")
    page = web_client.get("/admin/queues").get_data(as_text=True)
    base = re.search(r'name="base_version" value="([^"]*)"', page)
    assert base is not None
    assert web_client.post("/admin/queues", data=rules_form(
        token, base_version=base[1])).status_code == 302
    late = web_client.post("/admin/queues", data=rules_form(token, base_version=base[1]))
    assert late.status_code == 409 and "mientras usted editaba" in late.get_data(as_text=True)
