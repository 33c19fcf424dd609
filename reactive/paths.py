"""Symbol paths: the unit of dependency tracking.

A cell does not merely read ``d``; it may read ``d["a"]`` or ``s.value``.
Tracking paths instead of bare names lets the runtime leave a cell alone
when an upstream cell touched a sibling key (``d["b"]``), which is the
precision users notice most in dashboards built around one config dict.

Two paths *overlap* when one is a prefix of the other: writing ``d`` touches
readers of ``d["a"]`` (the whole object was replaced), writing ``d["a"]``
touches readers of ``d`` (part of what they read changed), but ``d["a"]``
and ``d["b"]`` are independent -- as are ``s.value`` and ``s.max``.  Paths
that part with an item on one side and an attribute on the other overlap:
``arr[0] = 9`` changes ``arr.sum()``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

Key: TypeAlias = str | int | float | bool | bytes | tuple | None


@dataclass(frozen=True, slots=True)
class Attr:
    """An attribute step: ``.name``."""

    name: str

    def __str__(self) -> str:
        return f".{self.name}"


@dataclass(frozen=True, slots=True)
class Item:
    """A constant-subscript step: ``[key]`` where ``key`` is a literal."""

    key: Key

    def __str__(self) -> str:
        return f"[{self.key!r}]"


Step: TypeAlias = Attr | Item


@dataclass(frozen=True, slots=True)
class SymbolPath:
    """A global name followed by attribute and constant-subscript steps."""

    root: str
    steps: tuple[Step, ...] = ()

    @classmethod
    def of(cls, root: str, *steps: Step | str | Key) -> SymbolPath:
        """Build a path; bare strings after the root become attributes.

        ``SymbolPath.of("d", Item("a"))`` is ``d['a']``;
        ``SymbolPath.of("s", "value")`` is ``s.value``.
        """
        out: list[Step] = []
        for step in steps:
            if isinstance(step, (Attr, Item)):
                out.append(step)
            elif isinstance(step, str):
                out.append(Attr(step))
            else:
                out.append(Item(step))
        return cls(root, tuple(out))

    def child(self, step: Step) -> SymbolPath:
        return SymbolPath(self.root, (*self.steps, step))

    def parent(self) -> SymbolPath | None:
        if not self.steps:
            return None
        return SymbolPath(self.root, self.steps[:-1])

    def is_prefix_of(self, other: SymbolPath) -> bool:
        """True when ``self`` covers ``other`` (equal paths included)."""
        n = len(self.steps)
        return self.root == other.root and n <= len(other.steps) and other.steps[:n] == self.steps

    def overlaps(self, other: SymbolPath) -> bool:
        """True when a write of one may change what a read of the other sees.

        Prefixes overlap; so do paths that part ways with steps of different
        kinds: ``arr[0] = 9`` changes what ``arr.sum`` (a method reading the
        whole array) or ``df.shape`` returns.  Only siblings of one kind are
        independent: two keys (``d["a"]``, ``d["b"]``) or two attributes
        (``s.value``, ``s.max``).
        """
        if self.root != other.root:
            return False
        for mine, theirs in zip(self.steps, other.steps, strict=False):
            if mine != theirs:
                return type(mine) is not type(theirs)
        return True

    def __str__(self) -> str:
        return self.root + "".join(str(s) for s in self.steps)

    def __repr__(self) -> str:
        return f"<{self}>"


#: what :func:`resolve` returns for a path that leads nowhere
MISSING: Any = object()


def resolve(ns: Mapping[str, Any], path: SymbolPath) -> Any:
    """The value at ``path`` in a namespace, or :data:`MISSING`.

    Reading a path must never run into an exception of the host's: a
    missing key, a raising property or a deleted name all mean "not there".
    """
    value = ns.get(path.root, MISSING)
    for step in path.steps:
        if value is MISSING:
            break
        try:
            value = getattr(value, step.name) if isinstance(step, Attr) else value[step.key]
        except Exception:
            value = MISSING
    return value


def name(root: str) -> SymbolPath:
    """Shorthand for a bare-name path."""
    return SymbolPath(root)
