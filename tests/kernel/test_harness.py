"""The harness models JupyterLab 4 faithfully against a plain ipykernel 7 (no reactive code).

Each test pairs what should be seen with what must not be (old output, output of another
cell, output in no cell), so a harness that attributed messages wrongly would fail. Tests
share one kernel per module; they keep apart by distinct cell ids and variable names and
read the log only after their own ``nb.mark()``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import pytest

from tests.kernel.harness import LOST, WIDGET_MIME, Entry, Notebook, OutputArea

pytestmark = pytest.mark.kernel


def _stream_texts(entries: list[Entry]) -> list[str]:
    return [e.content.get("text", "") for e in entries if e.msg_type == "stream"]


# -- cells -----------------------------------------------------------------------------


def test_execute_routes_stdout_result_and_error_to_their_cells(notebook: Notebook) -> None:
    nb = notebook
    m = nb.mark()
    reply = nb.execute("ex-a", "print('hello')\n6 * 7")
    assert reply["status"] == "ok"
    assert nb.outputs("ex-a") == [
        {"output_type": "stream", "name": "stdout", "text": "hello\n"},
        {
            "output_type": "execute_result",
            "data": {"text/plain": "42"},
            "metadata": {},
            "execution_count": reply["execution_count"],
        },
    ]
    assert nb.text("ex-a") == "hello\n42\n"

    err = nb.execute("ex-b", "1 / 0")
    assert err["status"] == "error"
    assert err["ename"] == "ZeroDivisionError"
    assert nb.text("ex-b") == "ZeroDivisionError: division by zero\n"
    assert "hello" not in nb.text("ex-b")
    assert "ZeroDivisionError" not in nb.text("ex-a")

    # The request carries cell identity exactly as JupyterLab sends it.
    sent = nb.entries("execute_request", direction="sent", since=m)[0]
    assert sent.msg["metadata"] == {"cellId": "ex-a", "deletedCells": [], "recordTiming": False}
    assert sent.msg["header"]["version"] == "5.2"
    assert sent.content["stop_on_error"] is True
    assert [nb.cell_of(e) for e in nb.executions(since=m)] == ["ex-a", "ex-b"]
    assert nb.in_no_cell(since=m) == []


def test_streams_merge_and_clear_output_waits_for_next_output(notebook: Notebook) -> None:
    nb = notebook
    nb.execute(
        "st-a",
        "import sys\nprint('a'); print('b', flush=True)\n"
        "print('e', file=sys.stderr, flush=True); print('c')",
    )
    assert [(o["name"], o["text"]) for o in nb.outputs("st-a")] == [
        ("stdout", "a\nb\n"),
        ("stderr", "e\n"),
        ("stdout", "c\n"),
    ]
    nb.execute(
        "st-b",
        "from IPython.display import clear_output\n"
        "print('old'); clear_output(wait=True); print('new')",
    )
    assert nb.text("st-b") == "new\n"


def test_reexecuting_a_cell_replaces_its_output(notebook: Notebook) -> None:
    nb = notebook
    nb.execute("re-a", "print('first run')")
    assert nb.text("re-a") == "first run\n"
    nb.execute("re-a", "print('second run')")
    assert nb.text("re-a") == "second run\n"
    nb.execute("re-a", "x_re = 1")
    assert nb.outputs("re-a") == []


def test_late_output_follows_the_cells_live_request_only(notebook: Notebook) -> None:
    """The page keeps a cell's latest request after idle; re-running it drops the old one."""
    nb = notebook
    m = nb.mark()
    nb.execute(
        "late", "import asyncio\n_h = asyncio.get_running_loop().call_later(0.1, print, 'late')"
    )
    nb.wait_for(lambda: "late" in nb.text("late"), what="late print in its cell after idle")
    assert nb.in_no_cell(since=m) == []

    nb.execute("late", "_h = asyncio.get_running_loop().call_later(0.2, print, 'stale')")
    nb.execute("late", "print('rerun')")
    nb.wait_for(lambda: nb.in_no_cell(since=m), what="stale print of a replaced request")
    assert _stream_texts(nb.in_no_cell(since=m)) == ["stale\n"]
    assert nb.text("late") == "rerun\n"


