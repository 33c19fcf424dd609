"""``python -m reactive install/uninstall`` and the kernel that kernelspec starts.

The CLI runs as a subprocess, as a user would run it, because its contract is about what
reaches stderr and the exit status (one line, no traceback). Everything is installed under a
tmp ``--prefix`` (or ``--user`` with ``JUPYTER_DATA_DIR`` in tmp) and located with a
``KernelSpecManager`` limited to that directory, so the tests never read or write the
user's or the environment's real kernelspecs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from reactive.integrations.ipykernel import kernelspec

from tests.kernel.harness import Notebook

pytestmark = pytest.mark.kernel

NAME = "python3-reactive"
DISPLAY = "Python 3 (reactive)"
LAUNCHER = "reactive.integrations.ipykernel.launcher"


def run_cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    """``python -m reactive ARGS`` with Jupyter's per-user dirs moved under ``home``.

    Moving them means a CLI bug that ignores ``--prefix`` writes into the test's tmp dir
    rather than into the developer's real Jupyter data directory; running in ``home`` keeps
    relative ``--prefix`` paths there too.
    """
    env = {
        **os.environ,
        "JUPYTER_DATA_DIR": str(home / "data"),
        "JUPYTER_CONFIG_DIR": str(home / "config"),
    }
    return subprocess.run(
        [sys.executable, "-m", "reactive", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=home,
        timeout=60,
    )


def kernels_dir(prefix: Path) -> Path:
    return prefix / "share" / "jupyter" / "kernels"


def kernel_env(tmp: Path) -> dict[str, str]:
    """The environment the harness gives kernels: private IPYTHONDIR, no debugpy chatter."""
    env = {**os.environ, "IPYTHONDIR": str(tmp / "ipython"), "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
    env.pop("JPY_PARENT_PID", None)
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One ``install --prefix`` shared by the module's tests; returns the prefix."""
    root = tmp_path_factory.mktemp("kernelspec")
    prefix = root / "prefix"
    result = run_cli("install", "--prefix", str(prefix), home=root)
    assert result.returncode == 0, result.stderr
    return prefix


# -- install -----------------------------------------------------------------------------


def test_install_writes_a_kernelspec_jupyter_finds(installed: Path) -> None:
    spec_dir = kernels_dir(installed) / NAME
    data = json.loads((spec_dir / "kernel.json").read_text())
    assert data["argv"] == [sys.executable, "-m", LAUNCHER, "-f", "{connection_file}"]
    assert data["display_name"] == DISPLAY
    assert data["language"] == "python"
    assert data["metadata"]["debugger"] is True
    assert {"logo-32x32.png", "logo-64x64.png"} <= {p.name for p in spec_dir.iterdir()}

    ksm = KernelSpecManager(kernel_dirs=[str(kernels_dir(installed))])
    assert Path(ksm.find_kernel_specs()[NAME]) == spec_dir
    spec = ksm.get_kernel_spec(NAME)
    assert spec.display_name == DISPLAY
    assert spec.argv == data["argv"]


def test_install_prints_one_line_naming_the_directory(tmp_path: Path) -> None:
    prefix = tmp_path / "p"
    result = run_cli(
        "install",
        "--prefix",
        str(prefix),
        "--name",
        "Other-Name",
        "--display-name",
        "Mine",
        home=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    spec_dir = kernels_dir(prefix) / "other-name"  # Jupyter lowercases kernel names
    assert result.stdout.count("\n") == 1
    assert str(spec_dir) in result.stdout
    assert result.stderr == ""
    assert json.loads((spec_dir / "kernel.json").read_text())["display_name"] == "Mine"


def test_default_location_is_the_virtualenv_else_the_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "prefix", "/some/venv")
    monkeypatch.setattr(sys, "base_prefix", "/usr")
    assert kernelspec.Location.default() == kernelspec.Location(prefix="/some/venv")
    monkeypatch.setattr(sys, "base_prefix", "/some/venv")
    assert kernelspec.Location.default() == kernelspec.Location(user=True)


# -- the installed kernel ----------------------------------------------------------------


def _stdout_text(outputs: list[dict[str, Any]]) -> str:
    return "".join(
        o.get("text", "")
        for o in outputs
        if o.get("output_type") == "stream" and o["name"] == "stdout"
    )


