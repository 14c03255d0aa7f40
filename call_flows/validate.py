"""Turn a marked YAML document into a :class:`Flow`, collecting every problem.

Each problem carries the line of the offending key or reference. After the nodes
are built, the graph is checked: references to missing nodes, unreachable nodes,
loops that never wait for the caller, and loops with no way out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from call_flows.model import (
    ENDING_TYPES,
    INPUT_TYPES,
    WAITING_TYPES,
    Condition,
    Flow,
    Localized,
    Node,
    NodeType,
    Option,
    Problem,
    Template,
    Text,
    Validator,
)


class MarkedDict(dict):  # type: ignore[type-arg]
    """A mapping that knows its own line and the line of each key."""

    line: int = 0
    key_lines: dict[Any, int]

    def line_of(self, key: Any) -> int:
        return self.key_lines.get(key, self.line)


class MarkedList(list):  # type: ignore[type-arg]
    """A sequence that knows its own line and the line of each item."""

    line: int = 0
    item_lines: list[int]

    def line_of(self, index: int) -> int:
        return self.item_lines[index] if 0 <= index < len(self.item_lines) else self.line


DEFAULT_MESSAGES: Mapping[str, Mapping[str, str]] = {
    "not_understood": {"es": "Perdone, no le he entendido.",
                       "ca": "Perdoni, no l'he entès.",
                       "en": "Sorry, I didn't catch that."},
    "keypad_only": {"es": "Por favor, utilice el teclado del teléfono.",
                    "ca": "Si us plau, utilitzi el teclat del telèfon.",
                    "en": "Please use your phone's keypad."},
    "confirm_heard": {"es": "Ha dicho {heard}. ¿Es correcto? Pulse 1 o diga sí; pulse 2 o diga no.",
                      "ca": "Ha dit {heard}. És correcte? Premi 1 o digui sí; premi 2 o digui no.",
                      "en": "You said {heard}. Is that right? Press 1 or say yes; "
                            "press 2 or say no."},
    "callback_number": {"es": "Marque su número de teléfono, con el prefijo, y pulse almohadilla.",
                        "ca": "Marqui el seu número de telèfon, amb el prefix, i premi coixinet.",
                        "en": "Please key in your phone number, with the area code, "
                              "then press hash."},
    "callback_readback": {
        "es": "Le llamaremos al {heard}. Pulse 1 o diga sí para confirmar; pulse 2 o diga no "
              "para cambiarlo.",
        "ca": "El trucarem al {heard}. Premi 1 o digui sí per confirmar-ho; premi 2 o digui "
              "no per canviar-lo.",
        "en": "We'll call you on {heard}. Press 1 or say yes to confirm; press 2 or say no "
              "to change it."},
    "callback_done": {"es": "Perfecto. Le llamaremos lo antes posible. Gracias por llamar.",
                      "ca": "Perfecte. El trucarem tan aviat com puguem. Gràcies per trucar.",
                      "en": "Great. We'll call you back as soon as we can. Thank you for calling."},
    "voicemail_thanks": {"es": "Gracias, hemos recibido su mensaje. Adiós.",
                         "ca": "Gràcies, hem rebut el seu missatge. Adéu.",
                         "en": "Thank you, we have your message. Goodbye."},
    "apology": {"es": "Lo sentimos, ha habido un problema. Le pasamos con una persona.",
                "ca": "Ho sentim, hi ha hagut un problema. El passem amb una persona.",
                "en": "We're sorry, something went wrong. We'll put you through to a person."},
    "recording_notice": {
        "es": "Le informamos de que esta llamada se grabará para mejorar la calidad del servicio.",
        "ca": "L'informem que aquesta trucada es gravarà per millorar la qualitat del servei.",
        "en": "Please note that this call will be recorded to help us improve our service."},
}
#: Messages a flow need not translate into every language it declares; the lines
#: checks ask for them where they are used (``record_calls: true`` needs the notice).
OPTIONAL_MESSAGES = frozenset({"recording_notice", "callback_readback"})

_COMMON = {"type", "description"}
_ASKING = {"prompt", "reprompt", "keypad_prompt", "on_fail", "timeout"}
KEYS: Mapping[NodeType, frozenset[str]] = {t: frozenset(_COMMON | extra) for t, extra in {
    NodeType.SAY: {"prompt", "next"},
    NodeType.MENU: _ASKING | {"options", "confirm"},
    NodeType.ASK: _ASKING | {"var", "input", "validate", "invalid", "skip", "next", "max_digits",
                             "sensitive"},
    NodeType.CONFIRM: _ASKING | {"yes", "no"},
    NodeType.BRANCH: {"cases", "else"},
    NodeType.LOOKUP: {"by", "value", "found", "not_found"},
    NodeType.ANSWER: {"prompt", "next", "missing"},
    NodeType.QUEUE: {"prompt", "queue", "topic", "skills", "priority", "on_fail", "on_leave",
                     "after"},
    NodeType.VOICEMAIL: {"prompt", "thanks", "max_length"},
    NodeType.CALLBACK: _ASKING | {"number_prompt", "thanks", "topic", "priority"},
    NodeType.TRANSFER: {"prompt", "number", "timeout", "on_fail", "after"},
    NodeType.GOTO: {"flow", "node", "return"},
    NodeType.RETURN: {"prompt"},
    NodeType.HANGUP: {"prompt"},
    NodeType.SURVEY: {"prompt", "csat", "nps", "comment", "reprompt", "thanks", "goodbye",
                      "timeout", "max_length"},
}.items()}
ALIASES = {"faq": NodeType.ANSWER, "play": NodeType.SAY}
TOP_KEYS = frozenset({"flow", "version", "description", "languages", "start", "language_menu",
                       "human", "closed", "entries", "confidence", "vip_priority", "messages",
                       "nodes"})
_COND_KEYS = frozenset({"known_customer", "open_follow_up", "within_hours", "vip", "language",
                        "caller", "caller_prefix", "vars", "fields"})
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
LANG = re.compile(r"^[a-z]{2,3}(?:-[A-Z]{2})?$")


class Ctx:
    """Problem collector for one file, plus the references to check afterwards."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []
        self.refs: list[tuple[str, int, str]] = []  # (target, line, what refers)
        self.languages: tuple[str, ...] = ()

    def err(self, line: int, message: str) -> None:
        self.problems.append(Problem(self.file, line, message))

    def ref(self, raw: Any, line: int, what: str) -> str | None:
        if raw is None:
            return None
        if not isinstance(raw, str) or not raw:
            self.err(line, f"{what} must be a node id")
            return None
        self.refs.append((raw, line, what))
        return raw

    def text(self, raw: Any, line: int, what: str) -> Localized | None:
        if raw is None:
            return None
        if isinstance(raw, str) and len(self.languages) == 1:
            single = MarkedDict({self.languages[0]: raw})
            single.line, single.key_lines = line, {}
            raw = single
        if not isinstance(raw, MarkedDict):
            self.err(line, f"{what} must give a text per language "
                           f"({', '.join(self.languages)})")
            return None
        out: dict[str, Text] = {}
        for lang, value in raw.items():
            lline = raw.line_of(lang)
            if lang not in self.languages:
                self.err(lline, f"{what}: language '{lang}' is not declared in languages")
            elif isinstance(value, str):
                template, bad = Template.parse(value)
                for ref in bad:
                    self.err(lline, f"{what}: unknown placeholder '{{{ref}}}'")
                out[lang] = Text(template=template)
            elif isinstance(value, MarkedDict) and set(value) == {"play"} and \
                    isinstance(value["play"], str) and value["play"]:
                out[lang] = Text(play=value["play"])
            else:
                self.err(lline, f"{what}: '{lang}' must be a text or {{play: URL}}")
        for lang in self.languages:
            if lang not in raw:
                self.err(line, f"{what}: missing translation for '{lang}'")
        return out

    def int_(self, raw: Any, line: int, what: str, default: int, lo: int = 0) -> int:
        if raw is None:
            return default
        if isinstance(raw, bool) or not isinstance(raw, int) or raw < lo:
            self.err(line, f"{what} must be a whole number >= {lo}")
            return default
        return raw


