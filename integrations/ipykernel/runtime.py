"""STUB: the runtime that lives in a kernel (being written)."""

from __future__ import annotations

from typing import Any


class Runtime:
    @classmethod
    def install(cls, ip: Any) -> None:
        ip.user_ns.setdefault("__reactive_loaded__", True)

    @classmethod
    def uninstall(cls, ip: Any) -> None:
        ip.user_ns.pop("__reactive_loaded__", None)
