"""Live speech (vosk-stream mode): Twilio Media Streams → Vosk → the call flow → REST update.

The websocket server of :mod:`speech.streaming` runs in its own thread with its own
event loop (:class:`MediaStreamServer`), so webhook workers never wait on audio.
Per call:

* what a turn listens for comes from the call's latest session in Redis
  (:class:`SessionGrammars`, asked at speech onset and every 250 ms of silence):
  the menu's phrases, yes/no, digits or free speech
  (:func:`~ivr.speech_turns.listening_for`), the session's ``seq`` (a new one means
  a new prompt started), the prompt's estimated length
  (:func:`~ivr.speech_turns.prompt_seconds`) and the line's and node's endpointing
  and barge-in knobs (:class:`speech.tuning.SpeechTuning`);
* when an utterance ends (:meth:`LiveTurns.on_result`) the session is loaded again;
  if the call moved on meanwhile (keys pressed, call ended) the utterance is dropped;
  otherwise the engine is stepped with :class:`~call_flows.actions.Speech` (or
  ``NoInput`` when nothing usable was heard) through
  :meth:`ivr.calls.CallService.advance` -- effects, sealing, the call record and the
  TwiML exactly as a webhook -- and the live call is moved on with
  ``TwilioRest.update_call(twiml=...)``;
* an utterance cut by a dropped websocket is never acted on: it gives ``NoInput``
  (the engine reprompts), so a half-heard word cannot pick a wrong option;
* while the caller holds in a queue the turn is the callback phrases ("llámenme",
  :func:`speech.grammars.callback_phrases`), with no barge-in; a callback request
  moves the call out of the queue to the callback offer
  (:func:`ivr.hold_routes.callback_by_voice`), anything else said is ignored; a
  server for lines that listen otherwise (``hold_only``) acts on nothing else;
* barge-in (:class:`~speech.streaming.BargeIn`, the caller spoke before the
  prompt's estimated end): the prompt is stopped at once by updating the call to
  the same turn without its prompt (a keys-only ``<Gather>``), while the stream goes
  on listening; the utterance's result then moves the call on as above. The
  forked stream (``<Start><Stream>``) is one-way, so Twilio sends no ``mark`` when a
  prompt ends: the prompt's length is estimated from its text.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Self

from call_flows import actions as a
from call_flows.model import NodeType
from call_flows.registry import FlowRegistry
from call_flows.session import Session
from ivr import render
from ivr.calls import CallService
from ivr.speech_turns import (
    STREAM_GATHER_TIMEOUT_S,
    _node_of,
    listening_for,
    prompt_seconds,
    result_event,
)
from ivr.store import CallRecords
from ivr.twilio_rest import TwilioRest, TwilioRestError
from speech.endpointing import EndpointConfig, EndReason
from speech.recognizer import Recognizer
from speech.stream_server import start_media_stream_server
from speech.streaming import (
    BargeIn,
    BargePolicy,
    GrammarRegistry,
    StreamClosed,
    StreamEvent,
    TurnGrammar,
    UtteranceResult,
)
from speech.tuning import SpeechTuning

log = logging.getLogger(__name__)


class SessionGrammars(GrammarRegistry):
    """Each call's current turn, read from its latest session in Redis.

    A grammar set explicitly with :meth:`set_grammar` (same process) wins.
    """

    def __init__(self, records: CallRecords, registry: FlowRegistry,
                 tuning: SpeechTuning | None = None,
                 endpoint: EndpointConfig | None = None) -> None:
        super().__init__()
        self.records = records
        self.registry = registry
        self.tuning = tuning or SpeechTuning()
        self.endpoint = endpoint
        self._seq: dict[str, int] = {}
        self._turns: dict[str, TurnGrammar] = {}
        self._seq_lock = threading.Lock()

    def get(self, call_sid: str) -> TurnGrammar | None:
        explicit = super().get(call_sid)
        if explicit is not None:
            return explicit
        session = load_session(self.records, call_sid)
        if session is None:
            return None
        with self._seq_lock:
            self._seq[call_sid] = session.seq
            known = self._turns.get(call_sid)
        if known is not None and known.seq == session.seq:
            return known  # polled again within the same step: nothing new to work out
        turn = self.turn_of(session)
        with self._seq_lock:
            self._turns[call_sid] = turn
        return turn

    def turn_of(self, session: Session) -> TurnGrammar:
        """What the call listens for at ``session``, and how (pure: flow data)."""
        listening = listening_for(self.registry, session)
        endpoint, barge = self.tuning.for_turn(session.line, session.flow, session.node,
                                               self.endpoint)
        if _holding(self.registry, session) is not None:
            barge = BargePolicy.NEVER  # the hold music is not a prompt to stop
        return TurnGrammar(listening.language, listening.phrases, listening.kind,
                           listening.max_digits, session.seq,
                           prompt_seconds(self.registry, session), endpoint, barge)

    def seq_heard(self, call_sid: str) -> int | None:
        """The session step last seen for the call (when no utterance says it)."""
        with self._seq_lock:
            return self._seq.get(call_sid)

    def forget(self, call_sid: str) -> None:
        with self._seq_lock:
            self._seq.pop(call_sid, None)
            self._turns.pop(call_sid, None)
        self.clear(call_sid)


def load_session(records: CallRecords, call_sid: str) -> Session | None:
    try:
        data = records.session(call_sid)
        return Session.from_dict(data) if data else None
    except Exception:
        log.exception("call %s: its session could not be read", call_sid)
        return None


class LiveTurns:
    """Moves live calls on from recognised utterances (the server's callbacks)."""

    def __init__(self, calls: CallService, records: CallRecords, rest: TwilioRest,
                 grammars: SessionGrammars,
                 clock: Callable[[], float] = time.time,
                 public_url: str | None = None, hold_only: bool = False) -> None:
        self.calls = calls
        self.records = records
        self.rest = rest
        self.grammars = grammars
        self.clock = clock
        self.public_url = public_url.rstrip("/") if public_url else None  # IVR_PUBLIC_URL
        # Streams started at the queue only (the line hears its turns some other way):
        # nothing but a callback request while holding is acted on.
        self.hold_only = hold_only

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), tz=UTC)

    def on_result(self, call_sid: str, utterance: UtteranceResult) -> str | None:
        """Step the call with what was heard; what the live call was updated with (its
        TwiML, or the URL it was sent to), or None."""
        session = load_session(self.records, call_sid)
        if session is None:
            log.warning("call %s: heard speech but the call has no session; dropped", call_sid)
            return None
        flow, _language, node = _node_of(self.grammars.registry, session)
        if node is not None and node.type is NodeType.QUEUE:
            from ivr.hold_routes import callback_by_voice

            return callback_by_voice(self, session, node, flow, utterance)
        if self.hold_only:
            log.info("call %s: speech outside the hold on a hold-only stream; ignored",
                     call_sid)
            return None
        if node is not None and getattr(node, "sensitive", False):
            # Card or identity digits are keyed only: what was said is neither acted on
            # nor kept (the keypad prompt stays).
            log.info("call %s: speech at keyed-only node %s ignored", call_sid, session.node)
            return None
        if session.ended or self.records.is_ended(call_sid):
            log.info("call %s: utterance after the call ended; dropped", call_sid)
            return None
        heard_at = utterance.seq if utterance.seq is not None else self.grammars.seq_heard(
            call_sid)
        if heard_at is not None and heard_at != session.seq:
            log.info("call %s: utterance for step %s but the call is at step %s; dropped",
                     call_sid, heard_at, session.seq)
            return None
        now = self._now()
        if utterance.end_reason is EndReason.DISCONNECTED:
            log.warning("call %s: the stream dropped mid-utterance; treated as no input",
                        call_sid)
            event: a.Event = a.NoInput(now=now)
        else:
            event = result_event(utterance.result, now)
        twiml = self.calls.advance(session, event)
        return twiml if self._update(call_sid, twiml) else None

    def on_event(self, event: StreamEvent) -> None:
        if isinstance(event, BargeIn):
            self.barge_in(event.call_sid, event.seq)
        elif isinstance(event, StreamClosed):
            self.grammars.forget(event.call_sid)

    def barge_in(self, call_sid: str, seq: int | None = None) -> str | None:
        """Stop the prompt: the same turn, keys still listened for, without the prompt
        (nothing when the call has left the turn the caller spoke over)."""
        session = load_session(self.records, call_sid)
        if session is None or session.ended or (seq is not None and seq != session.seq):
            return None
        if self.hold_only or _holding(self.grammars.registry, session) is not None:
            return None  # a keys-only turn would take the caller out of the queue
        log.info("call %s: caller spoke over the prompt of step %s; prompt stopped",
                 call_sid, session.seq)
        twiml = render.render([_silent_turn(self.grammars.registry, session)],
                              self.calls.codec.encode(session.to_dict()))
        return twiml if self._update(call_sid, twiml) else None

    def _update(self, call_sid: str, twiml: str) -> bool:
        try:
            self.rest.update_call(call_sid, twiml=twiml)
            return True
        except TwilioRestError as exc:  # e.g. 21220: the call ended meanwhile
            log.warning("call %s: could not update the live call (%s)", call_sid, exc)
            return False


