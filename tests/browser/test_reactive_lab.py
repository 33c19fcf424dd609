"""The reactive runtime in real JupyterLab 4 (headless Chromium), as a user drives it.

Screenshots of each step are kept under ``artifacts/browser/<test>/``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.lab import LabPage

pytestmark = pytest.mark.browser

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "dashboards"


@pytest.fixture(scope="module", autouse=True)
def reactive_kernelspec() -> Iterator[None]:
    """The "Python 3 (reactive)" kernel, installed into this environment as the demo does."""
    from reactive.integrations.ipykernel import kernelspec

    kernelspec.install(location=kernelspec.Location(prefix=sys.prefix))
    yield


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
