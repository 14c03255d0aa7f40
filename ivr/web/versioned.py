"""Versions of a configuration file edited in the browser: draft, publish, roll back.

Lines (``lines.yaml``) and queue rules (``IVR_QUEUES_FILE``) are kept like flows: every
saved text is a row of ``flow_versions`` (author, time) under a reserved id that no
flow can have (flow ids are names; these start with ``@``), and the text on disk is
the published one. Publishing writes the file atomically (a temporary file in the
same directory, then ``os.replace``), so a reader sees the old text or the new one,
never half of it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from call_flows.loader import check_paths, flow_files
from call_flows.model import Problem
from ivr.errors import IvrError

LINES_KEY = "@lines"
QUEUES_KEY = "@queues"


class ConfigError(IvrError):
    """A configuration edit that cannot be done; the message says why and what to do."""


class VersionedFile:
    """One file on disk plus its stored versions (newest last in the table)."""

    def __init__(self, database: Any, key: str, path: Path) -> None:
        self.db = database
        self.key = key
        self.path = path

    def disk_text(self) -> str:
        try:
            return self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return ""

    def record_disk_version(self) -> None:
        """Keep the text on disk (shipped, or edited by hand) as the published version."""
        source = self.disk_text()
        if source:
            record_published(self.db, self.key, source)

    def versions(self) -> list[dict[str, Any]]:
        """Every stored version, newest first."""
        self.record_disk_version()
        return list(reversed(self.db.flows.versions(self.key)))

    def newest(self) -> tuple[str, int | None]:
        """The newest stored text: a draft may be newer than the published one."""
        versions = self.versions()
        if versions:
            return versions[0]["text"], versions[0]["version"]
        return self.disk_text(), None

    def stale(self, base: str | None, newest: int | None) -> bool:
        """Whether a form built on version ``base`` would overwrite a newer save (two
        admins editing at once): the later one is refused, not silently lost. A form
        without the field (an API client) is not checked."""
        if base is None:
            return False
        return base.strip() != ("" if newest is None else str(newest))

    def get(self, number: int) -> dict[str, Any]:
        row = self.db.flows.get(self.key, number)
        if row is None:
            raise ConfigError(f"there is no stored version {number} of {self.path.name}")
        return dict(row)

    def save(self, text: str, author: str) -> int:
        self.record_disk_version()
        newest = self.db.flows.versions(self.key)
        if newest and newest[-1]["text"] == text:  # saving twice keeps one version
            return int(newest[-1]["version"])
        number: int = self.db.flows.save(self.key, text, author)
        self.db.audit.write(author, "config.save", "config", self.key, {"version": number})
        return number

    def mark_published(self, number: int, author: str) -> None:
        self.db.flows.publish(self.key, number)
        self.db.audit.write(author, "config.publish", "config", self.key, {"version": number})


def record_published(db: Any, key: str, source: str) -> None:
    """Make ``source`` (the text in use: shipped, or edited by hand) the published version
    of ``key``: an identical stored version is re-published, else it is stored first."""
    published = db.flows.get(key)
    if published is not None and published["text"] == source:
        return
    same = next((v for v in reversed(db.flows.versions(key)) if v["text"] == source), None)
    number = same["version"] if same else db.flows.save(key, source, "file")
    db.flows.publish(key, number)


def write_atomically(path: Path, text: str, *, read_only_hint: str = "point the setting "
                     "at a writable copy") -> None:
    """Replace ``path`` with ``text`` at once (a temporary file renamed over it): readers
    see the old text or the new, never half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not os.access(path.parent, os.W_OK):
        raise ConfigError(f"cannot write {path}: the directory is read-only; {read_only_hint}")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def check_replacing(source_dir: Path, target: Path, text: str) -> list[Problem]:
    """``ivr flows check`` on a scratch copy of ``source_dir`` with ``text`` as ``target``."""
    with tempfile.TemporaryDirectory(prefix="config-check-") as scratch:
        base = Path(scratch)
        for path in flow_files([source_dir]):
            if path.resolve() == target.resolve():
                continue
            relative = path.relative_to(source_dir)
            (base / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, base / relative)
        draft = base / target.relative_to(source_dir)
        draft.parent.mkdir(parents=True, exist_ok=True)
        draft.write_text(text, encoding="utf-8")
        return [Problem(str(target) if Path(p.file).name == target.name else p.file,
                        p.line, p.message) for p in check_paths([base])]
