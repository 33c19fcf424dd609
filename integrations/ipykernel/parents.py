"""Keep the shell's parent message right while comm messages overlap requests.

ipykernel 7 runs every main-shell message in one shared ``contextvars.Context``
and dispatches a comm message concurrently when the shell is busy.  Around that
dispatch it saves the current parent and, once the comm message is handled,
sets it back (``Kernel.shell_main``).  When the busy request finished and the
next one started in between -- "Run All" with any widget traffic -- the next
request's parent is overwritten by the finished one's: its outputs land in the
previous cell and its ``idle`` goes out under the previous request, so the
frontend shows the cell as running (``[*]``) for ever.  Plain ipykernel 7 does
this too: 8 of 30 queued async cells lost their ``idle`` under a widget flood.

The guard knows which main-shell request is being dispatched and which have
finished; putting back a finished request's parent while another one is live
puts back the live one instead.  Everything else passes through untouched.
"""

from __future__ import annotations

import inspect
import threading
from typing import Any

from reactive.integrations.patches import Patches

#: finished requests remembered (a restore names one that finished moments ago)
FINISHED_KEPT = 256


def concurrent_comms(dispatch: Any) -> bool:
    """Whether this ``dispatch_shell`` handles comm messages while its shell is busy (>= 7)."""
    try:
        return "concurrent" in inspect.signature(dispatch).parameters
    except (TypeError, ValueError):
        return False


def _msg_id(parent: Any) -> str | None:
    header = parent.get("header") if isinstance(parent, dict) else None
    return header.get("msg_id") if isinstance(header, dict) else None


class ParentGuard:
    """Wraps a kernel's ``dispatch_shell`` and ``set_parent`` (see the module docstring)."""

    def __init__(self, kernel: Any) -> None:
        self.kernel = kernel
        self._patches = Patches()
        #: (ident, parent) of the main-shell request being dispatched
        self._live: tuple[Any, dict[str, Any]] | None = None
        self._capture = False
        #: msg_ids of finished requests, oldest first (a dict keeps insertion order)
        self._finished: dict[str, None] = {}

    @staticmethod
    def needed(kernel: Any) -> bool:
        """Only kernels that dispatch comm messages concurrently (ipykernel >= 7)."""
        dispatch = getattr(kernel, "dispatch_shell", None)
        return dispatch is not None and hasattr(kernel, "set_parent") and concurrent_comms(dispatch)

    def install(self) -> None:
        guard = self

        def wrap_dispatch(dispatch: Any) -> Any:
            async def dispatch_shell(*args: Any, **kwargs: Any) -> Any:
                main = (
                    not kwargs.get("concurrent")
                    and kwargs.get("subshell_id") is None
                    and threading.current_thread() is threading.main_thread()
                )
                if not main:
                    return await dispatch(*args, **kwargs)
                guard._capture = True  # ipykernel's set_parent comes before any await
                try:
                    return await dispatch(*args, **kwargs)
                finally:
                    guard._capture = False
                    live, guard._live = guard._live, None
                    if live is not None:
                        guard._finish(_msg_id(live[1]))

            return dispatch_shell

        def wrap_set_parent(set_parent: Any) -> Any:
            def guarded_set_parent(ident: Any, parent: Any, channel: str = "shell") -> Any:
                if channel == "shell" and threading.current_thread() is threading.main_thread():
                    if guard._capture:
                        guard._capture = False
                        guard._live = (ident, parent)
                    elif (
                        guard._live is not None
                        and parent is not guard._live[1]
                        and _msg_id(parent) in guard._finished
                    ):
                        ident, parent = guard._live
                return set_parent(ident, parent, channel)

            return guarded_set_parent

        self._patches.wrap_attr(self.kernel, "dispatch_shell", wrap_dispatch)
        self._patches.wrap_attr(self.kernel, "set_parent", wrap_set_parent)

    def uninstall(self) -> None:
        self._patches.undo()

    def _finish(self, msg_id: str | None) -> None:
        if msg_id is None:
            return
        self._finished[msg_id] = None
        if len(self._finished) > FINISHED_KEPT:
            del self._finished[next(iter(self._finished))]
