"""examples/dashboards/stickyland.ipynb in JupyterLab 3.6 with jupyterlab-stickyland 0.2.4.

stickyland runs only on JupyterLab 3, so this test serves the JupyterLab 3 environment the
tests build (``tests/lab3env.py``: ipykernel 6.29, this checkout, the reactive kernelspec)
and drives it in Chromium like a user: run all, open StickyLand from the notebook toolbar,
drag the cells the notebook's metadata lists into it (stickyland saves no layout of its
own), switch their auto-run on, float the plot, then move the sticky slider with the
keyboard and watch the sticky plot. Auto-run re-sends the sticky cells after every run the
user starts; the run counters each cell prints, and the kernel's own counts, show that
nothing ran twice. Screenshots: ``artifacts/browser/<test>/``.
"""

from __future__ import annotations

import ast
import contextlib
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Locator, Page

from tests import lab3env
from tests.browser.lab import (
    ARTIFACTS,
    OUTPUT_TIMEOUT,
    POLL_MS,
    LabPage,
    LabServer,
    artifacts_dir,
    failure_artifacts,
)

pytestmark = pytest.mark.browser

NOTEBOOK = Path(__file__).resolve().parents[2] / "examples" / "dashboards" / "stickyland.ipynb"
#: the active StickyLand tab's content (the others are ``no-display``)
ACTIVE = ".sticky-container .sticky-content:not(.no-display)"

# Records the execute requests the page sends on the notebook's kernel and whether their
# replies came, so a test can wait for auto-run's requests to be answered.
_RECORDER = r"""([path]) => {
  const kernel = __labtest.panel(path).sessionContext.session.kernel;
  if (window.__stickyRequests) return true;
  const sent = window.__stickyRequests = [];
  kernel.anyMessage.connect((_, {msg, direction}) => {
    const type = msg.header.msg_type;
    if (direction === 'send' && type === 'execute_request' && !msg.content.silent) {
      sent.push({id: msg.header.msg_id, cell: (msg.metadata || {}).cellId, done: false});
    } else if (direction === 'recv' && type === 'execute_reply') {
      const r = sent.find((s) => s.id === msg.parent_header.msg_id);
      if (r) r.done = true;
    }
  });
  return true;
}"""


@pytest.fixture(scope="module")
def lab3_server() -> Iterator[LabServer]:
    """JupyterLab 3.6 + stickyland from the lab3 env; stopped by PID at module end."""
    python = str(lab3env.require())
    with tempfile.TemporaryDirectory(prefix="reactive-lab3-") as tmp:
        log = ARTIFACTS / "jupyterlab3.log"
        log.unlink(missing_ok=True)
        server = LabServer.start(Path(tmp), log_path=log, python=python)
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture
def lab3(
    browser_page: Page, lab3_server: LabServer, request: pytest.FixtureRequest
) -> Iterator[LabPage]:
    """A :class:`LabPage` on JupyterLab 3 (the ``lab`` fixture's teardown, same rules)."""
    page = LabPage(browser_page, lab3_server, artifacts_dir(request.node.name, fresh=True))
    try:
        yield page
    finally:
        failed = any(
            getattr(getattr(request.node, f"rep_{w}", None), "failed", False)
            for w in ("setup", "call")
        )
        if failed:
            failure_artifacts(page.tabs, page.artifacts)
        with contextlib.suppress(Exception):
            browser_page.context.close()
        if page.opened:
            with contextlib.suppress(Exception):
                lab3_server.shutdown_sessions(page.opened)


# -- StickyLand, as a user builds it -------------------------------------------------------


def drag(lab: LabPage, source: Locator, target: Locator) -> None:
    """A mouse drag from ``source`` to ``target`` in small steps (a lumino drag starts
    past a few pixels and needs moves over the target for its drag-enter/over events)."""
    source.scroll_into_view_if_needed()
    a, b = source.bounding_box(), target.bounding_box()
    assert a is not None and b is not None
    x0, y0 = a["x"] + a["width"] / 2, a["y"] + a["height"] / 2
    x1, y1 = b["x"] + b["width"] / 2, b["y"] + b["height"] / 2
    lab.page.mouse.move(x0, y0)
    lab.page.mouse.down()
    for i in range(1, 13):
        lab.page.mouse.move(x0 + (x1 - x0) * i / 12, y0 + (y1 - y0) * i / 12)
    lab.page.mouse.up()


