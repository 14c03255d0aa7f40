"""How the router reaches Redis (a part of :class:`queueing.store.QueueStore`).

The router's code is ``lua/common.lua`` + ``router.lua`` + ``sweep.lua`` +
``callbacks.lua``, in that order, as one chunk. On Redis 7 it is loaded as a function library (``FUNCTION LOAD``, called with ``FCALL``): its
definitions run once, when it is loaded, instead of on every call as a script's do. A
Redis without functions (before 7.0) runs it as a script (``EVALSHA``). The names carry a
hash of the code, so processes running different versions never call each other's code,
and a Redis that lost it (a flush, a restart without its AOF) is given it again on the
next call.

Each version's library stays loaded for processes still running it (a rolling
deploy); a library no process has loaded for :data:`OLD_LIBRARY_S` is deleted when a
new version is loaded, so old ones do not pile up in Redis and its AOF.

Each thread keeps one connection of the client's pool between calls (given back when the
thread ends): checking one out and back in on every call cost as much client CPU as the
rest of the call (redis-py 8.1). A connection that fails is dropped and the command goes
the client's usual way, with its reconnection and retries, as every command did before.
"""

from __future__ import annotations

import functools
import hashlib
import os
import threading
import time
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import redis

LUA_FILES = ("common.lua", "router.lua", "sweep.lua", "callbacks.lua")
#: When each version of the router's library was last loaded (all prefixes share them).
LIBRARIES_KEY = "centralita:router:libraries"
#: A library not loaded again for this long belongs to processes long gone.
OLD_LIBRARY_S = 86400.0
_BROKEN = (redis.ConnectionError, redis.TimeoutError, OSError)


def script_text() -> str:
    """The router's Lua code (without the entry point that says how it is called)."""
    folder = Path(__file__).resolve().parent / "lua"
    return "\n".join((folder / name).read_text() for name in LUA_FILES)


@functools.lru_cache(maxsize=4)
def router_code(body: str) -> tuple[str, str, str, str]:
    """(function library, function name, script, script SHA1) of the router's code."""
    name = "centralita_router_" + hashlib.sha1(body.encode()).hexdigest()[:16]
    library = (f"#!lua name={name}\n{body}\nredis.register_function('{name}', "
               "function(_, args) begin(args) return router_ops() or sweep_ops() or callback_ops() "
               "end)\n")
    script = f"{body}\nbegin(ARGV)\nreturn router_ops() or sweep_ops() or callback_ops()\n"
    return library, name, script, hashlib.sha1(script.encode()).hexdigest()


class _Held:
    """A thread's connection, given back to the pool when the thread ends (its locals go)."""

    __slots__ = ("__weakref__", "conn", "give_back", "pid")

    def __init__(self, pool: Any) -> None:
        self.conn = pool.get_connection()
        self.pid = os.getpid()
        self.give_back = weakref.finalize(self, _give_back, pool, self.conn, self.pid)
        self.give_back.atexit = False


def _give_back(pool: Any, conn: Any, pid: int) -> None:
    if os.getpid() == pid:  # a forked child leaves its parent's connections alone
        pool.release(conn)


def missing(reply: object) -> bool:
    """Whether Redis refused a call only because it does not have the router loaded."""
    if not isinstance(reply, redis.ResponseError):
        return False
    text = str(reply)
    return (isinstance(reply, redis.exceptions.NoScriptError) or "Function not found" in text
            or text.lower().startswith("unknown command"))


