"""Trace records: what each batch ran, why, for how long, with what outcome.

Users ask "why did this cell run?" and "why did that one not?" far more
often than they read logs; these records are the answer's raw material
(``%reactive trace``, ``%reactive explain``).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass
class RunRecord:
    cell_id: str
    reason: str
    started: float
    duration: float = 0.0
    outcome: str = "running"


@dataclass
class BatchTrace:
    id: int
    started: float
    events: list[str] = field(default_factory=list)
    runs: list[RunRecord] = field(default_factory=list)
    ended: float | None = None
    outcome: str = "running"
    #: cells left stale when the batch ended (error upstream, interrupt)
    left_stale: list[str] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return (self.ended or self.started) - self.started

    def summary(self) -> str:
        cells = ", ".join(
            f"{r.cell_id}({r.outcome}, {r.duration * 1000:.0f} ms)" for r in self.runs
        )
        events = "; ".join(self.events) or "-"
        stale = f"; left stale: {', '.join(self.left_stale)}" if self.left_stale else ""
        return (
            f"batch {self.id} [{self.outcome}] {self.duration * 1000:.0f} ms"
            f" events: {events} ran: {cells or '-'}{stale}"
        )


class TraceLog:
    """A bounded history of batches (old ones fall off: memory stays flat)."""

    def __init__(self, maxlen: int = 256) -> None:
        self.batches: deque[BatchTrace] = deque(maxlen=maxlen)
        self._last_run: dict[str, RunRecord] = {}

    def add(self, batch: BatchTrace) -> None:
        self.batches.append(batch)

    def record_run(self, run: RunRecord) -> None:
        self._last_run[run.cell_id] = run

    def last_run(self, cell_id: str) -> RunRecord | None:
        return self._last_run.get(cell_id)

    def forget(self, cell_id: str) -> None:
        self._last_run.pop(cell_id, None)
