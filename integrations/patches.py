"""Wrappers the runtime puts on host objects while it is loaded, each undone exactly.

The adapters wrap a handful of ipykernel, IPython and ipywidgets callables
(``do_execute``, ``dispatch_shell``, a shell handler, ``events.trigger``, a
stream's ``flush``...).  ``%unload_ext reactive`` must leave every object as
it found it: an attribute the object only inherited is deleted again rather
than pinned to the class's function, and a value the object had of its own
is put back.  Undoing runs in reverse order, so wrappers stacked on one
attribute by two adapters come off cleanly.

Each wrapper is marked with ``__wrapped__`` (so ``inspect.signature`` still
sees the host's parameters: the widget layer tells ipykernel 7 by them) and
``__reactive_wrapped__`` (so a test or a second load can tell ours apart).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, MutableMapping
from typing import Any

_MISSING = object()


def mark(wrapper: Any, original: Any) -> Any:
    """Tag ``wrapper`` as ours, wrapping ``original``."""
    wrapper.__reactive_wrapped__ = original
    wrapper.__wrapped__ = original
    return wrapper


def is_ours(value: Any) -> bool:
    return getattr(value, "__reactive_wrapped__", None) is not None


class Patches:
    """A stack of undoable patches; :meth:`undo` takes them all off, newest first."""

    def __init__(self) -> None:
        self._undo: list[Callable[[], None]] = []

    def __len__(self) -> int:
        return len(self._undo)

    def wrap_attr(self, obj: Any, name: str, make: Callable[[Any], Any]) -> Any:
        """Set ``obj.name`` to ``make(current value)``; return the wrapper."""
        own = vars(obj).get(name, _MISSING)
        wrapper = mark(make(getattr(obj, name)), getattr(obj, name))
        setattr(obj, name, wrapper)

        def undo() -> None:
            if own is _MISSING:
                with contextlib.suppress(AttributeError):
                    delattr(obj, name)
            else:
                setattr(obj, name, own)

        self._undo.append(undo)
        return wrapper

    def wrap_item(
        self, mapping: MutableMapping[Any, Any], key: Any, make: Callable[[Any], Any]
    ) -> Any:
        """Set ``mapping[key]`` to ``make(current value)``; return the wrapper."""
        original = mapping[key]
        wrapper = mark(make(original), original)
        mapping[key] = wrapper

        def undo() -> None:
            mapping[key] = original

        self._undo.append(undo)
        return wrapper

    def undo(self) -> None:
        while self._undo:
            self._undo.pop()()
