"""Lineage, the SVG picture and the state API, on the core alone (no kernel).

Kernel-level behaviour (real runs, widgets, memoization, errors as IPython
raises them) is in ``tests/kernel/test_lineage_api.py``; here each rule is
pinned down on hand-fed runs.
"""

from __future__ import annotations

import gc
import linecache
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import Any

import pytest

from reactive import api
from reactive.analysis import analyze
from reactive.graph import CellStatus, Graph, Source
from reactive.lineage import Lineage, Timestamp, parse_path, statements
from reactive.paths import Attr, Item, SymbolPath
from reactive.svg import render

P = parse_path


def paths(*texts: str) -> list[SymbolPath]:
    return [SymbolPath.of(*t.split(".")) if "[" not in t else P(t) for t in texts]  # type: ignore[misc]


def feed(lin: Lineage, *cells: tuple[str, str]) -> None:
    for cid, src in cells:
        lin.record(cid, src)


STORY = (
    ("base", "base = 10"),
    ("scale", "def scale(v):\n    return v * factor"),
    ("factor", "factor = 3"),
    ("w", "import ipywidgets as W\ns = W.IntSlider()\ns"),
    ("mid", "mid = base + s.value"),
    ("scaled", "scaled = scale(mid)"),
    ("left", "left = mid * 2"),
    ("right", "right = mid - 1"),
)
NUMBER = {cid: i for i, (cid, _) in enumerate(STORY, start=1)}


def story() -> Lineage:
    lin = Lineage()
    feed(lin, *STORY)
    return lin


def headers(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("# Cell")]


# ------------------------------------------------------------------ statements
def test_statements_split_top_level_code_with_lines_of_the_code_as_run() -> None:
    stmts = statements("a = 1\n@dec\ndef g():\n    return b\nc = 2; d = c\nimport os")
    assert [s.text for s in stmts] == [
        "a = 1",
        "@dec\ndef g():\n    return b",
        "c = 2",
        "d = c",
        "import os",
    ]
    assert [(s.first, s.last) for s in stmts] == [(1, 1), (2, 4), (5, 5), (5, 5), (6, 6)]
    assert stmts[1].functions == {"g": frozenset({SymbolPath("b")})}
    assert stmts[3].refs == {SymbolPath("c")}


def test_a_code_cell_magic_is_split_into_its_body() -> None:
    for magic in ("%%memoize", "%%time", "%%memoize --verbose"):
        stmts = statements(f"{magic}\nx = 1\ny = x + z")
        assert [s.text for s in stmts] == ["x = 1", "y = x + z"], magic
    assert statements("%%bash\necho hi") != [] and len(statements("%%bash\necho hi")) == 1


def test_unparseable_cells_have_no_statements() -> None:
    assert statements("x = (") == []


def test_paths_parse_like_the_analysis_writes_them() -> None:
    assert P("x") == SymbolPath("x")
    assert P("d['a']") == SymbolPath("d", (Item("a"),))
    assert P(" s.value ") == SymbolPath("s", (Attr("value"),))
    assert P("f(x)") is None and P("x +") is None and P("d[k]") is None


# -------------------------------------------------------- deps, users, timestamps
def test_chain_fan_out_and_function_in_another_cell() -> None:
    lin = story()
    assert lin.deps(P("mid")) == [P("base"), P("s.value")]  # the widget as the trait it read
    assert lin.deps(P("scaled")) == [P("factor"), P("mid"), P("scale")]  # through scale's body
    assert lin.users(P("mid")) == [P("left"), P("right"), P("scaled")]
    assert lin.users(P("base")) == [P("mid")]
    assert lin.users(P("factor")) == [P("scaled")]
    w = lin.last_write(P("s"))
    assert (w.cell_id, w.stmt) == ("w", 1)


def test_users_of_a_trait_or_key_are_only_its_readers() -> None:
    lin = Lineage()
    feed(
        lin,
        ("s", "s = make()"),
        ("v", "v = s.value"),
        ("m", "m = s.max"),
        ("d", "d = {'a': 1, 'b': 2}"),
        ("ra", "ra = d['a']"),
        ("rb", "rb = d['b']"),
    )
    assert lin.users(P("s.value")) == [P("v")]
    assert lin.users(P("s")) == [P("m"), P("v")]
    assert lin.users(P("d['a']")) == [P("ra")]
    assert lin.deps(P("d['b']")) == []


