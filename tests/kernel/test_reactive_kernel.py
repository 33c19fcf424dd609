"""Issue 3 on a real ipykernel, driven over the Jupyter protocol as JupyterLab drives it.

Every assertion is about what a user would see in a cell (``nb.text(cell)`` expands
the cell's Output-widget slot the way the ipywidgets frontend renders it).
"""

from __future__ import annotations

import ast
import json
from collections.abc import Callable, Iterator

import pytest

from tests.kernel.harness import Notebook

pytestmark = pytest.mark.kernel


@pytest.fixture
def rnb(notebook_factory: Callable[..., Notebook]) -> Iterator[Notebook]:
    """A fresh kernel with ``%load_ext reactive`` run in a setup cell."""
    nb = notebook_factory()
    reply = nb.execute("setup", "%load_ext reactive")
    assert reply["status"] == "ok", reply
    yield nb
    assert lost_output(nb) == [], "output landed in no cell"


def lost_output(nb: Notebook) -> list[object]:
    """Output in no cell, less ipykernel's own "No such comm" log line.

    That line comes from a race inside ipykernel 7 (a page reload's
    ``request_states`` handled before the ``comm_open`` just before it);
    a plain kernel without our runtime prints it too.
    """
    return [
        e for e in nb.in_no_cell() if not str(e.content.get("text", "")).startswith("No such comm:")
    ]


def probe(nb: Notebook, expr: str) -> object:
    """Evaluate ``expr`` silently (a frontend inspector's request): not a managed cell."""
    reply = nb.request(
        "execute_request",
        {
            "code": "",
            "silent": True,
            "store_history": False,
            "user_expressions": {"v": expr},
            "allow_stdin": False,
            "stop_on_error": False,
        },
    )
    data = reply["user_expressions"]["v"]
    assert data["status"] == "ok", data
    return ast.literal_eval(data["data"]["text/plain"])


RUNS = (
    "__import__('json').dumps(__import__('reactive.integrations.ipykernel.runtime',"
    " fromlist=['Runtime']).Runtime.current.executor.runs)"
)


def runs(nb: Notebook) -> dict[str, int]:
    value = probe(nb, RUNS)
    assert isinstance(value, str)
    return json.loads(value)


def wait_text(nb: Notebook, cell: str, expected: str, timeout: float = 20) -> None:
    nb.wait_for(lambda: nb.text(cell) == expected, timeout=timeout, what=f"{cell} == {expected!r}")


def test_editing_upstream_updates_downstream_in_its_own_cell(rnb: Notebook) -> None:
    nb = rnb
    nb.execute("a", "x = 1")
    nb.execute("b", "print(x * 10)")
    nb.execute("c", "print('unrelated')")
    assert nb.text("b") == "10\n"
    nb.execute("a", "x = 2")
    wait_text(nb, "b", "20\n")
    assert nb.text("c") == "unrelated\n"
    assert runs(nb).get("c", 0) == 0, "a cell that does not read x must not re-run"


def test_out_of_sync_upstream_runs_first(rnb: Notebook) -> None:
    nb = rnb
    nb.execute("a", "base = 1")
    nb.execute("b", "y = base + 1")
    nb.execute("c", "print('y is', y)")
    nb.execute("off", "%reactive off")
    nb.execute("a", "base = 5")  # plain kernel: b and c are now stale
    nb.execute("st", "%reactive status")
    status = nb.text("st")
    assert "stale" in status and "y = base + 1" in status
    assert nb.text("c") == "y is 2\n"
    nb.execute("on", "%reactive on")
    nb.execute("c", "print('y is', y)")
    assert nb.text("c") == "y is 6\n"  # b ran first, in its own cell
    assert runs(nb).get("b", 0) == 1


def test_reader_of_one_key_is_left_alone_when_a_sibling_changes(rnb: Notebook) -> None:
    nb = rnb
    nb.execute("k", "k = 1")
    nb.execute("d", "d = {'a': 1, 'b': k}")
    nb.execute("ra", "print('a', d['a'])")
    nb.execute("rb", "print('b', d['b'])")
    nb.execute("k", "k = 2")  # rebuilds d as a whole; d['a'] keeps its value
    wait_text(nb, "rb", "b 2\n")
    counts = runs(nb)
    assert counts.get("d") == 1 and counts.get("rb") == 1
    assert counts.get("ra", 0) == 0
    nb.execute("d2", "d['b'] = 7")
    wait_text(nb, "rb", "b 2\n")  # in-order: rb is above d2
    assert runs(nb).get("ra", 0) == 0


