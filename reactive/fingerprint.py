"""Content fingerprints of Python values: "is this still the same state?".

The runtime compares fingerprints taken before and after a cell runs to decide
which downstream cells must re-run, and (DESIGN.md §6) uses them in memo keys.
A fingerprint that wrongly says "unchanged" silently skips a cell that should
have re-run, which breaks the "run all" promise.  So the rules here are:

* **Exact or nothing.**  A value's fingerprint is a hash of a prefix-free,
  type-tagged serialization of its *content*.  Two values get equal
  fingerprints only if their serializations are equal (up to a 128-bit hash
  collision), and the serialization is chosen so that this means "prints and
  behaves the same".  Anything we cannot serialize exactly returns an
  :class:`Unfingerprintable` instance, which compares unequal to everything,
  itself included, so callers fall into the safe "changed" branch without
  special-casing it.  There is deliberately no fallback to ``id()`` (an object
  mutated in place keeps its id) or to pickle (slow, not deterministic).
* **Mutation shows.**  Content is read at call time; nothing is cached across
  calls, so ``lst.append(1)``, ``a[0] = 9`` or ``df.iloc[0, 0] = 5`` change the
  fingerprint.
* **Types matter.**  ``1``, ``1.0`` and ``True``; ``"1"`` and ``b"1"``;
  ``(1, 2)`` and ``[1, 2]`` all differ: they print differently.
* **Order matters for dicts and sets.**  ``{"a": 1, "b": 2}`` and
  ``{"b": 2, "a": 1}`` are ``==`` in Python but iterate and print in different
  orders, so a cell looping over them shows different output.  Sets are hashed
  in iteration order for the same reason: ``{0, 8}`` built by adding 0 then 8
  prints ``{0, 8}``, built the other way it prints ``{8, 0}``.  The price is
  that sets of ``str``/``bytes`` iterate in an order that depends on
  ``PYTHONHASHSEED``, so their fingerprints (and those of functions whose code
  holds such set literals) differ across processes: a disk-memo miss, never a
  false hit.
* **Floats** hash their IEEE bits, with every NaN mapped to one canonical NaN
  (``nan`` prints as ``nan`` whatever its payload).  ``0.0`` and ``-0.0`` differ
  because they print differently.  NumPy arrays hash raw buffers without NaN
  canonicalisation (a pass over the data would halve throughput), so NaNs
  with different payloads make arrays differ: a false "changed", never a false
  "unchanged".
* **Cycles** are encoded as back-references: an object met again while it is
  still being serialized (one of its own ancestors) is written as "the
  ancestor *k* levels up".  That keeps self-referencing structures
  fingerprintable and still exact: the encoding is the structure unfolded up to
  the first repeat, which determines the whole cyclic structure.
* **Budget.**  Walking costs one unit per object visited plus one per 8 bytes
  of raw buffer (array data, long strings).  Past the budget (default
  :data:`DEFAULT_BUDGET`, about 400 MB of array data or 50 million objects) the
  value is Unfingerprintable: an exponential DAG (``x = [x, x]`` repeated) or a
  huge object must not stall the kernel, and "too big" must read as "changed".

What a fingerprint of a *function* covers: its code (bytecode, constants,
names, exception table), defaults, keyword defaults, closure cell contents,
attribute ``__dict__`` and annotations; not the module globals its body reads.
The dependency graph tracks those globals (DESIGN.md §3), so a memo key must
include them separately.  Functions and classes that an *installed* module
(stdlib or site-packages) exposes under their own qualified name are identified
by module, qualified name and the distribution's version instead: their code
is fixed by the version, and their defaults are often sentinel objects we could
not hash.  Code outside installed locations (the notebook, a module next to it,
an editable install under development) is always hashed by content, so editing
it and reloading changes the fingerprint.

Hashing uses SHA-256 (hardware-accelerated on current x86 and ARM CPUs, about
2 GB/s on large buffers, twice BLAKE2b's speed in CPython) truncated to 16 bytes.
numpy and pandas are never imported here: their handlers are looked up through
``sys.modules`` only when a value of one of their types shows up.
"""

from __future__ import annotations

import array
import contextlib
import dataclasses
import datetime as dt
import decimal
import enum
import fractions
import functools
import hashlib
import itertools
import math
import os
import pathlib
import re
import struct
import sys
import sysconfig
import types
import uuid
import weakref
from collections import Counter, OrderedDict, defaultdict, deque
from collections.abc import Callable, Iterable
from typing import Any

__all__ = [
    "DEFAULT_BUDGET",
    "DIGEST_SIZE",
    "Unfingerprintable",
    "explain_unfingerprintable",
    "fingerprint",
]

DIGEST_SIZE = 16
"""Bytes in a fingerprint: 128 bits makes accidental collisions negligible."""

DEFAULT_BUDGET = 50_000_000
"""Units (objects visited, or 8-byte words of raw buffer) one call may spend."""

_FLUSH_AT = 1 << 16  # buffered small writes are handed to the hasher past this size
_BULK_CHUNK = 1 << 24  # non-contiguous arrays are copied to C order this many bytes at a time


class Unfingerprintable:
    """Result for a value whose content cannot be hashed exactly.

    It is never equal to anything, not even to itself, so the obvious
    comparison ``fingerprint(a) == fingerprint(b)`` is False and the runtime
    treats the value as changed.  ``reason`` says which nested element failed.

    Every call returns a fresh instance.  Keep it that way: tuples, lists and
    dict lookups compare elements by identity before ``==``, so one instance
    reused in two memo keys would make those keys match.
    """

    __slots__ = ("reason",)

    def __init__(self, reason: str = "value cannot be fingerprinted") -> None:
        self.reason = reason

    def __eq__(self, other: object) -> bool:
        return False

    def __ne__(self, other: object) -> bool:
        return True

    __hash__ = object.__hash__  # identity-based, consistent with never being equal

    def __repr__(self) -> str:
        return f"<Unfingerprintable: {self.reason}>"


