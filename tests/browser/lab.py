"""A real JupyterLab 4 server and a Playwright-driven page on it, for browser tests.

Browser tests must show what a user sees, so they run the real frontend (JupyterLab from
the venv, Debian's Chromium) and act like a user where it matters (keyboard on a slider
handle). Everything else goes through ``window.jupyterapp`` (``expose_app_in_browser``)
because clicking menus is slow and flaky on a 2-core machine. See HOSTS.md "Real-browser
tests" for the facts this relies on.

Rules the helpers keep:

* Every wait is an awaited condition (HTTP answers, ``page.wait_for_function`` on DOM or
  app state) with a timeout that raises ``TimeoutError`` naming what it waited for; there
  is no fixed sleep. Timeouts are generous: Lab, Chromium and a kernel share two cores.
* The server is isolated from the user's Jupyter setup (config, runtime, data, settings,
  workspaces, IPython dirs are temporary) but still sees the venv's kernelspecs and lab
  extensions, which live under ``sys.prefix`` and are found through it, not through the
  user dirs.
* The server is stopped by its PID (SIGTERM, then SIGKILL), and kernels it leaves behind
  are killed by PID too: nothing outlives the test session.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import psutil
from playwright.sync_api import ConsoleMessage, Dialog, Locator, Page
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

#: Where Debian's ``chromium`` package puts the browser (``./run tests`` installs it).
CHROMIUM = "/usr/bin/chromium"
#: Flags from HOSTS.md: headless without sandbox (root), no GPU, and no traffic of its own.
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
#: Seconds for Lab to answer and for the first notebook (kernel start included) to be ready.
START_TIMEOUT = 60.0
#: Seconds for an output to appear or a kernel to become idle after an action.
OUTPUT_TIMEOUT = 20.0
#: Seconds the server gets to shut its kernels down after SIGTERM before SIGKILL.
STOP_TIMEOUT = 20.0
#: How often (ms) ``wait_for_function`` re-evaluates a condition; ``innerText`` forces a
#: layout, and per-frame polling would compete with Lab and the kernel for the two cores.
POLL_MS = 100

#: The artifacts root: ``<repo>/artifacts/browser`` (``artifacts/`` is gitignored).
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "browser"

#: JupyterLab user settings for the tests. News/update checks would pop up toasts over the
#: notebook and make requests to the internet. Windowing is off so every cell is rendered
#: whatever the viewport: with Lab 4.6's default ("contentVisibility") an off-screen cell's
#: output has an empty ``innerText`` (seen after run-all scrolled a 40-cell notebook).
LAB_SETTINGS: dict[str, dict[str, Any]] = {
    "@jupyterlab/apputils-extension/notification": {
        "checkForUpdates": False,
        "fetchNews": "false",
    },
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
}
#: Frontend plugins switched off (``labconfig/page_config.json``); the announcements plugin
#: asks "receive official Jupyter news?" on first start.
DISABLED_PLUGINS = ("@jupyterlab/apputils-extension:announcements",)

# Helpers installed in every page (and re-installed on reload) as ``window.__labtest``.
# Notebooks are found by path, not "current widget", so several notebooks or tabs never
# mix up. Wait predicates must not throw (a throw would end ``wait_for_function`` early
# while Lab is still loading), so they go through ``safe``.
_PAGE_HELPERS = r"""
window.__labtest = (() => {
  const pending = new Set();
  const app = () => window.jupyterapp;
  const safe = (fn) => (...args) => { try { return fn(...args); } catch (e) { return null; } };
  function mainWidgets(a) {
    const it = a.shell.widgets('main');
    if (typeof it[Symbol.iterator] === 'function') return Array.from(it);
    const out = [];  // JupyterLab 3 (lumino 1): next() returns the widget, then undefined
    for (let w = it.next(); w !== undefined; w = it.next()) out.push(w);
    return out;
  }
  function panel(path) {
    const a = app();
    if (!a || !a.shell) return null;
    for (const w of mainWidgets(a)) {
      if (w.context && w.context.path === path && w.content && w.sessionContext) return w;
    }
    return null;
  }
  function running(c) {
    if (c.model.type !== 'code') return false;
    if (c.model.executionState !== undefined) return c.model.executionState === 'running';
    return !!c.promptNode && c.promptNode.textContent.trim() === '[*]:';  // JupyterLab 3
  }
  function mustPanel(path) {
    const p = panel(path);
    if (!p) throw new Error(`no notebook panel open for ${path}`);
    return p;
  }
  function cell(path, index) {
    const p = mustPanel(path);
    const c = p.content.widgets[index];
    if (!c) throw new Error(`${path} has no cell ${index} (${p.content.widgets.length} cells)`);
    return c;
  }
  function kernel(p) {
    const s = p.sessionContext.session;
    return s ? s.kernel : null;
  }
  function ready(path) {
    const p = panel(path);
    if (!p || !p.context.isReady || !p.sessionContext.isReady) return null;
    const k = kernel(p);
    if (!k || k.status !== 'idle' || k.connectionStatus !== 'connected') return null;
    if (p.content.widgets.length !== p.content.model.cells.length) return null;
    return p.id;
  }
  function idle(path) {
    const p = panel(path);
    if (!p || pending.size) return false;
    const k = kernel(p);
    if (!k || k.status !== 'idle') return false;
    return !p.content.widgets.some(running);
  }
  function outputText(path, index) {
    const c = cell(path, index);
    if (c.model.type !== 'code') return '';
    const sel = ':scope > .jp-OutputArea-child > .jp-OutputArea-output';
    return Array.from(c.outputArea.node.querySelectorAll(sel), (n) => n.innerText).join('\n');
  }
  function outputImages(path, index) {
    const c = cell(path, index);
    if (c.model.type !== 'code') return [];
    return Array.from(c.outputArea.node.querySelectorAll('img'), (n) => n.getAttribute('src'));
  }
  function source(path, index) { return cell(path, index).model.sharedModel.getSource(); }
  function setSource(path, index, text) { cell(path, index).model.sharedModel.setSource(text); }
  function activate(p) {
    // Commands act on the *current* widget, which follows focus and so changes only
    // after activateById's focus event: wait for it, then one task more so every focus
    // tracker (the notebook tracker's too) has seen the same event.
    const shell = app().shell;
    const settle = () => new Promise((r) => setTimeout(r, 0));
    if (shell.currentWidget === p) return settle();
    return new Promise((resolve, reject) => {
      const on = () => {
        if (shell.currentWidget !== p) return;
        clearTimeout(timer);
        shell.currentChanged.disconnect(on);
        resolve(settle());
      };
      const timer = setTimeout(() => {
        shell.currentChanged.disconnect(on);
        reject(new Error(`could not make ${p.context.path} the current widget`));
      }, 10000);
      shell.currentChanged.connect(on);
      shell.activateById(p.id);
    });
  }
  function execute(path, command, index) {
    const run = (async () => {
      const p = mustPanel(path);
      if (index !== null && index !== undefined) cell(path, index);
      await activate(p);
      if (index !== null && index !== undefined) {
        p.content.mode = 'command';
        p.content.deselectAll();
        p.content.activeCellIndex = index;
      }
      await app().commands.execute(command);
      return true;
    })();
    pending.add(run);
    const done = () => { pending.delete(run); };
    run.then(done, done);
    return run;
  }
  function open(path) {
    return app().commands.execute('docmanager:open', {path, factory: 'Notebook'})
      .then(() => true);
  }
  function clean(path) {
    const p = panel(path);
    return !!p && !p.context.model.dirty;
  }
  return {
    panel, ready: safe(ready), idle: safe(idle), clean: safe(clean),
    outputText, outputImages, source, setSource, execute, open,
    outputTextOrNull: safe(outputText),
  };
})();
"""


def chromium_path() -> str | None:
    """Return Chromium's path when it is installed, else ``None`` (callers skip or fail)."""
    return CHROMIUM if os.access(CHROMIUM, os.X_OK) else None


