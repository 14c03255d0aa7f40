"""The flow editor's work, apart from HTTP: check, draw, simulate, keep and publish versions.

- Checking a draft runs ``call_flows.loader.check_paths`` -- exactly what
  ``ivr flows check`` runs -- on a scratch copy of the definitions directory with the
  draft in place of the flow's file, so cross-file problems (a ``goto`` to a missing
  entry, a line naming a flow that no longer exists) are found too.
- Every saved text is a row of ``flow_versions`` (author, time); the text on disk is
  the published one. Publishing writes the file atomically and reloads the registry:
  new calls get the new version, calls in progress keep theirs (the registry keeps
  every version it loaded, ``FlowSync`` archives them in Redis for other processes).
- The simulator replays a script of inputs on the draft with ``FlowHarness`` from the
  first step each time: the engine is deterministic, so no state is kept between
  requests.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from call_flows.loader import load_marked, parse_flow
from call_flows.model import Flow, FlowError, Problem
from call_flows.registry import FlowRegistry
from call_flows.testing import FlowHarness, HarnessError
from ivr.errors import IvrError
from ivr.web.versioned import ConfigError, check_replacing, record_published, write_atomically

TEXT_KEYS = ("prompt", "reprompt", "keypad_prompt", "invalid", "thanks", "number_prompt")
MAX_TEXT = 200_000
MAX_INPUTS = 60


class FlowAdminError(IvrError):
    """A flow-editor action that cannot be done; the message says why and what to do."""


def problem_view(problem: Problem, draft_file: str) -> dict[str, Any]:
    here = Path(problem.file).name == Path(draft_file).name
    return {"file": Path(problem.file).name, "line": problem.line, "message": problem.message,
            "in_draft": here}


class FlowAdmin:
    def __init__(self, registry: FlowRegistry, database: Any, flow_sync: Any = None) -> None:
        self.registry = registry
        self.db = database
        self.sync = flow_sync

    # ------------------------------------------------------------------ reading

    def flow(self, flow_id: str) -> Flow:
        try:
            return self.registry.current(flow_id)
        except Exception as exc:
            raise FlowAdminError(f"no flow named {flow_id!r} is loaded") from exc

    def file_of(self, flow_id: str) -> Path:
        return Path(self.flow(flow_id).file)

    def catalogue(self) -> dict[str, Any]:
        flows = []
        for fid in self.registry.flow_ids:
            flow = self.registry.current(fid)
            flows.append({"id": fid, "version": flow.version, "languages": flow.languages,
                          "nodes": len(flow.nodes), "file": Path(flow.file).name,
                          "lines": [ln.name for ln in self.registry.lines if ln.flow == fid]})
        lines = [{"name": ln.name, "default": ln.default, "numbers": ln.numbers,
                  "flow": ln.flow, "language": ln.language, "languages": ln.languages,
                  "hours": hours_text(ln.hours), "holidays": len(ln.hours.holidays)}
                 for ln in self.registry.lines]
        return {"flows": flows, "lines": lines}

    def versions(self, flow_id: str) -> list[dict[str, Any]]:
        """Every stored version, newest first; the text on disk is recorded first if new."""
        self.record_disk_version(flow_id)
        return list(reversed(self.db.flows.versions(flow_id)))

    def record_disk_version(self, flow_id: str) -> None:
        """Keep the published text (shipped, or edited by hand) as a version row."""
        record_published(self.db, flow_id, self.flow(flow_id).source)

    def draft_text(self, flow_id: str) -> tuple[str, int | None]:
        """The newest stored text (a draft may be newer than the published one)."""
        versions = self.versions(flow_id)
        if versions:
            return versions[0]["text"], versions[0]["version"]
        return self.flow(flow_id).source, None

    # ------------------------------------------------------------------ checking

    def check(self, flow_id: str, text: str) -> list[dict[str, Any]]:
        """Problems with ``text`` as the new content of the flow's file."""
        if len(text) > MAX_TEXT:
            return [{"file": "", "line": 1, "in_draft": True,
                     "message": f"the text is too long (over {MAX_TEXT} characters)"}]
        target = self.file_of(flow_id)
        problems = check_replacing(self.registry.directory or target.parent, target, text)
        if not problems:
            flow, more = parse_flow(text, target.name)
            if flow is not None and flow.id != flow_id:
                problems = [Problem(str(target), _line_of_key(text, "flow"),
                                    f"this editor is for flow '{flow_id}'; the text "
                                    f"defines '{flow.id}'")]
            problems.extend(more)
        views = [problem_view(p, target.name) for p in problems]
        if any(v["in_draft"] for v in views):
            # Other files' complaints that the draft's flow is missing follow from the
            # draft's own problems: show those first and alone.
            views = [v for v in views if v["in_draft"] or f"'{flow_id}'" not in v["message"]]
        return views

    def parse(self, flow_id: str, text: str) -> Flow | None:
        flow, problems = parse_flow(text, self.file_of(flow_id).name)
        return flow if not problems else None

    # ------------------------------------------------------------------ prompts table

    def prompts(self, text: str) -> dict[str, Any]:
        """Every spoken text per language, side by side, from the raw YAML (so it works on
        a draft with errors); a language with no text is flagged ``missing``."""
        try:
            data, _ = load_marked(text)
        except Exception:  # noqa: BLE001  (a YAML syntax error: the problems list says it)
            return {"languages": [], "rows": []}
        if not isinstance(data, Mapping):
            return {"languages": [], "rows": []}
        langs = [x for x in (data.get("languages") or []) if isinstance(x, str)]
        rows: list[dict[str, Any]] = []
        nodes = data.get("nodes")
        if isinstance(nodes, Mapping):
            for nid, node in nodes.items():
                if not isinstance(node, Mapping):
                    continue
                for key in TEXT_KEYS:
                    if key in node:
                        rows.append(_prompt_row(str(nid), key, node[key], langs,
                                                node.line_of(key) if hasattr(node, "line_of")
                                                else 0))
        messages = data.get("messages")
        if isinstance(messages, Mapping):
            for name, value in messages.items():
                line = messages.line_of(name) if hasattr(messages, "line_of") else 0
                rows.append(_prompt_row("messages", str(name), value, langs, line))
        return {"languages": langs, "rows": rows,
                "missing": sum(len(r["missing"]) for r in rows)}

    # ------------------------------------------------------------------ simulator

    def simulate(self, flow_id: str, text: str, inputs: Iterable[Mapping[str, Any]],
                 caller: str = "+34600111222") -> dict[str, Any]:
        flow = self.parse(flow_id, text)
        if flow is None:
            raise FlowAdminError("the draft has problems: fix them before simulating")
        registry = self._scratch_registry(flow)
        line = registry.lines[0]
        harness = FlowHarness(registry, check_replay=False)
        turns: list[dict[str, Any]] = []
        try:
            harness.call(caller=caller, called=line.numbers[0])
            turns.append(_turn(harness, "call"))
            for item in list(inputs)[:MAX_INPUTS]:
                if harness.ended:
                    break
                if "press" in item:
                    keys = str(item["press"])[:32]
                    harness.press(keys)
                    turns.append(_turn(harness, f"press {keys}"))
                elif "say" in item:
                    words = str(item["say"])[:200]
                    harness.say(words, float(item.get("confidence", 0.9)))
                    turns.append(_turn(harness, f"say “{words}”"))
                elif item.get("silence"):
                    harness.silence()
                    turns.append(_turn(harness, "silence"))
                elif item.get("queue_left"):
                    harness.queue_left(str(item["queue_left"]))
                    turns.append(_turn(harness, f"queue: {item['queue_left']}"))
        except HarnessError as exc:
            raise FlowAdminError(f"the engine refused the draft: {exc}") from exc
        return {"line": line.name, "language": harness.session.language if harness.session
                else None, "turns": turns}

    def _scratch_registry(self, draft: Flow) -> FlowRegistry:
        others = [self.registry.current(fid) for fid in self.registry.flow_ids
                  if fid != draft.id]
        line = next((ln for ln in self.registry.lines if ln.flow == draft.id), None)
        if line is None:  # a sub-flow no line answers with: borrow the default line
            base = self.registry.default_line
            language = base.language if base.language in draft.languages else None
            line = dataclasses.replace(base, flow=draft.id, language=language,
                                       languages=draft.languages)
        line = dataclasses.replace(line, default=True,
                                   numbers=line.numbers or ("+34930009999",))
        return FlowRegistry(None, [*others, draft], [line])

    # ------------------------------------------------------------------ versions

    def save_draft(self, flow_id: str, text: str, author: str) -> int:
        problems = self.check(flow_id, text)
        if problems:
            raise FlowAdminError("the draft has problems: " + "; ".join(
                f"line {p['line']}: {p['message']}" for p in problems[:5]))
        self.record_disk_version(flow_id)
        number: int = self.db.flows.save(flow_id, text, author)
        self.db.audit.write(author, "flow.save", "flow", flow_id, {"version": number})
        return number

    def publish(self, flow_id: str, number: int, author: str) -> dict[str, Any]:
        """Make stored version ``number`` the one new calls get (also a roll-back)."""
        row = self.db.flows.get(flow_id, number)
        if row is None:
            raise FlowAdminError(f"flow {flow_id!r} has no stored version {number}")
        problems = self.check(flow_id, row["text"])
        if problems:
            raise FlowAdminError(f"version {number} no longer passes the checks "
                                 f"(line {problems[0]['line']}: {problems[0]['message']})")
        path = self.file_of(flow_id)
        _write_atomically(path, row["text"])
        try:
            changed = self.registry.reload()
        except FlowError as exc:  # cannot happen after check(), unless a file changed since
            raise FlowAdminError(f"the registry refused the new text: {exc}") from exc
        if self.sync is not None:
            self.sync.check()
            self.sync.archive()
        self.db.flows.publish(flow_id, number)
        self.db.audit.write(author, "flow.publish", "flow", flow_id, {"version": number})
        return {"version": number, "flow_version": self.registry.current(flow_id).version,
                "changed": changed}


DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def hours_text(hours: Any) -> str:
    """Opening hours in one line: ``mon 09:00-18:00; ...``."""
    if hours.always_open:
        return "24/7"
    parts = []
    for day, spans in zip(DAYS, hours.weekly):
        if spans:
            text = ", ".join(f"{a // 60:02d}:{a % 60:02d}-{b // 60:02d}:{b % 60:02d}"
                             for a, b in spans)
            parts.append(f"{day} {text}")
    return "; ".join(parts) or "closed"


def _prompt_row(node: str, key: str, value: Any, langs: list[str], line: int
                ) -> dict[str, Any]:
    texts: dict[str, str] = {}
    if isinstance(value, Mapping):
        for lang in langs:
            given = value.get(lang)
            if isinstance(given, str) and given.strip():
                texts[lang] = given.strip()
            elif isinstance(given, Mapping) and given.get("play"):
                texts[lang] = f"▶ {given['play']}"
    elif isinstance(value, str) and langs:  # one text for every language: only the first
        texts[langs[0]] = value
    return {"node": node, "key": key, "line": line, "texts": texts,
            "missing": [lang for lang in langs if lang not in texts]}


def _turn(harness: FlowHarness, said: str) -> dict[str, Any]:
    gather = harness.gather
    return {"input": said, "heard": harness.heard(), "node": harness.node,
            "ended": harness.ended, "outcome": harness.outcome,
            "language": harness.session.language if harness.session else None,
            "visited": [str(r["node"]) for r in harness.steps[-1].log] if harness.steps else [],
            "expects": None if gather is None else
            {"keys": gather.dtmf, "speech": gather.speech, "hints": list(gather.hints)[:12]}}


def _line_of_key(text: str, key: str) -> int:
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith(f"{key}:"):
            return number
    return 1


def _write_atomically(path: Path, text: str) -> None:
    try:
        write_atomically(path, text, read_only_hint="set IVR_FLOWS_DIR to a writable copy "
                         "of the definitions")
    except ConfigError as exc:
        raise FlowAdminError(str(exc)) from exc
