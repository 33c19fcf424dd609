"""Lineage: which run of which cell wrote each symbol, and what that run read.

The graph answers "what *would* run if this changed"; lineage answers "what
*did* run to produce this value".  The two differ exactly when a user needs
to ask: a cell that was skipped because its inputs kept their values, a
cell that failed half-way, a name rebound by a later cell, a widget the user
dragged.  So lineage is recorded from real runs, statement by statement,
and every query (``code``, ``deps``, ``users``, ``timestamp``, slices) is
answered from what was recorded, never from the static graph alone.

Pure data: no I/O, no clock, no IPython.  The host feeds :meth:`Lineage.record`
(or :meth:`Lineage.record_later`) after each run; the public API
(``reactive.api``) reads it.  ``record_later`` only queues the run: replaying
its statements costs tens of microseconds a run that a kernel would otherwise
pay between every two executions, while lineage is read rarely (a user asks
``code(x)``), so the queue is worked off by the first query that needs it.

Memory is bounded by what is *current*: a write is kept while the namespace
still holds it, a cell version (one cell with one source text) while some
current write or a kept version depends on it, and each cell keeps its last
``history`` runs for ``reproduce_cell``.  Symbol-level dependencies point at
earlier writes by number, never by reference, so a cell that accumulates
(``x = x + 1`` on every slider move) does not grow a chain of old runs.
"""

from __future__ import annotations

import ast
import functools
import heapq
import re
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

from .analysis import Transform, analyze, ipython_to_python
from .paths import Attr, Item, SymbolPath

__all__ = [
    "HistoryEntry",
    "Lineage",
    "Statement",
    "Timestamp",
    "Version",
    "Write",
    "parse_path",
    "path_of",
    "statements",
]

_M = TypeVar("_M", bound=Callable[..., Any])

#: cell magics whose body is Python run in the user namespace: statements are the body's
CODE_CELL_MAGICS = frozenset({"memoize", "time", "capture", "prun"})


class Timestamp(NamedTuple):
    """Where a symbol was last written: cell number and 0-based statement in it.

    ``cell_num`` is the cell's execution position: its 1-based place in the
    order the runtime runs the notebook, top to bottom (the number
    ``%reactive explain`` and ``%reactive status`` show).  0 means the cell
    has since been deleted.
    """

    cell_num: int
    stmt_num: int


# ---------------------------------------------------------------- symbol paths
def path_of(node: ast.AST) -> SymbolPath | None:
    """The symbol path an expression names (``x``, ``d["a"]``, ``s.value``), if any."""
    steps: list[Attr | Item] = []
    while True:
        if isinstance(node, ast.Name):
            return SymbolPath(node.id, tuple(reversed(steps)))
        if isinstance(node, ast.Attribute):
            steps.append(Attr(node.attr))
            node = node.value
        elif isinstance(node, ast.Subscript):
            key = node.slice
            if not isinstance(key, ast.Constant):
                return None
            steps.append(Item(key.value))
            node = node.value
        else:
            return None


