"""A reactive notebook served by Voila (0.5), in headless Chromium.

Voila runs the notebook once with nbclient (no ``cellId``: the runtime keys cells by
their source), renders the outputs into the page, and then connects the page's widget
manager to the kernel.  The runtime's slots are ``Output`` widgets, so a slider move in
the page must re-run the dependent cells and repaint them there -- text and a matplotlib
image -- while an unrelated cell keeps its output and its run count.

The server is ``python -m voila`` on 127.0.0.1 with a token and isolated Jupyter dirs
(:func:`tests.browser.lab.isolated_env`), stopped by PID with its kernels.  Screenshots go
to ``artifacts/browser/<test>/``; Voila's log to ``artifacts/browser/voila.log``.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page

from tests.browser.conftest import _sigterm_as_interrupt
from tests.browser.lab import (
    ARTIFACTS,
    AppPage,
    LabServer,
    artifacts_dir,
    isolated_env,
    notebook_json,
)

pytestmark = pytest.mark.browser

NOTEBOOK = "dashboard.ipynb"
#: the page is served once the kernel ran every cell (matplotlib's import included)
LOAD_TIMEOUT = 120.0
CHANGE_TIMEOUT = 60.0

CELLS = [
    "import ipywidgets as W\nimport matplotlib.pyplot as plt\n%matplotlib inline\n"
    "runs = {'unrelated': 0, 'double': 0}\n"
    "s = W.IntSlider(value=3, min=0, max=10, description='n')\ns",
    "runs['unrelated'] += 1\nprint(f\"unrelated (run #{runs['unrelated']})\")",
    "runs['double'] += 1\nprint(f\"double {s.value * 2} (run #{runs['double']})\")",
    "fig, ax = plt.subplots(figsize=(3, 2))\nax.bar(range(s.value + 1), range(s.value + 1))\n"
    "ax.set_title(f'bars: {s.value + 1}')",
]


def _answers(server: LabServer) -> None:
    """Any HTTP answer means Voila listens (its API wants a login cookie, not a header)."""
    with contextlib.suppress(urllib.error.HTTPError):
        urllib.request.urlopen(server.url("voila/static/none"), timeout=5).close()


@pytest.fixture(scope="module")
def voila_server(reactive_kernelspec: None) -> Iterator[LabServer]:
    """``voila dashboard.ipynb`` on the "Python 3 (reactive)" kernel; stopped by PID."""
    with (
        tempfile.TemporaryDirectory(prefix="reactive-voila-") as tmp,
        _sigterm_as_interrupt(),
    ):
        names = ("root", "config", "data", "runtime", "ipython", "settings")
        dirs = {n: Path(tmp) / n for n in names}
        for d in dirs.values():
            d.mkdir()
        nb = notebook_json(CELLS, kernel="python3-reactive")
        (dirs["root"] / NOTEBOOK).write_text(json.dumps(nb), encoding="utf-8")
        log = ARTIFACTS / "voila.log"
        log.unlink(missing_ok=True)
        token = secrets.token_hex(24)
        server = LabServer.spawn(
            "voila",
            lambda port: [
                sys.executable,
                "-m",
                "voila",
                NOTEBOOK,
                "--no-browser",
                f"--port={port}",
                "--Voila.ip=127.0.0.1",
                f"--token={token}",
                "--show_tracebacks=True",
            ],
            root=dirs["root"],
            token=token,
            env=isolated_env(dirs),
            log_path=log,
            probe=_answers,
        )
        try:
            yield server
        finally:
            server.stop()


class VoilaPage(AppPage):
    """The dashboard page: its text, the slider and the plot."""

    def wait_text(self, *parts: str, timeout: float = CHANGE_TIMEOUT) -> None:
        self.wait(
            "(parts) => parts.every((p) => document.body.innerText.includes(p))",
            timeout,
            f"the page to show {parts} (it shows {self.text()!r})",
            list(parts),
        )

    def text(self) -> str:
        return str(self.page.evaluate("() => document.body.innerText"))

    def images(self) -> list[str]:
        return [str(s) for s in self.page.eval_on_selector_all("img", "(ns) => ns.map(n => n.src)")]


def test_slider_in_a_voila_page_repaints_text_and_plot_below(
    voila_server: LabServer, browser_page: Page, request: pytest.FixtureRequest
) -> None:
    app = VoilaPage(browser_page, artifacts_dir(request.node.name, fresh=True))
    with app.keep_failure_artifacts():
        browser_page.goto(voila_server.url("", with_token=True))
        app.wait_text("unrelated (run #1)", "double 6 (run #1)", timeout=LOAD_TIMEOUT)
        app.wait("() => document.querySelectorAll('img').length === 1", CHANGE_TIMEOUT, "a plot")
        plot = app.images()
        assert plot[0].startswith("data:image/png")
        app.screenshot("loaded")

        handle = browser_page.locator(".widget-slider .noUi-handle").first
        handle.focus()
        browser_page.keyboard.press("End")  # one input event: the slider's maximum
        app.wait_text("double 20 (run #2)")
        app.wait(
            "(old) => { const i = [...document.querySelectorAll('img')];"
            " return i.length === 1 && i[0].src !== old; }",
            CHANGE_TIMEOUT,
            "a new plot",
            plot[0],
        )
        app.screenshot("slider-moved")
        text = app.text()
        assert "unrelated (run #1)" in text  # not a dependent: not run again
        assert "double 6" not in text and text.count("double ") == 1
        assert len(app.images()) == 1
