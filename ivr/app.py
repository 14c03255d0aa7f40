"""The application factory: ``create_app(settings)`` builds everything.

No module-level app, client or connection: tests build as many apps as they like,
each with its own settings.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
from flask import Flask
from rq import Queue

from ivr import worker
from ivr.calls import CallService
from ivr.events import EndedCalls, StepWriter
from ivr.flow_sync import FlowSync
from ivr.services import Principal, Services
from ivr.settings import Settings
from ivr.state import StateCodec, installation_secret
from ivr.store import CallRecords

log = logging.getLogger(__name__)

# Blueprints owned by the areas; each module exposes ``bp``.
BLUEPRINT_MODULES = (
    "ivr.health",
    "ivr.webhooks",
    "ivr.hold_routes",
    "ivr.api.queues",
    "ivr.api.agents",
    "ivr.api.customers",
    "ivr.api.calls",
    "ivr.api.reports",
    "ivr.api.followups",
    "ivr.api.recordings",
    "ivr.web",
)


def _optional(module: str) -> Any | None:
    if importlib.util.find_spec(module) is None:
        return None
    return importlib.import_module(module)


def build_components(settings: Settings, client: redis.Redis) -> dict[str, Any]:
    """The stores and engines every process (web worker, RQ worker, CLI) shares."""
    components: dict[str, Any] = {}
    records = _optional("recordings.store")
    if records is not None and hasattr(records, "Database"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        database = records.Database(settings.effective_database_url)
        if hasattr(database, "migrate"):
            database.migrate()
        components["database"] = database
    queue_store = _optional("queueing.store")
    if queue_store is not None and hasattr(queue_store, "QueueStore"):
        from ivr.queue_adapter import LiveEstimator, QueueAdapter

        rules = None
        # The admin page keeps the rules in <IVR_DATA_DIR>/queues.yaml when
        # IVR_QUEUES_FILE is not set (ivr.web.queues_views): load that one too.
        queues_file = settings.queues_file or settings.data_dir / "queues.yaml"
        if settings.queues_file or queues_file.is_file():
            from queueing.rules import load_rules

            rules = load_rules(queues_file)  # RulesError names the file and key
        store = queue_store.QueueStore(client, rules=rules)
        estimator = LiveEstimator(store)
        components["queue"] = store
        components["queue_adapter"] = QueueAdapter(store, estimator=estimator.for_call)
        components["queue_estimator"] = estimator.for_queue
    return components


def build_call_service(settings: Settings, client: redis.Redis,
                       components: dict[str, Any]) -> None:
    """The engine, the sealed-state codec and the call records, for webhook workers."""
    from call_flows.engine import Engine
    from call_flows.registry import FlowRegistry

    registry = (FlowRegistry.load(settings.flows_dir) if settings.flows_dir
                else FlowRegistry.load())
    records = CallRecords(client)
    writer = StepWriter(records)
    ended = EndedCalls(client)
    sync = FlowSync(registry, client, getattr(registry, "directory", None))
    sync.start()
    components.update(flows=registry, call_records=records, writer=writer, flow_sync=sync)
    if components.get("queue") is not None:
        # Callbacks are dialled only within the line's business hours (README).
        components["queue"].is_open = line_hours(registry)
    components["calls"] = CallService(
        engine=Engine(registry), codec=StateCodec(installation_secret(settings)),
        writer=writer, ended=ended, customers=components.get("database"),
        queue=components.get("queue_adapter"), flow_sync=sync)
    _offline_speech(settings, registry, components["calls"])


def line_hours(registry: Any) -> Callable[[float], dict[str, bool]]:
    """``is_open(now)`` for the router: each line's business hours (``{name: open}``, and
    ``""`` for the default line: callbacks of a line it does not know), read at each
    decision so an edit of ``lines.yaml`` applies without a restart. A callback is
    dialled only while the line the customer called is open."""

    def is_open(now: float) -> dict[str, bool]:
        at = datetime.fromtimestamp(now, UTC)
        try:
            lines = tuple(registry.lines)
            default = registry.default_line
        except (IndexError, AttributeError):  # no line configured: nothing to close
            return {}
        state = {line.name: bool(line.hours.is_open(at)) for line in lines}
        state[""] = state[default.name]  # (the default line is one of the lines)
        return state

    return is_open


def _offline_speech(settings: Settings, registry: Any, service: CallService) -> None:
    """IVR_SPEECH=vosk-record|vosk-stream: callers' speech heard by Vosk, not Twilio."""
    from ivr.speech_turns import OfflineListening, SpeechMode, SpeechTurns

    try:
        mode = SpeechMode(settings.speech_mode)
    except ValueError:
        log.error("IVR_SPEECH=%r is not one of twilio, vosk-record, vosk-stream: using twilio",
                  settings.speech_mode)
        return
    if mode is not SpeechMode.STREAM and settings.media_stream_url:
        # Menus are heard another way; the stream runs only while holding ("llámenme"),
        # and what it hears moves the live call by REST: our absolute URL is needed.
        if settings.public_url:
            service.hold_stream_url = settings.media_stream_url
        else:
            log.error("IVR_MEDIA_STREAM_URL is set but IVR_PUBLIC_URL is not: callers "
                      "holding are not listened to (the keys still work)")
    if mode is SpeechMode.TWILIO:
        return
    if mode is SpeechMode.STREAM and not settings.media_stream_url:
        log.error("IVR_SPEECH=vosk-stream needs IVR_MEDIA_STREAM_URL (the public wss:// URL "
                  "of the media stream port): listening through recordings instead")
        mode = SpeechMode.RECORD
    if mode is SpeechMode.STREAM and not settings.public_url:
        log.error("IVR_SPEECH=vosk-stream needs IVR_PUBLIC_URL: the next turn is sent to the "
                  "live call as TwiML, whose URLs must be absolute; listening through "
                  "recordings instead")
        mode = SpeechMode.RECORD
    turns = SpeechTurns.from_settings(settings, registry)
    service.speech = turns
    service.engine = OfflineListening(service.engine, turns, lambda line: mode)
    if mode is SpeechMode.STREAM:
        service.stream_url = settings.media_stream_url


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    # root_path given: Flask cannot find it for a package installed in editable mode
    app = Flask("ivr", root_path=str(Path(__file__).resolve().parent), static_folder=None)
    app.config["SECRET_KEY"] = installation_secret(settings)
    app.config["MAX_CONTENT_LENGTH"] = 1 * 1024 * 1024  # Twilio's requests are small
    client = redis.Redis.from_url(
        settings.effective_redis_url, decode_responses=True,
        socket_timeout=2, socket_connect_timeout=2, health_check_interval=10,
    )
    components = build_components(settings, client)
    build_call_service(settings, client, components)
    # One bytes connection (RQ's) for every job this app queues.
    rq_connection = worker.connection(settings)
    components["on_call_end"] = _call_end_hook(worker.queue(settings, "default", rq_connection))
    from ivr.bridge import BRIDGE_RETRY, Bridge
    from ivr.twilio_rest import TwilioRest

    components["bridge"] = Bridge(client, TwilioRest.from_settings(settings, retry=BRIDGE_RETRY))
    if settings.twilio_account_sid and settings.twilio_auth_token:
        from ivr.twilio_rest import CallRecorder  # whole-call recording on lines that ask

        components["calls"].recorder = CallRecorder.from_settings(settings)
    components["queue_dispatch"] = _dispatch(worker.queue(settings, "high", rq_connection))
    if components.get("queue_adapter") is not None:
        components["queue_adapter"].dispatch = components["queue_dispatch"]
        components["queue_adapter"].rebridge = _rebridge(worker.queue(settings, "high",
                                                                       rq_connection))
    lookup = _token_lookup(components)
    services = Services(settings=settings, redis=client, lookup_token=lookup,
                        components=components)
    app.extensions["centralita"] = services
    for name in BLUEPRINT_MODULES:
        module = _optional(name)
        if module is not None and hasattr(module, "bp"):
            app.register_blueprint(module.bp)
    from ivr.fastpath import VoiceFastPath

    app.wsgi_app = VoiceFastPath(app.wsgi_app, services)  # type: ignore[method-assign]
    return app