def word(raw: Any) -> str | None:
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, (int, float, str)):
        return str(raw)
    return None


def parse_option(ctx: Ctx, name: str, raw: Any, line: int, where: str) -> Option | None:
    if not isinstance(raw, MarkedDict):
        ctx.err(line, f"{where}: option '{name}' must be a mapping with key/say/next")
        return None
    for key in raw:
        if key not in {"key", "say", "next", "set", "language", "label"}:
            ctx.err(raw.line_of(key), f"{where}: unknown key '{key}' in option '{name}'")
    key = word(raw.get("key")) if "key" in raw else None
    if "key" in raw and (key is None or not re.fullmatch(r"[0-9*#]{1,4}", key)):
        ctx.err(raw.line_of("key"), f"{where}: option key must be keypad digits, * or #")
    phrases: dict[str, tuple[str, ...]] = {}
    say = raw.get("say")
    if isinstance(say, MarkedList) and len(ctx.languages) == 1:
        single = MarkedDict({ctx.languages[0]: say})
        single.line, single.key_lines = say.line, {ctx.languages[0]: say.line}
        say = single
    if say is not None:
        if not isinstance(say, MarkedDict):
            ctx.err(raw.line_of("say"), f"{where}: 'say' must list phrases per language")
        else:
            for lang, items in say.items():
                if lang not in ctx.languages:
                    ctx.err(say.line_of(lang), f"{where}: language '{lang}' is not declared")
                    continue
                items = [items] if isinstance(items, str) else items
                if not isinstance(items, list) or not items or \
                        not all(isinstance(i, str) and i.strip() for i in items):
                    ctx.err(say.line_of(lang), f"{where}: phrases for '{lang}' must be "
                                               "a non-empty list of words")
                    continue
                phrases[lang] = tuple(items)
            for lang in ctx.languages:
                if lang not in say:
                    ctx.err(raw.line_of("say"), f"{where}: option '{name}' has no phrases "
                                                f"for '{lang}'")
    if key is None and say is None:
        ctx.err(line, f"{where}: option '{name}' needs a key or phrases to say")
    sets: dict[str, str] = {}
    raw_set = raw.get("set")
    if raw_set is not None:
        if not isinstance(raw_set, MarkedDict):
            ctx.err(raw.line_of("set"), f"{where}: 'set' must map variable names to values")
        else:
            for var, value in raw_set.items():
                if not isinstance(var, str) or not NAME.match(var) or word(value) is None:
                    ctx.err(raw_set.line_of(var), f"{where}: bad variable '{var}' in set")
                else:
                    sets[var] = word(value) or ""
    language = raw.get("language")
    if language is not None and language not in ctx.languages:
        ctx.err(raw.line_of("language"), f"{where}: language '{language}' is not declared")
        language = None
    label_raw = raw.get("label")
    label = {lang: items[0] for lang, items in phrases.items()}
    if isinstance(label_raw, MarkedDict):
        label.update({k: str(v) for k, v in label_raw.items() if k in ctx.languages})
    elif label_raw is not None:
        ctx.err(raw.line_of("label"), f"{where}: 'label' must give a word per language")
    target = ctx.ref(raw.get("next"), raw.line_of("next"), f"{where}: option '{name}'")
    if "next" not in raw:
        ctx.err(line, f"{where}: option '{name}' has no 'next'")
    return Option(name=name, next=target or "", key=key, phrases=phrases, label=label,
                  set=sets, language=language)


