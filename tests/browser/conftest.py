"""Fixtures for real-browser tests: a JupyterLab server, a headless Chromium page, a LabPage.

* ``lab_server`` (session): one ``jupyter lab`` for all browser tests; starting it costs
  ~5 s. Tests keep apart by opening their own notebook paths; ``lab`` deletes the sessions
  (kernels) of the notebooks it opened when its test ends.
* ``browser_page`` (function): a fresh Chromium (own user-data-dir) and one page. Playwright
  is started and stopped per test too: its sync API leaves an event loop marked running on
  this thread while started, which would break pytest-asyncio tests that run later.
* ``lab``: a :class:`LabPage` on ``browser_page`` and ``lab_server``; screenshots go to
  ``artifacts/browser/<test name>/``, and every tab is screenshotted when the test fails.

Chromium missing (``./run tests`` installs it as root): skip with the reason, except under
``CI`` where a silently skipped browser suite would hide a broken setup, so fail.
"""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pytest
from playwright.sync_api import Page, sync_playwright

from tests.browser.lab import (
    ARTIFACTS,
    CHROMIUM_ARGS,
    LabPage,
    LabServer,
    artifacts_dir,
    chromium_path,
    failure_artifacts,
)

VIEWPORT = {"width": 1280, "height": 900}


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    """Keep each phase's report on the item so fixtures can tell, at teardown, that the
    test failed (and take failure screenshots)."""
    rep = yield
    setattr(item, f"rep_{rep.when}", rep)
    return rep


def _failed(request: pytest.FixtureRequest) -> bool:
    return any(
        getattr(getattr(request.node, f"rep_{when}", None), "failed", False)
        for when in ("setup", "call")
    )


@pytest.fixture(scope="session")
def chromium() -> str:
    """Chromium's path; skip (fail under CI) when it is not installed."""
    path = chromium_path()
    if path is None:
        reason = (
            "browser tests need Debian chromium at /usr/bin/chromium "
            "(./run tests installs it when run as root: apt-get install -y chromium)"
        )
        if os.environ.get("CI"):
            pytest.fail(f"CI: {reason}", pytrace=False)
        pytest.skip(reason)
    return path


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt while the server runs, so a terminated test run
    still runs fixture teardown and stops the server instead of orphaning it."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@pytest.fixture(scope="session")
def lab_server() -> Iterator[LabServer]:
    """A JupyterLab 4 server with isolated state; exposes ``base_url``, ``token``,
    ``root_dir``. Stopped by PID at the end of the session, also after failures."""
    with (
        tempfile.TemporaryDirectory(prefix="reactive-lab-") as tmp,
        _sigterm_as_interrupt(),
    ):
        log = ARTIFACTS / "jupyterlab.log"
        log.unlink(missing_ok=True)
        server = LabServer.start(Path(tmp), log_path=log)
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture
def browser_page(chromium: str, request: pytest.FixtureRequest) -> Iterator[Page]:
    """One page of a fresh headless Chromium; on failure every page of its context is
    screenshotted into ``artifacts/browser/<test name>/``."""
    with (
        tempfile.TemporaryDirectory(prefix="reactive-chromium-") as profile,
        sync_playwright() as pw,
    ):
        context = pw.chromium.launch_persistent_context(
            profile,
            executable_path=chromium,
            headless=True,
            args=list(CHROMIUM_ARGS),
            viewport=VIEWPORT,
        )
        try:
            page = context.pages[0] if context.pages else context.new_page()
            yield page
            # ``lab`` closes the context itself after its failure screenshots.
            if _failed(request) and not page.is_closed():
                out = artifacts_dir(request.node.name)
                for n, p in enumerate(context.pages):
                    with contextlib.suppress(Exception):
                        p.screenshot(path=str(out / f"FAILED-tab{n}.png"))
        finally:
            context.close()


@pytest.fixture
def lab(
    chromium: str, browser_page: Page, lab_server: LabServer, request: pytest.FixtureRequest
) -> Iterator[LabPage]:
    """A :class:`LabPage` for this test. At teardown, after a failure, it screenshots every
    tab and writes their consoles (errors, warnings, dialogs); then it closes the browser
    and only then shuts down the kernels of the notebooks it opened (with the page still
    open Lab would react to the dying kernels)."""
    page = LabPage(browser_page, lab_server, artifacts_dir(request.node.name, fresh=True))
    try:
        yield page
    finally:
        if _failed(request):
            failure_artifacts(page.tabs, page.artifacts)
        with contextlib.suppress(Exception):
            browser_page.context.close()
        opened = {p for t in page.tabs for p in t.opened}
        if opened:
            with contextlib.suppress(Exception):
                lab_server.shutdown_sessions(opened)


@pytest.fixture(scope="session")
def reactive_kernelspec() -> None:
    """The "Python 3 (reactive)" kernel, installed into this environment as the demo does
    (``python -m reactive install --sys-prefix``): servers find it under ``sys.prefix``."""
    import sys

    from reactive.integrations.ipykernel import kernelspec

    kernelspec.install(location=kernelspec.Location(prefix=sys.prefix))
