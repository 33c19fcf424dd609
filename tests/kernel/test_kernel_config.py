"""Settings at every level, consoles, inline plots and reloading the extension, on a real kernel.

DESIGN.md §7: every ``Reactive`` setting can be given in an IPython profile
(``c.Reactive.<name>`` in ``ipython_config.py`` / ``ipython_kernel_config.py``), on the kernel
command line (``--Reactive.<name>=``) and, for the ones the magic knows, with ``%reactive``.
Each level is checked the same way: ``%reactive status`` shows the value and the runtime
behaves accordingly (``mode=normal`` leaves dependents stale, ``direction=any_order`` binds a
read to a cell further down, ``debounce`` holds a slider change back, ``upstream=False``
does not run out-of-sync cells above the one the user runs).

The harness gives each kernel a private ``IPYTHONDIR`` (``Notebook._start`` does
``env.setdefault("IPYTHONDIR", <tmp>/ipython)``); passing ``env={"IPYTHONDIR": ...}`` puts
the kernel on a profile written here instead.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from reactive.config import settable
from tests.kernel.harness import Notebook
from tests.kernel.test_examples import LAUNCHER
from tests.kernel.test_reactive_kernel import lost_output, probe, runs, wait_text

pytestmark = pytest.mark.kernel

RUNTIME = "__import__('reactive.integrations.ipykernel.runtime', fromlist=['R']).Runtime.current"
IMAGE = "image/png"
DEBOUNCE_S = 0.150


def values(tmp: Path) -> dict[str, Any]:
    """A non-default value for every setting (the test fails when a new setting appears)."""
    chosen = {
        "mode": "normal",
        "direction": "any_order",
        "debounce_ms": 150.0,
        "max_fps": 12.0,
        "trace": True,
        "upstream": False,
        "memo_max_bytes": 1 << 20,
        "memo_disk": True,
        "memo_dir": str(tmp / "memo"),
        "stream_interval_ms": 50.0,
    }
    assert set(chosen) == set(settable()), "cover every Reactive setting here"
    return chosen


def profile(tmp: Path, filename: str, settings: dict[str, Any]) -> dict[str, str]:
    """An IPYTHONDIR whose default profile sets ``settings``; returns the kernel's env."""
    ipdir = tmp / "ipython"
    prof = ipdir / "profile_default"
    prof.mkdir(parents=True)
    lines = [f"c.Reactive.{name} = {value!r}" for name, value in settings.items()]
    (prof / filename).write_text("c = get_config()  # noqa: F821\n" + "\n".join(lines) + "\n")
    return {"IPYTHONDIR": str(ipdir)}


def cli(settings: dict[str, Any]) -> list[str]:
    return [f"--Reactive.{name}={value}" for name, value in settings.items()]


def config_values(nb: Notebook, names: list[str]) -> dict[str, Any]:
    got = probe(nb, f"repr({{n: getattr({RUNTIME}.config, n) for n in {names!r}}})")
    assert isinstance(got, str)
    value = ast.literal_eval(got)
    assert isinstance(value, dict)
    return value


def status(nb: Notebook, cell: str = "status") -> str:
    reply = nb.execute(cell, "%reactive status")
    assert reply["status"] == "ok", nb.text(cell)
    return nb.text(cell)


