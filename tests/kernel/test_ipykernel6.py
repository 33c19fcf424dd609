"""The reactive kernel on ipykernel 6.29, the kernel of jupyterlab-stickyland's JupyterLab 3.

The kernel runs in the JupyterLab 3 environment the tests build (``tests/lab3env.py``),
started exactly as its "Python 3 (reactive)" kernelspec starts it (the launcher module);
the harness drives it as a page does. ipykernel 6.29 differs from 7.x where the runtime
reaches into it: ``do_execute`` is called with keywords only, the parent header and its
stdin identity are plain per-channel attributes (not ContextVars), shell messages are
handled strictly one at a time (a comm can only arrive between cells, or while a
*reactive* async cell awaits), and there are no subshells.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests import lab3env
from tests.kernel.harness import Notebook
from tests.kernel.test_reactive_kernel import lost_output, probe, runs, wait_text

pytestmark = pytest.mark.kernel

LAUNCHER = "reactive.integrations.ipykernel.launcher"


@pytest.fixture(scope="module")
def lab3_python() -> str:
    return str(lab3env.require())


@pytest.fixture
def nb6(lab3_python: str) -> Iterator[Notebook]:
    """A fresh reactive kernel on ipykernel 6.29, started like its kernelspec."""
    nb = Notebook(kernel_cmd=[lab3_python, "-m", LAUNCHER, "-f", "{connection_file}"]).start()
    try:
        yield nb
        assert lost_output(nb) == [], "output landed in no cell"
    finally:
        nb.shutdown()


def run_counts(nb: Notebook) -> dict[str, int]:
    """How often each cell ran, user and reactive runs together."""
    code = (
        "__import__('json').dumps({c.id: c.run_count for c in __import__("
        "'reactive.integrations.ipykernel.runtime', fromlist=['Runtime'])"
        ".Runtime.current.graph.cells.values()})"
    )
    value = probe(nb, code)
    assert isinstance(value, str)
    return json.loads(value)


def test_it_is_ipykernel_6_29_with_reactive_loaded(nb6: Notebook) -> None:
    nb = nb6
    nb.execute("v", "import ipykernel\nprint(ipykernel.__version__)")
    assert nb.text("v").startswith("6.29."), nb.text("v")
    assert probe(nb, "'reactive' in get_ipython().extension_manager.loaded") is True
    assert not nb.supports_subshells


def test_editing_upstream_updates_downstream(nb6: Notebook) -> None:
    nb = nb6
    nb.execute("a", "x = 1")
    nb.execute("b", "y = x * 10")
    nb.execute("u", "print('unrelated')")
    nb.execute("c", "print('y is', y)")
    assert nb.text("c") == "y is 10\n"
    nb.execute("a", "x = 2")
    wait_text(nb, "c", "y is 20\n")
    assert nb.text("u") == "unrelated\n"
    counts = run_counts(nb)
    assert counts == {"a": 2, "b": 2, "u": 1, "c": 2}, counts


def test_a_slider_update_reruns_its_dependent_cell_only(nb6: Notebook) -> None:
    nb = nb6
    nb.execute("w", "import ipywidgets as W\ns = W.IntSlider(value=1, max=50)\ns")
    (slider,) = nb.find_widget("IntSliderModel", cell_id="w")
    nb.execute("mid", "print('unrelated')")
    nb.execute("dep", "print('value', s.value)")
    for value in (7, 8):  # the second update proves the first one's idle came (no wedge)
        nb.wait_idle(nb.send_widget_update(slider, {"value": value}))
        wait_text(nb, "dep", f"value {value}\n")
    counts = runs(nb)
    assert counts.get("dep") == 2 and counts.get("mid", 0) == 0 and counts.get("w", 0) == 0


def test_an_update_during_a_reactive_async_cell_waits_for_it(nb6: Notebook) -> None:
    """On ipykernel 6 a comm is handled while a *reactive* async cell awaits (the batch is
    not a request); the cell must still see one value of the slider for its whole run."""
    nb = nb6
    nb.execute("w", "import ipywidgets as W\ns = W.IntSlider(value=0, max=50)\ns")
    (slider,) = nb.find_widget("IntSliderModel", cell_id="w")
    nb.execute(
        "slow",
        "import asyncio\nfirst = s.value\nprint('started', first, flush=True)\n"
        "await asyncio.sleep(0.4 if first else 0)\nprint('saw', first, s.value)",
    )
    nb.send_widget_update(slider, {"value": 1})
    nb.wait_for(lambda: "started 1" in nb.text("slow"), timeout=20, what="slow started on 1")
    nb.send_widget_update(slider, {"value": 2})  # arrives while the re-run awaits
    wait_text(nb, "slow", "started 2\nsaw 2 2\n")
    assert runs(nb).get("slow") == 2


def test_an_error_in_a_rerun_cell_shows_there_and_holds_its_descendants(nb6: Notebook) -> None:
    nb = nb6
    nb.execute("a", "x = 1")
    nb.execute("b", "y = 10 // (x - 2)")
    nb.execute("c", "print('y', y)")
    nb.execute("a", "x = 2")
    nb.wait_for(lambda: "ZeroDivisionError" in nb.text("b"), timeout=20, what="error in b")
    assert nb.text("c") == "y -10\n"
    assert runs(nb).get("c", 0) == 0, "must not run on half-updated inputs"
    nb.execute("st", "%reactive status")
    assert "y = 10 // (x - 2)" in nb.text("st")
    nb.execute("a", "x = 3")
    wait_text(nb, "c", "y 10\n")
    assert "ZeroDivisionError" not in nb.text("b")


def test_applying_a_held_update_keeps_the_requests_stdin_identity(nb6: Notebook) -> None:
    """ipykernel 6 keeps the identity that routes ``input()`` in a dict per channel."""
    nb = nb6
    nb.execute(
        "id",
        "from reactive.integrations.ipywidgets import _answering\n"
        "k = get_ipython().kernel\nbefore = k._parent_ident['shell']\n"
        "fake = {'header': {'msg_id': 'held-update', 'msg_type': 'comm_msg'},\n"
        "        'parent_header': {}, 'metadata': {}, 'content': {}}\n"
        "with _answering(k, fake):\n"
        "    inside = k.get_parent('shell')['header']['msg_id']\n"
        "after = k._parent_ident['shell']\n"
        "print(inside, after == before, bool(after))",
    )
    assert nb.text("id") == "held-update True True\n"