class _Unfp(Exception):
    """Raised inside the walk; ``path`` collects steps innermost-first."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path: list[str] = []


_Q = struct.Struct("<q").pack
_D = struct.Struct("<d").pack
_CANON_NAN = _D(math.nan)
_I64_MIN, _I64_MAX = -(1 << 63), (1 << 63) - 1


def _float_bytes(x: float) -> bytes:
    return _CANON_NAN if x != x else _D(x)


def _int_bytes(x: int) -> bytes:
    """Small ints in 9 bytes, others length-prefixed: both self-delimiting."""
    if _I64_MIN <= x <= _I64_MAX:
        return b"I." + _Q(x)
    raw = x.to_bytes((x.bit_length() + 8) // 8, "little", signed=True)
    return b"J." + _Q(len(raw)) + raw


def _short_repr(x: object, limit: int = 40) -> str:
    try:
        text = repr(x)
    except Exception:
        text = f"<{type(x).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _type_name(t: type) -> str:
    module = getattr(t, "__module__", None)
    name = getattr(t, "__qualname__", t.__name__)
    return name if module in (None, "builtins") else f"{module}.{name}"


# ---------------------------------------------------------------------------
# Installed code: identity instead of content
# ---------------------------------------------------------------------------


def _install_roots() -> tuple[str, ...]:
    roots: set[str] = set()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        path = sysconfig.get_paths().get(key)
        if path:
            roots.add(os.path.realpath(path))
    return tuple(sorted(roots))


_INSTALL_ROOTS = _install_roots()
_installed_cache: dict[str, bool] = {}
_version_cache: dict[str, str] = {}


def _is_installed(module: types.ModuleType) -> bool:
    """Whether a module's code is fixed by its distribution's version.

    True for builtins, the stdlib and site-/dist-packages; False for
    ``__main__``, modules next to the notebook and editable installs, whose
    code can change (autoreload) without any version changing.
    """
    name = module.__name__
    known = _installed_cache.get(name)
    if known is not None:
        return known
    top = name.partition(".")[0]
    file = getattr(module, "__file__", None)
    if name == "__main__":
        result = False
    elif name in sys.builtin_module_names or top in sys.stdlib_module_names:
        result = True
    elif not isinstance(file, str):
        result = False
    else:
        real = os.path.realpath(file)
        parts = real.split(os.sep)
        result = "site-packages" in parts or "dist-packages" in parts
        result = result or any(real.startswith(root + os.sep) for root in _INSTALL_ROOTS)
    _installed_cache[name] = result
    return result


def _module_version(module_name: str) -> str:
    """Something that changes whenever the installed code of a module's package does.

    The declared ``__version__``, else the distribution's metadata version,
    else the package file's modification time and size: with no version at
    all, a reinstalled package would keep its old identity in a disk memo.
    """
    top = module_name.partition(".")[0]
    cached = _version_cache.get(top)
    if cached is not None:
        return cached
    module = sys.modules.get(top)
    declared = getattr(module, "__version__", None)
    if top in sys.stdlib_module_names or top in sys.builtin_module_names or top == "builtins":
        version = "python-" + sys.version.split()[0]  # stdlib __version__s are frozen
    elif isinstance(declared, str):
        version = declared
    else:
        version = _distribution_version(top) or _file_stamp(module)
    _version_cache[top] = version
    return version


def _distribution_version(top: str) -> str:
    try:
        from importlib import metadata

        try:
            return metadata.version(top)
        except metadata.PackageNotFoundError:
            names = metadata.packages_distributions().get(top, [])
            return "+".join(sorted(f"{name}=={metadata.version(name)}" for name in set(names)))
    except Exception:
        return ""


def _file_stamp(module: types.ModuleType | None) -> str:
    file = getattr(module, "__file__", None)
    try:
        st = os.stat(file) if isinstance(file, str) else None
    except OSError:
        st = None
    return f"stat:{st.st_mtime_ns}:{st.st_size}" if st else "unknown"


def _resolve_qualname(module: types.ModuleType, qualname: str) -> object:
    """Look ``qualname`` up through ``__dict__``s only (no descriptors, no ``__getattr__``)."""
    obj: object = module
    for part in qualname.split("."):
        namespace = getattr(obj, "__dict__", None)
        if not isinstance(namespace, (dict, types.MappingProxyType)) or part not in namespace:
            return None
        obj = namespace[part]
        if isinstance(obj, (staticmethod, classmethod)):
            obj = obj.__func__
    return obj


def _installed_identity(obj: object) -> str | None:
    """``module:qualname@version`` if an installed module exposes ``obj`` under that name.

    Requiring the name to resolve back to the very object rules out lambdas,
    closures made at run time and rebound names, which share a qualname with
    other objects and so must be hashed by content.
    """
    module_name = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if not isinstance(module_name, str) or not isinstance(qualname, str):
        return None
    module = sys.modules.get(module_name)
    if module is None or not _is_installed(module):
        return None
    if _resolve_qualname(module, qualname) is not obj:
        return None
    return f"{module_name}:{qualname}@{_module_version(module_name)}"


_HEAPTYPE = 1 << 9


def _plain_python_mro(t: type, allow: tuple[type, ...] = ()) -> bool:
    """True if every class above ``object`` was written in Python.

    C-level classes can keep state invisible to ``__dict__`` and slots (a
    lock's locked bit, a ``dict`` base's items), so instances of such classes
    are not hashed field by field.
    """
    generic = sys.modules.get("typing")
    ok_c_bases = (*allow, getattr(generic, "Generic", object))
    return all(c.__flags__ & _HEAPTYPE or c in ok_c_bases for c in t.__mro__[:-1])


def _slot_names(t: type) -> list[str]:
    names: list[str] = []
    for c in t.__mro__:
        slots = c.__dict__.get("__slots__", ())
        for name in (slots,) if isinstance(slots, str) else slots:
            if name not in ("__dict__", "__weakref__") and name not in names:
                names.append(name)
    return names


_MISSING = object()  # placeholder for an unset attribute or an empty closure cell


def _pack_column(kind: type, values: Iterable[Any]) -> list[Any] | None:
    """Packed buffers for values all of one scalar type, or None if they don't pack."""
    if kind is float:
        packed = array.array("d", values)
        if any(map(math.isnan, packed)):  # one canonical NaN, as for single floats
            packed = array.array("d", [math.nan if v != v else v for v in packed])
        return [packed]
    if kind is int:
        try:
            return [array.array("q", values)]
        except OverflowError:
            return None
    if kind is str:
        lengths = array.array("q", map(len, values))
        return [lengths, "".join(values).encode("utf-8", "surrogatepass")]
    if kind is bool:
        return [bytes(values)]
    if kind is type(None):
        return []
    return None


_COLUMN_ORDER: tuple[type, ...] = (type(None), bool, int, float, str)
_COLUMN_KINDS = frozenset(_COLUMN_ORDER)
_COLUMN_MODE = {type(None): b"0", bool: b"t", int: b"i", float: b"f", str: b"s"}
_KIND_CODE = {kind: code for code, kind in enumerate(_COLUMN_ORDER, start=1)}
_SELECTORS = {kind: bytes(int(i == code) for i in range(256)) for kind, code in _KIND_CODE.items()}


# ---------------------------------------------------------------------------
# The walk
# ---------------------------------------------------------------------------


