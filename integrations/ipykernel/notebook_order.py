"""Notebook order from the saved .ipynb, where the kernel can find it.

Execute requests name a cell but not its place in the notebook.  Jupyter
Server tells a kernel which notebook it serves (``JPY_SESSION_NAME``, which
ipykernel exposes as ``__session__``), and nbformat 4.5 cell ids are the
``cellId`` JupyterLab sends, so the last saved file gives the true order --
including cells inserted above older ones.  Cells the file does not list yet
(unsaved) keep their first-execution order after the listed ones.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


class NotebookOrder:
    """Reads cell ids in order from the notebook file, re-reading only on change."""

    def __init__(self) -> None:
        self._path: Path | None = None
        self._stamp: tuple[float, int] | None = None
        self._ids: list[str] = []

    def locate(self, shell: Any) -> Path | None:
        name = shell.user_ns.get("__session__") or os.environ.get("JPY_SESSION_NAME")
        if not name or not str(name).endswith(".ipynb"):
            return None
        candidates = [Path(name), Path.cwd() / Path(name).name]
        for path in candidates:
            if path.is_file():
                return path
        return None

    def cell_ids(self, shell: Any) -> list[str]:
        path = self._path or self.locate(shell)
        if path is None:
            return []
        try:
            st = path.stat()
        except OSError:
            self._path = None
            return []
        stamp = (st.st_mtime, st.st_size)
        if path == self._path and stamp == self._stamp:
            return self._ids
        try:
            nb = json.loads(path.read_text(encoding="utf-8"))
            ids = [
                str(c["id"])
                for c in nb.get("cells", [])
                if c.get("cell_type") == "code" and c.get("id")
            ]
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            ids = []
        self._path, self._stamp, self._ids = path, stamp, ids
        return ids
