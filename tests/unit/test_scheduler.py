"""The scheduler's rules (DESIGN.md §4) on the in-process host."""

from __future__ import annotations

import itertools
import threading
import time

import anyio
import pytest

from reactive.events import Interrupt, Outcome, SourceChanged
from reactive.graph import CellStatus, Source
from reactive.scheduler import UpstreamFailed

from .conftest import Notebook

pytestmark = pytest.mark.asyncio

DASH = [
    "base = s.value * 10",  # c1 reads s
    "print('unrelated', t.value)",  # c2 reads t only
    "shown = base + 1\nprint('shown', shown)",  # c3 downstream of c1
    "print('tail', shown * 2)",  # c4 downstream of c3
]


async def test_leading_edge_runs_dependents_once_and_leaves_others_alone() -> None:
    nb = Notebook(DASH, sources={"s": 1, "t": 5})
    async with nb.serving():
        await nb.run_all()
        before = dict(nb.ex.runs)
        nb.set("s", 2)
        await nb.sched.quiescent(timeout=5)
    assert nb.out("c3") == "shown 21\n"
    assert nb.out("c4") == "tail 42\n"
    assert nb.runs("c2") == before["c2"], "a cell that does not read s must not re-run"
    assert [nb.runs(c) - before[c] for c in ("c1", "c3", "c4")] == [1, 1, 1]


async def test_run_all_runs_each_cell_once() -> None:
    nb = Notebook(DASH, sources={"s": 1, "t": 5})
    async with nb.serving():
        await nb.run_all()
    assert nb.ex.runs == {"c1": 1, "c2": 1, "c3": 1, "c4": 1}


async def test_coalescing_latest_value_wins() -> None:
    nb = Notebook(["print(s.value)"], sources={"s": 0}, cost={"c1": 0.05}, blocking=False)
    async with nb.serving():
        await nb.run_all()
        nb.set("s", 1)  # leading edge: runs at once
        await nb.running("c1")
        for v in range(2, 200):  # arrive while c1 runs: merged into one pending entry
            nb.set("s", v)
        await nb.sched.quiescent(timeout=5)
    assert nb.out("c1") == "199\n"
    assert nb.runs("c1") <= 3
    assert nb.sched.stats["coalesced"] >= 190


async def test_pending_events_cost_memory_per_source_not_per_event() -> None:
    nb = Notebook(["print(s.value, t.value)"], sources={"s": 0, "t": 0})
    # not serving: everything stays in the inbox
    for v in range(100_000):
        nb.set("s" if v % 2 else "t", v)
    assert len(nb.sched._sources) == 2
    assert nb.sched.stats["events"] == 100_000


async def test_supersession_cell_never_starts_on_superseded_inputs() -> None:
    cells = ["a = s.value\nprint('a', a)", "b = t.value + a\nprint('b', b)"]
    nb = Notebook(cells, sources={"s": 0, "t": 0}, cost={"c1": 0.05}, blocking=False)
    async with nb.serving():
        await nb.run_all()
        nb.set("s", 1)
        await nb.running("c1")  # with s=1
        nb.set("t", 7)
        nb.set("s", 2)
        await nb.sched.quiescent(timeout=5)
    assert nb.out("c2") == "b 9\n"
    # c2 ran once for the whole burst, after c1 caught up with s=2
    c2_runs = [vals for cid, vals in nb.ex.seen if cid == "c2"]
    assert c2_runs[-1] == {"t.value": 7}
    assert len(c2_runs) == 2  # run-all + one coalesced re-run
    c1_seen = [vals["s.value"] for cid, vals in nb.ex.seen if cid == "c1"]
    assert c1_seen == [0, 1, 2]


async def test_error_marks_descendants_stale_and_scheduler_keeps_serving() -> None:
    cells = [
        "x = 10 // s.value",
        "y = x + 1\nprint('y', y)",
        "print('other', t.value)",
    ]
    nb = Notebook(cells, sources={"s": 1, "t": 0})
    async with nb.serving():
        await nb.run_all()
        runs_y = nb.runs("c2")
        nb.set("s", 0)  # ZeroDivisionError in c1
        await nb.sched.quiescent(timeout=5)
        assert nb.graph.cells["c1"].status is CellStatus.ERRORED
        assert nb.graph.cells["c2"].status is CellStatus.STALE
        assert nb.runs("c2") == runs_y, "descendant must not run on half-updated inputs"
        assert nb.sched.trace.batches[-1].outcome == "error"
        assert nb.sched.trace.batches[-1].left_stale == ["c2"]
        nb.set("t", 3)  # unrelated cell still served
        nb.set("s", 5)
        await nb.sched.quiescent(timeout=5)
    assert nb.out("c2") == "y 3\n"
    assert nb.out("c3") == "other 3\n"
    assert {c.status for c in nb.graph.cells.values()} == {CellStatus.FRESH}


