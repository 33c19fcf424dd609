"""Issue 8, the core's share: floods, faults, cycles and self-reference on the in-process host.

The kernel tests (``tests/kernel/test_reliability.py``) show the same rules end to end; here
they are pinned down where they are decided -- the scheduler and the graph -- so a
regression names the rule it broke, and the sizes can be large (100,000 events) without a
kernel in the way.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import anyio
import pytest

from reactive.events import SourceChanged
from reactive.graph import CellStatus, CycleError, Graph, Source

from .conftest import Notebook, reference_outputs

pytestmark = pytest.mark.asyncio


async def run_all_reference(cells: dict[str, str], values: dict[str, object]) -> dict[str, str]:
    """What "restart and run all" prints (``reference_outputs`` runs its own event loop)."""
    return await anyio.to_thread.run_sync(reference_outputs, cells, values)


# -- floods ------------------------------------------------------------------------------


async def test_a_flood_from_many_threads_costs_one_entry_per_source_and_ends_on_the_last() -> None:
    """Memory is O(distinct sources) however many events arrive, from however many threads.

    Four threads each own one source and send it 25,000 values while a slow-ish cell
    keeps running; the inbox never holds more than one entry per source, the cell runs a
    tiny fraction of the event count, and the quiet state shows every source's last value.
    """
    names = ["a", "b", "c", "d"]
    cells = ["print(a.value, b.value, c.value, d.value)"]
    nb = Notebook(cells, sources=dict.fromkeys(names, -1), cost={"c1": 0.002})
    per_thread = 25_000
    peak = 0

    def flood(name: str) -> None:
        nonlocal peak
        for v in range(per_thread):
            nb.set(name, v)
            if v % 997 == 0:
                peak = max(peak, len(nb.sched._sources))

    async with nb.serving():
        await nb.run_all()
        threads = [threading.Thread(target=flood, args=(n,)) for n in names]
        for t in threads:
            t.start()
        for t in threads:
            await anyio.to_thread.run_sync(t.join)
        await nb.sched.quiescent(timeout=30)
    last = per_thread - 1
    assert nb.out("c1") == f"{last} {last} {last} {last}\n"
    assert peak <= len(names), f"inbox held {peak} entries for {len(names)} sources"
    assert nb.sched.stats["events"] >= len(names) * per_thread
    assert nb.runs("c1") < len(names) * per_thread // 50, nb.runs("c1")


async def test_a_flood_into_a_cell_that_keeps_failing_never_stops_the_scheduler() -> None:
    """Odd values make the reader raise; the flood ends on an even one, and that shows."""
    cells = [
        "v = s.value\nif v % 2:\n    raise ValueError(f'odd {v}')",
        "print('even', v)",
    ]
    nb = Notebook(cells, sources={"s": 0})
    async with nb.serving():
        await nb.run_all()
        for v in range(1, 20_001):
            nb.set("s", v)
            if v % 500 == 0:
                await anyio.sleep(0)  # let batches start mid-flood, some on odd values
        await nb.sched.quiescent(timeout=30)
        assert nb.out("c2") == "even 20000\n"
        assert nb.graph.cells["c1"].status is CellStatus.FRESH
        nb.set("s", 20_001)  # and once more an error, then a good value: still served
        await nb.sched.quiescent(timeout=5)
        assert nb.graph.cells["c2"].status is CellStatus.STALE
        nb.set("s", 20_002)
        await nb.sched.quiescent(timeout=5)
    assert nb.out("c2") == "even 20002\n"


# -- faults in user code -------------------------------------------------------------------

FAULTS = {
    "exception": "raise ValueError('boom')",
    "system exit": "raise SystemExit(3)",
    "recursion": "def r(n):\n        return r(n + 1)\n    r(0)",
    "keyboard interrupt": "raise KeyboardInterrupt",
    "10 MB of output": "print('x' * 10_000_000)\n    raise ValueError('after the output')",
}


@pytest.mark.parametrize("fault", list(FAULTS))
async def test_every_fault_leaves_descendants_stale_and_the_next_event_is_served(
    fault: str,
) -> None:
    body = FAULTS[fault]
    cells = [
        f"v = s.value\nif v == 1:\n    {body}\nw = v * 10",
        "print('w', w)",
        "print('unrelated', t.value)",
    ]
    nb = Notebook(cells, sources={"s": 0, "t": 0})
    async with nb.serving():
        await nb.run_all()
        nb.set("s", 1)
        nb.set("t", 1)
        await nb.sched.quiescent(timeout=10)
        status = {c: nb.graph.cells[c].status for c in ("c1", "c2")}
        expected = CellStatus.STALE if fault == "keyboard interrupt" else CellStatus.ERRORED
        assert status == {"c1": expected, "c2": CellStatus.STALE}, status
        assert nb.out("c2") == "w 0\n", "a descendant must not run on half-updated inputs"
        nb.set("s", 2)
        nb.set("t", 2)
        await nb.sched.quiescent(timeout=10)
    assert nb.out("c2") == "w 20\n"
    assert nb.out("c3") == "unrelated 2\n"
    assert all(c.status is CellStatus.FRESH for c in nb.graph.cells.values())


# -- cycles and self-reference ---------------------------------------------------------------


async def test_a_cycle_is_not_run_reactively_but_every_other_cell_is() -> None:
    """README: a cycle is reported naming its cells and those cells are not run reactively.

    Cells outside the cycle keep running (before the fix, any cycle in the notebook left
    every queued cell stale, and graph queries raised ``CycleError`` into the caller).
    """
    cells = [
        "a = b + s.value",  # c1 \ a cycle: c1 reads b, c2 reads a
        "b = a + 1",  # c2 /
        "print('independent', s.value)",  # c3 reads s only
        "print('fed by the cycle', a)",  # c4 reads what the cycle writes
    ]
    nb = Notebook(cells, sources={"s": 0}, direction="any_order")
    nb.ex.ns.update(a=0, b=0)
    async with nb.serving():
        for cid in nb.cells:  # the user runs each cell once, by hand
            await nb.run(cid)
        await nb.sched.quiescent(timeout=5)
        before = dict(nb.ex.runs)
        for v in range(1, 1001):
            nb.set("s", v)
        await nb.sched.quiescent(timeout=10)
    assert nb.graph.cycles() == [["c1", "c2"]]
    assert nb.out("c3") == "independent 1000\n"
    assert nb.runs("c1") == before["c1"] and nb.runs("c2") == before["c2"]
    assert nb.runs("c4") == before["c4"], "must not run on what a skipped cycle would write"
    assert nb.graph.cells["c1"].status is CellStatus.ERRORED
    assert nb.graph.cells["c4"].status is CellStatus.STALE
    named = [e for b in nb.sched.trace.batches for e in b.events if "cycle" in e]
    assert named and "c1 -> c2" in named[-1]


async def test_graph_queries_never_raise_while_a_cycle_exists() -> None:
    g = Graph("any_order")
    for i, src in enumerate(["a = b + 1", "b = a + 1", "c = a + 1", "d = 1"]):
        from reactive.analysis import analyze

        g.upsert(f"c{i + 1}", src, analyze(src))
    with pytest.raises(CycleError):  # the strict order still names the cycle
        g.order_key("c1")
    assert g.sort(["c4", "c3", "c2", "c1"]) == ["c1", "c2", "c3", "c4"]
    assert g.descendants(["c1"]) == ["c2", "c3"]
    assert g.stale_upstream("c3") == []


async def test_a_user_run_of_a_cycle_cell_runs_once_and_stops() -> None:
    cells = ["a = b + 1", "b = a + 1", "print('a', a)"]
    nb = Notebook(cells, direction="any_order")
    nb.ex.ns.update(a=0, b=0)
    async with nb.serving():
        for cid in nb.cells:
            await nb.run(cid)
        await nb.sched.quiescent(timeout=5)
        before = dict(nb.ex.runs)
        for _ in range(3):
            # by hand it runs, after its out-of-sync upstream (c2, left errored by the
            # cycle) -- once each; nothing then runs around the cycle on its own
            await nb.run("c1")
            await nb.sched.quiescent(timeout=5)
            assert nb.sched.pending == []
    assert nb.runs("c1") == before["c1"] + 3
    assert nb.runs("c2") <= before["c2"] + 3
    assert nb.graph.cells["c3"].status is CellStatus.STALE


@pytest.mark.parametrize("direction", ["in_order", "any_order"])
async def test_self_reference_does_not_loop_and_quiet_state_is_run_all(direction: str) -> None:
    """``x = x + 1`` reads the value from before it ran: it never depends on itself."""
    cells = ["x = s.value", "x = x + 1", "print('x', x)"]
    nb = Notebook(cells, sources={"s": 0}, direction=direction)
    async with nb.serving():
        await nb.run_all()
        before = dict(nb.ex.runs)
        nb.set("s", 10)
        await nb.sched.quiescent(timeout=5)
        assert nb.out("c3") == "x 11\n"
        assert {c: nb.runs(c) - before[c] for c in nb.cells} == {"c1": 1, "c2": 1, "c3": 1}
        for _ in range(3):  # by hand: it runs once per request, nothing loops
            await nb.run("c2")
            await nb.sched.quiescent(timeout=5)
            assert nb.sched.pending == []
    assert nb.runs("c2") - before["c2"] == 1 + 3
    if direction == "in_order":
        # in order, its input is re-established first, so the quiet state stays "run all"
        # (any-order binds x to either writer; only termination is promised there)
        assert nb.out("c3") == (await run_all_reference(nb.cells, {"s": 10}))["c3"] == "x 11\n"


async def test_two_self_referencing_writers_in_any_order_are_a_reported_cycle() -> None:
    cells = ["x = 1", "x = x + s.value", "x = x * 2", "print('x', x)"]
    nb = Notebook(cells, sources={"s": 0}, direction="any_order")
    async with nb.serving():
        await nb.run_all()
        nb.set("s", 5)
        await nb.sched.quiescent(timeout=5)
    assert any(set(c) >= {"c2", "c3"} for c in nb.graph.cycles()), nb.graph.cycles()
    assert nb.sched.idle


async def test_many_rewrites_of_one_name_converge_to_run_all_under_a_flood() -> None:
    """Restores (a reader needs a value a later cell overwrote) terminate and converge."""
    cells = [
        "x = s.value",
        "print('first', x)",
        *["x = x + 1"] * 6,
        "print('middle', x)",
        "x = x * t.value",
        "print('last', x)",
    ]
    nb = Notebook(cells, sources={"s": 0, "t": 1})
    async with nb.serving():
        await nb.run_all()
        for v in range(200):
            nb.set("s", v)
            nb.set("t", v % 7)
            if v % 37 == 0:
                await anyio.sleep(0)
        await nb.sched.quiescent(timeout=30)
    expected = await run_all_reference(nb.cells, {"s": 199, "t": 3})
    assert {c: nb.out(c) for c in nb.cells} == expected


async def test_events_for_a_removed_cell_or_an_unknown_source_are_ignored() -> None:
    nb = Notebook(["print(s.value)", "print('t', t.value)"], sources={"s": 0, "t": 0})
    async with nb.serving():
        await nb.run_all()
        nb.sched.remove_cell("c1")
        nb.set("s", 1)
        nb.sched.submit(SourceChanged(Source("nobody", "value"), 1))
        nb.set("t", 1)
        await nb.sched.quiescent(timeout=5)
    assert nb.out("c2") == "t 1\n" and nb.runs("c1") == 1


async def test_a_recursion_error_in_a_cell_leaves_the_recursion_limit_alone() -> None:
    limit = sys.getrecursionlimit()
    nb = Notebook(["def r(n):\n    return r(n + 1)\nr(s.value)", "print('next')"], sources={"s": 0})
    async with nb.serving():
        await nb.run_all()
    assert "RecursionError" in nb.out("c1") and nb.out("c2") == "next\n"
    assert sys.getrecursionlimit() == limit


# -- the memo store: a writer killed mid-write ------------------------------------------------

_KILLED_WRITER = """
import os, sys, time
from pathlib import Path
from reactive.memo import DiskStore, Entry, pack_values

