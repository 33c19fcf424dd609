"""The public Python API: ask and tune the runtime from any cell.

The core cannot know what a widget is; the host that loaded the runtime
registers itself here and answers "which sources is this object?" and
"which cell do you mean?".  Every function fails with one clear sentence
when the runtime is not loaded or the argument is not something it tracks.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

from .graph import Graph, Source
from .scheduler import Scheduler


class Host(Protocol):
    """What a loaded runtime offers the API."""

    scheduler: Scheduler
    graph: Graph

    def sources_of(self, obj: Any) -> frozenset[Source]: ...

    def find_cell(self, ref: object) -> str | None: ...


_host: Host | None = None


def set_host(host: Host | None) -> None:
    """Called by the integration that loads (None: unloads) the runtime."""
    global _host
    _host = host


def _require(fn: str) -> Host:
    if _host is None:
        raise RuntimeError(f"reactive.{fn}: the runtime is not loaded; run %load_ext reactive")
    return _host


def _number(fn: str, what: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"reactive.{fn}: {what} must be a finite number, got {value!r}")
    if value < 0:
        raise ValueError(f"reactive.{fn}: {what} must be >= 0, got {value!r}")
    return float(value)


def _widget_sources(fn: str, host: Host, target: object) -> frozenset[Source]:
    sources = host.sources_of(target)
    if not sources:
        raise TypeError(
            f"reactive.{fn}: expected a widget the runtime can track, "
            f"got {type(target).__name__} {target!r:.60}"
        )
    return sources


def debounce(target: object, ms: float) -> None:
    """Re-run only after ``ms`` milliseconds of quiet: for a widget, or for one cell.

    For cells too slow to follow a drag (a 2-second model fit): intermediate
    positions are skipped, the final one always runs.  On a widget it holds
    back every reader; on a cell (its notebook position, id, or a variable it
    defines) only that cell waits, while faster cells keep repainting.
    ``ms=0`` removes it.
    """
    value = _number("debounce", "ms", ms)
    host = _require("debounce")
    if isinstance(target, (int, str)) and not isinstance(target, bool):
        host.scheduler.set_cell_debounce(_cell("debounce", host, target), value / 1000)
        return
    for src in _widget_sources("debounce", host, target):
        host.scheduler.set_debounce(value / 1000, src)


def _cell(fn: str, host: Host, target: int | str) -> str:
    cell = host.find_cell(target)
    if cell is None:
        raise LookupError(
            f"reactive.{fn}: no cell matches {target!r}; give a cell number, "
            "a cell id, a variable a cell defines, or a widget"
        )
    return cell


def throttle(target: object, hz: float) -> None:
    """Re-run at most ``hz`` times a second: for a widget (its changes) or a cell.

    A cell is named by its notebook position (1-based int), its id, or a
    variable it defines.  Unlike debounce it keeps updating during a drag;
    the final state is always shown.  ``hz=0`` removes the cap.
    """
    rate = _number("throttle", "hz", hz)
    host = _require("throttle")
    if isinstance(target, (int, str)) and not isinstance(target, bool):
        host.scheduler.set_throttle(_cell("throttle", host, target), rate or None)
        return
    for src in _widget_sources("throttle", host, target):
        host.scheduler.set_source_throttle(src, rate or None)
