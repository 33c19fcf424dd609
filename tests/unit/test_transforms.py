"""The per-source cache of IPython's cell transforms (integrations/ipykernel/transforms.py).

Judged against IPython's own ``transform_cell`` on a real shell: a cached result must be
exactly what IPython would produce now, whatever changed since it was stored.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

from integrations.ipykernel.transforms import CellTransforms

#: (source, cached): a cell magic becomes one line, which the prefilter then sees
SOURCES = [
    ("x = 1\ny = x + 1", True),
    ("%time z = 1\nprint(z)", True),
    ("files = !ls\nfiles", True),
    ("a = 1\nb?", True),
    ("    indented = 1\n    more = 2", True),
    (">>> x = 1\n>>> y = 2", True),
    ("%%timeit\nsum(range(10))", False),
    ("", False),
]


@pytest.fixture
def shell() -> Iterator[InteractiveShell]:
    cfg = Config()
    cfg.HistoryManager.enabled = False
    sh = InteractiveShell(config=cfg)
    yield sh
    sh.input_transformers_post.clear()


@pytest.mark.parametrize(("source", "cached"), SOURCES)
def test_a_cached_transform_is_what_ipython_gives(
    shell: InteractiveShell, source: str, cached: bool
) -> None:
    t = CellTransforms(shell)
    first, second = t(source), t(source)
    assert first == second == shell.transform_cell(source)
    assert t.hits == int(cached)


def test_single_line_cells_go_through_the_prefilter_every_time(shell: InteractiveShell) -> None:
    # with autocall on, "f 3" becomes a call only while f is callable: the namespace decides
    shell.run_line_magic("autocall", "2")
    t = CellTransforms(shell)
    shell.user_ns["f"] = len
    called = t("f 3")
    shell.user_ns["f"] = 7
    assert called != t("f 3")
    assert t("f 3") == shell.transform_cell("f 3")
    assert t.hits == 0


def test_a_one_line_cell_runs_the_static_transforms_once_a_call_after_the_first(
    shell: InteractiveShell,
) -> None:
    mgr = shell.input_transformer_manager
    expected = shell.transform_cell("x = 1")
    calls: list[str] = []
    original = mgr.transform_cell

    def counted(cell: str) -> str:
        calls.append(cell)
        return original(cell)

    mgr.transform_cell = counted  # type: ignore[method-assign]
    t = CellTransforms(shell)
    got = [t("x = 1") for _ in range(3)]
    assert got == [expected] * 3
    # the first call learns the cell is one line (ours, then IPython's own pass); later
    # calls leave the static transforms to IPython's pass alone
    assert len(calls) == 2 + 1 + 1


def test_a_transform_registered_later_is_applied_to_cached_sources(
    shell: InteractiveShell,
) -> None:
    t = CellTransforms(shell)
    source = "x = 1\ny = 2"
    t(source)

    def upper(lines: list[str]) -> list[str]:
        return [ln.upper() for ln in lines]

    shell.input_transformer_manager.cleanup_transforms.append(upper)
    try:
        assert t(source) == "X = 1\nY = 2\n" == shell.transform_cell(source)
    finally:
        shell.input_transformer_manager.cleanup_transforms.remove(upper)
    assert t(source) == "x = 1\ny = 2\n"


def test_post_transformers_switch_the_cache_off(shell: InteractiveShell) -> None:
    t = CellTransforms(shell)
    source = "x = 1\ny = 2"
    t(source)
    shell.input_transformers_post.append(lambda lines: [*lines, "z = 3\n"])
    assert t(source) == "x = 1\ny = 2\nz = 3\n" == shell.transform_cell(source)
    assert t.hits == 0


def test_memory_is_bounded(shell: InteractiveShell) -> None:
    t = CellTransforms(shell, capacity=4)
    for i in range(10):
        t(f"x = {i}\ny = x")
    t("x = 0\ny = x")  # long evicted: a miss
    t("x = 9\ny = x")  # recent: a hit
    assert t.hits == 1
