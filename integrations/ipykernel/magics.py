"""``%reactive``: switch, inspect and tune the runtime from a cell.

Every error is one line naming the valid choices (IPython prints a
``UsageError`` without a traceback).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from traitlets import TraitError

from reactive.config import DIRECTIONS, MODES

if TYPE_CHECKING:
    from .runtime import Runtime

SUBCOMMANDS = (
    "on", "off", "status", "mode", "direction", "debounce", "trace", "explain", "memo",
)  # fmt: skip


@magics_class
class ReactiveMagics(Magics):
    def __init__(self, shell: Any, runtime: Runtime) -> None:
        super().__init__(shell)
        self.runtime = runtime

    @line_magic
    def reactive(self, line: str) -> None:
        """%reactive on|off|status|mode M|direction D|debounce MS [w]|trace [on|off]|explain CELL"""
        words = line.split()
        if not words:
            words = ["status"]
        cmd, args = words[0].lower(), words[1:]
        handler = getattr(self, f"_cmd_{cmd}", None)
        if handler is None:
            raise UsageError(
                f"%reactive: unknown option {cmd!r}; choose one of: {', '.join(SUBCOMMANDS)}"
            )
        handler(args)

    # ------------------------------------------------------------------
    def _set(self, name: str, value: Any) -> None:
        try:
            setattr(self.runtime.config, name, value)
        except TraitError as exc:
            raise UsageError(f"%reactive: {_first_line(exc)}") from None

    def _cmd_on(self, args: list[str]) -> None:
        _no_args("on", args)
        self._set("mode", "reactive")
        print("reactive: on (dependent cells re-run)")

    def _cmd_off(self, args: list[str]) -> None:
        _no_args("off", args)
        self._set("mode", "normal")
        print("reactive: off (plain kernel; %reactive status lists stale cells)")

    def _cmd_mode(self, args: list[str]) -> None:
        if len(args) != 1 or args[0].lower() not in MODES:
            raise UsageError(f"%reactive mode: choose one of: {', '.join(MODES)}")
        self._set("mode", args[0].lower())
        print(f"reactive: mode={self.runtime.config.mode}")

    def _cmd_direction(self, args: list[str]) -> None:
        if len(args) != 1 or args[0].lower() not in DIRECTIONS:
            raise UsageError(f"%reactive direction: choose one of: {', '.join(DIRECTIONS)}")
        self._set("direction", args[0].lower())
        cycles = self.runtime.graph.cycles()
        print(f"reactive: direction={self.runtime.config.direction}")
        for cyc in cycles:
            idx = ", ".join(f"[{self.runtime.index_of(c)}]" for c in cyc)
            print(f"reactive: cycle between cells {idx}: they will not run reactively")

    def _cmd_status(self, args: list[str]) -> None:
        _no_args("status", args)
        print("\n".join(self.runtime.status_lines()))

    def _cmd_debounce(self, args: list[str]) -> None:
        if not args or len(args) > 2:
            raise UsageError("%reactive debounce: usage: %reactive debounce <ms> [widget]")
        try:
            ms = float(args[0])
        except ValueError:
            raise UsageError(
                f"%reactive debounce: {args[0]!r} is not a number of milliseconds (>= 0)"
            ) from None
        if ms != ms or ms < 0:
            raise UsageError(f"%reactive debounce: {args[0]!r} must be >= 0 milliseconds")
        if len(args) == 1:
            self._set("debounce_ms", ms)
            print(f"reactive: debounce {ms:g} ms for every widget")
            return
        name = args[1]
        if name not in self.shell.user_ns:
            raise UsageError(f"%reactive debounce: no variable named {name!r}")
        sources = self.runtime.executor.sources_read(
            [__import__("reactive.paths", fromlist=["SymbolPath"]).SymbolPath(name)]
        )
        if not sources:
            raise UsageError(f"%reactive debounce: {name!r} is not a widget the runtime tracks")
        for src in sources:
            self.runtime.scheduler.set_debounce(ms / 1000, src)
        print(f"reactive: debounce {ms:g} ms for {name}")

    def _cmd_trace(self, args: list[str]) -> None:
        if len(args) > 1 or (args and args[0].lower() not in ("on", "off")):
            raise UsageError("%reactive trace: usage: %reactive trace [on|off]")
        rt = self.runtime
        if not args:
            batches = list(rt.scheduler.trace.batches)[-20:]
            print("\n".join(b.summary() for b in batches) or "reactive: no batches yet")
            return
        on = args[0].lower() == "on"
        self._set("trace", on)
        if on:
            from ipywidgets import Output

            if rt.trace_sink is not None:
                rt.trace_sink.close()
            rt.trace_lines.clear()
            rt.trace_sink = Output()
            from IPython.display import display

            display(rt.trace_sink)
            print("reactive: trace on (one line per batch, shown above)")
        else:
            print("reactive: trace off")

    def _cmd_explain(self, args: list[str]) -> None:
        if len(args) != 1:
            raise UsageError(
                "%reactive explain: usage: %reactive explain <cell number | cell id | variable>"
            )
        from .explain import explain

        print(explain(self.runtime, args[0]))

    def _cmd_memo(self, args: list[str]) -> None:
        from .memo import memo_command

        print(memo_command(self.runtime, args))


def _no_args(cmd: str, args: list[str]) -> None:
    if args:
        raise UsageError(f"%reactive {cmd}: takes no arguments (got {' '.join(args)!r})")


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
