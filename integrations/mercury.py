"""mercury apps: a widget change runs the cells that depend on it once, and mercury shows them.

mercury (mljar's notebook-to-web-app framework, HOSTS.md "mercury 3.2.13") drives
execution from the browser.  After a widget's ``echo_update`` the app waits 10 ms and
re-sends an ``execute_request`` for *every* code cell below the widget's cell, one at a
time, each carrying ``metadata.mercury = {"kind": "cell", "cell_id": ...}`` (and the
usual ``cellId``).  It shows a cell exactly as those requests' iopub messages say, and it
places a widget (sidebar, inline, bottom) by the ``application/mercury+json`` entry of a
display in the cell's *own* outputs.  The runtime reacts to the same widget change by
itself, so left alone every dependent cell would run twice and every independent cell
below the widget once.

**Mechanism.** mercury keeps its default settings (``autoRerun`` on); the runtime
recognises mercury's cell requests and answers each from the graph:

* a cell that is *current* -- it ran on exactly the inputs it would read now: fresh (or
  failed) in the graph, nothing upstream queued or stale, and every fingerprintable value
  it read unchanged -- is **not run**.  Its current outputs (the slot's) are published as
  ordinary iopub outputs of mercury's request, and the reply is the one its last run gave.
  That covers independent cells and dependents the reactive batch has already re-run.
* any other cell runs as a user execution through the scheduler (out-of-sync upstream
  first, then the cell, its dependents queued) and is taken out of the batch's queue, so
  the batch does not run it again; its outputs are published the same way.

Either way the cell's slot is never displayed in a mercury page: mercury renders only the
outputs of its own requests, and a widget inside an Output widget could not be placed in
the sidebar.  Reactive re-runs still fill the slots, and mercury's next request for the
cell reads them.

Why not the other options HOSTS.md names: with ``autoRerun`` off mercury sends nothing
after a change, so every reactive re-run would have to reach the page through slots --
every widget inside an Output widget, out of mercury's layout, and each user's notebook
metadata would need editing.  ``source_cell_context`` alone does not prevent a single
double run.  It is still used (see :class:`MercuryHost`), for what it is for.

The values check matters because mercury changes state behind the graph's back: after
each re-run chain its ``widgets.clear`` action resets ``Button.value`` to False in the
kernel, with no frontend update, so a cell that read ``btn.value`` is out of date although
the graph says fresh.  Paths the cell writes itself are left out (``n = n + 1`` changes
what it read), and values that cannot be fingerprinted are left to the graph, which
tracks every assignment it can see.

Limits: a cell held back by ``%reactive debounce`` shows its old output until mercury
asks for it again, and with ``autoRerun`` off mercury shows only what its own requests
return.
"""

from __future__ import annotations

import contextlib
import logging
import weakref
from collections.abc import Iterable, Mapping
from typing import Any

from reactive.fingerprint import Unfingerprintable
from reactive.graph import CellStatus
from reactive.paths import SymbolPath

from .ipykernel.executor import fingerprints

log = logging.getLogger("reactive")

#: the MIME type by which mercury finds (and places) its widgets in a cell's outputs
MERCURY_MIME = "application/mercury+json"
#: output types a replay publishes; anything else a slot may hold is dropped
_OUTPUT_TYPES = frozenset({"stream", "display_data", "execute_result", "error"})
#: statuses whose outputs are the result of a run on the cell's current inputs
_SETTLED = frozenset({CellStatus.FRESH, CellStatus.MEMO_HIT, CellStatus.ERRORED})

Output = dict[str, Any]


async def execute(
    rt: Any, original: Any, cid: str, code: str, silent: bool, *args: Any, **kw: Any
) -> dict[str, Any]:
    """Answer mercury's request to run cell ``cid`` (the runtime's ``do_execute`` hook)."""
    return await MercuryHost.of(rt).execute(original, cid, code, silent, *args, **kw)


_hosts: weakref.WeakKeyDictionary[Any, MercuryHost] = weakref.WeakKeyDictionary()