def test_update_display_from_a_later_cell_updates_the_first_cell(notebook: Notebook) -> None:
    nb = notebook
    m = nb.mark()
    nb.execute(
        "dd-a",
        "from IPython.display import display, update_display\n"
        "display('v1', display_id='dd-x'); print('below')",
    )
    assert nb.text("dd-a") == "'v1'\nbelow\n"
    nb.execute("dd-b", "update_display('v2', display_id='dd-x')")
    assert nb.text("dd-a") == "'v2'\nbelow\n"
    assert nb.outputs("dd-b") == []
    assert nb.in_no_cell(since=m) == []
    update = nb.entries("update_display_data", since=m)[0]
    assert update.route == "display-update:1"

    # Once the displaying cell re-ran without that display, the update reaches nobody.
    nb.execute("dd-a", "print('gone')")
    nb.execute("dd-b", "update_display('v3', display_id='dd-x')")
    assert nb.text("dd-a") == "gone\n"
    lost = nb.in_no_cell(since=m)
    assert [e.msg_type for e in lost] == ["update_display_data"]


# -- widgets ---------------------------------------------------------------------------


def test_int_slider_update_is_applied_echoed_and_timed(notebook: Notebook) -> None:
    nb = notebook
    nb.execute("sl-a", "import ipywidgets as widgets\nsl = widgets.IntSlider(value=3)\nsl")
    (comm,) = nb.find_widget("IntSliderModel", cell_id="sl-a")
    assert nb.widgets_in("sl-a") == [comm]
    assert nb.text("sl-a") == "<IntSliderModel value=3>\n"
    assert nb.find_widget("IntSliderModel", lambda st: st["value"] == 99) == []

    m = nb.mark()
    mid = nb.send_widget_update(comm, {"value": 7})
    sent = nb.entries("comm_msg", direction="sent", since=m)[0].msg
    assert sent["header"]["version"] == "5.2"
    assert "subshell_id" not in sent["header"]
    assert sent["content"] == {
        "comm_id": comm,
        "data": {"method": "update", "state": {"value": 7}, "buffer_paths": []},
    }
    nb.wait_idle(mid)
    (echo,) = nb.echo_updates(comm, since=m)
    assert echo.parent_id == mid
    assert echo.content["data"]["state"] == {"value": 7}
    assert echo.t >= nb.sent_at(mid)
    assert nb.widget_state(comm)["value"] == 7
    assert nb.text("sl-a") == "<IntSliderModel value=7>\n"

    nb.execute("sl-b", "sl.value")
    assert nb.text("sl-b") == "7\n"
    assert nb.in_no_cell(since=m) == []


def test_output_widget_shows_outputs_set_from_a_later_cell(notebook: Notebook) -> None:
    nb = notebook
    nb.execute("ow-a", "out_a = widgets.Output()\nout_a")
    (comm,) = nb.find_widget("OutputModel", cell_id="ow-a")
    assert nb.text("ow-a") == ""
    nb.execute(
        "ow-b",
        "out_a.outputs = ({'output_type': 'stream', 'name': 'stdout', 'text': 'hi\\n'},)",
    )
    assert nb.text("ow-a") == "hi\n"
    assert nb.visible("ow-a") == [{"output_type": "stream", "name": "stdout", "text": "hi\n"}]
    assert nb.output_widget_text(comm) == "hi\n"
    assert nb.text("ow-b") == ""
    # The cell itself still holds the widget view, not the text.
    assert WIDGET_MIME in nb.outputs("ow-a")[0]["data"]


def test_with_out_captures_into_the_output_widget(notebook: Notebook) -> None:
    nb = notebook
    m = nb.mark()
    nb.execute(
        "cap-a",
        "out_c = widgets.Output()\ndisplay(out_c)\nwith out_c:\n    print('x')\nprint('after')",
    )
    (comm,) = nb.find_widget("OutputModel", cell_id="cap-a")
    assert nb.output_widget_text(comm) == "x\n"
    assert nb.text("cap-a") == "x\nafter\n"
    # The cell's own area got only the view and 'after'.
    assert [o["output_type"] for o in nb.outputs("cap-a")] == ["display_data", "stream"]
    x = next(e for e in nb.entries("stream", since=m) if e.content["text"] == "x\n")
    assert x.route == f"output-widget:{comm}"

    nb.execute("cap-b", "with out_c:\n    print('y')")
    assert nb.text("cap-a") == "x\ny\nafter\n"
    assert nb.text("cap-b") == ""
    assert nb.widget_state(comm)["outputs"] == [
        {"output_type": "stream", "name": "stdout", "text": "x\ny\n"}
    ]
    assert nb.in_no_cell(since=m) == []