def parse_validator(ctx: Ctx, raw: Any, line: int, where: str) -> Validator | None:
    if raw is None:
        return None
    if not isinstance(raw, MarkedDict):
        ctx.err(line, f"{where}: 'validate' must be a mapping (length, regex, luhn, exists)")
        return None
    v: dict[str, Any] = {}
    for key, value in raw.items():
        kline = raw.line_of(key)
        if key == "length":
            pair = [value, value] if isinstance(value, int) and not isinstance(value, bool) \
                else value
            if not (isinstance(pair, list) and len(pair) == 2
                    and all(isinstance(x, int) and not isinstance(x, bool) and x > 0
                            for x in pair) and pair[0] <= pair[1]):
                ctx.err(kline, f"{where}: length must be N or [MIN, MAX] with 0 < MIN <= MAX")
            else:
                v["min_len"], v["max_len"] = pair
        elif key == "regex":
            try:
                re.compile(str(value))
                v["pattern"] = str(value)
            except re.error as exc:
                ctx.err(kline, f"{where}: bad regex: {exc}")
        elif key == "luhn":
            if not isinstance(value, bool):
                ctx.err(kline, f"{where}: luhn must be true or false")
            v["luhn"] = value is True
        elif key == "exists":
            if value != "account":
                ctx.err(kline, f"{where}: exists must be 'account'")
            v["exists"] = "account"
        else:
            ctx.err(kline, f"{where}: unknown validator '{key}' "
                           "(use length, regex, luhn or exists)")
    return Validator(**v)


