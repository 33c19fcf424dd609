"""Install and remove the "Python 3 (reactive)" kernelspec (``python -m reactive install``).

The kernelspec is a plain ipykernel started through :mod:`.launcher`, so notebooks opened
with it have the ``reactive`` extension loaded before their first cell runs, with nothing
to type. Installation goes through ``jupyter_client``'s ``KernelSpecManager`` so the files
land exactly where ``jupyter kernelspec install`` would put them and Jupyter finds them.

Errors are :class:`KernelspecError` with a message that fits on one line: the command line
prints it without a traceback.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The name Jupyter stores the kernelspec under (its directory name).
DEFAULT_NAME = "python3-reactive"
#: What the launcher/kernel picker shows.
DEFAULT_DISPLAY_NAME = "Python 3 (reactive)"
#: The module kernel.json starts; see ``launcher.py``.
LAUNCHER_MODULE = "reactive.integrations.ipykernel.launcher"
_KERNEL_NAME = re.compile(r"[a-z0-9._\-]+", re.IGNORECASE)
_QUIET = logging.getLogger("reactive.kernelspec")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False


class KernelspecError(Exception):
    """A failure the user can act on; ``exit_code`` follows the CLI's convention.

    2 means the request itself was wrong (bad name, empty prefix), 1 means the request
    was fine but could not be carried out (not installed, no permission).
    """

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class Location:
    """Where a kernelspec lives: ``--user``, ``--sys-prefix`` or ``--prefix PATH``.

    ``prefix`` is None for a user install; ``--sys-prefix`` is ``prefix=sys.prefix``, which
    is how Jupyter itself spells it.
    """

    user: bool = False
    prefix: str | None = None

    @classmethod
    def default(cls) -> Location:
        """Inside a virtualenv the env's own prefix, else the user's Jupyter data dir.

        A virtualenv's kernelspec should go away with the env and point at the env's
        Python; outside one, the user directory needs no privileges (a system-wide
        install would).
        """
        if sys.prefix != sys.base_prefix:
            return cls(prefix=sys.prefix)
        return cls(user=True)

    def kernels_dir(self) -> Path:
        """The ``kernels`` directory this location stands for."""
        if self.user:
            return Path(_manager().user_kernel_dir)
        assert self.prefix is not None
        return Path(os.path.abspath(self.prefix)) / "share" / "jupyter" / "kernels"


def _manager(kernel_dirs: list[str] | None = None) -> Any:
    """A ``KernelSpecManager`` whose log stays quiet: we report outcomes ourselves, in one line.

    Its default logger would print multi-line warnings (e.g. "not in kernel_dirs") through
    logging's last-resort handler. With explicit ``kernel_dirs`` it also stops inventing the
    built-in ``python3`` spec, so only what is really in those directories is listed.
    """
    from jupyter_client.kernelspec import KernelSpecManager

    if kernel_dirs is None:
        return KernelSpecManager(log=_QUIET)
    return KernelSpecManager(log=_QUIET, kernel_dirs=kernel_dirs, ensure_native_kernel=False)


def check_name(name: str) -> str:
    """Jupyter's rule for kernel names, checked before touching the disk; returns it lowercased.

    ``install_kernel_spec`` lowercases names itself, so uninstall must too to find them.
    The pattern is jupyter_client's (kept here because its checker is private).
    """
    if not _KERNEL_NAME.fullmatch(name):
        raise KernelspecError(
            f"invalid kernel name {name!r}: use ASCII letters, digits, '-', '.' and '_'",
            exit_code=2,
        )
    return name.lower()


def kernel_json(display_name: str = DEFAULT_DISPLAY_NAME) -> dict[str, Any]:
    """The kernel.json content: ipykernel's own spec, started through the reactive launcher.

    Starting from ipykernel's ``get_kernel_dict()`` keeps whatever the installed ipykernel
    declares about itself: ipykernel 7.4 adds ``metadata.supported_encryption: ["curve"]``
    and ``kernel_protocol_version``, and without the former a server configured with
    ``transport_encryption="required"`` refuses to start the kernel (and "auto" starts it
    unencrypted). ``sys.executable`` (not ``python``) so the kernel runs in the environment
    that has ``reactive`` installed, whatever is first on the Jupyter server's PATH.
    """
    base: dict[str, Any] = {}
    try:
        from ipykernel.kernelspec import get_kernel_dict
    except ImportError:  # pragma: no cover - ipykernel is a dependency
        pass
    else:
        base = get_kernel_dict()
    return {
        **base,
        "argv": [sys.executable, "-m", LAUNCHER_MODULE, "-f", "{connection_file}"],
        "display_name": display_name,
        "language": "python",
        "metadata": {**base.get("metadata", {}), "debugger": True},
    }


def _write_spec_dir(directory: Path, display_name: str) -> None:
    """kernel.json plus ipykernel's logos, so the launcher shows the usual Python icon."""
    try:
        from ipykernel.kernelspec import RESOURCES
    except ImportError:  # pragma: no cover - ipykernel is a dependency; logos are optional
        RESOURCES = None
    if RESOURCES is not None and os.path.isdir(RESOURCES):
        for logo in Path(RESOURCES).iterdir():
            if logo.is_file() and logo.name.startswith("logo-"):
                shutil.copyfile(logo, directory / logo.name)
    text = json.dumps(kernel_json(display_name), indent=1) + "\n"
    (directory / "kernel.json").write_text(text, encoding="utf-8")


def install(
    name: str = DEFAULT_NAME,
    display_name: str = DEFAULT_DISPLAY_NAME,
    location: Location | None = None,
) -> Path:
    """Install (or replace) the kernelspec; returns the directory it now lives in."""
    name = check_name(name)
    location = location or Location.default()
    if location.prefix is not None and not location.prefix.strip():
        raise KernelspecError("--prefix needs a non-empty path", exit_code=2)
    ksm = _manager()
    with tempfile.TemporaryDirectory(prefix="reactive-kernelspec-") as tmp:
        source = Path(tmp) / name
        source.mkdir()
        _write_spec_dir(source, display_name)
        try:
            dest = ksm.install_kernel_spec(
                str(source), kernel_name=name, user=location.user, prefix=location.prefix
            )
        except OSError as exc:
            raise KernelspecError(f"cannot install into {location.kernels_dir()}: {exc}") from exc
    return Path(dest)


def uninstall(name: str = DEFAULT_NAME, location: Location | None = None) -> Path:
    """Remove the kernelspec from *that* location only; returns the directory removed.

    A default ``KernelSpecManager`` would remove whichever spec of that name comes first
    on Jupyter's search path, possibly one in another environment; limiting it to the one
    requested directory makes ``uninstall`` the inverse of ``install`` with the same flags.
    """
    name = check_name(name)
    location = location or Location.default()
    if location.prefix is not None and not location.prefix.strip():
        raise KernelspecError("--prefix needs a non-empty path", exit_code=2)
    kernels = location.kernels_dir()
    ksm = _manager(kernel_dirs=[str(kernels)])
    if name not in ksm.find_kernel_specs():
        raise KernelspecError(f"kernelspec {name!r} is not installed in {kernels}")
    try:
        return Path(ksm.remove_kernel_spec(name))
    except OSError as exc:
        raise KernelspecError(f"cannot remove {kernels / name}: {exc}") from exc


def on_search_path(spec_dir: Path) -> bool:
    """Whether Jupyter (with this environment's settings) will find a spec installed there."""
    kernels = spec_dir.parent.resolve()
    return any(Path(d).resolve() == kernels for d in _manager().kernel_dirs)
