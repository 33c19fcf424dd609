"""mercury apps on the reactive kernel, driven with mercury's own request pattern.

``MercuryPage`` sends what mercury 3.2.13's app page sends (read from its frontend bundle,
HOSTS.md "mercury 3.2.13"): on load a silent ``url_params.sync`` action, then every code
cell top to bottom; after a widget's ``echo_update`` an ``execute_request`` for each code
cell below the widget's cell, one after another (the next one when the previous reply
and idle arrived), each with ``metadata = {"trusted": True, "cellId": id, "mercury":
{"kind": "cell", "cell_id": id}}``, and finally a silent ``widgets.clear`` action.
mercury finds a widget's cell by the cell whose outputs carry its
``application/mercury+json`` display.  It sends the chain at once after the echo here,
not 10 ms later, which only makes the race with the runtime's own batch harder.

What the page shows for a cell is what the iopub messages of its latest request say
(mercury keeps old outputs until the first visible output of the new request; every
answer here sends one, so the harness's clear-on-send model shows the same).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.kernel.harness import Cell, Notebook, Reply, _Future
from tests.kernel.test_examples import LAUNCHER, code_cells, png
from tests.kernel.test_reactive_kernel import lost_output, probe

pytestmark = pytest.mark.kernel

MERCURY_MIME = "application/mercury+json"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
RUNTIME = "__import__('reactive.integrations.ipykernel.runtime', fromlist=['R']).Runtime.current"
#: every cell's run count as the graph keeps it: the user's runs and reactive ones
GRAPH_RUNS = (
    f"__import__('json').dumps({{c.id: c.run_count for c in {RUNTIME}.graph.cells.values()}})"
)


class MercuryPage:
    """The requests of one mercury app page, as the kernel receives them."""

    def __init__(self, nb: Notebook, cells: list[tuple[str, str]]) -> None:
        self.nb = nb
        self.cells = cells
        #: (cell id, reply) of every cell request, in order
        self.requests: list[tuple[str, Reply]] = []

    def _execute(self, cell_id: str, code: str, metadata: dict[str, Any]) -> Reply:
        """One execute_request for a cell, tracked by the page model like the harness's own.

        ``Notebook.execute`` adds JupyterLab's metadata; mercury's differs, so the message
        is built here with the harness's bookkeeping (cell output area, live request).
        """
        nb = self.nb
        nb._pump_pending()
        cell = nb.cells.setdefault(cell_id, Cell(cell_id))
        content = {
            "code": code,
            "silent": False,
            "store_history": True,
            "user_expressions": {},
            "allow_stdin": False,  # mercury's server forces it off
            "stop_on_error": True,
        }
        msg = nb._new_msg("execute_request", content, metadata=metadata)
        mid = str(msg["header"]["msg_id"])
        nb._dispose_cell_future(cell)
        cell.area.clear()
        cell.execution_count = None
        cell.reply = None
        cell.request_id = mid
        nb._futures[mid] = _Future(mid, "execute", cell_id=cell_id)
        nb._request_cell[mid] = cell_id
        nb._send("shell", msg)
        reply = nb.wait_reply(mid, timeout=60, idle=True)
        self.requests.append((cell_id, reply))
        return reply

    def cell(self, cell_id: str, *, first_run: bool = False) -> Reply:
        code = dict(self.cells)[cell_id]
        merc = {"kind": "cell", "cell_id": cell_id}
        if first_run:
            meta = {
                "trusted": False,
                "deletedCells": [],
                "recordTiming": False,
                "cellId": cell_id,
                "mercury": merc,
            }
        else:
            meta = {"trusted": True, "cellId": cell_id, "mercury": merc}
        return self._execute(cell_id, code, meta)

    def action(self, name: str, code: str, payload: dict[str, Any] | None = None) -> Reply:
        """A silent mercury action (the code its lab extension sends; no cell)."""
        meta = {"mercury": {"kind": "action", "name": name, "payload": payload or {}}}
        msg = self.nb._new_msg(
            "execute_request",
            {
                "code": code,
                "silent": True,
                "store_history": False,
                "user_expressions": {},
                "allow_stdin": False,
                "stop_on_error": False,
            },
            metadata=meta,
        )
        mid = self.nb._send("shell", msg)
        return self.nb.wait_reply(mid, timeout=30, idle=True)

    def load(self) -> None:
        """What the page does on open: sync URL parameters, then run every cell."""
        self.action(
            "url_params.sync",
            "from mercury.url_params import set_runtime_url_params\nset_runtime_url_params({})",
            {"params": {}},
        )
        self._chain([cid for cid, _ in self.cells], first_run=True)

    def _chain(
        self,
        cell_ids: list[str],
        *,
        first_run: bool = False,
        between: Callable[[str], None] | None = None,
    ) -> None:
        for cid in cell_ids:
            reply = self.cell(cid, first_run=first_run)
            if reply.get("status") == "error" and reply.get("ename") == "StopExecution":
                break  # mercury ends the chain here
            if between is not None:
                between(cid)

    def widget_cell(self, comm_id: str) -> str:
        """The cell mercury re-runs below: the one whose outputs show the widget."""
        for cid, _ in self.cells:
            if cid in self.nb.cells and any(
                (o.get("data") or {}).get(MERCURY_MIME, {}).get("model_id") == comm_id
                for o in self.nb.outputs(cid)
            ):
                return cid
        raise AssertionError(f"no cell shows widget {comm_id} with a mercury placement")

    def change(self, comm_id: str, state: dict[str, Any]) -> list[str]:
        """A user changes a widget: its update, the echo, mercury's chain, widgets.clear.

        Returns the cells mercury asked for.
        """
        home = self.widget_cell(comm_id)
        self.update(comm_id, state)
        return self.rerun_below(home)

    def update(self, comm_id: str, state: dict[str, Any]) -> None:
        """The widget's update as the page sends it, until its echo (mercury's trigger)."""
        nb = self.nb
        update = nb.send_widget_update(comm_id, state)
        nb.wait_for(
            lambda: any(e.parent_id == update for e in nb.echo_updates(comm_id)),
            timeout=30,
            what=f"echo_update of {comm_id}",
        )

    def rerun_below(self, home: str, *, between: Callable[[str], None] | None = None) -> list[str]:
        """mercury's re-run chain for a widget in cell ``home``; returns the cells asked for.

        ``between(cell)`` runs after each cell's request (a user acting mid-chain).
        """
        ids = [cid for cid, _ in self.cells]
        start = len(self.requests)
        self._chain(ids[ids.index(home) + 1 :], between=between)
        self.action(
            "widgets.clear",
            "\ntry:\n    from mercury.manager import WidgetsManager\nexcept Exception:\n"
            "    WidgetsManager = None\nif WidgetsManager is not None:\n"
            "    WidgetsManager.clear()\n",
        )
        return [cid for cid, _ in self.requests[start:]]


def graph_runs(nb: Notebook) -> dict[str, int]:
    value = probe(nb, GRAPH_RUNS)
    assert isinstance(value, str)
    return json.loads(value)


def settle(nb: Notebook) -> None:
    """Wait until the runtime has nothing queued or running (awaited in the kernel)."""
    reply = nb.request(
        "execute_request",
        {
            "code": f"await {RUNTIME}.scheduler.quiescent(60)",
            "silent": True,
            "store_history": False,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": False,
        },
        timeout=90,
    )
    assert reply["status"] == "ok", reply


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {cid: after.get(cid, 0) - before.get(cid, 0) for cid in after}


def mercury_widget(nb: Notebook, kind: str, label: str) -> str:
    found = nb.find_widget(
        predicate=lambda s: s.get("_anywidget_id") == f"mercury.{kind}" and s.get("label") == label
    )
    assert len(found) == 1, (kind, label, found)
    return found[0]


def shows_slot(nb: Notebook, cell_id: str) -> bool:
    return any("reactive_slot" in (o.get("metadata") or {}) for o in nb.outputs(cell_id))


def answered_visibly(nb: Notebook, reply: Reply) -> bool:
    """mercury replaces a cell's outputs only when its request sends an output (or a clear)."""
    kinds = {"stream", "display_data", "execute_result", "error", "clear_output"}
    return any(e.msg_type in kinds for e in nb.entries(parent_id=reply.msg_id))


