"""Start a plain ipykernel that loads the ``reactive`` extension: the "Python 3 (reactive)" kernel.

``python -m reactive.integrations.ipykernel.launcher -f CONN [IPKernelApp args]`` is
``python -m ipykernel_launcher`` plus one guarantee: ``reactive`` is among the extensions the
kernel loads at start-up. Every other argument (``--IPKernelApp.*``, ``--Reactive.<name>=``,
...) reaches the app's config untouched, so the kernel honours the same command line, config
files and profiles as a plain ipykernel.

Why a subclass rather than ``--IPKernelApp.extensions=['reactive']`` in kernel.json: a list
trait given on the command line *replaces* the list from ``ipython_kernel_config.py``, so the
user's own extensions would silently vanish; and a value put into ``IPKernelApp`` config can
be shadowed by the user's ``c.IPKernelApp.extra_extensions``. Appending to
``extra_extensions`` at the moment the app loads extensions, after every config source has
been applied, drops nothing and loads ``reactive`` after the extensions configured elsewhere.

ipykernel is imported only inside functions: like ``ipykernel_launcher``, the launcher first
takes the working directory off ``sys.path`` so that a notebook folder holding, say, a
``zmq.py`` or ``traitlets.py`` cannot shadow the kernel's own imports (IPython puts the
working directory back before user code runs).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ipykernel.kernelapp import IPKernelApp

#: The extension this kernel always loads (``reactive.load_ipython_extension``).
EXTENSION = "reactive"


@functools.cache
def kernel_app_class() -> type[IPKernelApp]:
    """``IPKernelApp`` that adds :data:`EXTENSION` to whatever extensions are configured.

    Built lazily so that importing this module never imports ipykernel (see the module
    docstring). The subclass keeps ``IPKernelApp``'s ``name``, so the user's
    ``ipython_kernel_config.py`` is still read, and ``IPKernelApp.instance()`` elsewhere in
    ipykernel returns this app (traitlets registers a singleton on every base class).
    """
    from ipykernel.kernelapp import IPKernelApp

    class ReactiveKernelApp(IPKernelApp):
        """An ipykernel app whose shell always has the ``reactive`` extension loaded."""

        def init_extensions(self) -> None:
            """Append the extension once config is final, keeping every configured one.

            IPython loads ``default_extensions + extensions + extra_extensions`` here; a
            failure to load one is logged as a warning (to the kernel's stderr, which the
            notebook user does not see) and the kernel starts anyway, exactly as for any
            other configured extension.
            """
            wanted = [*self.default_extensions, *self.extensions, *self.extra_extensions]
            if EXTENSION not in wanted:
                self.extra_extensions = [*self.extra_extensions, EXTENSION]
            super().init_extensions()

    return ReactiveKernelApp


def main(argv: Sequence[str] | None = None) -> None:
    """Initialise and run the kernel until it is shut down (``argv`` defaults to sys.argv)."""
    kernel_app_class().launch_instance(None if argv is None else list(argv))


def _drop_cwd_from_path() -> None:
    """Do what ``ipykernel_launcher`` does before importing anything heavy."""
    if sys.path and (sys.path[0] == "" or Path(sys.path[0]) == Path.cwd()):
        del sys.path[0]


if __name__ == "__main__":
    _drop_cwd_from_path()
    main()