def build_dashboard(lab: LabPage, nb: dict[str, Any]) -> None:
    """Make the cells ``metadata.reactive.stickyland`` lists sticky, as a user would."""
    layout = nb["metadata"]["reactive"]["stickyland"]["cells"]
    ids = [c["id"] for c in nb["cells"]]
    page = lab.page
    page.locator(".jp-NotebookPanel-toolbar .sticky-button").first.click()
    page.locator(f"{ACTIVE} .dropzone").wait_for(state="visible")
    floating = 0
    for n, entry in enumerate(layout):
        if n:
            page.locator(".sticky-container .add-tab").click()
        drag(
            lab,
            lab.cell(ids.index(entry["cell"])).locator(".jp-InputPrompt"),
            page.locator(f"{ACTIVE} .dropzone"),
        )
        page.locator(f"{ACTIVE} .sticky-code").wait_for(state="visible")
        if entry.get("auto_run"):
            switch = page.locator(f"{ACTIVE} .jp-switch")
            switch.click()
            page.wait_for_function(
                "(s) => s.getAttribute('aria-checked') === 'true'",
                arg=switch.element_handle(),
                polling=POLL_MS,
            )
        if entry.get("float"):
            page.locator(f"{ACTIVE} .button-launch").click()
            floating += 1
            page.locator(".floating-window:not(.hidden)").nth(floating - 1).wait_for()
    docked = next(n for n, e in enumerate(layout) if not e.get("float"))
    page.locator(".sticky-container .sticky-tab-bar .tab").nth(docked).click()


def sticky_text(lab: LabPage, where: str) -> str:
    """What a sticky cell's output area shows (``where``: a CSS scope)."""
    return str(lab.page.locator(f"{where} .sticky-code-output").first.inner_text())


def wait_sticky(lab: LabPage, where: str, expect: str, timeout: float = OUTPUT_TIMEOUT) -> str:
    lab.page.wait_for_function(
        "([w, s]) => { const n = document.querySelector(w + ' .sticky-code-output');"
        " return !!n && n.innerText.includes(s); }",
        arg=[where, expect],
        timeout=timeout * 1000,
        polling=POLL_MS,
    )
    return sticky_text(lab, where)


def sticky_image(lab: LabPage, where: str) -> str | None:
    img = lab.page.locator(f"{where} .sticky-code-output img").first
    return img.get_attribute("src") if img.count() else None


def kernel_value(lab: LabPage, expr: str) -> Any:
    """Evaluate ``expr`` in the kernel as a silent request (an inspector's request)."""
    js = """async ([p, e]) => {
      const k = __labtest.panel(p).sessionContext.session.kernel;
      const reply = await k.requestExecute({code: '', silent: true, store_history: false,
        user_expressions: {v: e}, allow_stdin: false, stop_on_error: false}).done;
      const v = reply.content.user_expressions.v;
      if (v.status !== 'ok') throw new Error(`${v.ename}: ${v.evalue}`);
      return v.data['text/plain'];
    }"""
    return ast.literal_eval(lab.page.evaluate(js, [lab.path, expr]))


RUNTIME = "__import__('reactive.integrations.ipykernel.runtime', fromlist=['R']).Runtime.current"


def run_counts(lab: LabPage) -> dict[str, int]:
    """How often each cell ran in the kernel (user and reactive runs)."""
    expr = (
        f"__import__('json').dumps({{c.id: c.run_count for c in {RUNTIME}.graph.cells.values()}})"
    )
    return json.loads(kernel_value(lab, expr))


def sticky_stats(lab: LabPage) -> dict[str, dict[str, int]]:
    """Sticky requests the kernel answered without running them, and ran."""
    mod = "__import__('reactive.integrations.stickyland', fromlist=['stats'])"
    return json.loads(kernel_value(lab, f"__import__('json').dumps({mod}.stats({RUNTIME}))"))


def wait_auto_run(lab: LabPage, since: int, cells: set[str]) -> None:
    """Wait until auto-run's requests for ``cells`` (sent after request ``since``) are
    answered and the kernel is idle."""
    lab.page.wait_for_function(
        "([since, cells]) => { const r = window.__stickyRequests.slice(since);"
        " return cells.every((c) => r.some((x) => x.cell === c && x.done)); }",
        arg=[since, sorted(cells)],
        timeout=OUTPUT_TIMEOUT * 1000,
        polling=POLL_MS,
    )
    lab.wait_kernel_idle()


def sent(lab: LabPage) -> int:
    return int(lab.page.evaluate("() => window.__stickyRequests.length"))