@pytest.fixture
def kernel(notebook_factory: Callable[..., Notebook]) -> Iterator[Notebook]:
    """The reactive kernel, started as the "Python 3 (reactive)" kernelspec starts it."""
    nb = notebook_factory(kernel_cmd=LAUNCHER)
    yield nb
    assert lost_output(nb) == [], "output landed in no cell"


# ------------------------------------------------------------------------------------


def test_mercury_app_runs_each_dependent_once_per_change(kernel: Notebook) -> None:
    """examples/dashboards/mercury_app.ipynb with mercury's load and re-run chain."""
    nb = kernel
    app = MercuryPage(nb, code_cells("mercury_app.ipynb"))
    app.load()
    assert all(r["status"] == "ok" for _, r in app.requests), app.requests
    # mercury places a widget by the display in the cell's own outputs: no slot around it
    for cid in ("points", "shape", "noise"):
        views = [o for o in nb.outputs(cid) if MERCURY_MIME in (o.get("data") or {})]
        assert len(views) == 1 and WIDGET_MIME in views[0]["data"], nb.outputs(cid)
    assert not any(shows_slot(nb, cid) for cid, _ in app.cells)
    assert "data: 200 points, sine, noise 30% (run #1)" in nb.text("data")
    assert "(run #1)" in nb.text("unrelated")
    plot_before = png(nb, "plot")
    assert len(plot_before) == 1
    before = graph_runs(nb)

    points = mercury_widget(nb, "slider.SliderWidget", "Points")
    asked = app.change(points, {"value": 400})
    assert asked == ["shape", "noise", "unrelated", "data", "summary", "plot"]
    settle(nb)
    ran = delta(before, graph_runs(nb))
    assert ran == {
        "setup": 0,
        "points": 0,
        "shape": 0,
        "noise": 0,
        "unrelated": 0,
        "data": 1,
        "summary": 1,
        "plot": 1,
    }
    for cid, reply in app.requests[-len(asked) :]:
        assert reply["status"] == "ok", (cid, reply)
        assert answered_visibly(nb, reply), cid
    assert "data: 400 points, sine, noise 30% (run #2)" in nb.text("data")
    assert "(run #2)" in nb.text("summary")
    assert "(run #1)" in nb.text("unrelated")
    plot_after = png(nb, "plot")
    assert len(plot_after) == 1 and plot_after != plot_before
    # the widget cells still carry their widgets for mercury's sidebar
    assert any(MERCURY_MIME in (o.get("data") or {}) for o in nb.outputs("shape"))

    before = graph_runs(nb)
    shape = mercury_widget(nb, "select.SelectWidget", "Shape")
    asked = app.change(shape, {"value": "square"})
    assert asked == ["noise", "unrelated", "data", "summary", "plot"]
    settle(nb)
    ran = delta(before, graph_runs(nb))
    assert {c: n for c, n in ran.items() if n} == {"data": 1, "summary": 1, "plot": 1}
    assert "data: 400 points, square, noise 30% (run #3)" in nb.text("data")
    assert "(run #1)" in nb.text("unrelated")
    assert not any(shows_slot(nb, cid) for cid, _ in app.cells)