def test_observer_print_lands_in_no_cell_but_with_out_in_observer_is_seen(
    notebook: Notebook,
) -> None:
    nb = notebook
    nb.execute(
        "obs-a",
        "obs = widgets.IntSlider()\nobs_out = widgets.Output()\n"
        "obs.observe(lambda ch: print('changed'), 'value')\ndisplay(obs, obs_out)",
    )
    (comm,) = nb.find_widget("IntSliderModel", cell_id="obs-a")
    m = nb.mark()
    nb.wait_idle(nb.send_widget_update(comm, {"value": 1}))
    lost = nb.in_no_cell(since=m)
    assert _stream_texts(lost) == ["changed\n"]
    assert lost[0].msg_type == "stream"
    assert nb.entries("comm_msg", direction="sent", since=m)[0].msg_id == lost[0].parent_id
    assert "changed" not in nb.text("obs-a")

    # Inside the observer, synchronously, `with out:` is captured: the comm_msg is live.
    nb.execute(
        "obs-b",
        "def _to_out(ch):\n    with obs_out:\n        print('seen', ch['new'])\n"
        "obs.unobserve_all()\nobs.observe(_to_out, 'value')",
    )
    m = nb.mark()
    mid = nb.send_widget_update(comm, {"value": 2})
    shown = nb.wait_for(lambda: "seen 2" in nb.text("obs-a"))
    assert shown is not None
    assert shown.msg_type == "stream"
    assert shown.parent_id == mid
    assert shown.t - nb.sent_at(mid) > 0  # latency from the comm_msg to what the user sees
    nb.wait_idle(mid)
    assert nb.in_no_cell(since=m) == []
    assert nb.text("obs-a") == "<IntSliderModel value=2>\nseen 2\n"


def test_subshell_is_created_and_carries_a_widget_update(notebook: Notebook) -> None:
    nb = notebook
    assert "kernel subshells" in nb.kernel_info["supported_features"]
    sub = nb.create_subshell()
    try:
        nb.execute(
            "sub-a",
            "import threading\nsub_evt = threading.Event()\n"
            "sub_sl = widgets.IntSlider(value=1)\n"
            "sub_sl.observe(lambda ch: sub_evt.set(), 'value')\nsub_sl",
        )
        (comm,) = nb.find_widget("IntSliderModel", cell_id="sub-a")
        m = nb.mark()
        mid = nb.send_widget_update(comm, {"value": 5}, subshell_id=sub)
        header = nb.entries("comm_msg", direction="sent", since=m)[0].msg["header"]
        assert header["subshell_id"] == sub
        nb.wait_idle(mid)
        assert [e.parent_id for e in nb.echo_updates(comm, since=m)] == [mid]
        nb.execute("sub-b", "sub_sl.value")
        assert nb.text("sub-b") == "5\n"

        # The echo above was published under the subshell's header, so the kernel now
        # routes this comm to the subshell: an update is handled while the main shell is
        # blocked in a synchronous cell (which waits for the observer, no sleeps).
        busy = nb.execute(
            "sub-c",
            "sub_evt.clear()\nprint('waiting', flush=True)\nprint(sub_evt.wait(10))",
            wait=False,
        )
        assert dict(busy) == {}
        nb.wait_for(lambda: nb.text("sub-c") == "waiting\n", what="sub-c blocking")
        nb.wait_idle(nb.send_widget_update(comm, {"value": 6}, subshell_id=sub))
        reply = nb.wait_reply(busy.msg_id, idle=True)
        assert reply["status"] == "ok"
        assert nb.text("sub-c") == "waiting\nTrue\n"
    finally:
        nb.delete_subshell(sub)


