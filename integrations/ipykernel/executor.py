"""Running cells inside the kernel, the way ipykernel itself runs them.

Reactive re-runs go through IPython's ``run_cell_async`` so magics, display
hooks and top-level ``await`` behave exactly as in a user execution; the
``post_execute``/``post_run_cell`` events that ``run_cell_async`` does not
fire are fired here (matplotlib-inline flushes figures on them).  Outputs
are captured and written to the cell's slot in one update.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterable
from typing import Any

from reactive.events import Outcome, RunReason, RunResult
from reactive.fingerprint import Unfingerprintable, fingerprint
from reactive.graph import Cell, Source
from reactive.paths import MISSING, SymbolPath, resolve

from .capture import Output, OutputCapture
from .slots import Slots
from .transforms import CellTransforms

__all__ = ["MISSING", "KernelExecutor", "fingerprints", "resolve"]
_MISSING = MISSING  # the name other integration modules import

#: resolves a cell's read paths to the sources they touch (set by widget integrations)
SourceResolver = Callable[[dict[str, Any], Iterable[SymbolPath], str], frozenset[Source]]


def fingerprints(ns: dict[str, Any], paths: Iterable[SymbolPath]) -> dict[SymbolPath, Any]:
    return {p: (None if (v := resolve(ns, p)) is MISSING else fingerprint(v)) for p in paths}


def _same(a: Any, b: Any) -> bool:
    # Unfingerprintable values never compare equal, so "unknown" means "changed"
    return a == b


class KernelExecutor:
    """The scheduler's executor in an IPython kernel."""

    def __init__(self, shell: Any, slots: Slots, *, stream_interval: float = 0.1) -> None:
        self.shell = shell
        self.slots = slots
        #: IPython's transform_cell, cached per source where that is exact
        self.transform = CellTransforms(shell)
        self.stream_interval = stream_interval
        self.resolvers: list[SourceResolver] = []
        self.graph_refs: Callable[[str], frozenset[SymbolPath]] = lambda cid: frozenset()
        self.graph_defs: Callable[[str], frozenset[SymbolPath]] = lambda cid: frozenset()
        self.has_readers: Callable[[str], bool] = lambda root: True
        self._inputs: dict[str, dict[SymbolPath, Any]] = {}
        self._produced: dict[str, dict[SymbolPath, Any]] = {}
        self.runs: dict[str, int] = {}
        #: true while any cell (reactive or the user's) runs: widget updates wait
        self.busy = False

    # ------------------------------------------------------------ helpers
    def sources_read(self, refs: Iterable[SymbolPath], source: str = "") -> frozenset[Source]:
        found: set[Source] = set()
        refs = list(refs)
        if not refs:  # every resolver finds sources among the paths read
            return frozenset()
        for resolver in self.resolvers:
            try:
                found |= resolver(self.shell.user_ns, refs, source)
            except Exception:  # a broken resolver must not break execution
                continue
        return frozenset(found)

    def record_inputs(self, cell_id: str, refs: Iterable[SymbolPath]) -> None:
        self._inputs[cell_id] = fingerprints(self.shell.user_ns, refs)

    def inputs_unchanged(self, cell: Cell, inputs: frozenset[SymbolPath]) -> bool:
        last = self._inputs.get(cell.id)
        if last is None or set(last) != set(inputs):
            return False
        now = fingerprints(self.shell.user_ns, inputs)
        return all(_same(now[p], last[p]) for p in inputs)

    def changed(self, cell_id: str, defs: Iterable[SymbolPath]) -> frozenset[SymbolPath]:
        """Defined paths whose value differs from what this cell produced last time.

        The comparison is with the cell's own previous output -- what its
        readers saw -- not with the namespace before the run, which an
        earlier writer of the same name may have just overwritten.
        """
        # a value nobody reads needs no fingerprint (a big one costs ms per run);
        # unknown counts as changed, so a reader that appears later still runs
        defs = list(defs)
        watched = [p for p in defs if self.has_readers(p.root)]
        after = fingerprints(self.shell.user_ns, watched)
        after.update({p: Unfingerprintable("nothing reads it") for p in defs if p not in after})
        before = self._produced.get(cell_id, {})
        self._produced[cell_id] = after
        return frozenset(
            p for p, fp in after.items() if p not in before or not _same(fp, before[p])
        )

    def capture(self, cell_id: str, *, stream: bool, flush: bool = True) -> OutputCapture:
        def push(outputs: list[Output]) -> None:
            self.slots.fill(cell_id, outputs)

        return OutputCapture(
            self.shell,
            on_change=push if stream else None,
            interval=self.stream_interval,
            execution_count=self.shell.execution_count,
            flush=flush,
        )

    # -------------------------------------------------------------- runs
    async def run(self, cell: Cell, why: RunReason) -> RunResult:
        shell = self.shell
        defs = self.graph_defs(cell.id)
        refs = why.inputs or self.graph_refs(cell.id)
        self.record_inputs(cell.id, refs)
        cap = self.capture(cell.id, stream=True)
        interrupted = False
        with _busy(self), _interruptible(), cap:
            try:
                transformed = self.transform(cell.source)
            except Exception:
                transformed = cell.source
            try:
                result = await shell.run_cell_async(
                    cell.source,
                    store_history=False,
                    silent=False,
                    transformed_cell=transformed,
                    cell_id=cell.id,
                )
            except KeyboardInterrupt:
                interrupted, result = True, None
            finally:
                shell.events.trigger("post_execute")
                if result is not None:
                    shell.events.trigger("post_run_cell", result)
        self.slots.fill(cell.id, cap.outputs)
        self.runs[cell.id] = self.runs.get(cell.id, 0) + 1
        err = None if result is None else (result.error_in_exec or result.error_before_exec)
        if interrupted or isinstance(err, KeyboardInterrupt):
            return RunResult(Outcome.INTERRUPTED, error="KeyboardInterrupt")
        sources = self.sources_read(refs, cell.source)
        if err is not None:
            return RunResult(
                Outcome.ERROR,
                sources_read=sources,
                error=f"{type(err).__name__}: {err}",
            )
        changed = self.changed(cell.id, defs)
        return RunResult(
            Outcome.OK,
            changed=changed,
            sources_read=sources,
            sources_written=self.sources_read(changed),
        )


class _busy:
    def __init__(self, executor: KernelExecutor) -> None:
        self.executor = executor

    def __enter__(self) -> None:
        self.executor.busy = True

    def __exit__(self, *exc: object) -> None:
        self.executor.busy = False


class _interruptible:
    """Let SIGINT interrupt a reactive run, as it interrupts a user execution.

    Outside request handling ipykernel ignores SIGINT; a reactive batch runs
    outside any request, so without this the frontend's interrupt button
    would do nothing to a runaway re-run.
    """

    def __enter__(self) -> None:
        self._saved = None
        if threading.current_thread() is threading.main_thread():
            self._saved = signal.signal(signal.SIGINT, signal.default_int_handler)

    def __exit__(self, *exc: object) -> None:
        if self._saved is not None:
            signal.signal(signal.SIGINT, self._saved)
