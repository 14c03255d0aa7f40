"""How the router reaches Redis: as a function library, as a script where Redis has no
functions, again after Redis lost it, and on one connection per thread given back when
the thread ends."""

from __future__ import annotations

import gc
import threading
import time

import redis

from queueing.store import QueueStore


def test_the_router_runs_as_a_function_and_comes_back_after_a_flush(redis_client: redis.Redis) -> None:
    store = QueueStore(redis_client)
    store.upsert_agent("a1", {"lang:es": 1})
    assert store._wire.head[0] == "FCALL"
    assert [lib[1] for lib in redis_client.function_list()] == [store._wire.function]
    redis_client.function_flush()
    assert store.set_state("a1", "available") is None  # loaded again, then run
    assert store.enqueue("c1", "main", {"lang:es": 1})[0] == "reserved"


def test_as_a_script_it_routes_the_same(redis_client: redis.Redis) -> None:
    redis_client.function_flush()
    store = QueueStore(redis_client)
    store._wire.head = ("EVALSHA", store._wire.sha, 0, store.prefix)  # a Redis before 7.0
    store.upsert_agent("a1", {"lang:es": 1})
    redis_client.script_flush()
    out = store.batch([("set_state", {"agent": "a1", "state": "available"}, None),
                       ("accept", {"agent": "a1", "call": "nope"}, None)])
    assert out[0] == {"assignment": None} and type(out[1]).__name__ == "UnknownCall"
    assert store.enqueue("c1", "main", {"lang:es": 1})[0] == "reserved"
    assert redis_client.function_list() == []


def test_each_thread_keeps_one_connection_and_gives_it_back(redis_client: redis.Redis) -> None:
    store = QueueStore(redis_client)
    pool = redis_client.connection_pool
    store.upsert_agent("a1", {"lang:es": 1})
    before = len(pool._in_use_connections)  # this thread's

    def work(i: int) -> None:
        for j in range(20):
            store.enqueue(f"t{i}-{j}", "main", {"lang:es": 2})

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    gc.collect()
    assert len(store.waiting()) == 80
    assert len(pool._in_use_connections) == before


def test_old_versions_of_the_library_are_deleted_once_nobody_loads_them(
        redis_client: redis.Redis) -> None:
    from queueing.store_wire import OLD_LIBRARY_S, RouterWire, script_text

    old = RouterWire(redis_client, "q:", body=script_text() + "\n-- an older version\n")
    new = RouterWire(redis_client, "q:")
    redis_client.function_flush()
    old.load(redis.ResponseError("Function not found"))
    new.load(redis.ResponseError("Function not found"))
    names = sorted(lib[1] for lib in redis_client.function_list())
    assert names == sorted([old.function, new.function])  # a rolling deploy: both run
    later = time.time() + 2 * OLD_LIBRARY_S  # a day after anybody loaded the old one
    assert new.forget_old_libraries(now=later) == [old.function]
    assert [lib[1] for lib in redis_client.function_list()] == [new.function]