def parse_path(text: str) -> SymbolPath | None:
    """``"d['a']"`` -> the path ``d['a']``; None when the text is not a plain path."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError):
        return None
    return path_of(tree.body)


# ------------------------------------------------------------------ statements
@dataclass(frozen=True)
class Statement:
    """One top-level statement of a cell, analysed on its own.

    Statement granularity is what ``timestamp`` reports and what keeps
    ``deps(y)`` from listing everything else the cell happened to read.
    ``first``/``last`` are 1-based lines of the code as it runs (after
    IPython's transform), so a traceback's line number finds its statement.
    """

    index: int
    text: str
    first: int
    last: int
    defs: frozenset[SymbolPath]
    refs: frozenset[SymbolPath]
    receivers: frozenset[SymbolPath]
    calls: frozenset[str]
    functions: dict[str, frozenset[SymbolPath]]
    conservative: bool

    @property
    def reads(self) -> frozenset[SymbolPath]:
        """Everything it needs to exist: reads, write targets' containers, callees."""
        return self.refs | self.receivers | {SymbolPath(c) for c in self.calls}


_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _parse(code: str) -> ast.Module:
    flags = ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    return compile(code, "<cell>", "exec", flags=flags, dont_inherit=True)  # type: ignore[no-any-return]


def _code_magic_body(tree: ast.Module) -> str | None:
    """The body of ``%%memoize``/``%%time``/... when the whole cell is one such magic."""
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.Expr):
        return None
    call = tree.body[0].value
    if not (
        isinstance(call, ast.Call)
        and isinstance(call.func, ast.Attribute)
        and call.func.attr == "run_cell_magic"
        and len(call.args) == 3
        and all(isinstance(a, ast.Constant) and isinstance(a.value, str) for a in call.args)
    ):
        return None
    name, _line, body = (a.value for a in call.args)  # type: ignore[attr-defined]
    return body if name in CODE_CELL_MAGICS else None


def _segment(lines: list[str], node: ast.stmt) -> tuple[str, int, int]:
    first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", ()))])
    last = node.end_lineno or node.lineno
    if first == node.lineno and first == last:
        text = lines[first - 1].encode()[node.col_offset : node.end_col_offset].decode()
    else:
        chunk = lines[first - 1 : last]
        chunk[-1] = chunk[-1].encode()[: node.end_col_offset].decode()
        if first == node.lineno:
            chunk[0] = chunk[0].encode()[node.col_offset :].decode()
        text = "\n".join(chunk)
    return text, first, last


def statements(source: str, transform: Transform | None = None) -> list[Statement]:
    """Split a cell into its top-level statements, each with its own analysis.

    A cell that is one code-running cell magic (``%%memoize``, ``%%time``)
    is split into its body's statements: that is the code the user wrote.
    A cell that does not parse has no statements.
    """
    rewrite = transform or ipython_to_python
    try:
        code = rewrite(source)
        tree = _parse(code)
        body = _code_magic_body(tree)
        if body is not None:
            code = rewrite(body)
            tree = _parse(code)
    except Exception:
        return []
    lines = _LINE_BREAK.split(code)  # what Python counts as lines (not ``\x0c``)
    out: list[Statement] = []
    for i, node in enumerate(tree.body):
        text, first, last = _segment(lines, node)
        a = analyze(text, rewrite)
        out.append(
            Statement(
                index=i,
                text=text,
                first=first,
                last=last,
                defs=a.defs,
                refs=a.refs,
                receivers=a.receivers,
                calls=a.calls,
                functions=dict(a.functions),
                conservative=a.conservative is not None,
            )
        )
    return out


def statement_at(stmts: Sequence[Statement], line: int) -> int | None:
    """Index of the statement containing ``line`` (1-based), if any."""
    for st in stmts:
        if st.first <= line <= st.last:
            return st.index
    return None


# ---------------------------------------------------------------------- records
class Version:
    """One cell with one source text: the node of a dynamic slice.

    Runs of the same text are one version, so re-running a cell a thousand
    times keeps one node.  ``parents`` are the versions whose writes its
    latest run read (itself excluded), keyed by ``(cell_id, source)``.
    """

    __slots__ = ("__weakref__", "cell_id", "last_run", "parents", "source", "untracked")

    def __init__(self, cell_id: str, source: str) -> None:
        self.cell_id = cell_id
        self.source = source
        self.parents: dict[tuple[str, str], Version] = {}
        #: names its latest run read that no run the runtime saw had written
        self.untracked: frozenset[str] = frozenset()
        self.last_run = 0

    @property
    def key(self) -> tuple[str, str]:
        return (self.cell_id, self.source)

    def __repr__(self) -> str:
        return f"<Version {self.cell_id} run {self.last_run}>"


