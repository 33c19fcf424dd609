"""``%%memoize [--quiet|--verbose] [--disk]``: skip a slow cell on inputs it has seen.

The inputs are what the dependency graph says the cell reads (its refs,
function bodies included), resolved in the namespace: ``s.value`` is just the
slider's current value, and a widget passed whole stands for its state.  The
key is the normalised body plus each input's content fingerprint
(``reactive.memo``).  On a hit the body does not run: its defs come back as
fresh copies and its outputs are shown again:

* default: only the final expression's display (``Out[n]``), as IPyflow does;
* ``--verbose``: everything the run showed, in order -- stdout, stderr,
  ``display()``, inline figures and the final expression -- plus a one-line
  note on stderr when the run cannot be memoized (an input that cannot be
  fingerprinted, a def that cannot be copied);
* ``--quiet``: nothing.

A miss always runs the body normally and shows everything, live.  The body is
run here (compiled and exec'd in the user namespace, like ``%%time``) inside
a recorder that tees what it shows to whatever captures the cell -- the
runtime's slot capture, or ipykernel itself -- so the replay list is exactly
the outputs the run produced.  Top-level ``await`` is not supported in a
memoized body.

``--disk`` (or ``c.Reactive.memo_disk = True``) also keeps entries on disk in
a private, HMAC-verified store (``c.Reactive.memo_dir``, default the platform
cache dir); ``c.Reactive.memo_max_bytes`` bounds memory and disk each.
"""

from __future__ import annotations

import ast
import contextlib
import sys
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, magics_class

from reactive.memo import (
    MISSING,
    Entry,
    MemoCache,
    Unpicklable,
    build_key,
    ends_with_semicolon,
    normalise_source,
    pack_values,
    unpack_values,
)
from reactive.paths import Attr, Item, SymbolPath

if TYPE_CHECKING:
    from .runtime import Runtime

Output = dict[str, Any]
MODES = ("default", "quiet", "verbose")
_REPLAYED = {
    "quiet": frozenset(),
    "default": frozenset({"execute_result"}),
    "verbose": frozenset({"stream", "display_data", "execute_result"}),
}


# ---------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------

_MISSING = object()


def resolve(ns: dict[str, Any], path: SymbolPath) -> Any:
    """The value at ``path`` in ``ns``, or ``_MISSING`` (a failing step counts as missing)."""
    value = ns.get(path.root, _MISSING)
    for step in path.steps:
        if value is _MISSING:
            break
        try:
            value = getattr(value, step.name) if isinstance(step, Attr) else value[step.key]
        except Exception:
            value = _MISSING
    return value


def _widget_state(value: Any, seen: frozenset[int] = frozenset()) -> Any:
    """A widget as plain data: its class and every trait, nested widgets expanded.

    A cell that was handed a widget may read any of its traits, so all of them
    are part of the key (a model id would change across kernels).
    """
    from ipywidgets import Widget

    if isinstance(value, Widget):
        if id(value) in seen:
            return ("widget-cycle",)
        seen = seen | {id(value)}
        state = []
        for name in sorted(value.keys):
            if name.startswith("_") and name not in ("_model_name", "_model_module"):
                continue
            with contextlib.suppress(Exception):
                state.append((name, _widget_state(getattr(value, name), seen)))
        return ("widget", type(value).__module__, type(value).__qualname__, tuple(state))
    if isinstance(value, (list, tuple)):
        return type(value)(_widget_state(v, seen) for v in value)
    if isinstance(value, dict):
        return {k: _widget_state(v, seen) for k, v in value.items()}
    return value


def _input_value(value: Any) -> Any:
    if "ipywidgets" in sys.modules:
        from ipywidgets import Widget

        if isinstance(value, Widget):
            return _widget_state(value)
    return value


def _outermost(paths: Iterable[SymbolPath]) -> list[SymbolPath]:
    """Paths not covered by a shorter one in the set (restoring ``d`` restores ``d['a']``)."""
    ps = sorted(set(paths), key=lambda p: (len(p.steps), str(p)))
    out: list[SymbolPath] = []
    for p in ps:
        if not any(q.is_prefix_of(p) for q in out):
            out.append(p)
    return out