def behaves_as_configured(nb: Notebook, *, upstream: bool) -> None:
    """mode=normal, direction=any_order, debounce=150 ms (and ``upstream``) take effect.

    Leaves the kernel in reactive mode. Needs ``ipywidgets`` imported as ``W``.
    """
    first = status(nb).splitlines()[0]
    assert "mode=normal direction=any_order debounce=150ms" in first, first

    # mode=normal: a plain kernel whose graph still learns; dependents are listed as stale
    nb.execute("a", "base = 1")
    nb.execute("b", "y = base + 1")
    nb.execute("c", "print('y is', y)")
    nb.execute("a", "base = 5")
    nb.drain(quiet=0.5)  # nothing is running in the background: nothing may arrive
    assert nb.text("c") == "y is 2\n"
    assert runs(nb) == {}, "normal mode must not re-run anything"
    stale = [line for line in status(nb).splitlines() if "stale " in line]
    assert any("y = base + 1" in line for line in stale), stale
    assert any("print('y is', y)" in line for line in stale), stale

    # upstream: running c runs the out-of-sync b above it first, unless upstream is off
    nb.execute("on", "%reactive on")
    nb.execute("c", "print('y is', y)")
    # (with trace on, the first cell run after switching on also shows the live trace)
    if upstream:
        assert nb.text("c").endswith("y is 6\n") and runs(nb).get("b") == 1
    else:
        assert nb.text("c").endswith("y is 2\n") and runs(nb).get("b", 0) == 0

    # direction=any_order: a read binds to a writer further down the notebook
    reply = nb.execute("early", "print('later is', later * 2)")
    assert reply["status"] == "error" and "NameError" in nb.text("early")
    nb.execute("late", "later = 1")
    wait_text(nb, "early", "later is 2\n")
    nb.execute("late", "later = 3")
    wait_text(nb, "early", "later is 6\n")
    assert runs(nb).get("early") == 2

    # debounce=150 ms: a slider change reaches its reader no sooner than that
    nb.execute("sl", "sl = W.IntSlider(value=1)\nsl")
    (slider,) = nb.find_widget("IntSliderModel", cell_id="sl")
    nb.execute("rd", "print('slider', sl.value)")
    sent = nb.send_widget_update(slider, {"value": 7})
    entry = nb.wait_for(lambda: nb.text("rd") == "slider 7\n", timeout=20, what="rd re-ran")
    assert entry is not None
    assert entry.t - nb.sent_at(sent) >= DEBOUNCE_S, "the change was not debounced"
    assert lost_output(nb) == []


# --------------------------------------------------------------------------------------
# every setting at every level
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("level", "how"),
    [
        ("ipython_config.py", "load_ext"),
        ("ipython_kernel_config.py", "launcher"),
        ("command line", "load_ext"),
        ("command line", "launcher"),
    ],
)
def test_every_setting_from_config_and_command_line(
    notebook_factory: Callable[..., Notebook], tmp_path: Path, level: str, how: str
) -> None:
    """Profile files and ``--Reactive.<name>=``, with ``%load_ext`` and with the reactive kernel."""
    settings = values(tmp_path)
    kwargs: dict[str, Any] = {}
    if level == "command line":
        kwargs["extra_args"] = cli(settings)
    else:
        kwargs["env"] = profile(tmp_path, level, settings)
    if how == "launcher":
        kwargs["kernel_cmd"] = LAUNCHER
    nb = notebook_factory(**kwargs)
    setup = "import ipywidgets as W"
    if how == "load_ext":
        setup = "%load_ext reactive\n" + setup
    assert nb.execute("setup", setup)["status"] == "ok", nb.text("setup")
    assert config_values(nb, sorted(settings)) == settings
    behaves_as_configured(nb, upstream=False)


def test_settings_from_the_magic(notebook_factory: Callable[..., Notebook]) -> None:
    nb = notebook_factory()
    assert nb.execute("setup", "%load_ext reactive\nimport ipywidgets as W")["status"] == "ok"
    for cell, line, said in [
        ("m1", "%reactive mode normal", "reactive: mode=normal"),
        ("m2", "%reactive direction any_order", "reactive: direction=any_order"),
        ("m3", "%reactive debounce 150", "reactive: debounce 150 ms for every widget"),
    ]:
        assert nb.execute(cell, line)["status"] == "ok", nb.text(cell)
        assert nb.text(cell) == said + "\n"
    assert config_values(nb, ["mode", "direction", "debounce_ms"]) == {
        "mode": "normal",
        "direction": "any_order",
        "debounce_ms": 150.0,
    }
    behaves_as_configured(nb, upstream=True)


