"""Events the scheduler consumes and the results hosts hand back.

Kept apart from the scheduler so hosts (kernel, widgets, mercury) can build
events without importing the machinery that consumes them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from .graph import Source
from .paths import SymbolPath


@dataclass(frozen=True)
class SourceChanged:
    """The outside world changed ``source`` to ``value``.

    ``apply`` (optional) makes the value visible to cells -- e.g. sets the
    widget trait.  The scheduler calls it *between* cells, never during one,
    so a cell sees one value of each source for its whole run even when the
    change arrived on another thread.
    """

    source: Source
    value: Any = None
    apply: Callable[[], None] | None = None


@dataclass(frozen=True)
class CellRan:
    """The host ran a cell itself (the user's own execution); propagate it."""

    cell_id: str
    result: RunResult


@dataclass(frozen=True)
class Interrupt:
    """Stop the current batch: what has not run is left stale."""

    reason: str = "interrupted"


@dataclass(frozen=True)
class ConfigChanged:
    """A setting changed; ``apply`` runs on the scheduler's loop between cells."""

    apply: Callable[[], None]
    what: str = "config"


Event = SourceChanged | CellRan | Interrupt | ConfigChanged


class Outcome(str, Enum):
    OK = "ok"
    ERROR = "error"
    INTERRUPTED = "interrupted"
    MEMO_HIT = "memo-hit"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class RunResult:
    """What running one cell did, as the scheduler needs to know it.

    ``changed`` lists the defined paths whose values actually changed;
    ``None`` means "assume all of the cell's defs changed".  Reporting
    precisely is what keeps readers of ``d["a"]`` quiet when only ``d["b"]``
    moved.  ``sources_read`` replaces the cell's recorded sources when given.
    """

    outcome: Outcome = Outcome.OK
    changed: frozenset[SymbolPath] | None = None
    sources_read: frozenset[Source] | None = None
    sources_written: frozenset[Source] = frozenset()
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.outcome in (Outcome.OK, Outcome.MEMO_HIT, Outcome.SKIPPED)


@dataclass(frozen=True)
class RunReason:
    """Why the scheduler is running a cell: shown by trace and explain."""

    kind: str  # "source", "upstream", "dependency", "restore", "user"
    detail: str
    batch: int
    #: the paths the cell reads (function bodies expanded), for fingerprinting
    inputs: frozenset[SymbolPath] = frozenset()

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}"