def _assign(ns: dict[str, Any], path: SymbolPath, value: Any) -> bool:
    """Put ``value`` at ``path``; False when its parent object is not there."""
    if not path.steps:
        if value is MISSING:
            ns.pop(path.root, None)
        else:
            ns[path.root] = value
        return True
    parent_path = SymbolPath(path.root, path.steps[:-1])
    parent = resolve(ns, parent_path)
    if parent is _MISSING:
        return False
    step = path.steps[-1]
    try:
        if isinstance(step, Attr):
            if value is MISSING:
                delattr(parent, step.name)
            else:
                setattr(parent, step.name, value)
        elif isinstance(step, Item):
            if value is MISSING:
                del parent[step.key]
            else:
                parent[step.key] = value
    except Exception:
        return False
    return True


# ---------------------------------------------------------------------------
# Recording and replaying outputs
# ---------------------------------------------------------------------------


def _jsonable(data: dict[str, Any]) -> dict[str, Any]:
    try:
        from ipykernel.jsonutil import encode_images, json_clean

        return json_clean(encode_images(data))
    except Exception:
        return data


class _Tee:
    """``sys.stdout``/``sys.stderr`` during a memoized run: record, then pass on."""

    def __init__(self, rec: _Recorder, name: str, target: Any) -> None:
        self._rec, self._name, self._target = rec, name, target

    def write(self, text: str) -> int:
        if threading.get_ident() == self._rec.thread and isinstance(text, str):
            self._rec.add_stream(self._name, text)
        return self._target.write(text)

    def flush(self) -> None:
        self._target.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)


class _Recorder:
    """Records what a body shows as nbformat outputs while letting it through unchanged."""

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.outputs: list[Output] = []
        self.thread = threading.get_ident()
        self._clear_pending = False
        self._saved: dict[str, Any] = {}

    def _take(self, out: Output) -> None:
        if self._clear_pending:
            self.outputs.clear()
            self._clear_pending = False
        self.outputs.append(out)

    def add_stream(self, name: str, text: str) -> None:
        if not text:
            return
        last = self.outputs[-1] if self.outputs and not self._clear_pending else None
        if last is not None and last["output_type"] == "stream" and last["name"] == name:
            last["text"] += text
            return
        self._take({"output_type": "stream", "name": name, "text": text})

    def add_display(self, data: Any, metadata: Any, transient: Any, update: bool) -> None:
        out: Output = {
            "output_type": "display_data",
            "data": _jsonable(dict(data or {})),
            "metadata": _jsonable(dict(metadata or {})),
        }
        display_id = (transient or {}).get("display_id")
        if display_id:
            out["transient"] = {"display_id": display_id}
        if update:
            for i, old in enumerate(self.outputs):
                if (old.get("transient") or {}).get("display_id") == display_id:
                    self.outputs[i] = {**out, "output_type": old["output_type"]}
            return
        self._take(out)

    def add_result(self, data: dict[str, Any], metadata: dict[str, Any]) -> None:
        self._take(
            {
                "output_type": "execute_result",
                "data": _jsonable(data),
                "metadata": _jsonable(metadata),
            }
        )

    def clear(self, wait: bool) -> None:
        if wait:
            self._clear_pending = True
        else:
            self.outputs.clear()

    def __enter__(self) -> _Recorder:
        shell, rec = self.shell, self
        self.thread = threading.get_ident()
        pub = shell.display_pub
        self._saved = {
            "stdout": sys.stdout,
            "stderr": sys.stderr,
            "publish": pub.__dict__.get("publish"),
            "clear_output": pub.__dict__.get("clear_output"),
        }
        sys.stdout = _Tee(self, "stdout", sys.stdout)
        sys.stderr = _Tee(self, "stderr", sys.stderr)
        prev_publish, prev_clear = pub.publish, pub.clear_output

        def publish(data: Any, metadata: Any = None, *args: Any, **kwargs: Any) -> Any:
            if threading.get_ident() == rec.thread:
                rec.add_display(data, metadata, kwargs.get("transient"), bool(kwargs.get("update")))
            return prev_publish(data, metadata, *args, **kwargs)

        def clear_output(wait: bool = False) -> Any:
            if threading.get_ident() == rec.thread:
                rec.clear(wait)
            return prev_clear(wait)

        pub.publish = publish
        pub.clear_output = clear_output
        return self

    def __exit__(self, *exc: object) -> None:
        pub = self.shell.display_pub
        sys.stdout, sys.stderr = self._saved["stdout"], self._saved["stderr"]
        for name in ("publish", "clear_output"):
            if self._saved[name] is None:
                pub.__dict__.pop(name, None)
            else:
                setattr(pub, name, self._saved[name])
        if self._clear_pending:
            self.outputs.clear()


