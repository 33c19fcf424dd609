"""One timer thread for the runtime's trailing pushes and repaints.

A cell's output capture and its slot both promise "what is held back shows
once its interval is up", and must keep that promise while a synchronous cell
blocks the event loop -- so the promise is kept by a thread.  A
``threading.Timer`` per promise starts (and waits for) a new OS thread each
time: about 0.1-0.3 ms on every reactive run that prints, and a thread
created and torn down per run while the subshell and socket threads want the
GIL.  One long-lived thread waiting on a condition costs a lock and a notify
per deadline instead.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("reactive")


class Handle:
    """A scheduled call; :meth:`cancel` keeps it from running (no-op once it ran)."""

    __slots__ = ("cancelled",)

    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Timers:
    """Call functions after a delay, all on one daemon thread started on first use."""

    def __init__(self, name: str = "reactive-timers") -> None:
        self._name = name
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Handle, Callable[..., Any], tuple[Any, ...]]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None

    def call_later(self, delay: float, fn: Callable[..., Any], *args: Any) -> Handle:
        handle = Handle()
        with self._cond:
            entry = (time.monotonic() + max(0.0, delay), next(self._seq), handle, fn, args)
            heapq.heappush(self._heap, entry)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._thread.start()
            elif self._heap[0] is entry:
                self._cond.notify()  # the new deadline is the earliest: wake up sooner
        return handle

    def stop(self, timeout: float = 1.0) -> None:
        """End the thread, dropping what is still scheduled (a later call starts it anew)."""
        with self._cond:
            thread, self._thread = self._thread, None
            self._heap.clear()
            self._cond.notify_all()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _loop(self) -> None:
        me = threading.current_thread()
        while (entry := self._next(me)) is not None:
            handle, fn, args = entry
            if handle.cancelled:  # cancelled after it was taken off the heap
                continue
            try:
                fn(*args)
            except Exception:  # one failed push must not stop the others
                log.exception("reactive: timer callback failed")

    def _next(
        self, me: threading.Thread
    ) -> tuple[Handle, Callable[..., Any], tuple[Any, ...]] | None:
        """Wait for the earliest live deadline and take it; None once this thread is stopped."""
        with self._cond:
            while self._thread is me:  # else stopped, or replaced by a newer thread
                while self._heap and self._heap[0][2].cancelled:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                wait = self._heap[0][0] - time.monotonic()
                if wait <= 0:
                    _, _, handle, fn, args = heapq.heappop(self._heap)
                    return handle, fn, args
                self._cond.wait(wait)
            return None


#: the process's timer thread (the kernel runs one runtime)
TIMERS = Timers()