def _execute(
    km: KernelManager, code: str, expression: str, timeout: float = 30.0
) -> tuple[str, str]:
    """Run ``code`` as one execute_request; return (its stdout as seen on iopub, ``expression``).

    The stdout is the request's ``stream`` messages plus what it rendered into ipywidgets
    ``Output`` models (the reactive runtime shows a cell's output in such a slot, so the
    text reaches iopub as the model's ``outputs`` state rather than as a bare stream).
    ``expression`` is evaluated by the kernel as a ``user_expression`` and read from the
    reply, which no output routing can affect.
    """
    client = km.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=timeout)
        msg_id = client.execute(code, user_expressions={"x": expression})
        streams: list[dict[str, Any]] = []
        widget_outputs: dict[str, list[dict[str, Any]]] = {}
        deadline = time.monotonic() + timeout
        while True:
            msg = client.get_iopub_msg(timeout=max(0.0, deadline - time.monotonic()))
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                streams.append({"output_type": "stream", **content})
            elif kind == "error":
                raise AssertionError(f"{content['ename']}: {content['evalue']}")
            elif kind in ("comm_open", "comm_msg"):
                state = content.get("data", {}).get("state", {})
                if "outputs" in state:
                    widget_outputs[content["comm_id"]] = state["outputs"]
            elif kind == "status" and content["execution_state"] == "idle":
                break
        while True:  # wait_for_ready may leave a late kernel_info_reply queued
            shell = client.get_shell_msg(timeout=max(0.0, deadline - time.monotonic()))
            if shell["parent_header"].get("msg_id") == msg_id:
                break
        reply = shell["content"]
        value = reply["user_expressions"]["x"]
        assert value["status"] == "ok", value
        stdout = _stdout_text(streams) + "".join(map(_stdout_text, widget_outputs.values()))
        return stdout, value["data"]["text/plain"]
    finally:
        client.stop_channels()


def test_installed_kernel_starts_by_name_with_reactive_loaded(
    installed: Path, tmp_path: Path
) -> None:
    ksm = KernelSpecManager(kernel_dirs=[str(kernels_dir(installed))])
    km = KernelManager(kernel_name=NAME, kernel_spec_manager=ksm)
    km.shutdown_wait_time = 3.0
    log_path = tmp_path / "kernel.log"
    loaded = "'reactive' in get_ipython().extension_manager.loaded"
    with open(log_path, "wb") as log:
        km.start_kernel(env=kernel_env(tmp_path), stdout=log, stderr=log)
        try:
            stdout, value = _execute(km, f"print({loaded})", loaded)
        finally:
            km.shutdown_kernel()
    kernel_log = log_path.read_text(errors="replace")[-3000:]
    assert value == "True", kernel_log
    assert stdout == "True\n", kernel_log
    assert not km.is_alive()


PROBE = """
def load_ipython_extension(ip):
    # Which extensions were loaded before this one: reactive must come after us.
    ip.user_ns["_probe_{name}"] = "reactive" in ip.extension_manager.loaded
"""


@pytest.fixture(scope="module")
def configured_kernel(
    installed: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Notebook]:
    """The installed kernel's argv, plus a config file and command line a user might have.

    The profile's ``ipython_kernel_config.py`` names one extension, the command line adds
    another through ``extra_extensions`` and a ``--Reactive.mode`` option; the harness runs
    the kernel from the kernel.json argv because it cannot take a ``KernelSpecManager``.
    """
    root = tmp_path_factory.mktemp("configured")
    for name in ("cfg", "cli"):
        (root / f"kernelspec_probe_{name}.py").write_text(textwrap.dedent(PROBE).format(name=name))
    profile = root / "ipython" / "profile_default"
    profile.mkdir(parents=True)
    (profile / "ipython_kernel_config.py").write_text(
        "c.InteractiveShellApp.extensions = ['kernelspec_probe_cfg']\n"
    )
    argv = json.loads((kernels_dir(installed) / NAME / "kernel.json").read_text())["argv"]
    nb = Notebook(
        kernel_cmd=argv,
        extra_args=[
            "--Reactive.mode=normal",
            "--IPKernelApp.extra_extensions=['kernelspec_probe_cli']",
        ],
        env={"IPYTHONDIR": str(root / "ipython")},
        cwd=root,
    ).start()
    try:
        yield nb
    finally:
        nb.shutdown()


