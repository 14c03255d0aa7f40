"""Web pages for the people who run the line: login, flow editor, agent console, dashboard.

One blueprint, ``bp``, registered by ``ivr.app.create_app``. Pages are server-rendered
Jinja with a little vanilla JavaScript (no build step). Views are split by area:

    session.py          logins in Redis, CSRF, roles, page tokens for the pages' JS
    i18n.py             interface strings in es / ca / en
    auth_views.py       /login, /logout, /lang
    flow_admin.py       the flow editor's work: check, prompts, simulate, publish
    graph.py            a flow as nodes and edges, laid out as SVG
    flow_views.py       /admin/flows...
    agent_views.py      /agent and its JSON helper
    dashboard_views.py  /dashboard and its JSON snapshot
    admin_views.py      /admin/agents: agents' skills, capacity, queues
    versioned.py        versions of lines.yaml and the queue rules (draft, publish)
    lines_admin.py      lines.yaml <-> the line form (hours, holidays)
    lines_views.py      /admin/lines...
    queues_admin.py     queue rules YAML <-> the queue form
    queues_views.py     /admin/queues...
    throttle.py         login attempts counted in Redis (per account, per address)
"""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("web", __name__, template_folder="templates", static_folder="static",
               static_url_path="/static/web")

from ivr.web import (  # noqa: F401  (each module adds its routes to bp)
    admin_views,
    agent_views,
    auth_views,
    dashboard_views,
    flow_views,
    lines_views,
    queues_views,
)
from ivr.web.session import install

bp.record_once(install)