def test_comms_over_subshells_routes_widget_traffic_per_target(notebook: Notebook) -> None:
    """JupyterLab 4.6's default: widget comm_msgs go through one subshell per comm target.

    Host fact (HOSTS.md) pinned here so a kernel upgrade that changes it is noticed: the
    kernel routes a comm_msg to the shell named by the header of the message that last
    *published* on that comm. A widget created by a cell (main shell) therefore handles
    its first update on the main thread, and later ones on the subshell thread.
    """
    nb = notebook
    nb.execute(
        "cos-a",
        "import threading\ncos_threads = []\ncos = widgets.IntSlider()\n"
        "cos.observe(lambda ch: cos_threads.append(threading.current_thread().name), 'value')\n"
        "cos",
    )
    (comm,) = nb.find_widget("IntSliderModel", cell_id="cos-a")
    nb.comms_over_subshells = True
    try:
        m = nb.mark()
        nb.send_widget_updates_throttled(comm, [1, 2])
        sent = nb.entries("comm_msg", direction="sent", since=m)
        subs = {e.msg["header"].get("subshell_id") for e in sent}
        assert len(subs) == 1
        assert None not in subs
        # Forcing the main shell is still possible.
        nb.wait_idle(nb.send_widget_update(comm, {"value": 3}, subshell_id=""))
        assert (
            "subshell_id" not in nb.entries("comm_msg", direction="sent", since=m)[-1].msg["header"]
        )
    finally:
        nb.comms_over_subshells = False
    nb.execute("cos-b", "cos.value, [name.split('-')[0] for name in cos_threads]")
    assert nb.text("cos-b") == "(3, ['MainThread', 'subshell', 'subshell'])\n"


def test_throttled_flood_and_browser_throttle(notebook: Notebook) -> None:
    nb = notebook
    nb.execute("th-a", "th = widgets.IntSlider(max=1000)\nth")
    (comm,) = nb.find_widget("IntSliderModel", cell_id="th-a")

    m = nb.mark()
    sent = nb.send_widget_updates_throttled(comm, [1, 2, 3])
    for mid in sent:  # each update went out only after the previous one's idle
        assert mid in {e.parent_id for e in nb.entries("status", since=m)}
    assert [e.content["data"]["state"]["value"] for e in nb.echo_updates(comm, since=m)] == [
        1,
        2,
        3,
    ]

    m = nb.mark()
    flood = nb.send_widget_updates_flood(comm, range(10, 20))
    nb.wait_idle(flood[-1])
    assert len(nb.echo_updates(comm, since=m)) == 10

    # The browser keeps one update in flight and merges the rest into one buffered update.
    m = nb.mark()
    for v in (30, 31, 32):
        nb.set_widget(comm, {"value": v})
    assert nb.widget_backlog(comm) == {"value": 32}
    nb.wait_for(lambda: len(nb.echo_updates(comm, since=m)) == 2, what="two echoes")
    nb.drain()
    assert [
        e.content["data"]["state"] for e in nb.entries("comm_msg", direction="sent", since=m)
    ] == [{"value": 30}, {"value": 32}]
    assert nb.widget_backlog(comm) == {}
    nb.execute("th-b", "th.value")
    assert nb.text("th-b") == "32\n"


def test_browser_throttle_wedges_when_a_concurrent_comm_gets_no_idle(notebook: Notebook) -> None:
    """Host fact (HOSTS.md "Wedge"): a comm handled while an async cell awaits gets no idle.

    The page then never sends the buffered change: ``set_widget`` reproduces what a user
    would suffer, so tests of the runtime's fix can assert the backlog drains.
    """
    nb = notebook
    nb.execute(
        "wg-a",
        "import asyncio\nwg_ev = asyncio.Event()\nwg = widgets.IntSlider()\n"
        "wg.observe(lambda ch: wg_ev.set(), 'value')\nwg",
    )
    (comm,) = nb.find_widget("IntSliderModel", cell_id="wg-a")
    m = nb.mark()
    busy = nb.execute(
        "wg-b", "print('waiting', flush=True)\nawait wg_ev.wait()\nprint('released')", wait=False
    )
    nb.wait_for(lambda: nb.text("wg-b") == "waiting\n", what="wg-b awaiting")
    nb.set_widget(comm, {"value": 1})
    nb.set_widget(comm, {"value": 2})
    assert nb.wait_reply(busy.msg_id, idle=True)["status"] == "ok"
    assert nb.text("wg-b") == "waiting\nreleased\n"
    (first,) = nb.entries("comm_msg", direction="sent", since=m)
    nb.drain()
    assert len(nb.echo_updates(comm, since=m)) == 1
    assert nb.entries("status", parent_id=first.msg_id, since=m) == []
    assert nb.widget_backlog(comm) == {"value": 2}
    assert len(nb.entries("comm_msg", direction="sent", since=m)) == 1


