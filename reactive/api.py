"""The public Python API: ask and tune the runtime from any cell.

The core cannot know what a widget is; the host that loaded the runtime
registers itself here and answers "which sources is this object?" and
"which cell do you mean?".  Every function fails with one clear sentence
when the runtime is not loaded or the argument is not something it tracks.

Two groups of functions live here: tuning (``debounce``, ``throttle``) and
asking (``code``, ``deps``, ``users``, ``timestamp``, ``lift``, ``cells``,
``reproduce_cell``, ``show_graph``).  The asking ones answer from
:mod:`reactive.lineage` -- what actually ran -- so they can explain a value
even when the notebook's text has moved on since.
"""

from __future__ import annotations

import ast
import linecache
import math
import sys
from collections.abc import Sequence
from types import FrameType
from typing import Any, Protocol

from .graph import Graph, Source
from .lineage import HistoryEntry, Lineage, Timestamp, Write, parse_path, path_of, public_name
from .paths import SymbolPath
from .scheduler import Scheduler
from .svg import GraphPicture, render

__all__ = [
    "CellView",
    "Code",
    "Host",
    "NotLoaded",
    "NotTracked",
    "Symbol",
    "Timestamp",
    "cells",
    "code",
    "debounce",
    "deps",
    "lift",
    "reproduce_cell",
    "set_host",
    "show_graph",
    "throttle",
    "timestamp",
    "users",
]


class Host(Protocol):
    """What a loaded runtime offers the API."""

    scheduler: Scheduler
    graph: Graph
    #: what actually ran: per-symbol writes, cell versions, per-cell run history
    lineage: Lineage

    def sources_of(self, obj: Any) -> frozenset[Source]: ...

    def find_cell(self, ref: object) -> str | None: ...

    def index_of(self, cell_id: str) -> int:
        """The cell's 1-based execution position (0: not in the notebook any more)."""
        ...

    def cell_outputs(self, cell_id: str) -> Sequence[dict[str, Any]]:
        """The cell's current outputs as nbformat dicts."""
        ...

    def publish(self, outputs: Sequence[dict[str, Any]]) -> None:
        """Show nbformat outputs in the cell that is running now."""
        ...


class _OneLine(Exception):
    """IPython shows these as their message alone: a traceback into the runtime
    would only hide the sentence the user needs."""

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]


class NotLoaded(_OneLine, RuntimeError):
    """The runtime is not loaded in this kernel."""


class NotTracked(_OneLine, LookupError):
    """Asked about a symbol or cell the runtime has no record of."""


_host: Host | None = None


def set_host(host: Host | None) -> None:
    """Called by the integration that loads (None: unloads) the runtime."""
    global _host
    _host = host


def _require(fn: str) -> Host:
    if _host is None:
        raise NotLoaded(f"reactive.{fn}: the runtime is not loaded; run %load_ext reactive")
    return _host


def _number(fn: str, what: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"reactive.{fn}: {what} must be a finite number, got {value!r}")
    if value < 0:
        raise ValueError(f"reactive.{fn}: {what} must be >= 0, got {value!r}")
    return float(value)


def _widget_sources(fn: str, host: Host, target: object) -> frozenset[Source]:
    sources = host.sources_of(target)
    if not sources:
        raise TypeError(
            f"reactive.{fn}: expected a widget the runtime can track, "
            f"got {type(target).__name__} {target!r:.60}"
        )
    return sources


def debounce(target: object, ms: float) -> None:
    """Re-run only after ``ms`` milliseconds of quiet: for a widget, or for one cell.

    For cells too slow to follow a drag (a 2-second model fit): intermediate
    positions are skipped, the final one always runs.  On a widget it holds
    back every reader; on a cell (its notebook position, id, or a variable it
    defines) only that cell waits, while faster cells keep repainting.
    ``ms=0`` removes it.
    """
    value = _number("debounce", "ms", ms)
    host = _require("debounce")
    if isinstance(target, (int, str)) and not isinstance(target, bool):
        host.scheduler.set_cell_debounce(_cell("debounce", host, target), value / 1000)
        return
    for src in _widget_sources("debounce", host, target):
        host.scheduler.set_debounce(value / 1000, src)


