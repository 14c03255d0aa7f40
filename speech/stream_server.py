"""The Media Streams websocket server: one :class:`~speech.streaming.MediaStreamHandler`
per connection, every handler call and callback in a thread pool so the event loop
(and the webhook workers, which never touch it) do not wait on decoding.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import logging
from collections.abc import Callable, Mapping
from typing import Any

from speech.endpointing import EndpointConfig
from speech.streaming import (
    GrammarRegistry,
    MediaStreamHandler,
    RecognizerFactory,
    StreamEvent,
    UtteranceResult,
)

log = logging.getLogger(__name__)

OnResult = Callable[[str, UtteranceResult], Any]
OnEvent = Callable[[StreamEvent], Any]


async def _call(pool: concurrent.futures.Executor, fn: Callable[..., Any], *args: Any) -> None:
    try:
        if inspect.iscoroutinefunction(fn):
            await fn(*args)
        else:
            await asyncio.get_running_loop().run_in_executor(pool, fn, *args)
    except Exception:  # a failing callback must not kill the stream
        log.exception("media stream callback %s failed", getattr(fn, "__name__", fn))


async def start_media_stream_server(
    host: str, port: int, recognizer_factory: RecognizerFactory, on_result: OnResult,
    registry: GrammarRegistry | None = None, on_event: OnEvent | None = None,
    default_language: str = "es", endpoint: EndpointConfig | None = None,
    executor: concurrent.futures.Executor | None = None,
    authorize: Callable[[str, Mapping[str, str]], bool] | None = None,
) -> Any:
    """Start the websocket server and return it (``.close()``; ``.sockets`` for the port)."""
    from websockets.asyncio.server import serve
    from websockets.exceptions import ConnectionClosed

    pool = executor or concurrent.futures.ThreadPoolExecutor(thread_name_prefix="speech")

    async def connection(ws: Any) -> None:
        handler = MediaStreamHandler(recognizer_factory, registry, default_language, endpoint,
                                     authorize)
        loop = asyncio.get_running_loop()
        reason = "disconnected"
        try:
            async for message in ws:
                events = await loop.run_in_executor(pool, handler.handle, message)
                await _dispatch(events)
                if handler.closed:
                    reason = "stop"
                    break
        except ConnectionClosed:
            pass
        finally:
            if not handler.closed:
                events = await loop.run_in_executor(pool, handler.close, reason)
                await _dispatch(events)

    async def _dispatch(events: list[StreamEvent]) -> None:
        for event in events:
            if on_event is not None:
                await _call(pool, on_event, event)
            if isinstance(event, UtteranceResult):
                await _call(pool, on_result, event.call_sid, event)

    return await serve(connection, host, port, max_size=2 ** 20)


async def serve_media_streams(host: str, port: int, recognizer_factory: RecognizerFactory,
                              on_result: OnResult, **options: Any) -> None:
    """Run the Media Streams websocket server until cancelled."""
    server = await start_media_stream_server(host, port, recognizer_factory, on_result, **options)
    async with server:
        await server.serve_forever()


__all__ = ["serve_media_streams", "start_media_stream_server"]
