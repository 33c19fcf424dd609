"""Soak (issue 8): random slider moves for ten minutes on a real reactive kernel.

Three widgets and eight cells that read them in overlapping ways (a dict read by key, a
name rewritten by a later cell, a function that reads a widget, an unrelated cell). Moves
come in random bursts -- raw floods, moves paced like a browser (next one after the last
one's ``idle``), several widgets interleaved -- over JupyterLab's default routing (comms on
a subshell) and over the main shell. After every burst the kernel is left to go quiet, and
then the run-all invariant is checked: every cell shows exactly what a fresh plain kernel
running the notebook top to bottom with the same widget values shows. At every quiet point
the kernel's RSS, asyncio task count and thread count are sampled; after a warm-up they must
stay within a bound (a leak grows without one).

``python -m benchmarks soak`` runs 10 minutes; ``--quick`` runs 30 s and writes nothing.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.kernel.harness import Notebook

from .report import table

DURATION = 600.0
QUICK_DURATION = 30.0
#: after this many quiet points the samples are the baseline for the growth bounds
WARMUP = 5
RSS_BOUND_MB = 50.0
TASK_BOUND = 3
THREAD_BOUND = 2
COLORS = ("red", "green", "blue")

WIDGET_CELLS = (
    ("wa", "a = W.IntSlider(value={a}, max=100); a"),
    ("wb", "b = W.IntSlider(value={b}, max=100); b"),
    ("wc", "c = W.Dropdown(options={colors}, value={c!r}); c"),
)
CELLS = (
    ("c1", "base = a.value * 10\nprint('base', base)"),
    ("c2", "cfg = {'scale': b.value, 'name': c.value}\nprint('cfg', cfg)"),
    ("c3", "x = base + cfg['scale']\nprint('x', x)"),
    ("c4", "x = x * 2\nprint('doubled', x)"),
    ("c5", "label = f\"{cfg['name']}:{x}\"\nprint(label)"),
    ("c6", "def shifted(v):\n    return v + a.value\n\nprint('shifted', shifted(b.value))"),
    ("c7", "print('name only', cfg['name'].upper())"),
    ("c8", "import math\nprint('unrelated', round(math.pi, 3))"),
)
RUNTIME = "__import__('reactive.integrations.ipykernel.runtime', fromlist=['R']).Runtime.current"
QUIET = f"{RUNTIME}.scheduler.idle and not {RUNTIME}.executor.busy"
SAMPLE = (
    "__import__('json').dumps([len(__import__('asyncio').all_tasks()), "
    "__import__('threading').active_count(), "
    f"{RUNTIME}.scheduler.stats['runs'], {RUNTIME}.scheduler.stats['events']])"
)


@dataclass
class Soak:
    """One soak run's state and figures."""

    seed: int = 8
    values: dict[str, Any] = field(default_factory=lambda: {"a": 3, "b": 4, "c": "red"})
    samples: list[dict[str, float]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    bursts: int = 0
    updates: int = 0
    checks: int = 0
    check_seconds: list[float] = field(default_factory=list)


def _rss_mb(nb: Notebook) -> float:
    assert nb.km is not None
    pid = nb.km.provisioner.process.pid  # type: ignore[union-attr]
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _probe(nb: Notebook, expr: str) -> str:
    reply = nb.request(
        "execute_request",
        {
            "code": "",
            "silent": True,
            "store_history": False,
            "user_expressions": {"v": expr},
            "allow_stdin": False,
            "stop_on_error": False,
        },
    )
    data = reply["user_expressions"]["v"]
    if data.get("status") != "ok":
        raise RuntimeError(f"probe {expr!r} failed: {data}")
    # everything the kernel published before answering reaches us before this idle
    nb.wait_idle(reply.msg_id, timeout=30)
    return str(data["data"]["text/plain"])


def _widget_sources(values: dict[str, Any]) -> list[tuple[str, str]]:
    return [(cid, src.format(colors=list(COLORS), **values)) for cid, src in WIDGET_CELLS]


def _visible(nb: Notebook) -> dict[str, str]:
    return {cid: nb.text(cid) for cid, _ in (*WIDGET_CELLS, *CELLS)}


def _reference(ref: Notebook, values: dict[str, Any]) -> dict[str, str]:
    """A fresh plain kernel runs the notebook top to bottom with these widget values."""
    assert ref.km is not None
    ref.km.restart_kernel(now=True)
    ref._wait_ready()
    ref.execute("setup", "import ipywidgets as W")
    for cid, src in (*_widget_sources(values), *CELLS):
        reply = ref.execute(cid, src, timeout=60)
        if reply.get("status") != "ok":
            raise RuntimeError(f"reference cell {cid} failed: {dict(reply)}")
    return _visible(ref)


def _wait_quiet(nb: Notebook, sent: list[str]) -> None:
    for mid in sent[-50:]:  # ipykernel answers in order per shell: the tail suffices
        nb.wait_idle(mid, timeout=120)
    deadline = time.monotonic() + 120
    while _probe(nb, QUIET) != "True":
        if time.monotonic() > deadline:
            raise TimeoutError("the reactive kernel never went quiet")


def _burst(nb: Notebook, rng: random.Random, comms: dict[str, str], soak: Soak) -> list[str]:
    """One random burst of moves; returns the msg_ids sent."""
    kind = rng.choice(["flood", "paced", "interleaved", "single"])
    route = rng.choice([None, None, ""])  # mostly JupyterLab's subshell, sometimes main
    names = list(comms) if kind == "interleaved" else [rng.choice(list(comms))]
    count = {"flood": rng.randint(20, 400), "paced": rng.randint(2, 25), "single": 1}.get(
        kind, rng.randint(10, 120)
    )
    sent = []
    for i in range(count):
        name = names[i % len(names)]
        if name == "c":
            index = rng.randrange(len(COLORS))
            state: dict[str, Any] = {"index": index}
            soak.values["c"] = COLORS[index]
        else:
            soak.values[name] = rng.randint(0, 100)
            state = {"value": soak.values[name]}
        mid = nb.send_widget_update(comms[name], state, subshell_id=route)
        sent.append(mid)
        if kind == "paced":
            nb.wait_idle(mid, timeout=60)
    soak.bursts += 1
    soak.updates += count
    return sent


def _sample(nb: Notebook, soak: Soak, started: float) -> None:
    tasks, threads, runs, events = json.loads(_probe(nb, SAMPLE).strip("'"))
    soak.samples.append(
        {
            "t": time.monotonic() - started,
            "rss": _rss_mb(nb),
            "tasks": tasks,
            "threads": threads,
            "runs": runs,
            "events": events,
        }
    )


def soak(duration: float, seed: int = 8) -> Soak:
    state = Soak(seed=seed)
    rng = random.Random(seed)
    nb = Notebook(comms_over_subshells=True).start()
    ref = Notebook().start()
    try:
        nb.execute("setup", "%load_ext reactive\nimport ipywidgets as W")
        for cid, src in (*_widget_sources(state.values), *CELLS):
            nb.execute(cid, src, timeout=60)
        models = ("IntSliderModel", "IntSliderModel", "DropdownModel")
        comms = {
            name: nb.find_widget(model, cell_id=cid)[0]
            for name, model, (cid, _) in zip("abc", models, WIDGET_CELLS, strict=True)
        }
        started = time.monotonic()
        while time.monotonic() - started < duration:
            sent = _burst(nb, rng, comms, state)
            _wait_quiet(nb, sent)
            _sample(nb, state, started)
            t0 = time.monotonic()
            expected = _reference(ref, state.values)
            state.check_seconds.append(time.monotonic() - t0)
            state.checks += 1
            seen = _visible(nb)
            wrong = {c: (seen[c], expected[c]) for c in expected if seen[c] != expected[c]}
            if wrong:
                state.failures.append(f"after burst {state.bursts} {state.values}: {wrong}")
    finally:
        nb.shutdown()
        ref.shutdown()
    return state


def _bounds(state: Soak) -> list[str]:
    """Growth beyond the bounds after warm-up, as messages (empty when within)."""
    if len(state.samples) <= WARMUP:
        return []
    base = state.samples[WARMUP - 1]
    later = state.samples[WARMUP:]
    out = []
    rss = max(s["rss"] for s in later) - base["rss"]
    if rss > RSS_BOUND_MB:
        out.append(f"RSS grew {rss:.1f} MB (bound {RSS_BOUND_MB:g})")
    tasks = max(s["tasks"] for s in later) - base["tasks"]
    if tasks > TASK_BOUND:
        out.append(f"asyncio tasks grew by {tasks:g} (bound {TASK_BOUND})")
    threads = max(s["threads"] for s in later) - base["threads"]
    if threads > THREAD_BOUND:
        out.append(f"threads grew by {threads:g} (bound {THREAD_BOUND})")
    return out


def run(*, quick: bool = False) -> str:
    duration = QUICK_DURATION if quick else DURATION
    state = soak(duration)
    s = state.samples
    base = s[min(WARMUP, len(s)) - 1]
    last = s[-1]
    problems = _bounds(state) + state.failures
    rows = [
        ("duration", f"{last['t']:.0f} s"),
        ("bursts / widget updates", f"{state.bursts} / {state.updates}"),
        (
            "reactive runs / events seen by the scheduler",
            f"{last['runs']:.0f} / {last['events']:.0f}",
        ),
        (
            "quiet points checked against a fresh plain kernel (run all)",
            f"{state.checks}, {len(state.failures)} differed",
        ),
        (
            "kernel RSS: after warm-up / end / max",
            f"{base['rss']:.1f} / {last['rss']:.1f} / {max(x['rss'] for x in s):.1f} MB",
        ),
        (
            "asyncio tasks: after warm-up / end / max",
            f"{base['tasks']:.0f} / {last['tasks']:.0f} / {max(x['tasks'] for x in s):.0f}",
        ),
        (
            "threads: after warm-up / end / max",
            f"{base['threads']:.0f} / {last['threads']:.0f} / {max(x['threads'] for x in s):.0f}",
        ),
        (
            "bounds after warm-up",
            f"RSS +{RSS_BOUND_MB:g} MB, tasks +{TASK_BOUND}, threads +{THREAD_BOUND}",
        ),
        ("result", "PASS" if not problems else "FAIL: " + "; ".join(problems)[:500]),
    ]
    body = (
        "3 widgets (2 sliders, a dropdown), 8 cells; random bursts (floods of up to 400 "
        "updates, browser-paced moves, interleaved widgets), mostly over a subshell "
        f"(JupyterLab's default), seed {state.seed}. Each quiet point is compared cell by "
        "cell with a freshly restarted plain ipykernel running the notebook top to bottom "
        "with the same widget values.\n\n" + table(("figure", "value"), rows)
    )
    if problems:
        raise AssertionError(body)
    return body
