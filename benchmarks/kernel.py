"""Kernel benchmarks (issue 3): what a user pays per cell for the reactive kernel.

Everything is measured the way a frontend sees it: the time from sending an
``execute_request`` (with ``metadata.cellId``, as JupyterLab sends it) to receiving its
``execute_reply`` on the shell channel. Baselines run in the same process and the same
minutes, with runs interleaved (the kernel order rotates every round), so machine noise
lands on every column alike and the ratios stay meaningful on a busy 2-core machine:

* per-cell overhead: a plain ipykernel, the same ipykernel after ``%load_ext reactive``,
  and IPyflow (``%flow mode reactive``) when it can be installed into its own cached venv;
* planning cost growth: chains of 10 / 100 / 1,000 dependent cells, then re-executing the
  last cell (re-plans, nothing downstream) and the first one without changing its value
  (fingerprints say the downstream is unaffected), against the same executions in a plain
  ipykernel.

IPyflow's JupyterLab extension, not its kernel, re-executes the cells its kernel marks as
ready; driven headlessly it therefore only pays its tracing and analysis, which is exactly
the per-cell cost compared here.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

from .report import median, pct, table

#: The cells whose per-execution cost is compared (label, source).
CELLS: tuple[tuple[str, str], ...] = (
    ("trivial `x = 1`", "x = 1"),
    ("200k-iteration loop", "s = 0\nfor i in range(200_000):\n    s += i"),
    ("10k-entry dict", "d = {i: str(i) for i in range(10_000)}"),
    ("numpy 100k sum", "import numpy as np\na = np.random.default_rng(0).random(100_000).sum()"),
)
#: Targets from the issue: ratio ceilings per cell label, and the trivial cell's added time.
RATIO_TARGETS = {"200k-iteration loop": 1.05, "10k-entry dict": 1.05}
TRIVIAL_ADDED_TARGET_MS = 2.0

PLAIN_ARGV = ("-m", "ipykernel_launcher", "-f", "{connection_file}")
IPYFLOW_ARGV = ("-m", "ipyflow.kernel", "-f", "{connection_file}")
#: Kept out of git (``benchmarks/.venvs/`` belongs in .gitignore) and reused between runs.
VENVS = Path(__file__).with_name(".venvs")
IPYFLOW_PKGS = ("ipyflow", "numpy")
IPYFLOW_INSTALL_TIMEOUT = 240.0
KERNEL_START_TIMEOUT = 60.0
#: Unmeasured rounds of the chain re-executions (first re-plans fill caches).
CHAIN_WARMUP = 2
#: kernel processes per kind, their samples pooled: two processes of the very same kernel
#: differ by up to ~0.2 ms per request here (where their memory and threads landed), as
#: much as the overhead measured, so one process per kind would measure that instead
PROCESSES = 3
REQUEST_TIMEOUT = 30.0

RUNTIME = "__import__('reactive.integrations.ipykernel.runtime', fromlist=['R']).Runtime.current"


class KernelError(RuntimeError):
    """A kernel failed to start or answered a request with an error."""


class Kernel:
    """One kernel process and a blocking client, driven like a notebook page drives it.

    A context manager so that every exit path, errors and Ctrl-C included, shuts the
    process down: a leaked kernel would keep a core busy and skew every later figure.
    """

    def __init__(self, name: str, python: str, argv: Sequence[str], setup: str = "") -> None:
        self.name = name
        self.argv = [python, *argv]
        self.setup = setup
        self.km: KernelManager | None = None
        self.client: Any = None
        self._tmp = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
        self._log: Any = None

    def __enter__(self) -> Kernel:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self) -> None:
        # A private kernelspec (jupyter_client 8 wants one rather than a raw command), a
        # private IPYTHONDIR so no user profile or startup file runs in one kernel and not
        # in another, and a cwd with no notebook file in it.
        spec_dir = self._tmp / "kernels" / "bench"
        spec_dir.mkdir(parents=True)
        spec = {"argv": self.argv, "display_name": self.name, "language": "python"}
        (spec_dir / "kernel.json").write_text(json.dumps(spec))
        ksm = KernelSpecManager(kernel_dirs=[str(self._tmp / "kernels")])
        km = KernelManager(kernel_name="bench", kernel_spec_manager=ksm)
        km.connection_file = str(self._tmp / "connection.json")
        km.shutdown_wait_time = 5.0
        self.km = km
        env = {k: v for k, v in os.environ.items() if k != "JPY_SESSION_NAME"}
        env.update(IPYTHONDIR=str(self._tmp / "ipython"), PYDEVD_DISABLE_FILE_VALIDATION="1")
        self._log = open(self._tmp / "kernel.log", "wb")  # noqa: SIM115 (closed in close)
        km.start_kernel(env=env, cwd=str(self._tmp), stdout=self._log, stderr=self._log)
        self.client = km.client()
        self.client.start_channels()
        try:
            self.client.wait_for_ready(timeout=KERNEL_START_TIMEOUT)
        except RuntimeError as exc:
            raise KernelError(f"{self.name} did not start: {exc}; {self.log_tail()}") from exc
        if self.setup:
            self.execute(self.setup, "bench-setup")

    def log_tail(self, n: int = 400) -> str:
        """The end of the kernel's stderr: why a start or a request failed."""
        with contextlib.suppress(OSError):
            if self._log is not None:
                self._log.flush()
            return (self._tmp / "kernel.log").read_text(errors="replace")[-n:].strip()
        return ""

    def _request(self, content: dict[str, Any], cell_id: str | None) -> tuple[float, Any]:
        """Send one execute_request; the seconds until its reply, and the reply content.

        Afterwards iopub is drained up to the request's ``idle`` (not timed) so the next
        request starts on a quiet kernel and no backlog builds up in the client.
        """
        session, shell = self.client.session, self.client.shell_channel
        msg = session.msg("execute_request", content)
        if cell_id is not None:
            msg["metadata"] = {"cellId": cell_id, "deletedCells": [], "recordTiming": False}
        msg_id = msg["header"]["msg_id"]
        deadline = time.monotonic() + REQUEST_TIMEOUT
        t0 = time.perf_counter()
        shell.send(msg)
        while True:
            try:
                reply = shell.get_msg(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise KernelError(f"{self.name}: no reply to {content['code']!r}") from None
            if reply["parent_header"].get("msg_id") == msg_id:
                elapsed = time.perf_counter() - t0
                break
        while True:
            try:
                out = self.client.iopub_channel.get_msg(
                    timeout=max(0.0, deadline - time.monotonic())
                )
            except queue.Empty:
                raise KernelError(f"{self.name}: no idle after {content['code']!r}") from None
            if (
                out["msg_type"] == "status"
                and out["content"].get("execution_state") == "idle"
                and out["parent_header"].get("msg_id") == msg_id
            ):
                break
        return elapsed, reply["content"]

    def execute(self, code: str, cell_id: str) -> float:
        """Execute ``code`` as cell ``cell_id``; seconds to the reply. Errors raise."""
        content = {
            "code": code,
            "silent": False,
            "store_history": True,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": True,
        }
        elapsed, reply = self._request(content, cell_id)
        if reply.get("status") != "ok":
            raise KernelError(
                f"{self.name}: {code!r} -> {reply.get('status')} "
                f"{reply.get('ename')}: {reply.get('evalue')}"
            )
        return elapsed

    def probe(self, expr: str) -> str:
        """``repr`` of ``expr`` in the kernel, asked silently (like an inspector)."""
        content = {
            "code": "",
            "silent": True,
            "store_history": False,
            "user_expressions": {"v": expr},
            "allow_stdin": False,
            "stop_on_error": False,
        }
        _, reply = self._request(content, None)
        value = reply["user_expressions"]["v"]
        if value.get("status") != "ok":
            raise KernelError(f"{self.name}: {expr!r} -> {value.get('evalue')}")
        return str(value["data"]["text/plain"])

    def close(self) -> None:
        """Stop channels and process (politely, then by force); idempotent."""
        if self.client is not None:
            with contextlib.suppress(Exception):
                self.client.stop_channels()
            self.client = None
        if self.km is not None:
            try:
                self.km.shutdown_kernel(now=False)
            except Exception:
                with contextlib.suppress(Exception):
                    self.km.shutdown_kernel(now=True)
            self.km = None
        if self._log is not None:
            self._log.close()
            self._log = None
        shutil.rmtree(self._tmp, ignore_errors=True)


# --------------------------------------------------------------------------- IPyflow


def ipyflow_python(log: Callable[[str], None]) -> tuple[str | None, str]:
    """A python with ipyflow and numpy installed in its own cached venv, or why not.

    ipyflow patches IPython heavily, so it must never share the project's venv. The venv is
    built once (pip takes about half a minute) and marked complete by a stamp file written
    last, so an interrupted install is rebuilt rather than trusted.
    """
    venv = VENVS / "ipyflow"
    python = venv / "bin" / "python"
    stamp = venv / ".bench-ok"
    if stamp.exists() and python.exists():
        return str(python), stamp.read_text().strip()
    shutil.rmtree(venv, ignore_errors=True)
    log(f"building {venv} (pip install ipyflow numpy; cached for later runs)")
    deadline = time.monotonic() + IPYFLOW_INSTALL_TIMEOUT
    steps = (
        [sys.executable, "-m", "venv", str(venv)],
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *IPYFLOW_PKGS],
    )
    try:
        for cmd in steps:
            done = subprocess.run(
                cmd,
                capture_output=True,
                text=True,
                timeout=max(1.0, deadline - time.monotonic()),
                check=False,
            )
            if done.returncode != 0:
                tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["?"]
                return None, f"`{' '.join(cmd[-3:])}` failed: {tail[0][:200]}"
        version = subprocess.run(
            [str(python), "-c", "import importlib.metadata as m; print(m.version('ipyflow'))"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout.strip()
    except subprocess.TimeoutExpired:
        return None, f"installing ipyflow took over {IPYFLOW_INSTALL_TIMEOUT:.0f} s"
    except (OSError, subprocess.CalledProcessError) as exc:
        return None, f"installing ipyflow failed: {exc}"
    stamp.write_text(version)
    return str(python), version


# --------------------------------------------------------------------------- measuring


def _fmt(seconds: float) -> str:
    ms = seconds * 1e3
    return f"{ms:.1f} ms" if ms >= 10 else f"{ms:.2f} ms"


def _stat(samples: Sequence[float]) -> str:
    return f"{_fmt(median(samples))} ({_fmt(pct(samples, 0.95))})"


def _load() -> str:
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except OSError:
        return "?"


def _code_state() -> str:
    """Which code was measured: the commit, plus runtime files edited but not committed."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "reactive", "integrations"],
            cwd=root,
            capture_output=True,
            text=True,
        ).stdout.split("\n")
    except OSError:
        return "unknown commit"
    edited = sorted(line[3:] for line in dirty if line.strip())
    extra = f" plus uncommitted edits to {', '.join(edited)}" if edited else ""
    return f"commit {head or '?'}{extra}"


def _rounds(kernels: Sequence[Kernel], runs: int) -> Iterator[list[Kernel]]:
    """Kernel order per round, rotated so no kernel always goes first (or after another)."""
    for r in range(runs):
        k = r % len(kernels)
        yield [*kernels[k:], *kernels[:k]]


def per_cell(
    kernels: Sequence[Kernel], runs: int, warmup: int, optional: frozenset[str] = frozenset()
) -> tuple[dict[str, dict[str, list[float]]], dict[str, str]]:
    """Seconds to reply per kernel and cell (``samples[kernel.name][label]``), and failures.

    A kernel named in ``optional`` that fails is dropped with the reason instead of failing
    the suite: a third-party kernel must not cost us our own figures.
    """
    samples: dict[str, dict[str, list[float]]] = {k.name: {} for k in kernels}
    failed: dict[str, str] = {}
    live = list(kernels)

    def execute(k: Kernel, label: str, code: str) -> float | None:
        try:
            return k.execute(code, f"cell-{label}")
        except KernelError as exc:
            if k.name not in optional:
                raise
            failed[k.name] = str(exc)[:200]
            live[:] = [other for other in live if other.name != k.name]
            samples.pop(k.name, None)
            return None

    for k in kernels:
        for label, code in CELLS:
            for _ in range(warmup):
                if k in live:
                    execute(k, label, code)
    for r in range(runs):
        for label, code in CELLS:
            shift = r % len(live)
            for k in [*live[shift:], *live[:shift]]:
                if k not in live:  # its twin process failed in this round
                    continue
                t = execute(k, label, code)
                if t is not None:
                    samples[k.name].setdefault(label, []).append(t)
    return samples, failed


def per_cell_table(
    samples: dict[str, dict[str, list[float]]], ipyflow_note: str, runs: int
) -> tuple[str, list[str]]:
    """The per-cell table, plus the verdict lines against the issue's targets."""
    plain, ours = samples["plain"], samples["reactive"]
    flow = samples.get("ipyflow")
    header = ["cell", "plain ipykernel", "reactive", "reactive / plain", "added"]
    if flow:
        header += ["IPyflow", "IPyflow / plain"]
    rows: list[list[object]] = []
    verdicts: list[str] = []
    for label, _ in CELLS:
        base, mine = median(plain[label]), median(ours[label])
        row: list[object] = [
            label,
            _stat(plain[label]),
            _stat(ours[label]),
            f"{mine / base:.2f}x",
            f"{(mine - base) * 1e3:+.2f} ms",
        ]
        if flow:
            row += [_stat(flow[label]), f"{median(flow[label]) / base:.2f}x"]
        rows.append(row)
        if label in RATIO_TARGETS:
            ok = mine / base <= RATIO_TARGETS[label]
            verdicts.append(
                f"{label}: {mine / base:.2f}x vs target <= {RATIO_TARGETS[label]:.2f}x "
                f"-> {'met' if ok else 'MISSED'}"
            )
        if label == CELLS[0][0]:
            added = (mine - base) * 1e3
            ok = added < TRIVIAL_ADDED_TARGET_MS
            verdicts.append(
                f"trivial cell: +{added:.2f} ms vs target < {TRIVIAL_ADDED_TARGET_MS:g} ms "
                f"-> {'met' if ok else 'MISSED'}"
            )
    text = table(header, rows)
    notes = [
        f"Per cell: median (p95) of {runs * PROCESSES} interleaved runs per kernel kind "
        f"({runs} in each of {PROCESSES} processes, pooled), time from sending "
        "`execute_request` to its `execute_reply`, after warm-up runs.",
        *verdicts,
        ipyflow_note,
    ]
    return text, notes


def chain(size: int, reps: int, log: Callable[[str], None]) -> tuple[list[list[object]], list[str]]:
    """Rows for one chain size: build, re-run last, re-run first (same value) twice.

    Fresh kernels per size, so "a notebook of N cells" holds exactly those N cells.
    """
    rows: list[list[object]] = []
    notes: list[str] = []
    with contextlib.ExitStack() as stack:
        plain = stack.enter_context(Kernel("plain", sys.executable, PLAIN_ARGV))
        ours = stack.enter_context(
            Kernel("reactive", sys.executable, PLAIN_ARGV, setup="%load_ext reactive")
        )
        kernels = (plain, ours)
        build: dict[str, list[float]] = {k.name: [] for k in kernels}
        t0 = time.monotonic()
        for i in range(size):
            code = "v0 = 0" if i == 0 else f"v{i} = v{i - 1} + 1"
            for k in kernels:
                build[k.name].append(k.execute(code, f"v{i}"))
        log(f"chain {size}: built in {time.monotonic() - t0:.1f} s")
        runs_before = int(ours.probe(f"{RUNTIME}.scheduler.stats['runs']"))
        last = (f"v{size - 1} = v{size - 2} + 1", f"v{size - 1}")
        cases: list[tuple[str, Callable[[int], tuple[str, str]]]] = [
            ("re-execute last cell (re-plan, nothing downstream)", lambda r: last),
            ("re-execute first cell, same source `v0 = 0`", lambda r: ("v0 = 0", "v0")),
            (
                "re-execute first cell, edited to `v0 = k - k` (value kept)",
                lambda r: (f"v0 = {r + 1} - {r + 1}", "v0"),
            ),
        ]
        measured: dict[str, dict[str, list[float]]] = {k.name: {} for k in kernels}
        executions = 0
        for r, order in enumerate(_rounds(kernels, CHAIN_WARMUP + reps)):
            for label, make in cases:
                code, cid = make(r)
                for k in order:
                    t = k.execute(code, cid)
                    if r >= CHAIN_WARMUP:
                        measured[k.name].setdefault(label, []).append(t)
                executions += 1
        reran = int(ours.probe(f"{RUNTIME}.scheduler.stats['runs']")) - runs_before - executions
        for k in kernels:
            got = k.probe(f"v{size - 1}")
            if got != str(size - 1):
                raise KernelError(f"{k.name}: chain end v{size - 1} = {got}, want {size - 1}")
        notes.append(f"{size}-cell chain: {reran} downstream re-runs during the re-executions")
    all_rows = [("first execution of each cell (median over the chain)", build)] + [
        (label, {k: measured[k][label] for k in measured}) for label, _ in cases
    ]
    for label, data in all_rows:
        base, mine = median(data["plain"]), median(data["reactive"])
        rows.append(
            [
                f"{size:,}",
                label,
                _stat(data["plain"]),
                _stat(data["reactive"]),
                f"{mine / base:.2f}x",
                f"{(mine - base) * 1e3:+.2f} ms",
            ]
        )
    return rows, notes


def run(quick: bool = False) -> str:
    """Both tables as markdown; IPyflow is best effort and never fails the suite."""

    def log(text: str) -> None:
        print(f"[kernel] {text}", file=sys.stderr, flush=True)

    started = time.monotonic()
    runs, warmup = (5, 1) if quick else (40, 3)
    sizes, reps = ((10, 100), 5) if quick else ((10, 100, 1000), 40)
    load_before = _load()

    ipyflow_note = "IPyflow: skipped (--quick)."
    flow_python: str | None = None
    if not quick:
        flow_python, detail = ipyflow_python(log)
        if flow_python is None:
            ipyflow_note = f"IPyflow: not measured: {detail}."
        else:
            ipyflow_note = (
                f"IPyflow {detail} (own venv, `%flow mode reactive`): its kernel computes "
                "which cells are ready but leaves re-executing them to its JupyterLab "
                "extension, so this column is its per-cell tracing and analysis cost."
            )

    with contextlib.ExitStack() as stack:
        kernels: list[Kernel] = []
        for _ in range(PROCESSES):
            kernels.append(stack.enter_context(Kernel("plain", sys.executable, PLAIN_ARGV)))
            kernels.append(
                stack.enter_context(
                    Kernel("reactive", sys.executable, PLAIN_ARGV, setup="%load_ext reactive")
                )
            )
        if flow_python is not None:
            try:
                for _ in range(PROCESSES):
                    kernels.append(
                        stack.enter_context(
                            Kernel(
                                "ipyflow", flow_python, IPYFLOW_ARGV, setup="%flow mode reactive"
                            )
                        )
                    )
            except (KernelError, RuntimeError, OSError, queue.Empty) as exc:
                kernels = [k for k in kernels if k.name != "ipyflow"]
                ipyflow_note = f"IPyflow: kernel did not start: {str(exc)[:200]}."
        log(
            f"kernels up ({', '.join(k.name for k in kernels)}); "
            f"{runs} runs per cell and process"
        )
        samples, failed = per_cell(kernels, runs, warmup, optional=frozenset({"ipyflow"}))
        if "ipyflow" in failed:
            ipyflow_note = f"IPyflow: failed during the runs: {failed['ipyflow']}."
    cell_table, cell_notes = per_cell_table(samples, ipyflow_note, runs)
    log(f"per-cell done at {time.monotonic() - started:.0f} s")

    chain_rows: list[list[object]] = []
    chain_notes: list[str] = []
    for size in sizes:
        rows, notes = chain(size, reps, log)
        chain_rows += rows
        chain_notes += notes
    log(f"chains done at {time.monotonic() - started:.0f} s")
    chain_table = table(
        ["chain", "execution", "plain ipykernel", "reactive", "reactive / plain", "added"],
        chain_rows,
    )
    return "\n".join(
        [
            "### Per-cell overhead (issue 3)",
            "",
            cell_table,
            "",
            *(f"* {n}" for n in cell_notes),
            "",
            "### Planning cost growth: dependency chains `v{i} = v{i-1} + 1`",
            "",
            chain_table,
            "",
            f"* Median (p95) of {reps} interleaved re-executions; the first-execution row is "
            "the median over the chain's cells, each run once in order.",
            *(f"* {n}" for n in chain_notes),
            f"* Code measured: {_code_state()}.",
            f"* Whole suite: {time.monotonic() - started:.0f} s; load average (1 min) "
            f"{load_before} at the start, {_load()} at the end (other work on the machine "
            "shows up in the p95 columns).",
        ]
    )
