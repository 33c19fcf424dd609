"""Graph queries: binding, prefix overlap, functions, sources, order, cycles."""

from __future__ import annotations

import pytest

from reactive.analysis import analyze
from reactive.graph import CellStatus, CycleError, Graph, Source
from reactive.paths import Item, SymbolPath

P = SymbolPath.of


def nb(*sources: str, direction: str = "in_order") -> Graph:
    g = Graph(direction)
    for i, src in enumerate(sources, start=1):
        g.upsert(f"c{i}", src, analyze(src))
    return g


def test_chain_descendants_in_notebook_order() -> None:
    g = nb("x = 1", "y = x + 1", "print(y)", "z = 5")
    assert g.children("c1") == {"c2"}
    assert g.descendants(["c1"]) == ["c2", "c3"]
    assert g.parents("c3") == {"c2"}
    assert g.descendants(["c4"]) == []


def test_in_order_ignores_later_writers() -> None:
    g = nb("print(x)", "x = 1")
    assert g.children("c2") == set()
    assert g.parents("c1") == set()


def test_nearest_writer_above_shadows_earlier_ones() -> None:
    g = nb("x = 1", "x = 2", "print(x)")
    assert g.children("c1") == set()
    assert g.children("c2") == {"c3"}


def test_prefix_overlap_sibling_keys_are_independent() -> None:
    g = nb("d = {'a': 1, 'b': 2}", "d['b'] = 5", "print(d['a'])", "print(d)")
    assert g.children("c2") == {"c4"}
    assert g.children("c1") == {"c2", "c3", "c4"}
    # only d['b'] changed: readers of d['a'] stay put (c2's own write on top
    # of it is restored lazily, when a reader of d runs: see misbound())
    assert g.children("c1", [P("d", Item("b"))]) == {"c4"}
    assert g.children("c1", [P("d", Item("a"))]) == {"c3", "c4"}


def test_receiver_binds_to_the_creator_not_to_sibling_writes() -> None:
    g = nb("d = {}", "d['a'] = 1", "d['b'] = 2")
    assert g.parents("c3") == {"c1"}
    assert g.children("c2") == set()


def test_mutating_call_writes_its_receiver() -> None:
    g = nb("lst = []", "lst.append(1)", "print(len(lst))")
    assert g.children("c2") == {"c3"}
    assert g.descendants(["c1"]) == ["c2", "c3"]


def test_calling_a_function_reads_what_its_body_reads() -> None:
    g = nb("k = 1", "def f():\n    return k", "def g():\n    return f() + 1", "print(g())")
    assert g.children("c1") == {"c4"}
    assert g.children("c2") == {"c4"}
    assert g.children("c3") == {"c4"}
    assert g.parents("c4") == {"c1", "c2", "c3"}


def test_function_defined_and_called_in_one_cell() -> None:
    g = nb("k = 1", "def f():\n    return k\nprint(f())")
    assert g.children("c1") == {"c2"}


def test_conservative_cell_reads_and_writes_everything() -> None:
    g = nb("x = 1", "exec('y = x')", "print(y)")
    assert g.cells["c2"].conservative
    assert g.children("c1") == {"c2"}
    assert g.children("c2") == {"c3"}
    assert g.parents("c2") == {"c1"}


def test_sources_are_indexed_per_cell() -> None:
    g = nb("a = s.value", "b = t.value", "print(a)")
    s, t = Source("w1", "value", "s.value"), Source("w2", "value", "t.value")
    g.set_sources("c1", [s])
    g.set_sources("c2", [t])
    assert g.affected_by([s]) == ["c1"]
    assert g.descendants(g.affected_by([s])) == ["c3"]
    g.set_sources("c1", [t])  # re-run read another widget
    assert g.readers_of_source(s) == set()
    g.forget_source(t)
    assert g.affected_by([t]) == []
    assert g.cells["c2"].sources == frozenset()


def test_stale_upstream_walks_only_out_of_sync_cells() -> None:
    g = nb("a = 1", "b = a", "c = b", "print(c)")
    g.mark_stale(["c2", "c3"])
    assert g.stale_upstream("c4") == ["c2", "c3"]
    g.cells["c3"].status = CellStatus.FRESH
    assert g.stale_upstream("c4") == []