def _holding(registry: FlowRegistry, session: Session) -> Any | None:
    """The queue node the call holds at, or None."""
    _flow, _language, node = _node_of(registry, session)
    return node if node is not None and node.type is NodeType.QUEUE else None


def _silent_turn(registry: FlowRegistry, session: Session) -> a.Gather:
    """The keys-only ``Gather`` of the turn: the same keys as the engine's, no prompt."""
    flow = registry.get(session.flow, session.flow_version)
    node = flow.nodes.get(session.node) if flow else None
    num_digits: int | None = None
    if node is None:
        pass
    elif node.type is NodeType.CONFIRM or "confirm" in session.pending or (
            node.type is NodeType.CALLBACK and session.pending.get("stage") == "confirm"):
        num_digits = 1
    elif node.type is NodeType.MENU:
        keys = [o.key for o in node.options if o.key]
        if keys and len({len(k) for k in keys}) == 1 and len(keys) == len(node.options):
            num_digits = len(keys[0])
    elif node.type is NodeType.ASK:
        v = node.validator
        num_digits = node.max_digits or (v.max_len if v and v.min_len == v.max_len else None)
    return a.Gather(prompts=(), language=session.language or "es", speech=False,
                    num_digits=num_digits, timeout_s=STREAM_GATHER_TIMEOUT_S)


