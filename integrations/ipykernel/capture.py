"""Capture everything a cell shows, kernel-side, as nbformat output dicts.

Why not let ipykernel send outputs as usual?  The frontend files an output
under the *request* it answers; a reactive re-run answers no request, so its
output would land in no cell, and after a page reload even a remembered
request is gone (HOSTS.md).  Instead a managed cell's output area holds one
Output widget (its slot) and everything the cell shows is captured here and
written into that slot's ``outputs`` state -- which reaches the page from any
task, and survives reloads.

Captured: stdout/stderr writes from the capturing thread, ``display()``
(including ``update_display``/``clear_output``), the display hook
(``execute_result``) and tracebacks.  Writes from other threads (e.g. a
widget observer on a subshell) pass through untouched: they belong to
whatever those threads are answering.
"""

from __future__ import annotations

import contextlib
import io
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from .timers import TIMERS, Handle

Output = dict[str, Any]


class _Stream(io.TextIOBase):
    """A stand-in for ``sys.stdout``/``sys.stderr`` during a capture."""

    def __init__(self, capture: OutputCapture, name: str, original: Any) -> None:
        self._capture = capture
        self._name = name
        self._original = original

    def write(self, text: str) -> int:
        if threading.get_ident() != self._capture.thread:
            return self._original.write(text)
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        self._capture.add_stream(self._name, text)
        if self._capture.passthrough:
            self._original.write(text)
        return len(text)

    def writable(self) -> bool:
        return True

    def close(self) -> None:
        """Nothing to close (the stand-in owns no stream), so nothing to flush.

        ``IOBase.__del__`` calls ``close()``, which flushes.  The last reference
        often goes away on a finished streaming timer's thread, after ``threading``
        has forgotten it: that flush then reached ipykernel's stream from an
        unknown thread, costing an IOPub round trip and leaking one event-pipe
        socket per reactive run (zmq runs out of sockets after about a thousand).
        """

    def flush(self) -> None:
        if threading.get_ident() != self._capture.thread or self._capture.passthrough:
            self._original.flush()

    def isatty(self) -> bool:
        return False

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def fileno(self) -> int:
        return self._original.fileno()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._original, name)


