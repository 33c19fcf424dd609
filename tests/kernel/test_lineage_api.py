"""Issue 7: the state and lineage API on a real kernel, driven as JupyterLab drives it.

One notebook has everything the issue lists: a chain (base -> mid -> left), a
fan-out (mid -> scaled, left, right), a function defined in one cell and
called in another (scale), a widget source (s), a memoized cell (%%memoize),
a cell that fails after a slider move, a stale cell below it, and re-runs.
Every question is asked the way a user asks it: code typed into a cell
(sent with ``metadata.cellId``), the answer read from what the cell shows.
"""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator

import pytest

from tests.kernel.harness import Notebook
from tests.kernel.test_reactive_kernel import lost_output, probe, wait_text

pytestmark = pytest.mark.kernel

STORY = [
    ("base", "base = 10"),
    ("scale", "def scale(v):\n    return v * factor"),
    ("factor", "factor = 3"),
    ("w", "import ipywidgets as W\ns = W.IntSlider(value=2, max=10)\ns"),
    ("mid", "mid = base + s.value"),
    ("scaled", "scaled = scale(mid)"),
    ("left", "left = mid * 2"),
    ("right", "right = mid - 1"),
    ("memo", "%%memoize --verbose\nheavy = scaled + 1\nprint('heavy', heavy)"),
    ("bad", "ok_part = 5\nboom = 10 // (7 - s.value)"),
    ("after", "after = boom + 1"),
    ("show", "print('left', left, 'right', right)"),
    ("flag", "flag = s.value > 100"),
    ("uses_flag", "print('flag', flag)"),
]
NUM = {cid: i for i, (cid, _) in enumerate(STORY, start=1)}
RUNTIME = (
    "__import__('reactive.integrations.ipykernel.runtime', fromlist=['Runtime']).Runtime.current"
)
STATE = (
    "(lambda s: repr((s._sources, s._others, s._work, s._busy, s._batch)))(__import__("
    "'reactive.integrations.ipykernel.runtime', fromlist=['Runtime']).Runtime.current.scheduler)"
)
IDLE = (
    "(lambda rt: rt is None or rt.scheduler.idle)(__import__("
    "'reactive.integrations.ipykernel.runtime', fromlist=['Runtime']).Runtime.current)"
)


class Story:
    """The notebook above on a fresh reactive kernel, plus a way to ask it things."""

    def __init__(self, nb: Notebook) -> None:
        self.nb = nb
        self._ids = itertools.count(1)
        self.memoize = probe(nb, "'memoize' in get_ipython().magics_manager.magics['cell']")
        for cid, src in STORY:
            if not self.memoize:
                src = src.replace("%%memoize --verbose\n", "")
            self.nb.execute(cid, src)
        assert self.nb.text("show") == "left 24 right 11\n"
        self.slider = nb.find_widget("IntSliderModel", cell_id="w")[-1]

    def ask(self, code: str) -> str:
        """Run ``code`` in a new cell at the bottom; what the cell shows."""
        cid = f"ask{next(self._ids)}"
        self.nb.execute(cid, code)
        self.quiet()
        return self.nb.text(cid)

    def quiet(self) -> None:
        """Wait until the scheduler has nothing queued, running or pending."""
        try:
            self.nb.wait_for(lambda: probe(self.nb, IDLE) is True, timeout=60, what="runtime idle")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\nscheduler: {probe(self.nb, STATE)}") from None

    def drag(self, value: int) -> None:
        self.nb.send_widget_update(self.slider, {"value": value})
        self.nb.wait_for(
            lambda: "flag False" in self.nb.text("uses_flag") and self._moved(value),
            timeout=20,
            what=f"slider at {value}",
        )
        self.quiet()

    def _moved(self, value: int) -> bool:
        mid = 10 + value
        return self.nb.text("show") == f"left {mid * 2} right {mid - 1}\n"


@pytest.fixture
def story(notebook_factory: Callable[..., Notebook]) -> Iterator[Story]:
    nb = notebook_factory()
    assert nb.execute("setup", "%load_ext reactive\nimport reactive")["status"] == "ok"
    yield Story(nb)
    assert lost_output(nb) == [], "output landed in no cell"


def one_line(text: str) -> str:
    """The message of an error a user sees: one line, no traceback."""
    lines = text.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in text, text
    return lines[0]


def headers(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("# Cell")]


def cells_header(*ids: str) -> list[str]:
    return [f"# Cell {NUM[c]}" for c in ids]


