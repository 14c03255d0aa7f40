"""The flow editor's JSON helpers: check, graph, prompts, simulate, save, publish, roll back."""

from __future__ import annotations

import re
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from call_flows.testing import FlowHarness
from tests.web.conftest import login

GOODBYE_ES = "Gracias por llamar a Centralita. ¡Que tenga un buen día!"
NEW_GOODBYE = "Gracias por llamar. ¡Hasta pronto!"


def _demo(flows_dir: Path) -> str:
    return (flows_dir / "demo.yaml").read_text(encoding="utf-8")


def _edited(text: str) -> str:
    version = next(line for line in text.splitlines() if line.startswith("version:"))
    return text.replace(GOODBYE_ES, NEW_GOODBYE).replace(version, 'version: "web-test.2"')


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_check_reports_each_problem_at_its_line(web_client: FlaskClient, flows_dir: Path) -> None:
    token = login(web_client, "ana")
    text = _demo(flows_dir)
    broken = text.replace("next: anything_else", "next: anything_elze", 1)
    answer = web_client.post("/admin/flows/demo/check", json={"text": broken},
                             headers={"X-CSRF-Token": token}).get_json()
    assert answer["svg"] is None
    problem = next(p for p in answer["problems"] if "anything_elze" in p["message"])
    assert problem["line"] == _line_of(broken, "next: anything_elze")
    assert problem["in_draft"] and problem["file"] == "demo.yaml"
    fine = web_client.post("/admin/flows/demo/check", json={"text": text},
                           headers={"X-CSRF-Token": token}).get_json()
    assert fine["problems"] == []
    assert 'data-node="main_menu"' in fine["svg"] and 'data-node="goodbye"' in fine["svg"]


def test_check_uses_the_cross_file_checks_of_ivr_flows_check(web_client: FlaskClient,
                                                              flows_dir: Path) -> None:
    token = login(web_client, "ana")
    text = (flows_dir / "password_help.yaml").read_text(encoding="utf-8")
    renamed = text.replace("flow: password_help", "flow: password_help2", 1)
    answer = web_client.post("/admin/flows/password_help/check", json={"text": renamed},
                             headers={"X-CSRF-Token": token}).get_json()
    messages = [p["message"] for p in answer["problems"]]
    # demo.yaml's goto now points nowhere: found in the other file, as the CLI would.
    assert any("no flow named 'password_help'" in m for m in messages), messages


def test_prompts_table_flags_missing_translations(web_client: FlaskClient,
                                                  flows_dir: Path) -> None:
    token = login(web_client, "ana")
    text = _demo(flows_dir)
    catalan = next(line for line in text.splitlines()
                   if line.strip().startswith("ca:") and "Gràcies per trucar a Centralita" in line)
    answer = web_client.post("/admin/flows/demo/check",
                             json={"text": text.replace(catalan + "\n", "")},
                             headers={"X-CSRF-Token": token}).get_json()
    assert re.search(r'<td lang="ca" class="missing">\s*<strong[^>]*>falta</strong>\s*'
                     r'<textarea[^>]*data-lang="ca"[^>]*></textarea>', answer["prompts_html"])
    assert answer["problems"], "the checker refuses a missing translation too"


def test_simulator_runs_the_draft_not_the_published_flow(web_client: FlaskClient,
                                                         flows_dir: Path) -> None:
    token = login(web_client, "ana")
    text = _edited(_demo(flows_dir))
    script = [{"press": "1"}, {"press": "*"}]
    answer = web_client.post("/admin/flows/demo/simulate",
                             json={"text": text, "inputs": script},
                             headers={"X-CSRF-Token": token})
    assert answer.status_code == 200, answer.get_json()
    turns = answer.get_json()["turns"]
    assert turns[0]["node"] == "choose_language"
    assert "Para español, pulse 1 o diga español." in turns[0]["heard"]
    assert turns[1]["language"] == "es"
    assert [t["input"] for t in turns] == ["call", "press 1", "press *"]


def test_save_publish_and_roll_back(web_client: FlaskClient, web_app: Flask,
                                    flows_dir: Path) -> None:
    token = login(web_client, "ana")
    headers = {"X-CSRF-Token": token}
    registry = web_app.extensions["centralita"].get("flows")
    before = registry.current("demo").version
    original = _demo(flows_dir)
    bad = web_client.post("/admin/flows/demo/versions", json={"text": "flow: demo\n"},
                          headers=headers)
    assert bad.status_code == 400 and "line" in bad.get_json()["detail"]
    saved = web_client.post("/admin/flows/demo/versions", json={"text": _edited(original)},
                            headers=headers)
    assert saved.status_code == 201
    number = saved.get_json()["version"]
    assert registry.current("demo").version == before  # a draft changes nothing yet

    published = web_client.post(f"/admin/flows/demo/versions/{number}/publish", headers=headers)
    assert published.status_code == 200, published.get_json()
    assert registry.current("demo").version == "web-test.2"
    assert NEW_GOODBYE in _demo(flows_dir)
    assert registry.get("demo", before) is not None  # calls in progress keep theirs
    call = FlowHarness(registry).call()
    assert call.session is not None and call.session.flow_version == "web-test.2"

    versions = web_client.get("/admin/flows/demo/versions").get_json()["versions"]
    assert [v["published"] for v in versions if v["version"] == number] == [True]
    first = min(v["version"] for v in versions)
    assert {v["author"] for v in versions} >= {"ana", "file"}
    rolled = web_client.post(f"/admin/flows/demo/versions/{first}/publish", headers=headers)
    assert rolled.status_code == 200
    assert registry.current("demo").version == before
    assert _demo(flows_dir) == original
    audit = web_app.extensions["centralita"].get("database").audit.entries("flow", "demo")
    assert [e["action"] for e in audit][-3:] == ["flow.save", "flow.publish", "flow.publish"]


def test_editor_page_shows_graph_yaml_and_versions(web_client: FlaskClient) -> None:
    login(web_client, "ana")
    html = web_client.get("/admin/flows/demo").get_data(as_text=True)
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="flow-graph"' in html
    assert "flow: demo" in html and 'id="versions"' in html
    index = web_client.get("/admin/flows").get_data(as_text=True)
    assert "+34930001000" in index and "mon 09:00-18:00" in index
