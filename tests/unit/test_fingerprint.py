"""fingerprint(): equal content -> equal digest, any difference -> a different one.

The asymmetry matters: a spurious "changed" costs one re-run, a spurious
"unchanged" silently leaves a cell showing stale output.  So besides
"same content, same digest" every test checks that mutations, type changes
and unsupported values all read as different.
"""

from __future__ import annotations

import array
import collections
import copy
import dataclasses
import datetime as dt
import decimal
import enum
import fractions
import functools
import io
import math
import pathlib
import re
import struct
import sys
import threading
import types
import typing
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reactive.fingerprint import (
    DIGEST_SIZE,
    Unfingerprintable,
    explain_unfingerprintable,
    fingerprint,
)


def same(a: object, b: object) -> bool:
    fa, fb = fingerprint(a), fingerprint(b)
    assert isinstance(fa, bytes), explain_unfingerprintable(a)
    assert isinstance(fb, bytes), explain_unfingerprintable(b)
    return fa == fb


def notebook(source: str) -> dict[str, Any]:
    """Run ``source`` the way a kernel runs a cell: in a ``__main__`` namespace."""
    ns: dict[str, Any] = {"__name__": "__main__"}
    exec(compile(source, "<cell>", "exec"), ns)
    return ns


# -- the sentinel -----------------------------------------------------------------


def test_unfingerprintable_never_equal_even_to_itself() -> None:
    u = Unfingerprintable("x")
    assert u != u
    assert u.__eq__(u) is False
    assert Unfingerprintable() != Unfingerprintable()
    assert u != b"x"
    assert len({u, u}) == 1  # hashable by identity, so usable as a dict key
    assert "x" in repr(u)


def test_same_arbitrary_object_twice_is_unequal() -> None:
    class Thing:
        pass

    obj = Thing()
    first, second = fingerprint(obj), fingerprint(obj)
    assert isinstance(first, Unfingerprintable)
    assert first != second


@pytest.mark.parametrize(
    "value",
    [
        threading.Lock(),
        io.StringIO("x"),
        (i for i in range(3)),
        iter([1, 2]),
        type("Plain", (), {})(),
        collections.UserList([1]),
    ],
    ids=lambda v: type(v).__name__,
)
def test_unsupported_objects(value: object) -> None:
    result = fingerprint(value)
    assert isinstance(result, Unfingerprintable)
    assert type(value).__name__ in explain_unfingerprintable(value)


def test_custom_eq_object_is_unfingerprintable() -> None:
    class Money:
        def __init__(self, cents: int) -> None:
            self.cents = cents

        def __eq__(self, other: object) -> bool:
            return isinstance(other, Money) and other.cents == self.cents

        __hash__ = None  # type: ignore[assignment]

    assert "__eq__" in explain_unfingerprintable(Money(1))
    assert fingerprint(Money(1)) != fingerprint(Money(1))


def test_subclasses_of_builtins_are_not_treated_as_the_builtin() -> None:
    class Tagged(list):  # type: ignore[type-arg]
        label = "extra state"

    assert isinstance(fingerprint(Tagged([1])), Unfingerprintable)
    assert isinstance(fingerprint(type("S", (str,), {})("a")), Unfingerprintable)


def test_explanation_names_the_nested_element() -> None:
    why = explain_unfingerprintable({"rows": [1, 2, {"lock": threading.Lock()}]})
    assert why.startswith("value['rows'][2]['lock']:")
    assert "lock" in why
    assert "fingerprintable" in explain_unfingerprintable([1, 2])
    assert "\n" not in why


def test_digest_shape() -> None:
    result = fingerprint("x")
    assert isinstance(result, bytes)
    assert len(result) == DIGEST_SIZE


# -- scalars and type distinctions --------------------------------------------------


SCALARS = [
    None,
    True,
    False,
    0,
    1,
    -1,
    2**64,
    -(2**200),
    0.0,
    -0.0,
    1.0,
    float("inf"),
    float("nan"),
    1j,
    complex(1, -0.0),
    "",
    "1",
    "é\ud800",
    b"",
    b"1",
    bytearray(b"1"),
    (),
    [],
    {},
    set(),
    frozenset(),
    (1,),
    [1],
    {1},
    ...,
    NotImplemented,
]


