"""ipywidgets as reactive sources (DESIGN.md §3-§5, HOSTS.md).

Three jobs:

* **Resolve** -- which widget traits a cell read.  Names are looked up in the
  namespace at run time, so ``s.value`` follows whatever ``s`` is bound to
  now (re-creating a slider in a re-run cell rebinds its readers to the new
  one).  ``s.value`` reads ``(s, "value")``, ``rng.value[0]`` too, and a cell
  that passes ``s`` itself somewhere reads its ``value``.
* **Listen** -- a frontend ``update`` for a trait some cell read becomes a
  ``SourceChanged`` event.  When no cell is running, the update is applied
  at once, exactly as ipywidgets would (observers, ``interact`` and
  ``jslink`` see no difference).  While a cell runs -- on a subshell thread,
  or on the main thread while an async cell awaits -- applying it would let
  the cell read two values of one slider (a title from one, a line from
  another), so the whole update is held and applied by the scheduler
  *between* cells.
* **Unwedge** -- ipykernel answers a comm handled while an async cell awaits
  without any busy/idle; the ipywidgets frontend waits for that idle before
  sending the widget's next update, so the slider would stop syncing for the
  rest of the session.  Such a dispatch now publishes its idle.
"""

from __future__ import annotations

import ast
import contextlib
import contextvars
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import ipywidgets
from reactive.integrations.ipykernel.parents import concurrent_comms
from reactive.integrations.patches import Patches, is_ours

from reactive.events import SourceChanged
from reactive.graph import Source
from reactive.paths import Attr, Item, SymbolPath

Widget = ipywidgets.Widget
log = logging.getLogger("reactive")


def _with_buffers(msg: dict[str, Any]) -> dict[str, Any]:
    """The update's state with binary buffers put back in place, as ipywidgets does."""
    from ipywidgets.widgets.widget import _put_buffers

    data = msg["content"]["data"]
    state = dict(data["state"])
    if data.get("buffer_paths"):
        _put_buffers(state, data["buffer_paths"], msg.get("buffers") or [])
    return state


@contextlib.contextmanager
def _answering(kernel: Any, msg: dict[str, Any]) -> Iterator[None]:
    """Make ``msg`` the current parent while a held update is applied.

    ipykernel routes a comm's next frontend messages to the shell that last
    published on it, judged by the parent of that publish.  Applied from the
    scheduler with its own parent, the echo would pull a subshell slider's
    later updates onto the busy main shell; with the update's own parent the
    route stays where the frontend put it.
    """
    if kernel is None or not hasattr(kernel, "set_parent") or not msg.get("header"):
        yield
        return
    try:
        previous = kernel.get_parent("shell")
        ident_var = getattr(kernel, "_shell_parent_ident", None)
        if hasattr(ident_var, "get"):  # ipykernel 7: a ContextVar
            ident = ident_var.get()
        else:  # ipykernel 6: a dict per channel; restoring [] would lose input() replies
            ident = (getattr(kernel, "_parent_ident", None) or {}).get("shell", b"")
        kernel.set_parent(ident, msg, channel="shell")
    except Exception:  # an older kernel without these hooks: apply as is
        yield
        return
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            kernel.set_parent(ident, previous or {}, channel="shell")


def _alive(obj: Any) -> bool:
    return isinstance(obj, Widget) and getattr(obj, "comm", None) is not None


def _is_widgety(value: Any) -> bool:
    if isinstance(value, Widget):
        return True
    return isinstance(value, (list, tuple)) and any(isinstance(v, Widget) for v in value)


def source_of(widget: Any, trait: str, label: str, path: SymbolPath | None = None) -> Source:
    return Source(widget.model_id, trait, label=label, path=path)


#: a source meaning "any frontend update of this widget"
ANY = "*"


def synced_trait(widget: Any, name: str) -> str:
    """The synced trait a frontend change of ``name`` arrives as.

    Selection widgets (Dropdown, RadioButtons, ...) sync ``index``; their
    ``value`` and ``label`` follow from it kernel-side.  Any other computed
    trait depends on every update of the widget.
    """
    if widget.trait_metadata(name, "sync"):
        return name
    if widget.has_trait("index") and widget.trait_metadata("index", "sync"):
        return "index"
    return ANY


