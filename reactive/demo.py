"""A headless demo of the core: a slider dragged through a dashboard notebook.

No kernel and no browser: the in-process host runs the cells, and a thread
plays the part of a browser sending slider positions at 100 Hz.  It shows
the three promises at a glance: the first event runs at once, a burst never
builds a backlog, and cells that do not depend on the slider never run.
"""

from __future__ import annotations

import threading
import time

import anyio

from .graph import Graph
from .inprocess import InProcessExecutor, Var
from .scheduler import Scheduler

CELLS = {
    "slider": "n = slider.value",
    "data": "data = [i * i for i in range(n)]",
    "unrelated": "greeting = 'hello'\nprint(greeting)",
    "stats": "total = sum(data)\nprint(f'n={n} total={total}')",
    "plot": "bar = '#' * (total % 40)\nprint(f'plot |{bar}')",
}


async def _demo(events: int, rate_hz: float, cost: float) -> None:
    slider = Var("slider", 10)
    ex = InProcessExecutor(ns={"slider": slider}, cost={"data": cost})
    graph = Graph()
    sched = Scheduler(graph, ex, on_batch=lambda b: print("  " + b.summary()))
    sent: list[float] = []

    def browser() -> None:
        start = time.monotonic()
        for i in range(events):
            time.sleep(max(0.0, start + i / rate_hz - time.monotonic()))
            sent.append(time.monotonic())
            sched.submit(slider.change(10 + i))

    async with anyio.create_task_group() as tg:
        await tg.start(sched.serve)
        print("run all:")
        for cid, src in CELLS.items():
            await sched.user_run(cid, src, lambda c=cid, s=src: ex.execute(c, s, graph.defs(c)))
        await sched.quiescent(timeout=30)
        before = dict(ex.runs)
        print(f"\ndrag: {events} slider events at {rate_hz:g} Hz, 'data' takes {cost * 1000:g} ms:")
        thread = threading.Thread(target=browser)
        thread.start()
        await anyio.to_thread.run_sync(thread.join)
        await sched.quiescent(timeout=30)
        done = time.monotonic()
        tg.cancel_scope.cancel()
    print("\nre-runs per cell during the drag:")
    for cid in CELLS:
        print(f"  {cid:10s} {ex.runs.get(cid, 0) - before.get(cid, 0):4d}")
    print(f"\nfinal output of 'stats': {ex.outputs['stats'].strip()}")
    print(f"consistent {1000 * (done - sent[-1]):.0f} ms after the last event")
    print(f"events received {sched.stats['events']}, coalesced {sched.stats['coalesced']}")


def main(events: int = 60, rate_hz: float = 100.0, cost: float = 0.03) -> None:
    anyio.run(_demo, events, rate_hz, cost)
