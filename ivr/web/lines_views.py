"""/admin/lines: each line's numbers, flow, languages, time zone, hours and holidays.

Saving is the flow editor's machinery applied to ``lines.yaml``: the edited file is
checked by ``check_paths`` (as ``ivr flows check``), kept as a version with its
author and time, and published by writing the file atomically and reloading the
registry -- new calls get the new hours, calls in progress are not touched. Any
earlier version can be published again (roll back).

Lines are added (``/admin/lines/new``, starting from the default line's flow,
languages and hours) and removed (``/admin/lines/<name>/remove``, after a page that
says where its numbers will go: the default line) the same way. The default line and
the only line cannot be removed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import flash, redirect, render_template, request, url_for

from call_flows.hours import DAYS
from call_flows.model import FlowError
from ivr.services import current
from ivr.web import bp
from ivr.web.i18n import t
from ivr.web.lines_admin import (
    LineForm,
    add_block,
    block_text,
    default_name,
    form_from_post,
    form_of,
    name_problem,
    new_form,
    problems_by_field,
    read_lines,
    remove_block,
    remove_problem,
    replace_block,
    template_raw,
    validate,
)
from ivr.web.session import page, require_user
from ivr.web.versioned import (
    LINES_KEY,
    ConfigError,
    VersionedFile,
    check_replacing,
    write_atomically,
)

COMMON_ZONES = ("Europe/Madrid", "Atlantic/Canary", "Europe/London", "Europe/Lisbon",
                "Europe/Paris", "America/Mexico_City", "America/Bogota", "UTC")


@bp.errorhandler(ConfigError)
def _config_refused(exc: ConfigError) -> Any:
    return render_template("web/forbidden.html", message=f"{t('error')}: {exc}",
                           home=url_for("web.flows_index")), 409


def _registry() -> Any:
    return current().get("flows")


def lines_file() -> VersionedFile:
    directory = _registry().directory
    if directory is None:
        raise ConfigError("the flows were not loaded from a directory: set IVR_FLOWS_DIR")
    path = next(iter(sorted(Path(directory).glob("lines.y*ml"))), Path(directory) / "lines.yaml")
    return VersionedFile(current().get("database"), LINES_KEY, path)


def _flows() -> dict[str, tuple[str, ...]]:
    registry = _registry()
    return {fid: tuple(registry.current(fid).languages) for fid in registry.flow_ids}


def publish_lines(vf: VersionedFile, number: int, author: str) -> None:
    """Make stored version ``number`` of lines.yaml the one new calls get."""
    row = vf.get(number)
    problems = check_replacing(vf.path.parent, vf.path, row["text"])
    if problems:
        raise ConfigError(f"version {number} no longer passes the checks "
                          f"(line {problems[0].line}: {problems[0].message})")
    write_atomically(vf.path, row["text"])
    try:
        _registry().reload()
    except FlowError as exc:  # only if another file changed meanwhile
        raise ConfigError(f"the registry refused the new text: {exc}") from exc
    sync = current().components.get("flow_sync")
    if sync is not None:
        sync.check()
    vf.mark_published(number, author)


def _render(form: LineForm, vf: VersionedFile, draft: int | None, others: list[str],
            status: int = 200, is_new: bool = False) -> Any:
    return render_template("web/line_edit.html", form=form, days=DAYS, flows=_flows(),
                           zones=COMMON_ZONES, versions=vf.versions(), draft=draft,
                           other_problems=others, is_new=is_new), status


def _save(vf: VersionedFile, text: str, user: str, said: tuple[str, str],
          **values: Any) -> int:
    """Keep ``text`` as a version; publish it too when the form's button said so.
    ``said``: the message keys for (published, draft)."""
    number = vf.save(text, user)
    if request.form.get("action") == "publish":
        publish_lines(vf, number, user)
        flash(t(said[0], n=number, **values))
    else:
        flash(t(said[1], n=number, **values))
    return number


@bp.get("/admin/lines")
@page("admin")
def lines_index() -> Any:
    try:
        vf = lines_file()
    except ConfigError as exc:
        return render_template("web/forbidden.html", message=str(exc),
                               home=url_for("web.flows_index")), 409
    text, draft = vf.newest()
    raw, _ = read_lines(text)
    forms = [form_of(text, str(name)) for name in raw]
    return render_template("web/lines_index.html", forms=forms, days=DAYS,
                           versions=vf.versions(), draft=draft, default=default_name(raw))


@bp.get("/admin/lines/<name>")
@page("admin")
def line_edit(name: str) -> Any:
    vf = lines_file()
    text, draft = vf.newest()
    try:
        form = form_of(text, name)
    except KeyError:
        return render_template("web/forbidden.html", message=f"{t('error')}: {name}",
                               home=url_for("web.lines_index")), 404
    return _render(form, vf, draft, [])


@bp.post("/admin/lines/<name>")
@page("admin")
def line_save(name: str) -> Any:
    user = require_user()
    vf = lines_file()
    text, draft = vf.newest()
    raw_lines, _ = read_lines(text)
    if name not in raw_lines:
        return render_template("web/forbidden.html", message=f"{t('error')}: {name}",
                               home=url_for("web.lines_index")), 404
    form = form_from_post(name, request.form, request.form.getlist("holiday_date"),
                          request.form.getlist("holiday_name"))
    if vf.stale(request.form.get("base_version"), draft):
        return _render(form, vf, draft, [t("stale_save", n=draft)], 409)
    clean = validate(form, _flows())
    if form.errors:
        return _render(form, vf, draft, [], 400)
    new_text = replace_block(text, name, block_text(form, clean, raw_lines[name]))
    problems = check_replacing(vf.path.parent, vf.path, new_text)
    if problems:
        form.errors, others = problems_by_field(problems, new_text, name)
        return _render(form, vf, draft, others, 400)
    _save(vf, new_text, user.name, ("published_ok", "saved"))
    return redirect(url_for("web.line_edit", name=name))


@bp.get("/admin/lines/new")
@page("admin")
def line_new() -> Any:
    vf = lines_file()
    text, draft = vf.newest()
    return _render(new_form(text), vf, draft, [], is_new=True)


@bp.post("/admin/lines/new")
@page("admin")
def line_create() -> Any:
    user = require_user()
    vf = lines_file()
    text, draft = vf.newest()
    raw_lines, _ = read_lines(text)
    name = str(request.form.get("name", "")).strip()
    form = form_from_post(name, request.form, request.form.getlist("holiday_date"),
                          request.form.getlist("holiday_name"))
    clean = validate(form, _flows())
    if (problem := name_problem(name, raw_lines)) is not None:
        form.errors["name"] = problem
    if not clean["numbers"] and "numbers" not in form.errors:
        form.errors["numbers"] = "give the number(s) this line answers, in E.164 (+34...)"
    if form.errors:
        return _render(form, vf, draft, [], 400, is_new=True)
    new_text = add_block(text, block_text(form, clean, template_raw(raw_lines)))
    problems = check_replacing(vf.path.parent, vf.path, new_text)
    if problems:
        form.errors, others = problems_by_field(problems, new_text, name)
        return _render(form, vf, draft, others, 400, is_new=True)
    _save(vf, new_text, user.name, ("line_added_published", "line_added_draft"), name=name)
    return redirect(url_for("web.line_edit", name=name))


@bp.route("/admin/lines/<name>/remove", methods=["GET", "POST"])
@page("admin")
def line_remove(name: str) -> Any:
    vf = lines_file()
    text, draft = vf.newest()
    raw_lines, _ = read_lines(text)
    if name not in raw_lines:
        return render_template("web/forbidden.html", message=f"{t('error')}: {name}",
                               home=url_for("web.lines_index")), 404
    form = form_of(text, name)
    refused = remove_problem(raw_lines, name)
    status = 409 if refused else 200
    if request.method == "POST" and refused is None:
        new_text = remove_block(text, name)
        problems = check_replacing(vf.path.parent, vf.path, new_text)
        if not problems:
            _save(vf, new_text, require_user().name,
                  ("line_removed_published", "line_removed_draft"), name=name,
                  numbers=form.numbers or "-", default=default_name(raw_lines))
            return redirect(url_for("web.lines_index"))
        refused = "; ".join(f"{Path(p.file).name}:{p.line}: {p.message}" for p in problems)
        status = 400
    return render_template("web/line_remove.html", form=form, refused=refused,
                           default=default_name(raw_lines), draft=draft), status


@bp.post("/admin/lines/versions/<int:number>/publish")
@page("admin")
def lines_publish(number: int) -> Any:
    user = require_user()
    vf = lines_file()
    try:
        publish_lines(vf, number, user.name)
    except ConfigError as exc:
        flash(f"{t('error')}: {exc}")
    else:
        flash(t("published_ok", n=number))
    back = request.form.get("back") or ""
    return redirect(url_for("web.line_edit", name=back) if back else
                    url_for("web.lines_index"))
