"""The flows and lines a server answers with, every loaded version kept.

Calls in progress finish on the flow version they started with: the registry keys
flows by (flow id, version) and never forgets one it loaded; :meth:`reload` only
changes which version *new* calls get. The web layer can hand back an older
version's text (from its database) with :meth:`add_version_text`.
"""

from __future__ import annotations

import dataclasses
import re
import threading
from collections.abc import Iterable
from pathlib import Path

from call_flows.hours import Line, parse_line, to_e164
from call_flows.loader import YamlSyntaxError, flow_files, load_marked, parse_flow
from call_flows.model import Flow, FlowError, Problem, UnknownFlow
from call_flows.validate import MarkedDict

DEFAULT_DIR = Path(__file__).resolve().parent / "definitions"
LINES_FILES = frozenset({"lines.yaml", "lines.yml"})


def _line_of(text: str, key: str) -> int:
    m = re.search(rf"^{re.escape(key)}\s*:", text, re.MULTILINE)
    return text.count("\n", 0, m.start()) + 1 if m else 1


def _load_lines(path: Path, problems: list[Problem]) -> list[Line]:
    try:
        data, dups = load_marked(path.read_text(encoding="utf-8"))
    except YamlSyntaxError as exc:
        problems.append(Problem(str(path), exc.line, exc.message))
        return []
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(Problem(str(path), 1, f"cannot read the file: {exc}"))
        return []
    problems.extend(Problem(str(path), line, msg) for line, msg in dups)
    if not isinstance(data, MarkedDict) or not isinstance(data.get("lines"), MarkedDict) \
            or set(data) != {"lines"}:
        problems.append(Problem(str(path), 1, "a lines file holds one key, 'lines', mapping "
                                              "line names to numbers, flow, hours..."))
        return []
    raw = data["lines"]
    lines = [parse_line(str(name), value, str(path), raw.line_of(name), problems)
             for name, value in raw.items()]
    return [line for line in lines if line]


def load_sources(paths: Iterable[Path]) -> tuple[list[Flow], list[Line], list[Problem]]:
    """Load flow files and lines files; check references between them."""
    flows: list[Flow] = []
    lines: list[Line] = []
    line_files: list[Path] = []
    problems: list[Problem] = []
    for path in paths:
        if path.name in LINES_FILES:
            lines.extend(_load_lines(path, problems))
            line_files.append(path)
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(Problem(str(path), 1, f"cannot read the file: {exc}"))
            continue
        flow, more = parse_flow(text, str(path))
        problems.extend(more)
        if flow:
            flows.append(flow)
    by_id: dict[str, Flow] = {}
    for flow in flows:
        if flow.id in by_id:
            problems.append(Problem(flow.file, _line_of(flow.source, "flow"),
                                    f"flow '{flow.id}' is also defined in {by_id[flow.id].file}"))
        by_id.setdefault(flow.id, flow)
    for flow in flows:
        for target, entry, at in flow.gotos:
            other = by_id.get(target)
            if other is None:
                problems.append(Problem(flow.file, at, f"goto: no flow named '{target}'"))
            elif entry and entry != other.start and entry not in other.entries:
                problems.append(Problem(flow.file, at, f"goto: '{entry}' is not the start or "
                                                         f"one of the entries of flow '{target}'"))
    if line_files:
        where = str(line_files[0])
        defaults = [line for line in lines if line.default]
        if lines and len(defaults) != 1 and len(lines) > 1:
            problems.append(Problem(where, 1, f"exactly one line must say 'default: true' "
                                              f"(found {len(defaults)})"))
        seen: dict[str, str] = {}
        for line in lines:
            at = line.file_line
            for number in line.numbers:
                if number in seen:
                    problems.append(Problem(where, at, f"number {number} belongs to both lines "
                                                       f"'{seen[number]}' and '{line.name}'"))
                seen[number] = line.name
            flow = by_id.get(line.flow)
            if flow is None and flows:
                problems.append(Problem(where, line.flow_line, f"line '{line.name}': no flow named "
                                                   f"'{line.flow}'"))
            elif flow is not None:
                extra = [x for x in line.languages + ((line.language,) if line.language else ())
                         if x not in flow.languages]
                if extra:
                    problems.append(Problem(where, at, f"line '{line.name}': flow '{flow.id}' "
                                                       f"does not speak {', '.join(extra)}"))
                problems.extend(_notice_problems(line, flow, where))
    return flows, lines, problems


def _notice_problems(line: Line, flow: Flow, where: str) -> list[Problem]:
    """A recorded line must be able to tell every caller so, in their language."""
    if not line.record_calls:
        return []
    notice = flow.messages.get("recording_notice") or {}
    spoken = [lang for lang in (line.languages or flow.languages) if lang in flow.languages]
    missing = [lang for lang in spoken if lang not in notice]
    if not missing:
        return []
    return [Problem(where, line.record_line, f"line '{line.name}': record_calls needs the "
                                             f"caller told in {', '.join(missing)}: add "
                                             f"messages.recording_notice to flow '{flow.id}'")]


