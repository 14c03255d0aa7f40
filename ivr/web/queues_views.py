"""/admin/queues: the queue rules (timers, agent order, aging steps) as a form.

The file is ``IVR_QUEUES_FILE``; when that is not set the page uses
``<IVR_DATA_DIR>/queues.yaml`` (created on the first save) and says so -- the server
loads that file at start-up too. Saving validates with ``queueing.rules``, keeps the
text as a version (author, time), and publishing writes the file atomically and hands
the rules to the router's store: they live in Redis, so every worker process and the
Lua router apply them to the next routing decision, without a restart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from flask import flash, redirect, render_template, request, url_for

from ivr.services import current
from ivr.web import bp
from ivr.web.i18n import t
from ivr.web.queues_admin import (
    STEP_FIELDS,
    QueueForm,
    forms_from_post,
    forms_of,
    rules_text,
)
from ivr.web.session import page, require_user
from ivr.web.versioned import QUEUES_KEY, ConfigError, VersionedFile, write_atomically
from queueing.errors import RulesError
from queueing.rules import AGENT_ORDERS, QueueRules, parse_rules


def queues_path() -> tuple[Path, bool]:
    """The rules file and whether IVR_QUEUES_FILE named it."""
    settings = current().settings
    if settings.queues_file:
        return Path(settings.queues_file), True
    return settings.data_dir / "queues.yaml", False


def queues_file() -> VersionedFile:
    return VersionedFile(current().get("database"), QUEUES_KEY, queues_path()[0])


def publish_queues(vf: VersionedFile, number: int, author: str) -> None:
    row = vf.get(number)
    try:
        rules = parse_rules(yaml.safe_load(row["text"]), str(vf.path))
    except (RulesError, yaml.YAMLError) as exc:
        raise ConfigError(f"version {number} no longer passes the checks: {exc}") from exc
    write_atomically(vf.path, row["text"])
    current().get("queue").configure(rules)  # Redis: every process, next decision
    vf.mark_published(number, author)


def _render(forms: list[QueueForm], vf: VersionedFile, draft: int | None,
            status: int = 200) -> Any:
    path, named = queues_path()
    if not forms or forms[0].name != "default":
        forms.insert(0, QueueForm("default"))
    known = {f.name for f in forms}
    live = sorted(n for n in current().get("queue").counters() if n not in known)
    return render_template("web/queues_admin.html", forms=forms, path=path, named=named,
                           versions=vf.versions(), draft=draft, orders=AGENT_ORDERS,
                           defaults=QueueRules(), step_fields=STEP_FIELDS,
                           suggested=live), status


@bp.get("/admin/queues")
@page("admin")
def queues_admin() -> Any:
    vf = queues_file()
    text, draft = vf.newest()
    try:
        forms = forms_of(text)
    except yaml.YAMLError as exc:
        flash(f"{t('error')}: {vf.path}: {exc}")
        forms = []
    return _render(forms, vf, draft)


@bp.post("/admin/queues")
@page("admin")
def queues_save() -> Any:
    user = require_user()
    vf = queues_file()
    forms = forms_from_post(request.form, request.form.getlist)
    _, newest = vf.newest()
    if vf.stale(request.form.get("base_version"), newest):
        flash(t("stale_save", n=newest))
        return _render(forms, vf, newest, 409)
    text, rules = rules_text(forms)
    if rules is None:
        return _render(forms, vf, None, 400)
    number = vf.save(text, user.name)
    if request.form.get("action") == "publish":
        publish_queues(vf, number, user.name)
        flash(t("queues_published", n=number))
    else:
        flash(t("saved", n=number))
    return redirect(url_for("web.queues_admin"))


@bp.post("/admin/queues/versions/<int:number>/publish")
@page("admin")
def queues_publish(number: int) -> Any:
    user = require_user()
    try:
        publish_queues(queues_file(), number, user.name)
    except ConfigError as exc:
        flash(f"{t('error')}: {exc}")
    else:
        flash(t("queues_published", n=number))
    return redirect(url_for("web.queues_admin"))