def test_sticky_slider_drives_the_sticky_plot_and_auto_run_repeats_nothing(
    lab3: LabPage,
) -> None:
    lab = lab3
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    idx = {c["id"]: n for n, c in enumerate(nb["cells"])}
    lab.open_notebook("stickyland.ipynb", nb)
    assert lab.page.evaluate("() => jupyterapp.version").startswith("3.")
    lab.run_all()
    lab.wait_for_output(idx["plot"], "plot: frequency 3 (run #1)")
    lab.screenshot("ran-all")

    build_dashboard(lab, nb)
    layout = {e["cell"]: e for e in nb["metadata"]["reactive"]["stickyland"]["cells"]}
    assert not layout["controls"]["float"] and layout["plot"]["float"]
    docked, floating = ACTIVE, ".floating-window:not(.hidden)"
    assert "controls: run #1" in sticky_text(lab, docked)
    assert "plot: frequency 3 (run #1)" in sticky_text(lab, floating)
    first = sticky_image(lab, floating)
    assert first and first.startswith("data:image/png")
    lab.screenshot("dashboard")
    lab.page.evaluate(_RECORDER, [lab.path])

    # the sticky slider, moved like a user: the sticky plot follows
    handle = lab.page.locator(f"{docked} .widget-slider .noUi-handle").first
    handle.focus()
    lab.press("ArrowRight")  # one step: one update, so each dependent runs exactly once
    wait_sticky(lab, floating, "plot: frequency 4 (run #2)")
    lab.page.wait_for_function(
        "([w, old]) => { const i = document.querySelector(w + ' .sticky-code-output img');"
        " return !!i && i.getAttribute('src') !== old; }",
        arg=[floating, first],
        polling=POLL_MS,
    )
    assert "frequency 4" in lab.cell_output_text(idx["data"])
    lab.screenshot("slider-moved")

    # the user runs an unrelated cell: auto-run sends both sticky cells again, and the
    # kernel answers them without running (their inputs did not change)
    mark = sent(lab)
    lab.run_cell(idx["unrelated"])
    wait_auto_run(lab, mark, {"controls", "plot"})
    counts = run_counts(lab)
    assert counts == {"setup": 1, "controls": 1, "data": 2, "unrelated": 2, "plot": 2}, counts
    stats = sticky_stats(lab)
    assert stats["replayed"] == {"controls": 1, "plot": 1} and stats["ran"] == {}, stats
    assert "controls: run #1" in sticky_text(lab, docked)
    assert "frequency" in sticky_text(lab, docked), "the sticky slider is still shown"
    assert "plot: frequency 4 (run #2)" in sticky_text(lab, floating)
    lab.screenshot("auto-run-after-unrelated")

    # the user edits the data cell and runs it: the plot reads what changed and runs
    # exactly once, whether the reactive re-run or auto-run's request gets there first
    source = lab.cell_source(idx["data"])
    assert "np.exp(-x / 4)" in source
    lab.edit_cell(idx["data"], source.replace("np.exp(-x / 4)", "np.exp(-x / 2)"))
    mark = sent(lab)
    lab.run_cell(idx["data"])
    wait_auto_run(lab, mark, {"controls", "plot"})
    wait_sticky(lab, floating, "plot: frequency 4 (run #3)")
    counts = run_counts(lab)
    assert counts["plot"] == 3 and counts["controls"] == 1 and counts["unrelated"] == 2, counts
    assert lab.cell_output_text(idx["unrelated"]).count("(run #2)") == 1

    # and the slider still drives the plot afterwards
    handle.focus()
    lab.press("ArrowRight")
    wait_sticky(lab, floating, "plot: frequency 5 (run #4)")
    assert run_counts(lab)["controls"] == 1
    lab.screenshot("after-auto-runs")


def test_rerunning_a_cell_that_shows_an_existing_widget_keeps_it_on_lab3(lab3: LabPage) -> None:
    """JupyterLab 3's widget manager draws a re-displayed slot without the widgets nested
    in unchanged outputs; the runtime sets them anew so the slider stays on screen."""
    lab = lab3
    cells = ["import ipywidgets as W\ns = W.IntSlider(value=4)", "print('the slider')\ndisplay(s)"]
    lab.open_notebook("redisplay.ipynb", cells, kernel="python3-reactive")
    lab.run_all()
    lab.wait_for_output(1, "the slider")
    lab.cell(1).locator(".widget-slider").wait_for(state="visible")
    lab.run_cell(1)
    lab.wait_for_output(1, "the slider")
    lab.cell(1).locator(".widget-slider").wait_for(state="visible")
    assert lab.cell(1).locator(".widget-slider").count() == 1
    lab.screenshot("re-run")
