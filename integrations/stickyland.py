"""jupyterlab-stickyland dashboards: a sticky cell's auto-run never repeats work.

jupyterlab-stickyland 0.2.4 (JupyterLab 3 only, HOSTS.md) shows a cell in a "StickyLand"
panel or a floating window: the sticky copy is a second view of the same cell model, so
the cell's output slot (an Output widget) shows there too and reactive re-runs update it
with no help.  Making a cell sticky hides the original (``inputHidden`` and
``outputHidden``), which JupyterLab saves in the cell's metadata as
``jupyter.source_hidden`` / ``jupyter.outputs_hidden`` -- and JupyterLab merges the cell's
metadata into every ``execute_request`` it sends for that cell.

A sticky code cell can be switched to **auto-run**: 200 ms after the user runs any other
cell from the page, stickyland runs it again (an ordinary execute request for the original
cell).  With the runtime on, the cells that depend on what the user ran have already been
re-run, or are queued, so those requests are duplicates.  They are answered from the graph,
as mercury's are (``mercury.py``):

* a sticky cell that is *current* -- same source, it ran on exactly the inputs it would read
  now (fresh, memo hit or failed in the graph, nothing upstream queued or stale, nothing in
  the work queue, and every fingerprintable value it read unchanged) -- is **not run**: its
  slot is shown again in the request's output area (the page cleared it when it sent the
  request) with the outputs it already has, and the reply is the one its last run gave;
* any other sticky cell runs as a user execution (stale upstream first, its dependents
  queued) and is taken out of the batch queue, so it runs once.

A sticky cell is recognised by both hidden flags in the request's metadata, so a cell whose
input *and* output a user collapsed by hand is treated the same way: re-running it by hand
while it is current shows its current output rather than running it again.  Requests
without both flags always run, as everywhere else.  stickyland does not store its layout
anywhere (no notebook metadata, no browser storage): a dashboard is rebuilt by dragging the
cells into StickyLand after opening the notebook.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Mapping
from typing import Any

from .mercury import current_reply, latest_outputs

log = logging.getLogger("reactive")

#: statuses whose outputs are the result of a run on the cell's current inputs

_stats: weakref.WeakKeyDictionary[Any, dict[str, dict[str, int]]] = weakref.WeakKeyDictionary()


def is_sticky_request(meta: Mapping[str, Any] | None) -> bool:
    """Whether an execute_request comes from a cell shown in StickyLand (both parts hidden)."""
    meta = meta or {}
    jupyter = meta.get("jupyter")
    if not isinstance(jupyter, Mapping) or jupyter.get("source_hidden") is not True:
        return False
    return jupyter.get("outputs_hidden") is True or meta.get("collapsed") is True


def stats(rt: Any) -> dict[str, dict[str, int]]:
    """Per cell: sticky requests answered without running (``replayed``) and run (``ran``)."""
    return _stats.setdefault(rt, {"replayed": {}, "ran": {}})


async def execute(
    rt: Any, original: Any, cid: str, code: str, silent: bool, *args: Any, **kw: Any
) -> Any:
    """Answer a sticky cell's request (the runtime's ``do_execute`` hook)."""
    sched = rt.scheduler
    counts = stats(rt)
    async with sched.lock:
        # Under the lock nothing runs, so "current" cannot change between the check and
        # the answer; events not yet taken (a held widget update) are taken first.
        sched._absorb()
        reply = current_reply(rt, cid, code, kw.get("user_expressions"))
        if reply is not None:
            show_again(rt.slots, cid, rt.shell.display_pub.publish)
            counts["replayed"][cid] = counts["replayed"].get(cid, 0) + 1
            return reply
        sched._work.pop(cid, None)  # ours to run: the batch must not run it as well
    counts["ran"][cid] = counts["ran"].get(cid, 0) + 1
    return await rt.run_user(original, cid, code, silent, *args, **kw)


def show_again(slots: Any, cid: str, publish: Any) -> None:
    """Show the cell's slot in the request's output area again, with what it holds.

    The page cleared the cell when it sent the request.  ``redisplayed`` makes JupyterLab
    3 draw the widgets nested in the slot again (see ``Slots.fill``): without it the
    sticky slider would vanish.
    """
    outputs = latest_outputs(slots, cid)
    slots.show(cid, publish)
    slots.fill(cid, outputs, redisplayed=True)