class _Walker:
    """One fingerprinting pass: a hasher, a write buffer, the budget, the path.

    ``active`` maps ``id()`` of every container currently being serialized to
    its depth; meeting one of them again writes a relative back-reference.
    ``memo`` caches sub-digests of classes and functions (often repeated, e.g.
    the class of a million dataclass instances) when they were computed
    without referring to anything outside themselves, so the cached bytes mean
    the same wherever they are reused.
    """

    __slots__ = ("active", "buf", "depth", "h", "left", "lowest", "memo", "total")

    def __init__(self, budget: int) -> None:
        self.h = hashlib.sha256()
        self.buf = bytearray()
        self.left = budget
        self.total = budget
        self.active: dict[int, int] = {}
        self.depth = 0
        self.lowest = sys.maxsize
        self.memo: dict[int, tuple[object, bytes]] = {}

    # -- output ------------------------------------------------------------

    def flush(self) -> None:
        if self.buf:
            self.h.update(self.buf)
            self.buf = bytearray()

    def spend(self, units: int) -> None:
        self.left -= units
        if self.left < 0:
            raise _Unfp(f"budget of {self.total} units exhausted")

    def text(self, s: str) -> None:
        raw = s.encode("utf-8", "surrogatepass")
        self.buf += _Q(len(raw))
        self.buf += raw

    def blob(self, data: Any) -> None:
        """Length-prefixed raw bytes of a C-contiguous buffer; big ones go straight to the hasher.

        The buffer is taken as a byte memoryview so that ``+=`` is a byte
        concatenation even for numpy arrays (whose ``+`` would broadcast).
        """
        view = memoryview(data)
        if view.format != "B" or view.ndim != 1:
            view = view.cast("B")
        n = view.nbytes
        self.spend(n >> 3)
        self.buf += _Q(n)
        if n >= _FLUSH_AT:
            self.flush()
            self.h.update(view)
        else:
            self.buf += view
            if len(self.buf) >= _FLUSH_AT:
                self.flush()

    def digest(self) -> bytes:
        self.flush()
        return self.h.digest()[:DIGEST_SIZE]

    # -- traversal ---------------------------------------------------------

    def feed(self, x: object) -> None:
        self.left -= 1
        if self.left < 0:
            raise _Unfp(f"budget of {self.total} units exhausted")
        t = type(x)
        handler = _EXACT.get(t)
        if handler is None:
            handler = _resolve(t)
        handler(self, x)

    def feed_at(self, x: object, step: str) -> None:
        """``feed`` that names the step in an Unfingerprintable explanation."""
        try:
            self.feed(x)
        except _Unfp as e:
            e.path.append(step)
            raise

    def enter(self, x: object) -> bool:
        """Mark ``x`` as being serialized; on a cycle write a back-reference."""
        key = id(x)
        at = self.active.get(key)
        if at is not None:
            self.buf += b"@." + _Q(self.depth - at)
            if at < self.lowest:
                self.lowest = at
            return False
        self.active[key] = self.depth
        self.depth += 1
        return True

    def leave(self, x: object) -> None:
        self.depth -= 1
        del self.active[id(x)]

    def memoized(self, x: object, body: Callable[[_Walker, Any], None]) -> None:
        """Write a sub-digest of ``x`` (computed by ``body``), cached when context-free."""
        hit = self.memo.get(id(x))
        if hit is not None:
            self.buf += b"#." + hit[1]
            return
        outer_h, outer_buf, outer_lowest = self.h, self.buf, self.lowest
        self.h, self.buf, self.lowest = hashlib.sha256(), bytearray(), sys.maxsize
        root = self.depth
        body(self, x)
        sub = self.digest()
        inner_lowest = self.lowest
        self.h, self.buf = outer_h, outer_buf
        self.lowest = min(outer_lowest, inner_lowest)
        if inner_lowest >= root:
            self.memo[id(x)] = (x, sub)
        self.buf += b"#." + sub

    # -- shared encoders ----------------------------------------------------

    def items(self, tag: bytes, x: Iterable[Any], n: int) -> None:
        """A sequence or set: count, then either a homogeneous fast path or each element."""
        self.buf += tag + _Q(n)
        if n and self._homogeneous(x, n):
            return
        self.buf += b"g"
        self.spend(n)
        scalar = _SCALAR.get
        buf = self.buf
        i = 0
        try:
            for i, item in enumerate(x):  # noqa: B007 - i is read in the except clause
                encode = scalar(type(item))
                raw = None if encode is None else encode(item)
                if raw is None:
                    self.feed(item)
                    buf = self.buf  # a nested call may have flushed (replaced) it
                else:
                    buf += raw
                if len(buf) >= _FLUSH_AT:
                    self.flush()
                    buf = self.buf
        except _Unfp as e:
            e.path.append(f"[{i}]")
            raise

    def _homogeneous(self, x: Iterable[Any], n: int) -> bool:
        """C-speed encodings for sequences of plain scalars (the common data case).

        One scalar type: its packed column.  A few (strings with ``None`` or
        NaN gaps, ints mixed with floats): one type code per element, then the
        packed column of each type's values in order; the codes say how they
        interleave, so the encoding stays exact.  Short sequences take the
        general path, which is cheaper for them.
        """
        if n < 16:
            return False
        kinds = set(map(type, x))
        if len(kinds) == 1:
            kind = kinds.pop()
            parts = _pack_column(kind, x)
            if parts is None:
                return False
            self.spend(n)
            self.buf += _COLUMN_MODE[kind]
            for part in parts:
                self.blob(part)
            return True
        if not kinds <= _COLUMN_KINDS:
            return False
        codes = bytes(map(_KIND_CODE.__getitem__, map(type, x)))
        columns = []
        for kind in _COLUMN_ORDER:
            if kind in kinds:
                select = codes.translate(_SELECTORS[kind])
                parts = _pack_column(kind, list(itertools.compress(x, select)))
                if parts is None:
                    return False
                columns.append(parts)
        self.spend(n)
        self.buf += b"k"
        self.blob(codes)
        for parts in columns:
            for part in parts:
                self.blob(part)
        return True

    def mapping(self, tag: bytes, x: Any) -> None:
        self.buf += tag + _Q(len(x))
        self.spend(2 * len(x))
        scalar = _SCALAR.get
        key: object = None
        try:
            for key, value in x.items():  # unrolled for key and value: this loop is hot
                encode = scalar(type(key))
                raw = None if encode is None else encode(key)
                if raw is None:
                    self.feed(key)
                else:
                    self.buf += raw
                encode = scalar(type(value))
                raw = None if encode is None else encode(value)
                if raw is None:
                    self.feed(value)
                else:
                    self.buf += raw
                if len(self.buf) >= _FLUSH_AT:
                    self.flush()
        except _Unfp as e:
            e.path.append(f"[{_short_repr(key)}]")
            raise

    def fields(self, pairs: Iterable[tuple[str, object]], prefix: str = ".") -> None:
        """Named parts of an object: name, then value; counted by an end marker."""
        for name, value in pairs:
            self.buf += b"+"
            self.text(name)
            self.feed_at(value, f"{prefix}{name}")
        self.buf += b"-"


Handler = Callable[[_Walker, Any], None]


