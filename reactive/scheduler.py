"""The scheduler: turns events into batches of cell runs (DESIGN.md §4).

Policy lives here; the graph only answers questions.  The rules:

* **Leading edge** -- an event that arrives while idle starts work at once.
* **Coalescing** -- pending events are kept one per source (latest value
  wins) and cells to run are a set, so a flood of any size costs memory in
  proportion to the number of *distinct* sources and cells, never events.
* **Supersession** -- events are drained between cells.  When new events
  arrive mid-batch the batch is closed and a new one planned from the merged
  work, so a cell that had not started yet runs once, on the newest inputs;
  a cell never starts on inputs that were already superseded.
* **Consistency** -- source values are *applied* (``SourceChanged.apply``)
  only between cells, so a cell sees one value of each source for its whole
  run even when changes arrive on other threads.
* **Debounce / throttle** -- a source may ask for a quiet period before its
  change is taken; a cell may cap how often it starts.  Both default off
  because latency is what dashboards are judged on.
* **Errors** -- a failing cell's descendants are marked stale and dropped
  from the batch (never run on half-updated inputs); unrelated cells still
  run, and the scheduler keeps serving.
* **Interrupt** -- stops the batch, not the scheduler: the rest is left stale.

Runs are serialised with the host's own executions through one lock, because
interpreter state (execution count, display hooks, the last traceback) is
global.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import anyio
import anyio.lowlevel
from anyio.abc import TaskStatus

from .analysis import CellAnalysis, Transform, analyze
from .events import (
    CellRan,
    ConfigChanged,
    Event,
    Interrupt,
    Outcome,
    RunReason,
    RunResult,
    SourceChanged,
)
from .graph import Cell, CellStatus, CycleError, Direction, Graph, Source
from .trace import BatchTrace, RunRecord, TraceLog

log = logging.getLogger("reactive")

#: ``_step`` result meaning "did something, call again" (distinct from any delay)
_RAN = -1.0


class Executor(Protocol):
    """What a host provides: run one cell, report what changed.

    A host may also offer ``inputs_unchanged(cell, inputs) -> bool``: the
    scheduler then skips a cell queued only because an upstream cell changed
    when every path it reads still has the value it saw last time (an
    upstream rebuilt ``d`` but ``d["a"]`` kept its value).
    """

    async def run(self, cell: Cell, why: RunReason) -> RunResult: ...


class UpstreamFailed(RuntimeError):
    """A cell the user ran could not run because an upstream cell failed."""

    def __init__(self, cell_id: str, failed: str, error: str | None):
        self.cell_id, self.failed, self.error = cell_id, failed, error
        super().__init__(f"not run: upstream cell {failed} failed ({error or 'error'})")


class _Held:
    """``async with`` an anyio lock, taking a free one without a checkpoint.

    anyio's lock yields to the event loop even when it is free.  On the
    user's execution path that is a whole loop iteration before and after
    every cell (tens of microseconds of ipykernel's own I/O handling) for a
    lock nobody else wanted; a contended lock still waits as usual.
    """

    __slots__ = ("lock",)

    def __init__(self, lock: anyio.Lock) -> None:
        self.lock = lock

    async def __aenter__(self) -> None:
        try:
            self.lock.acquire_nowait()
        except anyio.WouldBlock:
            await self.lock.acquire()

    async def __aexit__(self, *exc: object) -> None:
        self.lock.release()


class Scheduler:
    """One per kernel: owns the work set and runs it on the host's loop."""

    def __init__(
        self,
        graph: Graph,
        executor: Executor,
        *,
        transform: Transform | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_batch: Callable[[BatchTrace], None] | None = None,
    ) -> None:
        self.graph = graph
        self.executor = executor
        self.transform = transform
        self.clock = clock
        self.on_batch = on_batch
        self.trace = TraceLog()
        self.lock = anyio.Lock()
        # inbox: touched from any thread under _mutex; everything else is loop-only
        self._mutex = threading.Lock()
        self._sources: dict[Source, tuple[SourceChanged, float]] = {}
        self._others: list[Event] = []
        self._debounce: dict[Source | None, float] = {}
        self._throttle: dict[str, float] = {}
        self._cell_debounce: dict[str, float] = {}
        self._queued_at: dict[str, float] = {}
        self._source_gap: dict[Source, float] = {}
        self._source_taken: dict[Source, float] = {}
        self._last_start: dict[str, float] = {}
        self._work: dict[str, tuple[str, str]] = {}  # cell id -> (kind, detail)
        self._rebound: dict[str, dict[str, int]] = {}
        self._restores = 0
        #: restores allowed per batch on top of 4 per cell (a loop guard)
        self.max_restores_per_batch = 64
        self._analyses: dict[str, CellAnalysis] = {}  # per batch: writers re-run for a reader
        self._batch: BatchTrace | None = None
        self._batch_ids = 0
        self._wakeup = anyio.Event()
        self._idle_event = anyio.Event()
        #: set whenever a run ends or the serving loop waits: ``caught_up`` may have changed
        self._progress = anyio.Event()
        #: the serving loop waits for a throttled or debounced item to come due
        self._timed_wait = False
        self._busy = False
        self._threadsafe: Callable[[Callable[[], Any]], Any] | None = None
        self._loop_thread: int | None = None
        self._serving = False
        self.stats = {"events": 0, "coalesced": 0, "runs": 0, "batches": 0}
        #: events submitted from threads other than the serving loop's
        self._foreign_events = 0
        #: upper bound of loop iterations spent collecting events after a run
        self.settle_checkpoints = 32
        #: how long to wait for the next event of a drag before running on (s)
        self.drag_settle = 0.004
        #: events in one settle round that mean the host is working through a backlog
        self.backlog_events = 16
        #: longest a backlog may hold the next run back (s): a flood still repaints
        self.backlog_max = 0.5
        #: events per second from other threads that only a flood produces: a browser
        #: keeps one update in flight and sends at most its pointer rate (~60-120 Hz)
        self.flood_rate = 500.0
        #: how long each pause lasts while another thread drains a flood (s)
        self.flood_pause = 0.02

    # ------------------------------------------------------------ settings
    def set_debounce(self, seconds: float, source: Source | None = None) -> None:
        """Hold changes of ``source`` (all sources if None) until quiet for ``seconds``."""
        if not isinstance(seconds, (int, float)) or seconds < 0 or seconds != seconds:
            raise ValueError(f"debounce must be a number of seconds >= 0, got {seconds!r}")
        if seconds == 0:
            self._debounce.pop(source, None)
        else:
            self._debounce[source] = float(seconds)

    def set_cell_debounce(self, cell_id: str, seconds: float) -> None:
        """Run ``cell_id`` only once its inputs have been quiet for ``seconds``.

        For a slow cell (a 2-second model fit) downstream of fast ones: the
        fast cells keep repainting during a drag, the slow one waits for the
        drag to pause.
        """
        if not isinstance(seconds, (int, float)) or seconds < 0 or seconds != seconds:
            raise ValueError(f"debounce must be a number of seconds >= 0, got {seconds!r}")
        if seconds == 0:
            self._cell_debounce.pop(cell_id, None)
        else:
            self._cell_debounce[cell_id] = float(seconds)

    def set_throttle(self, cell_id: str, hz: float | None) -> None:
        """Start ``cell_id`` at most ``hz`` times a second (None or 0: no cap)."""
        if hz is None or hz == 0:
            self._throttle.pop(cell_id, None)
            return
        if not isinstance(hz, (int, float)) or hz < 0 or hz != hz:
            raise ValueError(f"throttle must be a positive rate in Hz, got {hz!r}")
        self._throttle[cell_id] = 1.0 / float(hz)

    def set_source_throttle(self, source: Source, hz: float | None) -> None:
        """Take changes of ``source`` at most ``hz`` times a second (None or 0: no cap).

        Unlike debounce this keeps repainting during a drag, just less often;
        the last change is always taken.
        """
        if hz is None or hz == 0:
            self._source_gap.pop(source, None)
            return
        if not isinstance(hz, (int, float)) or hz < 0 or hz != hz:
            raise ValueError(f"throttle must be a positive rate in Hz, got {hz!r}")
        self._source_gap[source] = 1.0 / float(hz)

    # -------------------------------------------------------------- inbox
    def submit(self, event: Event) -> None:
        """Hand an event to the scheduler.  Safe from any thread; never blocks."""
        now = self.clock()
        with self._mutex:
            self.stats["events"] += 1
            if self._loop_thread is not None and threading.get_ident() != self._loop_thread:
                self._foreign_events += 1
            if isinstance(event, SourceChanged):
                if event.source in self._sources:
                    self.stats["coalesced"] += 1
                delay = self._debounce.get(event.source, self._debounce.get(None, 0.0))
                due = now + delay
                gap = self._source_gap.get(event.source)
                if gap is not None:
                    due = max(due, self._source_taken.get(event.source, float("-inf")) + gap)
                self._sources[event.source] = (event, due)
            else:
                self._others.append(event)
        self._wake()

    def _wake(self) -> None:
        if self._loop_thread is None or threading.get_ident() == self._loop_thread:
            self._set_wakeup()
        elif self._threadsafe is not None:
            # resolve the event on the loop: the serving loop may replace it
            # between now and then, and setting a stale one would be lost
            self._threadsafe(self._set_wakeup)

    def _set_wakeup(self) -> None:
        self._wakeup.set()
        self._progress.set()

    def _drain(self) -> tuple[list[SourceChanged], list[Event], float | None]:
        """Take due source changes and all other events; report the next due time."""
        now = self.clock()
        due: list[SourceChanged] = []
        next_due: float | None = None
        with self._mutex:
            for src, (ev, at) in list(self._sources.items()):
                if at <= now:
                    due.append(ev)
                    del self._sources[src]
                    if src in self._source_gap:
                        self._source_taken[src] = now
                else:
                    next_due = at if next_due is None else min(next_due, at)
            others, self._others = self._others, []
        return due, others, next_due

    # ------------------------------------------------------------ serving
    async def serve(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Run forever on the current loop; cancel the enclosing scope to stop."""
        self._bind_loop()
        self._serving = True
        task_status.started()
        try:
            while True:
                delay = await self._pump()
                self._timed_wait = delay is not None
                self._progress.set()
                if delay is None:
                    if self.idle:
                        self._idle_event.set()
                    await self._wakeup.wait()
                else:
                    with anyio.move_on_after(delay):
                        await self._wakeup.wait()
                self._wakeup = anyio.Event()
                self._timed_wait = False
        finally:
            self._serving = False
            self._close_batch("cancelled")

    def _bind_loop(self) -> None:
        self._loop_thread = threading.get_ident()
        try:
            self._threadsafe = asyncio.get_running_loop().call_soon_threadsafe
        except RuntimeError:  # pragma: no cover - trio; the kernel runs asyncio
            import trio

            self._threadsafe = trio.lowlevel.current_trio_token().run_sync_soon

    @property
    def idle(self) -> bool:
        """No event pending (debounced ones included), nothing queued or running."""
        with self._mutex:
            busy = self._sources or self._others or self._work or self._busy
        return not busy and self._batch is None

    async def quiescent(self, timeout: float | None = None) -> None:
        """Wait until :attr:`idle` (the serving loop signals it; no polling)."""
        with anyio.fail_after(timeout):
            while not self.idle:
                if self._idle_event.is_set():
                    self._idle_event = anyio.Event()
                await self._idle_event.wait()

    @property
    def caught_up(self) -> bool:
        """Nothing can run right now: no due event, and no cell running or ready to.

        Unlike :attr:`idle` this ignores what waits for its debounce or throttle
        to come due, and is true while the scheduler merely waits to see if a
        drag goes on.
        """
        if not self._serving:
            return True
        now = self.clock()
        with self._mutex:
            due = bool(self._others) or any(at <= now for _, at in self._sources.values())
        return not due and (self._timed_wait or not (self._work or self._busy))

    async def wait_caught_up(self, timeout: float, *, events: int | None = None) -> bool:
        """Wait (at most ``timeout`` s) until :attr:`caught_up`; False if it was not.

        A host that acknowledges an event only once the runs it caused are
        done uses this: the kernel's main shell answers a widget update after
        its cells re-ran, as ``interact`` does, so the browser -- which keeps one
        update in flight -- sends its next value when a run can take it, instead
        of while one runs (where it would wait, then cost a run of its own).
        With ``events`` (a ``stats["events"]`` reading) the wait also ends when
        a later event arrives: the runs are then no longer this event's alone
        (a flood), and holding the answer would only hold up the shell.
        """
        with anyio.move_on_after(timeout):
            while not self.caught_up:
                if events is not None and self.stats["events"] > events:
                    return False
                if self._progress.is_set():
                    self._progress = anyio.Event()
                await self._progress.wait()
            return True
        return False

    async def _pump(self) -> float | None:
        """Run work until none is runnable; return seconds until the next due item."""
        while True:
            events_before, foreign_before = self.stats["events"], self._foreign_events
            started = self.clock()
            async with self.lock:
                self._busy = True
                try:
                    wait = await self._step()
                finally:
                    self._busy = False
            if wait is _RAN:
                self._progress.set()
                got = self.stats["events"] - events_before
                from_threads = self._foreign_events - foreign_before == got
                if from_threads and self._flooding(got, self.clock() - started):
                    await self._pause_for_threads(self.clock() + self.backlog_max)
                else:
                    # only what this loop delivered was held back by us: see _settle_round
                    await self._settle(dragging=not from_threads)
                continue
            return wait

    async def _settle(self, *, dragging: bool = False) -> None:
        """Let the host deliver events that queued up while a cell ran.

        A kernel hands queued widget messages to its handlers one loop
        iteration at a time; starting the next run at once would take the
        first of them only, and every later one would cost a run of its own
        (no coalescing on the main shell).  A few zero-length checkpoints let
        the queue drain; they stop as soon as no new event shows up.

        When one round brings many events the host is behind (a flood: the
        browser sends one update per round trip, never dozens), and every one
        of them supersedes the value a run would start on now.  Rounds go on
        while that lasts, for at most ``backlog_max``: a flood drains at the
        kernel's own speed instead of paying a run every few dozen messages,
        and still repaints during a long one.
        """
        deadline = self.clock() + self.backlog_max
        while True:
            start, foreign = self.stats["events"], self._foreign_events
            await self._settle_round(dragging=dragging)
            got = self.stats["events"] - start
            if got < self.backlog_events or self.clock() >= deadline:
                return
            if self._foreign_events - foreign == got:
                await self._pause_for_threads(deadline)
                return
            dragging = True

    def _flooding(self, events: int, seconds: float) -> bool:
        """Whether ``events`` from other threads in ``seconds`` are more than a drag makes."""
        return events >= 4 and events >= self.flood_rate * seconds

    async def _pause_for_threads(self, deadline: float) -> None:
        """Stay out of the way while another thread (a subshell) drains a flood.

        That thread needs no loop iterations from us, only the GIL -- and so
        does the host's thread that reads the socket, behind which the user's
        next request waits.  Spinning through checkpoints or starting a run
        on a value already superseded would take the GIL from both; pausing
        lets the flood drain at the host's own speed.  The pause ends when the
        rate falls to what a drag makes (the flood is over: the final value
        runs at once), or at ``deadline``, so a long flood still repaints.
        """
        while self.clock() < deadline:
            start = self.stats["events"]
            began = self.clock()
            await anyio.sleep(self.flood_pause)
            if not self._flooding(self.stats["events"] - start, self.clock() - began):
                return

    async def _settle_round(self, *, dragging: bool) -> None:
        start, foreign = self.stats["events"], self._foreign_events
        quiet = 0
        for _ in range(self.settle_checkpoints):
            before = self.stats["events"]
            await anyio.lowlevel.checkpoint()
            quiet = quiet + 1 if self.stats["events"] == before else 0
            if quiet >= 3:
                break
        on_loop = self.stats["events"] - start > self._foreign_events - foreign
        if (dragging or on_loop) and self.drag_settle > 0:
            # A drag is on.  The browser keeps one update in flight and sends the
            # next only when the previous one's idle arrives -- which a busy kernel
            # publishes only now.  Waiting one round trip for it saves starting a
            # whole run on a value that is already superseded.
            #
            # Not so for updates another thread (a subshell) took: it answered
            # them at once, so every move made during the run is here already,
            # and the wait would only hold up the final value of a drag for a
            # next move that does not come (subshell throttled burst, interleaved
            # A/B: 62 ms with the wait, 45 ms without, interact 48-51 ms).
            arrival = self._wakeup = anyio.Event()
            with anyio.move_on_after(self.drag_settle):
                await arrival.wait()

    async def _step(self) -> float | None:
        """Take events, then run the first runnable cell.  Called under the lock.

        Returns ``_RAN`` when it ran (or skipped) a cell and should be called
        again, ``None`` when there is nothing to do (the batch is closed), or
        a delay when the next cell is throttled or a debounced change is not
        due yet.
        """
        self._absorb()
        if not self._work:
            self._close_batch("ok")
            with self._mutex:
                nd = min((at for _, at in self._sources.values()), default=None)
            return None if nd is None else max(1e-4, nd - self.clock())
        try:
            cid = min(self._work, key=self.graph.order_key)
        except CycleError:
            if self._fail_cycle():
                return _RAN
            cid = self.graph.sort(self._work)[0]  # outside every cycle: run on
        rebind = self._restorers(cid)
        if rebind:
            for w in rebind:
                self._enqueue(w, "restore", f"cell {cid} reads what it wrote, since overwritten")
            return _RAN
        ready_at = max(
            self._last_start.get(cid, float("-inf")) + self._throttle.get(cid, 0.0),
            self._queued_at.get(cid, float("-inf")) + self._cell_debounce.get(cid, 0.0),
        )
        if ready_at > self.clock():
            return max(1e-4, ready_at - self.clock())
        kind, detail = self._work.pop(cid)
        why = RunReason(kind, detail, self._batch_id(), self.graph.refs(cid))
        if (
            kind == "dependency"
            and self.graph.holds(cid)
            and self._inputs_unchanged(cid, why.inputs)
        ):
            self._skip(cid, why)
            return _RAN
        await self._run(cid, why)
        return _RAN

    def _restorers(self, cid: str) -> set[str]:
        """Writers to re-run before ``cid`` so it reads what "run all" gives it.

        A writer may be asked for again once it has run (restoring one writer
        can clobber what another restored), but not while it is still queued;
        a per-batch budget stops a pathological notebook from looping.
        """
        asked = self._rebound.setdefault(cid, {})
        out: set[str] = set()
        for w in self.graph.misbound(cid):
            runs = self.graph.cells[w].run_count
            if asked.get(w) == runs:
                continue  # asked already and it has not run since
            if self._restores >= self.max_restores_per_batch + 4 * len(self.graph):
                log.warning("reactive: restore budget exhausted before cell %s", cid)
                return set()
            asked[w] = runs
            self._restores += 1
            out.add(w)
        if out and self.graph.direction is Direction.IN_ORDER:
            # re-establish, in order, every later write the restored cells clobber
            until = max(self.graph.order_key(c) for c in {cid, *self._work})
            for w in list(out):
                out |= self.graph.rewriters(w, until)
        return out

    def _inputs_unchanged(self, cid: str, inputs: frozenset) -> bool:  # type: ignore[type-arg]
        check = getattr(self.executor, "inputs_unchanged", None)
        if check is None:
            return False
        try:
            return bool(check(self.graph.cells[cid], inputs))
        except Exception:  # when in doubt, run
            log.exception("reactive: inputs_unchanged failed on %s", cid)
            return False

    def _skip(self, cid: str, why: RunReason) -> None:
        record = RunRecord(cid, f"{why} -- inputs unchanged", self.clock(), 0.0, "skipped")
        if self._batch is None:
            self._new_batch([])
        assert self._batch is not None
        self._batch.runs.append(record)
        self.trace.record_run(record)
        self.graph.cells[cid].status = CellStatus.FRESH

    def _absorb(self) -> None:
        """Drain the inbox into the work set; new events start a new batch."""
        due, others, _ = self._drain()
        if not due and not others:
            return
        labels = [f"{ev.source}={_short(ev.value)}" for ev in due]
        labels += [_label(ev) for ev in others]
        self._new_batch(labels)
        for ev in others:
            if isinstance(ev, Interrupt):
                self._interrupt(ev.reason)
            elif isinstance(ev, ConfigChanged):
                ev.apply()
            elif isinstance(ev, CellRan):
                self._propagate(ev.cell_id, ev.result, by="user")
        for ev in due:
            if ev.apply is not None:
                try:
                    ev.apply()
                except Exception as exc:  # a bad value must not stop the runtime
                    log.warning("reactive: could not apply %s: %s", ev.source, exc)
                    continue
            for cid in self.graph.readers_of_source(ev.source):
                self._enqueue(cid, "source", f"reads {ev.source} (now {_short(ev.value)})")

    def _enqueue(self, cid: str, kind: str, detail: str) -> None:
        cell = self.graph.cells.get(cid)
        if cell is None:
            return
        self._work[cid] = (kind, detail)
        self._queued_at[cid] = self.clock()
        cell.status = CellStatus.QUEUED

    # ------------------------------------------------------------ batches
    def _batch_id(self) -> int:
        return self._batch.id if self._batch else 0

    def _new_batch(self, events: list[str]) -> None:
        if self._batch is not None and self._batch.runs:
            self._close_batch("superseded" if self._work else "ok")
        if self._batch is None:
            self._batch_ids += 1
            self.stats["batches"] += 1
            self._batch = BatchTrace(self._batch_ids, self.clock())
        self._batch.events.extend(events)

    def _close_batch(self, outcome: str) -> None:
        self._rebound.clear()
        self._restores = 0
        batch, self._batch = self._batch, None
        if batch is None:
            return
        batch.ended = self.clock()
        if batch.outcome == "running":
            batch.outcome = outcome
        self.trace.add(batch)
        if self.on_batch is not None:
            try:
                self.on_batch(batch)
            except Exception:  # a broken trace printer must not stop the runtime
                log.exception("reactive: trace callback failed")

    # -------------------------------------------------------------- runs
    async def _run(self, cid: str, why: RunReason) -> RunResult:
        cell = self.graph.cells[cid]
        started = self.clock()
        self._last_start[cid] = started
        record = RunRecord(cid, str(why), started)
        if self._batch is None:
            self._new_batch([])
        assert self._batch is not None
        self._batch.runs.append(record)
        cell.status = CellStatus.RUNNING
        self.stats["runs"] += 1
        try:
            result = await self.executor.run(cell, why)
        except KeyboardInterrupt:
            result = RunResult(Outcome.INTERRUPTED, error="KeyboardInterrupt")
        except Exception as exc:  # host bug: contain it, keep serving
            log.exception("reactive: executor failed on cell %s", cid)
            result = RunResult(Outcome.ERROR, error=f"{type(exc).__name__}: {exc}")
        record.duration = self.clock() - started
        record.outcome = result.outcome.value
        self.trace.record_run(record)
        self._propagate(cid, result, by=why.kind)
        return result

    def _propagate(self, cid: str, result: RunResult, *, by: str) -> None:
        """Update statuses and the work set after ``cid`` ran."""
        cell = self.graph.cells.get(cid)
        if cell is None:
            return
        self._work.pop(cid, None)
        if result.sources_read is not None:
            self.graph.set_sources(cid, result.sources_read, result.sources_written)
        if result.outcome is not Outcome.INTERRUPTED:
            self.graph.note_ran(cid)
        cell.run_count += 1
        if result.outcome is Outcome.INTERRUPTED:
            cell.status = CellStatus.STALE
            self._interrupt(f"cell {cid} interrupted", also=(cid,))
            return
        if not result.ok:
            cell.status = CellStatus.ERRORED
            doomed = self.graph.descendants([cid])
            for d in doomed:
                self._work.pop(d, None)
            self.graph.mark_stale(doomed)
            if self._batch is not None:
                self._batch.left_stale.extend(d for d in doomed if d not in self._batch.left_stale)
                self._batch.outcome = "error"
            return
        cell.status = (
            CellStatus.MEMO_HIT if result.outcome is Outcome.MEMO_HIT else CellStatus.FRESH
        )
        label = cell.first_line[:40]
        for child in self.graph.children(cid, result.changed):
            self._enqueue(child, "dependency", f"reads what cell {cid} ({label}) changed")
        for src in result.sources_written:
            for reader in self.graph.readers_of_source(src):
                if reader != cid:
                    self._enqueue(reader, "source", f"cell {cid} set {src}")

    def _interrupt(self, reason: str, *, also: tuple[str, ...] = ()) -> None:
        """Leave queued cells and everything downstream of them stale."""
        left = {*self._work, *also}
        stale = self.graph.sort(left | set(self.graph.descendants(left)))
        self._work.clear()
        self.graph.mark_stale(stale)
        if self._batch is not None:
            self._batch.left_stale.extend(stale)
            self._batch.outcome = "interrupted"
            self._batch.events.append(reason)
        self._close_batch("interrupted")

    def _fail_cycle(self) -> bool:
        """Take queued cells of a cycle, and what they feed, out of the work.

        A cycle has no run order, so its cells are not run reactively: they are
        marked errored and the cycle is named in the trace and the kernel log;
        their descendants are left stale, as after an error.  Every other queued
        cell still runs, in the order the rest of the graph gives (``Graph.sort``).
        Returns whether a queued cell was in a cycle.
        """
        cycles = [c for c in self.graph.cycles() if any(cid in self._work for cid in c)]
        if not cycles:
            return False
        cyclic = {cid for cycle in cycles for cid in cycle}
        doomed = [d for d in self.graph.descendants(cyclic) if d not in cyclic]
        for cid in cyclic:
            if self._work.pop(cid, None) is not None:
                self.graph.cells[cid].status = CellStatus.ERRORED
        for cid in doomed:
            self._work.pop(cid, None)
        self.graph.mark_stale(doomed)
        for cycle in cycles:
            text = str(CycleError(cycle))
            if self._batch is not None:
                self._batch.events.append(text)
            log.warning("reactive: %s (not run reactively)", text)
        if self._batch is not None:
            self._batch.left_stale.extend(d for d in doomed if d not in self._batch.left_stale)
            self._batch.outcome = "error"
        return True

    # ----------------------------------------------------------- the user
    async def user_run(
        self,
        cell_id: str,
        source: str,
        run_self: Callable[[], Awaitable[RunResult]],
        *,
        position: float | None = None,
        upstream: bool = True,
    ) -> RunResult:
        """The user executed ``cell_id``: run stale upstream cells, then the cell.

        Its downstream is queued for the serving loop, so the user's request
        finishes as soon as the cell itself does.  Raises
        :class:`UpstreamFailed` (without running the cell) when an
        out-of-sync upstream cell fails.
        """
        async with _Held(self.lock):
            self._absorb()
            self.graph.upsert(cell_id, source, self._analyze(source), position)
            if upstream and not self.graph.reads_nothing(cell_id):
                # re-planned after every run: restoring one writer can expose
                # another (re-running `a = b = 0` also resets what a later cell set)
                ran: set[str] = set()
                while plan := [c for c in self._upstream_plan(cell_id) if c not in ran]:
                    up = plan[0]
                    ran.add(up)
                    res = await self._run(
                        up, RunReason("upstream", f"cell {cell_id} reads it", self._batch_id())
                    )
                    if not res.ok:
                        self.graph.cells[cell_id].status = CellStatus.STALE
                        if not self._work:  # nothing else to do: the batch is over
                            self._close_batch("error")
                        raise UpstreamFailed(cell_id, up, res.error)
            self._work.pop(cell_id, None)
            self._new_batch([f"run {cell_id}"])
            started = self.clock()
            record = RunRecord(cell_id, "user: executed by the user", started)
            assert self._batch is not None
            self._batch.runs.append(record)
            self.graph.cells[cell_id].status = CellStatus.RUNNING
            try:
                result = await run_self()
            except KeyboardInterrupt:
                result = RunResult(Outcome.INTERRUPTED, error="KeyboardInterrupt")
            record.duration = self.clock() - started
            record.outcome = result.outcome.value
            self.trace.record_run(record)
            self.stats["runs"] += 1
            self._propagate(cell_id, result, by="user")
            if not self._work:
                self._close_batch("ok" if result.ok else "error")
        if self._work or self._others or self._sources:
            self._wake()
        else:
            # nothing for the serving loop to do: waking it would cost the user two
            # loop iterations per execution only for it to find that out itself
            self._progress.set()
            if self.idle:
                self._idle_event.set()
        return result

    def _upstream_plan(self, cell_id: str) -> list[str]:
        """Stale ancestors plus writers whose values were overwritten since."""
        need = set(self.graph.stale_upstream(cell_id))
        frontier = [cell_id, *need]
        seen: set[str] = set()
        while frontier:
            cid = frontier.pop()
            if cid in seen:
                continue
            seen.add(cid)
            for w in self.graph.misbound(cid):
                if w not in need and w != cell_id:
                    need.add(w)
                    frontier.append(w)
        return self.graph.sort(need)

    def _analyze(self, source: str) -> CellAnalysis:
        """Analysis is a pure function of the text: re-running a cell reuses it."""
        hit = self._analyses.get(source)
        if hit is None:
            hit = analyze(source, self.transform)
            if len(self._analyses) >= 4096:
                self._analyses.pop(next(iter(self._analyses)))
            self._analyses[source] = hit
        return hit

    def remove_cell(self, cell_id: str) -> None:
        """The frontend deleted a cell: forget it and stop planning it."""
        self._work.pop(cell_id, None)
        self.graph.remove(cell_id)
        self.trace.forget(cell_id)

    @property
    def pending(self) -> list[str]:
        """Queued cells in run order (for status displays)."""
        return self.graph.sort(self._work)


def _short(value: Any, limit: int = 40) -> str:
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _label(ev: Event) -> str:
    if isinstance(ev, CellRan):
        return f"ran {ev.cell_id}"
    if isinstance(ev, Interrupt):
        return "interrupt"
    if isinstance(ev, ConfigChanged):
        return f"config: {ev.what}"
    return type(ev).__name__