SLOW_APP = [
    (
        "setup",
        "import itertools, time\nimport mercury as mr\n"
        "RUNS = {n: itertools.count(1) for n in 'ismdf'}",
    ),
    ("widget", 's = mr.Slider(label="n", value=1, min=0, max=100)'),
    ("indep", "print(f\"indep run #{next(RUNS['i'])}\")"),
    ("slow", "time.sleep(0.6)\na = s.value * 2\nprint(f\"slow a={a} run #{next(RUNS['s'])}\")"),
    ("middle", "print(f\"middle run #{next(RUNS['m'])}\")"),
    ("down", "b = a + 1\nprint(f\"down b={b} run #{next(RUNS['d'])}\")"),
    ("fails", "print(f\"fails run #{next(RUNS['f'])}\")\n1 / 0"),
]


def test_chain_racing_a_slow_batch_runs_nothing_twice(kernel: Notebook) -> None:
    """mercury's chain arrives while the runtime's batch is still in its slow cell.

    Each request waits for the running cell; dependents run once (by the batch or by the
    request, never both), independent cells and a failed one do not run, and the failed
    cell still answers with its error, as a run of it would.
    """
    nb = kernel
    app = MercuryPage(nb, SLOW_APP)
    app.load()
    assert app.requests[-1][1]["ename"] == "ZeroDivisionError"
    before = graph_runs(nb)
    widget = mercury_widget(nb, "slider.SliderWidget", "n")
    asked = app.change(widget, {"value": 5})
    assert asked == ["indep", "slow", "middle", "down", "fails"]
    settle(nb)
    ran = {c: n for c, n in delta(before, graph_runs(nb)).items() if n}
    assert ran == {"slow": 1, "down": 1}
    assert nb.text("slow") == "slow a=10 run #2\n"
    assert nb.text("down") == "down b=11 run #2\n"
    assert nb.text("indep") == "indep run #1\n"
    assert nb.text("middle") == "middle run #1\n"
    failed = dict(app.requests[-len(asked) :])["fails"]
    assert failed["status"] == "error" and failed["ename"] == "ZeroDivisionError"
    assert nb.text("fails") == "fails run #1\nZeroDivisionError: division by zero\n"


