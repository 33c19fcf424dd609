"""examples/dashboards/mercury_app.ipynb served by mercury's own app server, in headless Chromium.

mercury (HOSTS.md "mercury 3.2.13") runs the notebook as a web app: widgets in a sidebar,
cell outputs in the page, and after every widget change its page re-sends every cell
below the widget.  With the "Python 3 (reactive)" kernel a move must still run only the
dependent cells, once each (each cell prints its run number), and the page must show
their new outputs; the unrelated cell keeps its output and its run number.

The server is ``python -m mercury_app`` on 127.0.0.1 with a token and isolated Jupyter
dirs, started and stopped (by PID, kernels included) by the ``mercury_server`` fixture.
Screenshots go to ``artifacts/browser/<test>/``; mercury's log to
``artifacts/browser/mercury.log``.
"""

from __future__ import annotations

import secrets
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page

from tests.browser.conftest import _sigterm_as_interrupt
from tests.browser.lab import (
    ARTIFACTS,
    START_TIMEOUT,
    AppPage,
    LabServer,
    artifacts_dir,
    isolated_env,
)

pytestmark = pytest.mark.browser

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "dashboards" / "mercury_app.ipynb"
#: the app's first load starts a kernel and runs every cell (numpy, pandas, matplotlib)
LOAD_TIMEOUT = 120.0
#: one widget change: mercury's chain over the cells below the widget
CHANGE_TIMEOUT = 60.0


def start_mercury(workdir: Path, log_path: Path, timeout: float = START_TIMEOUT) -> LabServer:
    """``python -m mercury_app`` serving ``workdir/root`` on 127.0.0.1 with a fresh token.

    The same isolation as the JupyterLab fixture (:func:`isolated_env`).  Returned as a
    :class:`LabServer` (``url``, ``api``, ``stop``), which is what it is underneath.
    """
    dirs = {n: workdir / n for n in ("root", "config", "data", "runtime", "ipython", "settings")}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(24)
    env = isolated_env(dirs)
    for var in ("MERCURY_TOKEN", "MERCURY_PASSWORD", "MERCURY_KEEP_SESSION", "MERCURY_TIMEOUT"):
        env.pop(var, None)
    return LabServer.spawn(
        "mercury",
        lambda port: [
            sys.executable,
            "-m",
            "mercury_app",
            "--ip=127.0.0.1",
            f"--port={port}",
            "--ServerApp.port_retries=0",
            "--no-browser",
            "--allow-root",
            f"--token={token}",
            f"--working-dir={dirs['root']}",
            "--log-level=INFO",
        ],
        root=dirs["root"],
        token=token,
        env=env,
        log_path=log_path,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def mercury_server(reactive_kernelspec: None) -> Iterator[LabServer]:
    """mercury's app server with ``mercury_app.ipynb`` in its folder; stopped by PID."""
    with (
        tempfile.TemporaryDirectory(prefix="reactive-mercury-") as tmp,
        _sigterm_as_interrupt(),
    ):
        log = ARTIFACTS / "mercury.log"
        log.unlink(missing_ok=True)
        server = start_mercury(Path(tmp), log)
        shutil.copy(EXAMPLE, server.root_dir / EXAMPLE.name)
        try:
            yield server
        finally:
            server.stop()


class MercuryApp(AppPage):
    """One mercury app page: its sidebar widgets and the outputs of its cells."""

    def open(self, server: LabServer, notebook: str) -> None:
        self.page.goto(server.url(f"mercury/{notebook}", with_token=True))
        # mercury marks each output area with its cell's id; the plot is the last cell
        self.wait(
            """() => {
                const q = (sel) => document.querySelectorAll(sel);
                const img = q('.jp-Cell-outputArea[data-cell-id="plot"] img');
                const sliders = q('.mercury-left-panel .mljar-slider-input');
                return img.length === 1 && sliders.length === 2;
            }""",
            LOAD_TIMEOUT,
            "the app to load: every cell run, sliders in the sidebar",
        )

    def text(self, cell_id: str) -> str:
        """What the page shows as ``cell_id``'s output."""
        node = self.page.locator(f'.jp-Cell-outputArea[data-cell-id="{cell_id}"]')
        return node.inner_text().strip() if node.count() else ""

    def image(self, cell_id: str) -> str | None:
        img = self.page.locator(f'.jp-Cell-outputArea[data-cell-id="{cell_id}"] img')
        return img.first.get_attribute("src") if img.count() else None

    def move_slider(self, nth: int, key: str) -> None:
        """Focus the ``nth`` sidebar slider and press ``key`` on it, as a user would."""
        handle = self.page.locator(".mercury-left-panel .mljar-slider-input").nth(nth)
        handle.focus()
        self.page.keyboard.press(key)

    def wait_change(self, shows: dict[str, str], old_plot: str | None) -> None:
        """Wait until mercury's re-run chain has reached the plot, the last cell.

        mercury asks for the cells below the widget in order, one at a time, and shows
        each as its request's answer says: once the plot shows a new image, every cell
        above it shows its answer too.  (mercury's own busy flag is no end signal: it
        drops in the middle of a chain, with a plain kernel as well.)
        """
        self.wait(
            """([shows, old]) => {
                const out = (cid) => document.querySelector(
                    `.jp-Cell-outputArea[data-cell-id="${cid}"]`);
                const img = document.querySelector(
                    '.jp-Cell-outputArea[data-cell-id="plot"] img');
                return !!img && img.getAttribute('src') !== old && Object.entries(shows).every(
                    ([cid, text]) => !!out(cid) && out(cid).innerText.includes(text));
            }""",
            CHANGE_TIMEOUT,
            f"mercury's re-run chain to show {shows} and a new plot",
            [shows, old_plot],
        )


def test_mercury_app_runs_only_dependent_cells(
    mercury_server: LabServer, browser_page: Page, request: pytest.FixtureRequest
) -> None:
    app = MercuryApp(browser_page, artifacts_dir(request.node.name, fresh=True))
    with app.keep_failure_artifacts():
        app.open(mercury_server, EXAMPLE.name)
        app.screenshot("loaded")
        unrelated = app.text("unrelated")
        assert unrelated.startswith("unrelated: Python") and unrelated.endswith("(run #1)")
        assert app.text("data") == "data: 200 points, sine, noise 30% (run #1)"
        assert app.text("summary").endswith("(run #1)")
        plot = app.image("plot")
        assert plot is not None and plot.startswith("data:image/png")

        # Points: End moves it to its maximum in one input event (one update)
        app.move_slider(0, "End")
        app.wait_change({"data": "1000 points", "summary": "(run #2)"}, plot)
        app.screenshot("points-moved")
        assert app.text("data") == "data: 1000 points, sine, noise 30% (run #2)"
        moved = app.image("plot")
        assert app.text("unrelated") == unrelated  # same output, still run #1

        # Noise: the same from a widget further down; the run numbers also show that no
        # dependent ran again, unseen, after the first chain
        app.move_slider(1, "Home")
        app.wait_change({"data": "noise 0%", "summary": "(run #3)"}, moved)
        app.screenshot("noise-moved")
        assert app.text("data") == "data: 1000 points, sine, noise 0% (run #3)"
        assert app.image("plot") != plot
        assert app.text("unrelated") == unrelated