def resolve_path(ns: dict[str, Any], path: SymbolPath) -> Source | None:
    """The widget trait a read of ``path`` depends on, if any."""
    obj = ns.get(path.root)
    label = path.root
    steps = path.steps
    i = 0
    while True:
        if _alive(obj):
            step = steps[i] if i < len(steps) else None
            if step is None:
                # the widget itself was passed somewhere: it stands for its value
                if not obj.has_trait("value"):
                    return None
                return source_of(obj, synced_trait(obj, "value"), f"{label}.value", path)
            if isinstance(step, Attr) and obj.has_trait(step.name):
                value = getattr(obj, step.name, None)
                if not _is_widgety(value):
                    name = synced_trait(obj, step.name)
                    return source_of(obj, name, f"{label}.{step.name}", path)
        if i >= len(steps):
            return None
        step = steps[i]
        try:
            obj = getattr(obj, step.name) if isinstance(step, Attr) else obj[step.key]
        except Exception:
            return None
        label += str(step) if isinstance(step, Item) else f".{step.name}"
        i += 1


def _is_wiring(func: ast.expr, ns: dict[str, Any]) -> bool:
    """Whether a call goes to ipywidgets itself or to ``display``.

    Those keep their views in sync on their own (``interactive_output``,
    ``jslink``, ``HBox([...])``, ``display(s)``) and never use the value
    once: a cell that only hands a widget to them must not re-run on drags.
    """
    parts: list[str] = []
    node = func
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return False
    obj: Any = ns.get(node.id)
    if obj is None:
        return False
    for attr in reversed(parts):
        obj = getattr(obj, attr, None)
        if obj is None:
            return False
    module = getattr(obj, "__module__", None) or getattr(obj, "__name__", "") or ""
    name = getattr(obj, "__name__", "")
    return module.startswith("ipywidgets") or name == "display"


def wiring_only(source: str, ns: dict[str, Any], names: set[str]) -> set[str]:
    """Names among ``names`` that the cell only passes to widget wiring or display."""
    if not names:
        return set()
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    wired: set[int] = set()
    bare: dict[str, list[int]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in names and isinstance(node.ctx, ast.Load):
            bare.setdefault(node.id, []).append(id(node))
        elif isinstance(node, ast.Call) and _is_wiring(node.func, ns):
            for arg in [*node.args, *(k.value for k in node.keywords)]:
                for sub in ast.walk(arg):
                    if isinstance(sub, ast.Name):
                        wired.add(id(sub))
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Name):
            wired.add(id(node.value))  # a bare name as a statement just displays it
    return {n for n, ids in bare.items() if all(i in wired for i in ids)}


def resolve_sources(
    ns: dict[str, Any], paths: Iterable[SymbolPath], source: str = ""
) -> frozenset[Source]:
    found = set()
    whole = {p.root for p in paths if not p.steps and isinstance(ns.get(p.root), Widget)}
    skip = wiring_only(source, ns, whole)
    for p in paths:
        if not p.steps and p.root in skip:
            continue
        src = resolve_path(ns, p)
        if src is not None:
            found.add(src)
    return frozenset(found)


#: set while ipykernel dispatches a message that reached a widget (reset per dispatch)
_WIDGET_DISPATCH: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "reactive_widget_dispatch", default=False
)


#: set while the main shell dispatches a message in order (ipykernel >= 7): a widget
#: update handled there is answered (``idle``) only after the runs it caused
_ACK_AFTER_RUNS: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "reactive_ack_after_runs", default=False
)
#: set when the message being dispatched changed (or queued a change of) a source
_SOURCE_CHANGED: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "reactive_source_changed", default=False
)
#: longest a widget update's answer waits for its runs (s): a safety valve, not a budget
ACK_WAIT_MAX = 30.0

#: the event ``comm`` fires after every comm message (matplotlib-inline flushes on it)
_COMM_EVENTS = frozenset({"post_execute"})