@dataclass(frozen=True)
class Read:
    """A path a statement read, and the write it saw (``None``: nothing tracked)."""

    path: SymbolPath
    write: int | None


@dataclass
class Write:
    """One write of one path by one statement of one run."""

    number: int
    path: SymbolPath
    version: Version
    run: int
    stmt: int
    #: what the value was computed from (the writer's own earlier value folded in)
    reads: tuple[Read, ...]
    #: for a notebook function or class: the global paths its body reads
    function_reads: frozenset[SymbolPath] | None = None

    @property
    def cell_id(self) -> str:
        return self.version.cell_id


@dataclass(frozen=True)
class HistoryEntry:
    """One past run of a cell, as ``reproduce_cell`` shows it."""

    run: int
    source: str
    outcome: str
    outputs: tuple[dict[str, Any], ...] | None
    reason: str = ""
    error: str | None = None
    #: what it read from other runs: (path, number of the run whose write it saw)
    inputs: tuple[tuple[SymbolPath, int], ...] = ()
    #: when it finished, on the host's clock (for matching the scheduler's trace)
    at: float = 0.0

    def changed_inputs(self, before: HistoryEntry) -> list[tuple[SymbolPath, int]]:
        """Inputs rewritten between ``before`` (an earlier run of the cell) and this run."""
        seen = dict(before.inputs)
        return [(p, run) for p, run in self.inputs if p in seen and seen[p] != run]


@dataclass
class RunSummary:
    """What :meth:`Lineage.record` learnt from one run (for tests and explain)."""

    run: int
    cell_id: str
    writes: list[Write] = field(default_factory=list)
    parents: list[Version] = field(default_factory=list)
    failed_stmt: int | None = None


#: names IPython itself rebinds on every execution: never a cell's write
IPYTHON_NAMES = frozenset({"In", "Out", "exit", "quit", "get_ipython"})


def public_name(name: str) -> bool:
    """Whether a namespace name is the user's (not ``_``, ``_5``, ``In``, ...)."""
    return not name.startswith("_") and name not in IPYTHON_NAMES


def _settled(method: _M) -> _M:
    """A query: record the queued runs first, so it answers for every run so far."""

    @functools.wraps(method)
    def settled(self: Lineage, *args: Any, **kwargs: Any) -> Any:
        if self._pending:
            self._catch_up()
        return method(self, *args, **kwargs)

    return settled  # type: ignore[return-value]