def _call_end_hook(jobs: Queue) -> Any:
    """When a call ends: file it (SQL record, summary) in the background, once."""

    def on_call_end(call_sid: str) -> None:
        try:
            # One job per call (the id); the job itself waits for the last steps to land.
            jobs.enqueue("recordings.jobs.finalize_call", call_sid,
                         job_id=f"finalize-{call_sid}", retry=None, result_ttl=3600,
                         failure_ttl=7 * 24 * 3600)
        except redis.RedisError:
            log.exception("could not queue the filing of call %s", call_sid)

    return on_call_end


def _dispatch(jobs: Queue) -> Any:
    """A reservation was made: start its timer (and dial a callback) on the RQ worker."""
    from queueing.jobs import schedule

    def dispatch(assignment: Any) -> None:
        try:
            schedule(jobs, assignment)
        except redis.RedisError:
            log.exception("could not schedule reservation %s", assignment.reservation_id)

    return dispatch


def _rebridge(jobs: Queue) -> Any:
    """A call holds although its agent accepted it: put it through from the worker."""

    from ivr.bridge import BRIDGE_CLAIM_S

    def rebridge(call_sid: str) -> None:
        try:
            # ttl: a job not started within the claim's time is dropped; the caller's
            # next hold request (if they still hold) queues a fresh one
            jobs.enqueue("ivr.bridge.rebridge", call_sid, ttl=BRIDGE_CLAIM_S,
                         result_ttl=600, failure_ttl=7 * 24 * 3600)
        except redis.RedisError:
            log.exception("could not queue the put-through of %s", call_sid)

    return rebridge


def _token_lookup(components: dict[str, Any]) -> Any:
    database = components.get("database")
    users = getattr(database, "users", None) if database is not None else None

    def lookup(token: str) -> Principal | None:
        if users is None:
            return None
        user = users.find_by_token(token)
        if user is None:
            return None
        return Principal(name=user.name, role=user.role, agent_id=getattr(user, "agent_id", None),
                         user_id=str(getattr(user, "id", "")) or None)

    return lookup