def test_updates_keep_what_the_value_came_from() -> None:
    lin = Lineage()
    feed(lin, ("a", "a = 1"), ("lst", "lst = [a]"), ("v", "v = 2"), ("app", "lst.append(v)"))
    assert lin.deps(P("lst")) == [P("a"), P("v")]
    feed(lin, ("x", "x = a"), ("inc", "x += v"))
    assert lin.deps(P("x")) == [P("a"), P("v")]


def test_writing_into_a_container_is_not_reading_it() -> None:
    lin = Lineage()
    feed(lin, ("k", "k = 1"), ("d", "d = {'b': k}"), ("set", "d['a'] = 5"))
    assert lin.deps(P("d['a']")) == []
    assert lin.deps(P("d")) == [P("k")]  # d as a whole: built from k, then d['a'] set


def test_re_runs_move_the_run_and_redefinitions_move_the_timestamp() -> None:
    lin = story()
    first = lin.last_write(P("mid"))
    lin.record("mid", "mid = base + s.value")
    again = lin.last_write(P("mid"))
    assert (again.cell_id, again.stmt) == (first.cell_id, first.stmt)
    assert again.run > first.run
    lin.record("mid", "offset = 1\nmid = base + s.value + offset")  # edited: statement 1 now
    assert lin.last_write(P("mid")).stmt == 1
    assert lin.deps(P("mid")) == [P("base"), P("offset"), P("s.value")]
    lin.record("later", "base = 20")
    assert lin.last_write(P("base")).cell_id == "later"
    assert lin.users(P("base")) == []  # mid was computed from the old base


def test_a_failing_run_writes_only_what_ran() -> None:
    lin = Lineage()
    src = "half = 1\nnever = 1 / 0\nalso = 2"
    s = lin.record("err", src, outcome="error", failed_line=2)
    assert [str(w.path) for w in s.writes] == ["half"] and s.failed_stmt == 1
    assert lin.writes(P("never")) == [] and lin.writes(P("also")) == []
    # a name the host saw rebound in the failing statement still counts (a loop half done)
    lin.record("loop", "for i in range(3):\n    t = 1 / (1 - i)", outcome="error", failed_line=2,
               changed_names={"i", "t"})  # fmt: skip
    assert lin.last_write(P("i")).stmt == 0 and lin.last_write(P("t")).stmt == 0
    # unknown failing line: only what the host saw change
    lin.record("unknown", "u = 1\nv = 1 / 0", outcome="error", changed_names={"u"})
    assert lin.writes(P("u")) and not lin.writes(P("v"))


def test_dynamic_writes_and_deletions_from_the_host() -> None:
    lin = Lineage()
    lin.record("ex", "exec('z = 1')", changed_names={"z", "_", "Out"})
    assert lin.last_write(P("z")).cell_id == "ex"
    assert lin.writes(P("_")) == [] and lin.writes(P("Out")) == []
    lin.record("del", "del z", deleted_names={"z"})
    assert lin.writes(P("z")) == []


def test_global_writes_of_a_called_function_go_to_the_calling_statement() -> None:
    lin = Lineage()
    feed(lin, ("f", "def bump():\n    global g\n    g = 1"))
    lin.record("call", "x = 0\nbump()\ny = 1", extra_defs=[P("g"), P("x"), P("y")])
    w = lin.last_write(P("g"))
    assert (w.cell_id, w.stmt) == ("call", 1)


# ----------------------------------------------------------------------- slices
def test_slices_hold_only_what_the_value_needs_in_an_order_that_runs() -> None:
    lin = story()
    scaled = lin.slice_text([lin.last_write(P("scaled")).version], NUMBER.get)
    assert headers(scaled) == [f"# Cell {n}" for n in (1, 2, 3, 4, 5, 6)]
    left = lin.slice_text([lin.last_write(P("left")).version], NUMBER.get)
    assert headers(left) == ["# Cell 1", "# Cell 4", "# Cell 5", "# Cell 7"]
    assert "mid = base + s.value\n\n# Cell 7\nleft = mid * 2\n" in left