class OutputCapture:
    """Collects a cell's outputs while active; restores everything on exit.

    ``on_change`` is called (at most every ``interval`` seconds, from the
    capturing thread) so long-running cells can stream into their slot; the
    final state is always delivered by the caller after exit.  A ``with
    out:`` block inside the cell opens a capture of its own (see
    ``reactive.integrations.ipywidgets.OutputContexts``).
    """

    def __init__(
        self,
        shell: Any,
        *,
        on_change: Callable[[list[Output]], None] | None = None,
        interval: float = 0.1,
        execution_count: int | None = None,
        flush: bool = True,
        passthrough: bool = False,
    ) -> None:
        self.shell = shell
        #: record only: everything still goes out as ipykernel sends it (a cell with no
        #: inputs is never re-run, so its outputs can stay in the cell's own area)
        self.passthrough = passthrough
        #: flush pending stream output first (needless at the start of a request:
        #: ipykernel flushes at the end of every one, and a flush costs an iopub
        #: round trip)
        self.flush = flush
        self._outputs: list[Output] = []
        #: text for the last (stream) output, joined when read: growing one string by
        #: many small writes copies it every time (a 10 MB print loop took hours)
        self._tail: list[str] = []
        self.on_change = on_change
        self.interval = interval
        self.execution_count = execution_count
        self.thread = threading.get_ident()
        self._clear_pending = False
        self._last_push = 0.0
        self._saved: dict[str, Any] = {}
        self.error: Output | None = None
        self._lock = threading.RLock()
        self._timer: Handle | None = None
        self._active = False
        #: display ids this capture showed, for update_display from later cells
        self.display_ids: set[str] = set()
        #: whether the code cleared the output (a ``with out:`` block then replaces)
        self.cleared = False

    @property
    def outputs(self) -> list[Output]:
        """What the cell showed so far (pending stream text joined in)."""
        with self._lock:
            if self._tail:
                last = self._outputs[-1]
                last["text"] = last["text"] + "".join(self._tail)
                self._tail.clear()
            return self._outputs

    # ----------------------------------------------------------- recording
    def _take(self, output: Output) -> None:
        if self._clear_pending:
            self.outputs.clear()
            self._clear_pending = False
        self.outputs.append(output)
        self._changed()

    def add_stream(self, name: str, text: str) -> None:
        if not text:
            return
        if not self._clear_pending:
            with self._lock:
                last = self._outputs[-1] if self._outputs else {}
                merge = last.get("output_type") == "stream" and last.get("name") == name
                if merge:
                    self._tail.append(text)  # the frontend merges consecutive streams too
            if merge:
                self._changed()
                return
        self._take({"output_type": "stream", "name": name, "text": text})

    def add_display(
        self,
        data: dict[str, Any],
        metadata: dict[str, Any] | None,
        transient: dict[str, Any] | None,
        update: bool,
    ) -> bool:
        """Record a display; return False when it should go out unchanged."""
        display_id = (transient or {}).get("display_id")
        out: Output = {"output_type": "display_data", "data": data, "metadata": metadata or {}}
        if display_id:
            out["transient"] = {"display_id": display_id}
        if update:
            if not display_id:
                return True
            hit = False
            for i, old in enumerate(self.outputs):
                if (old.get("transient") or {}).get("display_id") == display_id:
                    self.outputs[i] = {**out, "output_type": old["output_type"]}
                    hit = True
            if hit:
                self._changed()
            return hit
        if display_id:
            self.display_ids.add(display_id)
        self._take(out)
        return True

    def add_result(self, data: dict[str, Any], metadata: dict[str, Any] | None) -> None:
        self._take(
            {
                "output_type": "execute_result",
                "data": data,
                "metadata": metadata or {},
                "execution_count": self.execution_count,
            }
        )

    def add_error(self, ename: str, evalue: str, traceback: list[str]) -> None:
        out = {"output_type": "error", "ename": ename, "evalue": evalue, "traceback": traceback}
        self.error = out
        self._take(out)

    def clear(self, wait: bool) -> None:
        self.cleared = True
        if wait:
            self._clear_pending = True
        else:
            self.outputs.clear()
            self._clear_pending = False
            self._changed()

    def _changed(self) -> None:
        """Push at once if the last push is old enough, else once the interval is up.

        The trailing push runs on a timer thread because a synchronous cell
        blocks the event loop: without it, a cell that prints "started" and
        then computes for a minute would show nothing until the end.
        """
        if self.on_change is None:
            return
        with self._lock:
            now = time.monotonic()
            wait = self._last_push + self.interval - now
            if wait <= 0:
                self._last_push = now
                outputs = self.snapshot()
            else:
                if self._timer is None and self._active:
                    self._timer = TIMERS.call_later(wait, self._trailing)
                return
        self.on_change(outputs)

    def _trailing(self) -> None:
        # The push happens under the lock that __exit__ takes: a push still on its
        # way when the cell ends would otherwise land after -- and replace -- the
        # cell's final outputs (a plot's image lost behind a partial frame).
        with self._lock:
            self._timer = None
            if not self._active or self.on_change is None:
                return
            self._last_push = time.monotonic()
            self.on_change(self.snapshot())

    def snapshot(self) -> list[Output]:
        return [dict(o) for o in list(self.outputs)]

    # ------------------------------------------------------------ patching
    def __enter__(self) -> OutputCapture:
        shell = self.shell
        self.thread = threading.get_ident()
        # nothing is pushed before the cell has run for one interval: a quick
        # cell then replaces its old output in exactly one update (no flicker)
        self._last_push = time.monotonic()
        self._active = True
        if self.flush:
            for stream in (sys.stdout, sys.stderr):
                if _nothing_pending(stream):
                    continue  # a flush is an IOPub round trip even when there is nothing
                with contextlib.suppress(Exception):
                    stream.flush()
        self._saved = {
            "stdout": sys.stdout,
            "stderr": sys.stderr,
            "publish": shell.display_pub.__dict__.get("publish"),
            "clear_output": shell.display_pub.__dict__.get("clear_output"),
            "finish_displayhook": shell.displayhook.__dict__.get("finish_displayhook"),
            "_showtraceback": shell.__dict__.get("_showtraceback"),
        }
        sys.stdout = _Stream(self, "stdout", sys.stdout)
        sys.stderr = _Stream(self, "stderr", sys.stderr)
        pub = shell.display_pub
        original_publish = pub.publish
        original_clear = pub.clear_output
        capture = self

        def publish(data: Any, metadata: Any = None, *args: Any, **kwargs: Any) -> None:
            if threading.get_ident() != capture.thread:
                return original_publish(data, metadata, *args, **kwargs)
            transient = kwargs.get("transient")
            update = bool(kwargs.get("update", False))
            if not capture.add_display(data, metadata, transient, update) or capture.passthrough:
                return original_publish(data, metadata, *args, **kwargs)
            return None

        def clear_output(wait: bool = False) -> None:
            if threading.get_ident() != capture.thread:
                return original_clear(wait)
            capture.clear(wait)
            return original_clear(wait) if capture.passthrough else None

        pub.publish = publish
        pub.clear_output = clear_output

        hook = shell.displayhook
        original_finish = hook.finish_displayhook

        def finish_displayhook() -> None:
            msg = getattr(hook, "msg", None)
            if threading.get_ident() != capture.thread or msg is None:
                return original_finish()
            content = msg.get("content", {})
            if content.get("data"):
                capture.add_result(content["data"], content.get("metadata"))
            if capture.passthrough:
                return original_finish()
            hook.msg = None
            return None

        hook.finish_displayhook = finish_displayhook

        original_showtraceback = shell._showtraceback

        def showtraceback(etype: type, evalue: BaseException, stb: list[str]) -> None:
            if stb is not None:  # None: the exception renders nothing (mercury's Stop)
                capture.add_error(etype.__name__, str(evalue), list(stb))
            if capture.passthrough:
                return original_showtraceback(etype, evalue, stb)
            shell._last_traceback = stb
            return None

        shell._showtraceback = showtraceback
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._active = False
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        shell = self.shell
        sys.stdout = self._saved["stdout"]
        sys.stderr = self._saved["stderr"]
        _restore(shell.display_pub, "publish", self._saved["publish"])
        _restore(shell.display_pub, "clear_output", self._saved["clear_output"])
        _restore(shell.displayhook, "finish_displayhook", self._saved["finish_displayhook"])
        _restore(shell, "_showtraceback", self._saved["_showtraceback"])
        if self._clear_pending:
            # clear_output(wait=True) with nothing after it still clears
            self.outputs.clear()
            self._clear_pending = False


def _nothing_pending(stream: Any) -> bool:
    """Whether an ipykernel ``OutStream`` holds no unsent text (False when unsure)."""
    return (
        getattr(stream, "_flush_pending", True) is False
        and getattr(stream, "_subprocess_flush_pending", True) is False
        and getattr(stream, "echo", None) is None
    )


def _restore(obj: Any, name: str, saved: Any) -> None:
    if saved is None:
        obj.__dict__.pop(name, None)
    else:
        setattr(obj, name, saved)