# -- builtin scalars ---------------------------------------------------------


# Encoders for the commonest scalars, called inline by container loops (a
# function call less per element than going through _Walker.feed).  They
# return None for values that must go through the budgeted path (long text).
_SHORT = 1 << 12


def _enc_none(x: None) -> bytes:
    return b"N."


def _enc_bool(x: bool) -> bytes:
    return b"T." if x else b"F."


def _enc_float(x: float) -> bytes:
    return b"f." + (_CANON_NAN if x != x else _D(x))


def _enc_str(x: str) -> bytes | None:
    if len(x) > _SHORT:
        return None
    raw = x.encode("utf-8", "surrogatepass")
    return b"s." + _Q(len(raw)) + raw


def _enc_bytes(x: bytes) -> bytes | None:
    return None if len(x) > _SHORT else b"b." + _Q(len(x)) + x


_SCALAR: dict[type, Callable[[Any], bytes | None]] = {
    type(None): _enc_none,
    bool: _enc_bool,
    int: _int_bytes,
    float: _enc_float,
    str: _enc_str,
    bytes: _enc_bytes,
}


def _none(w: _Walker, x: None) -> None:
    w.buf += b"N."


def _bool(w: _Walker, x: bool) -> None:
    w.buf += b"T." if x else b"F."


def _int(w: _Walker, x: int) -> None:
    w.buf += _int_bytes(x)


def _float(w: _Walker, x: float) -> None:
    w.buf += _enc_float(x)


def _complex(w: _Walker, x: complex) -> None:
    w.buf += b"c." + _float_bytes(x.real) + _float_bytes(x.imag)


def _str(w: _Walker, x: str) -> None:
    # Same bytes as _enc_str: "s." + length + UTF-8, whichever path writes them.
    w.buf += b"s."
    w.blob(x.encode("utf-8", "surrogatepass"))


def _bytes(w: _Walker, x: bytes) -> None:
    w.buf += b"b."
    w.blob(x)


def _bytearray(w: _Walker, x: bytearray) -> None:
    w.buf += b"B."
    w.blob(bytes(x))


def _memoryview(w: _Walker, x: memoryview) -> None:
    w.buf += b"m."
    w.text(x.format)
    w.feed(x.shape)
    w.blob(x.tobytes())


def _ellipsis(w: _Walker, x: object) -> None:
    w.buf += b"E."


def _notimplemented(w: _Walker, x: object) -> None:
    w.buf += b"n."


# -- builtin containers --------------------------------------------------------


def _sequence(tag: bytes) -> Handler:
    def handler(w: _Walker, x: Any) -> None:
        if w.enter(x):
            w.items(tag, x, len(x))
            w.leave(x)

    return handler


def _mapping(tag: bytes) -> Handler:
    def handler(w: _Walker, x: Any) -> None:
        if w.enter(x):
            w.mapping(tag, x)
            w.leave(x)

    return handler


def _defaultdict(w: _Walker, x: defaultdict[Any, Any]) -> None:
    if w.enter(x):
        w.buf += b"dd"
        w.feed_at(x.default_factory, ".default_factory")
        w.mapping(b"{.", x)
        w.leave(x)


def _deque(w: _Walker, x: deque[Any]) -> None:
    if w.enter(x):
        w.buf += b"dq"
        w.feed(x.maxlen)
        w.items(b"[.", x, len(x))
        w.leave(x)


def _namespace(w: _Walker, x: types.SimpleNamespace) -> None:
    if w.enter(x):
        w.mapping(b"ns", vars(x))
        w.leave(x)


def _mappingproxy(w: _Walker, x: types.MappingProxyType[Any, Any]) -> None:
    if w.enter(x):
        w.mapping(b"mp", x)
        w.leave(x)


def _range(w: _Walker, x: range) -> None:
    w.buf += b"r." + _int_bytes(x.start) + _int_bytes(x.stop) + _int_bytes(x.step)


def _slice(w: _Walker, x: slice) -> None:
    w.buf += b"S."
    w.feed_at(x.start, ".start")
    w.feed_at(x.stop, ".stop")
    w.feed_at(x.step, ".step")


def _array(w: _Walker, x: array.array[Any]) -> None:
    w.buf += b"a."
    w.text(x.typecode)
    w.blob(x.tobytes())


def _pattern(w: _Walker, x: re.Pattern[Any]) -> None:
    w.buf += b"re" + _Q(x.flags)
    w.feed(x.pattern)


# -- stdlib value types --------------------------------------------------------


def _tzinfo(w: _Walker, x: dt.tzinfo) -> None:
    """Time zones whose identity is their printable description.

    ``timezone`` and ``ZoneInfo`` reprs are exact (``timezone.utc`` and
    ``timezone(timedelta(0), "UTC")`` print differently, so they must differ); pytz
    and dateutil zones are described by type and repr.  Anything else may
    compute offsets from hidden state, so it is not guessed at.
    """
    t = type(x)
    module = t.__module__ or ""
    if t is dt.timezone:
        w.buf += b"tz"
        w.text(repr(x))
    elif module == "zoneinfo" and getattr(x, "key", None) is not None:
        w.buf += b"zi"
        w.text(x.key)  # type: ignore[attr-defined]
    elif module.split(".")[0] in ("pytz", "dateutil"):
        w.buf += b"tZ"
        w.text(_type_name(t))
        w.text(repr(x))
    else:
        raise _Unfp(f"time zone of type {_type_name(t)!r} has no exact description")


def _datetime(w: _Walker, x: dt.datetime) -> None:
    w.buf += b"D." + struct.pack(
        "<iBBBBBiB", x.year, x.month, x.day, x.hour, x.minute, x.second, x.microsecond, x.fold
    )
    w.feed_at(x.tzinfo, ".tzinfo")


def _date(w: _Walker, x: dt.date) -> None:
    w.buf += b"d." + struct.pack("<iBB", x.year, x.month, x.day)


def _time(w: _Walker, x: dt.time) -> None:
    w.buf += b"t." + struct.pack("<BBBiB", x.hour, x.minute, x.second, x.microsecond, x.fold)
    w.feed_at(x.tzinfo, ".tzinfo")


def _timedelta(w: _Walker, x: dt.timedelta) -> None:
    w.buf += b"e." + struct.pack("<qii", x.days, x.seconds, x.microseconds)


def _decimal(w: _Walker, x: decimal.Decimal) -> None:
    # str() is the exact scientific-string form: sign, coefficient, exponent,
    # NaN payloads; Decimal("1.0") and Decimal("1.00") print differently.
    w.buf += b"M."
    w.text(str(x))


def _fraction(w: _Walker, x: fractions.Fraction) -> None:
    w.buf += b"Q." + _int_bytes(x.numerator) + _int_bytes(x.denominator)


