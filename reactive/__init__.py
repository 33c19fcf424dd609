"""reactive: a reactive runtime for widget-driven Jupyter dashboards.

The core (this package, minus ``reactive.integrations``) knows nothing of
kernels or widgets; hosts plug in through an executor, sinks and sources.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .api import (
    cells,
    code,
    debounce,
    deps,
    lift,
    reproduce_cell,
    show_graph,
    throttle,
    timestamp,
    users,
)
from .lineage import Timestamp

__all__ = [
    "Timestamp",
    "cells",
    "code",
    "debounce",
    "deps",
    "lift",
    "reproduce_cell",
    "show_graph",
    "throttle",
    "timestamp",
    "users",
]


def load_ipython_extension(ip: object) -> None:
    """``%load_ext reactive``: the kernel adapter lives in ``reactive.integrations``."""
    from .integrations.ipykernel import load_ipython_extension as load

    load(ip)


def unload_ipython_extension(ip: object) -> None:
    from .integrations.ipykernel import unload_ipython_extension as unload

    unload(ip)