def _free_port() -> int:
    """A port free right now; the server is started with no retries, so a lost race is
    seen as an early exit and retried with another port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")


def notebook_json(
    cells: Sequence[str | Mapping[str, Any]], kernel: str = "python3"
) -> dict[str, Any]:
    """Build an nbformat 4.5 notebook whose metadata picks ``kernel`` by kernelspec name.

    A ``str`` is a code cell's source; a mapping is taken as a cell (``cell_type``,
    ``source``, optional ``metadata``). Lab chooses the kernel from
    ``metadata.kernelspec.name`` without asking when that kernelspec exists
    (:meth:`LabServer.write_notebook` fills in the server's display name).
    """
    out = []
    for c in cells:
        spec = {"cell_type": "code", "source": c} if isinstance(c, str) else dict(c)
        cell: dict[str, Any] = {
            "cell_type": spec.get("cell_type", "code"),
            "id": spec.get("id", uuid.uuid4().hex[:12]),
            "metadata": dict(spec.get("metadata", {})),
            "source": spec["source"],
        }
        if cell["cell_type"] == "code":
            cell["execution_count"] = None
            cell["outputs"] = []
        out.append(cell)
    return {
        "cells": out,
        "metadata": {
            "kernelspec": {"name": kernel, "display_name": kernel, "language": "python"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


class LabServer:
    """A ``jupyter lab`` process started for tests; stop it with :meth:`stop`.

    ``base_url`` ends with ``/``; every request needs ``token`` (HTTP header
    ``Authorization: token ...`` or ``?token=`` once, after which the browser has a cookie).
    Notebooks live under ``root_dir``.
    """

    def __init__(
        self, proc: subprocess.Popen[bytes], base_url: str, token: str, root_dir: Path, log: Path
    ) -> None:
        self.proc = proc
        self.pid = proc.pid
        self.base_url = base_url
        self.token = token
        self.root_dir = root_dir
        self.log_path = log

    @classmethod
    def start(
        cls,
        workdir: Path,
        log_path: Path | None = None,
        timeout: float = START_TIMEOUT,
        python: str | None = None,
    ) -> LabServer:
        """Start Lab with all its state under ``workdir`` and wait until it answers.

        Readiness is the first successful authenticated ``GET /api/status``: the server is
        listening and its handlers are up. ``python`` is the interpreter whose JupyterLab
        (and kernelspecs, lab extensions) to serve; this one by default.
        """
        python = python or sys.executable
        workdir.mkdir(parents=True, exist_ok=True)
        dirs = {
            name: workdir / name
            for name in ("root", "config", "data", "runtime", "ipython", "settings", "workspaces")
        }
        for d in dirs.values():
            d.mkdir(exist_ok=True)
        _write_json(
            dirs["config"] / "jupyter_server_config.json",
            {
                "LabApp": {
                    "news_url": None,
                    "check_for_updates_class": "jupyterlab.NeverCheckForUpdate",
                    "user_settings_dir": str(dirs["settings"]),
                    "workspaces_dir": str(dirs["workspaces"]),
                },
            },
        )
        _write_json(
            dirs["config"] / "labconfig" / "page_config.json",
            {"disabledExtensions": dict.fromkeys(DISABLED_PLUGINS, True)},
        )
        for plugin, values in LAB_SETTINGS.items():
            _write_json(dirs["settings"] / f"{plugin}.jupyterlab-settings", values)

        token = secrets.token_hex(24)
        env = isolated_env(dirs, python)
        env["JUPYTER_TOKEN"] = token
        return cls.spawn(
            "jupyter lab",
            lambda port: [
                python,
                "-m",
                "jupyterlab",
                "--no-browser",
                "--allow-root",
                "--ip=127.0.0.1",
                f"--port={port}",
                "--ServerApp.port_retries=0",
                f"--ServerApp.root_dir={dirs['root']}",
                "--LabApp.expose_app_in_browser=True",
            ],
            root=dirs["root"],
            token=token,
            env=env,
            log_path=log_path or workdir / "jupyterlab.log",
            timeout=timeout,
        )

    @classmethod
    def spawn(
        cls,
        what: str,
        argv: Callable[[int], list[str]],
        *,
        root: Path,
        token: str,
        env: Mapping[str, str],
        log_path: Path,
        timeout: float = START_TIMEOUT,
        probe: Callable[[LabServer], object] | None = None,
    ) -> LabServer:
        """Start the Jupyter server app ``argv(port)`` on a free port; wait until it answers.

        ``probe`` (default: an authenticated ``GET /api/status``) raises ``URLError``,
        ``ConnectionError`` or ``TimeoutError`` until the server is up.  A process that
        exits early most likely lost its port between probe and bind: it is retried.
        """
        log_path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + timeout
        for _attempt in range(3):
            port = _free_port()
            with log_path.open("ab") as log:
                log.write(f"\n=== {what} on port {port} ===\n".encode())
                log.flush()
                proc = subprocess.Popen(
                    argv(port),
                    cwd=root,
                    env=dict(env),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            server = cls(proc, f"http://127.0.0.1:{port}/", token, root, log_path)
            try:
                if server._wait_ready(deadline, probe):
                    return server
            except BaseException:
                server.stop()
                raise
        raise RuntimeError(f"{what} did not start; see {log_path}:\n{_tail(log_path)}")

    def _wait_ready(
        self, deadline: float, probe: Callable[[LabServer], object] | None = None
    ) -> bool:
        """True once ``probe`` (``/api/status``) answers; False if the process exited; raise
        on timeout."""
        while True:
            if self.proc.poll() is not None:
                return False
            try:
                if probe is None:
                    self.api("GET", "api/status", timeout=5)
                else:
                    probe(self)
                return True
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(
                    f"the server did not answer in time; log:\n{_tail(self.log_path)}"
                )
            # Not a sleep to wait *for* something: the server is not listening yet and there
            # is nothing to block on; wait for the process instead, which also notices exit.
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(0.1)

    def url(self, path: str = "", *, with_token: bool = False) -> str:
        """An absolute URL under the server; ``with_token`` appends ``?token=``."""
        url = self.base_url + path.lstrip("/")
        if with_token:
            url += ("&" if "?" in url else "?") + "token=" + self.token
        return url

    def api(self, method: str, path: str, body: Any = None, timeout: float = 10) -> Any:
        """Call the REST API with the token; return the decoded JSON (``None`` if empty)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url(path), data=data, method=method)
        req.add_header("Authorization", f"token {self.token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else None

    def write_notebook(
        self,
        path: str,
        notebook: Sequence[str | Mapping[str, Any]] | Mapping[str, Any] | Path,
        kernel: str = "python3",
    ) -> Path:
        """Put a notebook at ``root_dir/path``: a list of cells, a notebook dict, or a file.

        A dict or file without ``metadata.kernelspec`` gets ``kernel``'s, so Lab never shows
        its kernel-picker dialog.
        """
        dest = self.root_dir / path
        dest.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(notebook, Path):
            nb = json.loads(notebook.read_text(encoding="utf-8"))
        elif isinstance(notebook, Mapping):
            nb = json.loads(json.dumps(notebook))
        else:
            nb = notebook_json(notebook, kernel)
        meta = nb.setdefault("metadata", {})
        meta["kernelspec"] = self.kernelspec(meta.get("kernelspec", {}).get("name", kernel))
        _write_json(dest, nb)
        return dest

    def kernelspec(self, name: str) -> dict[str, str]:
        """The notebook ``kernelspec`` metadata for kernel ``name`` as the server knows it.

        The display name must match the server's: otherwise Lab rewrites the metadata on
        open and the notebook starts out dirty. An unknown name fails here, not in a
        kernel-picker dialog the test cannot see.
        """
        specs = self.api("GET", "api/kernelspecs")["kernelspecs"]
        if name not in specs:
            raise LookupError(f"no kernelspec {name!r} on the server; it has {sorted(specs)}")
        spec = specs[name]["spec"]
        return {"name": name, "display_name": spec["display_name"], "language": spec["language"]}

    def shutdown_sessions(self, paths: Iterable[str] | None = None) -> None:
        """Delete the sessions (and so the kernels) of ``paths``, or of every notebook.

        Tests share one server; a finished test's kernels would otherwise keep competing
        for the two cores.
        """
        wanted = None if paths is None else set(paths)
        for s in self.api("GET", "api/sessions"):
            if wanted is None or s.get("path") in wanted:
                with contextlib.suppress(urllib.error.HTTPError):
                    self.api("DELETE", f"api/sessions/{s['id']}", timeout=30)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM the server (it shuts its kernels down), SIGKILL after ``timeout``, then
        kill by PID any of its descendants still alive (kernels run in their own sessions,
        so they are not in the server's process group)."""
        if self.proc.poll() is not None:
            return
        try:
            kids = psutil.Process(self.pid).children(recursive=True)
        except psutil.Error:
            kids = []
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            self.proc.wait()
        for k in kids:
            with contextlib.suppress(psutil.Error):
                k.terminate()
        _gone, alive = psutil.wait_procs(kids, timeout=5)
        for k in alive:
            with contextlib.suppress(psutil.Error):
                k.kill()


def isolated_env(dirs: Mapping[str, Path], python: str | None = None) -> dict[str, str]:
    """This environment for a Jupyter server whose config, data, runtime, IPython and Lab
    settings dirs are ``dirs``' temporary ones (``python``'s bin dir first on ``PATH``), so
    nothing from the user's own setup takes part."""
    bindir = str(Path(python or sys.executable).parent)
    env = {
        **os.environ,
        "PATH": bindir + os.pathsep + os.environ.get("PATH", ""),
        "JUPYTER_CONFIG_DIR": str(dirs["config"]),
        "JUPYTER_DATA_DIR": str(dirs["data"]),
        "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]),
        "IPYTHONDIR": str(dirs["ipython"]),
        "JUPYTERLAB_SETTINGS_DIR": str(dirs["settings"]),
        "JUPYTERLAB_WORKSPACES_DIR": str(dirs.get("workspaces", dirs["settings"])),
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    }
    # Another config dir or data dir on the path would bring the user's setup back.
    for var in ("JUPYTER_CONFIG_PATH", "JUPYTER_PATH", "JUPYTER_PREFER_ENV_PATH", "JUPYTER_TOKEN"):
        env.pop(var, None)
    return env


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:120] or "x"


class LabPage:
    """One JupyterLab tab, driven through ``window.jupyterapp`` and the keyboard.

    Methods that take ``path`` default to the notebook opened last in this tab. Cell
    indexes are positions in the notebook, markdown cells included.
    """

    def __init__(
        self,
        page: Page,
        server: LabServer,
        artifacts: Path,
        tabs: list[LabPage] | None = None,
    ) -> None:
        self.page = page
        self.server = server
        self.artifacts = artifacts
        self.path: str | None = None
        # Lab saves open tabs in a server-side workspace and restores them on the next
        # visit; with the default workspace, a later test would reopen (and start kernels
        # for) an earlier test's notebooks. One workspace per tab keeps tests apart.
        self.workspace = f"test-{uuid.uuid4().hex[:10]}"
        self.opened: list[str] = []
        self.console: list[str] = []
        # Tabs of one test share the list (and the screenshot counter through it), so
        # failure screenshots cover every tab and names sort in the order taken.
        self.tabs = tabs if tabs is not None else []
        self.tabs.append(self)
        page.set_default_timeout(OUTPUT_TIMEOUT * 1000)
        page.set_default_navigation_timeout(START_TIMEOUT * 1000)
        page.add_init_script(script=_PAGE_HELPERS)
        page.on("console", self._on_console)
        page.on("pageerror", lambda err: self.console.append(f"[pageerror] {err}"))
        page.on("dialog", self._on_dialog)

    def _on_console(self, msg: ConsoleMessage) -> None:
        if msg.type in ("error", "warning"):
            self.console.append(f"[{msg.type}] {msg.text}")

    def _on_dialog(self, dialog: Dialog) -> None:
        # A dirty notebook makes Lab ask before unload; accept, since reload() saves first
        # and a dialog nobody answers would hang the page.
        self.console.append(f"[dialog:{dialog.type}] {dialog.message}")
        if dialog.type == "beforeunload":
            dialog.accept()
        else:
            dialog.dismiss()

    # -- navigation ---------------------------------------------------------------------

    def open_notebook(
        self,
        path: str,
        notebook: Sequence[str | Mapping[str, Any]] | Mapping[str, Any] | Path | None = None,
        kernel: str = "python3",
        timeout: float = START_TIMEOUT,
    ) -> LabPage:
        """Write ``notebook`` (if given) to ``root_dir/path``, open it, wait until ready.

        Ready means: the panel's document and session contexts are ready, its kernel is
        connected and idle, and every cell has a widget.
        """
        if notebook is not None:
            self.server.write_notebook(path, notebook, kernel)
        elif not (self.server.root_dir / path).exists():
            raise FileNotFoundError(self.server.root_dir / path)
        if self.opened:
            # Lab is already loaded here: open beside the others instead of navigating,
            # which would reload the app (and drop unsaved state of open notebooks).
            self.page.evaluate("([p]) => __labtest.open(p)", [path])
        else:
            self.page.goto(
                self.server.url(f"lab/workspaces/{self.workspace}/tree/{path}", with_token=True)
            )
        self.path = path
        if path not in self.opened:
            self.opened.append(path)
        self.wait_ready(path, timeout)
        return self

    def wait_ready(self, path: str | None = None, timeout: float = START_TIMEOUT) -> None:
        """Wait until ``path``'s notebook panel exists with a connected, idle kernel."""
        path = self._path(path)
        self._wait(
            "([p]) => window.__labtest && __labtest.ready(p)",
            [path],
            timeout,
            f"notebook {path} ready with an idle kernel",
        )

    def reload(self, save: bool = True, timeout: float = START_TIMEOUT) -> None:
        """Reload the tab like F5 and wait until the notebooks open in it are ready again.

        ``save`` first saves them: Lab reopens notebooks from disk, so unsaved outputs
        (widget views included) would be lost, and a dirty notebook asks before unload.
        """
        if save:
            for p in self.opened:
                self.save(p)
        self.page.reload()
        self._wait("() => !!window.jupyterapp", None, timeout, "JupyterLab to load")
        self.page.evaluate("() => jupyterapp.restored.then(() => true)")
        # The URL names one document (``.../tree/<current>``), and Lab 4 then restores only
        # that one (shortly after ``restored``), not the workspace's other tabs. Reopen the
        # others as a user would; leave the URL's to Lab, or it could be opened twice.
        in_url = urllib.parse.unquote(self.page.url.split("?")[0]).partition("/tree/")[2]
        for p in self.opened:
            if p != in_url and not self.page.evaluate("([p]) => !!__labtest.panel(p)", [p]):
                self.page.evaluate("([p]) => __labtest.open(p)", [p])
        for p in self.opened:
            self.wait_ready(p, timeout)

    def new_tab(self) -> LabPage:
        """Another tab in the same browser context (same cookies, same server)."""
        return LabPage(self.page.context.new_page(), self.server, self.artifacts, self.tabs)

    # -- commands -----------------------------------------------------------------------

    def command(
        self, command: str, path: str | None = None, cell: int | None = None, wait: bool = True
    ) -> None:
        """Run a Lab command on ``path``'s panel (made current, ``cell`` made active).

        With ``wait=False`` the call returns at once: ``page.evaluate`` of a run command
        returns only when the cells end, so an interaction test must not await it. The
        command is still tracked, and :meth:`wait_kernel_idle` waits for it.
        """
        js = "([p, c, i, w]) => { const r = __labtest.execute(p, c, i); return w ? r : null; }"
        self.page.evaluate(js, [self._path(path), command, cell, wait])

    def run_all(self, wait: bool = True, path: str | None = None) -> None:
        """``notebook:run-all-cells``; ``wait=True`` also waits for the kernel to go idle."""
        self.command("notebook:run-all-cells", path, wait=False)
        if wait:
            self.wait_kernel_idle(path)

    def run_cell(self, index: int, wait: bool = True, path: str | None = None) -> None:
        """Select cell ``index`` and ``notebook:run-cell`` it (no advance)."""
        self.command("notebook:run-cell", path, cell=index, wait=False)
        if wait:
            self.wait_kernel_idle(path)

    def wait_kernel_idle(self, path: str | None = None, timeout: float = OUTPUT_TIMEOUT) -> None:
        """Wait until every command started here has settled, no cell is running and the
        kernel status is idle (the order matters: a run command can settle before the
        kernel's final ``idle`` arrives)."""
        path = self._path(path)
        self._wait("([p]) => __labtest.idle(p)", [path], timeout, f"kernel of {path} idle")

    def save(self, path: str | None = None, timeout: float = OUTPUT_TIMEOUT) -> None:
        """``docmanager:save`` the notebook and wait until its model is clean."""
        path = self._path(path)
        self.command("docmanager:save", path)
        self._wait("([p]) => __labtest.clean(p)", [path], timeout, f"{path} saved")

    # -- cells --------------------------------------------------------------------------

    def edit_cell(self, index: int, new_source: str, path: str | None = None) -> None:
        """Replace a cell's source through its shared model (as an edit would)."""
        self.page.evaluate(
            "([p, i, s]) => __labtest.setSource(p, i, s)", [self._path(path), index, new_source]
        )

    def cell_source(self, index: int, path: str | None = None) -> str:
        """A cell's current source text."""
        return str(
            self.page.evaluate("([p, i]) => __labtest.source(p, i)", [self._path(path), index])
        )

    def cell_output_text(self, index: int, path: str | None = None) -> str:
        """The rendered text (``innerText``) of a code cell's outputs, prompts excluded and
        widget ``Output`` areas included; ``""`` for a markdown cell or no output."""
        return str(
            self.page.evaluate("([p, i]) => __labtest.outputText(p, i)", [self._path(path), index])
        )

    def cell_output_images(self, index: int, path: str | None = None) -> list[str]:
        """The ``src`` of every ``<img>`` in a cell's outputs (``data:image/png;base64,...``
        for inline figures)."""
        return list(
            self.page.evaluate(
                "([p, i]) => __labtest.outputImages(p, i)", [self._path(path), index]
            )
        )

    def cell(self, index: int, path: str | None = None) -> Locator:
        """A Playwright locator for cell ``index``'s DOM node (windowing is off, so DOM
        order is notebook order)."""
        panel_id = self.page.evaluate("([p]) => __labtest.panel(p).id", [self._path(path)])
        return self.page.locator(f'[id="{panel_id}"] .jp-Notebook .jp-Cell').nth(index)

    def wait_for_output(
        self,
        index: int,
        expect: str | re.Pattern[str] | Callable[[str], bool],
        timeout: float = OUTPUT_TIMEOUT,
        path: str | None = None,
    ) -> str:
        """Wait until cell ``index``'s output text contains ``expect`` (a substring), matches
        it (a compiled regex, ``search``), or satisfies it (a callable); return the text.

        Substrings are checked in the page. For the others each round waits in the page
        for the text to *change* from what Python last checked, so nothing is missed and
        nothing sleeps.
        """
        path = self._path(path)
        what = f"output of cell {index} in {path} to show {expect!r}"
        if isinstance(expect, str):
            js = """([p, i, s]) => {
                const t = __labtest.outputTextOrNull(p, i);
                return t !== null && t.includes(s) ? {t} : null; }"""
            return str(self._wait(js, [path, index, expect], timeout, what, index)["t"])
        pred = expect.search if isinstance(expect, re.Pattern) else expect
        deadline = time.monotonic() + timeout
        text = self.page.evaluate("([p, i]) => __labtest.outputTextOrNull(p, i)", [path, index])
        js = """([p, i, last]) => {
            const t = __labtest.outputTextOrNull(p, i);
            return t !== null && t !== last ? {t} : null; }"""
        while text is None or not pred(text):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"timed out waiting for {what}; it shows {text!r}")
            text = self._wait(js, [path, index, text], remaining, what, index)["t"]
        return str(text)

    # -- keyboard -----------------------------------------------------------------------

    def focus_slider(self, index: int, nth: int = 0, path: str | None = None) -> Locator:
        """Focus the ``nth`` ipywidgets slider handle in cell ``index``'s output, as a user's
        click or Tab would; :meth:`press` then moves it."""
        handle = self.cell(index, path).locator(".widget-slider .noUi-handle").nth(nth)
        handle.wait_for(state="visible")
        handle.focus()
        self.page.wait_for_function(
            "(h) => document.activeElement === h", arg=handle.element_handle(), polling=POLL_MS
        )
        return handle

    def press(self, key: str, times: int = 1) -> None:
        """Press ``key`` on whatever has focus, ``times`` times."""
        for _ in range(times):
            self.page.keyboard.press(key)

    # -- artifacts ----------------------------------------------------------------------

    def screenshot(self, name: str) -> Path:
        """Save a PNG of this tab as ``artifacts/browser/<test>/NN-<name>.png``."""
        self.artifacts.mkdir(parents=True, exist_ok=True)
        n = len(list(self.artifacts.glob("*.png")))
        tab = self.tabs.index(self)
        suffix = f"-tab{tab}" if tab else ""
        dest = self.artifacts / f"{n:02d}-{_slug(name)}{suffix}.png"
        self.page.screenshot(path=str(dest))
        return dest

    # -- internals ----------------------------------------------------------------------

    def _path(self, path: str | None) -> str:
        path = path or self.path
        if path is None:
            raise RuntimeError("no notebook open in this tab; call open_notebook first")
        return path

    def _wait(self, js: str, arg: Any, timeout: float, what: str, index: int | None = None) -> Any:
        """``wait_for_function`` that raises ``TimeoutError`` naming ``what`` (and, for a
        cell, the output it shows) instead of Playwright's generic message."""
        try:
            handle = self.page.wait_for_function(
                js, arg=arg, timeout=timeout * 1000, polling=POLL_MS
            )
        except PlaywrightTimeoutError:
            seen = ""
            if index is not None:
                with contextlib.suppress(Exception):
                    seen = f"; it shows {self.cell_output_text(index, arg[0])!r}"
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}{seen}") from None
        return handle.json_value()