class RouterWire:
    """Router calls: ``argv`` is what follows the key prefix (operation, time, JSON
    arguments, callbacks-open flag); replies are the router's raw JSON text."""

    def __init__(self, client: redis.Redis, prefix: str, body: str | None = None) -> None:
        self.client = client
        self.prefix = prefix
        self.library, self.function, self.script, self.sha = router_code(
            script_text() if body is None else body)
        self.head: tuple[Any, ...] = ("FCALL", self.function, 0, prefix)
        self._local = threading.local()

    def call(self, argv: Sequence[Any]) -> Any:
        """One router call; a ResponseError is Redis's answer (the router's own errors)."""
        try:
            return self._send(argv)
        except redis.ResponseError as exc:
            if not missing(exc):
                raise
            self.load(exc)
            return self._send(argv)

    def calls(self, argvs: Sequence[Sequence[Any]]) -> list[Any]:
        """Many router calls in one round trip (each still atomic): each one's reply, or
        the ResponseError it got, in order."""
        if not argvs:
            return []
        replies = self._send_many(argvs)
        refused = [r for r in replies if missing(r)]
        if refused:
            # the router was not loaded: those calls did not run; run them now, in order
            self.load(refused[0])
            for i, argv in enumerate(argvs):
                if missing(replies[i]):
                    try:
                        replies[i] = self._send(argv)
                    except redis.ResponseError as exc:
                        replies[i] = exc
        return replies

    def load(self, refused: redis.ResponseError) -> None:
        """Give Redis the router: a function library, or a script on a Redis that does not
        know FCALL."""
        if self.head[0] == "FCALL" and str(refused).lower().startswith("unknown command"):
            self.head = ("EVALSHA", self.sha, 0, self.prefix)
        if self.head[0] == "EVALSHA":
            self.client.script_load(self.script)
            return
        try:
            self.client.function_load(self.library)
        except redis.ResponseError as exc:
            if "already exists" not in str(exc):  # else another process loaded it meanwhile
                raise
        self.forget_old_libraries()

    def forget_old_libraries(self, now: float | None = None) -> list[str]:
        """Note this version as loaded now; delete the versions nobody loaded for
        :data:`OLD_LIBRARY_S`. Returns the names deleted."""
        at = time.time() if now is None else now
        self.client.hset(LIBRARIES_KEY, self.function, at)
        gone = []
        for raw_name, raw_at in self.client.hgetall(LIBRARIES_KEY).items():
            name = raw_name.decode() if isinstance(raw_name, bytes) else str(raw_name)
            if name != self.function and at - float(raw_at) > OLD_LIBRARY_S:
                try:
                    self.client.function_delete(name)
                except redis.ResponseError:
                    pass  # deleted already (or by hand)
                self.client.hdel(LIBRARIES_KEY, name)
                gone.append(name)
        return gone

    # ------------------------------------------------------------------ connections

    def _connection(self) -> Any:  # a redis.connection.Connection of the client's pool
        held: _Held | None = getattr(self._local, "held", None)
        if held is None or held.pid != os.getpid():  # none yet, or a forked child
            held = self._local.held = _Held(self.client.connection_pool)
        return held.conn

    def _drop(self, conn: Any) -> None:
        held: _Held | None = getattr(self._local, "held", None)
        self._local.held = None
        conn.disconnect()
        if held is not None:
            held.give_back()

    def _send(self, argv: Sequence[Any]) -> Any:
        command = (*self.head, *argv)
        conn = self._connection()
        try:
            conn.send_command(*command)
            return conn.read_response()
        except redis.ResponseError:
            raise
        except _BROKEN:
            self._drop(conn)
            return self.client.execute_command(*command)
        except BaseException:
            self._drop(conn)  # interrupted mid-reply: the connection's state is unknown
            raise

    def _send_many(self, argvs: Sequence[Sequence[Any]]) -> list[Any]:
        commands = [(*self.head, *argv) for argv in argvs]
        conn = self._connection()
        try:
            conn.send_packed_command(conn.pack_commands(commands))
            replies: list[Any] = []
            for _ in commands:
                try:
                    replies.append(conn.read_response())
                except redis.ResponseError as exc:
                    replies.append(exc)
            return replies
        except _BROKEN:
            self._drop(conn)
            pipe = self.client.pipeline(transaction=False)
            for command in commands:
                pipe.execute_command(*command)
            return list(pipe.execute(raise_on_error=False))
        except BaseException:
            self._drop(conn)
            raise
