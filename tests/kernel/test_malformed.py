"""Issue 8 (part): a browser can send anything; the kernel must shrug it off.

Each malformed widget message is rejected with a log line, the widget keeps its
last valid value, nothing crashes, and later valid updates still work.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.kernel.harness import Notebook
from tests.kernel.test_reactive_kernel import runs, wait_text

pytestmark = pytest.mark.kernel

MALFORMED: list[tuple[str, dict[str, object]]] = [
    ("unknown comm id", {"comm_id": "no-such-comm", "data": {"method": "update", "state": {}}}),
    ("string into an IntSlider", {"data": {"method": "update", "state": {"value": "abc"}}}),
    ("missing state", {"data": {"method": "update", "buffer_paths": []}}),
    ("state is not a dict", {"data": {"method": "update", "state": [1, 2, 3]}}),
    ("unknown method", {"data": {"method": "explode", "state": {"value": 3}}}),
    ("no data at all", {}),
    ("unknown trait", {"data": {"method": "update", "state": {"no_such_trait": 1}}}),
    ("10 MB payload", {"data": {"method": "update", "state": {"description": "x" * 10_000_000}}}),
]


@pytest.mark.parametrize("routing", ["main", "subshell"])
def test_malformed_widget_messages_are_shrugged_off(
    notebook_factory: Callable[..., Notebook], routing: str
) -> None:
    nb = notebook_factory(comms_over_subshells=routing == "subshell")
    nb.execute("setup", "%load_ext reactive\nimport ipywidgets as W")
    nb.execute("s", "s = W.IntSlider(value=1, max=10)\ns")
    comm = nb.find_widget("IntSliderModel", cell_id="s")[0]
    nb.execute("dep", "print('v', s.value)")
    nb.send_widget_update(comm, {"value": 2})
    wait_text(nb, "dep", "v 2\n")
    for label, content in MALFORMED:
        body = {"comm_id": comm, **content}
        mid = nb._send_shell("comm_msg", body)
        nb.wait_idle(mid, timeout=20)
        nb.execute("chk", "print(s.value)")
        assert nb.text("chk") == "2\n", f"after {label}: the widget lost its value"
    assert nb.text("dep") == "v 2\n"
    before = runs(nb).get("dep", 0)
    nb.send_widget_update(comm, {"value": 7})
    wait_text(nb, "dep", "v 7\n")
    assert runs(nb).get("dep", 0) == before + 1
    log = nb.kernel_log()
    assert "TraitError" in log, "the bad value must be rejected with a log line"
    assert "explode" in log, "the unknown method must be logged"