def _cell(fn: str, host: Host, target: int | str) -> str:
    cell = host.find_cell(target)
    if cell is None:
        raise LookupError(
            f"reactive.{fn}: no cell matches {target!r}; give a cell number, "
            "a cell id, a variable a cell defines, or a widget"
        )
    return cell


def throttle(target: object, hz: float) -> None:
    """Re-run at most ``hz`` times a second: for a widget (its changes) or a cell.

    A cell is named by its notebook position (1-based int), its id, or a
    variable it defines.  Unlike debounce it keeps updating during a drag;
    the final state is always shown.  ``hz=0`` removes the cap.
    """
    rate = _number("throttle", "hz", hz)
    host = _require("throttle")
    if isinstance(target, (int, str)) and not isinstance(target, bool):
        host.scheduler.set_throttle(_cell("throttle", host, target), rate or None)
        return
    for src in _widget_sources("throttle", host, target):
        host.scheduler.set_source_throttle(src, rate or None)


# --------------------------------------------------------------------- asking
# ``code(x)`` cannot see the name ``x`` once Python has evaluated it, and a
# value does not know its name (``a = b = 5``).  So the symbol is read from the
# call itself, in the caller's source, the way tracebacks find their columns.


def _call_argument(frame: FrameType, fn: str) -> ast.expr | None:
    """The expression the caller passed as the first argument, if its source is known."""
    code_obj = frame.f_code
    lines = linecache.getlines(code_obj.co_filename, frame.f_globals)
    if not lines:
        return None
    call: ast.AST | None = None
    positions = getattr(code_obj, "co_positions", None)
    if positions is not None:  # 3.11+: the exact span of the running call
        try:
            first, last, col, end_col = list(positions())[frame.f_lasti // 2]
        except (IndexError, ValueError):
            first = None
        if first is not None and last is not None and col is not None and end_col is not None:
            chunk = [ln.encode() for ln in lines[first - 1 : last]]
            if chunk:
                chunk[-1] = chunk[-1][:end_col]
                chunk[0] = chunk[0][col:]
                try:
                    call = ast.parse(b"".join(chunk).decode().strip(), mode="eval").body
                except (SyntaxError, ValueError, UnicodeDecodeError):
                    call = None
    if call is None:  # 3.10: the line, when it holds exactly one call of ``fn``
        try:
            tree = ast.parse(lines[frame.f_lineno - 1].strip())
        except (SyntaxError, ValueError, IndexError):
            return None
        found = [
            n
            for n in ast.walk(tree)
            if isinstance(n, ast.Call)
            and (getattr(n.func, "id", None) == fn or getattr(n.func, "attr", None) == fn)
        ]
        call = found[0] if len(found) == 1 else None
    if not isinstance(call, ast.Call):
        return None
    if call.args and not isinstance(call.args[0], ast.Starred):
        return call.args[0]
    return None


def _target(fn: str, host: Host, x: object, frame: FrameType) -> SymbolPath:
    """The symbol path the user means by the argument ``x`` of ``reactive.fn(x)``."""
    node = _call_argument(frame, fn)
    if node is not None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return _parsed(fn, node.value)
        path = path_of(node)
        if path is None:
            raise TypeError(
                f"reactive.{fn}: pass a variable (x, d['a'], s.value) or its name as a "
                f"string, not the expression {ast.unparse(node)!r}"
            )
        local = frame.f_locals is not frame.f_globals and path.root in frame.f_locals
        if not local:
            return path
    elif isinstance(x, str):
        return _parsed(fn, x)
    # a local variable, or no source to read: find the notebook name holding this value
    names = [
        k
        for k, v in list(frame.f_globals.items())
        if v is x and public_name(k) and host.lineage.writes(SymbolPath(k))
    ]
    if len(names) == 1:
        return SymbolPath(names[0])
    raise NotTracked(
        f"reactive.{fn}: cannot tell which variable holds this {type(x).__name__}; "
        f"pass its name as a string, e.g. reactive.{fn}('x')"
    )


def _parsed(fn: str, text: str) -> SymbolPath:
    path = parse_path(text)
    if path is None:
        raise ValueError(
            f"reactive.{fn}: {text!r} is not a variable name or path like x, d['a'] or s.value"
        )
    return path


def _writes(fn: str, host: Host, path: SymbolPath) -> list[Write]:
    writes = host.lineage.writes(path)
    if writes:
        return writes
    writers = [c for c in host.graph.ordered() if any(p.overlaps(path) for p in c.analysis.defs)]
    hint = (
        f"cell {host.index_of(writers[-1].id)} writes it but no run of it has"
        if writers
        else "no cell it ran has written it"
    )
    raise NotTracked(f"reactive.{fn}: the runtime does not track {str(path)!r}; {hint}")


def _cell_id(fn: str, host: Host, ref: object) -> str:
    """A cell by execution position (1-based int) or id."""
    cells = host.graph.ordered()
    if isinstance(ref, int) and not isinstance(ref, bool):
        if 1 <= ref <= len(cells):
            return cells[ref - 1].id
        raise NotTracked(
            f"reactive.{fn}: there is no cell {ref}; cells are numbered 1..{len(cells)}"
        )
    if isinstance(ref, str) and ref in host.graph:
        return ref
    raise NotTracked(
        f"reactive.{fn}: no cell matches {ref!r}; give a cell number (1..{len(cells)}) or a cell id"
    )


class Code(str):
    """Source text that shows as code, not as a quoted string, when it is a cell's value."""

    def __repr__(self) -> str:
        return str(self)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self))

    def _repr_markdown_(self) -> str:
        return f"```python\n{self.rstrip()}\n```"