def _guard_comm_events(shell: Any, cell_running: Callable[[], bool], patches: Patches) -> None:
    """Keep a widget message's ``post_execute`` away from a cell that is running.

    ``comm`` fires ``pre_execute``/``post_execute`` around every comm message
    so that an observer's plot gets flushed.  With comms over a subshell that
    happens on the subshell's thread *while a cell runs on the main thread*
    (and on the main shell, while an async cell awaits): matplotlib-inline's
    ``flush_figures`` then shows the running cell's half-drawn figure under
    the comm message -- in no cell -- and closes every figure, so the cell's
    own flush finds nothing and its plot vanishes.  While a cell runs, an
    update to a source widget is held and no observer runs, so the message
    has nothing of its own to flush; a figure an observer of another widget
    draws meanwhile is shown by the running cell's flush, which beats losing
    the cell's own plot.  Outside a cell the event fires as before.
    """
    events = getattr(shell, "events", None)
    if events is None or is_ours(vars(events).get("trigger")):
        return

    def wrap(original: Any) -> Any:
        def trigger(event: str, *args: Any, **kwargs: Any) -> None:
            if event in _COMM_EVENTS and _WIDGET_DISPATCH.get() and cell_running():
                return None
            return original(event, *args, **kwargs)

        return trigger

    patches.wrap_attr(events, "trigger", wrap)


def _kernel_streams() -> list[Any]:
    """ipykernel's ``OutStream`` objects behind ``sys.stdout``/``sys.stderr``.

    A capture may have swapped in its own stream; it keeps the kernel's as
    ``_original``.
    """
    try:
        from ipykernel.iostream import OutStream
    except ImportError:  # not in a kernel
        return []
    found = []
    for stream in (sys.stdout, sys.stderr):
        for _ in range(4):
            if isinstance(stream, OutStream) or not hasattr(stream, "_original"):
                break
            stream = stream._original
        if isinstance(stream, OutStream) and stream not in found:
            found.append(stream)
    return found


#: a widget dispatch's empty flush waits for IOPub again only when it skipped at least
#: ``IOPUB_CATCH_UP_SKIPS`` flushes over at least ``IOPUB_CATCH_UP`` seconds
IOPUB_CATCH_UP = 0.02
IOPUB_CATCH_UP_SKIPS = 32


def _skip_empty_flushes(stream: Any, patches: Patches) -> None:
    """Make ``stream.flush()`` a no-op inside a widget dispatch when nothing is pending.

    ipykernel ends every shell message with ``sys.stdout.flush()`` and
    ``sys.stderr.flush()``, and each one waits for a round trip through its
    IOPub thread even when nothing was written: for a widget update that is
    most of the message's cost, so a flood of slider updates drained at half
    the speed it could.  With no write pending there is nothing to send, and
    the ``idle`` that follows goes through the same IOPub queue, so it still
    leaves after anything already in flight.  Anything written (an observer's
    print) sets ``_flush_pending`` and is flushed exactly as before.

    Still, a flush waits once the skipped ones add up (``IOPUB_CATCH_UP_SKIPS``
    of them, and ``IOPUB_CATCH_UP`` seconds since the last wait).  Without
    that, a flood over a subshell ran ahead of the IOPub thread by tens of
    thousands of status messages, and the next flush that did wait -- the
    displayhook's, when the user ran ``1+1`` on the main shell -- waited
    behind all of them: up to 0.8 s for ``1+1``, where plain ipykernel (which
    waits every time) answers in 20 ms.  A drag skips two flushes per update,
    leaving IOPub a handful of messages behind at most: its idles go out
    without a wait (a timed catch-up alone cost a drag 0.6 ms between every
    two runs, each time the main shell answered an update).
    """
    if "flush" in vars(stream) or not hasattr(stream, "_flush_pending"):
        return
    waited, skipped = [time.monotonic()], [0]

    def wrap(original: Any) -> Any:
        def flush() -> None:
            if (
                _WIDGET_DISPATCH.get()
                and getattr(stream, "echo", None) is None
                and not getattr(stream, "_flush_pending", True)
                and not getattr(stream, "_subprocess_flush_pending", True)
                and (
                    skipped[0] < IOPUB_CATCH_UP_SKIPS
                    or time.monotonic() - waited[0] < IOPUB_CATCH_UP
                )
            ):
                skipped[0] += 1
                return
            original()
            waited[0], skipped[0] = time.monotonic(), 0

        return flush

    patches.wrap_attr(stream, "flush", wrap)


