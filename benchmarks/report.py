"""Tables and the benchmarks README: each suite owns one dated section."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import random
import re
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path

README = Path(__file__).with_name("README.md")
HEADER = """# Benchmarks

Run with `./run bench` (all suites) or `./run bench core`. Every figure is a
median (p95 where given) over repeated runs on the machine named in its
section, with a baseline measured in the same run so ratios stay meaningful
on a noisy machine; where a ratio is close to its target, the section gives
a bootstrap confidence interval and judges by it (widgets: throttled bursts).
Sections are rewritten by the suite that owns them.
"""


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def write_section(name: str, body: str) -> None:
    text = README.read_text() if README.exists() else HEADER
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    section = (
        f"<!-- {name}:start -->\n## {name}\n\n_{stamp} on {machine()}_\n\n"
        f"{body}\n<!-- {name}:end -->"
    )
    pattern = re.compile(rf"<!-- {name}:start -->.*?<!-- {name}:end -->", re.S)
    text = (
        pattern.sub(lambda _: section, text)
        if pattern.search(text)
        else text.rstrip() + "\n\n" + section + "\n"
    )
    README.write_text(text)


#: bootstrap resamples behind every interval the suites report
RESAMPLES = 4000


def mean(values: Sequence[float]) -> float:
    return statistics.fmean(values)


def bootstrap_ratio(
    num: Sequence[float],
    den: Sequence[float],
    stat: Callable[[Sequence[float]], float],
    *,
    resamples: int = RESAMPLES,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile interval of ``stat(num) / stat(den)``, resampling repetitions in pairs.

    ``num[i]`` and ``den[i]`` come from the same repetition (the same input, measured
    back to back), so they are drawn together.  A ratio of two noisy medians can swing
    by 10% between runs of identical code; the interval says how far to trust it.
    """
    if len(num) != len(den) or not num:
        raise ValueError("bootstrap_ratio needs two equally long, non-empty samples")
    rng = random.Random(seed)
    n, ratios = len(num), []
    for _ in range(resamples):
        idx = [rng.randrange(n) for _ in range(n)]
        ratios.append(stat([num[i] for i in idx]) / stat([den[i] for i in idx]))
    ratios.sort()
    tail = (1 - level) / 2
    return ratios[int(tail * resamples)], ratios[min(resamples - 1, int((1 - tail) * resamples))]