def _slice(host: Host, versions: Sequence[Any]) -> Code:
    graph = host.graph

    def current(cid: str) -> str | None:
        cell = graph.cells.get(cid)
        return cell.source if cell is not None else None

    return Code(host.lineage.slice_text(versions, host.index_of, current))


class CellView:
    """A live view of one cell: what it is, how it is, what it needs and feeds.

    Attributes are read when asked for, so a view kept in a variable stays
    current.  ``deps()``/``users()`` are cells, from what last ran (the
    static graph for a cell the runtime has not seen run).
    """

    def __init__(self, host: Host, cell_id: str) -> None:
        self._host = host
        self.id = cell_id

    @property
    def number(self) -> int:
        """Execution position (1-based), as ``cells(n)`` takes it."""
        return self._host.index_of(self.id)

    @property
    def source(self) -> str:
        return self._cell().source

    @property
    def status(self) -> str:
        """``fresh``, ``stale``, ``queued``, ``running``, ``errored`` or ``memo-hit``."""
        return self._cell().status.value

    @property
    def outputs(self) -> tuple[dict[str, Any], ...]:
        """What the cell shows now, as nbformat output dicts."""
        shown = tuple(self._host.cell_outputs(self.id))
        if shown:
            return shown
        runs = self._host.lineage.history(self.id)
        return runs[0].outputs or () if runs else ()

    def deps(self) -> list[CellView]:
        """Cells whose values this cell's last run read, in notebook order."""
        lin = self._host.lineage
        ids = lin.cell_parents(self.id) if lin.latest(self.id) else self._graph_parents()
        return self._views(ids)

    def users(self) -> list[CellView]:
        """Cells whose last run read a value this cell wrote, in notebook order."""
        lin = self._host.lineage
        ids = lin.cell_users(self.id) if lin.latest(self.id) else self._host.graph.children(self.id)
        return self._views(ids)

    def slice(self) -> Code:
        """This cell and every cell it needs, as code in an order that runs."""
        version = self._host.lineage.latest(self.id)
        if version is None:
            raise NotTracked(
                f"reactive.cells: cell {self.number} has not run since the runtime was loaded"
            )
        return _slice(self._host, [version])

    def _cell(self) -> Any:
        cell = self._host.graph.cells.get(self.id)
        if cell is None:
            raise NotTracked(f"reactive.cells: cell {self.id!r} has been deleted")
        return cell

    def _graph_parents(self) -> set[str]:
        return self._host.graph.parents(self.id)

    def _views(self, ids: set[str]) -> list[CellView]:
        graph = self._host.graph
        return [
            CellView(self._host, c) for c in graph.sort_by_position(i for i in ids if i in graph)
        ]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CellView) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        cell = self._host.graph.cells.get(self.id)
        if cell is None:
            return f"<Cell (deleted) {self.id}>"
        return f"<Cell {self.number} {cell.first_line[:50]!r}: {cell.status.value}>"


