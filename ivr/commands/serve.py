"""`ivr serve`: webhooks, API, pages, embedded Redis and RQ workers in one command."""

from __future__ import annotations

import logging
import multiprocessing
import os
import secrets
import signal
import sys
from pathlib import Path
from typing import Any

import click

from ivr.settings import Settings

log = logging.getLogger("ivr.serve")


def _admin_token(settings: Settings) -> tuple[str, bool]:
    """IVR_ADMIN_TOKEN, or one generated at first start (kept 0600 under IVR_DATA_DIR)."""
    if settings.admin_token:
        return settings.admin_token, False
    path = settings.data_dir / "admin.token"
    if path.exists():
        return path.read_text().strip(), False
    token = secrets.token_urlsafe(24)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token)
    return token, True


def _worker_main(settings: Settings) -> None:
    from ivr.worker import run_worker

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us with SIGTERM
    run_worker(settings)


def _media_streams_main(settings: Settings, host: str) -> None:
    """The Media Streams websocket server, its own process (IVR_MEDIA_STREAM_URL set):
    every turn with IVR_SPEECH=vosk-stream, only "llámenme" while holding otherwise."""
    import threading

    from ivr.app import create_app
    from ivr.media_streams import live_speech
    from ivr.speech_turns import vosk_factory

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    services = create_app(settings).extensions["centralita"]
    from speech.tuning import load_tuning

    tuning = load_tuning(settings.speech_tuning) if settings.speech_tuning else None
    server = live_speech(services, vosk_factory(settings), host, settings.media_stream_port,
                         tuning=tuning, hold_only=settings.speech_mode != "vosk-stream")
    server.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    server.stop()


def _forget_server_children(server: Any, worker: Any) -> None:
    """In a freshly forked web worker: the RQ and media-stream processes belong to the
    server, not to this worker, whose exit must not try to join them (multiprocessing
    keeps the parent's children in a module-level set that a fork copies)."""
    import multiprocessing.process

    multiprocessing.process._children.clear()  # type: ignore[attr-defined]


def _gunicorn(settings: Settings, host: str, port: int, workers: int, threads: int) -> Any:
    from gunicorn.app.base import BaseApplication

    class Application(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("threads", threads)
            self.cfg.set("worker_class", "gthread" if threads > 1 else "sync")
            self.cfg.set("timeout", 30)
            self.cfg.set("graceful_timeout", 10)
            self.cfg.set("accesslog", None)
            self.cfg.set("loglevel", "warning")
            self.cfg.set("post_fork", _forget_server_children)

        def load(self) -> Any:
            from ivr.app import create_app

            return create_app(settings)

    return Application()


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0 only behind a firewall or proxy).")
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int, help="Web worker processes.")
@click.option("--threads", default=4, show_default=True, type=int,
              help="Threads per web worker (live feeds hold one each).")
@click.option("--rq-workers", default=1, show_default=True, type=int,
              help="Background job workers (recordings, transcripts, summaries, callbacks).")