def _uuid(w: _Walker, x: uuid.UUID) -> None:
    w.buf += b"U." + x.int.to_bytes(16, "little")


def _path(w: _Walker, x: pathlib.PurePath) -> None:
    w.buf += b"P."
    w.text(type(x).__name__)
    w.text(str(x))


# -- code, functions, classes, modules -------------------------------------------


def _code(w: _Walker, c: types.CodeType) -> None:
    """Everything that decides behaviour; not file names or line numbers.

    A notebook cell's code gets a new file name on every execution in IPython,
    so including it would make every re-definition look different.
    """
    w.buf += b"K." + struct.pack(
        "<iiii", c.co_argcount, c.co_posonlyargcount, c.co_kwonlyargcount, c.co_flags
    )
    w.blob(c.co_code)
    w.blob(getattr(c, "co_exceptiontable", b""))
    w.text(c.co_name)
    w.text(getattr(c, "co_qualname", c.co_name))
    w.feed_at(c.co_consts, ".co_consts")
    w.feed(c.co_names)
    w.feed(c.co_varnames)
    w.feed(c.co_freevars)
    w.feed(c.co_cellvars)


def _cell(w: _Walker, cell: types.CellType) -> None:
    try:
        contents = cell.cell_contents
    except ValueError:  # not yet assigned
        w.buf += b"~."
        return
    w.buf += b"L."
    w.feed(contents)


def _function(w: _Walker, f: types.FunctionType) -> None:
    identity = _installed_identity(f)
    if identity is not None:
        w.buf += b"Fi"
        w.text(identity)
        return
    w.memoized(f, _function_content)


def _function_content(w: _Walker, f: types.FunctionType) -> None:
    if not w.enter(f):
        return
    module = f.__module__
    w.buf += b"Fc"
    w.feed(module if isinstance(module, str) else None)
    w.text(f.__name__)
    w.text(f.__qualname__)
    installed = sys.modules.get(module) if isinstance(module, str) else None
    if installed is not None and _is_installed(installed):
        w.buf += b"v"
        w.text(_module_version(module))
    else:
        w.buf += b"x"
    w.feed_at(f.__code__, ".__code__")
    w.feed_at(f.__defaults__, ".__defaults__")
    w.feed_at(f.__kwdefaults__, ".__kwdefaults__")
    closure = f.__closure__ or ()
    w.buf += _Q(len(closure))
    for name, cell in zip(f.__code__.co_freevars, closure, strict=True):
        w.feed_at(cell, f" (closure variable {name!r})")
    w.feed_at(f.__dict__, ".__dict__")
    w.feed_at(f.__annotations__, ".__annotations__")
    w.leave(f)


def _method(w: _Walker, m: types.MethodType) -> None:
    w.buf += b"Fm"
    w.feed_at(m.__func__, ".__func__")
    w.feed_at(m.__self__, ".__self__")


def _builtin_function(w: _Walker, f: types.BuiltinFunctionType) -> None:
    # len, math.sqrt (__self__ is the module), [].append (__self__ is the list).
    w.buf += b"Fb"
    w.feed(f.__module__ if isinstance(f.__module__, str) else None)
    w.text(f.__qualname__)
    w.feed_at(f.__self__, ".__self__")


def _descriptor(w: _Walker, d: Any) -> None:
    # str.upper, object.__init__, slot members, (1).__add__
    w.buf += b"Fd"
    w.text(type(d).__name__)
    w.text(d.__name__)
    w.feed_at(d.__objclass__, ".__objclass__")
    if isinstance(d, types.MethodWrapperType):
        w.feed_at(d.__self__, ".__self__")


def _wrapper_method(w: _Walker, m: classmethod | staticmethod) -> None:  # type: ignore[type-arg]
    w.buf += b"Fw"
    w.text(type(m).__name__)
    w.feed_at(m.__func__, ".__func__")


def _property(w: _Walker, p: property) -> None:
    w.buf += b"Fp"
    w.fields((("fget", p.fget), ("fset", p.fset), ("fdel", p.fdel), ("__doc__", p.__doc__)))


def _cached_property(w: _Walker, p: functools.cached_property[Any]) -> None:
    w.buf += b"Fq"
    w.fields((("func", p.func), ("attrname", p.attrname), ("__doc__", p.__doc__)))


def _partial(w: _Walker, p: functools.partial[Any]) -> None:
    if w.enter(p):
        w.buf += b"Fx"
        w.fields(
            (("func", p.func), ("args", p.args), ("keywords", p.keywords), ("__dict__", vars(p)))
        )
        w.leave(p)


def _lru_cache(w: _Walker, f: Any) -> None:
    # The cache's contents do not change what calls return; what is wrapped does.
    w.buf += b"Fl"
    w.fields((("__wrapped__", f.__wrapped__), ("cache_parameters", f.cache_parameters())))


_SKIP_CLASS_KEYS = frozenset({"__dict__", "__weakref__", "_abc_impl"})


def _class(w: _Walker, c: type) -> None:
    identity = _installed_identity(c)
    if identity is not None:
        w.buf += b"Ci"
        w.text(identity)
        return
    w.memoized(c, _class_content)


def _class_content(w: _Walker, c: type) -> None:
    """A class defined outside installed code: its namespace, bases and metaclass.

    ``_abc_impl`` (ABC registration caches) and the ``__dict__``/``__weakref__``
    descriptors are skipped: they are bookkeeping, not source.
    """
    if not w.enter(c):
        return
    w.buf += b"Cc"
    module = c.__dict__.get("__module__", c.__module__)
    w.feed(module if isinstance(module, str) else None)
    w.text(c.__name__)
    w.text(c.__qualname__)
    w.feed_at(type(c), " (metaclass)")
    w.feed_at(c.__bases__, ".__bases__")
    w.fields(((k, v) for k, v in c.__dict__.items() if k not in _SKIP_CLASS_KEYS))
    w.leave(c)


def _module(w: _Walker, m: types.ModuleType) -> None:
    """Name, version and file; for code outside installed locations, the file's stat.

    The file's mtime and size stand in for its content so that an edited and
    reloaded local module reads as changed.  Attributes assigned on a module
    object at run time are not covered.
    """
    w.buf += b"Mo"
    w.text(m.__name__)
    file = getattr(m, "__file__", None)
    w.feed(file if isinstance(file, str) else None)
    if _is_installed(m):
        w.buf += b"v"
        w.text(_module_version(m.__name__))
    elif isinstance(file, str):
        try:
            st = os.stat(file)
            w.buf += b"s" + _Q(st.st_mtime_ns) + _Q(st.st_size)
        except OSError:
            w.buf += b"?"
    else:
        w.buf += b"x"


# -- records: enums, dataclasses, namedtuples --------------------------------------


def _enum_member(w: _Walker, m: enum.Enum) -> None:
    w.buf += b"En"
    w.feed_at(type(m), " (enum class)")
    w.feed(m._name_)
    w.feed_at(m._value_, ".value")


