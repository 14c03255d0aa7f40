"""/admin/flows: lines and flows, the graph beside the YAML, editor, simulator, versions.

Thin views over :class:`ivr.web.flow_admin.FlowAdmin`; the JSON helpers are for the
editor page's script (session + CSRF header), admins only.
"""

from __future__ import annotations

from typing import Any

from flask import jsonify, render_template, request

from ivr.services import current
from ivr.web import bp
from ivr.web.flow_admin import MAX_TEXT, FlowAdmin, FlowAdminError
from ivr.web.graph import svg
from ivr.web.i18n import strings, t
from ivr.web.prompt_edit import apply_edits
from ivr.web.session import json_view, page, require_user

JS_STRINGS = ("valid", "problems", "saved", "published_ok", "sim_node", "sim_ended",
              "missing", "error", "not_publishable", "unchanged_version", "rollback",
              "published", "draft", "open", "publish", "prompts_saved")


def admin() -> FlowAdmin:
    services = current()
    return FlowAdmin(services.get("flows"), services.get("database"),
                     services.components.get("flow_sync"))


def _text() -> str:
    body = request.get_json(silent=True)
    text = body.get("text") if isinstance(body, dict) else None
    if not isinstance(text, str):
        raise FlowAdminError('send JSON {"text": "<the flow YAML>"}')
    if len(text) > MAX_TEXT:
        raise FlowAdminError(f"the text is too long (over {MAX_TEXT} characters)")
    return text


@bp.errorhandler(FlowAdminError)
def _refused(exc: FlowAdminError) -> Any:
    return jsonify(error="refused", detail=str(exc)), 400


@bp.get("/admin/flows")
@page("admin")
def flows_index() -> Any:
    return render_template("web/flows_index.html", catalogue=admin().catalogue())


@bp.get("/admin/flows/<flow_id>")
@page("admin")
def flow_edit(flow_id: str) -> Any:
    fa = admin()
    try:
        text, number = fa.draft_text(flow_id)
    except FlowAdminError:
        return render_template("web/forbidden.html", message=t("error") + f": {flow_id}",
                               home="/admin/flows"), 404
    flow = fa.parse(flow_id, text) or fa.flow(flow_id)
    return render_template(
        "web/flow_edit.html", flow_id=flow_id, text=text, draft_number=number,
        published=fa.flow(flow_id), versions=fa.versions(flow_id), graph_svg=svg(flow),
        prompts=fa.prompts(text), problems=fa.check(flow_id, text),
        js_strings=strings(*JS_STRINGS),
        lines=[ln for ln in current().get("flows").lines if ln.flow == flow_id])


@bp.post("/admin/flows/<flow_id>/check")
@json_view("admin")
def flow_check(flow_id: str) -> Any:
    fa = admin()
    text = _text()
    problems = fa.check(flow_id, text)
    flow = fa.parse(flow_id, text) if not problems else None
    published = fa.flow(flow_id)
    return jsonify(problems=problems, svg=svg(flow) if flow else None,
                   prompts_html=render_template("web/_prompts.html", prompts=fa.prompts(text)),
                   same_version=bool(flow and flow.version == published.version
                                     and text != published.source))


@bp.post("/admin/flows/<flow_id>/simulate")
@json_view("admin")
def flow_simulate(flow_id: str) -> Any:
    body = request.get_json(silent=True) or {}
    inputs = body.get("inputs", []) if isinstance(body, dict) else []
    if not isinstance(inputs, list) or not all(isinstance(i, dict) for i in inputs):
        raise FlowAdminError('inputs must be a list like [{"press": "1"}, {"say": "factura"}, '
                             '{"silence": true}]')
    caller = str(body.get("caller") or "+34600111222")[:20]
    return jsonify(admin().simulate(flow_id, _text(), inputs, caller))


@bp.post("/admin/flows/<flow_id>/versions")
@json_view("admin")
def flow_save(flow_id: str) -> Any:
    user = require_user()
    number = admin().save_draft(flow_id, _text(), user.name)
    return jsonify(version=number, message=t("saved", n=number)), 201


@bp.post("/admin/flows/<flow_id>/prompts")
@json_view("admin")
def flow_prompts_save(flow_id: str) -> Any:
    """The prompts table's edits applied to the draft text, checked, saved as a draft."""
    user = require_user()
    body = request.get_json(silent=True) or {}
    edits = body.get("edits") if isinstance(body, dict) else None
    if not isinstance(edits, list) or not all(isinstance(e, dict) for e in edits):
        raise FlowAdminError('send {"text": ..., "edits": [{"node", "key", "lang", "value"}]}')
    fa = admin()
    text = apply_edits(_text(), edits)
    problems = fa.check(flow_id, text)
    if problems:
        return jsonify(error="problems", text=text, problems=problems,
                       detail=f"line {problems[0]['line']}: {problems[0]['message']}"), 400
    number = fa.save_draft(flow_id, text, user.name)
    return jsonify(text=text, version=number, message=t("prompts_saved", n=number)), 201


@bp.post("/admin/flows/<flow_id>/versions/<int:number>/publish")
@json_view("admin")
def flow_publish(flow_id: str, number: int) -> Any:
    user = require_user()
    done = admin().publish(flow_id, number, user.name)
    return jsonify({**done, "message": t("published_ok", n=number)})


@bp.get("/admin/flows/<flow_id>/versions")
@json_view("admin")
def flow_versions(flow_id: str) -> Any:
    return jsonify(versions=[{k: v for k, v in row.items() if k != "text"}
                             for row in admin().versions(flow_id)])


@bp.get("/admin/flows/<flow_id>/versions/<int:number>")
@json_view("admin")
def flow_version(flow_id: str, number: int) -> Any:
    row = current().get("database").flows.get(flow_id, number)
    if row is None:
        return jsonify(error="not_found", detail=f"no version {number} of {flow_id}"), 404
    return jsonify(row)
