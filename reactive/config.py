"""Every setting in one place, as a traitlets Configurable.

One class means one spelling everywhere: ``c.Reactive.debounce_ms = 150`` in
``ipython_config.py``, ``--Reactive.debounce_ms=150`` on the kernel command
line and ``%reactive debounce 150`` in a cell all set the same trait, and
traitlets validates all three the same way.
"""

from __future__ import annotations

from typing import Any

from traitlets import Bool, CaselessStrEnum, Float, Int, TraitError, Unicode, validate
from traitlets.config import Config, Configurable

MODES = ("reactive", "normal")
DIRECTIONS = ("in_order", "any_order")


class Reactive(Configurable):
    """Settings of the reactive runtime."""

    mode = CaselessStrEnum(
        MODES,
        default_value="reactive",
        help="reactive: re-run dependent cells; normal: plain kernel, graph still kept.",
    ).tag(config=True)

    direction = CaselessStrEnum(
        DIRECTIONS,
        default_value="in_order",
        help="in_order: a read binds to the nearest writer above it; "
        "any_order: to any writer, cycles are errors.",
    ).tag(config=True)

    debounce_ms = Float(
        0.0,
        help="Quiet period (ms) before a widget change is taken. 0 favours latency.",
    ).tag(config=True)

    max_fps = Float(
        30.0,
        help="At most this many repaints per second per cell during a burst (0: no cap).",
    ).tag(config=True)

    trace = Bool(False, help="Print a one-line record of every batch.").tag(config=True)

    upstream = Bool(
        True,
        help="Before a cell the user runs, run the out-of-sync cells above it that it reads.",
    ).tag(config=True)

    memo_max_bytes = Int(512 * 1024 * 1024, help="Byte bound of the in-memory memo cache.").tag(
        config=True
    )

    memo_disk = Bool(False, help="Memoize to disk too (survives kernel restarts).").tag(config=True)

    memo_dir = Unicode("", help="Disk memo directory (default: the platform cache dir).").tag(
        config=True
    )

    stream_interval_ms = Float(
        100.0, help="How often a long-running cell's output is pushed to its cell (ms)."
    ).tag(config=True)

    @validate("debounce_ms", "max_fps", "stream_interval_ms")
    def _non_negative(self, proposal: dict) -> float:  # type: ignore[type-arg]
        value = proposal["value"]
        if value != value or value < 0:
            name = proposal["trait"].name
            raise ValueError(f"{name} must be a number >= 0, got {value!r}")
        return value

    @validate("memo_max_bytes")
    def _positive_bytes(self, proposal: dict) -> int:  # type: ignore[type-arg]
        if proposal["value"] <= 0:
            raise ValueError(f"memo_max_bytes must be > 0, got {proposal['value']!r}")
        return proposal["value"]


def load_settings(parent: Any) -> tuple[Reactive, list[str]]:
    """The settings from ``parent``'s config, with invalid values left at their defaults.

    A typo in ``ipython_config.py`` or on the kernel command line must not
    stop the runtime from loading (IPython would only log the failure where
    nobody looks): each bad value is dropped and described in one line, for
    the runtime to show the user.
    """
    section = dict(getattr(getattr(parent, "config", None), "Reactive", {}) or {})
    errors: list[str] = []
    known = Reactive.class_traits(config=True)
    for name, value in list(section.items()):
        if name not in known:
            errors.append(f"unknown setting Reactive.{name} (valid: {', '.join(sorted(known))})")
            del section[name]
            continue
        try:
            Reactive(config=Config({"Reactive": {name: value}}))
        except (TraitError, ValueError, TypeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            errors.append(f"ignored Reactive.{name}={value!r}: {first}")
            del section[name]
    base = getattr(parent, "config", None)
    config = Config(base) if base is not None else Config()
    config["Reactive"] = Config(section)
    return Reactive(parent=parent, config=config), errors


def settable() -> dict[str, str]:
    """Name -> help of every configurable setting (for ``%reactive`` errors and docs)."""
    return {name: trait.help for name, trait in Reactive.class_traits(config=True).items()}