store = DiskStore(Path(sys.argv[1]), max_bytes=50_000_000)
def entry(key, value):
    return Entry(key=key, cell="c", outputs=[], values=pack_values({"pairs": [("x", value)]}))
store.put(entry("aa" * 32, 1))  # a whole entry, then a rewrite that dies half-way

real_fdopen = os.fdopen
class HalfWriter:
    def __init__(self, f):
        self.f = f
    def __enter__(self):
        return self
    def __exit__(self, *exc):
        return False
    def write(self, data):
        self.f.write(data[: len(data) // 2])
        self.f.flush()
        Path(sys.argv[2]).write_text("half written")
        time.sleep(600)  # killed here
os.fdopen = lambda fd, mode: HalfWriter(real_fdopen(fd, mode))
store.put(entry("aa" * 32, "x" * 5_000_000))
store.put(entry("bb" * 32, "y" * 5_000_000))
"""


async def test_a_memo_writer_killed_mid_write_leaves_no_corrupt_entry(tmp_path: Path) -> None:
    """Issue 8: a crash mid-write leaves no corrupt entry visible (atomic rename)."""
    import signal
    import subprocess

    from reactive.memo import DiskStore, unpack_values

    cache, ready = tmp_path / "memo", tmp_path / "ready"
    root = Path(__file__).resolve().parents[2]
    child = subprocess.Popen(
        [sys.executable, "-c", _KILLED_WRITER, str(cache), str(ready)],
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    try:
        with anyio.fail_after(60):
            while not ready.exists() and child.poll() is None:
                await anyio.sleep(0.05)  # a child process: no event to wait on
        assert ready.exists(), "the writer never got half-way"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert any(p.name.startswith(".tmp-") for p in cache.iterdir()), "the half file exists"
    store = DiskStore(cache, max_bytes=50_000_000)
    got = store.get("aa" * 32)
    assert got is not None and unpack_values(got.values) == {"pairs": [("x", 1)]}
    assert store.get("bb" * 32) is None
    assert store.usage()[0] == 1, "only the whole entry counts"
