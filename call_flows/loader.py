"""Load flow files: safe YAML with line marks, then the model, then the checks.

``load_flow_text``/``load_flow_file`` return a :class:`~call_flows.model.Flow` or raise
:class:`~call_flows.model.FlowError` listing every problem as ``FILE:LINE: message``,
LINE being the line of the offending key or reference. Parsing uses a
:class:`yaml.SafeLoader` subclass (the ``yaml.safe_load`` rules: no Python tags,
nothing executed) that remembers where each key sat. The parts of a node (texts,
options, validators, conditions) and the graph checks live in :mod:`call_flows.validate`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from call_flows.model import (
    Case,
    Flow,
    FlowError,
    Localized,
    Node,
    NodeType,
    Problem,
    Template,
    Text,
)
from call_flows.validate import (
    ALIASES,
    DEFAULT_MESSAGES,
    KEYS,
    LANG,
    NAME,
    OPTIONAL_MESSAGES,
    TOP_KEYS,
    Ctx,
    MarkedDict,
    MarkedList,
    check_graph,
    parse_condition,
    parse_option,
    parse_validator,
    word,
)


class _MarkedLoader(yaml.SafeLoader):
    duplicates: list[tuple[int, str]]


_BOOL = "tag:yaml.org,2002:bool"
_MarkedLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != _BOOL]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_MarkedLoader.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


def _construct_mapping(loader: _MarkedLoader, node: yaml.MappingNode) -> MarkedDict:
    loader.flatten_mapping(node)
    result = MarkedDict()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        try:
            hash(key)
        except TypeError:
            loader.duplicates.append((line, "a key must be a plain word or number"))
            continue
        if key in result:
            loader.duplicates.append((line, f"duplicate key '{key}'"))
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = line
    return result


def _construct_sequence(loader: _MarkedLoader, node: yaml.SequenceNode) -> MarkedList:
    result = MarkedList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    result.item_lines = [child.start_mark.line + 1 for child in node.value]
    return result


_MarkedLoader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
_MarkedLoader.add_constructor("tag:yaml.org,2002:seq", _construct_sequence)


class YamlSyntaxError(Exception):
    """The text is not YAML; ``line`` is where the parser gave up."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