def show_result(shell: Any, data: dict[str, Any], metadata: dict[str, Any]) -> None:
    """Emit an ``execute_result`` through the display hook (so it is ``Out[n]``)."""
    hook = shell.displayhook
    hook.start_displayhook()
    hook.write_output_prompt()
    hook.write_format_data(data, metadata)
    hook.finish_displayhook()


def replay(shell: Any, outputs: Iterable[Output], mode: str) -> None:
    """Show recorded outputs again, those ``mode`` replays, in their original order."""
    kinds = _REPLAYED[mode]
    for out in outputs:
        kind = out.get("output_type")
        if kind not in kinds:
            continue
        if kind == "stream":
            stream = sys.stderr if out.get("name") == "stderr" else sys.stdout
            stream.write(out.get("text", ""))
            stream.flush()
        elif kind == "display_data":
            kwargs: dict[str, Any] = {}
            if out.get("transient"):
                kwargs["transient"] = dict(out["transient"])
            shell.display_pub.publish(dict(out["data"]), dict(out.get("metadata") or {}), **kwargs)
        elif kind == "execute_result":
            show_result(shell, dict(out["data"]), dict(out.get("metadata") or {}))


# ---------------------------------------------------------------------------
# The magic
# ---------------------------------------------------------------------------


def _parse(line: str) -> tuple[str, bool]:
    mode, disk = "default", False
    for word in line.split():
        if word in ("--quiet", "-q"):
            mode = "quiet" if mode == "default" else "conflict"
        elif word in ("--verbose", "-v"):
            mode = "verbose" if mode == "default" else "conflict"
        elif word == "--disk":
            disk = True
        else:
            raise UsageError(
                f"%%memoize: unknown option {word!r}; choose from: --quiet, --verbose, --disk"
            )
        if mode == "conflict":
            raise UsageError("%%memoize: give at most one of --quiet, --verbose")
    return mode, disk


