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

import contextlib
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page

from tests.browser.conftest import _sigterm_as_interrupt
from tests.browser.lab import (
    ARTIFACTS,
    POLL_MS,
    START_TIMEOUT,
    LabServer,
    _free_port,
    _tail,
    artifacts_dir,
)

pytestmark = pytest.mark.browser

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "dashboards" / "mercury_app.ipynb"
#: the app's first load starts a kernel and runs every cell (numpy, pandas, matplotlib)
LOAD_TIMEOUT = 120.0
#: one widget change: mercury's chain over the cells below the widget
CHANGE_TIMEOUT = 60.0


@pytest.fixture(scope="module")
def reactive_kernelspec() -> Iterator[None]:
    """The "Python 3 (reactive)" kernel the notebook names, installed into this environment."""
    from reactive.integrations.ipykernel import kernelspec

    kernelspec.install(location=kernelspec.Location(prefix=sys.prefix))
    yield


def start_mercury(workdir: Path, log_path: Path, timeout: float = START_TIMEOUT) -> LabServer:
    """``python -m mercury_app`` serving ``workdir/root`` on 127.0.0.1 with a fresh token.

    The same isolation as the JupyterLab fixture: config, data, runtime, IPython and Lab
    settings dirs are temporary, so nothing from the user's setup takes part.  Returned as
    a :class:`LabServer` (``url``, ``api``, ``stop``), which is what it is underneath.
    """
    dirs = {n: workdir / n for n in ("root", "config", "data", "runtime", "ipython", "settings")}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(24)
    env = {
        **os.environ,
        "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
        "JUPYTER_CONFIG_DIR": str(dirs["config"]),
        "JUPYTER_DATA_DIR": str(dirs["data"]),
        "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]),
        "IPYTHONDIR": str(dirs["ipython"]),
        "JUPYTERLAB_SETTINGS_DIR": str(dirs["settings"]),
        "JUPYTERLAB_WORKSPACES_DIR": str(dirs["settings"]),
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    }
    for var in ("JUPYTER_CONFIG_PATH", "JUPYTER_PATH", "JUPYTER_PREFER_ENV_PATH", "JUPYTER_TOKEN"):
        env.pop(var, None)
    for var in ("MERCURY_TOKEN", "MERCURY_PASSWORD", "MERCURY_KEEP_SESSION", "MERCURY_TIMEOUT"):
        env.pop(var, None)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout
    for _attempt in range(3):
        port = _free_port()
        with log_path.open("ab") as log:
            log.write(f"\n=== mercury on port {port} ===\n".encode())
            log.flush()
            proc = subprocess.Popen(
                [
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
                cwd=dirs["root"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        server = LabServer(proc, f"http://127.0.0.1:{port}/", token, dirs["root"], log_path)
        try:
            if server._wait_ready(deadline):
                return server
        except BaseException:
            server.stop()
            raise
    raise RuntimeError(f"mercury did not start; see {log_path}:\n{_tail(log_path)}")


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


class MercuryApp:
    """One mercury app page: its sidebar widgets and the outputs of its cells."""

    def __init__(self, page: Page, artifacts: Path) -> None:
        self.page = page
        self.artifacts = artifacts
        self.console: list[str] = []
        page.on("console", lambda m: self.console.append(f"[{m.type}] {m.text}"))
        page.on("pageerror", lambda err: self.console.append(f"[pageerror] {err}"))

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

    def wait(self, js: str, timeout: float, what: str, arg: object = None) -> None:
        try:
            self.page.wait_for_function(js, arg=arg, timeout=timeout * 1000, polling=POLL_MS)
        except Exception as exc:
            raise TimeoutError(
                f"timed out after {timeout:.0f}s waiting for {what}; console:\n"
                + "\n".join(self.console[-30:])
            ) from exc

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

    def screenshot(self, name: str) -> Path:
        self.artifacts.mkdir(parents=True, exist_ok=True)
        n = len(list(self.artifacts.glob("*.png")))
        dest = self.artifacts / f"{n:02d}-{name}.png"
        self.page.screenshot(path=str(dest), full_page=True)
        return dest


def test_mercury_app_runs_only_dependent_cells(
    mercury_server: LabServer, browser_page: Page, request: pytest.FixtureRequest
) -> None:
    app = MercuryApp(browser_page, artifacts_dir(request.node.name, fresh=True))
    try:
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
    except BaseException:
        (app.artifacts / "console.log").write_text("\n".join(app.console) + "\n")
        with contextlib.suppress(Exception):
            app.screenshot("FAILED")
        raise
