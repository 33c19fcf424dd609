"""Shared builders for core tests: a notebook of cells on the in-process host."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import anyio

from reactive.events import RunResult
from reactive.graph import CellStatus, Graph
from reactive.inprocess import InProcessExecutor, Var
from reactive.scheduler import Scheduler


class Notebook:
    """Cells ``c1..cN`` on an in-process executor, with ``Var`` sources."""

    def __init__(
        self,
        cells: Sequence[str],
        *,
        sources: dict[str, Any] | None = None,
        cost: dict[str, float] | None = None,
        blocking: bool = True,
        direction: str = "in_order",
    ) -> None:
        self.sources = {name: Var(name, v) for name, v in (sources or {}).items()}
        self.ex = InProcessExecutor(ns=dict(self.sources), cost=dict(cost or {}), blocking=blocking)
        self.graph = Graph(direction)
        self.sched = Scheduler(self.graph, self.ex)
        self.cells = {f"c{i}": src for i, src in enumerate(cells, start=1)}

    async def run(self, cid: str, source: str | None = None) -> RunResult:
        """Execute a cell as the user would (upstream first, downstream queued)."""
        if source is not None:
            self.cells[cid] = source
        src = self.cells[cid]
        return await self.sched.user_run(
            cid,
            src,
            lambda: self.ex.execute(cid, src, self.graph.defs(cid), self.graph.refs(cid)),
        )

    async def run_all(self) -> None:
        for cid in self.cells:
            await self.run(cid)
        await self.sched.quiescent(timeout=10)

    def set(self, name: str, value: Any) -> None:
        self.sched.submit(self.sources[name].change(value))

    async def running(self, cid: str, timeout: float = 5.0) -> None:
        """Wait until the scheduler has started ``cid`` (an async cell: the loop stays free).

        Loop turns, not a sleep: a test that sends an event "while c1 runs" must not
        send it before c1 started, where it would merge into the run and test nothing.
        """
        with anyio.fail_after(timeout):
            while self.graph.cells[cid].status is not CellStatus.RUNNING:
                await anyio.lowlevel.checkpoint()

    def out(self, cid: str) -> str:
        return self.ex.outputs.get(cid, "")

    def runs(self, cid: str) -> int:
        return self.ex.runs.get(cid, 0)

    @asynccontextmanager
    async def serving(self) -> AsyncIterator[Notebook]:
        async with anyio.create_task_group() as tg:
            await tg.start(self.sched.serve)
            try:
                yield self
            finally:
                tg.cancel_scope.cancel()


def reference_outputs(cells: dict[str, str], values: dict[str, Any]) -> dict[str, str]:
    """What "restart and run all" prints per cell with the given source values."""
    ex = InProcessExecutor(ns={n: Var(n, v) for n, v in values.items()})
    for cid, src in cells.items():
        anyio.run(ex.execute, cid, src)
    return dict(ex.outputs)