def test_a_slice_runs_writers_first_even_when_the_namespace_ran_bottom_up() -> None:
    lin = Lineage()
    feed(lin, ("below", "b = 1"), ("above", "a = b + 1"))
    number = {"above": 1, "below": 2}.get  # the reader sits above the writer
    text = lin.slice_text([lin.last_write(P("a")).version], number)
    assert headers(text) == ["# Cell 2", "# Cell 1"]


def test_a_slice_shows_code_as_it_ran_and_what_no_cell_set() -> None:
    lin = Lineage()
    feed(lin, ("a", "a = preset + 1"), ("b", "b = a * 2"))
    now = {"a": "a = preset + 100", "b": "b = a * 2"}
    text = lin.slice_text([lin.last_write(P("b")).version], {"a": 1, "b": 2}.get, now.get)
    assert text.splitlines()[0] == "# also needs, set outside any cell the runtime ran: preset"
    assert "# Cell 1 (as it ran then; edited since)\na = preset + 1" in text


def test_re_runs_do_not_grow_memory() -> None:
    lin = Lineage(history=3)
    feed(lin, ("s", "s = 0"), ("acc", "total = 0"))
    for i in range(500):
        lin.record("s", "s = 0", changed_names={"s"})
        lin.record("acc", f"total += s  # {i % 2}")  # two texts, re-run over and over
    gc.collect()
    assert len(lin._versions) <= 5
    assert len(lin.history("acc")) == 3 and lin.run_count("acc") == 501
    assert lin.deps(P("total")) == [P("s")]
    # the total came from both texts of the cell, each once: ``s`` first
    text = lin.slice_text([lin.latest("acc")], {"s": 1, "acc": 2}.get)
    assert headers(text) == ["# Cell 1", "# Cell 2", "# Cell 2"]
    assert "total += s  # 0" in text and "total += s  # 1" in text


def test_history_and_changed_inputs() -> None:
    lin = story()
    lin.record("base", "base = 11")
    lin.record("mid", "mid = base + s.value", outputs=[{"output_type": "stream", "text": "x"}])
    newest, older = lin.history("mid")[:2]
    assert newest.outputs == ({"output_type": "stream", "text": "x"},) and older.outputs is None
    changed = newest.changed_inputs(older)
    assert [str(p) for p, _ in changed] == ["base"]
    assert lin.cell_of_run(changed[0][1]) == "base"


def test_cell_level_deps_and_users_come_from_what_ran() -> None:
    lin = story()
    assert lin.cell_parents("mid") == {"base", "w"}
    assert lin.cell_users("mid") == {"scaled", "left", "right"}
    assert lin.cell_parents("scaled") == {"scale", "factor", "mid"}


# ------------------------------------------------------------------------- SVG
def graph_with_sources() -> Graph:
    g = Graph()
    for cid, src in STORY:
        g.upsert(cid, src, analyze(src))
    g.upsert("odd", "print('<&>', mid)", analyze("print('<&>', mid)"))
    s_value = Source("model-1", "value", label="s.value", path=P("s.value"))
    g.set_sources("mid", [s_value])
    g.mark_stale(["left"])
    g.cells["right"].status = CellStatus.ERRORED
    return g


def test_svg_is_valid_and_draws_every_cell_source_and_status() -> None:
    g = graph_with_sources()
    svg = str(render(g))
    root = ET.fromstring(svg)
    ns = {"s": "http://www.w3.org/2000/svg"}
    cells = {e.get("data-cell-id"): e for e in root.iterfind(".//s:g", ns) if e.get("data-cell-id")}
    assert set(cells) == set(g.cells)
    assert "stale" in cells["left"].get("class", "").split()
    assert cells["right"].get("data-status") == "errored"
    texts = ["".join(e.itertext()) for e in root.iterfind(".//s:text", ns)]
    assert "[5] mid = base + s.value" in texts and "[9] print('<&>', mid)" in texts
    source = root.find(".//s:g[@class='source']", ns)
    assert source is not None and source.find("s:ellipse", ns) is not None
    assert "s.value" in "".join(source.itertext())
    edges = list(root.iterfind(".//s:g[@class='edge']", ns))
    assert len(edges) >= 8  # slider -> mid, and the cell edges


