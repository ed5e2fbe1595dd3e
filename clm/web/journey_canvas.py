"""The journey canvas laid out in code and drawn as server-rendered SVG (no script library): nodes
in layers from the trigger down (a node's layer is the longest path to it, ignoring edges that
go back), each layer centred, edges as curves; an edge that goes back up runs down the right."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from clm.journeys.canvas import END, TRIGGER, Graph

WIDTH = 250  # a node's box, in SVG units
SPLIT_WIDTH = 380  # a split's box: a line per arm with its conversion, lift, revenue and ROI
HEIGHT = 96
SPLIT_ROW = 17  # each arm of a split adds a line
GAP_X = 36
GAP_Y = 64
MARGIN = 24


@dataclass(frozen=True)
class Box:
    id: str
    kind: str
    summary: str
    x: float
    y: float
    w: float
    h: float


@dataclass(frozen=True)
class Curve:
    source: str
    target: str
    outcome: str
    label: str
    path: str
    label_x: float
    label_y: float
    back: bool


@dataclass(frozen=True)
class Layout:
    width: float
    height: float
    boxes: list[Box]
    curves: list[Curve]


def _layers(graph: Graph) -> dict[str, int]:
    """Longest-path layering over the graph with its back edges (found by a depth-first walk from
    the trigger) left out; steps nothing reaches go below the rest."""
    out: dict[str, list[str]] = {n.id: [] for n in graph.nodes}
    for e in graph.edges:
        if e.target != END and e.target in out:
            out[e.source].append(e.target)
    back: set[tuple[str, str]] = set()
    state: dict[str, int] = {}

    def walk(node: str) -> None:
        state[node] = 1
        for nxt in out[node]:
            if state.get(nxt) == 1:
                back.add((node, nxt))
            elif nxt not in state:
                walk(nxt)
        state[node] = 2

    walk(TRIGGER)
    order = [n.id for n in graph.nodes]
    for n in order:
        if n not in state:
            walk(n)
    layer = {n: 0 for n in order}
    for _ in order:  # relax: at most one pass per node in a DAG
        changed = False
        for src in order:
            for dst in out[src]:
                if (src, dst) not in back and layer[dst] < layer[src] + 1:
                    layer[dst] = layer[src] + 1
                    changed = True
        if not changed:
            break
    return layer


def _height(kind: str, arms: int) -> float:
    return HEIGHT + (SPLIT_ROW * (arms + 1) if kind == "split" else 0)


def _width(node: str, kinds: dict[str, Any]) -> float:
    if node == END:
        return WIDTH / 2
    return SPLIT_WIDTH if kinds[node].kind == "split" else WIDTH


def layout(graph: Graph, arms: dict[str, int] | None = None) -> Layout:
    """Positions for every node (and an end node when something leaves the journey) and a path for
    every edge. `arms`: split step → number of arms shown on it (they make the box taller)."""
    arms = arms or {}
    layer = _layers(graph)
    kinds = {n.id: n for n in graph.nodes}
    ends = any(e.target == END for e in graph.edges)
    rows: dict[int, list[str]] = {}
    for n in graph.nodes:
        rows.setdefault(layer[n.id], []).append(n.id)
    last = max(rows) if rows else 0
    if ends:
        rows[last + 1] = [END]
    spans = {k: sum(_width(i, kinds) for i in r) + (len(r) - 1) * GAP_X for k, r in rows.items()}
    width = max(spans.values()) + 2 * MARGIN + 60  # room for back edges on the right
    boxes: dict[str, Box] = {}
    y: float = MARGIN
    for depth in sorted(rows):
        ids = rows[depth]
        row_h = max((HEIGHT / 2 if i == END else _height(kinds[i].kind, arms.get(i, 0))) for i in ids)
        x = (width - 60 - spans[depth]) / 2
        for i in ids:
            w = _width(i, kinds)
            if i == END:
                boxes[i] = Box(END, "end", "", x, y, w, HEIGHT / 2)
            else:
                n = kinds[i]
                boxes[i] = Box(i, n.kind, n.summary, x, y, w, _height(n.kind, arms.get(i, 0)))
            x += w + GAP_X
        y += row_h + GAP_Y
    curves = []
    fan: dict[str, int] = {}
    for e in graph.edges:
        a, b = boxes[e.source], boxes.get(e.target)
        if b is None:
            continue
        outs = [x for x in graph.edges if x.source == e.source]
        k = fan.get(e.source, 0)
        fan[e.source] = k + 1
        sx = a.x + a.w * (k + 1) / (len(outs) + 1)
        sy = a.y + a.h
        tx, ty = b.x + b.w / 2, b.y
        back = b.y <= a.y
        if back:  # round the right-hand side and come back in from above
            rx = width - 30
            path = (
                f"M{sx:.1f},{sy:.1f} C{sx:.1f},{sy + 30:.1f} {rx:.1f},{sy + 30:.1f} {rx:.1f},{sy:.1f}"
                f" L{rx:.1f},{ty - 20:.1f} C{rx:.1f},{ty - 40:.1f} {tx:.1f},{ty - 40:.1f} {tx:.1f},{ty:.1f}"
            )
            lx, ly = rx - 4, (sy + ty) / 2
        else:
            bend = (ty - sy) / 2
            path = f"M{sx:.1f},{sy:.1f} C{sx:.1f},{sy + bend:.1f} {tx:.1f},{ty - bend:.1f} {tx:.1f},{ty:.1f}"
            # the curve's midpoint; ways out of one step to one place are stacked, not overlaid
            lx, ly = (sx + tx) / 2, (sy + ty) / 2 + (k - (len(outs) - 1) / 2) * 14
        curves.append(Curve(e.source, e.target, e.outcome, e.label, path, lx, ly, back))
    return Layout(width, y - GAP_Y + MARGIN, list(boxes.values()), curves)