def _dataclass(w: _Walker, x: Any) -> None:
    """Fields in declaration order, then any extra instance attributes."""
    if not w.enter(x):
        return
    t = type(x)
    w.buf += b"DC"
    w.feed_at(t, " (class)")
    names = [f.name for f in dataclasses.fields(x)]
    w.fields((name, getattr(x, name, _MISSING)) for name in names)
    extra = getattr(x, "__dict__", None) or {}
    w.fields((k, v) for k, v in extra.items() if k not in names)
    w.fields((s, getattr(x, s, _MISSING)) for s in _slot_names(t) if s not in names)
    w.leave(x)


def _namedtuple(w: _Walker, x: tuple[Any, ...]) -> None:
    if not w.enter(x):
        return
    w.buf += b"NT"
    w.feed_at(type(x), " (class)")
    w.items(b"(.", tuple(x), len(x))
    w.fields((getattr(x, "__dict__", None) or {}).items())
    w.leave(x)


def _structseq(w: _Walker, x: tuple[Any, ...]) -> None:
    # os.stat_result, time.struct_time: visible fields plus the named-only ones.
    w.buf += b"SQ"
    w.feed(type(x))
    w.feed(x.__reduce__()[1])  # type: ignore[index]


def _dataclass_field(w: _Walker, f: dataclasses.Field[Any]) -> None:
    w.buf += b"DF"
    kind = getattr(getattr(f, "_field_type", None), "name", None)
    attrs = ("name", "type", "default", "default_factory", "init", "repr", "hash", "compare")
    w.fields((a, getattr(f, a)) for a in (*attrs, "metadata", "kw_only") if hasattr(f, a))
    w.feed(kind)


def _slotted_record(w: _Walker, x: Any) -> None:
    # dataclasses._DataclassParams: plain flags in slots.
    w.buf += b"SR"
    w.feed(type(x))
    w.fields((s, getattr(x, s, _MISSING)) for s in _slot_names(type(x)))


def _tuplegetter(w: _Walker, x: Any) -> None:
    # The field accessors namedtuple puts in its class namespace.
    w.buf += b"TG"
    w.feed(x.__reduce__()[1])


_TYPEVAR_ATTRS = ("__name__", "__bound__", "__constraints__", "__covariant__", "__contravariant__")


def _typing(w: _Walker, x: Any) -> None:
    """Annotations: generic aliases by origin and arguments, the rest by name."""
    typing = sys.modules["typing"]
    w.buf += b"Ty"
    w.text(_type_name(type(x)))
    if isinstance(x, typing.TypeVar):
        w.fields((a, getattr(x, a)) for a in _TYPEVAR_ATTRS)
    elif isinstance(x, typing.ForwardRef):
        w.text(x.__forward_arg__)
    elif getattr(x, "__origin__", None) is not None or isinstance(x, types.UnionType):
        w.buf += b"g"
        w.feed_at(getattr(x, "__origin__", None), ".__origin__")
        w.feed_at(getattr(x, "__args__", ()), ".__args__")
        w.feed_at(getattr(x, "__metadata__", ()), ".__metadata__")
    else:
        module = sys.modules.get(type(x).__module__)
        name = next((k for k, v in vars(module).items() if v is x), None) if module else None
        if name is None:
            raise _Unfp(f"typing object {_short_repr(x)} has no module-level name")
        w.buf += b"n"
        w.text(name)


def _stateless(w: _Walker, x: object) -> bool:
    """Sentinels: ``object()``, or a state-free instance named in an installed module.

    Such an object has no content beyond its identity and cannot be mutated,
    so its identity is an exact fingerprint.  Plain ``object()`` uses ``id()``
    (an id reused after the original died names an indistinguishable object);
    library sentinels such as ``dataclasses.MISSING`` use their module-level
    name, which is stable across processes.
    """
    t = type(x)
    if t is object:
        w.buf += b"o." + _Q(id(x))
        return True
    if t.__eq__ is not object.__eq__ or not _plain_python_mro(t):
        return False
    if getattr(x, "__dict__", None) or any(hasattr(x, s) for s in _slot_names(t)):
        return False
    module = sys.modules.get(t.__module__)
    if module is None or not _is_installed(module):
        return False
    for name, value in vars(module).items():
        if value is x:
            w.buf += b"O."
            w.text(f"{module.__name__}:{name}@{_module_version(module.__name__)}")
            return True
    return False


# -- numpy ---------------------------------------------------------------------


def _dtype_key(d: Any) -> str:
    """Everything that decides how a buffer is read: byte order, unit, field layout."""
    key = d.str
    if d.names is not None or d.subdtype is not None:
        key += repr(d.descr) + ("aligned" if d.isalignedstruct else "")
    if d.kind == "T":  # numpy 2 variable-width strings: the NA object is a parameter
        key += repr(d)
    return key


def _raw_ok(d: Any) -> bool:
    """Whether an array's bytes are its content (no pointers, no Python objects)."""
    if d.names is not None:
        return all(_raw_ok(d.fields[name][0]) for name in d.names)
    if d.subdtype is not None:
        return _raw_ok(d.subdtype[0])
    return d.kind in "biufcmMSUV" and not d.hasobject


