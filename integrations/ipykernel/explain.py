"""``%reactive explain``: why a cell last ran, and what would make it run."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .runtime import Runtime


def find_cell(rt: Runtime, ref: str) -> str | None:
    """A cell by 1-based notebook position, id (or unique id prefix), or a name it defines."""
    cells = rt.graph.ordered()
    if ref.isdigit():
        n = int(ref)
        return cells[n - 1].id if 1 <= n <= len(cells) else None
    if ref in rt.graph:
        return ref
    prefixed = [c.id for c in cells if c.id.startswith(ref)]
    if len(prefixed) == 1:
        return prefixed[0]
    writers = [c.id for c in cells if any(p.root == ref for p in rt.graph.defs(c.id))]
    return writers[-1] if writers else None


def explain(rt: Runtime, ref: str) -> str:
    cid = find_cell(rt, ref)
    if cid is None:
        n = len(rt.graph)
        return (
            f"reactive: no cell matches {ref!r}; give a cell number (1..{n}), "
            "a cell id, or a variable a cell defines"
        )
    g = rt.graph
    cell = g.cells[cid]
    idx = rt.index_of(cid)
    lines = [
        f"cell [{idx}] {cell.first_line[:70]!r}: {cell.status.value}, ran {cell.run_count} time(s)"
    ]
    if cell.analysis.conservative:
        lines.append(f"  treated as reading/writing everything: {cell.analysis.conservative}")
    rec = rt.scheduler.trace.last_run(cid)
    if rec is not None:
        lines.append(f"  last run: {rec.reason} -> {rec.outcome} in {rec.duration * 1000:.0f} ms")
    refs = sorted(str(p) for p in g.refs(cid))
    defs = sorted(str(p) for p in g.defs(cid))
    lines.append(f"  reads: {', '.join(refs) or '-'}")
    lines.append(f"  writes: {', '.join(defs) or '-'}")
    if cell.sources:
        lines.append(f"  widget sources: {', '.join(sorted(str(s) for s in cell.sources))}")
    ups = [f"[{rt.index_of(c)}]" for c in g.sort(g.parents(cid))]
    downs = [f"[{rt.index_of(c)}]" for c in g.sort(g.children(cid))]
    lines.append(f"  runs when these cells change what it reads: {', '.join(ups) or '-'}")
    lines.append(f"  re-running it re-runs: {', '.join(downs) or '-'}")
    if not cell.sources and not ups:
        lines.append("  nothing upstream feeds it: it re-runs only when you run it")
    return "\n".join(lines)