def test_a_change_during_the_chain(kernel: Notebook) -> None:
    """The user moves the slider again while mercury's chain runs.

    mercury queues a second chain for after the first (its page takes no widget input
    meanwhile, but the update itself reaches the kernel).  Each dependent runs at most
    once per value, independent cells never, and the page ends on the newest value.
    """
    nb = kernel
    app = MercuryPage(nb, SLOW_APP)
    app.load()
    before = graph_runs(nb)
    widget = mercury_widget(nb, "slider.SliderWidget", "n")
    app.update(widget, {"value": 5})

    def move_again(cell: str) -> None:
        if cell == "indep":
            app.update(widget, {"value": 7})

    app.rerun_below("widget", between=move_again)
    app.rerun_below("widget")  # the chain mercury queued for the second change
    settle(nb)
    ran = {c: n for c, n in delta(before, graph_runs(nb)).items() if n}
    assert set(ran) == {"slow", "down"} and max(ran.values()) <= 2, ran
    assert nb.text("slow") == f"slow a=14 run #{1 + ran['slow']}\n"
    assert nb.text("down") == f"down b=15 run #{1 + ran['down']}\n"
    assert nb.text("indep") == "indep run #1\n"


BUTTON_APP = [
    (
        "setup",
        "import itertools\nimport mercury as mr\nRUNS = {n: itertools.count(1) for n in 'cpk'}",
    ),
    ("k", 'k = mr.Slider(label="k", value=1, min=0, max=10)'),
    ("button", 'btn = mr.Button(label="Go")'),
    ("clicks", "print(f\"clicks={btn.n_clicks} run #{next(RUNS['c'])}\")"),
    ("pressed", "print(f\"pressed={btn.value} run #{next(RUNS['p'])}\")"),
    ("kview", "print(f\"k={k.value} run #{next(RUNS['k'])}\")"),
]


def test_button_clicks_and_mercurys_reset(kernel: Notebook) -> None:
    """A mercury Button is a source through ``n_clicks`` and ``value``.

    After each chain mercury's ``widgets.clear`` sets ``btn.value`` back to False in the
    kernel, with no update from the page: the graph cannot see it, so the next chain that
    asks for a cell that read ``btn.value`` runs it (as mercury would), while a cell that
    read only ``n_clicks`` still answers without running.
    """
    nb = kernel
    app = MercuryPage(nb, BUTTON_APP)
    app.load()
    assert nb.text("clicks") == "clicks=0 run #1\n"
    btn = mercury_widget(nb, "button.ButtonWidget", "Go")
    before = graph_runs(nb)
    state = {"n_clicks": 1, "last_clicked_at": "2026-01-01T00:00:00.000Z", "value": True}
    assert app.change(btn, state) == ["clicks", "pressed", "kview"]
    settle(nb)
    assert {c: n for c, n in delta(before, graph_runs(nb)).items() if n} == {
        "clicks": 1,
        "pressed": 1,
    }
    assert nb.text("clicks") == "clicks=1 run #2\n"
    assert nb.text("pressed") == "pressed=True run #2\n"
    assert nb.text("kview") == "k=1 run #1\n"
    assert probe(nb, "btn.value") is False  # mercury's widgets.clear

    before = graph_runs(nb)
    k = mercury_widget(nb, "slider.SliderWidget", "k")
    assert app.change(k, {"value": 3}) == ["button", "clicks", "pressed", "kview"]
    settle(nb)
    assert {c: n for c, n in delta(before, graph_runs(nb)).items() if n} == {
        "pressed": 1,
        "kview": 1,
    }
    assert nb.text("clicks") == "clicks=1 run #2\n"
    assert nb.text("pressed") == "pressed=False run #3\n"
    assert nb.text("kview") == "k=3 run #2\n"


