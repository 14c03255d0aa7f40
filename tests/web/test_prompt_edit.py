"""Prompts edited in the table: only that language's lines of the YAML change."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from call_flows.loader import parse_flow
from ivr.web.flow_admin import FlowAdmin, FlowAdminError
from ivr.web.prompt_edit import apply_edit, apply_edits
from tests.web.conftest import login

WELCOME_ES = "Bienvenido al servicio de atención al cliente de Centralita."


def _demo(flows_dir: Path) -> str:
    return (flows_dir / "demo.yaml").read_text(encoding="utf-8")


def _changed(before: str, after: str) -> list[str]:
    return [d for d in difflib.unified_diff(before.splitlines(), after.splitlines(), n=0,
                                            lineterm="") if d[:1] in "+-" and d[:3] not in
            ("+++", "---")]


def _texts(text: str, node: str, key: str, valid: bool = True) -> dict[str, str]:
    flow, problems = parse_flow(text, "demo.yaml")
    assert (flow is not None) is valid, problems
    row = next(r for r in FlowAdmin.prompts(None, text)["rows"]  # type: ignore[arg-type]
               if r["node"] == node and r["key"] == key)
    return dict(row["texts"])


def test_one_text_changes_one_line_and_keeps_the_rest(flows_dir: Path) -> None:
    text = _demo(flows_dir)
    new = 'Hola: bienvenido a "Centralita" # sin comentario'
    edited = apply_edit(text, "welcome", "prompt", "es", new)
    added = '+      es: "Hola: bienvenido a \\"Centralita\\" # sin comentario"'
    assert _changed(text, edited) == [f'-      es: "{WELCOME_ES}"', added]
    assert _texts(edited, "welcome", "prompt")["es"] == new


def test_a_folded_block_is_replaced_whole(flows_dir: Path) -> None:
    text = _demo(flows_dir)
    edited = apply_edit(text, "closed_menu", "prompt", "ca", "Ara estem tancats.")
    removed = [d for d in _changed(text, edited) if d.startswith("-")]
    assert len(removed) == 5 and removed[0] == "-      ca: >-"
    texts = _texts(edited, "closed_menu", "prompt")
    assert texts["ca"] == "Ara estem tancats."
    assert texts["es"].startswith("En este momento estamos cerrados.")
    assert texts["en"].startswith("We're closed at the moment.")


def test_a_missing_translation_is_added_after_the_others(flows_dir: Path) -> None:
    text = _demo(flows_dir)
    without = apply_edit(text, "welcome", "prompt", "ca", "")
    assert "ca" not in _texts(without, "welcome", "prompt", valid=False)  # flagged missing
    restored = apply_edits(without, [{"node": "welcome", "key": "prompt", "lang": "ca",
                                      "value": "Benvinguts!"}])
    assert _texts(restored, "welcome", "prompt") == {
        "es": WELCOME_ES, "en": "Welcome to Centralita customer service.",
        "ca": "Benvinguts!"}
    assert restored.splitlines().index('      ca: "Benvinguts!"') == \
        restored.splitlines().index('      en: "Welcome to Centralita customer service."') + 1


def test_unknown_texts_are_refused(flows_dir: Path) -> None:
    with pytest.raises(FlowAdminError, match="no text nowhere.prompt"):
        apply_edit(_demo(flows_dir), "nowhere", "prompt", "es", "x")
    with pytest.raises(FlowAdminError, match="not a language code"):
        apply_edit(_demo(flows_dir), "welcome", "prompt", "es:\n  x", "x")


def test_saving_edits_makes_a_checked_draft(web_client: FlaskClient, web_app: Flask,
                                            flows_dir: Path) -> None:
    token = login(web_client, "ana")
    headers = {"X-CSRF-Token": token}
    text = _demo(flows_dir)
    edits = [{"node": "welcome", "key": "prompt", "lang": "es", "value": "¡Hola!"},
             {"node": "welcome", "key": "prompt", "lang": "en", "value": "Hello!"}]
    answer = web_client.post("/admin/flows/demo/prompts", json={"text": text, "edits": edits},
                             headers=headers)
    assert answer.status_code == 201, answer.get_json()
    body = answer.get_json()
    assert _texts(body["text"], "welcome", "prompt")["en"] == "Hello!"
    row = web_app.extensions["centralita"].get("database").flows.get("demo", body["version"])
    assert row["text"] == body["text"] and row["author"] == "ana" and not row["published"]
    assert _demo(flows_dir) == text  # a draft: the published flow is unchanged
    # Emptying a translation the flow needs is refused by the usual checks.
    refused = web_client.post("/admin/flows/demo/prompts", json={"text": text, "edits": [
        {"node": "welcome", "key": "prompt", "lang": "ca", "value": ""}]}, headers=headers)
    assert refused.status_code == 400 and refused.get_json()["problems"]


def test_the_table_has_a_labelled_box_per_language(web_client: FlaskClient) -> None:
    login(web_client, "ana")
    html = web_client.get("/admin/flows/demo").get_data(as_text=True)
    assert 'aria-label="welcome prompt ca"' in html and 'id="save-prompts"' in html