def test_code_is_the_dynamic_slice_of_what_ran(story: Story) -> None:
    scaled = story.ask("reactive.code(scaled)")
    # the function's cell and the global its body reads are in; the fan-out siblings are not
    assert headers(scaled) == cells_header("base", "scale", "factor", "w", "mid", "scaled")
    assert "def scale(v):\n    return v * factor" in scaled
    assert "import ipywidgets as W\ns = W.IntSlider(value=2, max=10)" in scaled
    left = story.ask("reactive.code(left)")
    assert headers(left) == cells_header("base", "w", "mid", "left")
    assert story.ask("reactive.code('s.value')") == story.ask("reactive.code(s)")
    heavy = story.ask("reactive.code(heavy)")
    assert headers(heavy) == cells_header("base", "scale", "factor", "w", "mid", "scaled", "memo")
    # as a plain string too, for printing or saving
    assert story.ask("print(str(reactive.code(left)).count('# Cell'))") == "4\n"


def test_timestamps_deps_and_users(story: Story) -> None:
    ts = story.ask(
        "print(reactive.timestamp(s), reactive.timestamp(mid), reactive.timestamp(heavy))"
    )
    assert ts == (
        f"Timestamp(cell_num={NUM['w']}, stmt_num=1) Timestamp(cell_num={NUM['mid']}, "
        f"stmt_num=0) Timestamp(cell_num={NUM['memo']}, stmt_num=0)\n"
    )
    assert story.ask("reactive.deps(mid)") == "[<base>, <s.value>]\n"  # the widget as <s.value>
    assert story.ask("reactive.deps(scaled)") == "[<factor>, <mid>, <scale>]\n"
    assert story.ask("reactive.users(mid)") == "[<left>, <right>, <scaled>]\n"
    assert story.ask("reactive.users('s.value')") == "[<boom>, <flag>, <mid>]\n"
    assert story.ask("reactive.users(scale)") == "[<scaled>]\n"
    assert story.ask("reactive.deps(heavy)") == "[<scaled>]\n"
    lifted = story.ask("x = reactive.lift(scaled)\nprint(x.timestamp, x.deps, x.users, x.cell.id)")
    assert lifted == (
        f"Timestamp(cell_num={NUM['scaled']}, stmt_num=0) [<factor>, <mid>, <scale>] "
        "[<heavy>] scaled\n"
    )


def test_re_runs_move_timestamps(story: Story) -> None:
    before = story.ask("print(reactive.lift(mid).run, reactive.lift(heavy).run)")
    story.drag(5)  # mid and everything below it re-run reactively
    after = story.ask("print(reactive.lift(mid).run, reactive.lift(heavy).run)")
    (mid0, heavy0), (mid1, heavy1) = (map(int, t.split()) for t in (before, after))
    assert mid1 > mid0 and heavy1 > heavy0
    assert story.ask("print(reactive.timestamp(mid))") == (
        f"Timestamp(cell_num={NUM['mid']}, stmt_num=0)\n"
    )
    # edited and re-run: the write moves to statement 1, its deps follow the new code
    story.nb.execute("mid", "offset = 1\nmid = base + s.value + offset")
    story.quiet()
    assert story.ask("print(reactive.timestamp(mid), reactive.deps(mid))") == (
        f"Timestamp(cell_num={NUM['mid']}, stmt_num=1) [<base>, <offset>, <s.value>]\n"
    )
    # a later cell rebinds base: its timestamp moves there; mid was computed from the old one
    story.nb.execute("rebase", "base = 20")
    story.quiet()
    rebase = story.ask("print(reactive.cells(id='rebase').number)")
    assert story.ask("print(reactive.timestamp('base').cell_num, reactive.users('base'))") == (
        f"{rebase.strip()} []\n"
    )


def test_memoized_cell_lineage_survives_a_hit(story: Story) -> None:
    story.drag(5)
    story.drag(2)  # back to a value the memoized cell has seen: a hit when %%memoize is there
    outcome = story.ask(f"reactive.reproduce_cell({NUM['memo']})").splitlines()[0]
    assert outcome.startswith(f"# Cell {NUM['memo']}, latest run")
    if story.memoize:
        assert outcome.split(": ")[1].startswith("memo-hit"), outcome
    assert story.nb.text("memo") == "heavy 37\n"  # --verbose replays the print on a hit
    assert story.ask("print(reactive.timestamp(heavy), reactive.deps(heavy))") == (
        f"Timestamp(cell_num={NUM['memo']}, stmt_num=0) [<scaled>]\n"
    )
    assert headers(story.ask("reactive.code(heavy)"))[-1] == f"# Cell {NUM['memo']}"


