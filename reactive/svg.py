"""A picture of the cell graph as SVG, with no dependency (no graphviz binary).

Users debug a dashboard by looking at what feeds what; a picture answers
"why did that cell run?" faster than a list.  Cells are boxes labelled with
their number and first line, widget sources are ovals, stale and failed
cells are coloured, and each box carries its cell id (``data-cell-id``) and
a hover title so tools and tests can find it.

Layout is a plain layered one: a node's layer is one more than the deepest
of its inputs (widgets on top), and within a layer nodes keep notebook
order.  Good enough for the tens of cells a dashboard has; edges between
distant layers may cross boxes, never hide them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from .graph import CellStatus, Graph, Source

__all__ = ["GraphPicture", "render"]

#: fill, stroke for each status; stale and errored stand out, fresh stays quiet
_COLOURS: dict[CellStatus, tuple[str, str]] = {
    CellStatus.FRESH: ("#ffffff", "#57606a"),
    CellStatus.STALE: ("#fff1b8", "#d4a017"),
    CellStatus.QUEUED: ("#ddf4ff", "#0969da"),
    CellStatus.RUNNING: ("#ddf4ff", "#0969da"),
    CellStatus.ERRORED: ("#ffd7d5", "#cf222e"),
    CellStatus.MEMO_HIT: ("#dafbe1", "#1a7f37"),
}
_SOURCE_COLOURS = ("#f3e8ff", "#8250df")
_CHAR_W = 7.2  # px per character of 12px monospace
_BOX_H = 30
_ROW_GAP = 56
_COL_GAP = 24
_MARGIN = 16
_MAX_LABEL = 44


@dataclass(frozen=True)
class GraphPicture:
    """An SVG document; Jupyter shows it as a picture, ``str()`` gives the markup."""

    svg: str

    def _repr_svg_(self) -> str:
        return self.svg

    def __str__(self) -> str:
        return self.svg


@dataclass
class _Node:
    key: str
    label: str
    title: str
    kind: str  # "cell" | "source"
    status: CellStatus | None = None
    cell_id: str | None = None
    layer: int = 0
    x: float = 0.0
    y: float = 0.0
    w: float = 0.0


def _short(text: str, limit: int = _MAX_LABEL) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render(graph: Graph, number: Callable[[str], int] | None = None) -> GraphPicture:
    """Draw ``graph``: cells (boxes), widget sources (ovals), their edges.

    ``number`` gives a cell's displayed number (default: its notebook place).
    Edges are the graph's own (what a change would re-run), labelled on hover
    with the symbols that flow along them.
    """
    cells = graph.ordered()
    place = {c.id: i for i, c in enumerate(cells, start=1)}
    num = number or place.__getitem__
    nodes: dict[str, _Node] = {}
    edges: list[tuple[str, str, str]] = []
    sources: dict[Source, str] = {}
    for c in cells:
        for src in sorted(c.sources, key=str):
            recorded = graph.source_label(src) or src
            if src not in sources:
                key = f"source:{len(sources)}"
                sources[src] = key
                nodes[key] = _Node(key, str(recorded), f"widget source {recorded}", "source")
            edges.append((sources[src], f"cell:{c.id}", str(recorded)))
    for c in cells:
        n = num(c.id)
        first = c.first_line or "(empty)"
        nodes[f"cell:{c.id}"] = _Node(
            f"cell:{c.id}",
            _short(f"[{n}] {first}"),
            f"cell {n} (id {c.id}): {c.status.value}\n{c.source}",
            "cell",
            status=c.status,
            cell_id=c.id,
        )
    for c in cells:
        try:
            parents = graph.sort_by_position(graph.parents(c.id))
        except KeyError:
            continue
        for p in parents:
            flowing = sorted(
                str(d) for d in graph.defs(p) if any(d.overlaps(r) for r in graph.refs(c.id))
            )
            edges.append((f"cell:{p}", f"cell:{c.id}", ", ".join(flowing)))
    _layout(nodes, edges, place)
    return GraphPicture(_draw(nodes, edges))


def _layout(nodes: dict[str, _Node], edges: list[tuple[str, str, str]], place: dict) -> None:
    """Longest-path layers (cycles broken by notebook order), rows centred."""
    inputs: dict[str, list[str]] = {k: [] for k in nodes}
    for a, b, _ in edges:
        if a in nodes and b in nodes and a != b:
            inputs[b].append(a)
    has_sources = any(n.kind == "source" for n in nodes.values())
    state: dict[str, int] = {}  # 1 = visiting, 2 = done

    def layer_of(key: str) -> int:
        todo = [key]
        while todo:
            k = todo[-1]
            if state.get(k) == 2:
                todo.pop()
                continue
            state[k] = 1
            pending = [p for p in inputs[k] if state.get(p) is None]
            if pending:
                todo.extend(pending)
                continue
            ready = [nodes[p].layer for p in inputs[k] if state.get(p) == 2]
            base = 1 if has_sources and nodes[k].kind == "cell" else 0
            nodes[k].layer = max([base - 1, *ready]) + 1
            state[k] = 2
            todo.pop()
        return nodes[key].layer

    def order(n: _Node) -> tuple[int, float, str]:
        return (0 if n.kind == "source" else 1, place.get(n.cell_id, 0), n.key)

    for n in sorted(nodes.values(), key=order):
        layer_of(n.key)
    rows: dict[int, list[_Node]] = {}
    for n in sorted(nodes.values(), key=order):
        n.w = max(80.0, len(n.label) * _CHAR_W + 20)
        rows.setdefault(n.layer, []).append(n)
    widths = {r: sum(n.w for n in ns) + _COL_GAP * (len(ns) - 1) for r, ns in rows.items()}
    widest = max(widths.values(), default=0.0)
    for r, ns in rows.items():
        x = _MARGIN + (widest - widths[r]) / 2
        for n in ns:
            n.x, n.y = x, _MARGIN + r * (_BOX_H + _ROW_GAP)
            x += n.w + _COL_GAP


def _draw(nodes: dict[str, _Node], edges: list[tuple[str, str, str]]) -> str:
    right = max((n.x + n.w for n in nodes.values()), default=200.0) + _MARGIN
    bottom = max((n.y + _BOX_H for n in nodes.values()), default=40.0) + _MARGIN
    legend_y = bottom + 4
    width, height = max(right, 420.0), legend_y + 24
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="monospace" font-size="12">',
        "<title>reactive: cell dependency graph</title>",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'fill="#57606a"/></marker></defs>',
    ]
    for a, b, label in edges:
        if a not in nodes or b not in nodes:
            continue
        s, t = nodes[a], nodes[b]
        x1, y1 = s.x + s.w / 2, s.y + _BOX_H
        x2, y2 = t.x + t.w / 2, t.y
        if t.layer <= s.layer:  # same row or upward (any-order): go round the side
            x1, y1, x2, y2 = s.x + s.w, s.y + _BOX_H / 2, t.x + t.w, t.y + _BOX_H / 2
        out.append(
            f'<g class="edge"><title>{escape(label or "depends on")}</title>'
            f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" '
            'stroke="#8c959f" stroke-width="1.2" marker-end="url(#arrow)"/></g>'
        )
    for n in nodes.values():
        text_x, text_y = n.x + n.w / 2, n.y + _BOX_H / 2 + 4
        if n.kind == "source":
            fill, stroke = _SOURCE_COLOURS
            shape = (
                f'<ellipse cx="{text_x:.1f}" cy="{n.y + _BOX_H / 2:.1f}" rx="{n.w / 2:.1f}" '
                f'ry="{_BOX_H / 2:.1f}" fill="{fill}" stroke="{stroke}"/>'
            )
            attrs = 'class="source"'
        else:
            status = n.status or CellStatus.FRESH
            fill, stroke = _COLOURS.get(status, _COLOURS[CellStatus.FRESH])
            dash = ' stroke-dasharray="5,3"' if status is CellStatus.STALE else ""
            width_px = 2 if status in (CellStatus.STALE, CellStatus.ERRORED) else 1
            shape = (
                f'<rect x="{n.x:.1f}" y="{n.y:.1f}" width="{n.w:.1f}" height="{_BOX_H}" rx="4" '
                f'fill="{fill}" stroke="{stroke}" stroke-width="{width_px}"{dash}/>'
            )
            attrs = (
                f'class="cell {status.value}" data-cell-id={quoteattr(n.cell_id or "")} '
                f'data-status="{status.value}"'
            )
        out.append(
            f"<g {attrs}><title>{escape(n.title)}</title>{shape}"
            f'<text x="{text_x:.1f}" y="{text_y:.1f}" text-anchor="middle">{escape(n.label)}'
            "</text></g>"
        )
    x = _MARGIN
    for name, (fill, stroke) in (
        ("fresh", _COLOURS[CellStatus.FRESH]),
        ("stale", _COLOURS[CellStatus.STALE]),
        ("error", _COLOURS[CellStatus.ERRORED]),
        ("widget", _SOURCE_COLOURS),
    ):
        out.append(
            f'<g class="legend"><rect x="{x}" y="{legend_y:.0f}" width="14" height="14" '
            f'fill="{fill}" stroke="{stroke}"/><text x="{x + 18}" y="{legend_y + 11:.0f}">'
            f"{name}</text></g>"
        )
        x += 90
    out.append("</svg>")
    return "\n".join(out)