def test_svg_of_an_empty_or_cyclic_graph_is_still_valid() -> None:
    ET.fromstring(str(render(Graph())))
    g = Graph("any_order")
    for cid, src in (("a", "a = b"), ("b", "b = a")):
        g.upsert(cid, src, analyze(src))
    root = ET.fromstring(render(g)._repr_svg_())
    assert len([e for e in root.iter() if e.get("data-cell-id")]) == 2


# ----------------------------------------------------------------- the API
class FakeHost:
    """What the kernel runtime offers the API, minus the kernel."""

    def __init__(self) -> None:
        self.graph = Graph()
        self.lineage = Lineage()
        self.published: list[dict[str, Any]] = []
        self.scheduler: Any = None

    def run(self, cid: str, src: str, **kw: Any) -> None:
        self.graph.upsert(cid, src, analyze(src))
        self.lineage.record(cid, src, **kw)

    def sources_of(self, obj: Any) -> frozenset[Source]:
        return frozenset()

    def find_cell(self, ref: object) -> str | None:
        return None

    def index_of(self, cell_id: str) -> int:
        ids = [c.id for c in self.graph.ordered()]
        return ids.index(cell_id) + 1 if cell_id in ids else 0

    def cell_outputs(self, cell_id: str) -> Sequence[dict[str, Any]]:
        return ()

    def publish(self, outputs: Sequence[dict[str, Any]]) -> None:
        self.published.extend(outputs)


@pytest.fixture
def host() -> Any:
    h = FakeHost()
    api.set_host(h)  # type: ignore[arg-type]
    try:
        yield h
    finally:
        api.set_host(None)


def run_as_cell(code: str, ns: dict[str, Any], name: str = "<cell-test-1>") -> None:
    """Run ``code`` the way IPython runs a cell: its source in linecache, one namespace."""
    linecache.cache[name] = (len(code), None, code.splitlines(True), name)
    try:
        exec(compile(code, name, "exec"), ns)
    finally:
        linecache.cache.pop(name, None)


def test_api_reads_the_variable_from_the_call(host: FakeHost) -> None:
    host.run("a", "x = 1")
    host.run("b", "y = x + 1\nd = {'k': y}")
    ns: dict[str, Any] = {"x": 1, "y": 2, "d": {"k": 2}, "api": api, "out": {}}
    run_as_cell(
        "out['ts'] = api.timestamp(y)\n"
        "out['deps'] = api.deps(d['k'])\n"
        "out['users'] = api.users(x)\n"
        "out['named'] = api.timestamp('d')\n"
        "out['code'] = api.code(y)\n"
        "def f(v):\n    return api.timestamp(v)\n"
        "out['local'] = f(d)\n",
        ns,
    )
    out = ns["out"]
    assert out["ts"] == Timestamp(2, 0) and out["named"] == Timestamp(2, 1)
    assert out["local"] == Timestamp(2, 1)  # a local: found by value
    assert out["deps"] == [P("y")] and out["users"] == [P("y")]
    assert repr(out["code"]) == "# Cell 1\nx = 1\n\n# Cell 2\ny = x + 1\nd = {'k': y}\n"


def test_api_errors_are_one_line(host: FakeHost) -> None:
    host.run("err", "half = 1\nnever = 1 / 0", outcome="error", failed_line=2)
    with pytest.raises(api.NotTracked) as info:
        api.timestamp("never")
    assert str(info.value) == (
        "reactive.timestamp: the runtime does not track 'never'; cell 1 writes it but no "
        "run of it has"
    )
    assert info.value._render_traceback_() == [f"NotTracked: {info.value}"]
    with pytest.raises(api.NotTracked, match="no cell it ran has written it"):
        api.deps("nothing")
    with pytest.raises(ValueError, match="not a variable name"):
        api.users("1 +")
    with pytest.raises(api.NotTracked, match=r"there is no cell 7; cells are numbered 1..1"):
        api.cells(7)
    with pytest.raises(api.NotTracked, match="no cell matches 'zz'"):
        api.cells(id="zz")
    anonymous = object()
    with pytest.raises(api.NotTracked, match="cannot tell which variable"):
        api.lift(anonymous)
    ns = {"api": api}
    with pytest.raises(TypeError, match="not the expression '1 \\+ 2'"):
        run_as_cell("api.code(1 + 2)", ns)


