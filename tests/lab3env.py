"""The JupyterLab 3 stack that jupyterlab-stickyland needs, as a cached venv for tests.

jupyterlab-stickyland 0.2.4 runs only on JupyterLab 3 (HOSTS.md), and that stack brings
ipykernel 6.29, the oldest kernel ``reactive`` supports. The kernel tests of ipykernel 6.29
(``tests/kernel/test_ipykernel6.py``) and the stickyland browser test run in this
environment, built by the tests themselves so that ``./run tests`` needs nothing by hand:

* ``<repo>/.venvs/lab3/`` (gitignored), created with ``python -m venv`` and filled by pip:
  :data:`REQUIREMENTS` plus this checkout (``pip install -e``), then the "Python 3
  (reactive)" kernelspec installed into it (``python -m reactive install --sys-prefix``).
* Rebuilt only when :data:`REQUIREMENTS`, ``pyproject.toml`` or the checkout's path
  change (a stamp file records them); a first build takes about a minute and a half.
* Built under a file lock, so two test processes never build it at once.

Pins, each for a reason:

* ``ipykernel>=6.29,<6.30``: what the stickyland stack is documented with; pip left alone
  picks ipykernel 7, which JupyterLab 3 also runs, but then the oldest supported kernel
  would go untested.
* ``jupyterlab_widgets<3.0.17``: 3.0.17 ships a widget manager built for JupyterLab 4 only;
  JupyterLab 3 disables it and no widget renders. 3.0.16 supports both, and pip then picks
  the ipywidgets that goes with it (8.1.8).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VENVS = REPO / ".venvs"
VENV = VENVS / "lab3"
REQUIREMENTS = (
    "jupyterlab>=3.6,<4",
    "jupyterlab-stickyland==0.2.4",
    "ipykernel>=6.29,<6.30",
    "jupyterlab_widgets<3.0.17",
    "matplotlib",
    "numpy",
)
#: Seconds a (re)build may take before it counts as failed.
BUILD_TIMEOUT = 300.0
_STAMP = ".reactive-lab3-stamp"
#: What the built environment must report (checked after every build).
_CHECK = (
    "import ipykernel, ipywidgets, jupyterlab, jupyterlab_widgets, reactive;"
    "print(ipykernel.__version__, jupyterlab.__version__, ipywidgets.__version__,"
    " jupyterlab_widgets.__version__)"
)


class Lab3EnvError(RuntimeError):
    """The environment could not be built; the message says which step and why."""


_failed: Lab3EnvError | None = None


def python_path() -> Path:
    """The environment's interpreter (it may not exist yet: see :func:`ensure`)."""
    return VENV / "bin" / "python"


def _stamp() -> str:
    pyproject = (REPO / "pyproject.toml").read_bytes()
    h = hashlib.sha256()
    for part in (*REQUIREMENTS, str(REPO), sys.version.split()[0]):
        h.update(part.encode() + b"\0")
    h.update(pyproject)
    return h.hexdigest()


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    VENVS.mkdir(parents=True, exist_ok=True)
    with open(VENVS / "lab3.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _run(argv: list[str], log: Path, deadline: float, what: str) -> str:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise Lab3EnvError(f"building {VENV} took over {BUILD_TIMEOUT:.0f}s (at: {what})")
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PYTHONNOUSERSITE": "1"}
    env.pop("PYTHONPATH", None)
    with log.open("a") as out:
        out.write(f"\n$ {' '.join(argv)}\n")
        out.flush()
        try:
            proc = subprocess.run(
                argv,
                stdout=subprocess.PIPE,
                stderr=out,
                stdin=subprocess.DEVNULL,
                text=True,
                timeout=remaining,
                cwd=VENVS,
                env=env,
            )
        except subprocess.TimeoutExpired:
            raise Lab3EnvError(
                f"building {VENV} took over {BUILD_TIMEOUT:.0f}s (at: {what}); see {log}"
            ) from None
        out.write(proc.stdout)
    if proc.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
        raise Lab3EnvError(f"{what} failed (exit {proc.returncode}); {log}:\n{tail}")
    return proc.stdout


def _build(log: Path) -> str:
    deadline = time.monotonic() + BUILD_TIMEOUT
    shutil.rmtree(VENV, ignore_errors=True)
    log.write_text(f"building {VENV}\n")
    _run([sys.executable, "-m", "venv", str(VENV)], log, deadline, "python -m venv")
    py = str(python_path())
    _run(
        [py, "-m", "pip", "install", "-q", *REQUIREMENTS, "-e", str(REPO)],
        log,
        deadline,
        "pip install of the JupyterLab 3 stack",
    )
    _run(
        [py, "-m", "reactive", "install", "--sys-prefix"],
        log,
        deadline,
        "installing the python3-reactive kernelspec",
    )
    return _run([py, "-c", _CHECK], log, deadline, "importing the stack")


@functools.cache
def ensure() -> Path:
    """Build the environment unless a current one exists; return its interpreter.

    Raises :class:`Lab3EnvError` when a step fails, or when pip resolved versions that are
    not the JupyterLab 3 / ipykernel 6.29 stack.
    """
    with _locked():
        stamp_file = VENV / _STAMP
        want = _stamp()
        py = python_path()
        if py.exists() and stamp_file.exists() and stamp_file.read_text() == want:
            return py
        log = VENVS / "lab3-build.log"
        versions = _build(log).split()
        ipykernel, jupyterlab = versions[0], versions[1]
        if not ipykernel.startswith("6.29.") or not jupyterlab.startswith("3."):
            raise Lab3EnvError(
                f"expected ipykernel 6.29 and JupyterLab 3 in {VENV}, got {versions}"
            )
        stamp_file.write_text(want)
        return py


def versions() -> dict[str, str]:
    """ipykernel, jupyterlab, ipywidgets and jupyterlab_widgets versions in the env."""
    out = subprocess.run(
        [str(ensure()), "-c", _CHECK], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    names = ("ipykernel", "jupyterlab", "ipywidgets", "jupyterlab_widgets")
    return dict(zip(names, out, strict=True))


def require() -> Path:
    """:func:`ensure` for a test: skip when the env cannot be built, but fail under CI.

    A skipped JupyterLab 3 suite in CI would hide a broken setup (like missing Chromium).
    """
    import pytest

    global _failed
    try:
        if _failed is not None:
            raise _failed
        return ensure()
    except Lab3EnvError as exc:
        _failed = exc  # one failed build per test session, not one per test
        if os.environ.get("CI"):
            pytest.fail(f"CI: the JupyterLab 3 test environment: {exc}", pytrace=False)
        pytest.skip(f"the JupyterLab 3 test environment could not be built: {exc}")
