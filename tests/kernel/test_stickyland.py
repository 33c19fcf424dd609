"""jupyterlab-stickyland's request pattern replayed on the reactive kernel (HOSTS.md).

A sticky cell's original is hidden (``jupyter.source_hidden``/``outputs_hidden`` in its
metadata, which JupyterLab merges into the cell's execute requests), and with auto-run on
stickyland re-sends it 200 ms after the user runs any other cell. Those requests must not
make a cell whose inputs did not change run again; a sticky cell that is out of date runs
once. Every test runs on ipykernel 7 (this environment) and on ipykernel 6.29 (the
JupyterLab 3 environment stickyland needs).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests import lab3env
from tests.kernel.harness import Notebook
from tests.kernel.test_ipykernel6 import LAUNCHER, run_counts
from tests.kernel.test_reactive_kernel import lost_output, wait_text

pytestmark = pytest.mark.kernel

#: what JupyterLab 3 sends for a cell stickyland shows (its original is hidden)
STICKY = {"jupyter": {"source_hidden": True, "outputs_hidden": True}, "collapsed": True}

CELLS = {
    "setup": "import ipywidgets as W",
    "controls": "s = W.IntSlider(value=3, max=20, description='n')\ns",
    "data": "data = [i * i for i in range(s.value)]",
    "unrelated": "print('unrelated')",
    "plot": "print('plot of', len(data), 'points, last', data[-1])",
}
#: the cells shown in StickyLand with auto-run on
STICKY_CELLS = ("controls", "plot")


@pytest.fixture(params=["ipykernel7", "ipykernel6.29"])
def snb(request: pytest.FixtureRequest) -> Iterator[Notebook]:
    if request.param == "ipykernel7":
        nb = Notebook(extra_args=["--IPKernelApp.extensions=['reactive']"])
    else:
        py = str(lab3env.require())
        nb = Notebook(kernel_cmd=[py, "-m", LAUNCHER, "-f", "{connection_file}"])
    nb.start()
    try:
        yield nb
        assert lost_output(nb) == [], "output landed in no cell"
    finally:
        nb.shutdown()


def run(nb: Notebook, cell: str, code: str | None = None, *, wait: bool = True) -> object:
    """Execute ``cell`` as the page does, sticky metadata included for sticky cells."""
    meta = STICKY if cell in STICKY_CELLS else None
    return nb.execute(cell, code or CELLS[cell], cell_metadata=meta, wait=wait)


def run_all(nb: Notebook) -> None:
    for cell in CELLS:
        assert run(nb, cell)["status"] == "ok", nb.text(cell)


def auto_run(nb: Notebook) -> None:
    """stickyland's auto-run: every sticky cell again, after the user's run."""
    for cell in STICKY_CELLS:
        reply = run(nb, cell)
        assert reply["status"] == "ok", reply


def test_auto_run_after_run_all_runs_nothing_twice(snb: Notebook) -> None:
    nb = snb
    run_all(nb)
    (slider,) = nb.find_widget("IntSliderModel", cell_id="controls")
    assert nb.text("plot") == "plot of 3 points, last 4\n"
    auto_run(nb)
    assert run_counts(nb) == dict.fromkeys(CELLS, 1)
    # both sticky cells still show their output: the same slider, the same text
    assert nb.find_widget("IntSliderModel", cell_id="controls") == [slider]
    assert nb.text("plot") == "plot of 3 points, last 4\n"


def test_auto_run_after_an_unrelated_run_or_a_drag_runs_nothing_again(snb: Notebook) -> None:
    nb = snb
    run_all(nb)
    (slider,) = nb.find_widget("IntSliderModel", cell_id="controls")
    nb.wait_idle(nb.send_widget_update(slider, {"value": 5}))
    wait_text(nb, "plot", "plot of 5 points, last 16\n")
    run(nb, "unrelated")
    auto_run(nb)
    counts = run_counts(nb)
    assert counts == {"setup": 1, "controls": 1, "data": 2, "unrelated": 2, "plot": 2}, counts
    assert nb.widget_state(slider)["value"] == 5, "the slider cell must not be re-created"
    assert nb.text("plot") == "plot of 5 points, last 16\n"


def test_a_sticky_cell_whose_input_changed_runs_once(snb: Notebook) -> None:
    nb = snb
    run_all(nb)
    # the user edits and runs the data cell; auto-run's request for the plot follows
    # at once, while the reactive re-run of the plot may still be queued
    edited = "data = [i * i * 10 for i in range(s.value)]"
    first = run(nb, "data", edited, wait=False)
    second = run(nb, "plot", wait=False)
    assert nb.wait_reply(first.msg_id, idle=True)["status"] == "ok"
    assert nb.wait_reply(second.msg_id, idle=True)["status"] == "ok"
    nb.drain(quiet=0.3)
    assert run_counts(nb)["plot"] == 2
    assert nb.text("plot") == "plot of 3 points, last 40\n"
    auto_run(nb)  # nothing changed since
    assert run_counts(nb)["plot"] == 2


def test_edited_sticky_cells_run_and_plain_requests_always_run(snb: Notebook) -> None:
    nb = snb
    run_all(nb)
    run(nb, "plot", "print('plot has', len(data), 'points')")  # edited in StickyLand
    assert nb.text("plot") == "plot has 3 points\n"
    nb.execute("unrelated", CELLS["unrelated"])  # not sticky: a run by hand always runs
    assert run_counts(nb)["unrelated"] == 2
    assert run_counts(nb)["plot"] == 2


def test_a_failed_sticky_cell_answers_with_its_error_until_its_input_changes(
    snb: Notebook,
) -> None:
    nb = snb
    run_all(nb)
    (slider,) = nb.find_widget("IntSliderModel", cell_id="controls")
    nb.wait_idle(nb.send_widget_update(slider, {"value": 0}))
    nb.wait_for(lambda: "IndexError" in nb.text("plot"), timeout=20, what="error in plot")
    reply = run(nb, "plot")
    assert reply["status"] == "error" and reply["ename"] == "IndexError"
    assert "IndexError" in nb.text("plot")
    assert run_counts(nb)["plot"] == 2
    nb.wait_idle(nb.send_widget_update(slider, {"value": 2}))
    wait_text(nb, "plot", "plot of 2 points, last 1\n")