class MercuryHost:
    """What one runtime needs for mercury; made on the first mercury request.

    Besides answering requests it keeps mercury's render context right during reactive
    re-runs: mercury stamps each widget with the cell that displayed it
    (``cell_id``/``source_cell_id``), read from the current request's ``cellId``.  A
    reactive re-run answers no request, so that would name whichever request came last.
    Every cell run (IPython's ``pre_run_cell`` knows its id) therefore runs inside
    ``mercury.render_context.source_cell_context(cell id)``.
    """

    def __init__(self, rt: Any) -> None:
        # weakly: the host is the value of a weak-keyed map whose key is the runtime
        self._rt = weakref.ref(rt)
        #: per cell: requests answered without running, and requests that ran it
        self.replayed: dict[str, int] = {}
        self.ran: dict[str, int] = {}
        self._context: Any = None
        self._render = _render_context()
        self._events = getattr(rt.shell, "events", None)
        if self._events is not None and self._render is not None:
            self._events.register("pre_run_cell", self._pre_run_cell)
            self._events.register("post_execute", self._post_execute)

    @property
    def rt(self) -> Any:
        rt = self._rt()
        if rt is None:
            raise RuntimeError("reactive: the runtime this mercury host served is gone")
        return rt

    @classmethod
    def of(cls, rt: Any) -> MercuryHost:
        host = _hosts.get(rt)
        if host is None:
            host = _hosts[rt] = cls(rt)
        return host

    # ------------------------------------------------------------ requests
    async def execute(
        self, original: Any, cid: str, code: str, silent: bool, *args: Any, **kw: Any
    ) -> dict[str, Any]:
        rt = self.rt
        sched = rt.scheduler
        async with sched.lock:
            # Under the scheduler's lock nothing runs, so "current" cannot change between
            # the check and the answer.  Events not yet taken (a widget update held while
            # a cell ran) are taken first, as ``user_run`` would.
            sched._absorb()
            reply = self._replay_reply(cid, code, kw.get("user_expressions"))
            if reply is not None:
                self.replayed[cid] = self.replayed.get(cid, 0) + 1
                publish(rt.kernel, latest_outputs(rt.slots, cid))
                return reply
            # Ours to run now: the serving loop must not run it as well.  (The lock is fair,
            # so at most one of its steps goes between this and ``user_run`` below; a
            # dependency that step re-runs queues this cell again, and ``user_run`` takes
            # it out before running it.)
            sched._work.pop(cid, None)
        reply = await rt.run_user(original, cid, code, silent, *args, show_slot=False, **kw)
        self.ran[cid] = self.ran.get(cid, 0) + 1
        outputs = latest_outputs(rt.slots, cid)
        if _interrupted_before_running(reply, outputs):
            outputs = (_error_output(reply),)
        publish(rt.kernel, outputs)
        return reply

    def _replay_reply(
        self, cid: str, code: str, user_expressions: Mapping[str, str] | None
    ) -> dict[str, Any] | None:
        """The reply for a cell that need not run, or None when it must run."""
        return current_reply(self.rt, cid, code, user_expressions)

    # ------------------------------------------------------ render context
    def _pre_run_cell(self, info: Any) -> None:
        if not self._live():
            return
        self._close_context()
        cell_id = getattr(info, "cell_id", None)
        if cell_id and self._render is not None:
            context = self._render.source_cell_context(str(cell_id))
            context.__enter__()
            self._context = context

    def _post_execute(self) -> None:
        if self._live():
            self._close_context()

    def _close_context(self) -> None:
        context, self._context = self._context, None
        if context is not None:
            # ipykernel runs a user's cell in a task of its own (a copied context) and
            # fires post_execute outside it: resetting from here fails, and that copy is
            # dropped with the task anyway.
            with contextlib.suppress(ValueError, RuntimeError):
                context.__exit__(None, None, None)

    def _live(self) -> bool:
        """Whether this host's runtime is still loaded; unhook from IPython when not."""
        from .ipykernel.runtime import Runtime

        rt = self._rt()
        if rt is not None and Runtime.current is rt:
            return True
        self._close_context()
        if self._events is not None:
            for name, fn in (
                ("pre_run_cell", self._pre_run_cell),
                ("post_execute", self._post_execute),
            ):
                with contextlib.suppress(ValueError):
                    self._events.unregister(name, fn)
            self._events = None
        return False


def current_reply(
    rt: Any, cid: str, code: str, user_expressions: Mapping[str, str] | None
) -> dict[str, Any] | None:
    """The reply for a re-sent cell that need not run, or None when it must run.

    Hosts that re-send requests for cells the runtime already keeps current
    (mercury's re-run chain, stickyland's auto-run) answer them from here.
    """
    cell = rt.graph.cells.get(cid)
    try:
        if (
            cell is None
            or cell.source != code
            or cell.run_count == 0
            or cell.status not in _SETTLED
            or cid in rt.scheduler._work
            or not rt.slots.has(cid)
            or rt.scheduler._upstream_plan(cid)
            or not values_unchanged(rt, cid)
        ):
            return None
    except Exception:  # a cycle (any-order mode), a value that fails to resolve: run it
        log.debug("reactive: %s was asked for again; running it", cid, exc_info=True)
        return None
    count = rt.shell.execution_count
    if cell.status is CellStatus.ERRORED:
        error = next(
            (o for o in latest_outputs(rt.slots, cid) if o.get("output_type") == "error"),
            None,
        )
        if error is None:
            return None
        return {
            "status": "error",
            "execution_count": count,
            "ename": error.get("ename", ""),
            "evalue": error.get("evalue", ""),
            "traceback": list(error.get("traceback") or []),
        }
    try:
        expressions = rt.shell.user_expressions(dict(user_expressions or {}))
    except Exception:  # as ipykernel: a bad expression is reported inside, never raised
        expressions = {}
    return {
        "status": "ok",
        "execution_count": count,
        "user_expressions": expressions,
        "payload": [],
    }