def test_reactive_options_on_the_kernel_command_line_reach_the_config(
    configured_kernel: Notebook,
) -> None:
    nb = configured_kernel
    reply = nb.execute("mode", "print(get_ipython().config.Reactive.mode)")
    assert reply["status"] == "ok", nb.text("mode")
    assert nb.text("mode") == "normal\n"


def test_configured_extensions_are_kept_and_reactive_loads_after_them(
    configured_kernel: Notebook,
) -> None:
    nb = configured_kernel
    code = (
        "loaded = get_ipython().extension_manager.loaded\n"
        "print(sorted(e for e in loaded if not e.startswith('IPython.')))\n"
        "print(_probe_cfg, _probe_cli)"
    )
    reply = nb.execute("exts", code)
    assert reply["status"] == "ok", nb.text("exts")
    assert nb.text("exts") == (
        "['kernelspec_probe_cfg', 'kernelspec_probe_cli', 'reactive']\nFalse False\n"
    ), nb.kernel_log()


# -- uninstall and errors ----------------------------------------------------------------


def test_uninstall_removes_it_and_a_second_uninstall_fails(tmp_path: Path) -> None:
    prefix = tmp_path / "p"
    assert run_cli("install", "--prefix", str(prefix), home=tmp_path).returncode == 0
    other = tmp_path / "other"  # a spec of the same name elsewhere must survive
    assert run_cli("install", "--prefix", str(other), home=tmp_path).returncode == 0

    result = run_cli("uninstall", "--prefix", str(prefix), home=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") == 1
    assert not (kernels_dir(prefix) / NAME).exists()
    assert (kernels_dir(other) / NAME / "kernel.json").is_file()
    ksm = KernelSpecManager(kernel_dirs=[str(kernels_dir(prefix))], ensure_native_kernel=False)
    assert NAME not in ksm.find_kernel_specs()

    again = run_cli("uninstall", "--prefix", str(prefix), home=tmp_path)
    assert again.returncode == 1
    assert again.stdout == ""
    assert again.stderr.count("\n") == 1
    assert "not installed" in again.stderr
    assert "Traceback" not in again.stderr


def test_user_install_and_uninstall_use_the_jupyter_data_dir(tmp_path: Path) -> None:
    user_kernels = tmp_path / "data" / "kernels"  # run_cli points JUPYTER_DATA_DIR here
    installed = run_cli("install", "--user", home=tmp_path)
    assert installed.returncode == 0, installed.stderr
    assert (user_kernels / NAME / "kernel.json").is_file()
    removed = run_cli("uninstall", "--user", home=tmp_path)
    assert removed.returncode == 0, removed.stderr
    assert not (user_kernels / NAME).exists()


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["install", "--no-such-flag"], id="unknown-flag"),
        pytest.param(["install", "--user", "--sys-prefix"], id="two-locations"),
        pytest.param(["uninstall", "--user", "--prefix", "x"], id="two-locations-uninstall"),
        pytest.param(["install", "--prefix"], id="prefix-without-path"),
        pytest.param(["install", "--prefix", "--user"], id="prefix-followed-by-flag"),
        pytest.param(["install", "--prefix="], id="empty-prefix"),
        pytest.param(["install", "--prefix", "p", "--name", "has space"], id="bad-name"),
        pytest.param(["frobnicate"], id="unknown-command"),
    ],
)
def test_bad_arguments_give_one_line_and_exit_2(args: list[str], tmp_path: Path) -> None:
    result = run_cli(*args, home=tmp_path)
    assert result.returncode == 2, result
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert "error" in result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_install_help_documents_the_default_location(tmp_path: Path) -> None:
    result = run_cli("install", "--help", home=tmp_path)
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    assert "--sys-prefix when running inside a virtualenv" in text
    assert "otherwise --user" in text


def test_demo_subcommand_still_parses(tmp_path: Path) -> None:
    result = run_cli("demo", "--help", home=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "--events" in result.stdout


def test_cli_does_not_import_kernel_packages() -> None:
    """The core must stay importable without the kernel stack (README: Layout)."""
    code = (
        "import sys, reactive.__main__\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'ipykernel', 'IPython', "
        "'ipywidgets'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout == "[]\n", out.stderr