def test_scalars_are_pairwise_distinct() -> None:
    digests = [fingerprint(v) for v in SCALARS]
    assert all(isinstance(d, bytes) for d in digests)
    assert len(set(digests)) == len(SCALARS)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (1, 1.0),
        (1, True),
        (1.0, True),
        (0, False),
        ("1", b"1"),
        (b"1", bytearray(b"1")),
        ((1, 2), [1, 2]),
        ([1, 2], [2, 1]),
        ({"a": 1}, {"a": 1.0}),
        ({1: "a"}, {True: "a"}),
        ({"a": 1, "b": 2}, {"b": 2, "a": 1}),  # equal dicts, different order -> different
        ({1}, frozenset({1})),
        ({1, 2}, [1, 2]),
        (0.0, -0.0),
        (["ab", "c"], ["a", "bc"]),
        ([["a"], "b"], [["a", "b"]]),
        ([], [[]]),
        ((), ((),)),
        ([None], [[]]),
        (range(3), range(0, 3, 2)),
        (range(3), [0, 1, 2]),
        ([1, 2**70], [1, 2**71]),
        ([1.0, 2.0], [1.0, 2]),
        (["a", "b"], ["a", b"b"]),
    ],
)
def test_type_and_content_distinctions(a: object, b: object) -> None:
    assert not same(a, b)


def test_nan_equals_nan_any_payload() -> None:
    payload_nan = struct.unpack("<d", b"\x01\x00\x00\x00\x00\x00\xf8\xff")[0]
    assert math.isnan(payload_nan)
    assert same(float("nan"), payload_nan)
    assert same([float("nan"), 1.0], [payload_nan, 1.0])  # homogeneous fast path
    assert same([float("nan"), "x"], [payload_nan, "x"])  # general path
    assert same(complex(float("nan"), 1), complex(payload_nan, 1))


def test_equal_content_in_separate_objects() -> None:
    def build() -> object:
        return {
            "ints": list(range(50)),
            "floats": [0.5 * i for i in range(50)],
            "strs": [str(i) for i in range(50)],
            "bools": [True, False],
            "mixed": [1, "a", None, (2.5, b"x"), {"k": [1]}],
            "nested": ((1, [2, {3: {4}}]),),
            "big": 10**40,
        }

    assert same(build(), build())


def test_set_order_is_part_of_the_state() -> None:
    s1: set[int] = set()
    s1.add(0)
    s1.add(8)
    s2: set[int] = set()
    s2.add(8)
    s2.add(0)
    assert s1 == s2
    if repr(s1) != repr(s2):  # same elements, printed in another order
        assert not same(s1, s2)
    assert same({1, 2, 3}, {1, 2, 3})
    assert same(frozenset({"a", "b"}), frozenset({"a", "b"}))


def test_packed_columns_long_sequences() -> None:
    # Sequences of 16+ plain scalars are packed per type; check they stay exact.
    n = 20
    assert same([0.5] * n, [0.5] * n)
    assert not same([0.5] * n, [0.5] * (n - 1) + [0.25])
    assert not same([1] * n, [1.0] * n)
    assert not same([1] * n, [True] * n)
    assert not same([1, 2.0] * n, [1.0, 2] * n)
    assert not same([1] * n + [1.0] * n, [1.0] * n + [1] * n)
    assert not same(["ab", "c"] * n, ["a", "bc"] * n)
    assert not same(["a", None] * n, ["a", "None"] * n)
    assert not same([None] * n, [None] * (n + 1))
    assert same(["a", None, 1, 2.5, True] * n, ["a", None, 1, 2.5, True] * n)
    assert not same([2**63 - 1] * n, [2**63] * n)  # past int64: general path
    assert same([2**70] * n, [2**70] * n)
    assert not same(list(range(n)), tuple(range(n)))
    assert not same(set(range(n)), frozenset(range(n)))
    assert same([float("nan")] * n, [-float("nan")] * n)


