"""Keeping every process on the same flows: reload changed files, share old versions.

A changed flow file takes effect for new calls only. Each process watches the
definitions directory (a stat every few seconds, in a thread) and reloads when a
file changes; an invalid edit is refused with ``FILE:LINE`` in the log and the
running flows stay. Every version a process loads is archived in Redis
(``ivr:flows:{flow_id}`` → {version: text}), so a worker that never loaded the
version a call started on (it was started after the edit) fetches it there and the
call finishes on the version it began with.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import redis

from call_flows.model import FlowError

log = logging.getLogger(__name__)


def _signature(directory: Path) -> tuple[tuple[str, int, int], ...]:
    out = []
    for path in sorted(directory.glob("*.y*ml")):
        try:
            stat = path.stat()
        except FileNotFoundError:
            continue
        out.append((path.name, stat.st_mtime_ns, stat.st_size))
    return tuple(out)


class FlowSync:
    def __init__(self, registry: Any, client: redis.Redis, directory: Path | None,
                 interval_s: float = 2.0) -> None:
        self.registry = registry
        self.client = client
        self.directory = directory
        self.interval_s = interval_s
        self._seen = _signature(directory) if directory else ()
        self._thread: threading.Thread | None = None
        self._archived: set[tuple[str, str]] = set()

    def start(self) -> None:
        if self.directory is None or (self._thread and self._thread.is_alive()):
            return
        self._thread = threading.Thread(target=self._watch, name="flow-sync", daemon=True)
        self._thread.start()

    def check(self) -> list[str]:
        """Reload when a file changed; returns the flows whose current version changed."""
        if self.directory is None:
            return []
        seen = _signature(self.directory)
        if seen == self._seen:
            return []
        self._seen = seen
        try:
            changed: list[str] = self.registry.reload()
        except FlowError as exc:
            for problem in exc.problems:
                log.error("flow not reloaded: %s", problem)
            return []
        if changed:
            log.info("flows reloaded for new calls: %s", ", ".join(changed))
        self.archive()
        return changed

    def archive(self) -> None:
        """Store the text of every loaded version (idempotent, HSETNX)."""
        pipe = self.client.pipeline(transaction=False)
        fresh = []
        for flow_id in self.registry.flow_ids:
            for version in self.registry.versions(flow_id):
                if (flow_id, version) in self._archived:
                    continue
                flow = self.registry.get(flow_id, version)
                if flow is not None and flow.source:
                    pipe.hsetnx(f"ivr:flows:{flow_id}", version, flow.source)
                    fresh.append((flow_id, version))
        try:
            pipe.execute()
            self._archived.update(fresh)
        except redis.RedisError as exc:
            log.warning("could not archive flow versions (%s); will retry", exc)

    def ensure(self, flow_id: str, version: str) -> None:
        """Make ``version`` of ``flow_id`` available here (Redis read only on a miss)."""
        if not version or self.registry.get(flow_id, version) is not None:
            return
        try:
            text = self.client.hget(f"ivr:flows:{flow_id}", version)
        except redis.RedisError:
            return  # the engine falls back to the current version
        if text:
            try:
                self.registry.add_version_text(flow_id, version, text)
            except FlowError:
                log.exception("archived flow %s@%s does not load", flow_id, version)

    def _watch(self) -> None:
        self.archive()
        while True:
            time.sleep(self.interval_s)
            try:
                self.check()
            except Exception:  # the watcher must outlive any one bad edit
                log.exception("flow watcher failed; retrying")