async def test_interrupt_stops_the_batch_not_the_scheduler() -> None:
    cells = ["a = s.value", "b = a + 1", "c = b + 1\nprint(c)"]
    nb = Notebook(cells, sources={"s": 0}, cost={"c1": 0.05}, blocking=False)
    async with nb.serving():
        await nb.run_all()
        nb.set("s", 1)
        await nb.running("c1")
        nb.sched.submit(Interrupt())
        await nb.sched.quiescent(timeout=5)
        assert nb.graph.stale() == ["c2", "c3"]
        assert nb.sched.trace.batches[-1].outcome == "interrupted"
        nb.set("s", 5)
        await nb.sched.quiescent(timeout=5)
    assert nb.out("c3") == "7\n"
    assert nb.graph.stale() == []


async def test_keyboard_interrupt_inside_a_cell_stops_the_batch() -> None:
    cells = ["if s.value == 2:\n    raise KeyboardInterrupt\na = s.value", "print(a)"]
    nb = Notebook(cells, sources={"s": 0})
    async with nb.serving():
        await nb.run_all()
        nb.set("s", 2)
        await nb.sched.quiescent(timeout=5)
        assert nb.graph.cells["c1"].status is CellStatus.STALE
        assert nb.graph.cells["c2"].status is CellStatus.STALE
        nb.set("s", 3)
        await nb.sched.quiescent(timeout=5)
    assert nb.out("c2") == "3\n"


async def test_debounce_waits_for_quiet() -> None:
    nb = Notebook(["print(s.value)"], sources={"s": 0})
    nb.sched.set_debounce(0.08, nb.sources["s"].source)
    async with nb.serving():
        await nb.run_all()
        t0 = time.monotonic()
        for v in range(1, 11):
            nb.set("s", v)
            await anyio.sleep(0.005)
        last = time.monotonic()
        await nb.sched.quiescent(timeout=5)
        done = time.monotonic()
    assert nb.runs("c1") == 2  # run-all + one debounced run
    assert nb.out("c1") == "10\n"
    assert done - last >= 0.08 - 0.005
    assert done - t0 < 2


async def test_throttle_caps_starts_and_shows_final_state() -> None:
    nb = Notebook(["print(s.value)"], sources={"s": 0})
    nb.sched.set_throttle("c1", 20)  # at most every 50 ms
    starts: list[float] = []
    nb.ex.on_run = lambda cid: starts.append(time.monotonic())
    async with nb.serving():
        await nb.run_all()
        starts.clear()
        for v in range(1, 31):
            nb.set("s", v)
            await anyio.sleep(0.01)
        await nb.sched.quiescent(timeout=5)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) >= 0.045
    assert nb.out("c1") == "30\n"


@pytest.mark.parametrize("bad", [-1, float("nan"), "fast"])
async def test_bad_settings_are_refused_clearly(bad: object) -> None:
    nb = Notebook(["x = 1"])
    with pytest.raises(ValueError, match="debounce must be"):
        nb.sched.set_debounce(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="throttle must be"):
        nb.sched.set_throttle("c1", bad)  # type: ignore[arg-type]


async def test_user_run_runs_stale_upstream_first_then_downstream() -> None:
    cells = ["a = s.value", "b = a * 2", "print('c', b + 1)"]
    nb = Notebook(cells, sources={"s": 1})
    async with nb.serving():
        await nb.run_all()
        nb.graph.mark_stale(["c1", "c2"])
        order: list[str] = []
        nb.ex.on_run = order.append
        nb.sources["s"].value = 4  # changed while the runtime was off
        await nb.run("c3")
        await nb.sched.quiescent(timeout=5)
    assert order == ["c1", "c2", "c3"]
    assert nb.out("c3") == "c 9\n"


