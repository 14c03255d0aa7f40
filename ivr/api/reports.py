"""KPI reports as JSON: the same figures as ``ivr report kpis --format json``."""

from __future__ import annotations

from datetime import date, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Blueprint, Response, jsonify, request

from ivr.auth import api_auth
from ivr.services import current
from recordings.config import ConfigError, JobConfig
from recordings.kpi_source import kpi_document
from recordings.kpis import GROUPS

bp = Blueprint("reports_api", __name__, url_prefix="/api/reports")


def _bad(detail: str) -> Response:
    response = jsonify(error="bad_request", detail=detail)
    response.status_code = 400
    return response


@bp.get("/kpis")
@api_auth("supervisor")
def kpis() -> Response:
    """``?from=YYYY-MM-DD&to=YYYY-MM-DD[&tz=Europe/Madrid][&by=line&by=agent]
    [&fcr_days=7][&sl_seconds=20]``"""
    args = request.args
    try:
        first = date.fromisoformat(args.get("from", ""))
        last = date.fromisoformat(args.get("to", ""))
    except ValueError:
        return _bad("from and to are days as YYYY-MM-DD")
    if last < first:
        return _bad("to is before from")
    if (last - first).days > 366:
        return _bad("ask for at most a year at a time")
    try:
        zone = ZoneInfo(args.get("tz", "UTC"))
    except (ZoneInfoNotFoundError, ValueError):
        return _bad(f"unknown time zone {args.get('tz')!r}")
    groups = tuple(args.getlist("by"))
    unknown = [g for g in groups if g not in GROUPS]
    if unknown:
        return _bad(f"by must be among {list(GROUPS)}, not {unknown}")
    try:
        fcr_days = float(args["fcr_days"]) if "fcr_days" in args else \
            JobConfig.from_env().fcr_window_days
        sl_seconds = float(args.get("sl_seconds", 20))
    except (ValueError, ConfigError) as exc:
        return _bad(f"fcr_days and sl_seconds are numbers ({exc})")
    document = kpi_document(current().get("database"), first, last, zone,
                            timedelta(days=fcr_days), sl_seconds, groups)
    return jsonify(document)
