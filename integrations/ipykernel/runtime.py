"""The runtime that lives in a kernel: wiring, not policy.

``%load_ext reactive`` (or the "Python 3 (reactive)" kernelspec) builds one
:class:`Runtime`.  It wraps ipykernel's ``do_execute`` so every user
execution goes through the scheduler (stale upstream first, the cell, then
its downstream queued), starts the scheduler on the kernel's own event loop,
and turns the frontend's interrupt into an ``Interrupt`` event.  Everything
is undone by ``%unload_ext reactive``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from reactive.integrations.patches import Patches

from reactive.config import load_settings
from reactive.events import Interrupt, Outcome, RunReason, RunResult
from reactive.graph import Cell, CellStatus, Graph
from reactive.scheduler import Scheduler, UpstreamFailed
from reactive.trace import BatchTrace

from .capture import OutputCapture
from .executor import KernelExecutor, _busy
from .lineage import KernelLineage
from .notebook_order import NotebookOrder
from .parents import ParentGuard
from .slots import Slots
from .timers import TIMERS

log = logging.getLogger("reactive")


class Runtime:
    """One per kernel; reachable as ``Runtime.current``."""

    current: ClassVar[Runtime | None] = None

    # ----------------------------------------------------------- lifecycle
    @classmethod
    def install(cls, shell: Any) -> Runtime:
        if cls.current is not None and cls.current.shell is shell:
            return cls.current
        rt = cls(shell)
        rt.start()
        cls.current = rt
        if rt.notes and rt._in_request():  # %load_ext in a cell: say it right there
            print("\n".join(rt.notes))
            rt.notes.clear()
        return rt

    def _in_request(self) -> bool:
        get_parent = getattr(self.kernel, "get_parent", None)
        parent = get_parent() if get_parent is not None else None
        return bool((parent or {}).get("header", {}).get("msg_type") == "execute_request")

    @classmethod
    def uninstall(cls, shell: Any) -> None:
        rt = cls.current
        if rt is not None and rt.shell is shell:
            rt.stop()
            cls.current = None

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.kernel = getattr(shell, "kernel", None)
        self.config, config_errors = load_settings(shell)
        #: one-line notes for the user (bad settings), shown in the next cell run
        self.notes: list[str] = [f"reactive: {e}" for e in config_errors]
        self.graph = Graph(self.config.direction)
        self.slots = Slots()
        self.executor = KernelExecutor(
            shell, self.slots, stream_interval=self.config.stream_interval_ms / 1000
        )
        self.executor.graph_refs = self.graph.refs
        self.executor.graph_defs = self.graph.defs
        self.executor.has_readers = self.graph.has_readers
        self.scheduler = Scheduler(
            self.graph, self.executor, transform=self._transform, on_batch=self._on_batch
        )
        #: called after every run of a cell, the user's and reactive ones: (id, source, result, why)
        self.on_run: list[Callable[[str, str, RunResult, str], None]] = []
        self.executor.run = self._reported(self.executor.run)  # type: ignore[method-assign]
        self.recorder = KernelLineage(self)  # what ran, for code/deps/users/timestamp/...
        self.lineage = self.recorder.lineage
        self.on_run.append(self.recorder.ran)
        self.order = NotebookOrder()
        self._order_applied: tuple[list[str], int] | None = None
        self.trace_lines: list[str] = []
        self.trace_sink: Any = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._saved: dict[str, Any] = {}
        #: our wrappers on the kernel, taken off by stop()
        self.patches = Patches()
        self._anon: dict[str, str] = {}
        self.parents: dict[str, dict[str, Any]] = {}
        #: what cells run without a slot (they read nothing) showed on their last run
        self.plain_outputs: dict[str, tuple[dict[str, Any], ...]] = {}
        self.config.observe(self._config_changed)
        self._route_log()
        self._apply_debounce()

    def _route_log(self) -> None:
        """Send the ``reactive`` logger to the kernel's log, not to ``sys.stderr``.

        In a kernel ``sys.stderr`` is an output stream to the frontend: a
        warning written there from a background task would land in some
        cell, or in none.  The kernel app's handlers write to its real log.
        """
        kernel_log = getattr(self.kernel, "log", None)
        handlers = list(getattr(kernel_log, "handlers", []) or [])
        if not handlers and kernel_log is not None and getattr(kernel_log, "parent", None):
            handlers = list(kernel_log.parent.handlers)
        logger = logging.getLogger("reactive")
        self._saved["log"] = (list(logger.handlers), logger.propagate)
        if handlers:
            logger.handlers = handlers
            logger.propagate = False
        else:
            logger.addHandler(logging.NullHandler())

    def start(self) -> None:
        kernel = self.kernel
        if kernel is not None:
            def wrap_execute(original: Any) -> Any:
                async def do_execute(*args: Any, **kwargs: Any) -> Any:
                    return await self._do_execute(original, *args, **kwargs)

                return do_execute

            def wrap_interrupt(original: Any) -> Any:
                def interrupt_request(*args: Any, **kwargs: Any) -> Any:
                    self.scheduler.submit(Interrupt("interrupt requested by the frontend"))
                    return original(*args, **kwargs)

                return interrupt_request

            self.patches.wrap_attr(kernel, "do_execute", wrap_execute)
            handlers = getattr(kernel, "control_handlers", None)
            if isinstance(handlers, dict) and "interrupt_request" in handlers:
                self.patches.wrap_item(handlers, "interrupt_request", wrap_interrupt)
        self.parent_guard: ParentGuard | None = None
        if kernel is not None and ParentGuard.needed(kernel):
            self.parent_guard = ParentGuard(kernel)  # under the widget layer's wrappers
            self.parent_guard.install()
        from reactive.integrations.ipywidgets import WidgetSources

        self.widgets = WidgetSources(self)
        self.widgets.install()
        from .magics import ReactiveMagics

        self.magics = ReactiveMagics(self.shell, runtime=self)
        self.shell.register_magics(self.magics)
        if self.config not in self.shell.configurables:
            self.shell.configurables.append(self.config)  # so %config Reactive.x works
        from .memo import install as install_memo

        self.memo = install_memo(self)  # %%memoize, the memo cache, the repaint cap
        self.shell.events.register("pre_execute", self._ensure_serving)
        self._ensure_serving()
        self.recorder.install()
        from reactive import api

        api.set_host(self)

    def cell_running(self) -> bool:
        return self.executor.busy

    def stop(self) -> None:
        from reactive import api

        handlers, propagate = self._saved.get("log", ([], True))
        logger = logging.getLogger("reactive")
        logger.handlers, logger.propagate = handlers, propagate
        api.set_host(None)
        self.recorder.uninstall()
        self.widgets.uninstall()
        if self.parent_guard is not None:
            self.parent_guard.uninstall()
        self.patches.undo()
        with contextlib.suppress(ValueError):
            self.shell.events.unregister("pre_execute", self._ensure_serving)
        magics = self.shell.magics_manager.magics
        for kind in ("line", "cell"):
            for name in ("reactive",):
                magics[kind].pop(name, None)
        self.memo.detach()
        if self.config in self.shell.configurables:
            self.shell.configurables.remove(self.config)
        if self._task is not None:
            self._task.cancel()
            self._task = None
        # slots stay open: they are what the cells show, unloading must not blank them
        self.slots.forget_all()
        TIMERS.stop()  # what was held back was just sent; no thread is left behind

    def _ensure_serving(self) -> None:
        """Start the scheduler on the kernel's loop once one is running.

        Extensions loaded by the kernelspec load before the loop runs, so
        the first execution (``pre_execute``) starts it instead.
        """
        if self._task is not None and not self._task.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if threading.current_thread() is not threading.main_thread():
            return
        self._loop = loop
        self._task = loop.create_task(self.scheduler.serve(), name="reactive-scheduler")

    # -------------------------------------------------------- executions
    def _transform(self, source: str) -> str:
        return self.executor.transform(source)

    def cell_key(self, cell_id: str | None, code: str, meta: dict[str, Any] | None) -> str:
        """The frontend's cell id; without one, a key per distinct source.

        Consoles and older frontends send no ``cellId``: there each distinct
        source text is one cell, placed by its first execution.
        """
        if cell_id:
            return str(cell_id)
        merc = (meta or {}).get("mercury") or {}
        if isinstance(merc, dict) and merc.get("cell_id"):
            return str(merc["cell_id"])
        key = self._anon.get(code)
        if key is None:
            key = "anon-" + hashlib.sha1(code.encode()).hexdigest()[:12]
            self._anon[code] = key
        return key

    def _sync_order(self, meta: dict[str, Any] | None) -> None:
        for gone in (meta or {}).get("deletedCells") or ():
            if gone in self.graph:
                self.scheduler.remove_cell(str(gone))
                self.slots.drop(str(gone))
                self.plain_outputs.pop(str(gone), None)
        ids = self.order.cell_ids(self.shell)
        applied = (ids, self.graph.members)
        if ids and applied != self._order_applied:  # re-indexing every cell costs O(n)
            self.graph.reorder(ids)
            self._order_applied = applied

    async def _do_execute(self, original: Any, code: str, silent: bool, *args: Any, **kw: Any):  # type: ignore[no-untyped-def]
        meta = kw.get("cell_meta") or {}
        if silent or not code.strip():
            return await original(code, silent, *args, **kw)
        self._ensure_serving()
        cid = self.cell_key(kw.get("cell_id"), code, meta)
        if self.kernel is not None:
            parent = self.kernel.get_parent() if hasattr(self.kernel, "get_parent") else None
            if parent:
                self.parents[cid] = parent
        self._sync_order(meta)
        if self.config.mode != "reactive":
            return await self._run_normal(original, cid, code, silent, *args, **kw)
        merc = meta.get("mercury")
        if isinstance(merc, dict) and merc.get("kind") == "cell":
            # a mercury app re-sends every cell below a moved widget (integrations/mercury.py)
            from reactive.integrations.mercury import execute as mercury_execute

            return await mercury_execute(self, original, cid, code, silent, *args, **kw)
        from reactive.integrations import stickyland

        if stickyland.is_sticky_request(meta):
            # stickyland's auto-run re-sends sticky cells after every run (stickyland.py)
            return await stickyland.execute(self, original, cid, code, silent, *args, **kw)
        return await self.run_user(
            original, cid, code, silent, *args, plain_if_inputless=True, **kw
        )

    async def run_user(
        self,
        original: Any,
        cid: str,
        code: str,
        silent: bool,
        *args: Any,
        show_slot: bool = True,
        plain_if_inputless: bool = False,
        **kw: Any,
    ) -> Any:
        """Run a user's execution through the scheduler; return ipykernel's reply.

        ``show_slot=False`` leaves the cell's slot undisplayed, for a host that shows
        the outputs itself (mercury renders only what its own requests return).
        ``plain_if_inputless``: a cell that reads nothing can never be re-run for a
        change, so its outputs go to its output area the way ipykernel sends them,
        without a slot (two messages, about 0.3 ms, per execution saved).
        """
        box: dict[str, Any] = {}

        async def run_self() -> RunResult:
            plain = plain_if_inputless and show_slot and self._inputless(cid)
            result = await self._run_user_cell(
                original, cid, code, silent, box, *args, show_slot=show_slot, plain=plain, **kw
            )
            # recorded once the reply is out (the loop's next turn, before any
            # downstream run): the user waits for the reply, not for the bookkeeping
            asyncio.get_running_loop().call_soon(
                self._ran, cid, code, result, "user: executed by the user"
            )
            return result

        try:
            await self.scheduler.user_run(cid, code, run_self, upstream=self.config.upstream)
        except UpstreamFailed as exc:
            return self._refuse(cid, exc, show_slot=show_slot)
        except KeyboardInterrupt:
            return self._error_reply("KeyboardInterrupt", "interrupted before the cell ran")
        return box["reply"]

    async def _run_user_cell(
        self,
        original: Any,
        cid: str,
        code: str,
        silent: bool,
        box: dict[str, Any],
        *a: Any,
        show_slot: bool = True,
        plain: bool = False,
        **kw: Any,
    ) -> RunResult:
        shell = self.shell
        defs, refs = self.graph.defs(cid), self.graph.refs(cid)
        self.executor.record_inputs(cid, refs)
        self._notices()
        if plain:
            self.slots.drop(cid)  # an earlier version's slot: the page cleared its view
            cap = OutputCapture(shell, passthrough=True, flush=False)
        else:
            if show_slot:
                self.slots.show(cid, shell.display_pub.publish)
            cap = self.executor.capture(cid, stream=True, flush=False)
        with _busy(self.executor), cap:
            reply = await original(code, silent, *a, **kw)
        if plain:
            self.plain_outputs[cid] = tuple(cap.outputs)
        else:
            self.plain_outputs.pop(cid, None)
            self.slots.fill(cid, cap.outputs, redisplayed=show_slot, final=True)
        box["reply"] = reply
        sources = self.executor.sources_read(refs, code)
        status = reply.get("status") if isinstance(reply, dict) else "ok"
        if status == "error":
            if reply.get("ename") == "KeyboardInterrupt":
                return RunResult(Outcome.INTERRUPTED, error="KeyboardInterrupt")
            return RunResult(
                Outcome.ERROR,
                sources_read=sources,
                error=f"{reply.get('ename')}: {reply.get('evalue')}",
            )
        if status == "aborted":
            return RunResult(Outcome.INTERRUPTED, error="aborted")
        changed = self.executor.changed(cid, defs)
        return RunResult(
            Outcome.OK,
            changed=changed,
            sources_read=sources,
            sources_written=self.executor.sources_read(changed),
        )

    async def _run_normal(
        self, original: Any, cid: str, code: str, silent: bool, *a: Any, **kw: Any
    ):  # type: ignore[no-untyped-def]
        """Plain kernel behaviour; the graph still learns, so status can list stale cells."""
        from reactive.analysis import analyze

        self.graph.upsert(cid, code, analyze(code, self._transform))
        defs = self.graph.defs(cid)
        reply = await original(code, silent, *a, **kw)
        cell = self.graph.cells[cid]
        cell.run_count += 1
        self.graph.note_ran(cid)
        ok = not (isinstance(reply, dict) and reply.get("status") == "error")
        cell.status = CellStatus.FRESH if ok else CellStatus.ERRORED
        self._ran(cid, code, RunResult(Outcome.OK if ok else Outcome.ERROR), "user (reactive off)")
        changed = self.executor.changed(cid, defs) if ok else None
        stale = set()
        for child in self.graph.children(cid, changed):
            stale.add(child)
        stale |= set(self.graph.descendants(stale))
        self.graph.mark_stale(stale)
        return reply

    def _inputless(self, cid: str) -> bool:
        """Whether nothing another cell or a widget changes can make this cell re-run."""
        return cid in self.graph and self.graph.reads_nothing(cid)

    def _reported(self, run: Callable[[Cell, RunReason], Any]) -> Callable[[Cell, RunReason], Any]:
        """The executor's ``run``, reporting each reactive run to ``on_run`` as well."""

        async def reported(cell: Cell, why: RunReason) -> RunResult:
            result: RunResult = await run(cell, why)
            self._ran(cell.id, cell.source, result, str(why))
            return result

        return reported

    def _ran(self, cid: str, source: str, result: RunResult, why: str) -> None:
        for hook in list(self.on_run):
            try:
                hook(cid, source, result, why)
            except Exception:  # a broken observer must not break execution
                log.exception("reactive: on_run hook failed for cell %s", cid)

    def _refuse(self, cid: str, exc: UpstreamFailed, *, show_slot: bool = True) -> dict[str, Any]:
        text = f"reactive: {exc}. Fix that cell (or run it) first."
        if show_slot:
            self.slots.show(cid, self.shell.display_pub.publish)
        self.slots.fill(
            cid,
            [
                {
                    "output_type": "error",
                    "ename": "UpstreamFailed",
                    "evalue": text,
                    "traceback": [text],
                }
            ],
        )
        return self._error_reply("UpstreamFailed", text)

    def _error_reply(self, ename: str, evalue: str) -> dict[str, Any]:
        return {
            "status": "error",
            "execution_count": self.shell.execution_count,
            "ename": ename,
            "evalue": evalue,
            "traceback": [f"{ename}: {evalue}"],
        }

    def _notices(self) -> None:
        """Show pending notes, and the live trace, in the cell the user runs.

        Settings come from config files or the kernel command line before any
        cell exists, so a bad one can only be reported in the next cell run;
        likewise ``c.Reactive.trace = True`` has no cell to print into until then.
        """
        publish = self.shell.display_pub.publish
        if self.notes:
            text = "\n".join(self.notes) + "\n"
            self.notes.clear()
            publish({"text/plain": text}, {})
        if self.config.trace and self.trace_sink is None:
            from ipywidgets import Output

            self.trace_sink = Output()
            publish({"text/plain": "reactive trace", **self.trace_sink._repr_mimebundle_()}, {})

    # ------------------------------------------------------------ config
    def _config_changed(self, change: dict[str, Any]) -> None:
        name = change["name"]
        if name == "direction":
            self.graph.set_direction(change["new"])
        elif name == "debounce_ms":
            self._apply_debounce()
        elif name == "stream_interval_ms":
            self.executor.stream_interval = change["new"] / 1000

    def _apply_debounce(self) -> None:
        self.scheduler.set_debounce(self.config.debounce_ms / 1000)

    # ------------------------------------------------------------- trace
    def _on_batch(self, batch: BatchTrace) -> None:
        if not self.config.trace or self.trace_sink is None:
            return
        self.trace_lines.append(batch.summary())
        del self.trace_lines[:-50]
        self.trace_sink.outputs = (
            {"output_type": "stream", "name": "stdout", "text": "\n".join(self.trace_lines) + "\n"},
        )

    # ------------------------------------------------------------ status
    def status_lines(self) -> list[str]:
        g = self.graph
        cells = g.ordered()
        stale = [c for c in cells if c.status in (CellStatus.STALE, CellStatus.ERRORED)]
        lines = [
            f"reactive: mode={self.config.mode} direction={self.config.direction} "
            f"debounce={self.config.debounce_ms:g}ms cells={len(cells)} "
            f"runs={self.scheduler.stats['runs']} events={self.scheduler.stats['events']} "
            f"coalesced={self.scheduler.stats['coalesced']}",
        ]
        if stale:
            lines.append("stale or errored cells (re-run them, or switch reactive mode on):")
            for c in stale:
                lines.append(f"  [{self.index_of(c.id)}] {c.status.value:8s} {c.first_line[:60]}")
        else:
            lines.append("no stale cells")
        if self.scheduler.pending:
            lines.append("queued: " + ", ".join(self.scheduler.pending))
        return lines

    # ----------------------------------------------------- the API's host
    def sources_of(self, obj: Any) -> frozenset:  # type: ignore[type-arg]
        from reactive.integrations.ipywidgets import resolve_path

        from reactive.paths import SymbolPath

        probe = "__reactive_probe__"
        src = resolve_path({probe: obj}, SymbolPath(probe))
        return frozenset() if src is None else frozenset({src})

    def find_cell(self, ref: object) -> str | None:
        from .explain import find_cell

        return find_cell(self, str(ref))

    def cell_outputs(self, cell_id: str) -> tuple[dict[str, Any], ...]:
        if self.slots.has(cell_id):
            return self.slots.outputs(cell_id)
        return self.plain_outputs.get(cell_id, ())

    def publish(self, outputs: Sequence[dict[str, Any]]) -> None:
        self.recorder.publish(outputs)

    def index_of(self, cell_id: str) -> int:
        for i, c in enumerate(self.graph.ordered(), start=1):
            if c.id == cell_id:
                return i
        return 0