class OutputContexts:
    """``with out:`` filled kernel-side, so it works from any task or thread.

    ipywidgets routes a ``with out:`` block in the browser, by the msg_id of
    the request being answered; the browser forgets a request once it is
    done, so output of a reactive re-run, of an update applied between
    cells, or of any cell whose output the runtime captures would be lost or
    land in the wrong place.  Here the block's output is captured on its own
    thread and written into the widget's ``outputs`` state (streamed at a
    bounded rate for long blocks), exactly like a cell's slot.
    """

    def __init__(self, shell: Any, config: Any) -> None:
        self.shell = shell
        self.config = config
        self._local = threading.local()
        self._saved: tuple[Any, Any] | None = None

    def install(self) -> None:
        cls = ipywidgets.Output
        self._saved = (cls.__dict__.get("__enter__"), cls.__dict__.get("__exit__"))
        contexts = self

        def __enter__(out: Any) -> Any:
            return contexts.enter(out)

        def __exit__(out: Any, etype: Any, evalue: Any, tb: Any) -> Any:
            return contexts.exit(out, etype, evalue, tb)

        cls.__enter__ = __enter__  # type: ignore[method-assign]
        cls.__exit__ = __exit__  # type: ignore[method-assign]

    def uninstall(self) -> None:
        if self._saved is None:
            return
        cls = ipywidgets.Output
        enter, exit_ = self._saved
        cls.__enter__ = enter  # type: ignore[method-assign]
        cls.__exit__ = exit_  # type: ignore[method-assign]
        self._saved = None

    def _stack(self) -> list[tuple[Any, Any, tuple[Any, ...]]]:
        stack = getattr(self._local, "stack", None)
        if stack is None:
            stack = self._local.stack = []
        return stack

    def enter(self, out: Any) -> Any:
        from reactive.integrations.ipykernel.capture import OutputCapture

        stack = self._stack()
        if stack and stack[-1][0] is out:
            # nested block of the same widget (``out.clear_output()`` is one):
            # it belongs to the block already capturing
            stack.append(stack[-1])
            return out
        base = tuple(out.outputs)

        def show(outputs: list[dict[str, Any]], cap: Any = None) -> None:
            out.outputs = _merge(base, outputs, cleared=bool(cap and cap.cleared))

        cap = OutputCapture(
            self.shell,
            on_change=lambda outputs: show(outputs, cap),
            interval=self.config.stream_interval_ms / 1000,
        )
        cap.__enter__()
        self._stack().append((out, cap, base))
        return out

    def exit(self, out: Any, etype: Any, evalue: Any, tb: Any) -> bool | None:
        stack = self._stack()
        if not stack or stack[-1][0] is not out:
            return None  # entered before the runtime loaded: nothing of ours to undo
        _, cap, base = stack.pop()
        if stack and stack[-1][1] is cap:
            if etype is not None:
                self.shell.showtraceback((etype, evalue, tb), tb_offset=0)
                return True
            return None
        try:
            if etype is not None:
                self.shell.showtraceback((etype, evalue, tb), tb_offset=0)
        finally:
            cap.__exit__(None, None, None)
        out.outputs = _merge(base, cap.outputs, cleared=cap.cleared)
        return True if etype is not None else None  # as ipywidgets: shown, not raised


def _merge(base: tuple[Any, ...], new: list[dict[str, Any]], *, cleared: bool) -> tuple[Any, ...]:
    """The widget's outputs after a block: appended, or replaced after a clear."""
    outputs = [] if cleared else [dict(o) for o in base]
    for item in new:
        last = outputs[-1] if outputs else None
        if (
            last is not None
            and item.get("output_type") == "stream"
            and last.get("output_type") == "stream"
            and last.get("name") == item.get("name")
        ):
            outputs[-1] = {**last, "text": last["text"] + item["text"]}
        else:
            outputs.append({k: v for k, v in item.items() if k != "transient"})
    return tuple(outputs)


def _rebind_handlers() -> None:
    """Point every open widget's comm at the current ``Widget._handle_msg``.

    ipywidgets binds ``comm.on_msg(self._handle_msg)`` when a widget opens,
    so widgets made before ``%load_ext reactive`` (or before a reload) would
    keep the old handler -- and a slider made earlier would never re-run
    anything, or would feed a scheduler that is gone.
    """
    from ipywidgets.widgets.widget import _instances

    for widget in list(_instances.values()):
        comm = getattr(widget, "comm", None)
        if comm is not None:
            with contextlib.suppress(Exception):
                comm.on_msg(widget._handle_msg)