@click.option("--demo", is_flag=True, help="Load the demo customers if the database is empty.")
def serve(host: str, port: int, workers: int, threads: int, rq_workers: int, demo: bool) -> None:
    """Answer calls: webhooks, JSON API, web pages, embedded Redis and RQ workers.

    Stops cleanly on SIGINT/SIGTERM, children included.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings.from_env()
    if settings.validate_signature and not settings.twilio_auth_token:
        raise click.ClickException(
            "TWILIO_AUTH_TOKEN is not set, so Twilio's signatures cannot be checked. "
            "Set it to your account's auth token, or for local development only set "
            "IVR_VALIDATE_SIGNATURE=0.")
    if not settings.validate_signature:
        log.warning("IVR_VALIDATE_SIGNATURE=0: webhooks accept unsigned requests "
                    "(local development only)")
    if not settings.twilio_account_sid:
        log.warning("TWILIO_ACCOUNT_SID is not set: outbound calls (callbacks) are disabled")
    settings.data_dir.mkdir(parents=True, exist_ok=True)

    from call_flows.model import FlowError
    from call_flows.registry import FlowRegistry

    try:
        registry = (FlowRegistry.load(settings.flows_dir) if settings.flows_dir
                    else FlowRegistry.load())
    except FlowError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        raise click.ClickException("the call flows are invalid: fix the lines above") from None
    if settings.speech_tuning:  # a broken or misspelt knobs file stops us here
        from speech.tuning import TuningError, load_tuning

        try:
            tuning = load_tuning(settings.speech_tuning)
        except TuningError as exc:
            raise click.ClickException(f"IVR_SPEECH_TUNING: {exc}") from exc
        nodes = [f"{fid}:{nid}" for fid in registry.flow_ids
                 for nid in registry.current(fid).nodes]
        unknown = tuning.unknown_names([line.name for line in registry.lines], nodes)
        if unknown:
            raise click.ClickException(f"IVR_SPEECH_TUNING {settings.speech_tuning}: "
                                       + "; ".join(unknown))

    from ivr.embedded import EmbeddedRedis

    embedded = None
    if not settings.redis_url:
        embedded = EmbeddedRedis(settings.data_dir)
        if embedded.answers():
            raise click.ClickException(
                f"a Redis already answers on {embedded.socket}: is another `ivr serve` "
                "running with the same IVR_DATA_DIR?")
        embedded.start()
        settings = settings.with_(redis_url=embedded.url)
    token, fresh = _admin_token(settings)
    settings = settings.with_(admin_token=token)
    if demo:
        _load_demo(settings)
    children: list[multiprocessing.Process] = []
    owner = os.getpid()  # gunicorn forks its workers from here: only we stop what we started
    try:
        ctx = multiprocessing.get_context("spawn")
        for _ in range(max(0, rq_workers)):
            proc = ctx.Process(target=_worker_main, args=(settings,), daemon=False)
            proc.start()
            children.append(proc)
        if settings.media_stream_url:  # vosk-stream: every turn; other modes: holding only
            proc = ctx.Process(target=_media_streams_main, args=(settings, host), daemon=False)
            proc.start()
            children.append(proc)
            click.echo(f"  Media Streams (Vosk) on ws://{host}:{settings.media_stream_port}, "
                       f"public {settings.media_stream_url}")
        base = settings.public_url or f"http://{host}:{port}"
        click.echo(f"Centralita answering on http://{host}:{port}")
        click.echo(f"  Twilio Voice URL (POST):      {base}/voice/incoming")
        click.echo(f"  Twilio Status callback (POST): {base}/voice/status")
        click.echo(f"  Twilio Fallback URL (POST):   {base}/voice/fallback")
        click.echo(f"  Try a call: ivr simulate --url http://{host}:{port} --digits 1")
        if fresh:
            click.echo(f"  Admin API token (shown once, kept in {settings.data_dir}/admin.token): "
                       f"{token}")
        sys.stdout.flush()
        _gunicorn(settings, host, port, workers, threads).run()
    finally:
        # A gunicorn worker leaving (recycled, timed out, or at shutdown) unwinds through
        # here too: the RQ workers and the embedded Redis are only the server's to stop.
        if os.getpid() == owner:
            _stop(children, embedded)


def _stop(children: list[Any], embedded: Any | None) -> None:
    for proc in children:
        if proc.is_alive():
            proc.terminate()
    for proc in children:
        proc.join(timeout=10)
        if proc.is_alive():
            proc.kill()
    if embedded is not None:
        embedded.stop()


def _load_demo(settings: Settings) -> None:
    try:
        from recordings.store import Database
    except ImportError:
        return
    database = Database(settings.effective_database_url)
    database.migrate()
    if hasattr(database, "load_demo"):
        count = database.load_demo()
        if count:
            click.echo(f"  Loaded {count} demo customers")


__all__ = ["Path", "serve"]