class Symbol:
    """The runtime's internal record of one symbol.  Unstable: fields may change.

    ``timestamp``, ``deps`` and ``users`` are as the functions of the same
    names return them; ``run`` numbers the run that last wrote the symbol
    (it grows with every re-run, even when the cell and statement stay the
    same); ``cell`` is that run's cell; ``writes`` are the raw records.
    """

    def __init__(self, host: Host, path: SymbolPath, writes: list[Write]) -> None:
        last = writes[-1]
        self.path = path
        self.timestamp = Timestamp(host.index_of(last.cell_id), last.stmt)
        self.run = last.run
        self.deps = host.lineage.deps(path)
        self.users = host.lineage.users(path)
        self.cell = CellView(host, last.cell_id)
        self.writes = writes

    def __repr__(self) -> str:
        return (
            f"<Symbol {self.path}: {self.timestamp}, run {self.run}, "
            f"deps {self.deps}, users {self.users}>"
        )


def code(x: object) -> Code:
    """The code that produced ``x``: the cells that actually ran to make its value.

    A dynamic slice: each cell whose writes ``x`` was computed from
    (transitively, through what those runs read), in an order that runs,
    headed ``# Cell N``.  Cells the value did not depend on are left out,
    and a cell edited since its run shows the code as it ran.  Pass the
    variable (``code(df)``, ``code(cfg["alpha"])``) or its name as a string.
    """
    host = _require("code")
    path = _target("code", host, x, sys._getframe(1))
    writes = _writes("code", host, path)
    return _slice(host, list({id(w.version): w.version for w in writes}.values()))


def timestamp(x: object) -> Timestamp:
    """Where ``x`` was last written: ``Timestamp(cell_num=N, stmt_num=K)``.

    ``N`` is the cell's execution position (1-based, as ``cells(n)`` and
    ``%reactive explain`` take it), ``K`` the 0-based top-level statement.
    It moves when another cell or statement writes ``x``; ``lift(x).run``
    also moves on every re-run of the same statement.
    """
    host = _require("timestamp")
    path = _target("timestamp", host, x, sys._getframe(1))
    last = _writes("timestamp", host, path)[-1]
    return Timestamp(host.index_of(last.cell_id), last.stmt)


def deps(x: object) -> list[SymbolPath]:
    """The symbols ``x``'s current value was computed from, e.g. ``[<base>, <s.value>]``.

    What the statement that wrote it read (a widget as the trait it read,
    functions it called and what their bodies read), plus, for an update
    such as ``x += 1`` or ``lst.append(v)``, what the earlier value came from.
    """
    host = _require("deps")
    path = _target("deps", host, x, sys._getframe(1))
    _writes("deps", host, path)
    return host.lineage.deps(path)


