"""Issue 8 on a real kernel: floods, faults, cycles, restarts and hostile input.

A dashboard kernel lives long and faces a browser that can send anything. Every test here
drives real ipykernels over the Jupyter protocol the way JupyterLab does (``harness.py``)
and judges what a user would see. Timings are read from the kernel's own message stamps
(``header.date``), so a busy test process cannot blur one kernel's numbers more than the
other's. The memo cache's part of issue 8 lives in ``tests/*/test_memo.py``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq
from jupyter_client.manager import KernelManager

from tests.kernel.harness import Entry, Notebook
from tests.kernel.test_reactive_kernel import probe, runs, wait_text

pytestmark = pytest.mark.kernel

FLOOD = 20_000
RUNTIME = "__import__('reactive.integrations.ipykernel.runtime', fromlist=['R']).Runtime.current"
TASKS = "sum(t.get_name() == 'reactive-scheduler' for t in __import__('asyncio').all_tasks())"
THREADS = "sorted(t.name for t in __import__('threading').enumerate())"


@pytest.fixture(autouse=True)
def lossless_iopub(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let the harness's iopub socket queue without limit.

    zmq drops iopub messages past 1,000 queued per subscriber; under a 20,000-message
    flood the test process falls that far behind now and then, and a dropped ``idle``
    or slot update would read as a kernel fault. JupyterLab's server has the same limit,
    but a test must see everything the kernel sent.
    """
    original = KernelManager.connect_iopub

    def connect_iopub(self: KernelManager, identity: bytes | None = None) -> Any:
        self.context.setsockopt(zmq.RCVHWM, 0)
        return original(self, identity)

    monkeypatch.setattr(KernelManager, "connect_iopub", connect_iopub)


def kernel_pid(nb: Notebook) -> int:
    assert nb.km is not None
    return int(nb.km.provisioner.process.pid)  # type: ignore[union-attr]