def _values(raw: Any) -> tuple[str | None, ...] | None:
    items = raw if isinstance(raw, list) else [raw]
    out = [None if i is None else word(i) for i in items]
    return None if any(o is None and i is not None for o, i in zip(out, items)) else tuple(out)


def parse_condition(ctx: Ctx, raw: Any, line: int, where: str) -> Condition:
    if not isinstance(raw, MarkedDict) or not raw:
        ctx.err(line, f"{where}: 'if' must be a mapping of checks")
        return Condition()
    c: dict[str, Any] = {}
    for key, value in raw.items():
        kline = raw.line_of(key)
        if key not in _COND_KEYS:
            ctx.err(kline, f"{where}: unknown condition '{key}' (use "
                           f"{', '.join(sorted(_COND_KEYS))})")
        elif key in {"known_customer", "open_follow_up", "within_hours", "vip"}:
            if not isinstance(value, bool):
                ctx.err(kline, f"{where}: {key} must be true or false")
            else:
                c[key] = value
        elif key in {"vars", "fields"}:
            if not isinstance(value, MarkedDict):
                ctx.err(kline, f"{where}: {key} must map names to values")
                continue
            tests: dict[str, tuple[str | None, ...]] = {}
            for name, expected in value.items():
                vals = _values(expected)
                if not isinstance(name, str) or vals is None:
                    ctx.err(value.line_of(name), f"{where}: bad test of {key}.{name}")
                else:
                    tests[name] = vals
            c[key] = tests
        else:
            vals = _values(value)
            if vals is None or None in vals:
                ctx.err(kline, f"{where}: {key} must be a value or a list of values")
            else:
                if key == "language":
                    for lang in vals:
                        if lang not in ctx.languages:
                            ctx.err(kline, f"{where}: language '{lang}' is not declared")
                c[key] = vals
    return Condition(**c)


# --------------------------------------------------------------------------- the graph