def values_unchanged(rt: Any, cid: str) -> bool:
    """Every value the cell read last time that can be compared still compares equal.

    Paths the cell writes itself are left out (``n = n + 1`` changes what it read), and
    values that cannot be fingerprinted are left to the graph, which sees every assignment
    it can analyse.
    """
    last: dict[SymbolPath, Any] | None = getattr(rt.executor, "_inputs", {}).get(cid)
    if not last:
        return True  # nothing recorded: the graph's word stands
    written = {p.root for p in rt.graph.defs(cid)}
    paths = [p for p in last if p.root not in written]
    now = fingerprints(rt.shell.user_ns, paths)
    for path in paths:
        before, after = last[path], now[path]
        if isinstance(before, Unfingerprintable) or isinstance(after, Unfingerprintable):
            continue
        if before != after:
            log.debug("reactive: %s was asked for again; %s changed behind the graph", cid, path)
            return False
    return True


def _render_context() -> Any:
    """``mercury.render_context`` when the mercury package is importable, else None."""
    try:
        from mercury import render_context
    except Exception:  # mercury missing or broken: requests are still answered
        return None
    return render_context if hasattr(render_context, "source_cell_context") else None


def latest_outputs(slots: Any, cid: str) -> tuple[Output, ...]:
    """The newest outputs of a cell: what its slot shows, or a fill still held back.

    A slot may hold back an image repaint to cap the frame rate during a drag; mercury's
    request must get the newest one, not the last one painted.
    """
    pending = getattr(slots, "_pending", None)
    if isinstance(pending, dict) and cid in pending:
        return tuple(pending[cid])
    return tuple(slots.outputs(cid))


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def iopub_content(output: Output) -> tuple[str, dict[str, Any]] | None:
    """An nbformat output as the iopub message (type, content) that shows it."""
    kind = output.get("output_type")
    if kind not in _OUTPUT_TYPES:
        return None
    if kind == "stream":
        return kind, {"name": output.get("name", "stdout"), "text": _text(output.get("text", ""))}
    if kind == "error":
        return kind, {
            "ename": output.get("ename", ""),
            "evalue": output.get("evalue", ""),
            "traceback": list(output.get("traceback") or []),
        }
    content: dict[str, Any] = {
        "data": dict(output.get("data") or {}),
        "metadata": dict(output.get("metadata") or {}),
    }
    if kind == "execute_result":
        content["execution_count"] = output.get("execution_count")
    else:
        content["transient"] = {}
    return kind, content


def publish(kernel: Any, outputs: Iterable[Output]) -> None:
    """Send ``outputs`` on iopub as outputs of the request being handled.

    mercury keeps a cell's old outputs until the first visible output of its new
    request arrives, so a cell that now shows nothing is sent a ``clear_output``.
    """
    if kernel is None or getattr(kernel, "session", None) is None:
        return
    parent = kernel.get_parent()
    messages = [m for m in (iopub_content(o) for o in outputs) if m is not None]
    if not messages:
        messages = [("clear_output", {"wait": False})]
    for kind, content in messages:
        kernel.session.send(
            kernel.iopub_socket,
            kind,
            content,
            parent=parent,
            ident=f"kernel.{kernel.ident}.{kind}".encode(),
        )


def _interrupted_before_running(reply: Any, outputs: tuple[Output, ...]) -> bool:
    """An interrupt that came before the cell started leaves the slot's old outputs."""
    if not isinstance(reply, dict) or reply.get("ename") != "KeyboardInterrupt":
        return False
    return not any(o.get("ename") == "KeyboardInterrupt" for o in outputs)


def _error_output(reply: dict[str, Any]) -> Output:
    return {
        "output_type": "error",
        "ename": reply.get("ename", ""),
        "evalue": reply.get("evalue", ""),
        "traceback": list(reply.get("traceback") or []),
    }