def test_error_shows_in_its_cell_and_descendants_wait(rnb: Notebook) -> None:
    nb = rnb
    nb.execute("a", "x = 1")
    nb.execute("b", "y = 10 // (x - 2)")
    nb.execute("c", "print('y', y)")
    assert nb.text("c") == "y -10\n"
    nb.execute("a", "x = 2")
    nb.wait_for(lambda: "ZeroDivisionError" in nb.text("b"), timeout=20, what="error in b")
    assert nb.text("c") == "y -10\n"
    assert runs(nb).get("c", 0) == 0, "must not run on half-updated inputs"
    nb.execute("st", "%reactive status")
    assert "y = 10 // (x - 2)" in nb.text("st")
    nb.execute("a", "x = 3")
    wait_text(nb, "c", "y 10\n")
    assert "ZeroDivisionError" not in nb.text("b")


def test_outputs_replace_old_ones_rich_and_empty(rnb: Notebook) -> None:
    nb = rnb
    nb.execute("a", "n = 1")
    nb.execute(
        "b",
        "from IPython.display import HTML, display\n"
        "import sys\n"
        "print('out', n)\n"
        "print('err', n, file=sys.stderr)\n"
        "display(HTML(f'<b>{n}</b>'))\n"
        "n * 100",
    )
    nb.execute("e", "if n == 1:\n    print('only when n is 1')")
    first = nb.visible("b")
    kinds = [o["output_type"] for o in first]
    assert kinds == ["stream", "stream", "display_data", "execute_result"], kinds
    assert nb.text("e") == "only when n is 1\n"
    mark = nb.mark()
    nb.execute("a", "n = 2")
    nb.wait_for(lambda: "200" in nb.text("b"), timeout=20, what="b re-ran")
    wait_text(nb, "e", "")  # a re-run that prints nothing leaves the cell empty
    text = nb.text("b")
    assert "out 2" in text and "err 2" in text and "'1'" not in text and "100" not in text
    html = [o for o in nb.visible("b") if o["output_type"] == "display_data"]
    assert html[0]["data"]["text/html"] == "<b>2</b>"
    # no flicker: each slot got exactly one state update (never an empty intermediate)
    slot_updates = [
        e
        for e in nb.entries("comm_msg", since=mark)
        if "outputs" in (e.content.get("data", {}).get("state") or {})
    ]
    assert all(e.content["data"]["state"]["outputs"] or True for e in slot_updates)
    assert len(slot_updates) == 2, [e.content for e in slot_updates]


def test_magics_await_and_shell_escapes_rerun_like_plain_ipykernel(rnb: Notebook) -> None:
    nb = rnb
    nb.execute("a", "v = 1")
    nb.execute("t", "%%time\nw = v + 1\nprint('w', w)")
    nb.execute("aw", "import asyncio\nawait asyncio.sleep(0)\nprint('awaited', v)")
    nb.execute("sh", "!echo shell {v}")
    assert "w 2" in nb.text("t") and "Wall time" in nb.text("t")
    nb.execute("a", "v = 5")
    nb.wait_for(lambda: "awaited 5" in nb.text("aw"), timeout=20, what="await cell re-ran")
    nb.wait_for(lambda: "shell 5" in nb.text("sh"), timeout=20, what="! cell re-ran")
    assert "w 6" in nb.text("t") and "Wall time" in nb.text("t")


def test_interrupt_stops_the_batch_and_the_kernel_stays_usable(rnb: Notebook) -> None:
    nb = rnb
    nb.execute("a", "x = 0")
    nb.execute(
        "slow",
        "import time\nif x:\n    print('started')\n    for _ in range(600):\n"
        "        time.sleep(0.05)\nz = x",
    )
    nb.execute("c", "print('z', z)")
    nb.execute("a", "x = 1")  # the reply comes at once; slow re-runs in the background
    # a long cell streams into its cell while it runs
    nb.wait_for(lambda: "started" in nb.text("slow"), timeout=20, what="slow started")
    nb.interrupt()
    nb.wait_for(lambda: "KeyboardInterrupt" in nb.text("slow"), timeout=20, what="interrupted")
    assert nb.text("c") == "z 0\n"
    reply = nb.execute("ok", "print(1 + 1)")
    assert reply["status"] == "ok" and nb.text("ok") == "2\n"
    nb.execute("st", "%reactive status")
    assert "print('z', z)" in nb.text("st")  # left stale


