"""/admin/agents: agents, their skills, capacity and queues (admins and supervisors).

A plain form over the router's desk (the same call as ``PUT /api/agents/<id>``).
Skills are typed as ``lang:es=3, topic:billing=2``: a skill and a level from 1 to 5.
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for

from ivr.api.queues import desk
from ivr.services import current
from ivr.web import bp
from ivr.web.i18n import t
from ivr.web.session import page, require_user
from queueing.agents import agent_view
from queueing.errors import QueueError
from queueing.model import MAX_LEVEL


class FormError(ValueError):
    """A form field that cannot be read; the message names it."""


def parse_skills(text: str) -> dict[str, int]:
    skills: dict[str, int] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, _, level = part.partition("=")
        name = name.strip()
        try:
            value = int(level.strip() or "1")
        except ValueError:
            raise FormError(f"skill {part!r}: write name=level, level 1..{MAX_LEVEL}") from None
        if not name or not 1 <= value <= MAX_LEVEL:
            raise FormError(f"skill {part!r}: write name=level, level 1..{MAX_LEVEL}")
        skills[name] = value
    if not skills:
        raise FormError("give at least one skill, e.g. lang:es=3, topic:billing=2")
    return skills


@bp.get("/admin/agents")
@page("supervisor")
def agents_admin() -> Any:
    d = desk()
    now = d.clock()
    agents = [agent_view(a, now) for a in d.store.agents()]
    known = {a["agent_id"] for a in agents}
    database = current().components.get("database")
    logins = [u for u in (database.users.list() if database else [])
              if u.role == "agent" and u.agent_id and u.agent_id not in known]
    return render_template("web/agents_admin.html", agents=agents, logins=logins)


@bp.post("/admin/agents")
@page("supervisor")
def agents_save() -> Any:
    user = require_user()
    form = request.form
    agent_id = form.get("agent_id", "").strip()
    try:
        if not agent_id or len(agent_id) > 64:
            raise FormError("agent id: 1 to 64 characters")
        skills = parse_skills(form.get("skills", ""))
        capacity = int(form.get("capacity") or 1)
        queues = [q.strip() for q in form.get("queues", "").split(",") if q.strip()]
        desk().configure_agent(agent_id, skills, capacity, queues)
    except (FormError, QueueError, ValueError) as exc:
        flash(f"{t('error')}: {exc}")
        return redirect(url_for("web.agents_admin"))
    database = current().components.get("database")
    if database is not None:
        database.audit.write(user.name, "agent.configure", "agent", agent_id,
                             {"skills": skills, "capacity": capacity, "queues": queues})
    flash(t("saved_ok"))
    return redirect(url_for("web.agents_admin"))