@magics_class
class MemoMagics(Magics):
    """The ``%%memoize`` cell magic and the memo cache of one runtime."""

    def __init__(self, shell: Any, runtime: Runtime) -> None:
        super().__init__(shell)
        self.runtime = runtime
        self.settings = runtime.config
        self.cache = MemoCache(self.settings.memo_max_bytes)
        #: cell id -> what its last memoized run did ("hit", "miss", "uncached: why")
        self.last: dict[str, str] = {}
        self._cell: str | None = None
        self._warned: set[str] = set()

    # ------------------------------------------------------------ wiring
    def attach(self) -> None:
        self.shell.register_magics(self)
        self.shell.events.register("pre_run_cell", self._pre_run_cell)
        self.settings.observe(self._settings_changed, names=["memo_max_bytes", "max_fps"])
        self.runtime.slots.max_fps = self.settings.max_fps

    def detach(self) -> None:
        with contextlib.suppress(ValueError):
            self.shell.events.unregister("pre_run_cell", self._pre_run_cell)
        with contextlib.suppress(ValueError):
            self.settings.unobserve(self._settings_changed, names=["memo_max_bytes", "max_fps"])
        self.shell.magics_manager.magics["cell"].pop("memoize", None)

    def _settings_changed(self, change: dict[str, Any]) -> None:
        if change["name"] == "memo_max_bytes":
            self.cache.memory.resize(change["new"])
            if self.cache.disk is not None:
                self.cache.disk.max_bytes = change["new"]
                self.cache.disk.evict()
        elif change["name"] == "max_fps":
            self.runtime.slots.max_fps = change["new"]

    def _pre_run_cell(self, info: Any) -> None:
        """Remember which cell is running: the magic itself is only handed its text."""
        raw = getattr(info, "raw_cell", "") or ""
        self._cell = self.runtime.cell_key(
            getattr(info, "cell_id", None), raw, getattr(info, "cell_meta", None)
        )

    # ------------------------------------------------------------- magic
    @cell_magic
    def memoize(self, line: str, cell: str) -> None:
        """Run the cell once per distinct set of inputs; replay its outputs on a hit.

        Usage: ``%%memoize [--quiet|--verbose] [--disk]`` on the first line of
        a cell (see ``reactive.integrations.ipykernel.memo`` for what each
        mode shows).
        """
        __tracebackhide__ = True
        mode, disk = _parse(line)
        disk = disk or self.settings.memo_disk
        if disk and self.cache.disk is None:
            self.cache.open_disk(self.settings.memo_dir or None, self.settings.memo_max_bytes)
            problem = self.cache.disk_problem
            if problem and problem not in self._warned:
                self._warned.add(problem)
                print(f"memoize: {problem}", file=sys.stderr)
        cid = self._cell or "memoize"
        ns = self.shell.user_ns
        refs, defs, why = self._paths(cid, cell)
        key = None
        if why is None:
            inputs = {str(p): self._value(ns, p) for p in refs}
            source = normalise_source(cell, self.shell.transform_cell)
            key, why = build_key(source, inputs, scope=cid)
        if key is not None:
            entry = self.cache.lookup(key, disk=disk)
            if entry is not None and self._restore(entry, ns):
                if disk:
                    self.cache.ensure_on_disk(entry)
                self.cache.stats.hits += 1
                self.last[cid] = "hit"
                replay(self.shell, entry.outputs, mode)
                return
            self.cache.stats.misses += 1
            problem = self.cache.disk.last_problem if disk and self.cache.disk else None
            if problem and mode == "verbose":
                print(f"memoize: {problem}", file=sys.stderr)
        with _Recorder(self.shell) as rec:
            self._run(cell, rec)
        if key is None:
            self._uncached(cid, mode, why or "no key")
            return
        try:
            pairs = [(p, self._value(ns, p, raw=True)) for p in _outermost(defs)]
            blob = pack_values({"pairs": pairs})
        except Unpicklable as exc:
            self._uncached(cid, mode, f"a def cannot be stored as a copy ({exc})")
            return
        self.cache.store(Entry(key=key, cell=cid, outputs=rec.outputs, values=blob), disk=disk)
        self.last[cid] = "miss"

    # ---------------------------------------------------------- helpers
    def _paths(
        self, cid: str, cell: str
    ) -> tuple[frozenset[SymbolPath], frozenset[SymbolPath], str | None]:
        """The cell's inputs and defs from the graph (or its own analysis)."""
        graph = self.runtime.graph
        if cid in graph:
            analysis = graph.cells[cid].analysis
            refs, defs = graph.refs(cid), graph.defs(cid)
        else:
            from reactive.analysis import analyze

            analysis = analyze(f"%%memoize\n{cell}", self.shell.transform_cell)
            refs, defs = analysis.refs, analysis.defs
        if analysis.conservative is not None:
            return refs, defs, f"its inputs cannot be inferred ({analysis.conservative})"
        return refs, defs, None

    @staticmethod
    def _value(ns: dict[str, Any], path: SymbolPath, *, raw: bool = False) -> Any:
        value = resolve(ns, path)
        if value is _MISSING:
            return MISSING
        return value if raw else _input_value(value)

    def _restore(self, entry: Entry, ns: dict[str, Any]) -> bool:
        """Put fresh copies of the entry's defs in place; False (entry dropped) if it cannot."""
        try:
            values = unpack_values(entry.values)
        except Exception as exc:  # e.g. a module that is no longer installed
            self.cache.discard(entry.key, f"entry could not be loaded ({exc})")
            return False
        pairs = values.get("pairs") if isinstance(values, dict) else None
        if not isinstance(pairs, list):
            self.cache.discard(entry.key, "entry holds no defs")
            return False
        for path, _ in pairs:
            if path.steps and resolve(ns, SymbolPath(path.root, path.steps[:-1])) is _MISSING:
                return False
        return all(_assign(ns, path, value) for path, value in pairs)

    def _run(self, cell: str, rec: _Recorder) -> None:
        """Run the body in the user namespace; display its last expression as ``Out[n]``."""
        __tracebackhide__ = True
        shell = self.shell
        code = shell.transform_cell(cell)
        tree = shell.transform_ast(shell.compile.ast_parse(code))
        last = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = ast.Expression(tree.body.pop().value)
        try:
            filename = shell.compile.cache(code)
        except Exception:
            filename = "<memoize>"
        glob, loc = shell.user_global_ns, shell.user_ns
        exec(shell.compile(ast.Module(tree.body, []), filename, "exec"), glob, loc)
        value = None
        if last is not None:
            value = eval(shell.compile(last, filename, "eval"), glob, loc)
        if value is not None and not ends_with_semicolon(code):
            self._display(value, rec)
        _flush_inline_figures(shell)

    def _display(self, value: Any, rec: _Recorder) -> None:
        """What IPython's display hook does for a cell's last value, recorded for replay."""
        hook = self.shell.displayhook
        data, md = hook.compute_format_data(value)
        if not data:
            return
        hook.start_displayhook()
        hook.write_output_prompt()
        hook.update_user_ns(value)
        if getattr(hook, "exec_result", None) is not None:
            hook.fill_exec_result(value)
        hook.write_format_data(data, md)
        rec.add_result(dict(data), dict(md or {}))
        hook.finish_displayhook()

    def _uncached(self, cid: str, mode: str, why: str) -> None:
        self.cache.stats.uncached += 1
        self.last[cid] = f"uncached: {why}"
        if mode == "verbose":
            print(f"memoize: not memoized: {why}", file=sys.stderr)


