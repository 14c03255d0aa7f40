"""Health, metrics and the few static files Twilio fetches (hold music).

``/static/hold.wav`` is the 30-second clip; ``/static/hold-<s>.wav`` the
shorter ones (s = 1..30) that make a queue's announcement period any whole number of seconds.
"""

from __future__ import annotations

import time

import redis
from flask import Blueprint, Response, abort, jsonify
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest

from ivr import hold
from ivr.services import current

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    services = current()
    started = time.perf_counter()
    try:
        services.redis.ping()
    except (redis.RedisError, OSError) as exc:
        response = jsonify(status="unavailable", redis="down", detail=str(exc)[:200])
        response.status_code = 503
        return response
    return jsonify(status="ok", redis="up",
                   redis_ms=round((time.perf_counter() - started) * 1000, 2))


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus text format: counts only, never personal data."""
    services = current()
    registry = CollectorRegistry()
    up = Gauge("ivr_redis_up", "1 when Redis answers", registry=registry)
    try:
        services.redis.ping()
        up.set(1)
    except (redis.RedisError, OSError):
        up.set(0)
    writer = services.components.get("writer")
    if writer is not None:
        Gauge("ivr_events_dropped", "call events dropped after Redis stayed down",
              registry=registry).set(writer.dropped)
    queue = services.components.get("queue_adapter")
    if queue is not None:
        queue.export_metrics(registry)
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


@bp.get("/static/hold.wav")
@bp.get("/static/hold-<int:seconds>.wav")
def hold_music(seconds: int = hold.MUSIC_SECONDS) -> Response:
    if not 1 <= seconds <= hold.MUSIC_SECONDS:
        abort(404)
    response = Response(hold.hold_music(seconds), mimetype="audio/wav")
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response