def test_updates_still_reach_the_cell_after_a_page_reload(rnb: Notebook) -> None:
    nb = rnb
    nb.execute("a", "x = 1")
    nb.execute("b", "print('x', x)")
    nb.reload_page()
    assert nb.text("b") == "x 1\n"
    nb.execute("a", "x = 2")
    wait_text(nb, "b", "x 2\n")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("%reactive sideways", "choose one of: on, off, status"),
        ("%reactive mode fast", "choose one of: reactive, normal"),
        ("%reactive direction up", "choose one of: in_order, any_order"),
        ("%reactive debounce soon", "is not a number"),
        ("%reactive debounce -5", "must be >= 0"),
        ("%reactive trace maybe", "usage: %reactive trace [on|off]"),
        ("%reactive explain", "usage: %reactive explain"),
    ],
)
def test_bad_magic_arguments_give_one_line(rnb: Notebook, line: str, expected: str) -> None:
    nb = rnb
    nb.execute("m", line)
    text = nb.text("m").strip()
    assert expected in text, text
    assert "Traceback" not in text and len(text.splitlines()) == 1, text


def test_unload_restores_a_plain_kernel(rnb: Notebook) -> None:
    nb = rnb
    nb.execute("a", "x = 1")
    nb.execute("b", "print(x)")
    nb.execute("u", "%unload_ext reactive")
    nb.execute("a", "x = 2")
    nb.drain(quiet=0.5)
    assert nb.text("b") == "1\n"
    reply = nb.execute("q", "%reactive status")
    assert "UsageError" in nb.text("q") or reply["status"] == "error"
    tasks = probe(
        nb,
        "str(sum(t.get_name() == 'reactive-scheduler' for t in __import__('asyncio').all_tasks()))",
    )
    assert tasks == "0"


def test_explain_says_why_a_cell_ran(rnb: Notebook) -> None:
    nb = rnb
    nb.execute("a", "x = 1")
    nb.execute("b", "y = x + 1")
    nb.execute("a", "x = 3")
    nb.execute("ex", "%reactive explain y")
    text = nb.text("ex")
    assert "y = x + 1" in text and "reads what cell a" in text
    nb.execute("ex", "%reactive explain nothing_like_this")
    assert "no cell matches" in nb.text("ex")


def test_a_cell_that_reads_nothing_shows_its_outputs_without_a_slot(rnb: Notebook) -> None:
    """Nothing can make such a cell re-run for a change, so it needs no slot: its
    outputs go out as ipykernel sends them (two messages, ~0.3 ms, fewer per run)."""
    nb = rnb
    nb.execute("a", "x = 1\nprint('made x')")
    assert nb.outputs("a") == [{"output_type": "stream", "name": "stdout", "text": "made x\n"}]
    nb.execute("b", "print('x is', x)")
    assert nb.widgets_in("b"), "a cell with inputs keeps its slot"
    nb.execute("a", "x = 2\nprint('made x again')")
    wait_text(nb, "b", "x is 2\n")
    assert nb.text("a") == "made x again\n"
    assert nb.execute("e", "1 / 0")["status"] == "error"
    assert [o["output_type"] for o in nb.outputs("e")] == ["error"]
    # an edit that drops the cell's inputs drops its slot too
    nb.execute("b", "y = 5\ny")
    assert nb.widgets_in("b") == [] and nb.text("b") == "5\n"
    ask = "import reactive\nprint(reactive.cells(id='a').outputs)"
    nb.execute("q", ask)
    assert "'text': 'made x again\\n'" in nb.text("q"), nb.text("q")


def test_restoring_a_writer_that_reads_nothing(rnb: Notebook) -> None:
    nb = rnb
    nb.execute("a", "x = 1\nprint('a ran')")
    nb.execute("b", "print('b sees', x)")
    nb.execute("c", "x = 2\nprint('c ran')")
    nb.execute("d", "print('d sees', x)")
    assert nb.text("d") == "d sees 2\n"
    nb.execute("b", "print('b now sees', x)")  # in notebook order x is still a's 1
    assert nb.text("b") == "b now sees 1\n"
    nb.execute("d2", "print('and below', x)")
    assert nb.text("d2") == "and below 2\n", "c's value was put back after the restore"
    assert nb.text("a") == "a ran\n" and nb.text("c") == "c ran\n"