class WidgetSources:
    """Installs the listener and the unwedging wrapper into one runtime."""

    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime
        self._held: dict[str, tuple[Widget, dict[str, Any]]] = {}
        self._held_lock = threading.RLock()
        self._original_handle_msg = None
        #: our wrappers on the kernel, the shell's events and the output streams
        self._patches = Patches()
        self._latest: dict[str, dict[str, Any]] = {}
        self.stats = {"applied": 0, "held": 0, "rejected": 0, "stale": 0}

    # -------------------------------------------------------------- install
    def install(self) -> None:
        rt = self.runtime
        rt.executor.resolvers.append(resolve_sources)
        original = Widget._handle_msg
        self._original_handle_msg = original
        sources = self

        def _handle_msg(widget: Any, msg: dict[str, Any]) -> Any:
            _WIDGET_DISPATCH.set(True)  # the dispatch's closing flushes may be skipped
            return sources.handle(widget, msg, original)

        _handle_msg.__reactive_wrapped__ = original  # type: ignore[attr-defined]
        Widget._handle_msg = _handle_msg
        _rebind_handlers()
        self._output_contexts = OutputContexts(rt.shell, rt.config)
        self._output_contexts.install()
        kernel = rt.kernel
        if kernel is not None and hasattr(kernel, "dispatch_shell"):
            in_order = concurrent_comms(kernel.dispatch_shell)

            def wrap_dispatch(dispatch: Any) -> Any:
                async def dispatch_shell(*args: Any, **kwargs: Any) -> Any:
                    token = _WIDGET_DISPATCH.set(False)
                    changed = _SOURCE_CHANGED.set(False)
                    ack = _ACK_AFTER_RUNS.set(
                        in_order
                        and not kwargs.get("concurrent")
                        and kwargs.get("subshell_id") is None
                        and threading.current_thread() is threading.main_thread()
                    )
                    try:
                        return await dispatch(*args, **kwargs)
                    finally:
                        _ACK_AFTER_RUNS.reset(ack)
                        _SOURCE_CHANGED.reset(changed)
                        _WIDGET_DISPATCH.reset(token)
                        if kwargs.get("concurrent"):
                            sources.publish_idle(kernel)

                return dispatch_shell

            self._patches.wrap_attr(kernel, "dispatch_shell", wrap_dispatch)
            self._wrap_comm_handler(kernel)
            for stream in _kernel_streams():
                _skip_empty_flushes(stream, self._patches)
        _guard_comm_events(rt.shell, rt.cell_running, self._patches)

    def uninstall(self) -> None:
        rt = self.runtime
        contexts = getattr(self, "_output_contexts", None)
        if contexts is not None:
            contexts.uninstall()
        if resolve_sources in rt.executor.resolvers:
            rt.executor.resolvers.remove(resolve_sources)
        if self._original_handle_msg is not None:
            Widget._handle_msg = self._original_handle_msg
            self._original_handle_msg = None
            _rebind_handlers()
        self._patches.undo()

    def _wrap_comm_handler(self, kernel: Any) -> None:
        """Answer a main-shell widget update once the cells it re-runs are done.

        This is what ``interact`` does by running its callback inside the
        handler, and it matters with the browser's one-update-in-flight rule:
        answered at once, the next update would arrive while the first one's
        run is going, wait for it, and cost a run of its own -- one run more
        between the user's last move and the plot showing it.  Updates that
        come meanwhile (a flood, other widgets) are not held back: ipykernel
        dispatches comm messages concurrently while the shell is busy, and the
        answer goes out as soon as one arrives.
        """
        handlers = getattr(kernel, "shell_handlers", None)
        if not isinstance(handlers, dict) or handlers.get("comm_msg") is None:
            return
        scheduler = self.runtime.scheduler

        async def answer_after_runs(idents: Any, msg: Any, events: int) -> None:
            try:
                await scheduler.wait_caught_up(ACK_WAIT_MAX, events=events)
            finally:
                # ipykernel runs every main-shell message in one shared context, and a
                # comm message dispatched concurrently meanwhile puts back the parent
                # it saw when it started: without this the idle goes out under another
                # message (a third of a flood's idles were lost so)
                with contextlib.suppress(Exception):
                    kernel.set_parent(idents, msg, channel="shell")

        def wrap(original: Any) -> Any:
            def comm_msg(stream: Any, idents: Any, msg: Any, *args: Any, **kwargs: Any) -> Any:
                result = original(stream, idents, msg, *args, **kwargs)
                if _ACK_AFTER_RUNS.get() and _SOURCE_CHANGED.get() and result is None:
                    return answer_after_runs(idents, msg, scheduler.stats["events"])
                return result

            return comm_msg

        self._patches.wrap_item(handlers, "comm_msg", wrap)

    @staticmethod
    def publish_idle(kernel: Any) -> None:
        """Idle for the comm message just handled concurrently (the wedge fix)."""
        with contextlib.suppress(Exception):  # bookkeeping must not break comm handling
            kernel._publish_status("idle", "shell")

    # ---------------------------------------------------------------- listen
    def handle(self, widget: Any, msg: dict[str, Any], original: Any) -> Any:
        rt = self.runtime
        data = (msg.get("content") or {}).get("data") or {}
        state = data.get("state") if isinstance(data, dict) else None
        if (
            data.get("method") != "update"
            or not isinstance(state, dict)
            or rt.config.mode != "reactive"
            or not _alive(widget)
        ):
            return original(widget, msg)
        mid = widget.model_id
        tracked = [k for k in state if rt.graph.is_source(Source(mid, k))]
        if state and rt.graph.is_source(Source(mid, ANY)):
            tracked.append(ANY)
        if not tracked:
            return original(widget, msg)
        # One lock orders every application of updates to source widgets: an
        # update must never overtake one that is held for the scheduler.
        with self._held_lock:
            if not self._fresh(mid, msg, state):
                self.stats["stale"] += 1
                return None
            _SOURCE_CHANGED.set(True)
            if rt.cell_running() or mid in self._held:
                self._hold(widget, msg, tracked)
                return None
            try:
                # set_state directly: ipywidgets' own handler turns an exception
                # into a traceback sent to no cell, where nobody would see it
                result = widget.set_state(_with_buffers(msg))
            except Exception as exc:  # a bad value from the page: keep the last good one
                self.stats["rejected"] += 1
                log.warning(
                    "reactive: rejected an update of %s %s: %s: %s",
                    type(widget).__name__,
                    mid,
                    type(exc).__name__,
                    str(exc).splitlines()[0] if str(exc) else "",
                )
                return None
        self.stats["applied"] += 1
        for key in tracked:
            value = dict(state) if key == ANY else getattr(widget, key, None)
            rt.scheduler.submit(SourceChanged(self._labelled(widget, key), value))
        return result

    def _fresh(self, mid: str, msg: dict[str, Any], state: dict[str, Any]) -> bool:
        """Drop keys an older message is still trying to set (called under the lock).

        With comms over subshells, updates of one widget can be handled on
        different threads (whichever shell last published on the comm), so
        a later slider position can be handled before an earlier one.  The
        frontend stamps every message; the newest stamp per key wins, so the
        kernel converges to what the user sees.
        """
        stamp = (msg.get("header") or {}).get("date")
        if stamp is None:
            return True
        latest = self._latest.setdefault(mid, {})
        try:
            stale = [k for k in state if k in latest and stamp < latest[k]]
        except TypeError:  # mixed str/datetime stamps: cannot order them, apply
            return True
        for key in stale:
            del state[key]
        for key in state:
            latest[key] = stamp
        return bool(state)

    def _labelled(self, widget: Any, key: str) -> Source:
        src = Source(widget.model_id, key)
        return self.runtime.graph.source_label(src) or src

    def _hold(self, widget: Any, msg: dict[str, Any], tracked: list[str]) -> None:
        """Keep the update until the scheduler is between cells; merge repeats.

        Called with ``_held_lock`` held.
        """
        state = _with_buffers(msg)
        mid = widget.model_id
        _, pending = self._held.get(mid, (widget, {}))
        pending.update(state)
        self._held[mid] = (widget, pending)
        self.stats["held"] += 1

        kernel = self.runtime.kernel

        def apply(mid: str = mid, msg: dict[str, Any] = msg) -> None:
            with self._held_lock:
                entry = self._held.pop(mid, None)
                if entry is not None:
                    w, merged = entry
                    if _alive(w):
                        with _answering(kernel, msg):
                            w.set_state(merged)

        for key in tracked:
            self.runtime.scheduler.submit(
                SourceChanged(self._labelled(widget, key), state.get(key, state), apply)
            )