def _ndarray_body(w: _Walker, a: Any) -> None:
    np = sys.modules["numpy"]
    d = a.dtype
    w.text(_dtype_key(d))
    w.feed(a.shape)
    if _raw_ok(d):
        w.buf += b"r"
        if a.flags.c_contiguous:
            w.blob(a.reshape(-1).view(np.uint8))
            return
        # Strided: hash the C-order bytes a slab of leading-axis rows at a time,
        # so a transposed or sliced 1 GB array is not copied whole.  The hasher
        # sees exactly the bytes the contiguous branch would have given it.
        w.spend(a.nbytes >> 3)
        w.buf += _Q(a.nbytes)
        w.flush()
        rows = max(1, _BULK_CHUNK // max(1, a.nbytes // len(a))) if a.nbytes else 1
        for start in range(0, len(a), rows):
            w.h.update(np.ascontiguousarray(a[start : start + rows]).reshape(-1).view(np.uint8))
    elif d.kind in "OT" and d.names is None:
        w.buf += b"o"
        w.items(b"[.", a.reshape(-1).tolist() if d.kind == "O" else a.ravel().tolist(), a.size)
    else:
        raise _Unfp(f"numpy dtype {d} holds objects inside records")


def _ndarray(w: _Walker, a: Any) -> None:
    if not w.enter(a):
        return
    w.buf += b"NA"
    w.text(_type_name(type(a)))
    try:
        _ndarray_body(w, a)
    except _Unfp as e:
        e.path.append(" (array elements)")
        raise
    w.leave(a)


def _masked_array(w: _Walker, a: Any) -> None:
    if not w.enter(a):
        return
    np = sys.modules["numpy"]
    w.buf += b"NM"
    _ndarray_body(w, np.asarray(a.data))
    _ndarray_body(w, np.ma.getmaskarray(a))
    w.feed_at(a.fill_value, ".fill_value")
    w.feed(bool(a.hardmask))
    w.leave(a)


def _numpy_scalar(w: _Walker, x: Any) -> None:
    d = x.dtype
    if not _raw_ok(d):
        raise _Unfp(f"numpy scalar of dtype {d} holds objects")
    w.buf += b"Ns"
    w.text(_dtype_key(d))
    w.blob(x.tobytes())


def _numpy_dtype(w: _Walker, d: Any) -> None:
    w.buf += b"Nd"
    w.text(_dtype_key(d))
    w.text(str(d))


def _numpy_ufunc(w: _Walker, f: Any) -> None:
    np = sys.modules["numpy"]
    if vars(np).get(f.__name__) is not f:
        raise _Unfp(f"ufunc {f.__name__!r} is not numpy's own")
    w.buf += b"Nu"
    w.text(f"numpy:{f.__name__}@{np.__version__}")


# -- pandas ----------------------------------------------------------------------


def _pd_values(w: _Walker, values: Any) -> None:
    """A column's data: numpy buffers where pandas keeps them, exact per dtype otherwise.

    ``pandas.util.hash_pandas_object`` is not used: it folds each row into 64
    bits (distinct frames can collide) and hashes object columns through
    ``str()`` (so ``1`` and ``"1"`` collide).  Raw numpy buffers are both exact
    and faster.
    """
    np = sys.modules["numpy"]
    pd = sys.modules["pandas"]
    if isinstance(values, np.ndarray):
        w.buf += b"v"
        _ndarray_body(w, values)
        return
    dtype = values.dtype
    w.buf += b"x"
    w.text(_type_name(type(values)))
    w.text(str(dtype))
    if isinstance(dtype, np.dtype) or isinstance(values, pd.arrays.NumpyExtensionArray):
        _ndarray_body(w, np.asarray(values))  # a view of pandas' own buffer, no copy
    elif isinstance(dtype, pd.CategoricalDtype):
        _ndarray_body(w, np.asarray(values.codes))
        w.feed_at(values.categories, ".categories")
        w.feed(bool(values.ordered))
    elif isinstance(dtype, (pd.DatetimeTZDtype, pd.PeriodDtype)):
        _ndarray_body(w, np.asarray(values.asi8))
        w.feed_at(getattr(dtype, "tz", None), ".tz")
    elif isinstance(dtype, pd.IntervalDtype):
        w.feed_at(values.left, ".left")
        w.feed_at(values.right, ".right")
        w.text(values.closed)
    elif isinstance(dtype, pd.SparseDtype):
        _ndarray_body(w, np.asarray(values.sp_values))
        _ndarray_body(w, np.asarray(values.sp_index.indices))
        w.feed_at(values.fill_value, ".fill_value")
        w.buf += _Q(len(values))
    else:
        # Masked (Int64, boolean, Float64), string, arrow and third-party arrays:
        # the missing-value mask, then every present element as a Python object.
        mask = np.asarray(values.isna(), dtype=bool)
        _ndarray_body(w, mask)
        numpy_dtype = getattr(dtype, "numpy_dtype", None)
        if isinstance(numpy_dtype, np.dtype) and numpy_dtype.kind in "biufc":
            filled = values.to_numpy(dtype=numpy_dtype, na_value=numpy_dtype.type(0))
            w.buf += b"n"
            _ndarray_body(w, np.asarray(filled))
            return
        # Missing entries are all the dtype's NA (named in the dtype string) and
        # their positions are in the mask, so only present values are hashed:
        # that keeps a string column with gaps on the all-str fast path.
        w.buf += b"o"
        objects = np.asarray(values, dtype=object)
        _ndarray_body(w, objects[~mask] if mask.any() else objects)


def _pd_index(w: _Walker, idx: Any) -> None:
    pd = sys.modules["pandas"]
    w.buf += b"PI"
    w.text(_type_name(type(idx)))
    w.feed_at(list(idx.names), ".names")
    if isinstance(idx, pd.RangeIndex):
        w.buf += _int_bytes(idx.start) + _int_bytes(idx.stop) + _int_bytes(idx.step)
    elif isinstance(idx, pd.MultiIndex):
        w.feed_at(list(idx.levels), ".levels")
        for codes in idx.codes:
            _ndarray_body(w, sys.modules["numpy"].asarray(codes))
    else:
        w.feed(getattr(idx, "freqstr", None))
        try:
            _pd_values(w, idx.array)
        except _Unfp as e:
            e.path.append(".values")
            raise


def _pd_series(w: _Walker, s: Any) -> None:
    if not w.enter(s):
        return
    w.buf += b"PS"
    w.feed_at(s.name, ".name")
    w.feed_at(s.index, ".index")
    try:
        _pd_values(w, s.array)
    except _Unfp as e:
        e.path.append(".values")
        raise
    w.feed_at(dict(s.attrs), ".attrs")
    w.feed(bool(s.flags.allows_duplicate_labels))
    w.leave(s)


def _pd_frame(w: _Walker, df: Any) -> None:
    if not w.enter(df):
        return
    w.buf += b"PF" + _Q(df.shape[0]) + _Q(df.shape[1])
    w.feed_at(df.columns, ".columns")
    w.feed_at(df.index, ".index")
    for j, (_, column) in enumerate(df.items()):
        try:
            _pd_values(w, column.array)
        except _Unfp as e:
            e.path.append(f".iloc[:, {j}]")
            raise
    w.feed_at(dict(df.attrs), ".attrs")
    w.feed(bool(df.flags.allows_duplicate_labels))
    w.leave(df)


def _pd_extension_array(w: _Walker, a: Any) -> None:
    w.buf += b"PE"
    _pd_values(w, a)


def _pd_scalar(w: _Walker, x: Any) -> None:
    pd = sys.modules["pandas"]
    w.buf += b"Px"
    w.text(_type_name(type(x)))
    if x is pd.NaT or x is pd.NA:
        return
    if isinstance(x, (pd.Timestamp, pd.Timedelta)):
        w.buf += _int_bytes(x.value)
        w.text(getattr(x, "unit", "ns"))
        if isinstance(x, pd.Timestamp):
            w.feed_at(x.tzinfo, ".tzinfo")
    elif isinstance(x, pd.Period):
        w.buf += _int_bytes(x.ordinal)
        w.text(x.freqstr)
    elif isinstance(x, pd.Interval):
        w.feed_at(x.left, ".left")
        w.feed_at(x.right, ".right")
        w.text(x.closed)


# ---------------------------------------------------------------------------
# Dispatch
# ---------------------------------------------------------------------------

_EXACT: dict[type, Handler] = {
    type(None): _none,
    bool: _bool,
    int: _int,
    float: _float,
    complex: _complex,
    str: _str,
    bytes: _bytes,
    bytearray: _bytearray,
    memoryview: _memoryview,
    type(Ellipsis): _ellipsis,
    type(NotImplemented): _notimplemented,
    list: _sequence(b"[."),
    tuple: _sequence(b"(."),
    set: _sequence(b"<."),
    frozenset: _sequence(b">."),
    dict: _mapping(b"{."),
    OrderedDict: _mapping(b"O."),
    Counter: _mapping(b"C."),
    defaultdict: _defaultdict,
    deque: _deque,
    types.SimpleNamespace: _namespace,
    types.MappingProxyType: _mappingproxy,
    range: _range,
    slice: _slice,
    array.array: _array,
    re.Pattern: _pattern,
    dt.datetime: _datetime,
    dt.date: _date,
    dt.time: _time,
    dt.timedelta: _timedelta,
    dt.timezone: _tzinfo,
    decimal.Decimal: _decimal,
    fractions.Fraction: _fraction,
    uuid.UUID: _uuid,
    types.CodeType: _code,
    types.CellType: _cell,
    types.FunctionType: _function,
    types.MethodType: _method,
    types.BuiltinFunctionType: _builtin_function,
    types.MethodDescriptorType: _descriptor,
    types.WrapperDescriptorType: _descriptor,
    types.MethodWrapperType: _descriptor,
    types.ClassMethodDescriptorType: _descriptor,
    types.GetSetDescriptorType: _descriptor,
    types.MemberDescriptorType: _descriptor,
    classmethod: _wrapper_method,
    staticmethod: _wrapper_method,
    property: _property,
    functools.cached_property: _cached_property,
    functools.partial: _partial,
    type: _class,
    types.ModuleType: _module,
    dataclasses.Field: _dataclass_field,
}

_resolved: weakref.WeakKeyDictionary[type, Handler] = weakref.WeakKeyDictionary()


def _unsupported(w: _Walker, x: object) -> None:
    if x is _MISSING:
        w.buf += b"_."
        return
    identity = _installed_identity(x) if callable(x) else None
    if identity is not None:
        # Function-like objects an installed module exposes under their own
        # name (numpy's array-function dispatchers, C-level callables).
        w.buf += b"Xi"
        w.text(_type_name(type(x)))
        w.text(identity)
        return
    if _stateless(w, x):
        return
    t = type(x)
    own_eq = " (it defines its own __eq__)" if "__eq__" in t.__dict__ else ""
    raise _Unfp(f"object of type {_type_name(t)!r} has no content-based fingerprint{own_eq}")


def _resolve(t: type) -> Handler:
    """Pick a handler for a type outside the exact table (cached per type)."""
    try:
        return _resolved[t]
    except (KeyError, TypeError):
        pass
    handler = _classify(t)
    with contextlib.suppress(TypeError):  # a type that takes no weak references
        _resolved[t] = handler
    return handler


def _classify(t: type) -> Handler:
    np = sys.modules.get("numpy")
    if np is not None:
        if issubclass(t, np.ma.MaskedArray):
            return _masked_array
        if t in (np.ndarray, np.matrix, np.memmap):
            return _ndarray
        if issubclass(t, np.generic):
            return _numpy_scalar
        if issubclass(t, np.dtype):
            return _numpy_dtype
        if t is np.ufunc:
            return _numpy_ufunc
    pd = sys.modules.get("pandas")
    if pd is not None:
        own = t.__module__.partition(".")[0] == "pandas"  # subclasses elsewhere add state
        if t is pd.DataFrame:
            return _pd_frame
        if t is pd.Series:
            return _pd_series
        if own and issubclass(t, pd.Index):
            return _pd_index
        if own and issubclass(t, pd.api.extensions.ExtensionArray):
            return _pd_extension_array
        scalars = (pd.Timestamp, pd.Timedelta, pd.Period, pd.Interval, type(pd.NaT), type(pd.NA))
        if t in scalars:
            return _pd_scalar
    if issubclass(t, type):
        return _class
    if issubclass(t, enum.Enum):
        return _enum_member
    if issubclass(t, types.ModuleType):
        return _module
    if dataclasses.is_dataclass(t) and _plain_python_mro(t):
        return _dataclass
    if issubclass(t, tuple):
        if "n_sequence_fields" in t.__dict__:
            return _structseq
        fields = getattr(t, "_fields", None)
        if isinstance(fields, tuple) and _plain_python_mro(t, allow=(tuple,)):
            return _namedtuple
        return _unsupported
    if issubclass(t, dt.tzinfo):
        return _tzinfo
    if issubclass(t, pathlib.PurePath) and t.__module__ == "pathlib":
        return _path
    if t.__module__ == "functools" and t.__name__ == "_lru_cache_wrapper":
        return _lru_cache
    if t.__module__ == "_collections" and t.__name__ == "_tuplegetter":
        return _tuplegetter
    if t.__module__ == "dataclasses" and t.__name__ == "_DataclassParams":
        return _slotted_record
    if t.__module__ in ("typing", "typing_extensions") or t in (
        types.GenericAlias,
        types.UnionType,
    ):
        return _typing
    return _unsupported


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------


def _walk(value: object, budget: int | None) -> bytes | Unfingerprintable:
    walker = _Walker(DEFAULT_BUDGET if budget is None else budget)
    try:
        walker.feed(value)
        return walker.digest()
    except _Unfp as e:
        where = "value" + "".join(reversed(e.path))
        return Unfingerprintable(f"{where}: {e.reason}")
    except RecursionError:
        return Unfingerprintable("value: nested too deeply to walk")
    except Exception as e:  # a value that fails while being read is not known to be unchanged
        return Unfingerprintable(f"value: {type(e).__name__} while reading it: {e}")


def fingerprint(value: object, *, budget: int | None = None) -> bytes | Unfingerprintable:
    """A digest of ``value``'s type and content, or an :class:`Unfingerprintable`.

    Equal digests mean the two states print and behave alike (see the module
    docstring for exactly what is covered).  ``budget`` bounds the work (units
    are objects visited plus 8-byte words of buffer data; ``None`` means
    :data:`DEFAULT_BUDGET`); exceeding it returns Unfingerprintable rather than
    a partial, possibly colliding, digest.
    """
    return _walk(value, budget)


def explain_unfingerprintable(value: object, *, budget: int | None = None) -> str:
    """One line saying why ``value`` cannot be fingerprinted, naming the nested element.

    For a value that can be fingerprinted the answer says so, so the runtime
    can show this text verbatim in ``%reactive explain``.
    """
    result = _walk(value, budget)
    if isinstance(result, Unfingerprintable):
        return result.reason
    return f"value of type {_type_name(type(value))!r} is fingerprintable"
