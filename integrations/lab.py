"""``python -m reactive demo``: JupyterLab with the example dashboard open.

Installs the "Python 3 (reactive)" kernelspec into this environment, copies
``examples/dashboards`` into a scratch folder (so autosave never dirties the
repository), starts JupyterLab on 127.0.0.1 with a fresh token and prints
the URL.  Ctrl-C stops the server and waits for it, so no kernel outlives
the command.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "dashboards"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _examples_dir() -> Path:
    """The repo's examples, or the copy next to an installed package."""
    for candidate in (EXAMPLES, Path.cwd() / "examples" / "dashboards"):
        if candidate.is_dir():
            return candidate
    raise SystemExit("reactive demo: examples/dashboards not found; run it from the repository")


def prepare(workdir: Path) -> Path:
    """Fresh copies of the example notebooks in ``workdir``."""
    src = _examples_dir()
    workdir.mkdir(parents=True, exist_ok=True)
    for nb in src.glob("*.ipynb"):
        shutil.copyfile(nb, workdir / nb.name)
    return workdir


def lab_command(root: Path, port: int, token: str) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--LabApp.news_url=",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    return cmd


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"reactive demo: JupyterLab exited with status {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.25)  # polling a server that is starting: nothing to await
    raise SystemExit(f"reactive demo: JupyterLab did not answer on {url} within {timeout:.0f} s")


def main(workdir: Path | None = None, notebook: str = "sliders.ipynb") -> int:
    from .ipykernel import kernelspec

    try:
        import jupyterlab  # noqa: F401
    except ImportError:
        print(
            "reactive demo: JupyterLab is not installed (./run demo installs it)", file=sys.stderr
        )
        return 1
    dest = kernelspec.install(location=kernelspec.Location(prefix=sys.prefix))
    print(f"[demo] kernel 'Python 3 (reactive)' installed in {dest}", flush=True)
    root = prepare(workdir or Path.cwd() / ".demo")
    port, token = _free_port(), secrets.token_hex(16)
    proc = subprocess.Popen(lab_command(root, port, token), stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(f"{base}/api/status?token={token}", proc)
        print(f"\n    Open {base}/lab/tree/{notebook}?token={token}\n", flush=True)
        print("[demo] Run All, then drag a slider. Ctrl-C stops the server.", flush=True)
        return proc.wait()
    except KeyboardInterrupt:
        print("\n[demo] stopping JupyterLab ...", flush=True)
        return 0
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