def rss_mb(pid: int) -> float:
    """Resident memory of a process, from ``/proc/<pid>/status``."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def stamp(entry: Entry) -> float:
    """When the kernel sent a message (its ``header.date``), in epoch seconds."""
    date = entry.msg["header"]["date"]
    if isinstance(date, str):
        date = dt.datetime.fromisoformat(date.replace("Z", "+00:00"))
    return float(date.timestamp())


def status_of(nb: Notebook, msg_id: str, state: str) -> Entry:
    for e in nb.entries("status", parent_id=msg_id):
        if e.content.get("execution_state") == state:
            return e
    raise AssertionError(f"no {state} status for {msg_id}")


def last_idle(nb: Notebook, sent: list[str]) -> Entry:
    """The ``idle`` of the last update, or of the last one that still has its ``idle``.

    A kernel's IOPub PUB socket queues 1,000 messages per subscriber and drops the rest
    (plain ipykernel alike, and so for JupyterLab's server): under a 20,000-update flood
    a run of idles can be lost, now and then the very last one.
    """
    with contextlib.suppress(TimeoutError):
        nb.wait_idle(sent[-1], timeout=10)
    idles = {
        e.parent_id: e for e in nb.entries("status") if e.content.get("execution_state") == "idle"
    }
    for mid in reversed(sent):
        if mid in idles:
            return idles[mid]
    raise AssertionError("no update of the flood has an idle")


# -- floods -------------------------------------------------------------------------------


def _flood_kernel(nb: Notebook, reactive: bool) -> str:
    nb.execute("setup", ("%load_ext reactive\n" if reactive else "") + "import ipywidgets as W")
    nb.execute("s", f"s = W.IntSlider(max={10 * FLOOD}); s")
    nb.execute("dep", "print('v', s.value)")
    comm = nb.find_widget("IntSliderModel", cell_id="s")[0]
    nb.send_widget_updates_throttled(comm, [1, 2, 3])  # warm: imports, first runs
    if reactive:
        wait_text(nb, "dep", "v 3\n")
    nb.drain(quiet=0.3)
    return comm


def test_a_flood_drains_as_fast_as_plain_ipykernel_and_ends_on_the_last_value(
    notebook_factory: Callable[..., Notebook],
) -> None:
    """20,000 slider updates as fast as the client sends them, plain and reactive side by side.

    Both kernels get the same flood at the same time (messages interleaved), so machine
    load hits both alike; then ``1+1`` goes to each. Drain time is the kernel's own stamp
    of the last update's ``idle`` minus that of the first update's ``busy``.
    """
    plain, reactive = notebook_factory(), notebook_factory()
    kernels = {"plain": (plain, _flood_kernel(plain, False)), "reactive": (reactive, None)}
    kernels["reactive"] = (reactive, _flood_kernel(reactive, True))
    rss_before = rss_mb(kernel_pid(reactive))
    results: dict[str, list[dict[str, float]]] = {"plain": [], "reactive": []}
    base = 1000
    for _attempt in range(2):
        sent: dict[str, list[str]] = {name: [] for name in kernels}
        for i, v in enumerate(range(base, base + FLOOD)):
            for name in kernels if i % 2 else reversed(kernels):  # neither always goes first
                nb, comm = kernels[name]
                sent[name].append(nb.send_widget_update(comm, {"value": v}))
        sent_wall = time.time()
        ones = {
            name: nb.execute("one", "1+1", wait=False).msg_id for name, (nb, _) in kernels.items()
        }
        for name, (nb, _) in kernels.items():
            # the reply comes on the shell channel, which never drops; the main shell takes
            # ``1+1`` up only after every update sent before it
            nb.wait_reply(ones[name], timeout=240)
            assert nb._replies[ones[name]].content["status"] == "ok"
            drain = stamp(last_idle(nb, sent[name])) - stamp(status_of(nb, sent[name][0], "busy"))
            answered = stamp(nb._replies[ones[name]]) - sent_wall
            results[name].append({"drain": drain, "one": answered})
        last = base + FLOOD - 1
        wait_text(reactive, "dep", f"v {last}\n", timeout=30)
        base += FLOOD
        speed = results["plain"][-1]["drain"] / results["reactive"][-1]["drain"]
        late = results["reactive"][-1]["one"] - results["plain"][-1]["one"]
        # one more flood only to rule out a load spike that hit the reactive kernel
        # alone (each flood takes 20-60 s on two cores; two fit the CI budget)
        if speed >= 0.9 and late <= 1.0:
            break
    grown = rss_mb(kernel_pid(reactive)) - rss_before
    report = json.dumps(results, indent=1)
    print(f"flood figures: {report}\nreactive RSS growth {grown:.1f} MB")
    assert speed >= 0.9, f"reactive drained at {speed:.2f}x plain ipykernel: {report}"
    assert late <= 1.0, f"1+1 answered {late:.2f}s later than plain: {report}"
    assert grown < 50, f"kernel memory grew {grown:.1f} MB"
    counts = runs(reactive)
    assert counts.get("dep", 0) < FLOOD // 20, counts  # coalesced, not one run per update


def _flood_with_probes(nb: Notebook, comm: str, values: range) -> tuple[list[str], list[str]]:
    """Send ``values`` as one raw flood, with a ``1+1`` after every 2,000 updates.

    Returns the updates' and the probes' message ids once the main shell has run the last
    probe: the kernel has then taken in the whole flood, and its subshell drains it.
    """
    sent: list[str] = []
    probes: list[str] = []
    for i, v in enumerate(values):
        sent.append(nb.send_widget_update(comm, {"value": v}))
        if i % 2000 == 1999:
            probes.append(nb.execute(f"mid{i}", "1+1", wait=False).msg_id)
    last = probes[-1]
    # its idle, or its reply where iopub dropped the idle (the kernel's PUB socket queues
    # 1,000 messages per subscriber; plain ipykernel too)
    nb.wait_for(lambda: last in nb._idle or last in nb._replies, timeout=120, what="last probe")
    return sent, probes


def _started(nb: Notebook, msg_ids: list[str]) -> list[float | None]:
    """When the kernel started each request: its ``execute_input`` stamp.

    The kernel's own stamp, not the reply's arrival: the page shows the request's output
    and ``idle`` from iopub as soon as it ran, while the reply goes back through
    ipykernel's shell channel thread, which under a flood holds replies for seconds --
    plain ipykernel alike (the execute_input of the first probe at 3 s, its reply at 13 s).
    None where iopub dropped the stamp (the kernel's PUB socket queues 1,000 messages).
    """
    started = [nb.entries("execute_input", parent_id=mid) for mid in msg_ids]
    return [stamp(e[0]) if e else None for e in started]


def _taken_up(nb: Notebook, msg_ids: list[str], started: list[float | None]) -> list[float | None]:
    """How long after it was sent the kernel started each request."""
    wall = time.time() - time.monotonic()  # the harness stamps sends on the monotonic clock
    return [
        None if t is None else t - (nb.sent_at(mid) + wall)
        for mid, t in zip(msg_ids, started, strict=True)
    ]


def _handled(nb: Notebook, msg_ids: list[str], started: list[float | None]) -> list[float]:
    """From the main shell starting each request to its reply: the kernel's own stamps."""
    return [
        stamp(nb._replies[mid]) - t
        for mid, t in zip(msg_ids, started, strict=True)
        if t is not None
    ]


def _one_plus_one_while_draining(nb: Notebook, sent: list[str]) -> list[float]:
    """``1+1`` again and again while the subshell drains the flood; each one's wait."""
    latencies: list[float] = []
    for k in range(400):
        if sent[-1] in nb._idle:
            break
        mid = nb.execute(f"one{k}", "1+1", wait=False).msg_id
        nb.wait_reply(mid, timeout=30, idle=True)
        latencies.append(nb._replies[mid].t - nb.sent_at(mid))
        assert nb.text(f"one{k}") == "2\n"
    return latencies


def test_with_comms_on_a_subshell_the_main_shell_answers_within_a_second_during_a_flood(
    notebook_factory: Callable[..., Notebook],
) -> None:
    """JupyterLab's default: widget comms on a subshell, execute requests on the main shell.

    All shell messages share one socket, and ipykernel's shell channel thread hands them to
    the subshells in order, so a ``1+1`` sent in the middle of 20,000 queued updates waits
    for the kernel to take in the updates before it -- plain ipykernel alike: that is the
    transport, not the runtime. So ``1+1`` goes to the kernel every 2,000 updates and is
    taken up no later than on plain ipykernel (+1 s on average); each is answered within a
    second of the main shell taking it up (the kernel's own stamps), and so is every
    ``1+1`` sent once the kernel holds the whole flood, while it still drains.

    Each flood goes to a fresh kernel alone, plain first, shut down before the reactive
    one starts. Flooding both at once made this a race of two kernels and the sender for
    two cores, which swung the difference by +-4 s between runs of the same code.
    """
    values = range(1000, 1000 + FLOOD)
    waits: dict[str, list[float | None]] = {}
    handled: dict[str, list[float]] = {}
    for kind in ("plain", "reactive"):
        nb = notebook_factory(comms_over_subshells=True)
        if not nb.supports_subshells:
            pytest.skip("this ipykernel has no subshells")
        comm = _flood_kernel(nb, kind == "reactive")
        rss_before = rss_mb(kernel_pid(nb))
        sent, probes = _flood_with_probes(nb, comm, values)
        if kind == "reactive":
            latencies = _one_plus_one_while_draining(nb, sent)
            # the last value shown, not the last idle: IOPub may drop idles under this flood
            wait_text(nb, "dep", f"v {values[-1]}\n", timeout=180)
            grown = rss_mb(kernel_pid(nb)) - rss_before
        for mid in probes:
            nb.wait_reply(mid, timeout=120)  # the reply only: iopub may drop the idle
        started = _started(nb, probes)
        waits[kind] = _taken_up(nb, probes, started)
        handled[kind] = _handled(nb, probes, started)
        nb.shutdown(now=True)  # gone, not still draining beside the next kernel
    print(
        f"1+1 every 2,000 updates, taken up after: {json.dumps(waits)}; "
        f"handled in: {json.dumps(handled)}; while the subshell drains: "
        f"{[round(x, 3) for x in latencies]}; RSS +{grown:.1f} MB"
    )
    # probe by probe (the later ones wait longer), where iopub kept both stamps
    pairs = [
        (r, p)
        for r, p in zip(waits["reactive"], waits["plain"], strict=True)
        if r is not None and p is not None
    ]
    assert len(pairs) >= 5, waits
    late = sum(r - p for r, p in pairs) / len(pairs)
    assert late <= 1.0, waits
    # within a second, as the issue asks -- and in practice far less (plain: 10-20 ms);
    # 0.25 s catches the IOPub backlog that made it 0.3-0.8 s (IOPUB_CATCH_UP)
    assert len(handled["reactive"]) >= 5 and max(handled["reactive"]) < 0.25, handled
    assert max(latencies, default=0.0) < 1.0, latencies
    assert grown < 50, f"kernel memory grew {grown:.1f} MB"


# -- faults in user code ----------------------------------------------------------------------

FAULT_CELL = """\
import sys, time
v = s.value
if v == 1:
    raise ValueError('boom')
if v == 2:
    raise SystemExit(3)
if v == 3:
    print('sleeping', flush=True)
    time.sleep(600)
if v == 4:
    print('spinning', flush=True)
    while True:
        pass
if v == 5:
    for _ in range(100_000):
        print('x' * 99)
if v == 6:
    def deep(n):
        return deep(n + 1)
    deep(0)
w = v * 10
"""

#: slider value -> (what the faulting cell shows, whether it needs the interrupt button)
FAULTS = {
    1: ("ValueError: boom", False),
    2: ("SystemExit: 3", False),
    3: ("KeyboardInterrupt", True),
    4: ("KeyboardInterrupt", True),
    6: ("RecursionError", False),
}


@pytest.fixture
def fault_nb(notebook_factory: Callable[..., Notebook]) -> Iterator[tuple[Notebook, str]]:
    nb = notebook_factory()
    nb.execute("setup", "%load_ext reactive\nimport ipywidgets as W")
    nb.execute("s", "s = W.IntSlider(value=0, max=100); s")
    nb.execute("f", FAULT_CELL)
    nb.execute("d", "print('w', w)")
    nb.execute("u", "print('unrelated')")
    assert nb.text("d") == "w 0\n"
    yield nb, nb.find_widget("IntSliderModel", cell_id="s")[0]


def test_every_fault_in_a_reactive_batch_is_survived(fault_nb: tuple[Notebook, str]) -> None:
    """Exceptions, SystemExit, an interrupt mid-batch (sleeping, and a loop that never
    returns), a recursion error: each shows in its cell, the dependent cell is marked
    stale by ``%reactive status``, and the next slider move is served."""
    nb, comm = fault_nb
    for good, (value, (shown, interrupt)) in enumerate(FAULTS.items(), start=11):
        nb.send_widget_update(comm, {"value": value})
        if interrupt:
            started = "sleeping" if value == 3 else "spinning"
            nb.wait_for(lambda s=started: s in nb.text("f"), timeout=20, what=started)
            nb.interrupt()
        nb.wait_for(lambda s=shown: s in nb.text("f"), timeout=30, what=shown)
        assert nb.text("d") == f"w {10 * (good - 1) if good > 11 else 0}\n"
        nb.execute("st", "%reactive status")
        status = nb.text("st")
        assert "print('w', w)" in status and "stale" in status, (value, status)
        nb.send_widget_update(comm, {"value": good})
        wait_text(nb, "d", f"w {10 * good}\n", timeout=30)
        assert shown not in nb.text("f")
    assert probe(nb, f"str({TASKS})") == "1"
    assert runs(nb).get("u", 0) == 0
    reply = nb.execute("ok", "print(1 + 1)")
    assert reply["status"] == "ok" and nb.text("ok") == "2\n"


def test_a_cell_that_prints_10_mb_updates_its_cell_and_the_next_event_is_served(
    fault_nb: tuple[Notebook, str],
) -> None:
    nb, comm = fault_nb
    rss_before = rss_mb(kernel_pid(nb))
    nb.send_widget_update(comm, {"value": 5})
    wait_text(nb, "d", "w 50\n", timeout=120)
    text = nb.text("f")
    assert len(text) == 100_000 * 100, len(text)
    nb.send_widget_update(comm, {"value": 7})
    wait_text(nb, "d", "w 70\n", timeout=30)
    wait_text(nb, "f", "", timeout=30)
    grown = rss_mb(kernel_pid(nb)) - rss_before
    print(f"RSS after a 10 MB output: +{grown:.1f} MB")
    assert grown < 200, f"kernel kept {grown:.1f} MB after the 10 MB output was replaced"


# -- cycles and self-reference ----------------------------------------------------------------


def test_any_order_cycle_is_named_and_not_run_while_other_cells_keep_running(
    notebook_factory: Callable[..., Notebook],
) -> None:
    nb = notebook_factory()
    nb.execute("setup", "%load_ext reactive\nimport ipywidgets as W\na = b = 0")
    nb.execute("s", "s = W.IntSlider(value=0, max=100); s")
    nb.execute("ca", "a = b + s.value")
    nb.execute("cb", "b = a + 1")
    nb.execute("ind", "print('independent', s.value)")
    nb.execute("fed", "print('fed', a)")
    nb.execute("dir", "%reactive direction any_order")
    text = nb.text("dir")
    assert "cycle between cells" in text and "will not run reactively" in text, text
    before = runs(nb)
    comm = nb.find_widget("IntSliderModel", cell_id="s")[0]
    for v in range(1, 51):
        nb.send_widget_update(comm, {"value": v})
    wait_text(nb, "ind", "independent 50\n")
    nb.drain(quiet=0.3)
    after = runs(nb)
    assert after.get("ca", 0) == before.get("ca", 0) and after.get("cb", 0) == before.get("cb", 0)
    assert after.get("fed", 0) == before.get("fed", 0)
    assert "dependency cycle between cells" in nb.kernel_log()
    nb.execute("st", "%reactive status")
    assert "a = b + s.value" in nb.text("st") and "print('fed', a)" in nb.text("st")
    reply = nb.execute("ca", "a = b + s.value")  # by hand it runs, once
    assert reply["status"] == "ok"
    assert nb.execute("ok", "print(1 + 1)")["status"] == "ok" and nb.text("ok") == "2\n"


def test_self_reference_never_loops_and_stays_run_all(
    notebook_factory: Callable[..., Notebook],
) -> None:
    nb = notebook_factory()
    nb.execute("setup", "%load_ext reactive\nimport ipywidgets as W")
    nb.execute("s", "s = W.IntSlider(value=0, max=100); s")
    nb.execute("x0", "x = s.value")
    nb.execute("inc", "x = x + 1")
    nb.execute("show", "print('x', x)")
    comm = nb.find_widget("IntSliderModel", cell_id="s")[0]
    nb.send_widget_update(comm, {"value": 10})
    wait_text(nb, "show", "x 11\n")
    for _ in range(3):  # by hand again: its input is re-established first, nothing loops
        nb.execute("inc", "x = x + 1")
        wait_text(nb, "show", "x 11\n")
    nb.drain(quiet=0.3)
    assert probe(nb, "x") == 11
    assert probe(nb, f"len({RUNTIME}.scheduler.pending)") == 0


# -- restart ------------------------------------------------------------------------------


def _threads_and_tasks(nb: Notebook) -> tuple[list[str], int]:
    names = probe(nb, f"str({THREADS})")
    tasks = probe(nb, f"str({TASKS})")
    assert isinstance(names, str) and isinstance(tasks, str)
    return [str(n) for n in json.loads(names.replace("'", '"'))], int(tasks)


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "\nState:\tZ" in status.read_text()


#: the runtime's one thread (integrations/ipykernel/timers.py), ended on unload
TIMER_THREAD = "reactive-timers"


def test_restart_leaves_no_process_task_or_thread_behind(
    notebook_factory: Callable[..., Notebook],
) -> None:
    nb = notebook_factory(comms_over_subshells=True)
    fresh_threads, fresh_tasks = _threads_and_tasks(nb)
    assert fresh_tasks == 0
    comm = _flood_kernel(nb, True)
    nb.send_widget_updates_flood(comm, range(100, 1100))
    wait_text(nb, "dep", "v 1099\n")
    old = kernel_pid(nb)
    assert nb.km is not None
    nb.km.restart_kernel(now=False)
    nb._wait_ready()
    nb._comm_subshells.clear()  # as JupyterLab does: a new kernel gets new comm subshells
    assert kernel_pid(nb) != old
    deadline = time.monotonic() + 10
    while not _gone(old) and time.monotonic() < deadline:
        time.sleep(0.05)  # the OS reaps the old process; nothing to wait on but its pid
    assert _gone(old), f"the old kernel process {old} is still running"
    threads, tasks = _threads_and_tasks(nb)
    assert tasks == 0 and threads == fresh_threads, (threads, fresh_threads)
    nb.execute("setup2", "%load_ext reactive")
    threads, tasks = _threads_and_tasks(nb)
    assert tasks == 1 and threads == fresh_threads, (threads, fresh_threads)
    nb.execute("s2", "import ipywidgets as W\ns = W.IntSlider(); s")
    nb.execute("dep2", "print('again', s.value)")
    comm = nb.find_widget("IntSliderModel", cell_id="s2")[0]
    nb.send_widget_updates_flood(comm, range(1, 60))
    wait_text(nb, "dep2", "again 59\n")
    threads, tasks = _threads_and_tasks(nb)
    extra = [t for t in threads if t not in fresh_threads and t != TIMER_THREAD]
    # only the comm subshell the page just created (one thread per subshell, ipykernel's)
    assert tasks == 1 and len(extra) <= 1 and all(t.startswith("subshell") for t in extra), extra


def test_reloading_the_extension_again_and_again_leaves_no_leftovers(
    notebook_factory: Callable[..., Notebook],
) -> None:
    """Each load/unload runs work (reactive runs that stream into their slots); afterwards
    exactly one scheduler task, no new threads, and ipykernel's per-thread IOPub pipes are
    not piling up (a run's finished streaming timer used to leak one per run)."""
    nb = notebook_factory()
    nb.execute("setup", "import ipywidgets as W")
    base_threads, _ = _threads_and_tasks(nb)
    for k in range(5):
        nb.execute("load", "%load_ext reactive")
        nb.execute(f"s{k}", "s = W.IntSlider(); s")
        nb.execute(f"d{k}", "print('v', s.value)")
        comm = nb.find_widget("IntSliderModel", cell_id=f"s{k}")[0]
        nb.send_widget_updates_throttled(comm, range(1, 21))
        wait_text(nb, f"d{k}", "v 20\n")
        threads, tasks = _threads_and_tasks(nb)
        # while loaded: the one timer thread (trailing pushes), never one per run
        ours = [t for t in threads if t != TIMER_THREAD]
        assert tasks == 1 and ours == base_threads, (k, threads)
        nb.execute("unload", "%unload_ext reactive")
        threads, tasks = _threads_and_tasks(nb)
        assert tasks == 0 and threads == base_threads, (k, threads)
    pipes = probe(nb, "len(get_ipython().kernel.iopub_thread._event_pipes)")
    assert isinstance(pipes, int) and pipes < 10, pipes
    patched = (
        "sorted(k for k in ('dispatch_shell', 'set_parent', 'do_execute')"
        " if k in vars(get_ipython().kernel))"
    )
    assert probe(nb, patched) == []


def test_run_all_under_widget_traffic_gives_every_cell_its_output_and_its_idle(
    notebook_factory: Callable[..., Notebook],
) -> None:
    """"Run All" of async cells while the page sends widget updates on the main shell.

    ipykernel 7 dispatches those updates concurrently and afterwards puts back the parent
    it saw; when a queued cell started meanwhile, that cell's output and ``idle`` went out
    under the previous cell (its prompt stays ``[*]``).  Plain ipykernel 7 loses 5-8 of
    these 30 idles; the runtime must lose none and put every output in its own cell.
    """
    nb = notebook_factory()
    nb.execute("setup", "%load_ext reactive\nimport asyncio\nimport ipywidgets as W")
    nb.execute("u", "u = W.IntSlider(max=10_000); u")  # a widget no cell reads
    nb.execute("s", "s = W.IntSlider(max=10_000); s")
    nb.execute("dep", "print('s is', s.value)")
    unread = nb.find_widget("IntSliderModel", cell_id="u")[0]
    read = nb.find_widget("IntSliderModel", cell_id="s")[0]
    sent = []
    v = 0
    for i in range(30):
        code = f"for _ in range(5):\n    await asyncio.sleep(0)\nprint('cell {i}')"
        sent.append(nb.execute(f"c{i}", code, wait=False).msg_id)
        for comm in (unread, unread, read):
            v += 1
            nb.send_widget_update(comm, {"value": v}, subshell_id="")
    missing = []
    for i, mid in enumerate(sent):
        try:
            nb.wait_reply(mid, timeout=10, idle=True)
        except TimeoutError:
            missing.append(i)
    assert missing == [], f"cells left running ([*]): {missing}"
    assert [nb.text(f"c{i}") for i in range(30)] == [f"cell {i}\n" for i in range(30)]
    wait_text(nb, "dep", f"s is {v}\n")
    assert nb.in_no_cell() == []


# -- security: strings from the frontend are data, never code ------------------------------


def test_strings_from_the_frontend_are_never_evaluated(
    notebook_factory: Callable[..., Notebook], tmp_path: Path
) -> None:
    """Code-looking strings through every path the runtime reads from the frontend.

    Each payload would create its own marker file if anything evaluated it as Python,
    as an IPython line (``!``/``%``), or formatted it into code. A positive control
    shows the payloads do create their marker when a cell really runs them.
    """
    made: list[Path] = []

    def payloads(tag: str) -> list[str]:
        out = []
        for i, form in enumerate(
            [
                "__import__('os').system('touch {m}')",
                "open('{m}', 'w').write('pwned')",
                "!touch {m}",
                "%system touch {m}",
                "{{__import__('os').system('touch {m}')}}",
                "'); __import__('os').system('touch {m}'); ('",
            ]
        ):
            marker = tmp_path / f"{tag}-{i}"
            made.append(marker)
            out.append(form.format(m=marker))
        return out

    notebook = tmp_path / "evil.ipynb"
    cells = [
        {"cell_type": "code", "id": p, "source": p, "metadata": {}, "outputs": []}
        for p in payloads("nbfile")
    ]
    notebook.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4}))
    nb = notebook_factory(env={"JPY_SESSION_NAME": str(notebook)}, cwd=tmp_path)
    nb.execute("setup", "%load_ext reactive\nimport ipywidgets as W")
    nb.execute("t", "t = W.Text(); t")
    nb.execute("dd", "dd = W.Dropdown(options=['a', 'b']); dd")
    nb.execute("read", "got = t.value\nprint('got', len(got), dd.value)")
    nb.execute("echo", "print(repr(got)[:20])")
    text = nb.find_widget("TextModel", cell_id="t")[0]
    drop = nb.find_widget("DropdownModel", cell_id="dd")[0]

    # widget state: values, unknown and private traits, an index that is a string
    for p in payloads("value"):
        nb.send_widget_update(text, {"value": p})
        wait_text(nb, "read", f"got {len(p)} a\n")
    for key, p in zip(
        ["description", "placeholder", "_model_name", "__class__", "no_such_trait", "layout"],
        payloads("trait"),
        strict=True,
    ):
        nb.wait_idle(nb.send_widget_update(text, {key: p}), timeout=20)
    for p in payloads("index"):
        nb.wait_idle(nb.send_widget_update(drop, {"index": p}), timeout=20)
    # raw comm messages: custom content, unknown methods, buffer paths, unknown comms
    for p in payloads("comm"):
        for data in (
            {"method": "custom", "content": {"event": p}},
            {"method": p, "state": {"value": p}},
            {"method": "update", "state": {"value": p}, "buffer_paths": [[p]]},
            {"method": "request_state"},
        ):
            nb.wait_idle(nb._send_shell("comm_msg", {"comm_id": text, "data": data}), timeout=20)
        nb.wait_idle(nb._send_shell("comm_msg", {"comm_id": p, "data": {"method": "update"}}))
        nb.wait_idle(
            nb._send_shell(
                "comm_open",
                {"comm_id": p, "target_name": p, "data": {"state": {"value": p}}},
            )
        )
    # execute_request metadata: cell ids, deleted cells, mercury requests, tags
    for i, p in enumerate(payloads("meta")):
        nb.delete_cell(f"gone{i}")
        nb._deleted_cells.append(p)
        nb.execute(p, f"meta_{i} = {i}")
        nb.execute(
            f"merc{i}",
            "print('mercury asked')",
            cell_metadata={"mercury": {"kind": "cell", "cell_id": p}, "tags": [p]},
        )
    nb.execute("st", "%reactive status")
    nb.execute("ex", "%reactive explain got")
    nb.drain(quiet=0.5)
    assert nb.execute("alive", "print('alive')")["status"] == "ok"
    fired = [str(m) for m in made if m.exists()]
    assert fired == [], f"frontend strings were executed: {fired}"

    # positive control: the same payload run as code does make its marker
    control = tmp_path / "control"
    nb.execute("control", f"__import__('os').system('touch {control}')")
    nb.wait_for(control.exists, timeout=10, what="the control payload ran")