class MediaStreamServer:
    """The Media Streams websocket server in a background thread (for ``ivr serve``)."""

    def __init__(self, turns: LiveTurns, recognizers: Callable[[str], Recognizer],
                 host: str = "127.0.0.1", port: int = 0, **options: Any) -> None:
        self.turns = turns
        self.recognizers = recognizers
        self.host, self.port = host, port
        self.options = options
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self, timeout: float = 10.0) -> Self:
        self._thread = threading.Thread(target=self._run, name="media-streams", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("the media stream server did not start")
        if self._error is not None:
            raise RuntimeError(f"the media stream server could not start on "
                               f"{self.host}:{self.port}: {self._error}") from self._error
        log.info("media streams: listening on ws://%s:%s", self.host, self.port)
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            self._server = loop.run_until_complete(start_media_stream_server(
                self.host, self.port, self.recognizers, self.turns.on_result,
                registry=self.turns.grammars, on_event=self.turns.on_event, **self.options))
            self.port = self._server.sockets[0].getsockname()[1]
        except BaseException as exc:  # noqa: BLE001 (reported to start())
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    def stop(self) -> None:
        loop, server = self._loop, self._server
        if loop is None or server is None or loop.is_closed():
            return

        async def _close() -> None:
            server.close()
            await server.wait_closed()
            loop.stop()

        asyncio.run_coroutine_threadsafe(_close(), loop)
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def live_speech(services: Any, recognizers: Callable[[str], Recognizer],
                host: str = "127.0.0.1", port: int = 0, tuning: SpeechTuning | None = None,
                hold_only: bool = False, **options: Any) -> MediaStreamServer:
    """The server for an app's services (``app.extensions["centralita"]``), not started.
    ``tuning``: per line/node endpointing and barge-in (:func:`speech.tuning.load_tuning`)."""
    components = services.components
    records: CallRecords = components["call_records"]
    grammars = SessionGrammars(records, components["flows"], tuning, options.get("endpoint"))
    calls = components["calls"]
    turns = LiveTurns(calls, records, TwilioRest.from_settings(services.settings), grammars,
                      public_url=services.settings.public_url, hold_only=hold_only)

    def authorize(call_sid: str, params: Mapping[str, str]) -> bool:
        """Only a stream our TwiML started (its ``auth`` parameter) speaks for a call."""
        return bool(call_sid) and hmac.compare_digest(calls.stream_auth(call_sid),
                                                      params.get("auth", ""))

    options.setdefault("authorize", authorize)
    return MediaStreamServer(turns, recognizers, host, port, **options)


__all__ = ["LiveTurns", "MediaStreamServer", "SessionGrammars", "live_speech", "load_session"]