def test_import_does_not_load_optional_libraries() -> None:
    import subprocess

    code = (
        "import sys, reactive.fingerprint as f; f.fingerprint([1, {'a': 2}]);"
        "bad = {'numpy', 'pandas', 'IPython', 'ipykernel', 'ipywidgets'} & set(sys.modules);"
        "sys.exit(sorted(bad) or 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# -- containers: mutation, cycles, budget --------------------------------------------


def test_in_place_mutation_changes_the_fingerprint() -> None:
    lst = [1, 2, 3]
    d: dict[str, Any] = {"a": [1]}
    s = {1}
    ba = bytearray(b"ab")
    before = [fingerprint(v) for v in (lst, d, s, ba)]
    lst.append(4)
    d["a"].append(2)
    s.add(2)
    ba[0] = 0
    after = [fingerprint(v) for v in (lst, d, s, ba)]
    assert all(x != y for x, y in zip(before, after, strict=True))


def test_rebuilt_container_with_same_value_is_unchanged() -> None:
    d = {"a": [1, 2], "b": "x"}
    f1 = fingerprint(d["a"])
    d = {"a": [1, 2], "b": "y"}
    assert fingerprint(d["a"]) == f1


def test_self_referencing_list() -> None:
    a: list[Any] = [1]
    a.append(a)
    b: list[Any] = [1]
    b.append(b)
    fa = fingerprint(a)
    assert isinstance(fa, bytes)
    assert fa == fingerprint(b)
    a[0] = 2
    assert fingerprint(a) != fa
    c: list[Any] = [1, [1]]  # same unfolding one level down, but no cycle
    assert fingerprint(c) != fa


def test_mutual_cycle_and_dict_cycle() -> None:
    x: list[Any] = []
    y: list[Any] = [x]
    x.append(y)
    d: dict[str, Any] = {}
    d["self"] = d
    assert isinstance(fingerprint(x), bytes)
    assert isinstance(fingerprint(d), bytes)
    x2: list[Any] = []
    x2.append([x2])
    assert same(x, x2)
    e: dict[str, Any] = {}
    e["self"] = e
    assert same(d, e)


def test_shared_substructure_is_not_a_cycle() -> None:
    inner = [1, 2]
    assert same([inner, inner], [[1, 2], [1, 2]])


def test_budget() -> None:
    big = list(range(1000))
    assert isinstance(fingerprint(big, budget=100), Unfingerprintable)
    assert "budget" in explain_unfingerprintable(big, budget=100)
    assert isinstance(fingerprint(big, budget=10_000), bytes)
    dag: list[Any] = []
    for _ in range(80):  # 2**80 paths through 80 objects
        dag = [dag, dag]
    assert isinstance(fingerprint(dag, budget=100_000), Unfingerprintable)


def test_deep_nesting_does_not_crash() -> None:
    deep: list[Any] = []
    for _ in range(100_000):
        deep = [deep]
    assert isinstance(fingerprint(deep), Unfingerprintable)


def test_collections_types() -> None:
    od = collections.OrderedDict(a=1)
    assert same(od, collections.OrderedDict(a=1))
    assert not same(od, {"a": 1})
    assert not same(collections.defaultdict(list, a=1), collections.defaultdict(set, a=1))
    assert not same(collections.Counter("ab"), dict(collections.Counter("ab")))
    assert not same(collections.deque([1], maxlen=2), collections.deque([1]))
    assert same(collections.deque([1, 2]), collections.deque([1, 2]))
    assert not same(types.SimpleNamespace(a=1), types.SimpleNamespace(a=2))
    assert not same(array.array("i", [1]), array.array("l", [1]))
    assert same(memoryview(b"ab"), memoryview(b"ab"))
    assert not same(re.compile("a", re.I), re.compile("a"))
    assert not same(slice(1, 2), slice(1, 3))


# -- stdlib value types -------------------------------------------------------------


def test_stdlib_values() -> None:
    utc = dt.timezone.utc
    pairs_equal = [
        (dt.datetime(2024, 1, 2, 3, 4, 5, 6), dt.datetime(2024, 1, 2, 3, 4, 5, 6)),
        (dt.date(2024, 1, 2), dt.date(2024, 1, 2)),
        (dt.time(1, 2, tzinfo=utc), dt.time(1, 2, tzinfo=utc)),
        (dt.timedelta(days=1), dt.timedelta(hours=24)),
        (decimal.Decimal("1.10"), decimal.Decimal("1.10")),
        (fractions.Fraction(2, 4), fractions.Fraction(1, 2)),
        (uuid.UUID(int=5), uuid.UUID(int=5)),
        (pathlib.PurePosixPath("a/b"), pathlib.PurePosixPath("a//b")),
    ]
    for a, b in pairs_equal:
        assert same(a, b), (a, b)
    pairs_different = [
        (dt.datetime(2024, 1, 2), dt.datetime(2024, 1, 2, tzinfo=utc)),
        (
            dt.datetime(2024, 1, 2, tzinfo=utc),
            dt.datetime(2024, 1, 2, tzinfo=dt.timezone(dt.timedelta(0), "UTC")),
        ),
        (
            dt.datetime(2024, 1, 2, tzinfo=dt.timezone(dt.timedelta(hours=1))),
            dt.datetime(2024, 1, 2, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        ),
        (dt.datetime(2024, 11, 3, 1, 30, fold=0), dt.datetime(2024, 11, 3, 1, 30, fold=1)),
        (dt.datetime(2024, 1, 2), dt.date(2024, 1, 2)),
        (dt.time(1), dt.time(1, tzinfo=utc)),
        (decimal.Decimal("1.1"), decimal.Decimal("1.10")),
        (decimal.Decimal("1"), 1),
        (fractions.Fraction(1, 2), 0.5),
        (uuid.UUID(int=5), uuid.UUID(int=6)),
        (pathlib.PurePosixPath("a"), pathlib.PureWindowsPath("a")),
        (pathlib.PurePosixPath("a"), "a"),
        (dt.timedelta(seconds=1), dt.timedelta(microseconds=1)),
    ]
    for a, b in pairs_different:
        assert not same(a, b), (a, b)


def test_zoneinfo() -> None:
    zoneinfo = pytest.importorskip("zoneinfo")
    try:
        paris = zoneinfo.ZoneInfo("Europe/Paris")
        berlin = zoneinfo.ZoneInfo("Europe/Berlin")
    except zoneinfo.ZoneInfoNotFoundError:
        pytest.skip("no time zone database on this machine")
    when = dt.datetime(2024, 6, 1, 12)
    assert same(when.replace(tzinfo=paris), when.replace(tzinfo=zoneinfo.ZoneInfo("Europe/Paris")))
    assert not same(when.replace(tzinfo=paris), when.replace(tzinfo=berlin))


class Color(enum.Enum):
    RED = 1
    GREEN = 2


class Perm(enum.IntFlag):
    R = 4
    W = 2


def test_enum_members() -> None:
    assert same(Color.RED, Color(1))
    assert not same(Color.RED, Color.GREEN)
    assert not same(Color.RED, 1)
    assert not same(Perm.R, 4)
    assert same(Perm.R | Perm.W, Perm(6))
    assert not same(Perm.R | Perm.W, Perm.R)


@dataclasses.dataclass
class Point:
    x: float
    y: float = 0.0
    tags: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True, slots=True)
class Frozen:
    a: int


class Pair(typing.NamedTuple):
    left: int
    right: str = "r"


LegacyPair = collections.namedtuple("LegacyPair", "left right")


def test_dataclass_instances() -> None:
    p = Point(1.0, 2.0, ["a"])
    assert same(p, Point(1.0, 2.0, ["a"]))
    f1 = fingerprint(p)
    p.tags.append("b")
    assert fingerprint(p) != f1
    f2 = fingerprint(p)
    p.x = 5.0
    assert fingerprint(p) != f2
    f3 = fingerprint(p)
    p.extra = 1  # type: ignore[attr-defined]
    assert fingerprint(p) != f3
    assert not same(Point(1.0), (1.0, 0.0, []))
    assert same(Frozen(1), Frozen(1))
    assert not same(Frozen(1), Frozen(2))


def test_namedtuples() -> None:
    assert same(Pair(1), Pair(1, "r"))
    assert not same(Pair(1), (1, "r"))
    assert not same(Pair(1, "r"), LegacyPair(1, "r"))
    assert same(LegacyPair(1, [2]), LegacyPair(1, [2]))
    assert not same(LegacyPair(1, [2]), LegacyPair(1, [3]))


def test_structseq() -> None:
    assert same(sys.version_info, sys.version_info)
    t = dt.datetime(2024, 1, 1).timetuple()
    assert same(t, dt.datetime(2024, 1, 1).timetuple())
    assert not same(t, tuple(t))


# -- functions, classes, modules -------------------------------------------------------

FUNC = """
scale = 3
def f(x, y=2, *, z=1):
    return (x + y) * z * 10
"""


def test_notebook_function_same_source_is_equal() -> None:
    a, b = notebook(FUNC), notebook(FUNC)
    assert a["f"] is not b["f"]
    assert same(a["f"], b["f"])


@pytest.mark.parametrize(
    "edit",
    [
        ("* 10", "* 11"),  # a constant
        ("y=2", "y=3"),  # a default
        ("z=1", "z=2"),  # a keyword-only default
        ("(x + y)", "(x - y)"),  # an operator
        ("return", "scale\n    return"),  # a name read
        ("def f(x,", "def f(w,"),  # a parameter name (callers pass it by keyword)
        ("def f(", "def g("),  # the name
    ],
)
def test_notebook_function_edits_change_the_fingerprint(edit: tuple[str, str]) -> None:
    old, new = edit
    assert old in FUNC
    changed = notebook(FUNC.replace(old, new))
    fn = changed.get("f", changed.get("g"))
    assert not same(notebook(FUNC)["f"], fn)


def test_function_attributes_and_hot_code_are_stable() -> None:
    ns = notebook(FUNC)
    f = ns["f"]
    before = fingerprint(f)
    for i in range(2000):  # let the interpreter specialise the bytecode
        f(i)
    assert fingerprint(f) == before
    f.__defaults__ = (5,)
    assert fingerprint(f) != before


CLOSURE = """
def make(k):
    def inner(x):
        return x + k[0]
    return inner
box = [1]
g = make(box)
"""


def test_closure_contents() -> None:
    a, b = notebook(CLOSURE), notebook(CLOSURE)
    assert same(a["g"], b["g"])
    before = fingerprint(a["g"])
    a["box"][0] = 2  # the closure cell holds the same list, mutated
    assert fingerprint(a["g"]) != before
    assert not same(a["make"](1), a["make"](2))
    assert same(a["make"](1), b["make"](1))


RECURSIVE = """
def outer():
    def fact(n):
        return 1 if n < 2 else n * fact(n - 1)
    return fact
h = outer()
"""


def test_recursive_closure() -> None:
    # fact's closure cell holds fact itself: a cycle through a function.
    assert same(notebook(RECURSIVE)["h"], notebook(RECURSIVE)["h"])
    assert not same(notebook(RECURSIVE)["h"], notebook(RECURSIVE.replace("< 2", "< 3"))["h"])


def test_exec_without_module_name() -> None:
    # A bare exec namespace (no __name__) gives functions __module__ None.
    a: dict[str, Any] = {}
    b: dict[str, Any] = {}
    c: dict[str, Any] = {}
    exec("def f(x=1): return x", a)
    exec("def f(x=1): return x", b)
    exec("def f(x=2): return x", c)
    assert same(a["f"], b["f"])
    assert not same(a["f"], c["f"])


def test_lambdas_and_methods() -> None:
    ns = notebook("a = lambda x: x + 1\nb = lambda x: x + 2\n")
    assert not same(ns["a"], ns["b"])
    assert same(notebook("a = lambda x: x + 1")["a"], ns["a"])
    assert same(functools.partial(int, base=2), functools.partial(int, base=2))
    assert not same(functools.partial(int, base=2), functools.partial(int, base=8))
    cached = notebook("import functools\n@functools.lru_cache\ndef sq(x):\n    return x * x\n")
    cached2 = notebook("import functools\n@functools.lru_cache\ndef sq(x):\n    return x * x * 1\n")
    assert not same(cached["sq"], cached2["sq"])
    assert same([].append, [].append)
    assert not same([1].append, [2].append)


CLASS = """
import dataclasses, enum, typing

class Base:
    kind = "base"
    def describe(self):
        return self.kind

@dataclasses.dataclass
class Row(Base):
    a: int = 1
    b: list = dataclasses.field(default_factory=list)

    @property
    def total(self):
        return self.a + len(self.b)

class Mode(enum.Enum):
    FAST = 1
    SLOW = 2

class NT(typing.NamedTuple):
    x: int
    def double(self):
        return 2 * self.x
"""


def test_notebook_classes_same_source_is_equal() -> None:
    a, b = notebook(CLASS), notebook(CLASS)
    for name in ("Base", "Row", "Mode", "NT"):
        assert same(a[name], b[name]), name
    assert same(a["Row"](2, [1]), b["Row"](2, [1]))
    assert same(a["Mode"].FAST, b["Mode"].FAST)
    assert same(a["NT"](1), b["NT"](1))


@pytest.mark.parametrize(
    ("old", "new", "name"),
    [
        ('kind = "base"', 'kind = "other"', "Base"),
        ("return self.kind", "return self.kind * 2", "Base"),
        ("self.a + len", "self.a - len", "Row"),
        ("a: int = 1", "a: int = 2", "Row"),
        ("FAST = 1", "FAST = 3", "Mode"),
        ("2 * self.x", "3 * self.x", "NT"),
    ],
)
def test_notebook_class_edits_change_the_fingerprint(old: str, new: str, name: str) -> None:
    assert old in CLASS
    a, b = notebook(CLASS), notebook(CLASS.replace(old, new))
    assert not same(a[name], b[name])


def test_instances_follow_their_class() -> None:
    a = notebook(CLASS)
    b = notebook(CLASS.replace("self.a + len", "self.a - len"))
    assert not same(a["Row"](2), b["Row"](2))  # same fields, different behaviour
    assert not same(a["NT"](1), notebook(CLASS.replace("2 * self.x", "3 * self.x"))["NT"](1))


def test_class_attribute_assignment_changes_notebook_class() -> None:
    ns = notebook(CLASS)
    before = fingerprint(ns["Base"])
    ns["Base"].kind = "changed"
    assert fingerprint(ns["Base"]) != before


def test_installed_functions_classes_and_modules_by_identity() -> None:
    for obj in (len, math.sqrt, json_dumps(), collections.OrderedDict, int, str.upper, re, math):
        first = fingerprint(obj)
        assert isinstance(first, bytes), explain_unfingerprintable(obj)
        assert first == fingerprint(obj)
    assert not same(math.sin, math.cos)
    assert not same(int, float)
    assert not same(re, math)
    assert not same(len, "len")


def json_dumps() -> object:
    import json

    return json.dumps


def test_typing_annotations() -> None:
    optional = typing.Optional  # the typing spelling is what is under test
    assert same(optional[int], optional[int])
    assert not same(optional[int], optional[str])
    assert not same(list[int], list[str])
    assert same(int | None, int | None)
    assert not same(typing.List[int], list[int])  # noqa: UP006 - distinct objects on purpose
    assert same(typing.Any, typing.Any)


def test_sentinels() -> None:
    marker = object()
    assert fingerprint(marker) == fingerprint(marker)
    assert fingerprint(marker) != fingerprint(object())
    assert same(dataclasses.MISSING, dataclasses.MISSING)


# -- numpy --------------------------------------------------------------------------


@pytest.fixture
def np() -> Any:
    return pytest.importorskip("numpy", reason="numpy is in the test extra; install .[test]")


@pytest.fixture
def pd() -> Any:
    return pytest.importorskip("pandas", reason="pandas is in the test extra; install .[test]")


def test_numpy_arrays(np: Any) -> None:
    a = np.zeros(3)
    f1 = fingerprint(a)
    assert f1 == fingerprint(np.zeros(3))
    a[0] = 9
    assert fingerprint(a) != f1
    assert not same(np.zeros(3), np.zeros(3, dtype=np.float32))
    assert not same(np.zeros(3), np.zeros((3, 1)))
    assert not same(np.zeros(4), np.zeros((2, 2)))
    assert not same(np.arange(3, dtype="<i8"), np.arange(3, dtype=">i8"))
    assert not same(np.zeros(3), [0.0, 0.0, 0.0])
    assert not same(np.array(["2024-01-01"], "M8[D]"), np.array(["2024-01-01"], "M8[s]"))


def test_numpy_layout_independence(np: Any) -> None:
    m = np.arange(24, dtype=np.float64).reshape(4, 6)
    assert same(m, np.asfortranarray(m))
    assert same(m[:, ::2], np.ascontiguousarray(m[:, ::2]))
    assert same(m.T, np.ascontiguousarray(m.T))
    assert not same(m.T, m.reshape(6, 4))


def test_numpy_object_and_structured(np: Any) -> None:
    o = np.array([1, "a", None, [1, 2]], dtype=object)
    f1 = fingerprint(o)
    assert f1 == fingerprint(np.array([1, "a", None, [1, 2]], dtype=object))
    o[3].append(3)  # mutation of an element object
    assert fingerprint(o) != f1
    assert not same(np.array(["a"], dtype=object), np.array(["a"]))
    bad = np.array([threading.Lock()], dtype=object)
    assert isinstance(fingerprint(bad), Unfingerprintable)
    rec = np.zeros(2, dtype=[("a", "i4"), ("b", "f8")])
    assert same(rec, np.zeros(2, dtype=[("a", "i4"), ("b", "f8")]))
    assert not same(rec, np.zeros(2, dtype=[("a", "i4"), ("c", "f8")]))
    cyclic = np.empty(1, dtype=object)
    cyclic[0] = cyclic
    assert isinstance(fingerprint(cyclic), bytes)


def test_numpy_scalars_and_dtypes(np: Any) -> None:
    assert same(np.float64(1.5), np.float64(1.5))
    assert not same(np.float64(1.5), 1.5)
    assert not same(np.float64(1.5), np.float32(1.5))
    assert not same(np.int64(1), np.int32(1))
    assert not same(np.datetime64("2024-01-01"), np.datetime64("2024-01-02"))
    assert same(np.dtype("f8"), np.dtype(np.float64))
    assert not same(np.dtype("f8"), np.dtype("f4"))
    assert same(np.add, np.add)
    assert not same(np.add, np.multiply)
    assert same(np.mean, np.mean)


def test_numpy_masked_array(np: Any) -> None:
    a = np.ma.array([1.0, 2.0], mask=[False, True])
    assert same(a, np.ma.array([1.0, 2.0], mask=[False, True]))
    assert not same(a, np.ma.array([1.0, 2.0], mask=[True, False]))


def test_numpy_budget(np: Any) -> None:
    a = np.zeros(10_000)
    assert isinstance(fingerprint(a, budget=1_000), Unfingerprintable)
    assert isinstance(fingerprint(a, budget=20_000), bytes)


# -- pandas -------------------------------------------------------------------------


def frame(pd: Any) -> Any:
    return pd.DataFrame(
        {
            "x": [1.0, 2.0, 3.0],
            "n": [1, 2, 3],
            "s": ["a", "b", None],
            "c": pd.Categorical(["u", "v", "u"]),
            "i": pd.array([1, None, 3], dtype="Int64"),
            "t": pd.to_datetime(["2024-01-01", "2024-01-02", None]).tz_localize("UTC"),
        },
        index=pd.Index([10, 20, 30], name="id"),
    )


def test_pandas_frame_equal_and_mutation(pd: Any) -> None:
    df = frame(pd)
    f1 = fingerprint(df)
    assert isinstance(f1, bytes), explain_unfingerprintable(df)
    assert f1 == fingerprint(frame(pd))
    df.iloc[0, 0] = 5
    assert fingerprint(df) != f1


@pytest.mark.parametrize(
    "edit",
    [
        lambda df: df.rename(columns={"x": "y"}),
        lambda df: df.rename_axis("key"),
        lambda df: df.set_axis([10, 20, 31]),
        lambda df: df.astype({"n": "int32"}),
        lambda df: df.astype({"x": "float32"}),
        lambda df: df[["n", "x", "s", "c", "i", "t"]],
        lambda df: df.assign(s=["a", "b", "None"]),
        lambda df: df.assign(s=["a", "b", ""]),
        lambda df: df.assign(c=df["c"].cat.set_categories(["u", "v", "w"])),
        lambda df: df.assign(i=pd_array(df, [1, 2, 3])),
        lambda df: df.assign(t=df["t"].dt.tz_convert("Europe/Paris")),
        lambda df: df.iloc[::-1],
        lambda df: df.reset_index(),
    ],
)
def test_pandas_frame_differences(pd: Any, edit: Any) -> None:
    df = frame(pd)
    assert not same(df, edit(df))


def pd_array(df: Any, values: list[int]) -> Any:
    import pandas

    return pandas.array(values, dtype="Int64")


def test_pandas_series_and_index(pd: Any) -> None:
    s = pd.Series([1.0, 2.0], index=["a", "b"], name="v")
    assert same(s, pd.Series([1.0, 2.0], index=["a", "b"], name="v"))
    assert not same(s, s.rename("w"))
    assert not same(s, pd.Series([1.0, 2.0], index=["a", "c"], name="v"))
    assert not same(s, s.to_frame())
    f1 = fingerprint(s)
    s.iloc[1] = 3.0
    assert fingerprint(s) != f1
    assert not same(pd.RangeIndex(3), pd.Index([0, 1, 2]))
    assert same(pd.RangeIndex(3), pd.RangeIndex(0, 3))
    mi = pd.MultiIndex.from_tuples([("a", 1), ("b", 2)], names=["k", "n"])
    assert same(mi, pd.MultiIndex.from_tuples([("a", 1), ("b", 2)], names=["k", "n"]))
    assert not same(mi, pd.MultiIndex.from_tuples([("a", 1), ("b", 3)], names=["k", "n"]))
    days = pd.date_range("2024-01-01", periods=3, freq="D")
    assert not same(days, pd.DatetimeIndex(list(days)))  # freq shows in the repr


def test_pandas_object_columns(pd: Any) -> None:
    df = pd.DataFrame({"o": pd.Series([1, "1", [1]], dtype=object)})
    f1 = fingerprint(df)
    assert f1 == fingerprint(pd.DataFrame({"o": pd.Series([1, "1", [1]], dtype=object)}))
    assert not same(df, pd.DataFrame({"o": pd.Series(["1", "1", [1]], dtype=object)}))
    df["o"].iloc[2].append(2)  # a list inside a cell, mutated in place
    assert fingerprint(df) != f1
    bad = pd.DataFrame({"o": pd.Series([threading.Lock()], dtype=object)})
    assert "iloc[:, 0]" in explain_unfingerprintable(bad)


def test_pandas_scalars(pd: Any) -> None:
    assert same(pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-01"))
    assert not same(pd.Timestamp("2024-01-01"), dt.datetime(2024, 1, 1))
    assert not same(pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-01", tz="UTC"))
    assert not same(pd.Timedelta("1s"), pd.Timedelta("2s"))
    assert same(pd.NaT, pd.NaT)
    assert not same(pd.NaT, pd.NA)
    assert not same(pd.NA, None)
    assert not same(pd.Period("2024-01", "M"), pd.Period("2024-01-01", "D"))
    assert not same(pd.Interval(0, 1), pd.Interval(0, 1, closed="left"))


# -- the core property -----------------------------------------------------------------

keys = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5)
leaves = keys | st.binary(max_size=5) | st.floats(allow_nan=True)
values = st.recursive(
    leaves,
    lambda children: (
        st.lists(children, max_size=4)
        | st.lists(children, max_size=4).map(tuple)
        | st.dictionaries(keys, children, max_size=4)
        | st.sets(st.integers(-20, 20) | st.text(max_size=2), max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(values, values)
def test_equal_fingerprints_iff_same_printed_structure(a: object, b: object) -> None:
    # repr distinguishes every type used here (1 / 1.0 / True, str / bytes,
    # list / tuple), shows dict and set order and -0.0, and prints all NaNs alike.
    assert (fingerprint(a) == fingerprint(b)) == (repr(a) == repr(b))


plain = (
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.sampled_from([2**63 - 1, 2**63, -(2**64)])
    | st.sampled_from([0.0, -0.0, 1.0, float("nan"), float("inf")])
    | st.sampled_from(["", "a", "ab", "b", "\ud800"])
)


@settings(max_examples=300, deadline=None)
@given(st.lists(plain, min_size=14, max_size=40), st.data())
def test_long_scalar_sequences(items: list[Any], data: st.DataObject) -> None:
    # Crosses the packed-column threshold; one element replaced by another scalar.
    other = list(items)
    other[data.draw(st.integers(0, len(items) - 1))] = data.draw(plain)
    as_type = data.draw(st.sampled_from([list, tuple]))
    a, b = as_type(items), as_type(other)
    assert (fingerprint(a) == fingerprint(b)) == (repr(a) == repr(b))
    assert fingerprint(a) == fingerprint(as_type(copy.copy(items)))


@settings(max_examples=200, deadline=None)
@given(values)
def test_copies_fingerprint_alike(a: object) -> None:
    b = copy.deepcopy(a)
    assert (fingerprint(a) == fingerprint(b)) == (repr(a) == repr(b))
    assert isinstance(fingerprint(a), bytes)


@settings(max_examples=200, deadline=None)
@given(st.lists(values, min_size=1, max_size=4), st.data())
def test_any_mutation_is_seen(items: list[Any], data: st.DataObject) -> None:
    target = copy.deepcopy(items)
    before, before_repr = fingerprint(target), repr(target)
    i = data.draw(st.integers(0, len(target) - 1))
    replacement = data.draw(values)
    target[i] = replacement
    assert (fingerprint(target) == before) == (repr(target) == before_repr)
