"""A call flow as a graph: nodes, labelled edges, and a layered SVG drawing.

Edges cover every way out of a node: keys and phrases of menu options, next, yes/no,
found/not found, branch cases and else, the no-input/no-match route (``on_fail``, or
the flow's ``human`` by default), hold-leave, goto and return. The layout is a plain
layered drawing: rows by distance from the start, edges as curves, so the server sends
finished SVG and the page needs no graph library. Nodes carry their YAML line, so a
click in the drawing can move the editor's cursor there.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from html import escape

from call_flows.model import INPUT_TYPES, Flow, Node, NodeType

NODE_W, NODE_H, GAP_X, GAP_Y, MARGIN = 170, 46, 26, 70, 20
MAX_PER_ROW = 6
COLOURS = {
    "menu": "#dbeafe", "ask": "#dbeafe", "confirm": "#dbeafe", "callback": "#fef3c7",
    "queue": "#dcfce7", "voicemail": "#fef3c7", "transfer": "#dcfce7", "hangup": "#fee2e2",
    "branch": "#ede9fe", "lookup": "#ede9fe", "goto": "#f3f4f6", "return": "#f3f4f6",
    "external": "#ffffff",
}


ARROW = ('<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
         'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
         'fill="#475569"/></marker></defs>')


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    label: str
    kind: str  # key | phrase | next | fail | branch | other


def _phrases(option_say: dict[str, tuple[str, ...]], limit: int = 2) -> str:
    words = [p for phrases in option_say.values() for p in phrases[:1]]
    text = ", ".join(f"“{w}”" for w in words[:limit])
    return text + ("…" if len(words) > limit else "")


def edges_of(flow: Flow, node: Node) -> list[Edge]:
    out: list[Edge] = []

    def add(target: str | None, label: str, kind: str) -> None:
        if target:
            out.append(Edge(node.id, target, label, kind))

    for option in node.options:
        bits = [f"key {option.key}"] if option.key else []
        if option.phrases:
            bits.append(_phrases(dict(option.phrases)))
        add(option.next, " / ".join(bits) or option.name, "key" if option.key else "phrase")
    if node.skip:
        add(node.skip.next, f"skip (key {node.skip.key})" if node.skip.key else "skip", "key")
    for i, case in enumerate(node.cases):
        add(case.next, f"case {i + 1}", "branch")
    add(node.default, "else", "branch")
    add(node.yes, "yes / key 1", "key")
    add(node.no, "no / key 2", "key")
    add(node.found, "found", "branch")
    add(node.not_found, "not found", "branch")
    add(node.missing, "missing data", "branch")
    add(node.next, "next", "next")
    add(node.on_leave, "left hold", "other")
    if node.type in INPUT_TYPES or node.on_fail:
        add(node.on_fail or flow.human, "no input / no match", "fail")
    if node.type is NodeType.GOTO and node.flow:
        add(f"{node.flow}:{node.entry or 'start'}", "goto", "other")
        add(node.return_to, "return", "next")
    return out


def graph(flow: Flow) -> tuple[list[Node], list[Edge]]:
    nodes = list(flow.nodes.values())
    edges = [e for n in nodes for e in edges_of(flow, n)]
    return nodes, edges


def _layers(flow: Flow, edges: list[Edge]) -> dict[str, int]:
    """Breadth-first distance from the start (and the language menu); unreachable last."""
    succ: dict[str, list[str]] = {}
    for e in edges:
        succ.setdefault(e.source, []).append(e.target)
    depth: dict[str, int] = {}
    roots = [r for r in (flow.language_menu, flow.start, *flow.entries) if r]
    queue = deque((r, 0) for r in roots)
    while queue:
        nid, d = queue.popleft()
        if nid in depth:
            continue
        depth[nid] = d
        queue.extend((t, d + 1) for t in succ.get(nid, ()))
    bottom = max(depth.values(), default=0) + 1
    for nid in flow.nodes:
        depth.setdefault(nid, bottom)
    for e in edges:
        depth.setdefault(e.target, depth.get(e.source, 0) + 1)
    return depth


def svg(flow: Flow) -> str:
    nodes, edges = graph(flow)
    depth = _layers(flow, edges)
    rows: dict[int, list[str]] = {}
    for nid in sorted(depth, key=lambda n: (depth[n], _order(flow, n))):
        rows.setdefault(depth[nid], []).append(nid)
    # Wide rows wrap so the drawing stays readable beside the editor.
    wrapped: list[list[str]] = []
    for d in sorted(rows):
        row = rows[d]
        wrapped.extend(row[i:i + MAX_PER_ROW] for i in range(0, len(row), MAX_PER_ROW))
    pos: dict[str, tuple[float, float]] = {}
    width = max(len(r) for r in wrapped) * (NODE_W + GAP_X) + 2 * MARGIN if wrapped else 200
    for y_index, row in enumerate(wrapped):
        row_w = len(row) * (NODE_W + GAP_X) - GAP_X
        x0 = (width - row_w) / 2
        for x_index, nid in enumerate(row):
            pos[nid] = (x0 + x_index * (NODE_W + GAP_X), MARGIN + y_index * (NODE_H + GAP_Y))
    height = MARGIN * 2 + len(wrapped) * (NODE_H + GAP_Y)
    parts = [(f'<svg xmlns="http://www.w3.org/2000/svg" class="flow-graph" role="img" '
             f'viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" height="{height:.0f}" '
             f'aria-label="{escape(flow.id)}: {len(nodes)} nodes, {len(edges)} edges">'),
             ARROW]
    for e in edges:
        parts.append(_edge(e, pos))
    for nid, (x, y) in pos.items():
        node = flow.nodes.get(nid)
        kind = node.type.value if node else "external"
        line = node.line if node else 0
        start = " start" if nid in (flow.start, flow.language_menu) else ""
        parts.append(
            f'<g class="node{start}" data-node="{escape(nid)}" data-line="{line}" tabindex="0" '
            f'role="button" aria-label="{escape(nid)} ({kind}), line {line}">'
            f'<title>{escape(nid)} · {kind} · line {line}</title>'
            f'<rect x="{x:.0f}" y="{y:.0f}" width="{NODE_W}" height="{NODE_H}" rx="8" '
            f'fill="{COLOURS.get(kind, "#f8fafc")}" stroke="#334155"/>'
            f'<text x="{x + NODE_W / 2:.0f}" y="{y + 19:.0f}" text-anchor="middle" '
            f'class="node-id">{escape(_short(nid, 22))}</text>'
            f'<text x="{x + NODE_W / 2:.0f}" y="{y + 36:.0f}" text-anchor="middle" '
            f'class="node-type">{escape(kind)}</text></g>')
    parts.append("</svg>")
    return "".join(parts)


def _order(flow: Flow, nid: str) -> int:
    node = flow.nodes.get(nid)
    return node.line if node else 10**6


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _edge(e: Edge, pos: dict[str, tuple[float, float]]) -> str:
    if e.source not in pos or e.target not in pos:
        return ""
    sx, sy = pos[e.source]
    tx, ty = pos[e.target]
    x1, y1 = sx + NODE_W / 2, sy + NODE_H
    x2, y2 = tx + NODE_W / 2, ty
    if ty <= sy:  # back edge: leave from the side, loop around
        x1, y1 = sx + NODE_W, sy + NODE_H / 2
        x2, y2 = tx + NODE_W, ty + NODE_H / 2
        bend = 60 + abs(sy - ty) / 4
        d = f"M{x1:.0f},{y1:.0f} C{x1 + bend:.0f},{y1:.0f} {x2 + bend:.0f},{y2:.0f} {x2:.0f},{y2:.0f}"
        lx, ly = max(x1, x2) + bend * 0.75, (y1 + y2) / 2
    else:
        mid = (y1 + y2) / 2
        d = f"M{x1:.0f},{y1:.0f} C{x1:.0f},{mid:.0f} {x2:.0f},{mid:.0f} {x2:.0f},{y2:.0f}"
        lx, ly = (x1 + x2) / 2, mid
    # A plain "next" needs no words; the other labels say which key, phrase or failure.
    label = "" if e.kind == "next" else (
        f'<text x="{lx:.0f}" y="{ly:.0f}" text-anchor="middle">'
        f'{escape(_short(e.label, 30))}</text>')
    return (f'<g class="edge {e.kind}"><title>{escape(e.source)} → {escape(e.target)}: '
            f'{escape(e.label)}</title><path d="{d}" marker-end="url(#arrow)"/>{label}</g>')
