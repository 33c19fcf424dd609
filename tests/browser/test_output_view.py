"""What a JupyterLab 4 user has instead of stickyland: "New View for Cell Output".

jupyterlab-stickyland runs only on JupyterLab 3. On JupyterLab 4, the cell context menu's
*Create New View for Cell Output* (``notebook:create-output-view``) opens a panel that
mirrors a cell's output area; a reactive cell's output area holds its slot (an Output
widget), so the panel shows the slot too and follows every reactive re-run. Screenshots:
``artifacts/browser/<test>/``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.browser.lab import POLL_MS, LabPage

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("reactive_kernelspec")]

NOTEBOOK = Path(__file__).resolve().parents[2] / "examples" / "dashboards" / "stickyland.ipynb"
VIEW = ".jp-LinkedOutputView"


def view_text(lab: LabPage) -> str:
    return str(lab.page.locator(f"{VIEW} .jp-OutputArea").first.inner_text())


def view_image(lab: LabPage) -> str | None:
    img = lab.page.locator(f"{VIEW} img").first
    return img.get_attribute("src") if img.count() else None


def wait_view(lab: LabPage, expect: str) -> None:
    lab.page.wait_for_function(
        "([v, s]) => { const n = document.querySelector(v + ' .jp-OutputArea');"
        " return !!n && n.innerText.includes(s); }",
        arg=[VIEW, expect],
        polling=POLL_MS,
    )


def test_output_view_of_a_reactive_cell_follows_its_reruns(lab: LabPage) -> None:
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    idx = {c["id"]: n for n, c in enumerate(nb["cells"])}
    lab.open_notebook("output-view.ipynb", nb)
    assert lab.page.evaluate("() => jupyterapp.version").startswith("4.")
    lab.run_all()
    lab.wait_for_output(idx["plot"], "plot: frequency 3 (run #1)")

    lab.command("notebook:create-output-view", cell=idx["plot"])
    lab.page.locator(VIEW).first.wait_for(state="visible")
    wait_view(lab, "plot: frequency 3 (run #1)")
    first = view_image(lab)
    assert first and first.startswith("data:image/png")
    assert lab.page.locator(VIEW).count() == 1
    lab.screenshot("output-view")

    lab.focus_slider(idx["controls"])
    lab.press("ArrowRight")
    wait_view(lab, "plot: frequency 4 (run #2)")
    lab.page.wait_for_function(
        "([v, old]) => { const i = document.querySelector(v + ' img');"
        " return !!i && i.getAttribute('src') !== old; }",
        arg=[VIEW, first],
        polling=POLL_MS,
    )
    assert "plot: frequency 4 (run #2)" in lab.cell_output_text(idx["plot"])
    assert "(run #1)" in lab.cell_output_text(idx["unrelated"])
    lab.screenshot("slider-moved")
