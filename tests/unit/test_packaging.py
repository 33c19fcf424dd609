"""What ``pip install reactive-dashboards`` gets: the wheel, built and installed for real.

The wheel is built with ``python -m build --wheel`` in build isolation (``build`` creates a
throw-away environment and pip installs ``[build-system] requires`` into it from the
configured package index). Isolation is the honest check: it is how pip builds the project
for a user, and it does not depend on this venv's own, possibly older, setuptools (this venv
has whatever ``pip install -e`` left, which need not satisfy ``setuptools>=68``). Only when
the isolated build fails *and* this interpreter already satisfies the build requirements do
we retry with ``--no-isolation`` (an offline machine with a complete dev venv), saying so in
the failure text if that fails too.

The build runs on a copy of the work tree in tmp, so it never writes ``build/`` or
``*.egg-info`` into the repo that other test runs and editors are using; the copy keeps
``tests/``, ``benchmarks/`` and ``examples/`` so that "the wheel leaves them out" is tested
against a tree that has them.

Installing: the wheel goes into a fresh venv (``python -m venv``, ``pip install --no-deps
--no-index``), so nothing of this repo or of the editable install can be on its path.
Importing ``reactive.integrations.ipykernel`` needs the runtime dependencies (ipykernel,
ipywidgets, anyio, traitlets, ...); downloading them again would make the test slow and
network-bound, so the fresh venv borrows them from this interpreter instead: a ``.pth`` file
in the fresh venv's site-packages lists this interpreter's site-packages directories.
``site`` appends ``.pth`` entries *after* the venv's own site-packages, so the wheel's
``reactive`` always wins, and plain directory lines do not run the ``.pth`` files of the
borrowed directories (in particular not the editable install's import hook). The check runs
with ``python -I`` from a tmp working directory (no ``PYTHONPATH``, no cwd on the path), and
it asserts *where* every module was imported from rather than trusting the order.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DIST = "reactive-dashboards"
#: generated or heavy directories that are never part of a build's input
IGNORED = (
    ".git",
    ".venv",
    ".venvs",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    ".hypothesis",
    "artifacts",
    "node_modules",
    ".ipynb_checkpoints",
)
MODULES = (
    "reactive",
    "reactive.integrations",
    "reactive.integrations.ipykernel",
    "reactive.integrations.ipykernel.runtime",
    "reactive.integrations.ipywidgets",
)
TIMEOUT = 300


def _run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, **kwargs)


def _tail(proc: subprocess.CompletedProcess[str], n: int = 3000) -> str:
    return (proc.stdout + proc.stderr)[-n:]


def _satisfies_build_requires() -> bool:
    """True when this interpreter could build the wheel without isolation."""
    try:
        major = int(importlib.metadata.version("setuptools").split(".")[0])
        importlib.metadata.version("wheel")
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return False
    return major >= 68


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("packaging")


@pytest.fixture(scope="module")
def wheel(workdir: Path) -> Path:
    src = workdir / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(*IGNORED), symlinks=True)
    out = workdir / "dist"
    build = [sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(src)]
    isolated = _run(build, cwd=workdir)
    if isolated.returncode != 0:
        if not _satisfies_build_requires():
            pytest.fail(f"isolated wheel build failed:\n{_tail(isolated)}")
        # e.g. no package index reachable: the current venv has what the build needs
        plain = _run([*build, "--no-isolation"], cwd=workdir)
        if plain.returncode != 0:
            pytest.fail(
                f"isolated wheel build failed:\n{_tail(isolated)}\n"
                f"and so did the --no-isolation retry:\n{_tail(plain)}"
            )
    wheels = sorted(out.glob("*.whl"))
    assert len(wheels) == 1, wheels
    assert wheels[0].name.startswith("reactive_dashboards-"), wheels[0].name
    return wheels[0]


@pytest.fixture(scope="module")
def wheel_venv(workdir: Path, wheel: Path) -> Iterator[Path]:
    """A fresh venv with only the wheel installed (dependencies borrowed, see the docstring)."""
    venv = workdir / "venv"
    made = _run([sys.executable, "-m", "venv", str(venv)])
    assert made.returncode == 0, _tail(made)
    python = venv / "bin" / "python"
    installed = _run(
        [str(python), "-m", "pip", "install", "--no-deps", "--no-index", str(wheel)],
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    assert installed.returncode == 0, _tail(installed)
    purelib = _venv_path(python, "purelib")
    borrowed = dict.fromkeys(sysconfig.get_path(k) for k in ("purelib", "platlib"))
    (Path(purelib) / "_borrowed_test_dependencies.pth").write_text(
        "".join(f"{d}\n" for d in borrowed if d and Path(d).is_dir())
    )
    yield python


def _venv_path(python: Path, key: str) -> str:
    proc = _run([str(python), "-I", "-c", f"import sysconfig; print(sysconfig.get_path({key!r}))"])
    assert proc.returncode == 0, _tail(proc)
    return proc.stdout.strip()


def _import_files(python: Path, cwd: Path) -> dict[str, str]:
    """Module name -> the file it was imported from, in a ``python -I`` subprocess."""
    code = (
        "import importlib, json, sys\n"
        f"names = {[*MODULES, 'ipykernel', 'ipywidgets']!r}\n"
        "print(json.dumps({n: importlib.import_module(n).__file__ for n in names}))\n"
    )
    proc = _run([str(python), "-I", "-c", code], cwd=cwd)
    assert proc.returncode == 0, _tail(proc)
    return {k: str(Path(v).resolve()) for k, v in json.loads(proc.stdout).items()}


def test_wheel_ships_the_integrations_and_nothing_of_the_repo(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
    for expected in (
        "reactive/__init__.py",
        "reactive/config.py",
        "reactive/integrations/__init__.py",
        "reactive/integrations/ipykernel/__init__.py",
        "reactive/integrations/ipykernel/runtime.py",
        "reactive/integrations/ipykernel/launcher.py",
        "reactive/integrations/ipywidgets.py",
    ):
        assert expected in names, f"{expected} missing from {wheel.name}: {names}"
    tops = {n.split("/", 1)[0] for n in names}
    dist_info = [t for t in tops if t.endswith(".dist-info")]
    assert len(dist_info) == 1 and tops == {"reactive", *dist_info}, tops
    stray = [
        n
        for n in names
        if n.startswith(("tests/", "benchmarks/", "examples/", "integrations/"))
        or "/tests/" in n
        or "/benchmarks/" in n
        or "__pycache__" in n
    ]
    assert stray == [], stray


def test_wheel_declares_the_console_script_and_runtime_dependencies(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        info = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = zf.read(info).decode()
        entry = zf.read(info.replace("METADATA", "entry_points.txt")).decode()
    assert "reactive = reactive.__main__:main" in entry
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    for dep in ("anyio", "traitlets", "ipykernel", "ipywidgets", "jupyter_client"):
        assert any(
            line.split(":", 1)[1].strip().lower().startswith(dep) and "extra ==" not in line
            for line in requires
        ), f"{dep} is not a runtime dependency: {requires}"


def test_installed_wheel_imports_from_its_own_site_packages(
    wheel_venv: Path, workdir: Path
) -> None:
    site = Path(_venv_path(wheel_venv, "purelib")).resolve()
    files = _import_files(wheel_venv, cwd=workdir)
    for name in MODULES:
        path = Path(files[name])
        assert path.is_relative_to(site), f"{name} imported from {path}, not from the wheel"
        assert not path.is_relative_to(ROOT), f"{name} imported from the repo: {path}"
    assert files["reactive.integrations"] == str(site / "reactive/integrations/__init__.py")
    # the borrowed dependencies really came from the dev environment, not the fresh venv
    assert not Path(files["ipykernel"]).is_relative_to(site)


def test_installed_wheel_loads_the_extension_class(wheel_venv: Path, workdir: Path) -> None:
    """Beyond imports: the pieces the kernel loads exist and are wired to each other."""
    code = (
        "import reactive, reactive.integrations.ipykernel as k\n"
        "from reactive.integrations.ipykernel.launcher import kernel_app_class, EXTENSION\n"
        "from reactive.integrations.ipywidgets import WidgetSources\n"
        "from reactive.config import Reactive\n"
        "assert callable(reactive.load_ipython_extension)\n"
        "assert callable(k.load_ipython_extension) and EXTENSION == 'reactive'\n"
        "assert kernel_app_class().__name__ == 'ReactiveKernelApp'\n"
        "print(Reactive().mode, reactive.__version__)\n"
    )
    proc = _run([str(wheel_venv), "-I", "-c", code], cwd=workdir)
    assert proc.returncode == 0, _tail(proc)
    assert proc.stdout.split() == ["reactive", "0.1.0"]


def test_editable_install_maps_integrations_to_the_repo_folder(tmp_path: Path) -> None:
    """The dev venv (``pip install -e .``) imports ``reactive.integrations`` from ``integrations/``.

    Run from a tmp cwd with ``-I`` so the repo is not on ``sys.path`` by accident: the
    mapping must come from the editable install itself.
    """
    # asked in the subprocess: in this process the repo's own *.egg-info is on sys.path
    probe = _run(
        [
            sys.executable,
            "-I",
            "-c",
            "import importlib.metadata as m\n"
            "try:\n"
            f"    print(m.distribution({DIST!r}).read_text('direct_url.json') or '{{}}')\n"
            "except m.PackageNotFoundError:\n"
            "    print('{}')\n",
        ],
        cwd=tmp_path,
    )
    assert probe.returncode == 0, _tail(probe)
    if not json.loads(probe.stdout).get("dir_info", {}).get("editable"):
        pytest.skip(f"{DIST} is not an editable install in {sys.prefix}")
    files = _import_files(Path(sys.executable), cwd=tmp_path)
    assert files["reactive"] == str(ROOT / "reactive/__init__.py")
    assert files["reactive.integrations"] == str(ROOT / "integrations/__init__.py")
    assert files["reactive.integrations.ipykernel"] == str(
        ROOT / "integrations/ipykernel/__init__.py"
    )
    assert files["reactive.integrations.ipywidgets"] == str(ROOT / "integrations/ipywidgets.py")
