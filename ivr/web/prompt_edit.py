"""Editing a flow's spoken texts in place, from the prompts table, keeping the YAML as written.

Each edit names a node (or ``messages``), a text key (``prompt``, ``reprompt``...), a
language and the new text. The line to change comes from the loader's marked YAML
(``call_flows.loader.load_marked`` knows the line of every key), and only the lines of
that one language's entry are rewritten, so comments, ordering and the other texts
stay as they were. A missing translation is added as a new entry after the last
language of that text; an emptied box removes the entry (it is then flagged missing).
New texts are written as double-quoted YAML (JSON strings are valid YAML), so any
quote, colon or ``#`` in them is safe.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from call_flows.loader import load_marked
from call_flows.validate import LANG, MarkedDict
from ivr.web.flow_admin import TEXT_KEYS, FlowAdminError

MAX_EDITS = 500
MAX_TEXT = 2000


def _indent(row: str) -> int:
    return len(row) - len(row.lstrip(" "))


def _entry_end(rows: list[str], start: int) -> int:
    """Index after the last row of the entry that starts at row index ``start``."""
    own = _indent(rows[start])
    end = start + 1
    while end < len(rows) and (not rows[end].strip() or _indent(rows[end]) > own):
        end += 1
    while end > start + 1 and not rows[end - 1].strip():
        end -= 1
    return end


def _quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _holder(data: Mapping[str, Any], node: str, key: str) -> tuple[MarkedDict, Any]:
    if node == "messages":
        holder = data.get("messages")
    else:
        nodes = data.get("nodes")
        holder = nodes.get(node) if isinstance(nodes, Mapping) else None
    if not isinstance(holder, MarkedDict) or key not in holder:
        raise FlowAdminError(f"the draft has no text {node}.{key}: reload the page")
    return holder, holder[key]


def apply_edit(text: str, node: str, key: str, lang: str, value: str) -> str:
    """``text`` with the ``lang`` text of ``node.key`` set to ``value`` ('' removes it)."""
    if not LANG.match(lang):
        raise FlowAdminError(f"'{lang}' is not a language code")
    if node != "messages" and key not in TEXT_KEYS:
        raise FlowAdminError(f"'{key}' is not a spoken text")
    value = value.strip()
    if len(value) > MAX_TEXT:
        raise FlowAdminError(f"the text of {node}.{key} [{lang}] is over {MAX_TEXT} characters")
    data, _ = load_marked(text)
    if not isinstance(data, Mapping):
        raise FlowAdminError("the draft is not a flow: fix its YAML first")
    holder, current = _holder(data, node, key)
    rows = text.splitlines()
    key_row = holder.line_of(key) - 1
    if isinstance(current, str):  # one text for every language: becomes one per language
        langs = [x for x in data.get("languages") or [] if isinstance(x, str)]
        current_map = {x: current for x in langs}
        current_map[lang] = value
        inline = ", ".join(f"{k}: {_quote(v)}" for k, v in current_map.items() if v)
        rows[key_row] = rows[key_row].split(":", 1)[0] + ": {" + inline + "}"
        return "\n".join(rows) + "\n"
    if not isinstance(current, MarkedDict):
        raise FlowAdminError(f"{node}.{key} is not a text per language")
    if isinstance(current.get(lang), Mapping):
        raise FlowAdminError(f"{node}.{key} [{lang}] plays a recording: edit it in the YAML")
    if current and all(current.line_of(k) - 1 == key_row for k in current):
        # Flow style on the key's own line: rewrite that mapping, same order.
        new_map = {str(k): v for k, v in current.items()}
        new_map[lang] = value
        inline = ", ".join(f"{k}: {_quote(str(v))}" for k, v in new_map.items()
                           if isinstance(v, str) and v)
        if any(not isinstance(v, str) for v in new_map.values()) or \
                rows[key_row].rstrip()[-1:] != "}":
            raise FlowAdminError(f"{node}.{key} is written in a form this table cannot "
                                 "change: edit it in the YAML")
        rows[key_row] = rows[key_row].split(":", 1)[0] + ": {" + inline + "}"
        return "\n".join(rows) + "\n"
    if lang in current:
        start = current.line_of(lang) - 1
        end = _entry_end(rows, start)
        prefix = rows[start][:_indent(rows[start])]
        rows[start:end] = [f"{prefix}{lang}: {_quote(value)}"] if value else []
    elif value:
        last = max((current.line_of(k) - 1 for k in current), default=key_row)
        indent = _indent(rows[last]) if last != key_row else _indent(rows[key_row]) + 2
        end = _entry_end(rows, last) if last != key_row else key_row + 1
        rows[end:end] = [" " * indent + f"{lang}: {_quote(value)}"]
    return "\n".join(rows) + "\n"


def apply_edits(text: str, edits: Iterable[Mapping[str, Any]]) -> str:
    """Every edit in turn (each re-reads the text, so line numbers stay right)."""
    items = list(edits)
    if len(items) > MAX_EDITS:
        raise FlowAdminError(f"at most {MAX_EDITS} texts at once")
    for item in items:
        try:
            node, key, lang = str(item["node"]), str(item["key"]), str(item["lang"])
            value = str(item["value"])
        except KeyError as exc:
            raise FlowAdminError('each edit is {"node", "key", "lang", "value"}') from exc
        text = apply_edit(text, node, key, lang, value)
    return text