def test_misbound_reader_between_two_writers() -> None:
    g = nb("a = 1", "print(a)", "a = 2", "print(a)")
    for cid in ("c1", "c2", "c3", "c4"):
        g.note_ran(cid)
    # the namespace holds c3's a; c2 must see c1's
    assert g.misbound("c2") == {"c1"}
    assert g.misbound("c4") == set()
    g.note_ran("c1")  # re-ran the first writer: now c4 is the one misbound
    assert g.misbound("c2") == set()
    assert g.misbound("c4") == {"c3"}


def test_misbound_when_a_later_partial_write_was_lost() -> None:
    g = nb("d = {'a': 1}", "d['b'] = 5", "print(d)")
    for cid in ("c1", "c2", "c3"):
        g.note_ran(cid)
    assert g.misbound("c3") == set()
    g.note_ran("c1")  # d rebuilt: c2's write into it is gone
    assert g.misbound("c3") == {"c1", "c2"}


def test_reorder_and_new_cells_go_last() -> None:
    g = nb("x = 1", "print(x)")
    g.reorder(["c2", "c1"])
    assert [c.id for c in g.ordered()] == ["c2", "c1"]
    assert g.children("c1") == set()  # reader is now above the writer
    g.upsert("c9", "y = 1", analyze("y = 1"))
    assert [c.id for c in g.ordered()][-1] == "c9"
    g.reorder(["c1", "ghost"])  # unknown ids ignored, unlisted keep their order
    assert [c.id for c in g.ordered()] == ["c1", "c2", "c9"]


def test_remove_forgets_the_cell() -> None:
    g = nb("x = 1", "print(x)")
    g.remove("c2")
    assert g.children("c1") == set()
    assert "c2" not in g
    g.remove("nope")  # removing twice is fine


def test_any_order_binds_across_the_notebook_and_sorts_topologically() -> None:
    g = nb("print(y)", "y = x + 1", "x = 1", direction="any_order")
    assert g.children("c3") == {"c2"}
    assert g.children("c2") == {"c1"}
    assert g.sort(["c1", "c2", "c3"]) == ["c3", "c2", "c1"]


def test_any_order_cycle_names_its_cells() -> None:
    g = nb("a = b + 1", "x = 0", "b = a + 1", direction="any_order")
    assert g.cycles() == [["c1", "c3"]]
    with pytest.raises(CycleError, match="c1 -> c3"):
        g.order_key("c2")


def test_self_reference_is_not_a_cycle() -> None:
    g = nb("x = 0", "x = x + 1", direction="any_order")
    assert g.cycles() == []
    assert g.children("c2") == set()


def test_invalidation_touches_only_the_affected_part() -> None:
    n = 1000
    g = Graph()
    for i in range(n):
        src = "x0 = 0" if i == 0 else f"x{i} = x{i - 1} + 1"
        g.upsert(f"c{i}", src, analyze(src))
    calls = 0
    real = g.refs

    def counting(cid: str):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        return real(cid)

    g.refs = counting  # type: ignore[method-assign]
    assert g.children("c500") == {"c501"}
    assert calls <= 3, f"children() of one cell looked at {calls} cells"


def test_item_write_reaches_readers_of_methods_and_attributes() -> None:
    g = nb("arr = make()", "arr[0] = 9", "print(arr.sum())", "print(arr.shape)", "d = {}")
    assert g.children("c2") == {"c3", "c4"}
    assert P("arr", Item(0)).overlaps(P("arr", "sum"))
    assert not P("d", Item("a")).overlaps(P("d", Item("b")))
    assert not P("s", "value").overlaps(P("s", "max"))


def test_reads_nothing_only_for_cells_no_write_can_reach() -> None:
    """The user's run skips planning stale upstream for these: it must never be wrong."""
    g = nb(
        "x = 1",
        "import math\nlst = []",
        "y = x + 1",
        "lst.append(2)",
        "def f():\n    return x",
        "z = f()",
        "exec('w = 1')",
        "print('hello')",
    )
    assert [g.reads_nothing(f"c{i}") for i in range(1, 9)] == [
        *(True, True, False, False, True, False, False, True)
    ]
    for i in range(1, 9):  # and where it says so, there is no parent
        assert not (g.reads_nothing(f"c{i}") and g.parents(f"c{i}"))
