"""The example dashboards run top to bottom on a fresh reactive kernel and react to sliders."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.kernel.harness import Notebook
from tests.kernel.test_reactive_kernel import lost_output, runs

pytestmark = pytest.mark.kernel

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "dashboards"
LAUNCHER = [
    sys.executable,
    "-m",
    "reactive.integrations.ipykernel.launcher",
    "-f",
    "{connection_file}",
]


def code_cells(name: str) -> list[tuple[str, str]]:
    nb = json.loads((EXAMPLES / name).read_text())
    return [
        (c["id"], "".join(c["source"]) if isinstance(c["source"], list) else c["source"])
        for c in nb["cells"]
        if c["cell_type"] == "code"
    ]


def png(nb: Notebook, cell: str) -> list[str]:
    return [
        o["data"]["image/png"]
        for o in nb.visible(cell)
        if o.get("output_type") in ("display_data", "execute_result")
        and "image/png" in o.get("data", {})
    ]


@pytest.mark.parametrize("routing", ["main", "subshell"])
def test_sliders_dashboard(notebook_factory: Callable[..., Notebook], routing: str) -> None:
    nb = notebook_factory(kernel_cmd=LAUNCHER, comms_over_subshells=routing == "subshell")
    for cid, src in code_cells("sliders.ipynb"):
        reply = nb.execute(cid, src, timeout=60)
        assert reply["status"] == "ok", (cid, reply)
    assert "data: 200 rows" in nb.text("data")
    assert len(png(nb, "plot")) == 1
    before_plot, before_table = png(nb, "plot")[0], nb.text("summary")
    unrelated = nb.text("unrelated")
    points = nb.find_widget("IntSliderModel")[0]
    nb.send_widget_update(points, {"value": 400})
    nb.wait_for(
        lambda: "400 points" in nb.text("filter") or "of 400" in nb.text("filter"),
        timeout=30,
        what="filter re-ran",
    )
    nb.wait_for(
        lambda: png(nb, "plot") and png(nb, "plot")[0] != before_plot,
        timeout=30,
        what="plot repainted",
    )
    nb.wait_for(lambda: nb.text("summary") != before_table, timeout=30, what="table updated")
    assert "data: 400 rows" in nb.text("data")
    assert len(png(nb, "plot")) == 1, "exactly one figure in the plot cell"
    assert nb.text("unrelated") == unrelated
    counts = runs(nb)
    assert counts.get("unrelated", 0) == 0 and counts.get("controls", 0) == 0, counts
    shape = nb.find_widget("DropdownModel")[0]
    nb.send_widget_update(shape, {"index": 1})
    nb.wait_for(lambda: "shape=square" in nb.text("data"), timeout=30, what="dropdown")
    assert lost_output(nb) == []