def test_errors_write_only_what_ran_and_leave_readers_stale(story: Story) -> None:
    assert story.ask("print(reactive.timestamp('boom').stmt_num)") == "1\n"
    run0 = story.ask("print(reactive.lift('boom').run)")
    story.drag(7)  # 10 // (7 - 7): the cell fails in its second statement
    story.nb.wait_for(lambda: "ZeroDivisionError" in story.nb.text("bad"), timeout=20, what="err")
    # ok_part was rewritten by the failing run, boom was not: it still holds the old value
    assert story.ask("print(reactive.lift('boom').run)") == run0
    assert int(story.ask("print(reactive.lift('ok_part').run)")) > int(run0)
    statuses = "print(reactive.cells(id='bad').status, reactive.cells(id='after').status)"
    assert story.ask(statuses) == "errored stale\n"
    # a first run that fails: what it never wrote is not tracked, in one line.  (Names
    # are passed as strings: a cell that reads a failed cell's variable is not run.)
    story.nb.execute("err", "half = 1\nnever = 1 / 0")
    assert story.ask("print(reactive.timestamp('half').stmt_num)") == "0\n"
    err = story.ask("print(reactive.cells(id='err').number)").strip()
    assert one_line(story.ask("reactive.timestamp('never')")) == (
        "NotTracked: reactive.timestamp: the runtime does not track 'never'; "
        f"cell {err} writes it but no run of it has"
    )


def test_cells_view(story: Story) -> None:
    n = NUM["mid"]
    assert story.ask(f"reactive.cells({n})") == f"<Cell {n} 'mid = base + s.value': fresh>\n"
    view = story.ask(
        f"c = reactive.cells({n})\nprint(c.id, c.status, repr(c.source))\n"
        "print([d.id for d in c.deps()], [u.id for u in c.users()][:3])"
    )
    assert view == "mid fresh 'mid = base + s.value'\n['base', 'w'] ['scaled', 'left', 'right']\n"
    assert headers(story.ask(f"reactive.cells({n}).slice()")) == cells_header("base", "w", "mid")
    outputs = story.ask("print(reactive.cells(id='show').outputs)")
    assert "'text': 'left 24 right 11\\n'" in outputs and "'output_type': 'stream'" in outputs
    assert one_line(story.ask("reactive.cells(999)")).startswith(
        "NotTracked: reactive.cells: there is no cell 999; cells are numbered 1.."
    )
    count = int(story.ask("print(len(reactive.cells()))")) + 1  # and the asking cell
    assert one_line(story.ask("reactive.cells(id='nope')")) == (
        f"NotTracked: reactive.cells: no cell matches 'nope'; give a cell number (1..{count}) "
        "or a cell id"
    )


def test_reproduce_cell_shows_past_runs_until_they_are_gone(story: Story) -> None:
    n = NUM["show"]
    story.drag(3)
    latest = story.ask(f"reactive.reproduce_cell({n})")
    assert latest.startswith(f"# Cell {n}, latest run")
    assert latest.endswith("print('left', left, 'right', right)\nleft 26 right 12\n")
    earlier = story.ask(f"reactive.reproduce_cell({n}, lookback=1)")
    assert earlier.startswith(f"# Cell {n}, 1 run(s) ago")
    assert earlier.endswith("left 24 right 11\n")
    assert story.nb.text("show") == "left 26 right 12\n"  # re-showing changed nothing
    for v in range(4, 12):
        story.drag(v % 11)
    gone = one_line(story.ask(f"reactive.reproduce_cell({n}, lookback=8)"))
    ran = probe(story.nb, f"{RUNTIME}.lineage.run_count('show')")
    assert isinstance(ran, int) and ran >= 10  # once per move at least
    assert gone == (
        f"NotTracked: reactive.reproduce_cell: cell {n} ran {ran} time(s) and the last 8 are "
        "kept; run 8 back is gone (lookback 0..7)"
    )


def test_untracked_and_misuse_give_one_line(story: Story) -> None:
    for call in ("code", "deps", "users", "timestamp", "lift"):
        msg = one_line(story.ask(f"reactive.{call}('nothing_here')"))
        assert msg == (
            f"NotTracked: reactive.{call}: the runtime does not track 'nothing_here'; "
            "no cell it ran has written it"
        )
    assert "not the expression '1 + 1'" in story.ask("reactive.code(1 + 1)")
    assert one_line(story.ask("reactive.reproduce_cell(999)")).startswith(
        "NotTracked: reactive.reproduce_cell: there is no cell 999"
    )
    story.nb.execute("unload", "%unload_ext reactive")
    assert one_line(story.ask("reactive.code('base')")) == (
        "NotLoaded: reactive.code: the runtime is not loaded; run %load_ext reactive"
    )


