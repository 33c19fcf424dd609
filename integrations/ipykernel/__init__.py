"""The ipykernel host: ``%load_ext reactive`` wires the core into a running kernel."""

from __future__ import annotations

from typing import Any


def load_ipython_extension(ip: Any) -> None:
    from .runtime import Runtime

    Runtime.install(ip)


def unload_ipython_extension(ip: Any) -> None:
    from .runtime import Runtime

    Runtime.uninstall(ip)