class FlowRegistry:
    """Every loaded flow version plus the lines; thread-safe for readers."""

    def __init__(self, directory: Path | None, flows: Iterable[Flow], lines: Iterable[Line]):
        self.directory = directory
        self._lock = threading.Lock()
        self._versions: dict[tuple[str, str], Flow] = {}
        self._current: dict[str, str] = {}
        self._lines: tuple[Line, ...] = ()
        self._install(list(flows), list(lines))

    # ------------------------------------------------------------------ loading

    @classmethod
    def load(cls, directory: str | Path | None = None) -> FlowRegistry:
        """Load every flow and ``lines.yaml`` under ``directory`` (default: the shipped
        definitions); raise :class:`FlowError` listing every problem."""
        path = Path(directory) if directory else DEFAULT_DIR
        flows, lines = cls._read(path)
        return cls(path, flows, lines)

    @staticmethod
    def _read(path: Path) -> tuple[list[Flow], list[Line]]:
        if not path.is_dir():
            raise FlowError([Problem(str(path), 1, "no such directory of flow definitions")])
        files = flow_files([path])
        flows, lines, problems = load_sources(files)
        if not any(f.name in LINES_FILES for f in files):
            problems.append(Problem(str(path / "lines.yaml"), 1,
                                    "missing: lines.yaml says which flow answers which number"))
        elif not lines and not problems:
            problems.append(Problem(str(path / "lines.yaml"), 1, "no lines defined"))
        if problems:
            raise FlowError(problems)
        return flows, lines

    def reload(self) -> list[str]:
        """Re-read the directory; new calls get changed flows, calls in progress keep
        theirs. Returns the ids of flows whose current version changed. On invalid files
        raises :class:`FlowError` and keeps everything as it was."""
        if self.directory is None:
            return []
        flows, lines = self._read(self.directory)
        before = dict(self._current)
        self._install(flows, lines)
        return sorted(fid for fid, ver in self._current.items() if before.get(fid) != ver)

    def _install(self, flows: list[Flow], lines: list[Line]) -> None:
        with self._lock:
            versions = dict(self._versions)
            current = dict(self._current)
            for flow in flows:
                key = self._key_for(versions, flow)
                versions[(flow.id, key)] = dataclasses.replace(flow, version=key)
                current[flow.id] = key
            if lines and not any(line.default for line in lines):
                lines = [dataclasses.replace(lines[0], default=True)] + lines[1:]
            self._versions, self._current = versions, current
            self._lines = tuple(lines) or self._lines

    @staticmethod
    def _key_for(versions: dict[tuple[str, str], Flow], flow: Flow) -> str:
        """The declared version, unless another text already holds it: an edited file whose
        version was not bumped must not change calls in progress."""
        key = flow.version
        known = versions.get((flow.id, key))
        if known is not None and known.digest != flow.digest:
            key = f"{flow.version}~{flow.digest[:8]}"
        return key

    def add_version_text(self, flow_id: str, version: str, text: str) -> Flow:
        """Register an older version's text (e.g. from the database) under ``version``."""
        flow, problems = parse_flow(text, f"<{flow_id}@{version}>")
        if flow is None:
            raise FlowError(problems)
        if flow.id != flow_id:
            raise FlowError([Problem(flow.file, _line_of(text, "flow"),
                                     f"the text defines flow '{flow.id}', not '{flow_id}'")])
        flow = dataclasses.replace(flow, version=version)
        with self._lock:
            versions = dict(self._versions)
            versions[(flow_id, version)] = flow
            self._versions = versions
        return flow

    # ------------------------------------------------------------------ lookups

    def current(self, flow_id: str) -> Flow:
        version = self._current.get(flow_id)
        if version is None:
            raise UnknownFlow(f"no flow named '{flow_id}' is loaded")
        return self._versions[(flow_id, version)]

    def get(self, flow_id: str, version: str) -> Flow | None:
        """That exact version, or None when it was never loaded here."""
        return self._versions.get((flow_id, version))

    def versions(self, flow_id: str) -> list[str]:
        return [ver for fid, ver in self._versions if fid == flow_id]

    @property
    def flow_ids(self) -> list[str]:
        return sorted(self._current)

    @property
    def lines(self) -> tuple[Line, ...]:
        return self._lines

    def line(self, name: str) -> Line | None:
        return next((line for line in self._lines if line.name == name), None)

    @property
    def default_line(self) -> Line:
        return next((line for line in self._lines if line.default), self._lines[0])

    def line_for(self, called: str) -> Line:
        """The line that owns the dialled number; the default line when none does."""
        default = self.default_line
        number = to_e164(called, default.region) if called else None
        for line in self._lines:
            if number and number in line.numbers:
                return line
        return default
