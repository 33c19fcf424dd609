"""The statistics that turn benchmark samples into a verdict (benchmarks/report.py, widgets.py).

A verdict of "met" is a claim in an issue note, so the rule that gives it is tested on
samples whose truth is known.
"""

from __future__ import annotations

import random

import pytest

from benchmarks.report import bootstrap_ratio, mean, median
from benchmarks.widgets import Burst, Comparison


def _uniform(n: int, lo: float, hi: float, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.uniform(lo, hi) for _ in range(n)]


def test_the_interval_covers_the_true_ratio_about_95_times_in_100() -> None:
    # two samples of one distribution: the true ratio of means is 1
    covered = 0
    for seed in range(60):
        a, b = _uniform(80, 30, 65, seed), _uniform(80, 30, 65, 1000 + seed)
        lo, hi = bootstrap_ratio(a, b, mean, resamples=800, seed=seed)
        covered += lo <= 1 <= hi
    assert 51 <= covered <= 60  # 95% nominal; the percentile interval runs a bit narrow


def test_more_repetitions_narrow_the_interval_and_the_mean_beats_the_median() -> None:
    def width(n: int, stat: object) -> float:
        a, b = _uniform(n, 30, 65, 1), _uniform(n, 30, 65, 2)
        lo, hi = bootstrap_ratio(a, b, stat, resamples=1000)  # type: ignore[arg-type]
        return hi - lo

    assert width(300, mean) < width(60, mean) / 1.8
    # for an even spread the median's interval is about sqrt(3) times the mean's
    assert width(300, median) > 1.3 * width(300, mean)


def test_unpaired_or_empty_samples_are_refused() -> None:
    with pytest.raises(ValueError):
        bootstrap_ratio([1.0, 2.0], [1.0], mean)
    with pytest.raises(ValueError):
        bootstrap_ratio([], [], mean)


def _bursts(lags: list[float | None]) -> list[Burst]:
    return [Burst(lag, 15, 15) for lag in lags]


@pytest.mark.parametrize(
    ("scale", "verdict"),
    [
        (0.85, "met: faster"),
        (1.0, "met: no worse"),
        (1.25, "MISSED: slower"),
    ],
)
def test_throttled_verdicts(scale: float, verdict: str) -> None:
    theirs = _uniform(300, 0.030, 0.065, 7)
    rng = random.Random(8)
    # reactive: the same spread, scaled, with its own phase noise (+-1 ms)
    ours = [x * scale + rng.uniform(-0.001, 0.001) for x in theirs]
    got = Comparison.of(_bursts(ours), _bursts(theirs)).throttled_verdict()  # type: ignore[arg-type]
    assert got.startswith(verdict), got


def test_a_wide_interval_is_undecided_not_met() -> None:
    theirs, ours = _uniform(12, 0.030, 0.065, 3), _uniform(12, 0.030, 0.065, 4)
    got = Comparison.of(_bursts(ours), _bursts(theirs)).throttled_verdict()  # type: ignore[arg-type]
    assert got.startswith("UNDECIDED"), got


def test_a_repetition_that_never_became_consistent_is_a_miss() -> None:
    theirs = _uniform(50, 0.030, 0.065, 5)
    ours: list[float | None] = [x * 0.8 for x in theirs]
    ours[10] = None
    cmp = Comparison.of(_bursts(ours), _bursts(theirs))  # type: ignore[arg-type]
    assert cmp.throttled_verdict().startswith("MISSED")
    assert cmp.flood_verdict() == "MISSED"