def test_magic_overrides_the_command_line(notebook_factory: Callable[..., Notebook]) -> None:
    nb = notebook_factory(kernel_cmd=[*LAUNCHER, "--Reactive.mode=normal"])
    assert "mode=normal" in status(nb, "s1")
    nb.execute("on", "%reactive mode reactive")
    assert "mode=reactive" in status(nb, "s2")
    nb.execute("a", "x = 1")
    nb.execute("b", "print(x * 10)")
    nb.execute("a", "x = 2")
    wait_text(nb, "b", "20\n")
    assert lost_output(nb) == []


def test_ipython_config_magic_reaches_the_runtime(
    notebook_factory: Callable[..., Notebook],
) -> None:
    nb = notebook_factory()
    nb.execute("setup", "%load_ext reactive")
    reply = nb.execute("cfg", "%config Reactive.mode = 'normal'")
    assert reply["status"] == "ok"
    assert "mode=normal" in status(nb)


# --------------------------------------------------------------------------------------
# a bad value in the configuration
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arg", "words"),
    [
        ("--Reactive.mode=sideways", ["Reactive.mode", "'reactive', 'normal'", "sideways"]),
        ("--Reactive.debounce_ms=-5", ["Reactive.debounce_ms", "must be a number >= 0", "-5"]),
    ],
)
def test_bad_config_value_is_one_line_and_the_runtime_loads_with_the_default(
    notebook_factory: Callable[..., Notebook], arg: str, words: list[str]
) -> None:
    """``%load_ext`` names the bad value in one line; the runtime runs on the default."""
    nb = notebook_factory(extra_args=[arg])
    reply = nb.execute("setup", "%load_ext reactive")
    assert reply["status"] == "ok"
    text = nb.text("setup").strip()
    assert len(text.splitlines()) == 1 and "Traceback" not in text, text
    assert all(w in text for w in words), text
    nb.execute("a", "x = 1")
    nb.execute("b", "print(x * 10)")
    nb.execute("a", "x = 2")
    wait_text(nb, "b", "20\n")  # reactive with the default settings
    assert lost_output(nb) == []


def test_bad_config_value_with_the_reactive_kernel_is_shown_to_the_user(
    notebook_factory: Callable[..., Notebook],
) -> None:
    """The "Python 3 (reactive)" kernel loads with defaults; the first cell run says why."""
    nb = notebook_factory(kernel_cmd=[*LAUNCHER, "--Reactive.mode=sideways"])
    reply = nb.execute("a", "print(6 * 7)")
    assert reply["status"] == "ok"
    lines = nb.text("a").splitlines()
    assert lines[-1] == "42"
    assert [line for line in lines if "sideways" in line and "Reactive.mode" in line]
    nb.execute("b", "%reactive status")
    assert "mode=reactive" in nb.text("b")
    assert lost_output(nb) == []


# --------------------------------------------------------------------------------------
# cell identity without metadata.cellId (consoles, older frontends)
# --------------------------------------------------------------------------------------


class _NoCellId:
    """Make ``nb.execute`` send what a console sends: an execute_request with no metadata.

    The harness still files each request's outputs under the page "cell" named in
    ``execute`` (a console shows each request's output under its own prompt), so
    ``text``/``visible``/``in_no_cell`` keep working.
    """

    def __init__(self, nb: Notebook) -> None:
        self.nb = nb
        self.original = nb._new_msg

    def __enter__(self) -> Notebook:
        original = self.original

        def new_msg(msg_type: str, content: Any, **kw: Any) -> Any:
            if msg_type == "execute_request":
                kw["metadata"] = {}
            return original(msg_type, content, **kw)

        self.nb._new_msg = new_msg  # type: ignore[method-assign]
        return self.nb

    def __exit__(self, *exc: object) -> None:
        self.nb._new_msg = self.original  # type: ignore[method-assign]