class AppPage:
    """A page of an app server that is not JupyterLab (mercury, Voila): console capture,
    named waits and numbered full-page screenshots under ``artifacts``."""

    def __init__(self, page: Page, artifacts: Path) -> None:
        self.page = page
        self.artifacts = artifacts
        self.console: list[str] = []
        page.on("console", lambda m: self.console.append(f"[{m.type}] {m.text}"))
        page.on("pageerror", lambda err: self.console.append(f"[pageerror] {err}"))

    def wait(self, js: str, timeout: float, what: str, arg: object = None) -> None:
        """``wait_for_function`` raising ``TimeoutError`` with ``what`` and the console."""
        try:
            self.page.wait_for_function(js, arg=arg, timeout=timeout * 1000, polling=POLL_MS)
        except Exception as exc:
            raise TimeoutError(
                f"timed out after {timeout:.0f}s waiting for {what}; console:\n"
                + "\n".join(self.console[-30:])
            ) from exc

    def screenshot(self, name: str) -> Path:
        self.artifacts.mkdir(parents=True, exist_ok=True)
        n = len(list(self.artifacts.glob("*.png")))
        dest = self.artifacts / f"{n:02d}-{name}.png"
        self.page.screenshot(path=str(dest), full_page=True)
        return dest

    @contextlib.contextmanager
    def keep_failure_artifacts(self) -> Iterator[None]:
        """On any failure inside, save the console log and a last screenshot."""
        try:
            yield
        except BaseException:
            (self.artifacts / "console.log").write_text("\n".join(self.console) + "\n")
            with contextlib.suppress(Exception):
                self.screenshot("FAILED")
            raise


def artifacts_dir(test_name: str, fresh: bool = False) -> Path:
    """``artifacts/browser/<test name>/`` (created); ``fresh`` empties a previous run's."""
    d = ARTIFACTS / _slug(test_name)
    if fresh and d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True, exist_ok=True)
    return d


def failure_artifacts(tabs: Sequence[LabPage], out: Path) -> None:
    """Screenshot every tab and write their browser consoles into ``out`` after a failure;
    best effort, since the page may be the thing that broke."""
    out.mkdir(parents=True, exist_ok=True)
    lines = []
    for n, tab in enumerate(tabs):
        with contextlib.suppress(Exception):
            tab.page.screenshot(path=str(out / f"FAILED-tab{n}.png"))
        lines.append(f"--- tab {n}")
        lines.extend(tab.console)
    (out / "console.log").write_text("\n".join(lines) + "\n", encoding="utf-8")