WIDGET_FROM_WIDGET = [
    ("setup", "import mercury as mr"),
    ("shape", 'shape = mr.Select(label="Shape", value="a", choices=["a", "b"])'),
    ("bins", 'bins = mr.Slider(label=f"Bins for {shape.value}", value=5, min=1, max=20)'),
    ("use", 'print(f"{shape.value}: {bins.value} bins")'),
]


def test_widgets_made_by_a_reactive_rerun_belong_to_their_cell(kernel: Notebook) -> None:
    """A re-run answers no request, yet the widget it makes names its own cell.

    mercury stamps widgets with the cell that displayed them (``cell_id``,
    ``source_cell_id``) from the request's ``cellId``; the runtime's re-run of ``bins``
    (the Select changed its label, so mercury makes a new Slider) runs inside
    ``source_cell_context("bins")``.
    """
    nb = kernel
    app = MercuryPage(nb, WIDGET_FROM_WIDGET)
    app.load()
    old = mercury_widget(nb, "slider.SliderWidget", "Bins for a")
    assert nb.widget_state(old)["cell_id"] == "bins"
    shape = mercury_widget(nb, "select.SelectWidget", "Shape")
    update = nb.send_widget_update(shape, {"value": "b"})
    nb.wait_idle(update, timeout=30)
    settle(nb)  # the runtime's batch re-ran bins and use; mercury's chain comes after
    new = mercury_widget(nb, "slider.SliderWidget", "Bins for b")
    state = nb.widget_state(new)
    assert (state["cell_id"], state["source_cell_id"]) == ("bins", "bins")
    before = graph_runs(nb)
    assert app.rerun_below("shape") == ["bins", "use"]
    settle(nb)
    assert {c: n for c, n in delta(before, graph_runs(nb)).items() if n} == {}
    shown = [o["data"][MERCURY_MIME]["model_id"] for o in nb.outputs("bins")]
    assert shown == [new]
    assert nb.text("use") == "b: 5 bins\n"


def test_mercury_widgets_are_sources_in_jupyterlab_too(kernel: Notebook) -> None:
    """Without mercury's page (JupyterLab requests) a mercury slider is a widget source."""
    nb = kernel
    nb.execute("m-setup", "import mercury as mr")
    nb.execute("m-slider", 'depth = mr.Slider(label="Depth", value=2, min=0, max=9)')
    nb.execute("m-read", 'print("depth", depth.value)')
    nb.execute("m-other", 'print("other")')
    assert nb.text("m-read") == "depth 2\n"
    before = graph_runs(nb)
    nb.send_widget_update(mercury_widget(nb, "slider.SliderWidget", "Depth"), {"value": 7})
    nb.wait_for(lambda: nb.text("m-read") == "depth 7\n", timeout=30, what="reader re-ran")
    settle(nb)
    assert {c: n for c, n in delta(before, graph_runs(nb)).items() if n} == {"m-read": 1}
    assert shows_slot(nb, "m-read")


def test_after_unloading_mercury_requests_run_plainly(kernel: Notebook) -> None:
    """``%unload_ext reactive``: mercury's requests run as in any kernel, nothing breaks."""
    nb = kernel
    app = MercuryPage(
        nb,
        [
            ("setup", "import mercury as mr\nimport itertools\nc = itertools.count(1)"),
            ("w", 's = mr.Slider(label="u", value=1, min=0, max=5)'),
            ("r", "print('r', s.value, next(c))"),
        ],
    )
    app.load()
    assert nb.text("r") == "r 1 1\n"
    assert nb.execute("unload", "%unload_ext reactive")["status"] == "ok"
    for n in (2, 3):  # mercury asks again: the cell runs, every time
        assert app.cell("r")["status"] == "ok"
        assert nb.text("r") == f"r 1 {n}\n"


def test_stop_ends_the_chain(kernel: Notebook) -> None:
    """``mr.Stop()`` ends a cell quietly and mercury stops its chain there."""
    nb = kernel
    cells = [
        ("setup", "import mercury as mr"),
        ("gate", 'go = mr.CheckBox(label="go", value=False)'),
        ("stop", "if not go.value:\n    mr.Stop()\nprint('going')"),
        ("after", "print('after')"),
    ]
    app = MercuryPage(nb, cells)
    app.load()
    assert app.requests[-1][0] == "stop"
    assert app.requests[-1][1]["ename"] == "StopExecution"
    assert nb.text("stop") == ""
