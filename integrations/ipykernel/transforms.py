"""IPython's ``transform_cell``, with its static half remembered per source.

A dragged slider re-runs the same cell source dozens of times a second, and
IPython re-tokenizes it every time (~0.15 ms a run, each of which delays the
final repaint of a drag).  Most of that work depends on the text alone, so it
is kept -- but only where IPython's own result depends on nothing else:

* the *static* transforms (``input_transformer_manager``: cleanup, line and
  token transforms) are pure functions of the text, as long as the lists of
  transforms are the ones that produced the entry;
* a cell that is one line after them also goes through the prefilter, which
  reads the namespace (autocall, unescaped magics): its result is never
  cached, only the fact that it is one line;
* ``input_transformers_post`` are user callables with unknown behaviour:
  while any is registered nothing is cached.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

#: distinct sources remembered (a notebook's cells, re-run; the oldest drop out)
CAPACITY = 512


class CellTransforms:
    """``shell.transform_cell`` with an exact cache for multi-line sources."""

    def __init__(self, shell: Any, capacity: int = CAPACITY) -> None:
        self.shell = shell
        self.capacity = capacity
        #: source -> (transforms in force, static result or None for a one-line cell)
        self._cache: OrderedDict[str, tuple[tuple[Any, ...], str | None]] = OrderedDict()
        self.hits = 0

    def _signature(self) -> tuple[Any, ...] | None:
        """The transforms in force, or None when caching cannot be exact."""
        shell = self.shell
        if getattr(shell, "input_transformers_post", None):
            return None
        mgr = getattr(shell, "input_transformer_manager", None)
        try:
            return (
                mgr,
                *mgr.cleanup_transforms,
                None,
                *mgr.line_transforms,
                None,
                *mgr.token_transformers,
            )
        except (AttributeError, TypeError):
            return None

    def __call__(self, source: str) -> str:
        sig = self._signature()
        if sig is None:
            return str(self.shell.transform_cell(source))
        hit = self._cache.get(source)
        static: str | None
        if hit is not None and hit[0] == sig:
            self._cache.move_to_end(source)
            static = hit[1]
            self.hits += static is not None
        else:
            static = str(sig[0].transform_cell(source))
            if len(static.splitlines()) == 1:  # the namespace-dependent prefilter applies
                static = None
            self._cache[source] = (sig, static)
            if len(self._cache) > self.capacity:
                self._cache.popitem(last=False)
        # a one-line cell takes IPython's whole path; remembering that it is one line
        # spares it a second run of the static transforms (shell.transform_cell reruns them)
        return str(self.shell.transform_cell(source)) if static is None else static
