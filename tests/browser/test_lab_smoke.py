"""The browser harness on plain ipykernel: run, edit, re-run, widgets by keyboard, reload, tabs.

These tests prove the harness, not the reactive runtime (not loaded here): if they fail,
browser tests of the runtime cannot be trusted either. The slider is moved with the
keyboard on its handle, as a user would, and the result is read from another cell's
``Output`` widget, which is filled by setting ``out.outputs`` from an observer — the one
way that works from any thread and survives a reload (HOSTS.md, ipywidgets).
"""

from __future__ import annotations

import re

import pytest

from tests.browser.lab import LabPage

pytestmark = pytest.mark.browser

# A 1x1 PNG, so the image helper has something to find without matplotlib.
PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9"
    "awAAAABJRU5ErkJggg=="
)

CELLS = [
    # 0: plain output that the test edits and re-runs.
    'message = "first"\nprint("cell 0 says", message)',
    # 1: print output, an image, and the slider whose observer fills `out`.
    "import base64\n"
    "import ipywidgets as widgets\n"
    "from IPython.display import Image, display\n"
    'print("cell 1 ran")\n'
    f'display(Image(data=base64.b64decode("{PNG}")))\n'
    'slider = widgets.IntSlider(value=3, min=0, max=10, description="n")\n'
    "out = widgets.Output()\n"
    "\n"
    "def render(value):\n"
    '    out.outputs = ({"output_type": "stream", "name": "stdout", "text": f"v={value}\\n"},)\n'
    "\n"
    "def on_value(change):\n"
    "    render(change.new)\n"
    "\n"
    "render(slider.value)\n"
    'slider.observe(on_value, names="value")\n'
    "slider",
    # 2: the Output widget, displayed in a later cell than the slider.
    "out",
]


def test_run_edit_slider_reload(lab: LabPage) -> None:
    lab.open_notebook("smoke.ipynb", CELLS)
    lab.screenshot("opened")

    lab.run_all()
    assert "cell 0 says first" in lab.wait_for_output(0, "cell 0 says first")
    assert "cell 1 ran" in lab.wait_for_output(1, "cell 1 ran")
    assert lab.wait_for_output(2, "v=3").strip() == "v=3"
    assert lab.cell_output_images(1) == [f"data:image/png;base64,{PNG}"]
    lab.screenshot("ran-all")

    lab.edit_cell(0, 'message = "second"\nprint("cell 0 says", message)')
    lab.run_cell(0)
    assert lab.wait_for_output(0, "second").strip() == "cell 0 says second"
    assert lab.cell_source(0).startswith('message = "second"')
    lab.screenshot("edited-cell-0")

    lab.focus_slider(1)
    lab.press("ArrowRight", times=2)
    assert lab.wait_for_output(2, "v=5").strip() == "v=5"
    lab.screenshot("slider-moved")

    lab.reload()
    # The Output widget is restored from the kernel, not from the saved file alone.
    lab.wait_for_output(2, "v=5")
    lab.screenshot("reloaded")
    lab.focus_slider(1)
    lab.press("ArrowRight", times=2)
    assert lab.wait_for_output(2, "v=7").strip() == "v=7"
    lab.wait_kernel_idle()
    lab.screenshot("slider-moved-after-reload")


def test_second_tab_sees_widget_updates(lab: LabPage) -> None:
    lab.open_notebook("two-tabs.ipynb", CELLS)
    lab.run_all()
    lab.wait_for_output(2, "v=3")
    # The second tab reads the notebook from disk: save so it has the widget views.
    lab.save()
    lab.screenshot("first-tab")

    other = lab.new_tab().open_notebook("two-tabs.ipynb")
    other.wait_for_output(2, "v=3")
    other.screenshot("second-tab-opened")

    lab.page.bring_to_front()
    lab.focus_slider(1)
    lab.press("ArrowRight", times=2)
    assert lab.wait_for_output(2, "v=5").strip() == "v=5"
    # Same kernel, same widget model: iopub reaches every tab's widget manager.
    assert other.wait_for_output(2, "v=5").strip() == "v=5"
    lab.screenshot("first-tab-moved")
    other.screenshot("second-tab-updated")


def test_two_notebooks_in_one_tab_survive_reload(lab: LabPage) -> None:
    # Also covers the regex and callable forms of wait_for_output.
    lab.open_notebook("first.ipynb", ['print("in first")'])
    lab.run_all()
    lab.open_notebook("second.ipynb", ['print("in second", 6 * 7)'])
    lab.run_cell(0)
    assert lab.wait_for_output(0, re.compile(r"in second \d+")) == "in second 42\n"
    assert lab.wait_for_output(0, lambda text: text.endswith("42\n"))
    assert lab.cell_output_text(0, path="first.ipynb") == "in first\n"
    # Lab restores only the document named in the URL; reload() reopens the other one.
    lab.reload()
    assert lab.cell_output_text(0, path="first.ipynb") == "in first\n"
    assert lab.cell_output_text(0, path="second.ipynb") == "in second 42\n"
    lab.screenshot("reloaded-two-notebooks")
