"""Lay out an artifact lineage graph (runs → artifact versions → runs) for an SVG drawn on the
server. No Flask here.

Input is trackio's lineage shape (`artifacts.lineage`: nodes with `id` and `kind`, edges with
`source`, `target`, `direction`). The layout is layered left to right, as trackio's dagre layout
is: a producer run sits left of what it produced, a consumer right of what it used. Edges that
close a cycle (a run that used what it produced) are drawn backwards; layers are ordered by the
barycenter of their neighbours, a few sweeps each way, to keep edges from crossing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

NODE_W = 168
NODE_H = 44
GAP_X = 72
GAP_Y = 16
MARGIN = 12
SWEEPS = 4


@dataclass(frozen=True)
class Placed:
    """A node with its box's top-left corner."""

    node: dict[str, Any]
    x: float
    y: float

    @property
    def id(self) -> str:
        return str(self.node["id"])


@dataclass(frozen=True)
class Link:
    source: str
    target: str
    path: str  # SVG path data
    both_ways: bool  # the run produced and used this version


@dataclass(frozen=True)
class Layout:
    nodes: list[Placed]
    links: list[Link]
    width: float
    height: float


def _edges(nodes: Sequence[dict[str, Any]], edges: Sequence[dict[str, Any]]
           ) -> list[tuple[str, str, bool]]:
    """(source, target, both ways) per connected pair, an output and an input of the same pair
    merged into one edge drawn in the output's direction."""
    known = {str(node["id"]) for node in nodes}
    pairs: dict[frozenset[str], list[dict[str, Any]]] = {}
    for edge in edges:
        source, target = str(edge.get("source")), str(edge.get("target"))
        if source in known and target in known and source != target:
            pairs.setdefault(frozenset((source, target)), []).append(edge)
    merged = []
    for group in pairs.values():
        output = next((e for e in group if e.get("direction") == "output"), None)
        chosen = output or group[0]
        merged.append((str(chosen["source"]), str(chosen["target"]),
                       output is not None and any(e.get("direction") == "input" for e in group)))
    return sorted(merged)


def _acyclic(ids: list[str], edges: list[tuple[str, str, bool]]) -> set[tuple[str, str]]:
    """Edges to reverse so the graph has no cycle (those a depth-first walk finds pointing back)."""
    outgoing: dict[str, list[str]] = {node: [] for node in ids}
    for source, target, _ in edges:
        outgoing[source].append(target)
    state: dict[str, int] = {}
    back: set[tuple[str, str]] = set()
    for start in ids:
        if start in state:
            continue
        stack = [(start, iter(outgoing[start]))]
        state[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
            elif state.get(child) == 1:
                back.add((node, child))
            elif child not in state:
                state[child] = 1
                stack.append((child, iter(outgoing[child])))
    return back


def layout(nodes: Sequence[dict[str, Any]], edges: Sequence[dict[str, Any]]) -> Layout:
    """Positions for every node and an SVG path for every edge."""
    ids = [str(node["id"]) for node in nodes]
    merged = _edges(nodes, edges)
    back = _acyclic(ids, merged)
    forward = [(t, s) if (s, t) in back else (s, t) for s, t, _ in merged]
    incoming: dict[str, list[str]] = {node: [] for node in ids}
    outgoing: dict[str, list[str]] = {node: [] for node in ids}
    for source, target in forward:
        incoming[target].append(source)
        outgoing[source].append(target)
    # Longest path from the sources, in topological order (Kahn).
    rank = dict.fromkeys(ids, 0)
    waiting = {node: len(incoming[node]) for node in ids}
    ready = [node for node in ids if waiting[node] == 0]
    while ready:
        node = ready.pop()
        for child in outgoing[node]:
            rank[child] = max(rank[child], rank[node] + 1)
            waiting[child] -= 1
            if waiting[child] == 0:
                ready.append(child)
    layers: list[list[str]] = [[] for _ in range(max(rank.values(), default=-1) + 1)]
    for node in ids:
        layers[rank[node]].append(node)
    _order(layers, incoming, outgoing)
    tallest = max((len(layer) for layer in layers), default=0)
    height = MARGIN * 2 + tallest * NODE_H + max(0, tallest - 1) * GAP_Y
    placed: dict[str, Placed] = {}
    by_id = {str(node["id"]): node for node in nodes}
    for column, layer in enumerate(layers):
        used = len(layer) * NODE_H + max(0, len(layer) - 1) * GAP_Y
        top = (height - used) / 2
        for row, node in enumerate(layer):
            placed[node] = Placed(by_id[node], MARGIN + column * (NODE_W + GAP_X),
                                  top + row * (NODE_H + GAP_Y))
    width = MARGIN * 2 + len(layers) * NODE_W + max(0, len(layers) - 1) * GAP_X
    links = [Link(source, target, _path(placed[source], placed[target]), both)
             for source, target, both in merged]
    return Layout([placed[node] for layer in layers for node in layer], links,
                  max(width, NODE_W + 2 * MARGIN), max(height, NODE_H + 2 * MARGIN))


def _order(layers: list[list[str]], incoming: dict[str, list[str]],
           outgoing: dict[str, list[str]]) -> None:
    """Reorder each layer by its neighbours' mean position, sweeping down then up."""
    position = {node: index for layer in layers for index, node in enumerate(layer)}

    def sweep(indexes: range, neighbours: dict[str, list[str]]) -> None:
        for index in indexes:
            layer = layers[index]

            def centre(node: str) -> float:
                near = [position[other] for other in neighbours[node]]
                return sum(near) / len(near) if near else position[node]

            layer.sort(key=lambda node: (centre(node), position[node]))
            position.update((node, row) for row, node in enumerate(layer))

    for _ in range(SWEEPS):
        sweep(range(1, len(layers)), incoming)
        sweep(range(len(layers) - 2, -1, -1), outgoing)


def _path(source: Placed, target: Placed) -> str:
    """A curve from the source's side facing the target to the target's side facing it."""
    y1, y2 = source.y + NODE_H / 2, target.y + NODE_H / 2
    if target.x >= source.x:
        x1, x2 = source.x + NODE_W, target.x
    else:
        x1, x2 = source.x, target.x + NODE_W
    bend = max(24.0, abs(x2 - x1) / 2)
    c1 = x1 + bend if x2 >= x1 else x1 - bend
    c2 = x2 - bend if x2 >= x1 else x2 + bend
    return f"M{x1:.1f},{y1:.1f} C{c1:.1f},{y1:.1f} {c2:.1f},{y2:.1f} {x2:.1f},{y2:.1f}"
