"""Static analysis of one cell: which symbol paths it defines and reads.

INTERFACE STUB -- the implementation is being written; the dataclasses and
the signature of :func:`analyze` are the contract the graph relies on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .paths import SymbolPath


@dataclass(frozen=True, slots=True)
class SyntaxProblem:
    """Why a cell could not be parsed, in words a user can act on."""

    message: str
    lineno: int | None = None
    offset: int | None = None

    def __str__(self) -> str:
        where = f" (line {self.lineno})" if self.lineno else ""
        return f"SyntaxError{where}: {self.message}"


@dataclass(frozen=True)
class CellAnalysis:
    """What a cell does to the global namespace, as far as the AST can tell.

    ``refs`` are the paths the cell reads *from outside* (a name the cell
    binds before reading is not a ref).  ``defs`` are the paths it writes,
    including receivers of mutating calls and ``del`` targets.  ``functions``
    maps each function or class the cell defines to the global paths its body
    reads, so a caller of ``f()`` can be made to depend on them.  ``calls``
    are the global names the cell calls (``f`` in ``f(x)``).
    ``conservative`` is a reason string when the cell does something the
    analysis cannot follow (``exec``, ``globals()[...] = ``, star import);
    the graph then treats the cell as reading and writing everything.
    ``error`` is set (and everything else empty) when the cell does not parse.
    """

    defs: frozenset[SymbolPath] = frozenset()
    refs: frozenset[SymbolPath] = frozenset()
    functions: dict[str, frozenset[SymbolPath]] = field(default_factory=dict)
    calls: frozenset[str] = frozenset()
    conservative: str | None = None
    error: SyntaxProblem | None = None

    @property
    def def_names(self) -> frozenset[str]:
        return frozenset(p.root for p in self.defs)

    @property
    def ref_names(self) -> frozenset[str]:
        return frozenset(p.root for p in self.refs)


Transform = Callable[[str], str]


def analyze(source: str, transform: Transform | None = None) -> CellAnalysis:
    """Analyse one cell's source.

    ``transform`` turns IPython syntax into Python (the kernel passes
    ``shell.transform_cell``); without it a small built-in transformer
    handles ``%magic``, ``%%cell_magic``, ``!cmd`` and ``x = !cmd``.
    Never raises for bad input: a syntax error comes back in ``error``.
    """
    raise NotImplementedError