async def test_user_run_downstream_after_edit() -> None:
    nb = Notebook(["x = 1", "print(x * 10)"])
    async with nb.serving():
        await nb.run_all()
        await nb.run("c1", "x = 2")
        await nb.sched.quiescent(timeout=5)
    assert nb.out("c2") == "20\n"


async def test_upstream_failure_refuses_to_run_the_cell() -> None:
    nb = Notebook(["a = 1 // s.value", "print(a)"], sources={"s": 1})
    async with nb.serving():
        await nb.run_all()
        nb.graph.mark_stale(["c1"])
        nb.sources["s"].value = 0
        with pytest.raises(UpstreamFailed, match="upstream cell c1 failed"):
            await nb.run("c2")
        await nb.sched.quiescent(timeout=5)  # the failed batch is closed, not left open
        assert nb.sched.trace.batches[-1].outcome == "error"
    assert nb.graph.cells["c2"].status is CellStatus.STALE


async def test_precision_unchanged_values_do_not_propagate() -> None:
    cells = [
        "d = {'a': 1, 'b': s.value}",
        "print('reads a', d['a'])",
        "print('reads b', d['b'])",
    ]
    nb = Notebook(cells, sources={"s": 0})
    async with nb.serving():
        await nb.run_all()
        nb.set("s", 9)
        await nb.sched.quiescent(timeout=5)
    # c1 rebuilt d as a whole, but d['a'] kept its value
    assert nb.runs("c2") == 1
    assert nb.runs("c3") == 2
    assert nb.out("c3") == "reads b 9\n"


async def test_cell_setting_a_source_updates_its_readers_once() -> None:
    cells = ["s.value = 3", "print('sees', s.value)"]
    nb = Notebook(cells, sources={"s": 0})
    # the host reports source writes; the in-process one does not, so we wrap it
    orig = nb.ex.execute

    async def execute(cid: str, src: str, *args: object):  # type: ignore[no-untyped-def]
        res = await orig(cid, src, *args)  # type: ignore[arg-type]
        if cid == "c1":
            from dataclasses import replace

            res = replace(res, sources_written=frozenset({nb.sources["s"].source}))
        return res

    nb.ex.execute = execute  # type: ignore[method-assign]
    async with nb.serving():
        await nb.run("c2")
        await nb.run("c1")
        await nb.sched.quiescent(timeout=5)
    assert nb.out("c2") == "sees 3\n"
    assert nb.runs("c2") == 2


async def test_any_order_cycle_is_reported_not_hung() -> None:
    cells = ["a = b + s.value", "b = a + 1"]
    nb = Notebook(cells, sources={"s": 0}, direction="any_order")
    nb.ex.ns.update(a=0, b=0)
    async with nb.serving():
        for cid in ("c1", "c2"):
            await nb.run(cid)
        nb.set("s", 1)
        await nb.sched.quiescent(timeout=5)
    assert nb.graph.cycles() == [["c1", "c2"]]
    assert any("cycle" in e for b in nb.sched.trace.batches for e in b.events)


async def test_submit_from_another_thread() -> None:
    nb = Notebook(["print(s.value)"], sources={"s": 0})
    async with nb.serving():
        await nb.run_all()
        thread = threading.Thread(target=lambda: [nb.set("s", v) for v in range(1, 51)])
        thread.start()
        await anyio.to_thread.run_sync(thread.join)
        await nb.sched.quiescent(timeout=5)
    assert nb.out("c1") == "50\n"


async def test_a_flood_from_another_thread_pauses_runs_until_it_is_drained() -> None:
    """A subshell taking in a flood needs the GIL, not our runs on superseded values."""
    nb = Notebook(["print(s.value)"], sources={"s": 0}, cost={"c1": 0.005}, blocking=False)

    def flood() -> int:
        v, end = 0, time.monotonic() + 0.4
        while time.monotonic() < end:  # ~5,000 events a second, 10x a drag's rate
            v += 1
            nb.set("s", v)
            time.sleep(0.0002)
        return v

    async with nb.serving():
        await nb.run_all()
        last = await anyio.to_thread.run_sync(flood)
        await nb.sched.quiescent(timeout=5)
    assert nb.out("c1") == f"{last}\n", "the final value is shown"
    # the first event runs at once; then one run per backlog_max (0.5 s) at most, and the
    # final value: a run every few ms (one per 5 ms run and settle) would be dozens
    assert nb.runs("c1") - 1 <= 3, nb.runs("c1")


