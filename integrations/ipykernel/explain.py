"""``%reactive explain``: why a cell last ran, why it (or its readers) did not.

"Why did this run?" and "why did that not?" are answered from three records:
the scheduler's trace (each batch: the events that started it, every run or
skip with its reason, the cells it left stale), lineage (which run wrote each
input the cell read, so the *changed input* can be named), and the graph
(what the cell reads and feeds, for cells that have not run yet).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reactive.graph import CellStatus
from reactive.trace import BatchTrace, RunRecord

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


def _batch_of(rt: Runtime, record: RunRecord) -> BatchTrace | None:
    for batch in reversed(rt.scheduler.trace.batches):
        if any(r is record for r in batch.runs):
            return batch
    return None


def _events(batch: BatchTrace) -> str:
    return "; ".join(batch.events) or "no new event (work left from the batch before)"


def _num(rt: Runtime, cid: str) -> str:
    n = rt.index_of(cid)
    return f"[{n}]" if n else f"(deleted {cid})"


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
    batch = _batch_of(rt, rec) if rec is not None else None
    where = f"batch {batch.id} (started by: {_events(batch)})" if batch else "an old batch"
    if rec is not None and rec.outcome == "skipped":
        # the scheduler queued it, then found its inputs unchanged: that is not a run
        queued = rec.reason.split(" -- ")[0]
        lines.append(
            f"  not run in {where}: skipped, what it reads kept its value (compared by "
            "fingerprint), so its output still matches"
        )
        lines.append(f"    it was queued because: {queued}")
        past = rt.lineage.history(cid)
        if past:
            lines.append(f"  last run: {past[0].reason or 'unknown'} -> {past[0].outcome}")
    elif rec is not None:
        lines.append(f"  last run: {where}")
        lines.append(f"    why: {rec.reason} -> {rec.outcome} in {rec.duration * 1000:.0f} ms")
    lines.extend(_changed_inputs(rt, cid))
    refs = sorted(str(p) for p in g.refs(cid))
    defs = sorted(str(p) for p in g.defs(cid))
    lines.append(f"  reads: {', '.join(refs) or '-'}")
    lines.append(f"  writes: {', '.join(defs) or '-'}")
    if cell.sources:
        lines.append(f"  widget sources: {', '.join(sorted(str(s) for s in cell.sources))}")
    ups = [_num(rt, c) for c in g.sort(g.parents(cid))]
    downs = [_num(rt, c) for c in g.sort(g.children(cid))]
    lines.append(f"  runs when these cells change what it reads: {', '.join(ups) or '-'}")
    lines.append(f"  re-running it re-runs: {', '.join(downs) or '-'}")
    if not cell.sources and not ups:
        lines.append("  nothing upstream feeds it: it re-runs only when you run it")
    lines.extend(_not_run_since(rt, cid, batch))
    if batch is not None:
        lines.extend(_readers_in(rt, cid, batch))
    return "\n".join(lines)


def _changed_inputs(rt: Runtime, cid: str) -> list[str]:
    """The inputs that were rewritten between the cell's last two runs."""
    runs = rt.lineage.history(cid)
    if len(runs) < 2:
        return []
    changed = runs[0].changed_inputs(runs[1])
    if not changed:
        return ["    inputs rewritten since its previous run: none"]
    parts = []
    for path, run in changed:
        writer = rt.lineage.cell_of_run(run)
        parts.append(f"{path} (by cell {_num(rt, writer)})" if writer else str(path))
    return [f"    inputs rewritten since its previous run: {', '.join(parts)}"]


def _not_run_since(rt: Runtime, cid: str, last: BatchTrace | None) -> list[str]:
    """Why the cell did not run in later batches that ran cells it reads from."""
    g = rt.graph
    cell = g.cells[cid]
    parents = g.parents(cid)
    later = [b for b in rt.scheduler.trace.batches if last is None or b.id > last.id]
    for batch in reversed(later):
        mine = [r for r in batch.runs if r.cell_id == cid]
        if mine and mine[-1].outcome == "skipped":
            return [
                f"  not run in batch {batch.id} ({_events(batch)}): skipped, what it reads "
                "kept its value (compared by fingerprint), so its output still matches"
            ]
        if cid in batch.left_stale:
            failed = [r for r in batch.runs if r.outcome in ("error", "interrupted")]
            culprit = ", ".join(f"{_num(rt, r.cell_id)} {r.outcome}" for r in failed)
            return [
                f"  not run in batch {batch.id} ({_events(batch)}): left stale because "
                f"upstream {culprit or 'work was interrupted'}; it will not run on "
                "half-updated inputs"
            ]
        upstream = [r for r in batch.runs if r.cell_id in parents and r.outcome != "skipped"]
        if upstream and not mine:
            names = ", ".join(_num(rt, r.cell_id) for r in upstream)
            return [
                f"  not run in batch {batch.id} ({_events(batch)}): upstream {names} ran, "
                "but none of the values it reads changed"
            ]
    if cell.status in (CellStatus.STALE, CellStatus.ERRORED):
        return [
            f"  it is {cell.status.value}: run it (or fix the failing cell above it) to update it"
        ]
    return []


def _readers_in(rt: Runtime, cid: str, batch: BatchTrace) -> list[str]:
    """What happened to the cell's readers in the batch of its last run, and why."""
    g = rt.graph
    out: list[str] = []
    ran = {r.cell_id: r for r in batch.runs}
    end = batch.ended if batch.ended is not None else batch.started
    for child in g.sort(g.children(cid)):
        first = rt.lineage.first_run_at(child)
        if first is not None and first > end:
            continue  # the reader did not exist yet
        rec = ran.get(child)
        later = rt.scheduler.trace.last_run(child)
        later_batch = _batch_of(rt, later) if rec is None and later is not None else None
        if rec is not None and rec.outcome == "skipped":
            why = "skipped: what it reads kept its value"
        elif rec is not None:
            why = f"ran ({rec.outcome})"
        elif later_batch is not None and later_batch.id > batch.id:
            why = f"ran later, in batch {later_batch.id} ({later.reason})"  # type: ignore[union-attr]
        elif child in batch.left_stale:
            why = "left stale: an upstream cell failed or was interrupted"
        elif g.cells[child].status is CellStatus.STALE:
            why = "stale: not run yet"
        else:
            why = "not run: nothing it reads changed value"
        out.append(f"    {_num(rt, child)} {g.cells[child].first_line[:40]!r}: {why}")
    if out:
        return [f"  its readers in batch {batch.id}:", *out]
    return []