def _flush_inline_figures(shell: Any) -> None:
    """Show figures the body drew now, so they are part of what a hit replays.

    matplotlib-inline shows them on ``post_execute``, after the magic has
    returned; doing it here keeps the same order (body output, ``Out``, figures).
    """
    for cb in list(shell.events.callbacks.get("post_execute", ())):
        if getattr(cb, "__name__", "") == "flush_figures" and "inline" in str(
            getattr(cb, "__module__", "")
        ):
            with contextlib.suppress(Exception):
                cb()


# ---------------------------------------------------------------------------
# %reactive memo
# ---------------------------------------------------------------------------


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def memo_command(runtime: Runtime, args: list[str]) -> str:
    """``%reactive memo status|clear [cell]``: entries, bytes and hit rate; or forget."""
    magics: MemoMagics | None = getattr(runtime, "memo", None)
    if magics is None:
        raise UsageError("%reactive memo: memoization is not active in this kernel")
    cache = magics.cache
    sub = args[0].lower() if args else "status"
    if sub == "status" and len(args) <= 1:
        st, mem = cache.stats, cache.memory
        lines = [
            f"memo: {len(mem)} entries, {_size(mem.bytes)} of {_size(mem.max_bytes)} in memory; "
            f"hits {st.hits}, misses {st.misses}, hit rate {st.hit_rate:.0%}"
            + (f"; {st.uncached} run(s) not memoizable" if st.uncached else "")
        ]
        if cache.disk is not None:
            n, b = cache.disk.usage()
            lines.append(f"disk: {cache.disk.dir}: {n} entries, {_size(b)}")
        elif cache.disk_problem:
            lines.append(cache.disk_problem)
        else:
            lines.append("disk: off (%%memoize --disk or c.Reactive.memo_disk = True)")
        per_cell = cache.cells()
        for cid in sorted(set(per_cell) | set(magics.last), key=runtime.index_of):
            n, b = per_cell.get(cid, (0, 0))
            last = magics.last.get(cid, "-")
            lines.append(f"  [{runtime.index_of(cid)}] {n} entries, {_size(b)}, last run: {last}")
        return "\n".join(lines)
    if sub == "clear" and len(args) <= 2:
        if len(args) == 2:
            from .explain import find_cell

            cid = find_cell(runtime, args[1])
            if cid is None:
                raise UsageError(
                    f"%reactive memo clear: no cell matches {args[1]!r}; give a cell number, "
                    "id, or a variable it defines"
                )
            mem, disk = cache.clear(cid)
            magics.last.pop(cid, None)
            return f"memo: cleared cell [{runtime.index_of(cid)}]: {mem} in memory, {disk} on disk"
        mem, disk = cache.clear()
        magics.last.clear()
        return f"memo: cleared {mem} entries in memory, {disk} on disk"
    raise UsageError("%reactive memo: usage: %reactive memo status | %reactive memo clear [cell]")


def install(runtime: Runtime) -> MemoMagics:
    magics = MemoMagics(runtime.shell, runtime)
    magics.attach()
    return magics