def test_explain_says_which_event_input_and_batch_and_why_not(story: Story) -> None:
    story.nb.execute("tr", "%reactive trace on")
    story.drag(7)
    trace = story.nb.text("tr")
    assert "reactive: trace on" in trace and "s.value=7" in trace and "batch" in trace
    left = story.ask("%reactive explain left")
    assert "last run: batch" in left and "(started by: s.value=7)" in left, left
    assert "reads what cell mid" in left
    assert f"inputs rewritten since its previous run: mid (by cell [{NUM['mid']}])" in left
    assert f"[{NUM['show']}] \"print('left', left, 'right', right)\": ran (ok)" in left
    # flag re-ran but kept its value: its reader did not run, and explain says why
    flag = story.ask("%reactive explain flag")
    reader = f"[{NUM['uses_flag']}] \"print('flag', flag)\""
    assert f"{reader}: skipped: what it reads kept its value" in flag, flag
    uses = story.ask("%reactive explain uses_flag")
    assert "skipped, what it reads kept its value (compared by fingerprint)" in uses, uses
    after = story.ask("%reactive explain after")
    assert f"left stale because upstream [{NUM['bad']}] error" in after, after
    story.nb.execute("troff", "%reactive trace off")
    assert story.nb.text("troff") == "reactive: trace off\n"
    lines = len(story.nb.text("tr").splitlines())
    story.drag(3)
    assert len(story.nb.text("tr").splitlines()) == lines


def test_show_graph_is_svg_with_every_cell(story: Story) -> None:
    story.drag(7)  # bad fails, after is left stale
    cid = "graph"
    story.nb.execute(cid, "reactive.show_graph()")
    svgs = [o for o in story.nb.visible(cid) if "image/svg+xml" in o.get("data", {})]
    assert len(svgs) == 1, story.nb.visible(cid)
    root = ET.fromstring(svgs[0]["data"]["image/svg+xml"])
    ns = {"s": "http://www.w3.org/2000/svg"}
    boxes = {g.get("data-cell-id"): g for g in root.iterfind(".//s:g", ns) if g.get("data-cell-id")}
    managed = probe(
        story.nb,
        "sorted(__import__('reactive.integrations.ipykernel.runtime', fromlist=['R'])"
        ".Runtime.current.graph.cells)",
    )
    assert sorted(boxes) == managed  # every cell the runtime manages, no other
    assert {c for c, _ in STORY} <= set(boxes)
    assert boxes["after"].get("data-status") == "stale" and "stale" in boxes["after"].get("class")
    assert boxes["bad"].get("data-status") == "errored"
    label = "".join(boxes["mid"].itertext())
    assert f"[{NUM['mid']}] mid = base + s.value" in label
    sources = list(root.iterfind(".//s:g[@class='source']", ns))
    assert len(sources) == 1 and sources[0].find("s:ellipse", ns) is not None
    assert "s.value" in "".join(sources[0].itertext())
    wait_text(story.nb, "show", "left 34 right 16\n")


def test_writes_the_analysis_cannot_see(story: Story) -> None:
    story.nb.execute("hidden", "exec('hidden = base * 2')")
    n = story.ask("print(reactive.cells(id='hidden').number)").strip()
    assert story.ask("print(reactive.timestamp('hidden'))") == (
        f"Timestamp(cell_num={n}, stmt_num=0)\n"
    )
    story.nb.execute("loop", "total = 0\nfor i in range(5):\n    total += 10 // (2 - i)")
    assert "ZeroDivisionError" in story.nb.text("loop")
    # the loop ran twice before failing: i and total were rebound in the failing statement
    loop = story.ask("print(reactive.cells(id='loop').number)").strip()
    assert story.ask("print(reactive.timestamp('i').stmt_num, reactive.timestamp('total'))") == (
        f"1 Timestamp(cell_num={loop}, stmt_num=1)\n"
    )
    story.nb.execute("gone", "del hidden")
    assert one_line(story.ask("reactive.timestamp('hidden')")).startswith(
        "NotTracked: reactive.timestamp: the runtime does not track 'hidden'"
    )