async def test_a_move_another_thread_took_during_a_run_runs_next_without_the_drag_wait() -> None:
    """A subshell answered the move at once: no next move is held back waiting for us."""
    nb = Notebook(["print(s.value)"], sources={"s": 0}, cost={"c1": 0.05}, blocking=False)
    nb.sched.drag_settle = 2.0  # waiting for a next move would show
    async with nb.serving():
        await nb.run_all()
        nb.set("s", 1)
        await nb.running("c1")  # with 1
        await anyio.to_thread.run_sync(nb.set, "s", 2)
        with anyio.fail_after(1.0):
            await nb.sched.quiescent()
    assert nb.out("c1") == "2\n"


async def test_apply_failure_is_contained() -> None:
    nb = Notebook(["print(s.value)"], sources={"s": 0})

    def boom() -> None:
        raise TypeError("an IntSlider cannot hold 'abc'")

    async with nb.serving():
        await nb.run_all()
        nb.sched.submit(SourceChanged(nb.sources["s"].source, "abc", boom))
        nb.set("s", 4)
        await nb.sched.quiescent(timeout=5)
    assert nb.out("c1") == "4\n"


async def test_trace_records_why_each_cell_ran() -> None:
    nb = Notebook(DASH, sources={"s": 1, "t": 5})
    async with nb.serving():
        await nb.run_all()
        nb.set("s", 2)
        await nb.sched.quiescent(timeout=5)
    batch = nb.sched.trace.batches[-1]
    assert batch.events == ["s.value=2"]
    assert [r.cell_id for r in batch.runs] == ["c1", "c3", "c4"]
    assert batch.runs[0].reason.startswith("source: reads s.value")
    assert "cell c1" in batch.runs[1].reason
    assert all(r.outcome == Outcome.OK.value for r in batch.runs)
    assert "batch" in batch.summary()


async def test_removed_cell_is_not_run() -> None:
    nb = Notebook(["a = s.value", "print(a)"], sources={"s": 0})
    async with nb.serving():
        await nb.run_all()
        nb.sched.remove_cell("c2")
        nb.set("s", 1)
        await nb.sched.quiescent(timeout=5)
    assert nb.runs("c2") == 1
    assert Source("s", "value") in nb.graph.cells["c1"].sources


async def test_cell_debounce_lets_fast_cells_repaint_and_the_slow_one_wait() -> None:
    nb = Notebook(["a = s.value\nprint('fast', a)", "print('slow', a * 2)"], sources={"s": 0})
    nb.sched.set_cell_debounce("c2", 0.08)
    async with nb.serving():
        await nb.run_all()
        before = dict(nb.ex.runs)
        for v in range(1, 11):
            nb.set("s", v)
            await anyio.sleep(0.01)  # pacing a drag: the fast cell keeps up
        await nb.sched.quiescent(timeout=5)
    assert nb.runs("c1") - before["c1"] >= 5
    assert nb.runs("c2") - before["c2"] == 1
    assert nb.out("c2") == "slow 20\n"


async def test_caught_up_after_the_runs_an_event_caused_not_the_debounced_ones() -> None:
    nb = Notebook(
        ["print('fast', s.value)", "print('slow', s.value)"],
        sources={"s": 0},
        cost={"c1": 0.05},
        blocking=False,
    )
    nb.sched.set_cell_debounce("c2", 0.5)
    async with nb.serving():
        await nb.run_all()
        await nb.sched.quiescent(timeout=5)
        assert nb.sched.caught_up
        nb.set("s", 1)
        assert not nb.sched.caught_up, "a due event is work"
        assert await nb.sched.wait_caught_up(5)
        # c1's run is done; c2 waits for its debounce, which does not count as work
        assert nb.out("c1") == "fast 1\n" and nb.runs("c2") == 1
        assert not nb.sched.idle
        assert nb.sched.caught_up
        await nb.sched.quiescent(timeout=5)
    assert nb.out("c2") == "slow 1\n" and nb.runs("c2") == 2


async def test_wait_caught_up_gives_up_after_its_timeout() -> None:
    nb = Notebook(["print(s.value)"], sources={"s": 0}, cost={"c1": 0.3}, blocking=False)
    async with nb.serving():
        await nb.run_all()
        nb.set("s", 1)
        assert await nb.sched.wait_caught_up(0.05) is False
        assert await nb.sched.wait_caught_up(5) is True
    assert nb.out("c1") == "1\n"