class Lineage:
    """Per-path current writes, cell versions, and a bounded history per cell."""

    def __init__(self, history: int = 8) -> None:
        if history < 1:
            raise ValueError(f"history must keep at least one run, got {history!r}")
        self.history_size = history
        #: root name -> {path: the write the namespace holds now}
        self._current: dict[str, dict[SymbolPath, Write]] = {}
        self._versions: weakref.WeakValueDictionary[tuple[str, str], Version] = (
            weakref.WeakValueDictionary()
        )
        #: cell id -> its latest version (keeps it alive while the cell exists)
        self._latest: dict[str, Version] = {}
        self._history: dict[str, deque[HistoryEntry]] = {}
        self._run_counts: dict[str, int] = {}
        self._first_at: dict[str, float] = {}
        self._stmt_cache: dict[tuple[str, bool], list[Statement]] = {}
        self._runs = 0
        self._writes = 0
        #: runs queued by record_later, in run order: (cell id, source, record's keywords)
        self._pending: deque[tuple[str, str, dict[str, Any]]] = deque()

    @property
    def runs(self) -> int:
        """Runs recorded so far (queued ones included)."""
        return self._runs + len(self._pending)

    # -------------------------------------------------------------- recording
    def statements(self, source: str, transform: Transform | None = None) -> list[Statement]:
        """Cached :func:`statements` (a cell re-run by a slider keeps its text)."""
        key = (source, transform is None)
        hit = self._stmt_cache.get(key)
        if hit is None:
            hit = statements(source, transform)
            if len(self._stmt_cache) >= 1024:
                self._stmt_cache.pop(next(iter(self._stmt_cache)))
            self._stmt_cache[key] = hit
        return hit

    #: queued runs beyond this are recorded at once (bounds the queue's memory)
    PENDING_MAX = 256

    def record_later(self, cell_id: str, source: str, **kw: Any) -> None:
        """Queue one finished run; :meth:`record`'s arguments, recorded on the next query.

        The caller must pass values it will not mutate later (``outputs`` is copied).
        """
        if kw.get("outputs") is not None:
            kw["outputs"] = tuple(kw["outputs"])
        self._pending.append((cell_id, source, kw))
        if len(self._pending) > self.PENDING_MAX:
            self._catch_up()

    def _catch_up(self) -> None:
        while self._pending:
            cell_id, source, kw = self._pending.popleft()
            self._record(cell_id, source, **kw)

    def record(self, cell_id: str, source: str, **kw: Any) -> RunSummary:
        """Record one finished run at once (after any queued ones); see :meth:`_record`."""
        self._catch_up()
        return self._record(cell_id, source, **kw)

    def _record(
        self,
        cell_id: str,
        source: str,
        *,
        transform: Transform | None = None,
        outcome: str = "ok",
        outputs: Sequence[dict[str, Any]] | None = None,
        failed_line: int | None = None,
        changed_names: Iterable[str] = (),
        deleted_names: Iterable[str] = (),
        extra_defs: Iterable[SymbolPath] = (),
        reason: str = "",
        error: str | None = None,
        at: float = 0.0,
    ) -> RunSummary:
        """Record one finished run of ``cell_id`` executing ``source``.

        ``outcome`` is ``ok``, ``error``, ``interrupted`` or ``memo-hit``.
        For a run that did not finish, ``failed_line`` (a line of the code as
        run) says where it stopped: statements before it wrote what they
        write, the one that failed and those after it wrote nothing --
        except names in ``changed_names``, which the host saw rebound (an
        object that changed identity, or a name that appeared): those count
        as written whatever the analysis says.  ``deleted_names`` vanished
        from the namespace.  ``extra_defs`` are paths the graph knows the
        cell writes that no single statement shows (``global`` writes of a
        function it calls).  ``at`` is when it finished, on the host's clock.
        """
        self._runs += 1
        seq = self._runs
        self._run_counts[cell_id] = self._run_counts.get(cell_id, 0) + 1
        self._first_at.setdefault(cell_id, at)
        stmts = self.statements(source, transform)
        version = self._versions.get((cell_id, source))
        if version is None:
            version = Version(cell_id, source)
            self._versions[version.key] = version
        summary = RunSummary(seq, cell_id)

        finished = outcome in ("ok", "memo-hit", "skipped")
        if finished:
            ran, failed = len(stmts), None
        else:
            failed = statement_at(stmts, failed_line) if failed_line is not None else None
            ran = failed if failed is not None else 0
        summary.failed_stmt = failed
        changed = {n for n in changed_names if public_name(n)}
        # what each statement wrote: static writes of the ones that completed, plus
        # names seen rebound, attributed to the statement that writes them if any
        writes_by_stmt: dict[int, set[SymbolPath]] = {}
        for st in stmts[:ran]:
            writes_by_stmt[st.index] = set(st.defs)
        last = (failed if failed is not None else ran - 1) if stmts else -1
        static_roots: dict[str, int] = {}  # root -> the last statement (that ran) writing it
        for st in stmts[: last + 1]:
            for p in st.defs:
                static_roots[p.root] = st.index
        for name in sorted(changed):
            st_i = static_roots.get(name, max(last, 0))
            writes_by_stmt.setdefault(st_i, set()).add(SymbolPath(name))
        known = {p for ps in writes_by_stmt.values() for p in ps}
        for p in extra_defs:
            if ran == len(stmts) and p not in known and stmts:
                callers = [st.index for st in stmts if st.calls]
                writes_by_stmt.setdefault(callers[-1] if callers else last, set()).add(p)

        # replay the statements in order: each reads what the namespace held then
        overlay: dict[str, dict[SymbolPath, Write]] = {}
        parents: dict[tuple[str, str], Version] = {}
        untracked: set[str] = set()
        inputs: dict[SymbolPath, int] = {}
        upto = len(stmts) if finished else (last + 1 if failed is not None else 0)
        read_all = False
        for st in stmts[:upto]:
            reads = self._expand_functions(st.reads, overlay)
            resolved: list[Read] = []
            for q in sorted(reads, key=str):
                seen = self._visible(q, overlay)
                if not seen:
                    untracked.add(q.root)
                    resolved.append(Read(q, None))
                    continue
                for w in seen:
                    resolved.append(Read(q, w.number))
                    if w.run != seq:
                        inputs[q] = max(inputs.get(q, 0), w.run)
                    if w.version is not version:
                        parents[w.version.key] = w.version
            if st.conservative:
                read_all = True
            for p in sorted(writes_by_stmt.get(st.index, ()), key=str):
                update = any(q.overlaps(p) for q in st.refs)
                w = self._new_write(p, version, seq, st, resolved, overlay, update)
                overlay.setdefault(p.root, {})
                _put(overlay[p.root], p, w)
                summary.writes.append(w)
        # names rebound by statements that did not (visibly) run, e.g. a failing one
        for st_i in sorted(writes_by_stmt):
            if st_i < upto:
                continue
            for p in sorted(writes_by_stmt[st_i], key=str):
                st = stmts[st_i] if 0 <= st_i < len(stmts) else None
                w = Write(self._next_write(), p, version, seq, st.index if st else 0, ())
                overlay.setdefault(p.root, {})
                _put(overlay[p.root], p, w)
                summary.writes.append(w)
        if read_all:
            for entries in self._current.values():
                for w in entries.values():
                    if w.version is not version:
                        parents[w.version.key] = w.version

        # commit: the namespace now holds these writes
        for root, entries in overlay.items():
            target = self._current.setdefault(root, {})
            for p, w in entries.items():
                _put(target, p, w)
        for name in deleted_names:
            self._current.pop(name, None)
        version.parents = parents
        version.untracked = frozenset(u for u in untracked if u not in self._current)
        version.last_run = seq
        self._latest[cell_id] = version
        summary.parents = list(parents.values())
        hist = self._history.setdefault(cell_id, deque(maxlen=self.history_size))
        hist.append(
            HistoryEntry(
                seq,
                source,
                outcome,
                None if outputs is None else tuple(outputs),
                reason,
                error,
                tuple(sorted(inputs.items(), key=lambda kv: str(kv[0]))),
                at,
            )
        )
        return summary

    def _next_write(self) -> int:
        self._writes += 1
        return self._writes

    def _new_write(
        self,
        p: SymbolPath,
        version: Version,
        seq: int,
        st: Statement,
        resolved: list[Read],
        overlay: dict[str, dict[SymbolPath, Write]],
        update: bool,
    ) -> Write:
        reads: dict[Read, None] = {}
        if update:
            # ``x += 1``, ``lst.append(v)``: still computed from what x was computed from
            for prior in self._visible(p, overlay):
                reads.update(dict.fromkeys(prior.reads))
        # a container a statement writes into (``d`` in ``d["a"] = v``) is no input of it
        reads.update(dict.fromkeys(r for r in resolved if not r.path.overlaps(p)))
        fn = st.functions.get(p.root) if not p.steps else None
        return Write(self._next_write(), p, version, seq, st.index, tuple(reads), fn)

    def _expand_functions(
        self, reads: frozenset[SymbolPath], overlay: dict[str, dict[SymbolPath, Write]]
    ) -> set[SymbolPath]:
        """Add what called (or passed) notebook functions read, transitively."""
        out = set(reads)
        seen: set[str] = set()
        pending = [p.root for p in reads]
        while pending:
            name = pending.pop()
            if name in seen:
                continue
            seen.add(name)
            for w in self._visible(SymbolPath(name), overlay):
                if w.path.steps or w.function_reads is None:
                    continue
                for q in w.function_reads:
                    out.add(q)
                    pending.append(q.root)
        return out

    def _visible(
        self, q: SymbolPath, overlay: dict[str, dict[SymbolPath, Write]] | None = None
    ) -> list[Write]:
        """The writes a read of ``q`` sees: this run's own first, then the namespace's."""
        entries = dict(self._current.get(q.root, {}))
        if overlay and q.root in overlay:
            for p, w in overlay[q.root].items():
                _put(entries, p, w)
        return [w for p, w in entries.items() if p.overlaps(q)]

    @_settled
    def forget_cell(self, cell_id: str) -> None:
        """The cell was deleted: its history goes; values it wrote stay in the namespace."""
        self._history.pop(cell_id, None)
        self._latest.pop(cell_id, None)
        self._run_counts.pop(cell_id, None)
        self._first_at.pop(cell_id, None)

    # ---------------------------------------------------------------- queries
    @_settled
    def writes(self, path: SymbolPath) -> list[Write]:
        """The current writes that make up ``path``'s value, oldest first.

        That is the most specific write covering it (``d['a'] = 5`` after
        ``d = {...}`` shadows ``d`` for ``d['a']``), plus writes inside it.
        Empty: the runtime does not track ``path``.
        """
        seen = self._visible(path)
        covering = [w for w in seen if w.path.is_prefix_of(path)]
        inside = [w for w in seen if not w.path.is_prefix_of(path)]
        if covering:
            inside.append(max(covering, key=lambda w: len(w.path.steps)))
        return sorted(inside, key=lambda w: (w.run, w.stmt, w.number))

    def last_write(self, path: SymbolPath) -> Write | None:
        found = self.writes(path)
        return found[-1] if found else None

    def deps(self, path: SymbolPath) -> list[SymbolPath]:
        """The paths the current value of ``path`` was computed from, sorted."""
        out: set[SymbolPath] = set()
        for w in self.writes(path):
            out.update(r.path for r in w.reads if not r.path.overlaps(path))
        return sorted(out, key=str)

    def users(self, path: SymbolPath) -> list[SymbolPath]:
        """Current values computed from the current value of ``path``, sorted.

        A user must have read ``path`` itself or part of it: a reader of
        ``s.max`` is no user of ``s.value``, though both reached ``s``.
        """
        numbers = {w.number for w in self.writes(path)}
        out = {
            w.path
            for entries in self._current.values()
            for w in entries.values()
            if not w.path.overlaps(path)
            and any(r.write in numbers and r.path.overlaps(path) for r in w.reads)
        }
        return sorted(out, key=str)

    @_settled
    def tracked(self) -> Iterator[Write]:
        for entries in self._current.values():
            yield from entries.values()

    @_settled
    def latest(self, cell_id: str) -> Version | None:
        return self._latest.get(cell_id)

    @_settled
    def run_count(self, cell_id: str) -> int:
        """Runs of the cell this session (history may keep fewer)."""
        return self._run_counts.get(cell_id, 0)

    @_settled
    def first_run_at(self, cell_id: str) -> float | None:
        """When the cell first ran this session (host clock), if it has."""
        return self._first_at.get(cell_id)

    @_settled
    def history(self, cell_id: str) -> list[HistoryEntry]:
        """The cell's kept runs, newest first."""
        return list(reversed(self._history.get(cell_id, ())))

    @_settled
    def cell_of_run(self, run: int) -> str | None:
        """Which cell run number ``run`` was (while the cell's history still keeps it)."""
        for cid, hist in self._history.items():
            if any(e.run == run for e in hist):
                return cid
        return None

    @_settled
    def cell_parents(self, cell_id: str) -> set[str]:
        """Cells whose writes the cell's latest run read."""
        v = self._latest.get(cell_id)
        return {p.cell_id for p in v.parents.values()} - {cell_id} if v else set()

    @_settled
    def cell_users(self, cell_id: str) -> set[str]:
        """Cells whose latest run read something this cell wrote (in any of its runs)."""
        return {
            cid
            for cid, v in self._latest.items()
            if cid != cell_id and any(p.cell_id == cell_id for p in v.parents.values())
        }

    @_settled
    def slice(
        self,
        roots: Iterable[Version],
        order: Callable[[str], float] | None = None,
    ) -> list[Version]:
        """Every version ``roots`` needs, parents before children.

        Ties (and cycles, which the flat namespace allows) go by ``order``
        (a cell's notebook position; default: when it last ran), so the
        text reads top to bottom the way "run all" would run it.
        """
        todo = list(roots)
        found: dict[tuple[str, str], Version] = {}
        while todo:
            v = todo.pop()
            if v.key in found:
                continue
            found[v.key] = v
            todo.extend(v.parents.values())

        def key(v: Version) -> tuple[float, int, str]:
            return (order(v.cell_id) if order else float(v.last_run), v.last_run, v.cell_id)

        indegree = {k: sum(1 for p in v.parents if p in found) for k, v in found.items()}
        children: dict[tuple[str, str], list[Version]] = {k: [] for k in found}
        for v in found.values():
            for p in v.parents:
                if p in found:
                    children[p].append(v)
        heap = [(key(v), k) for k, v in found.items() if indegree[k] == 0]
        heapq.heapify(heap)
        out: list[Version] = []
        done: set[tuple[str, str]] = set()
        while len(out) < len(found):
            if not heap:  # a cycle: release its earliest member
                rest = [v for k, v in found.items() if k not in done]
                first = min(rest, key=key)
                indegree[first.key] = 0
                heap.append((key(first), first.key))
            _, k = heapq.heappop(heap)
            if k in done:
                continue
            done.add(k)
            out.append(found[k])
            for child in children[k]:
                indegree[child.key] -= 1
                if indegree[child.key] == 0 and child.key not in done:
                    heapq.heappush(heap, (key(child), child.key))
        return out

    @_settled
    def slice_text(
        self,
        roots: Iterable[Version],
        number: Callable[[str], int],
        current_source: Callable[[str], str | None] = lambda cid: None,
    ) -> str:
        """The slice as code: each cell headed ``# Cell N``, in an order that runs.

        A version whose cell has been edited since is marked as such: it is
        the code that actually produced the value.  Names the slice reads
        that no recorded run wrote (set before the runtime was loaded, or by
        a kernel start-up file) are listed up front.
        """
        versions = self.slice(roots, order=lambda cid: number(cid) or float("inf"))
        parts: list[str] = []
        untracked: set[str] = set()
        for v in versions:
            untracked |= v.untracked
            n = number(v.cell_id)
            head = f"# Cell {n}" if n else f"# Cell (deleted, id {v.cell_id})"
            now = current_source(v.cell_id)
            if now is not None and now != v.source:
                head += " (as it ran then; edited since)"
            parts.append(f"{head}\n{v.source.rstrip()}")
        written = {w.path.root for w in self.tracked()}
        missing = sorted(untracked - written)
        if missing:
            parts.insert(
                0, "# also needs, set outside any cell the runtime ran: " + ", ".join(missing)
            )
        return "\n\n".join(parts) + "\n"


def _put(entries: dict[SymbolPath, Write], p: SymbolPath, w: Write) -> None:
    """Writing ``p`` replaces what it covers (``d`` replaces ``d['a']``)."""
    for held in [h for h in entries if p.is_prefix_of(h)]:
        del entries[held]
    entries[p] = w