def users(x: object) -> list[SymbolPath]:
    """The symbols computed from ``x``'s current value (direct users only)."""
    host = _require("users")
    path = _target("users", host, x, sys._getframe(1))
    _writes("users", host, path)
    return host.lineage.users(path)


def lift(x: object) -> Symbol:
    """The runtime's internal record for ``x`` (unstable): ``.timestamp``, ``.deps``, ``.users``."""
    host = _require("lift")
    path = _target("lift", host, x, sys._getframe(1))
    return Symbol(host, path, _writes("lift", host, path))


def cells(n: int | None = None, *, id: str | None = None) -> Any:
    """A cell by execution position (``cells(3)``, 1-based) or by ``id=``; all cells with neither.

    The view has ``.source``, ``.id``, ``.status``, ``.outputs``, ``.deps()``,
    ``.users()`` and ``.slice()`` (the cell plus everything it needs, as code).
    """
    host = _require("cells")
    if n is not None and id is not None:
        raise TypeError("reactive.cells: give a cell number or id=, not both")
    if n is None and id is None:
        return [CellView(host, c.id) for c in host.graph.ordered()]
    ref: object = n if id is None else str(id)
    return CellView(host, _cell_id("cells", host, ref))


def reproduce_cell(n: int | str, lookback: int = 0) -> None:
    """Show again the input and outputs of cell ``n``'s run ``lookback`` runs ago.

    ``lookback=0`` is its latest run.  Each cell keeps a bounded history in
    this kernel session; asking for a run older than that says so.
    """
    host = _require("reproduce_cell")
    if isinstance(lookback, bool) or not isinstance(lookback, int) or lookback < 0:
        raise ValueError(f"reactive.reproduce_cell: lookback must be an int >= 0, got {lookback!r}")
    cid = _cell_id("reproduce_cell", host, n)
    number = host.index_of(cid)
    kept = host.lineage.history(cid)
    total = host.lineage.run_count(cid)
    if lookback >= len(kept):
        if not kept:
            raise NotTracked(
                f"reactive.reproduce_cell: cell {number} has not run since the runtime was loaded"
            )
        if lookback >= total:
            raise NotTracked(
                f"reactive.reproduce_cell: cell {number} has run {total} time(s) in this "
                f"session, so lookback goes up to {total - 1}"
            )
        raise NotTracked(
            f"reactive.reproduce_cell: cell {number} ran {total} time(s) and the last "
            f"{len(kept)} are kept; run {lookback} back is gone (lookback 0..{len(kept) - 1})"
        )
    host.publish(_reproduction(number, kept[lookback], lookback))


def _reproduction(number: int, entry: HistoryEntry, lookback: int) -> list[dict[str, Any]]:
    ago = "latest run" if lookback == 0 else f"{lookback} run(s) ago"
    head = f"# Cell {number}, {ago} (run {entry.run}): {entry.outcome}"
    if entry.reason:
        head += f" -- {entry.reason}"
    src = entry.source.rstrip()
    shown: list[dict[str, Any]] = [
        {
            "output_type": "display_data",
            "data": {
                "text/plain": f"{head}\n{src}\n",
                "text/markdown": f"`{head}`\n```python\n{src}\n```",
            },
            "metadata": {},
        }
    ]
    if entry.outputs is None:
        note = "(outputs of this run were not captured: reactive mode was off)\n"
        shown.append({"output_type": "stream", "name": "stdout", "text": note})
    else:
        shown.extend(dict(o) for o in entry.outputs)
    return shown


def show_graph() -> GraphPicture:
    """The cell dependency graph as an SVG picture (shown when it is a cell's value).

    Cells are boxes labelled ``[N] first line``, widget sources are ovals,
    stale cells are yellow and dashed, failed ones red.  ``str()`` of the
    result is the SVG markup.
    """
    host = _require("show_graph")
    return render(host.graph, host.index_of)
