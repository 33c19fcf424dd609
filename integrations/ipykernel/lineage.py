"""Feeding lineage from the kernel: one record per run of a managed cell.

The runtime calls :meth:`KernelLineage.ran` after every run -- the user's own
executions and reactive re-runs alike -- with the cell id, the source that
ran and the scheduler's result.  What the core cannot see for itself comes
from IPython's own events around the run:

* ``pre_run_cell``: which objects the names the cell writes hold, so that a
  statement that failed half-way (a loop) still counts for what it rebound;
  for a cell the analysis cannot follow (``exec``, ``globals()[...]``) every
  public name is watched, so its writes are found all the same;
* ``post_run_cell``: the exception, whose traceback says which statement
  failed (statements after it wrote nothing).

Outputs are the cell's slot contents after the run, i.e. what the user saw.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

from reactive.events import RunResult
from reactive.lineage import Lineage, public_name

if TYPE_CHECKING:
    from .runtime import Runtime

log = logging.getLogger("reactive")

#: runs kept per cell for ``reproduce_cell`` (each with its outputs)
HISTORY = 8


def _snapshot(ns: dict[str, Any], names: frozenset[str] | None) -> dict[str, int]:
    """Object identities of ``names`` (None: every public name) in the namespace."""
    if names is None:
        return {k: id(v) for k, v in list(ns.items()) if public_name(k)}
    return {k: id(ns[k]) for k in names if k in ns}


def failing_line(tb: TracebackType | None, *, cell_magic: bool) -> int | None:
    """The line of the cell's code where an exception left it.

    Each top-level statement runs as a ``<module>`` code object of the cell,
    so the first such frame is the cell's.  A code-running cell magic
    (``%%memoize``, ``%%time``) runs its body as a second one.
    """
    found: list[int] = []
    while tb is not None:
        if tb.tb_frame.f_code.co_name == "<module>":
            found.append(tb.tb_lineno)
        tb = tb.tb_next
    if cell_magic:
        return found[1] if len(found) > 1 else None
    return found[0] if found else None


class KernelLineage:
    """Records every run of a managed cell into a core :class:`Lineage`."""

    def __init__(self, runtime: Runtime, history: int = HISTORY) -> None:
        self.runtime = runtime
        self.lineage = Lineage(history)
        #: raw cell text -> (watched names, their objects before the run)
        self._before: dict[str, tuple[frozenset[str] | None, dict[str, int]]] = {}
        self._errors: dict[str, BaseException | None] = {}

    def install(self) -> None:
        events = self.runtime.shell.events
        events.register("pre_run_cell", self._pre_run_cell)
        events.register("post_run_cell", self._post_run_cell)

    def uninstall(self) -> None:
        events = self.runtime.shell.events
        for name, cb in (
            ("pre_run_cell", self._pre_run_cell),
            ("post_run_cell", self._post_run_cell),
        ):
            with contextlib.suppress(ValueError):
                events.unregister(name, cb)

    # ----------------------------------------------------------- IPython events
    def _pre_run_cell(self, info: Any) -> None:
        raw = getattr(info, "raw_cell", None)
        if not isinstance(raw, str):
            return
        # cheap on purpose: widget updates wait while a cell runs, this included
        rt = self.runtime
        cid = getattr(info, "cell_id", None)  # without one (a console): watch every name
        cell = rt.graph.cells.get(cid) if cid else None
        names: frozenset[str] | None = None
        if cell is not None and cell.source == raw and not cell.conservative:
            names = frozenset(p.root for p in rt.graph.defs(cid))
        self._before[raw] = (names, _snapshot(rt.shell.user_ns, names))

    def _post_run_cell(self, result: Any) -> None:
        info = getattr(result, "info", None)
        raw = getattr(info, "raw_cell", None)
        if isinstance(raw, str):
            err = getattr(result, "error_in_exec", None) or getattr(
                result, "error_before_exec", None
            )
            self._errors[raw] = err

    # ------------------------------------------------------------- the hook
    def ran(self, cell_id: str, source: str, result: RunResult, reason: str) -> None:
        """Record one run (called by the runtime after the cell's slot was filled)."""
        try:
            self._record(cell_id, source, result, reason)
        except Exception:  # lineage must never break execution
            log.exception("reactive: could not record lineage of cell %s", cell_id)
        finally:
            self._before.pop(source, None)
            self._errors.pop(source, None)
            if len(self._before) > 64:  # runs that never reported (nested run_cell)
                self._before.clear()
                self._errors.clear()

    def _record(self, cell_id: str, source: str, result: RunResult, reason: str) -> None:
        rt = self.runtime
        ns = rt.shell.user_ns
        watched = self._before.get(source)
        changed: set[str] = set()
        deleted: set[str] = set()
        if watched is not None:
            names, before = watched
            after = _snapshot(ns, names)
            changed = {k for k, v in after.items() if before.get(k) != v}
            deleted = {k for k in before if k not in after}
        err = self._errors.get(source)
        failed_line = None
        if err is not None and not isinstance(err, SyntaxError):
            cell_magic = source.lstrip().startswith("%%")
            failed_line = failing_line(err.__traceback__, cell_magic=cell_magic)
        outcome = result.outcome.value
        memo = getattr(rt, "memo", None)
        if outcome == "ok" and getattr(memo, "last", {}).get(cell_id) == "hit":
            outcome = "memo-hit"
        graph = rt.graph
        extra = graph.defs(cell_id) if cell_id in graph else frozenset()
        outputs: Sequence[dict[str, Any]] | None = None
        if rt.config.mode == "reactive" and (rt.slots.has(cell_id) or cell_id in rt.plain_outputs):
            # an image repaint the frame-rate cap still holds back is what this run showed
            held = getattr(rt.slots, "_pending", None)
            if isinstance(held, dict) and cell_id in held:
                outputs = held[cell_id]
            else:
                outputs = rt.cell_outputs(cell_id)
        self.lineage.record_later(
            cell_id,
            source,
            transform=rt._transform,
            outcome=outcome,
            outputs=outputs,
            failed_line=failed_line,
            changed_names=changed,
            deleted_names=deleted,
            extra_defs=extra,
            reason=reason,
            error=result.error,
            at=rt.scheduler.clock(),
        )

    # ------------------------------------------------------------ for the API
    def publish(self, outputs: Sequence[dict[str, Any]]) -> None:
        """Show nbformat outputs in the running cell (through its capture, if any)."""
        shell = self.runtime.shell
        for out in outputs:
            kind = out.get("output_type")
            if kind == "stream":
                stream = sys.stderr if out.get("name") == "stderr" else sys.stdout
                stream.write(_text(out.get("text", "")))
                stream.flush()
            elif kind in ("display_data", "execute_result"):
                shell.display_pub.publish(
                    data=dict(out.get("data") or {}), metadata=dict(out.get("metadata") or {})
                )
            elif kind == "error":
                tb = out.get("traceback") or [f"{out.get('ename')}: {out.get('evalue')}"]
                sys.stderr.write("\n".join(tb) + "\n")
                sys.stderr.flush()


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value)