def load_marked(text: str) -> tuple[Any, list[tuple[int, str]]]:
    """Parse ``text``; return the document and (line, message) for duplicate keys."""
    loader = _MarkedLoader(text)
    loader.duplicates = []
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise YamlSyntaxError(line, f"not valid YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(1, f"not valid YAML: {exc}") from None
    finally:
        loader.dispose()
    return data, loader.duplicates


_REQUIRED: Mapping[NodeType, tuple[str, ...]] = {
    NodeType.SAY: ("prompt", "next"), NodeType.MENU: ("prompt", "options"),
    NodeType.ASK: ("prompt", "var", "next"), NodeType.CONFIRM: ("prompt", "yes", "no"),
    NodeType.BRANCH: ("cases", "else"), NodeType.LOOKUP: ("value", "found", "not_found"),
    NodeType.ANSWER: ("prompt", "next"), NodeType.VOICEMAIL: ("prompt",),
    NodeType.CALLBACK: ("prompt",), NodeType.TRANSFER: ("number",), NodeType.GOTO: ("flow",),
    NodeType.SURVEY: ("prompt", "thanks"),
}
_TEXTS = ("prompt", "reprompt", "keypad_prompt", "invalid", "thanks", "number_prompt", "csat",
          "nps", "comment", "goodbye")
_REFS = {"next": "next", "on_fail": "on_fail", "on_leave": "on_leave", "yes": "yes", "no": "no", "found": "found",
         "not_found": "not_found", "missing": "missing", "else": "default", "return": "return_to",
         "after": "after"}
_PHONE = re.compile(r"^\+?[0-9]{3,15}$")


def _node(ctx: Ctx, nid: str, raw: Any, line: int, gotos: list[Any]) -> Node | None:
    where = f"node '{nid}'"
    if not isinstance(raw, MarkedDict):
        ctx.err(line, f"{where} must be a mapping with a type")
        return None
    if "type" not in raw:
        ctx.err(line, f"{where} has no type")
        return None
    raw_type = raw["type"]
    try:
        ntype = ALIASES.get(raw_type) or NodeType(raw_type)
    except ValueError:
        kinds = ", ".join(sorted([t.value for t in NodeType] + list(ALIASES)))
        ctx.err(raw.line_of("type"), f"{where}: unknown node type '{raw_type}' (use {kinds})")
        return None
    at = raw.line_of
    for key in raw:
        if key not in KEYS[ntype]:
            ctx.err(at(key), f"{where}: unknown key '{key}' for a {ntype.value} node")
    for key in _REQUIRED.get(ntype, ()):
        if key not in raw:
            ctx.err(line, f"{where}: a {ntype.value} node needs '{key}'")
    kw: dict[str, Any] = {"id": nid, "type": ntype, "line": line}
    for key in _TEXTS:
        if key in raw and key in KEYS[ntype]:
            kw[key] = ctx.text(raw[key], at(key), f"{where}: {key}")
    for key, attr in _REFS.items():
        if key in raw and key in KEYS[ntype]:
            kw[attr] = ctx.ref(raw[key], at(key), f"{where}: {key}")
    if "timeout" in raw:
        kw["timeout_s"] = ctx.int_(raw["timeout"], at("timeout"), f"{where}: timeout", 5, 1)
    if ntype == NodeType.MENU and isinstance(raw.get("options"), MarkedDict):
        opts = raw["options"]
        parsed = [parse_option(ctx, str(name), value, opts.line_of(name), where)
                  for name, value in opts.items()]
        keys: dict[str, str] = {}
        for opt in parsed:
            if opt and opt.key:
                if opt.key in keys:
                    ctx.err(opts.line_of(opt.name), f"{where}: key '{opt.key}' is used by "
                                                    f"options '{keys[opt.key]}' and '{opt.name}'")
                keys[opt.key] = opt.name
        kw["options"] = tuple(o for o in parsed if o)
        if not parsed:
            ctx.err(at("options"), f"{where}: a menu needs at least one option")
    elif ntype == NodeType.MENU and "options" in raw:
        ctx.err(at("options"), f"{where}: options must map option names to key/say/next")
    if "confirm" in raw:
        if raw["confirm"] not in {"auto", "always", "never"}:
            ctx.err(at("confirm"), f"{where}: confirm must be auto, always or never")
        else:
            kw["confirm_voice"] = raw["confirm"]
    if ntype == NodeType.ASK:
        var = raw.get("var")
        if "var" in raw and not (isinstance(var, str) and NAME.match(var)):
            ctx.err(at("var"), f"{where}: var must be a variable name")
        kw["var"] = var if isinstance(var, str) else None
        if raw.get("input", "digits") not in {"digits", "speech"}:
            ctx.err(at("input"), f"{where}: input must be digits or speech")
        else:
            kw["input"] = raw.get("input", "digits")
        kw["validator"] = parse_validator(ctx, raw.get("validate"), at("validate"), where)
        if "max_digits" in raw:
            kw["max_digits"] = ctx.int_(raw["max_digits"], at("max_digits"), f"{where}: max_digits",
                                        0, 1) or None
        if "skip" in raw:
            kw["skip"] = parse_option(ctx, "skip", raw["skip"], at("skip"), where)
        sensitive = raw.get("sensitive", False)
        if not isinstance(sensitive, bool):
            ctx.err(at("sensitive"), f"{where}: sensitive must be true or false")
        kw["sensitive"] = sensitive is True or bool(kw["validator"] and kw["validator"].luhn)
    if ntype == NodeType.SURVEY and "csat" not in raw and "nps" not in raw:
        ctx.err(line, f"{where}: a survey node asks 'csat' (1-5), 'nps' (0-10) or both")
    if ntype == NodeType.SURVEY:
        kw["max_length_s"] = 60  # a comment, not a voicemail (max_length below overrides)
    if ntype == NodeType.BRANCH and "cases" in raw:
        cases = raw["cases"]
        if not isinstance(cases, MarkedList) or not cases:
            ctx.err(at("cases"), f"{where}: cases must be a list of {{if: ..., next: ...}}")
        else:
            built = []
            for i, case in enumerate(cases):
                cline = cases.line_of(i)
                if not isinstance(case, MarkedDict) or set(case) != {"if", "next"}:
                    ctx.err(cline, f"{where}: each case needs exactly 'if' and 'next'")
                    continue
                cond = parse_condition(ctx, case["if"], case.line_of("if"), where)
                target = ctx.ref(case["next"], case.line_of("next"), f"{where}: case")
                built.append(Case(cond, target or ""))
            kw["cases"] = tuple(built)
    if ntype == NodeType.LOOKUP:
        if raw.get("by", "account") not in {"account", "phone"}:
            ctx.err(at("by"), f"{where}: by must be account or phone")
        else:
            kw["by"] = raw.get("by", "account")
        if isinstance(raw.get("value"), str):
            template, bad = Template.parse(raw["value"])
            for ref in bad:
                ctx.err(at("value"), f"{where}: unknown placeholder '{{{ref}}}'")
            kw["value"] = template
        elif "value" in raw:
            ctx.err(at("value"), f"{where}: value must be a text such as '{{vars.account}}'")
    for key in ("queue", "topic"):
        if key in raw and key in KEYS[ntype]:
            if not isinstance(raw[key], str) or not NAME.match(raw[key]):
                ctx.err(at(key), f"{where}: {key} must be a plain name")
            else:
                kw[key] = raw[key]
    if "skills" in raw and "skills" in KEYS[ntype]:
        skills = raw["skills"]
        if not isinstance(skills, MarkedDict) or any(word(v) is None for v in skills.values()):
            ctx.err(at("skills"), f"{where}: skills must map names to values")
        else:
            kw["skills"] = {str(k): word(v) or "" for k, v in skills.items()}
    if "priority" in raw and "priority" in KEYS[ntype]:
        kw["priority"] = ctx.int_(raw["priority"], at("priority"), f"{where}: priority", 0)
    if "max_length" in raw and "max_length" in KEYS[ntype]:
        kw["max_length_s"] = ctx.int_(raw["max_length"], at("max_length"),
                                      f"{where}: max_length", 120, 1)
    if ntype == NodeType.TRANSFER and "number" in raw:
        if not _PHONE.match(str(raw["number"])):
            ctx.err(at("number"), f"{where}: number must be a phone number such as +34930000000")
        kw["number"] = str(raw["number"])
    if ntype == NodeType.GOTO:
        for key in ("flow", "node"):
            if key in raw and not (isinstance(raw[key], str) and raw[key]):
                ctx.err(at(key), f"{where}: {key} must be a name")
        kw["flow"] = raw.get("flow") if isinstance(raw.get("flow"), str) else None
        kw["entry"] = raw.get("node") if isinstance(raw.get("node"), str) else None
        if kw["flow"]:
            gotos.append((kw["flow"], kw["entry"], at("flow")))
    try:
        return Node(**kw)
    except TypeError as exc:  # a field got an impossible value; already reported above
        ctx.err(line, f"{where}: {exc}")
        return None


def parse_flow(text: str, filename: str) -> tuple[Flow | None, list[Problem]]:
    """Build a flow from YAML text; return it (None when invalid) and every problem."""
    ctx = Ctx(filename)
    try:
        data, duplicates = load_marked(text)
    except YamlSyntaxError as exc:
        return None, [Problem(filename, exc.line, exc.message)]
    for line, message in duplicates:
        ctx.err(line, message)
    if not isinstance(data, MarkedDict):
        ctx.err(1, "a flow file must be a mapping with flow, version, languages, start, nodes")
        return None, ctx.problems
    at = data.line_of
    for key in data:
        if key not in TOP_KEYS:
            ctx.err(at(key), f"unknown key '{key}' (flow keys: {', '.join(sorted(TOP_KEYS))})")
    for key in ("flow", "version", "languages", "start", "nodes"):
        if key not in data:
            ctx.err(data.line, f"the flow needs '{key}'")
    flow_id = data.get("flow")
    if "flow" in data and not (isinstance(flow_id, str) and NAME.match(flow_id)):
        ctx.err(at("flow"), "flow must be a name (letters, digits, _)")
    version = word(data.get("version"))
    if "version" in data and not version:
        ctx.err(at("version"), "version must be a text such as '2026-11-23.1'")
    langs = data.get("languages")
    if not (isinstance(langs, list) and langs and all(isinstance(x, str) and LANG.match(x)
                                                       for x in langs)) or len(set(langs)) != len(langs):
        if "languages" in data:
            ctx.err(at("languages"), "languages must be a list of distinct codes such as [es, ca]")
        langs = []
    ctx.languages = tuple(langs)
    high, low = 0.75, 0.45
    conf = data.get("confidence")
    if conf is not None:
        ok = isinstance(conf, MarkedDict) and set(conf) <= {"high", "low"} and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1
            for v in conf.values())
        high, low = (float(conf.get("high", high)), float(conf.get("low", low))) if ok else (high, low)
        if not ok or low > high:
            ctx.err(at("confidence"), "confidence must be {high: 0..1, low: 0..1} with low <= high")
    vip = ctx.int_(data.get("vip_priority"), at("vip_priority"), "vip_priority", 5)
    messages: dict[str, Localized] = {}
    raw_messages = data.get("messages") or MarkedDict()
    if not isinstance(raw_messages, MarkedDict):
        ctx.err(at("messages"), "messages must map message names to texts")
        raw_messages = MarkedDict()
    for name in raw_messages:
        if name not in DEFAULT_MESSAGES:
            ctx.err(raw_messages.line_of(name), f"unknown message '{name}' (messages: "
                                                f"{', '.join(sorted(DEFAULT_MESSAGES))})")
    for name, defaults in DEFAULT_MESSAGES.items():
        given = raw_messages.get(name)
        if given is not None:
            messages[name] = ctx.text(given, raw_messages.line_of(name), f"messages: {name}") or {}
            continue
        missing = [lang for lang in ctx.languages if lang not in defaults]
        if missing and name not in OPTIONAL_MESSAGES:
            ctx.err(at("languages"), f"no built-in '{name}' text for {', '.join(missing)}: "
                                     f"add messages.{name}")
        messages[name] = {lang: Text(template=Template.parse(defaults[lang])[0])
                          for lang in ctx.languages if lang in defaults}
    nodes: dict[str, Node] = {}
    gotos: list[Any] = []
    raw_nodes = data.get("nodes")
    if isinstance(raw_nodes, MarkedDict) and raw_nodes:
        for nid, raw in raw_nodes.items():
            nline = raw_nodes.line_of(nid)
            if not isinstance(nid, str) or not NAME.match(nid):
                ctx.err(nline, f"node id '{nid}' must be a name (letters, digits, _)")
                continue
            node = _node(ctx, nid, raw, nline, gotos)
            if node:
                nodes[nid] = node
    elif "nodes" in data:
        ctx.err(at("nodes"), "nodes must map node ids to nodes")
    tops = {key: ctx.ref(data.get(key), at(key), key)
            for key in ("start", "language_menu", "human", "closed")}
    entries = data.get("entries")
    entry_ids: tuple[str, ...] = ()
    if isinstance(entries, MarkedList):
        entry_ids = tuple(e for i, e in enumerate(entries)
                          if ctx.ref(e, entries.line_of(i), "entries"))
    elif entries is not None:
        ctx.err(at("entries"), "entries must be a list of node ids")
    bad_refs = False
    for target, line, what in ctx.refs:
        if target not in nodes and (raw_nodes is None or target not in raw_nodes):
            ctx.err(line, f"{what}: no node named '{target}'")
            bad_refs = True
    flow = Flow(id=flow_id if isinstance(flow_id, str) else "", version=version or "",
                file=filename, languages=ctx.languages, start=tops["start"] or "",
                nodes=nodes, messages=messages, language_menu=tops["language_menu"],
                human=tops["human"], closed=tops["closed"], entries=entry_ids,
                high_confidence=high, low_confidence=low, vip_priority=vip, source=text,
                digest=hashlib.sha256(text.encode("utf-8")).hexdigest(), gotos=tuple(gotos))
    if not bad_refs and len(nodes) == len(raw_nodes or ()):
        ctx.problems.extend(check_graph(flow))
    if ctx.problems:
        return None, ctx.problems
    return flow, []


