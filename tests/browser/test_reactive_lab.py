"""The reactive runtime in real JupyterLab 4 (headless Chromium), as a user drives it.

Screenshots of each step are kept under ``artifacts/browser/<test>/``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.browser.lab import LabPage

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("reactive_kernelspec")]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "dashboards"


def test_editing_upstream_updates_downstream(lab: LabPage) -> None:
    cells = ["x = 1", "y = x * 10", "print('unrelated')", "print('y is', y)"]
    lab.open_notebook("edit.ipynb", cells, kernel="python3-reactive")
    lab.run_all()
    assert lab.wait_for_output(3, "y is 10").strip() == "y is 10"
    lab.screenshot("ran-all")
    lab.edit_cell(0, "x = 2")
    lab.run_cell(0)
    assert lab.wait_for_output(3, "y is 20").strip() == "y is 20"
    assert lab.cell_output_text(2).strip() == "unrelated"
    lab.screenshot("downstream-updated")


def test_dragging_a_slider_updates_text_and_plot_below(lab: LabPage) -> None:
    cells = [
        "import ipywidgets as W\nimport matplotlib.pyplot as plt\n%matplotlib inline",
        "s = W.IntSlider(value=3, min=0, max=10, description='n')\ns",
        "print('unrelated')",
        "print('square', s.value ** 2)",
        "fig, ax = plt.subplots(figsize=(3, 2))\nax.bar(range(s.value + 1), range(s.value + 1))",
    ]
    lab.open_notebook("drag.ipynb", cells, kernel="python3-reactive")
    lab.run_all()
    lab.wait_for_output(3, "square 9")
    lab.wait_for_output(4, lambda _t: len(lab.cell_output_images(4)) == 1)  # run all goes on
    first = lab.cell_output_images(4)
    lab.screenshot("ran-all")
    lab.focus_slider(1)
    lab.press("ArrowRight", times=2)
    assert lab.wait_for_output(3, "square 25").strip() == "square 25"
    lab.wait_for_output(4, lambda _t: lab.cell_output_images(4) not in ([], first))
    assert len(lab.cell_output_images(4)) == 1
    lab.screenshot("slider-moved")


def test_jslinked_sliders_stay_linked_and_each_drives_its_readers(lab: LabPage) -> None:
    """``jslink`` is the browser's business: moving one slider moves its twin there, and
    the twin's own update then reaches the kernel like a drag on it would.  Each reader
    must show its slider's new value; the link must hold both ways."""
    cells = [
        "import ipywidgets as W\n"
        "a = W.IntSlider(value=1, max=10, description='a')\n"
        "b = W.IntSlider(value=1, max=10, description='b')\n"
        "link = W.jslink((a, 'value'), (b, 'value'))\n"
        "W.VBox([a, b])",
        "print('a is', a.value)",
        "print('b is', b.value)",
    ]
    lab.open_notebook("jslink.ipynb", cells, kernel="python3-reactive")
    lab.run_all()
    lab.wait_for_output(2, "b is 1")
    lab.focus_slider(0, nth=0)
    lab.press("ArrowRight", times=3)
    assert lab.wait_for_output(1, "a is 4").strip() == "a is 4"
    assert lab.wait_for_output(2, "b is 4").strip() == "b is 4"
    readouts = lab.cell(0).locator(".widget-readout")
    assert [readouts.nth(i).inner_text().strip() for i in (0, 1)] == ["4", "4"]
    lab.screenshot("a-moved")
    lab.focus_slider(0, nth=1)  # and back the other way, from b
    lab.press("Home")
    assert lab.wait_for_output(2, "b is 0").strip() == "b is 0"
    assert lab.wait_for_output(1, "a is 0").strip() == "a is 0"
    assert [readouts.nth(i).inner_text().strip() for i in (0, 1)] == ["0", "0"]
    lab.screenshot("b-moved")


def _sliders_notebook() -> dict[str, object]:
    return json.loads((EXAMPLES / "sliders.ipynb").read_text())


def _code_index(nb: dict[str, object], cell_id: str) -> int:
    cells = nb["cells"]
    assert isinstance(cells, list)
    return [c["id"] for c in cells].index(cell_id)


def test_sliders_dashboard_reload_and_second_tab(lab: LabPage) -> None:
    nb = _sliders_notebook()
    idx = {k: _code_index(nb, k) for k in ("controls", "unrelated", "filter", "plot", "summary")}
    lab.open_notebook("sliders.ipynb", nb, kernel="python3-reactive")
    lab.run_all()
    lab.wait_for_output(idx["summary"], "count")
    unrelated = lab.cell_output_text(idx["unrelated"])
    plot = lab.cell_output_images(idx["plot"])
    table = lab.cell_output_text(idx["summary"])
    lab.screenshot("ran-all")

    lab.focus_slider(idx["controls"], nth=0)  # the IntSlider "points": 200 -> 250
    lab.press("ArrowRight")
    lab.wait_for_output(idx["filter"], "of 250 points")
    lab.wait_for_output(idx["plot"], lambda _t: lab.cell_output_images(idx["plot"]) != plot)
    lab.wait_for_output(idx["summary"], lambda t: t != table)
    assert lab.cell_output_text(idx["unrelated"]) == unrelated, "unrelated cell re-ran"
    lab.screenshot("moved")

    lab.reload()
    lab.wait_for_output(idx["filter"], "of 250 points")
    lab.focus_slider(idx["controls"], nth=0)
    lab.press("ArrowRight")
    lab.wait_for_output(idx["filter"], "of 300 points")
    assert lab.cell_output_text(idx["unrelated"]) == unrelated
    lab.screenshot("moved-after-reload")

    lab.save()
    other = lab.new_tab().open_notebook("sliders.ipynb")
    other.wait_for_output(idx["filter"], "of 300 points")
    lab.page.bring_to_front()
    lab.focus_slider(idx["controls"], nth=0)
    lab.press("ArrowRight")
    lab.wait_for_output(idx["filter"], "of 350 points")
    other.wait_for_output(idx["filter"], "of 350 points")
    other.screenshot("second-tab")
    lab.screenshot("first-tab")
