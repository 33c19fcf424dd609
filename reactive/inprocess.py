"""An in-process host: cells are ``exec``'d in a plain dict.

It is what the core's own tests, the headless demo and the benchmarks run
on, so the scheduler can be exercised without a kernel.  It also serves as
the reference for what a host must report back: which defined paths really
changed (so readers of untouched siblings stay quiet) and which sources a
cell read.
"""

from __future__ import annotations

import contextlib
import io
import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio

from .events import Outcome, RunReason, RunResult, SourceChanged
from .graph import Cell, Source
from .paths import MISSING, SymbolPath, resolve


class Var:
    """A stand-in for a widget: an object with a ``value`` the outside world sets."""

    def __init__(self, name: str, value: Any = None) -> None:
        self.name = name
        self.value = value

    @property
    def source(self) -> Source:
        return Source(self.name, "value", label=f"{self.name}.value")

    def change(self, value: Any) -> SourceChanged:
        """The event a host would submit when the outside world sets ``value``."""

        def apply() -> None:
            self.value = value

        return SourceChanged(self.source, value, apply)

    def __repr__(self) -> str:
        return f"Var({self.name}={self.value!r})"


def snapshot(value: Any) -> Any:
    """A comparable token of a value's content (identity when not picklable)."""
    if value is MISSING:
        return MISSING
    try:
        return pickle.dumps(value, protocol=5)
    except Exception:
        return ("id", id(value), type(value).__name__)


@dataclass
class InProcessExecutor:
    """Runs cells with ``exec`` and reports what they changed."""

    ns: dict[str, Any] = field(default_factory=dict)
    #: seconds each cell takes, by cell id (simulates expensive cells)
    cost: dict[str, float] = field(default_factory=dict)
    #: blocking sleep (a synchronous cell) or ``await`` (an async cell)
    blocking: bool = True
    #: what each cell printed on its last run, and how often it ran
    outputs: dict[str, str] = field(default_factory=dict)
    runs: dict[str, int] = field(default_factory=dict)
    #: the source values each run saw, in run order: (cell, {source: value})
    seen: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    on_run: Callable[[str], None] | None = None

    #: snapshots of what each cell read on its last run, and of what it wrote
    inputs: dict[str, dict[SymbolPath, Any]] = field(default_factory=dict)
    produced: dict[str, dict[SymbolPath, Any]] = field(default_factory=dict)

    async def run(self, cell: Cell, why: RunReason) -> RunResult:
        return await self.execute(cell.id, cell.source, cell.analysis.defs, why.inputs or None)

    def inputs_unchanged(self, cell: Cell, inputs: frozenset[SymbolPath]) -> bool:
        last = self.inputs.get(cell.id)
        if last is None or set(last) != set(inputs):
            return False
        return all(snapshot(resolve(self.ns, p)) == last[p] for p in inputs)

    async def execute(
        self,
        cell_id: str,
        source: str,
        defs: frozenset[SymbolPath] = frozenset(),
        inputs: frozenset[SymbolPath] | None = None,
    ) -> RunResult:
        from .analysis import analyze

        reads = analyze(source).refs if inputs is None else inputs
        self.inputs[cell_id] = {p: snapshot(resolve(self.ns, p)) for p in reads}
        # compare with what this cell produced last time (what its readers saw),
        # not with the namespace now: an earlier writer may have just overwritten it
        before = self.produced.get(cell_id, {})
        sources = self.sources_read(source)
        self.seen.append((cell_id, {str(s): self._value(s) for s in sources}))
        delay = self.cost.get(cell_id, 0.0)
        if delay and not self.blocking:
            await anyio.sleep(delay)
        out = io.StringIO()
        outcome, error = Outcome.OK, None
        try:
            with contextlib.redirect_stdout(out):
                exec(compile(source, f"<cell {cell_id}>", "exec"), self.ns)
        except KeyboardInterrupt:
            outcome, error = Outcome.INTERRUPTED, "KeyboardInterrupt"
        except BaseException as exc:  # a cell's SystemExit is the cell's error too
            outcome, error = Outcome.ERROR, f"{type(exc).__name__}: {exc}"
            out.write(error)
        if delay and self.blocking:
            time.sleep(delay)
        self.outputs[cell_id] = out.getvalue()
        self.runs[cell_id] = self.runs.get(cell_id, 0) + 1
        if self.on_run is not None:
            self.on_run(cell_id)
        after = {p: snapshot(resolve(self.ns, p)) for p in defs}
        self.produced[cell_id] = after
        changed = frozenset(p for p in defs if p not in before or after[p] != before[p])
        return RunResult(outcome, changed=changed, sources_read=sources, error=error)

    def sources_read(self, source: str) -> frozenset[Source]:
        """Sources are resolved from the namespace at run time, as DESIGN.md §3 asks."""
        from .analysis import analyze

        found: set[Source] = set()
        for p in analyze(source).refs:
            obj = self.ns.get(p.root)
            if isinstance(obj, Var):
                found.add(obj.source)
        return frozenset(found)

    def _value(self, src: Source) -> Any:
        obj = self.ns.get(str(src.owner))
        return obj.value if isinstance(obj, Var) else None