def load_flow_text(text: str, filename: str = "<flow>") -> Flow:
    """Parse and check one flow; raise :class:`FlowError` with every problem found."""
    flow, problems = parse_flow(text, filename)
    if problems or flow is None:
        raise FlowError(problems)
    return flow


def load_flow_file(path: str | Path) -> Flow:
    """Read ``path`` (UTF-8) and load it like :func:`load_flow_text`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FlowError([Problem(str(path), 1, f"cannot read the file: {exc}")]) from None
    return load_flow_text(text, str(path))


def flow_files(paths: Iterable[str | Path]) -> list[Path]:
    """Expand directories to the ``*.yaml``/``*.yml`` files inside them, sorted."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.suffix in {".yaml", ".yml"}
                                and p.is_file()))
        else:
            found.append(path)
    return found


def check_paths(paths: Iterable[str | Path]) -> list[Problem]:
    """Check flow files and ``lines.yaml`` files (directories are searched).

    Besides each file's own checks, cross-file references are checked: every ``goto``
    must name a loaded flow and one of its entry points, every line a loaded flow.
    """
    from call_flows.registry import load_sources

    files = flow_files(paths)
    problems: list[Problem] = []
    for path in files:
        if not path.exists():
            problems.append(Problem(str(path), 1, "no such file or directory"))
    existing = [p for p in files if p.exists()]
    _, _, more = load_sources(existing)
    problems.extend(more)
    return sorted(set(problems), key=lambda p: (p.file, p.line, p.message))

