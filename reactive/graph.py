"""The notebook as a dependency graph: cells, the paths they touch, sources.

Pure data and queries: no I/O, no asyncio, no clock.  The scheduler owns
policy (what to run when); this module only answers "who reads what this
cell wrote?" and "what must run before this cell?".

Binding rule (DESIGN.md §3).  In the default *in-order* direction a read of
path ``q`` in cell ``R`` binds to writers *above* ``R``: walking upward from
``R``, every writer of an overlapping path is a parent, and the walk stops at
the first writer whose path covers ``q`` (a prefix of it, or equal) because
nothing above that writer can reach ``R`` any more.  Edges to later cells are
ignored, exactly as a top-to-bottom "run all" would ignore them.  In
*any-order* direction a read binds to every writer anywhere; cells then run in
topological order and a cycle is an error naming its cells.

Edges are never materialised: queries walk per-root indexes of readers and
writers, so the cost of invalidation is proportional to the cells that touch
the changed names, not to the size of the notebook.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import Enum

from .analysis import CellAnalysis
from .paths import SymbolPath


class Direction(str, Enum):
    IN_ORDER = "in_order"
    ANY_ORDER = "any_order"


class CellStatus(str, Enum):
    """What a cell's visible output says about the current state.

    ``STALE`` means an input changed and the cell has not re-run since (or
    its upstream failed), so its output no longer matches "run all".
    """

    FRESH = "fresh"
    STALE = "stale"
    QUEUED = "queued"
    RUNNING = "running"
    ERRORED = "errored"
    MEMO_HIT = "memo-hit"


@dataclass(frozen=True, slots=True)
class Source:
    """A value the outside world changes: ``(owner, trait)``.

    ``owner`` is whatever stable, hashable key the host uses for the object
    (ipywidgets: the comm/model id), so the core never holds widgets.
    """

    owner: Hashable
    trait: str
    label: str = field(default="", compare=False)
    #: the symbol path the cell used to reach it (``s.value``), when known
    path: SymbolPath | None = field(default=None, compare=False)

    def __str__(self) -> str:
        return self.label or f"{self.owner}.{self.trait}"


#: statuses whose output does not match "run all": a reader must wait for them
_OUT_OF_SYNC = frozenset({CellStatus.STALE, CellStatus.ERRORED, CellStatus.QUEUED})


class CycleError(ValueError):
    """Raised by ordering queries in any-order mode when cells form a cycle."""

    def __init__(self, cells: Sequence[str]):
        self.cells = list(cells)
        super().__init__("dependency cycle between cells: " + " -> ".join(self.cells))


@dataclass
class Cell:
    id: str
    source: str
    analysis: CellAnalysis
    position: float
    status: CellStatus = CellStatus.FRESH
    #: sources the cell read on its last run (resolved by the host at run time)
    sources: frozenset[Source] = frozenset()
    #: sources the cell wrote on its last run (``s.value = 3``)
    source_writes: frozenset[Source] = frozenset()
    run_count: int = 0

    @property
    def conservative(self) -> bool:
        return self.analysis.conservative is not None

    @property
    def first_line(self) -> str:
        for line in self.source.splitlines():
            if line.strip():
                return line.strip()
        return ""


class _SortedIds:
    """Cell ids kept sorted by ``(position, id)`` so range walks are cheap."""

    __slots__ = ("_keys",)

    def __init__(self) -> None:
        self._keys: list[tuple[float, str]] = []

    def add(self, pos: float, cid: str) -> None:
        key = (pos, cid)
        i = bisect.bisect_left(self._keys, key)
        if i == len(self._keys) or self._keys[i] != key:
            self._keys.insert(i, key)

    def discard(self, pos: float, cid: str) -> None:
        key = (pos, cid)
        i = bisect.bisect_left(self._keys, key)
        if i < len(self._keys) and self._keys[i] == key:
            del self._keys[i]

    def after(self, pos: float, cid: str) -> Iterator[str]:
        i = bisect.bisect_right(self._keys, (pos, cid))
        for _, c in self._keys[i:]:
            yield c

    def before(self, pos: float, cid: str) -> Iterator[str]:
        """Ids strictly above ``(pos, cid)``, nearest first."""
        i = bisect.bisect_left(self._keys, (pos, cid))
        for k in range(i - 1, -1, -1):
            yield self._keys[k][1]

    def __iter__(self) -> Iterator[str]:
        return (c for _, c in self._keys)

    def __len__(self) -> int:
        return len(self._keys)


def _trait_paths(sources: Iterable[Source]) -> set[SymbolPath]:
    """Paths that reach *into* a source (``s.value``), not the name holding it (``s``).

    Which object ``s`` is belongs to the namespace and follows its binding
    rules; what ``s.value`` holds belongs to the outside world.
    """
    return {src.path for src in sources if src.path is not None and src.path.steps}


class Graph:
    """Cells, their symbol paths and sources, and the queries the scheduler asks."""

    def __init__(self, direction: Direction | str = Direction.IN_ORDER) -> None:
        self.direction = Direction(direction)
        self.cells: dict[str, Cell] = {}
        self._writers: dict[str, _SortedIds] = {}
        self._readers: dict[str, _SortedIds] = {}
        self._conservative = _SortedIds()
        self._source_readers: dict[Source, set[str]] = {}
        self._source_labels: dict[Source, Source] = {}
        #: global name -> notebook functions whose bodies read it
        self._function_readers: dict[str, set[str]] = {}
        #: how many cells define each function name (calls to others need no lookup)
        self._function_names: dict[str, int] = {}
        #: root -> {path: cell whose write the namespace currently holds}
        self._holders: dict[str, dict[SymbolPath, str]] = {}
        self._next_position = 0.0
        self._topo: dict[str, int] | None = None
        self._condensed: dict[str, int] | None = None
        #: the cycles found when the condensed rank was last computed
        self._cycles_seen: list[list[str]] = []
        self._eff: dict[str, frozenset[SymbolPath]] = {}
        self._defs_cache: dict[str, frozenset[SymbolPath]] = {}
        #: bumped whenever a cell is added or removed (the order a host applied may be stale)
        self.members = 0

    # ------------------------------------------------------------------ edits
    def upsert(
        self,
        cell_id: str,
        source: str,
        analysis: CellAnalysis,
        position: float | None = None,
    ) -> Cell:
        """Record a cell's latest source; new cells go last unless placed."""
        old = self.cells.get(cell_id)
        if (
            old is not None
            and old.analysis is analysis
            and old.source == source
            and position in (None, old.position)
        ):
            return old  # re-run as it was: nothing to re-index, every cache holds
        if old is not None:
            self._unindex(old)
            pos = old.position if position is None else position
            cell = old
            cell.source, cell.analysis, cell.position = source, analysis, pos
        else:
            pos = self._next_position if position is None else position
            cell = Cell(cell_id, source, analysis, pos)
            self.cells[cell_id] = cell
            self.members += 1
        self._next_position = max(self._next_position, pos + 1.0)
        self._index(cell)
        self._changed()
        return cell

    def remove(self, cell_id: str) -> None:
        cell = self.cells.pop(cell_id, None)
        if cell is None:
            return
        self.members += 1
        self._unindex(cell)
        for readers in self._source_readers.values():
            readers.discard(cell_id)
        for entries in self._holders.values():
            for p in [p for p, w in entries.items() if w == cell_id]:
                del entries[p]
        self._changed()

    def reorder(self, ids: Sequence[str]) -> None:
        """Adopt the frontend's notebook order; unknown ids are ignored.

        Known cells missing from ``ids`` keep their relative order after the
        listed ones, so a partial view of the notebook never loses cells.
        """
        listed = [c for c in dict.fromkeys(ids) if c in self.cells]
        rest = [c.id for c in self.ordered() if c.id not in set(listed)]
        for cell in self.cells.values():
            self._unindex(cell)
        for i, cid in enumerate([*listed, *rest]):
            self.cells[cid].position = float(i)
        for cell in self.cells.values():
            self._index(cell)
        self._next_position = float(len(self.cells))
        self._changed()

    def set_direction(self, direction: Direction | str) -> None:
        self.direction = Direction(direction)
        self._changed()

    def set_sources(
        self,
        cell_id: str,
        reads: Iterable[Source],
        writes: Iterable[Source] = (),
    ) -> None:
        """Record which sources the cell's last run read and wrote."""
        cell = self.cells[cell_id]
        for src in cell.sources:
            readers = self._source_readers.get(src)
            if readers is not None:
                readers.discard(cell_id)
                if not readers:
                    del self._source_readers[src]
        cell.sources = frozenset(reads)
        cell.source_writes = frozenset(writes)
        for src in cell.sources:
            self._source_readers.setdefault(src, set()).add(cell_id)
            if src.label:
                self._source_labels[src] = src

    def has_readers(self, root: str) -> bool:
        """Whether any cell (or notebook function) reads the name ``root`` at all."""
        return (
            bool(self._readers.get(root))
            or root in self._function_readers
            or bool(self._conservative)
        )

    def is_source(self, source: Source) -> bool:
        """Whether some cell reads ``source``.  One dict lookup: safe from any thread."""
        return source in self._source_readers

    def source_label(self, source: Source) -> Source | None:
        """The recorded (labelled) form of ``source``, for readable traces."""
        return self._source_labels.get(source)

    def forget_source(self, source: Source) -> None:
        """Drop a source (a closed or collected widget) from every cell."""
        self._source_labels.pop(source, None)
        for cid in self._source_readers.pop(source, set()):
            cell = self.cells.get(cid)
            if cell is not None:
                cell.sources = cell.sources - {source}

    def _index(self, cell: Cell) -> None:
        a = cell.analysis
        if a.conservative is not None:
            self._conservative.add(cell.position, cell.id)
        for root in {p.root for p in a.defs} | set(a.function_writes):
            self._writers.setdefault(root, _SortedIds()).add(cell.position, cell.id)
        for root in {p.root for p in a.refs} | {p.root for p in a.receivers} | set(a.calls):
            self._readers.setdefault(root, _SortedIds()).add(cell.position, cell.id)
        for fname, body in a.functions.items():
            self._function_names[fname] = self._function_names.get(fname, 0) + 1
            for p in body:
                self._function_readers.setdefault(p.root, set()).add(fname)

    def _unindex(self, cell: Cell) -> None:
        for fname in cell.analysis.functions:
            left = self._function_names.get(fname, 0) - 1
            if left > 0:
                self._function_names[fname] = left
            else:
                self._function_names.pop(fname, None)
        self._conservative.discard(cell.position, cell.id)
        a = cell.analysis
        written = {p.root for p in a.defs} | set(a.function_writes)
        read = {p.root for p in a.refs} | {p.root for p in a.receivers} | set(a.calls)
        for index, names in ((self._writers, written), (self._readers, read)):
            for name in names:
                ids = index.get(name)
                if ids is not None:
                    ids.discard(cell.position, cell.id)

    def _changed(self) -> None:
        self._topo = None
        self._condensed = None
        self._eff.clear()
        self._defs_cache.clear()

    # -------------------------------------------------------------- ordering
    def ordered(self) -> list[Cell]:
        """Cells in notebook order (by position)."""
        return sorted(self.cells.values(), key=lambda c: (c.position, c.id))

    def order_key(self, cell_id: str) -> tuple[float, str]:
        """Sort key for running cells: notebook order, or topological order.

        Raises :class:`CycleError` in any-order mode when the graph has a cycle.
        """
        cell = self.cells[cell_id]
        if self.direction is Direction.IN_ORDER:
            return (cell.position, cell.id)
        return (float(self._topological()[cell_id]), cell.id)

    def sort(self, cell_ids: Iterable[str]) -> list[str]:
        """Cells in run order; never raises.

        With a cycle (any-order) there is no topological order, yet every other
        cell still has one: the cycle's cells are then ranked as one group, by
        position among themselves (:meth:`_condensed_rank`).
        """
        ids = [c for c in cell_ids if c in self.cells]
        try:
            return sorted(ids, key=self.order_key)
        except CycleError:
            rank = self._condensed_rank()
            return sorted(ids, key=lambda c: (rank[c], c))

    def _condensed_rank(self) -> dict[str, int]:
        """A topological rank that ignores the edges inside each cycle.

        Between different cycles and other cells the edges form a DAG, so the
        order is as good as any; inside a cycle cells fall back to position.
        """
        if self._condensed is not None:
            return self._condensed
        group: dict[str, int] = {}
        self._cycles_seen = self.cycles()
        for i, cycle in enumerate(self._cycles_seen):
            for cid in cycle:
                group[cid] = i
        children: dict[str, list[str]] = {}
        indegree = {cid: 0 for cid in self.cells}
        for cid in self.cells:
            mine = group.get(cid)
            kids = [
                k for k in self.children(cid) if k != cid and (mine is None or group.get(k) != mine)
            ]
            children[cid] = kids
            for k in kids:
                indegree[k] += 1
        heap = [(c.position, c.id) for c in self.cells.values() if indegree[c.id] == 0]
        heapq.heapify(heap)
        rank: dict[str, int] = {}
        while heap:
            _, cid = heapq.heappop(heap)
            rank[cid] = len(rank)
            for k in children[cid]:
                indegree[k] -= 1
                if indegree[k] == 0:
                    heapq.heappush(heap, (self.cells[k].position, k))
        for c in self.ordered():  # defensive: anything left unranked goes last, by position
            rank.setdefault(c.id, len(rank))
        self._condensed = rank
        return rank

    def _topological(self) -> dict[str, int]:
        """The topological rank; a cycle makes it undefined (:class:`CycleError`)."""
        if self._topo is None:
            rank = self._condensed_rank()  # without cycles, this is the plain order
            if self._cycles_seen:
                raise CycleError(self._cycles_seen[0])
            self._topo = rank
        return self._topo

    def cycles(self) -> list[list[str]]:
        """Strongly connected groups of two or more cells, each in notebook order.

        Only any-order graphs can have cycles; a cell never depends on itself
        (``x = x + 1`` reads the value from *before* it ran), so self-edges
        do not count.
        """
        if self.direction is Direction.IN_ORDER:
            return []
        index: dict[str, int] = {}
        low: dict[str, int] = {}
        stack: list[str] = []
        on_stack: set[str] = set()
        out: list[list[str]] = []
        counter = 0
        for start in (c.id for c in self.ordered()):
            if start in index:
                continue
            # iterative Tarjan: (node, iterator over children)
            work: list[tuple[str, Iterator[str]]] = []
            index[start] = low[start] = counter
            counter += 1
            stack.append(start)
            on_stack.add(start)
            work.append((start, iter(sorted(self.children(start)))))
            while work:
                node, it = work[-1]
                advanced = False
                for child in it:
                    if child not in index:
                        index[child] = low[child] = counter
                        counter += 1
                        stack.append(child)
                        on_stack.add(child)
                        work.append((child, iter(sorted(self.children(child)))))
                        advanced = True
                        break
                    if child in on_stack:
                        low[node] = min(low[node], index[child])
                if advanced:
                    continue
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    group: list[str] = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    if len(group) > 1:
                        out.append([c for c in self.sort_by_position(group)])
        return out

    def sort_by_position(self, cell_ids: Iterable[str]) -> list[str]:
        return sorted(cell_ids, key=lambda c: (self.cells[c].position, c))

    # ---------------------------------------------------- effective defs/refs
    def defs(self, cell_id: str) -> frozenset[SymbolPath]:
        """What a cell writes, including ``global`` writes of functions it calls.

        Called functions are matched by name against every notebook definer,
        without binding, so that computing defs never recurses through the
        binding walk (mutually recursive definitions stay finite).
        """
        hit = self._defs_cache.get(cell_id)
        if hit is not None:
            return hit
        a = self.cells[cell_id].analysis
        out = set(a.defs)
        for fname in a.calls:
            for w in self._writers.get(fname, ()):
                out |= self.cells[w].analysis.function_writes.get(fname, frozenset())
            out |= a.function_writes.get(fname, frozenset())
        result = frozenset(out)
        self._defs_cache[cell_id] = result
        return result

    def refs(self, cell_id: str) -> frozenset[SymbolPath]:
        """What a cell reads, with uses of notebook functions expanded.

        Calling (or passing) ``f`` reads what ``f``'s body reads, transitively
        through other notebook functions; which ``f`` is meant is decided by
        the same binding rule as any other read, seen from this cell.
        """
        hit = self._eff.get(cell_id)
        if hit is not None:
            return hit
        a = self.cells[cell_id].analysis
        refs = set(a.refs)
        used = set(a.calls) | {p.root for p in a.refs}
        seen: set[tuple[str, str]] = set()
        pending = [n for n in used if n in self._function_names]
        while pending:
            fname = pending.pop()
            definers = [
                w
                for w in self._bound_writers(cell_id, SymbolPath(fname), covering_only=True)
                if fname in self.cells[w].analysis.functions
            ]
            if fname in a.functions:  # defined and used in this very cell
                definers.append(cell_id)
            for w in definers:
                if (w, fname) in seen:
                    continue
                seen.add((w, fname))
                body = self.cells[w].analysis.functions[fname]
                refs |= body
                pending.extend(
                    p.root for p in body if p.root != fname and p.root in self._function_names
                )
        result = frozenset(refs)
        self._eff[cell_id] = result
        return result

    # -------------------------------------------------------------- bindings
    def _above(self, cell: Cell, root: str) -> Iterator[str]:
        """Writers of ``root`` and conservative cells above ``cell``, nearest first."""
        writers = self._writers.get(root)
        if not self._conservative:
            if writers is not None:
                yield from writers.before(cell.position, cell.id)
            return
        streams = [self._conservative.before(cell.position, cell.id)]
        if writers is not None:
            streams.append(writers.before(cell.position, cell.id))
        key = self._key
        last = None
        for cid in heapq.merge(*streams, key=key, reverse=True):
            if cid != last:
                yield cid
            last = cid

    def _key(self, cid: str) -> tuple[float, str]:
        return (self.cells[cid].position, cid)

    def _bound_writers(
        self, reader: str, q: SymbolPath, *, covering_only: bool = False
    ) -> list[str]:
        """Writers a read of ``q`` in ``reader`` binds to (see module docstring).

        ``covering_only`` binds only to writers that (re)create the object at
        ``q`` or above it: used for receivers (``d["a"] = 1`` needs ``d`` to
        exist, not the latest ``d["b"]``) and for resolving which ``f`` a call
        means.
        """
        out: list[str] = []
        if self.direction is Direction.ANY_ORDER:
            for w in self._writers.get(q.root, ()):
                if w != reader and self._writes_overlapping(w, q, covering_only):
                    out.append(w)
            out.extend(c for c in self._conservative if c != reader and c not in out)
            return out
        for w in self._above(self.cells[reader], q.root):
            if self.cells[w].conservative:
                if not covering_only:
                    out.append(w)
                continue
            hit = False
            for p in self.defs(w):
                if p.root != q.root:
                    continue
                if p.is_prefix_of(q):
                    out.append(w)
                    return out
                if not covering_only and p.overlaps(q):
                    hit = True
            if hit:
                out.append(w)
        return out

    def _writes_overlapping(self, w: str, q: SymbolPath, covering_only: bool) -> bool:
        defs = self.defs(w)
        if covering_only:
            return any(p.is_prefix_of(q) for p in defs)
        return any(p.overlaps(q) for p in defs)

    def reads_nothing(self, cell_id: str) -> bool:
        """No other cell's write can be an input of this cell (so no parent, ever)."""
        cell = self.cells[cell_id]
        a = cell.analysis
        return not (cell.conservative or self.refs(cell_id) or a.receivers or a.calls)

    def parents(self, cell_id: str) -> set[str]:
        """Cells whose writes this cell reads."""
        cell = self.cells[cell_id]
        if cell.conservative:
            return {
                c.id for c in self._others(cell, above=True) if c.conservative or self.defs(c.id)
            }
        out: set[str] = set()
        for q in self.refs(cell_id):
            out.update(self._bound_writers(cell_id, q))
        for q in cell.analysis.receivers:
            out.update(self._bound_writers(cell_id, q, covering_only=True))
        for name in cell.analysis.calls:
            out.update(self._bound_writers(cell_id, SymbolPath(name), covering_only=True))
        out.discard(cell_id)
        return out

    def children(self, cell_id: str, changed: Iterable[SymbolPath] | None = None) -> set[str]:
        """Cells that read what ``cell_id`` wrote (only ``changed`` paths, if given).

        ``changed=None`` means every path the cell defines.  Pass the paths
        whose values actually changed to avoid re-running readers of siblings.
        """
        cell = self.cells[cell_id]
        if cell.conservative and changed is None:
            return {c.id for c in self._others(cell, above=False)}
        paths = set(self.defs(cell_id) if changed is None else changed)
        out: set[str] = set()
        roots = {p.root for p in paths}
        for root in roots:
            mine = [p for p in paths if p.root == root]
            for reader in self._candidate_readers(cell, root):
                if reader == cell_id:
                    continue
                if cell_id in self._binders_for(reader, mine):
                    out.add(reader)
        for c in self._conservative_readers_below(cell):
            if c != cell_id and paths:
                out.add(c)
        return out

    def _others(self, cell: Cell, *, above: bool) -> list[Cell]:
        """Every other cell (any-order), or those above / below ``cell``."""
        me = (cell.position, cell.id)
        return [
            c
            for c in self.cells.values()
            if c.id != cell.id
            and (
                self.direction is Direction.ANY_ORDER
                or ((c.position, c.id) < me if above else (c.position, c.id) > me)
            )
        ]

    def _candidate_readers(self, cell: Cell, root: str) -> Iterable[str]:
        """Cells that may read ``root``: directly, or by using a function that does."""
        names = {root}
        frontier = [root]
        while frontier:
            for fname in self._function_readers.get(frontier.pop(), ()):
                if fname not in names:
                    names.add(fname)
                    frontier.append(fname)
        out: set[str] = set()
        for name in names:
            readers = self._readers.get(name)
            if readers is None:
                continue
            if self.direction is Direction.ANY_ORDER:
                out.update(readers)
            else:
                out.update(readers.after(cell.position, cell.id))
        return out

    def _conservative_readers_below(self, cell: Cell) -> Iterable[str]:
        if self.direction is Direction.ANY_ORDER:
            return list(self._conservative)
        return self._conservative.after(cell.position, cell.id)

    def _binders_for(self, reader: str, written: list[SymbolPath]) -> set[str]:
        """Writers that ``reader``'s reads overlapping ``written`` bind to."""
        rc = self.cells[reader]
        out: set[str] = set()
        for q in self.refs(reader):
            if any(p.overlaps(q) for p in written):
                out.update(self._bound_writers(reader, q))
        for q in rc.analysis.receivers:
            if any(p.is_prefix_of(q) for p in written):
                out.update(self._bound_writers(reader, q, covering_only=True))
        for name in rc.analysis.calls:
            q = SymbolPath(name)
            if any(p.is_prefix_of(q) for p in written):
                out.update(self._bound_writers(reader, q, covering_only=True))
        return out

    # --------------------------------------------------------------- queries
    def readers_of_source(self, source: Source) -> set[str]:
        return set(self._source_readers.get(source, ()))

    def descendants(self, roots: Iterable[str]) -> list[str]:
        """Every cell downstream of ``roots`` (excluded), in run order."""
        start = set(roots)
        seen: set[str] = set()
        frontier = list(start)
        while frontier:
            cid = frontier.pop()
            for child in self.children(cid):
                if child not in seen and child not in start:
                    seen.add(child)
                    frontier.append(child)
        return self.sort(seen)

    def affected_by(self, sources: Iterable[Source]) -> list[str]:
        """Cells that read any of ``sources``, in run order (descendants excluded)."""
        hit: set[str] = set()
        for src in sources:
            hit |= self.readers_of_source(src)
        return self.sort(hit)

    def stale_upstream(self, cell_id: str) -> list[str]:
        """Out-of-sync ancestors that must run before ``cell_id``, in run order.

        The walk passes only through stale or errored cells: a fresh parent's
        own parents are fresh as far as this cell is concerned.
        """
        out: set[str] = set()
        frontier = [cell_id]
        while frontier:
            cid = frontier.pop()
            for parent in self.parents(cid):
                if parent in out or parent == cell_id:
                    continue
                if self.cells[parent].status in _OUT_OF_SYNC:
                    out.add(parent)
                    frontier.append(parent)
        return self.sort(out)

    # ------------------------------------------------------ namespace binding
    def note_ran(self, cell_id: str) -> None:
        """Record that ``cell_id``'s writes are now what the namespace holds.

        The namespace is flat: after "run all", ``a`` holds the value of the
        *last* cell that wrote it.  Re-running an earlier writer (or reading
        between two writers) can leave a reader seeing a value from the
        wrong cell; :meth:`misbound` uses this record to notice.
        """
        cell = self.cells.get(cell_id)
        if cell is None or cell.conservative:
            return
        external = _trait_paths(cell.source_writes)
        for p in self.defs(cell_id):
            if p in external:
                continue  # a widget trait is the world's state, not the namespace's
            entries = self._holders.setdefault(p.root, {})
            for held in [h for h in entries if p.is_prefix_of(h)]:
                del entries[held]
            entries[p] = cell_id

    def holds(self, cell_id: str) -> bool:
        """Whether the namespace still holds every value this cell wrote."""
        return all(self._holders.get(p.root, {}).get(p) == cell_id for p in self.defs(cell_id))

    def misbound(self, cell_id: str) -> set[str]:
        """Writers to re-run so that ``cell_id`` reads what "run all" gives it.

        A read of ``q`` is well bound when every namespace entry overlapping
        ``q`` was written by one of the cells the read binds to.  Otherwise
        (a later cell redefined the name, or an earlier one re-ran) the
        binders must run again first.  Only meaningful in-order.
        """
        if self.direction is Direction.ANY_ORDER:
            return set()
        cell = self.cells.get(cell_id)
        if cell is None or cell.conservative:
            return set()
        out: set[str] = set()
        external = _trait_paths(cell.sources)
        for q in self.refs(cell_id) | cell.analysis.receivers:
            if q in external:
                continue
            entries = self._holders.get(q.root, {})
            actual = {p: w for p, w in entries.items() if p.overlaps(q) and w != cell_id}
            binders = self.sort_by_position(self._bound_writers(cell_id, q))
            expected: dict[SymbolPath, str] = {}
            for b in binders:  # replay the binders' writes top to bottom
                for p in self.defs(b):
                    if p.root == q.root and p.overlaps(q):
                        for held in [h for h in expected if p.is_prefix_of(h)]:
                            del expected[held]
                        expected[p] = b
            if actual != expected and (actual or expected):
                out |= {b for b in binders if not self.cells[b].conservative}
        return out

    def rewriters(self, writer: str, until: tuple[float, str]) -> set[str]:
        """Cells below ``writer`` (and above ``until``) that write what it writes.

        Re-running an earlier writer clobbers their values in the flat
        namespace; running them again, in order, after it restores the state
        "run all" leaves for everything below.
        """
        cell = self.cells[writer]
        mine = self.defs(writer)
        out: set[str] = set()
        for root in {p.root for p in mine}:
            ids = self._writers.get(root)
            if ids is None:
                continue
            for cid in ids.after(cell.position, cell.id):
                if self.order_key(cid) >= until:
                    break
                if cid != writer and any(
                    p.overlaps(q) for p in self.defs(cid) if p.root == root for q in mine
                ):
                    out.add(cid)
        return out

    def mark_stale(self, cell_ids: Iterable[str]) -> None:
        for cid in cell_ids:
            cell = self.cells.get(cid)
            if cell is not None and cell.status is not CellStatus.ERRORED:
                cell.status = CellStatus.STALE

    def stale(self) -> list[str]:
        return [c.id for c in self.ordered() if c.status is CellStatus.STALE]

    def __contains__(self, cell_id: object) -> bool:
        return cell_id in self.cells

    def __len__(self) -> int:
        return len(self.cells)