@pytest.fixture
def rnb(notebook_factory: Callable[..., Notebook]) -> Iterator[Notebook]:
    nb = notebook_factory()
    assert nb.execute("setup", "%load_ext reactive")["status"] == "ok"
    yield nb
    assert lost_output(nb) == [], "output landed in no cell"


def cell_count(nb: Notebook) -> int:
    n = probe(nb, f"len({RUNTIME}.graph.cells)")
    assert isinstance(n, int)
    return n


def test_console_without_cell_ids_one_cell_per_distinct_source(rnb: Notebook) -> None:
    """``Runtime.cell_key``: no cellId -> each distinct source is one cell, placed by its
    first execution. So in a console a new ``x = 2`` is a new cell *below* the reader and
    (in-order) does not re-run it; the same source executed again is the same cell, in its
    old place; a writer re-executed with a new result re-runs its readers in their own
    output (their slot)."""
    nb = rnb
    before = cell_count(nb)
    with _NoCellId(nb):
        prompts = [("p1", "x = 1"), ("p2", "print(x * 10)"), ("p3", "x = 2")]
        for prompt, code in prompts:
            assert nb.execute(prompt, code)["status"] == "ok", nb.text(prompt)
    sent = nb.entries("execute_request", direction="sent")[-3:]
    assert [e.msg["metadata"] for e in sent] == [{}, {}, {}], "must look like a console"
    assert cell_count(nb) == before + 3
    assert nb.text("p2") == "10\n"
    nb.drain(quiet=0.5)  # nothing queued: x = 2 sits below the reader
    assert nb.text("p2") == "10\n" and runs(nb) == {}
    assert probe(nb, "x") == 2

    # the same source again: the same cell, in its first place (above x = 2), so it shows
    # what "run all" of these cells shows
    with _NoCellId(nb):
        assert nb.execute("p4", "print(x * 10)")["status"] == "ok"
    assert cell_count(nb) == before + 3
    assert nb.text("p4") == "10\n"

    # a writer whose re-execution gives a new value re-runs its reader in place
    with _NoCellId(nb):
        nb.execute("p5", "import itertools\nticks = itertools.count(1)")
        nb.execute("p6", "tick = next(ticks)")
        nb.execute("p7", "print('tick', tick)")
        assert nb.text("p7") == "tick 1\n"
        nb.execute("p8", "tick = next(ticks)")  # same source as p6: that cell again
    wait_text(nb, "p7", "tick 2\n")
    counts = runs(nb)
    assert sorted(counts.values()) == [1] * len(counts), counts
    assert cell_count(nb) == before + 6
    assert "no stale cells" in status(nb)


# --------------------------------------------------------------------------------------
# matplotlib inline, implicit show
# --------------------------------------------------------------------------------------


def images(outputs: list[dict[str, Any]]) -> list[str]:
    return [o["data"][IMAGE] for o in outputs if IMAGE in (o.get("data") or {})]


def test_implicit_inline_plot_is_replaced_in_its_own_cell(rnb: Notebook) -> None:
    nb = rnb
    assert nb.execute("mpl", "%matplotlib inline")["status"] == "ok"
    nb.execute("k", "k = 2")
    code = "import matplotlib.pyplot as plt\nplt.plot([1, k, 3])"
    assert nb.execute("plot", code)["status"] == "ok", nb.text("plot")
    first = images(nb.visible("plot"))
    assert len(first) == 1, nb.visible("plot")
    assert images(nb.outputs("plot")) == [], "the image must live in the slot, not beside it"

    nb.execute("k", "k = 5")
    nb.wait_for(lambda: images(nb.visible("plot")) not in ([], first), timeout=20, what="replot")
    nb.drain(quiet=0.5)
    second = images(nb.visible("plot"))
    assert len(second) == 1 and second != first, nb.visible("plot")
    assert runs(nb) == {"plot": 1}
    kinds = [o["output_type"] for o in nb.visible("plot")]
    assert kinds == ["execute_result", "display_data"], kinds  # [<Line2D>], then the figure
    for cell in nb.cells:
        if cell != "plot":
            assert images(nb.visible(cell)) == [], f"an image landed in {cell}"
    assert probe(nb, "len(plt.get_fignums())") == 0, "the re-run left a figure open"