def test_reload_page_restores_widgets_and_forgets_requests(notebook: Notebook) -> None:
    nb = notebook
    nb.execute(
        "rl-a",
        "from IPython.display import display\nrl = widgets.IntSlider(value=4)\n"
        "rl_out = widgets.Output()\ndisplay(rl, rl_out)\n_ = display('d1', display_id='rl-d')",
    )
    slider = nb.find_widget("IntSliderModel", cell_id="rl-a")[0]
    nb.execute(
        "rl-b", "rl_out.outputs = ({'output_type': 'stream', 'name': 'stdout', 'text': 'kept\\n'},)"
    )
    nb.wait_idle(nb.send_widget_update(slider, {"value": 9}))
    before = nb.text("rl-a")
    assert before == "<IntSliderModel value=9>\nkept\n'd1'\n"

    nb.reload_page()
    assert nb.text("rl-a") == before
    m = nb.mark()
    nb.execute("rl-b", "update_display('d2', display_id='rl-d')")
    assert "'d1'" in nb.text("rl-a")
    assert [e.msg_type for e in nb.in_no_cell(since=m)] == ["update_display_data"]


def test_wait_for_times_out_with_a_clear_message(notebook: Notebook) -> None:
    with pytest.raises(TimeoutError, match="nothing ever"):
        notebook.wait_for(lambda: False, timeout=0.2, what="nothing ever")
    with pytest.raises(TimeoutError, match="idle for no-such-id"):
        notebook.wait_idle("no-such-id", timeout=0.2)


# -- pure model rules (no kernel traffic) ---------------------------------------------


def test_output_area_follows_jupyterlab_rules() -> None:
    area = OutputArea()
    area.add({"output_type": "stream", "name": "stdout", "text": "a"})
    area.add({"output_type": "stream", "name": "stdout", "text": ["b\n", "c\n"]})
    assert area.outputs == [{"output_type": "stream", "name": "stdout", "text": "ab\nc\n"}]
    area.add({"output_type": "display_data", "data": {"text/plain": "1"}, "metadata": {}}, "d")
    area.clear(wait=True)
    assert len(area.outputs) == 2  # still shown until the next output
    assert area.update_display("d", {"data": {"text/plain": "2"}, "metadata": {}}) == 1
    assert len(area.outputs) == 2  # a display update does not trigger the delayed clear
    area.add({"output_type": "stream", "name": "stdout", "text": "z"})
    assert area.outputs == [{"output_type": "stream", "name": "stdout", "text": "z"}]
    assert area.update_display("d", {"data": {}, "metadata": {}}) == 0  # index was cleared
    assert LOST == "lost"


def test_kernel_cmd_env_and_extra_args_reach_the_kernel(
    notebook_factory: Callable[..., Notebook],
) -> None:
    nb = notebook_factory(
        kernel_cmd=[
            sys.executable,
            "-m",
            "ipykernel_launcher",
            "-f",
            "{connection_file}",
        ],
        env={"HARNESS_FLAG": "on"},
        extra_args=["--IPKernelApp.exec_lines=['harness_line = 41 + 1']"],
    )
    nb.execute("k-a", "import os\nos.environ['HARNESS_FLAG'], harness_line")
    assert nb.text("k-a") == "('on', 42)\n"
    assert nb.in_no_cell() == []  # nothing from startup landed in no cell either

    # A dead kernel ends every wait at once with a clear error instead of a hang.
    with pytest.raises(RuntimeError, match="kernel died"):
        nb.execute("k-b", "import os\nos._exit(3)", timeout=60)
    nb.shutdown()
    assert nb.km is None
