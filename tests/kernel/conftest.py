"""Fixtures that hand kernel tests a started ``Notebook`` and always shut its kernel down.

A kernel start costs 1-2 s, so the default fixture is module-scoped: tests in one module
share a kernel and keep apart by using their own cell ids and variable names, and by
reading the log only after ``nb.mark()``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.kernel.harness import Notebook


@pytest.fixture(scope="module")
def notebook() -> Iterator[Notebook]:
    """One plain ipykernel (no reactive code) per test module."""
    nb = Notebook().start()
    try:
        yield nb
    finally:
        nb.shutdown()


@pytest.fixture
def notebook_factory() -> Iterator[Callable[..., Notebook]]:
    """Start kernels with custom arguments (``Notebook(**kwargs)``); all stop at teardown."""
    started: list[Notebook] = []

    def make(**kwargs: Any) -> Notebook:
        nb = Notebook(**kwargs)
        started.append(nb)
        return nb.start()

    try:
        yield make
    finally:
        for nb in started:
            nb.shutdown()