# --------------------------------------------------------------------------------------
# %unload_ext then %load_ext
# --------------------------------------------------------------------------------------

HOOKS = "repr({k: len(v) for k, v in get_ipython().events.callbacks.items()})"
SCHEDULERS = "sum(t.get_name() == 'reactive-scheduler' for t in __import__('asyncio').all_tasks())"


def executions(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_reload_extension_installs_once(
    notebook_factory: Callable[..., Notebook], tmp_path: Path
) -> None:
    """After unload + load, each edit re-runs a dependent cell exactly once.

    Runs are counted by the cell itself (it appends a line to a file), not by the runtime's
    bookkeeping, so a second, leftover hook that re-ran the cell would show.
    """
    nb = notebook_factory()
    plain = probe(nb, HOOKS)
    nb.execute("setup", "%load_ext reactive\nimport ipywidgets as W")
    loaded = probe(nb, HOOKS)
    assert loaded != plain
    nb.execute("unload", "%unload_ext reactive")
    assert probe(nb, HOOKS) == plain and probe(nb, SCHEDULERS) == 0
    assert nb.execute("load", "%load_ext reactive")["status"] == "ok", nb.text("load")
    assert probe(nb, HOOKS) == loaded

    log = tmp_path / "b.log"
    nb.execute("a", "x = 1")
    nb.execute("b", f"open({str(log)!r}, 'a').write('ran\\n')\nprint(x * 10)")
    assert executions(log) == 1
    assert probe(nb, SCHEDULERS) == 1
    for n, value in enumerate((2, 3), start=2):
        nb.execute("a", f"x = {value}")
        wait_text(nb, "b", f"{value * 10}\n")
        nb.drain(quiet=0.5)
        assert executions(log) == n

    wlog = tmp_path / "w.log"
    nb.execute("w", "s = W.IntSlider(value=1)\ns")
    (slider,) = nb.find_widget("IntSliderModel", cell_id="w")
    nb.execute("r", f"open({str(wlog)!r}, 'a').write('ran\\n')\nprint('v', s.value)")
    nb.send_widget_update(slider, {"value": 4})
    wait_text(nb, "r", "v 4\n")
    nb.drain(quiet=0.5)
    assert executions(wlog) == 2
    assert probe(nb, SCHEDULERS) == 1
    assert lost_output(nb) == []


def test_widget_made_before_a_reload_still_drives_its_readers(
    notebook_factory: Callable[..., Notebook],
) -> None:
    nb = notebook_factory()
    nb.execute("setup", "%load_ext reactive\nimport ipywidgets as W")
    nb.execute("w", "s = W.IntSlider(value=1)\ns")
    (slider,) = nb.find_widget("IntSliderModel", cell_id="w")
    nb.execute("unload", "%unload_ext reactive")
    nb.execute("load", "%load_ext reactive")
    nb.execute("r", "print('v', s.value)")
    nb.send_widget_update(slider, {"value": 4})
    wait_text(nb, "r", "v 4\n", timeout=5)


def test_widget_made_before_load_ext_drives_its_readers(
    notebook_factory: Callable[..., Notebook],
) -> None:
    nb = notebook_factory()
    nb.execute("w", "import ipywidgets as W\ns = W.IntSlider(value=1)\ns")
    (slider,) = nb.find_widget("IntSliderModel", cell_id="w")
    nb.execute("setup", "%load_ext reactive")
    nb.execute("r", "print('v', s.value)")
    nb.send_widget_update(slider, {"value": 4})
    wait_text(nb, "r", "v 4\n", timeout=5)