def edges(flow: Flow, node: Node) -> list[tuple[str, str]]:
    """Every (label, target) a node can lead to, including its failure route."""
    out: list[tuple[str, str]] = []
    if node.next:
        out.append(("next", node.next))
    out.extend((f"option:{o.name}", o.next) for o in node.options)
    if node.skip:
        out.append(("skip", node.skip.next))
    for label, target in (("yes", node.yes), ("no", node.no), ("found", node.found),
                          ("not_found", node.not_found), ("missing", node.missing),
                          ("else", node.default), ("return", node.return_to),
                          ("leave", node.on_leave), ("after", node.after)):
        if target:
            out.append((label, target))
    out.extend((f"case:{i}", c.next) for i, c in enumerate(node.cases))
    fail = fail_target(flow, node)
    if fail:
        out.append(("fail", fail))
    if node.type == NodeType.QUEUE and flow.closed:
        out.append(("closed", flow.closed))
    return out


def fail_target(flow: Flow, node: Node) -> str | None:
    """Where a node sends the caller after the third failure (or a failed hand-over)."""
    if node.type in INPUT_TYPES:
        return node.on_fail or flow.human
    if node.type in {NodeType.QUEUE, NodeType.TRANSFER}:
        return node.on_fail
    return None


def _cyclic_components(graph: Mapping[str, list[str]]) -> list[list[str]]:
    """Strongly connected components that contain a cycle (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            v, i = work.pop()
            if i == 0:
                index[v] = low[v] = counter
                counter += 1
                stack.append(v)
                on_stack.add(v)
            succ = graph.get(v, [])
            if i < len(succ):
                work.append((v, i + 1))
                w = succ[i]
                if w not in graph:
                    continue
                if w not in index:
                    work.append((w, 0))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1 or v in succ:
                    found.append(comp)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[v])
    return found


def check_graph(flow: Flow) -> list[Problem]:
    """Unreachable nodes, loops that never wait, loops with no way out, self-failures."""
    problems: list[Problem] = []
    nodes = flow.nodes

    def err(node_id: str, message: str) -> None:
        problems.append(Problem(flow.file, nodes[node_id].line, message))

    graph = {nid: [t for _, t in edges(flow, n) if t in nodes] for nid, n in nodes.items()}
    for nid, node in nodes.items():
        if node.type in INPUT_TYPES and fail_target(flow, node) is None:
            err(nid, f"node '{nid}' has no on_fail and the flow has no 'human' route: "
                     "a caller who fails three times would have nowhere to go")
        if fail_target(flow, node) == nid:
            err(nid, f"node '{nid}': its failure route leads back to itself; "
                     "give it an on_fail that leaves")
    roots = [r for r in (flow.start, flow.language_menu, flow.human, flow.closed,
                         *flow.entries) if r and r in nodes]
    seen = set(roots)
    todo = list(roots)
    while todo:
        for target in graph[todo.pop()]:
            if target not in seen:
                seen.add(target)
                todo.append(target)
    for nid in nodes:
        if nid not in seen:
            err(nid, f"node '{nid}' is unreachable from start")
    quiet = {nid: [t for t in succ if nodes[t].type not in WAITING_TYPES]
             for nid, succ in graph.items() if nodes[nid].type not in WAITING_TYPES}
    for comp in _cyclic_components(quiet):
        first = min(comp, key=lambda n: nodes[n].line)
        err(first, "loop without input: " + " -> ".join(_cycle_order(comp, quiet, first))
            + " never waits for the caller")
    for comp in _cyclic_components(graph):
        members = set(comp)
        leaves = any(t not in members for n in comp for t in graph[n])
        ends = any(nodes[n].type in ENDING_TYPES for n in comp)
        if not leaves and not ends:
            first = min(comp, key=lambda n: nodes[n].line)
            err(first, "loop without exit: " + ", ".join(sorted(comp, key=lambda n: nodes[n].line))
                + " never lead out of the loop")
    return problems


def _cycle_order(comp: list[str], graph: Mapping[str, list[str]], first: str) -> list[str]:
    members, path, node = set(comp), [first], first
    while True:
        node = next(t for t in graph[node] if t in members)
        path.append(node)
        if node == first or node in path[:-1] or len(path) > len(comp) + 1:
            return path