def test_api_without_a_runtime_says_so() -> None:
    api.set_host(None)
    with pytest.raises(api.NotLoaded, match="run %load_ext reactive"):
        api.code("x")
    assert isinstance(api.NotLoaded("x"), RuntimeError)


def test_cells_views_and_reproduce(host: FakeHost) -> None:
    host.run("a", "x = 1", outputs=[{"output_type": "stream", "name": "stdout", "text": "1\n"}])
    host.run("b", "y = x + 1")
    host.run("a", "x = 5", outputs=[{"output_type": "stream", "name": "stdout", "text": "5\n"}])
    a, b = api.cells(1), api.cells(id="b")
    assert (a.id, a.number, a.source, a.status) == ("a", 1, "x = 5", "fresh")
    assert b.deps() == [a] and a.users() == [b]
    assert a.outputs == ({"output_type": "stream", "name": "stdout", "text": "5\n"},)
    assert headers(b.slice()) == ["# Cell 1 (as it ran then; edited since)", "# Cell 2"]
    assert [c.id for c in api.cells()] == ["a", "b"]
    api.reproduce_cell(1, lookback=1)
    head, shown = host.published
    assert head["data"]["text/plain"].startswith("# Cell 1, 1 run(s) ago (run 1): ok\nx = 1")
    assert shown["text"] == "1\n"
    with pytest.raises(api.NotTracked, match=r"has run 2 time\(s\) in this session, so lookb"):
        api.reproduce_cell(1, lookback=2)
    for _ in range(8):
        host.run("a", "x = 5")
    with pytest.raises(api.NotTracked, match=r"ran 10 time\(s\) and the last 8 are kept; run 8"):
        api.reproduce_cell(1, lookback=8)
    with pytest.raises(ValueError, match="lookback must be an int >= 0"):
        api.reproduce_cell(1, lookback=-1)


def test_show_graph_and_lift(host: FakeHost) -> None:
    host.run("a", "x = 1")
    host.run("b", "y = x + 1")
    picture = api.show_graph()
    assert ET.fromstring(picture._repr_svg_()) is not None
    sym = api.lift("y")
    assert sym.timestamp == Timestamp(2, 0) and sym.deps == [P("x")] and sym.users == []
    assert sym.cell == api.cells(2) and sym.run == 2


# ------------------------------------------------------------------ queued recording
def test_queued_runs_answer_every_query_as_if_recorded_at_once() -> None:
    """``record_later`` only queues; each query must still see every run so far, in order."""
    eager, lazy = Lineage(), Lineage()
    outputs = [{"output_type": "stream", "name": "stdout", "text": "1\n"}]
    for cid, src in STORY:
        eager.record(cid, src, outputs=outputs)
        lazy.record_later(cid, src, outputs=outputs)
    outputs.append({"output_type": "stream", "name": "stdout", "text": "mutated later\n"})
    assert lazy.runs == eager.runs == len(STORY)
    for text in ("scaled", "left", "mid", "base"):
        assert lazy.deps(P(text)) == eager.deps(P(text))
        assert lazy.users(P(text)) == eager.users(P(text))
    assert lazy.cell_parents("scaled") == eager.cell_parents("scaled") == {"scale", "mid", "factor"}
    assert [e.outputs for e in lazy.history("w")] == [tuple(outputs[:1])]
    # a run queued after a query lands after it, and record() keeps the order too
    lazy.record_later("base", "base = 11")
    lazy.record("mid", "mid = base + 1")
    assert lazy.last_write(P("mid")).run == lazy.runs  # type: ignore[union-attr]
    assert lazy.cell_parents("mid") == {"base"}
    assert lazy.latest("base").source == "base = 11"  # type: ignore[union-attr]


def test_the_queue_is_bounded_without_queries() -> None:
    lin = Lineage()
    for i in range(Lineage.PENDING_MAX * 3):
        lin.record_later("c", f"x = {i}")
    assert len(lin._pending) <= Lineage.PENDING_MAX
    assert lin.run_count("c") == Lineage.PENDING_MAX * 3
