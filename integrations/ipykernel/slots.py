"""Output slots: one ipywidgets ``Output`` per managed cell (DESIGN.md §5).

The slot is displayed in the cell's own output area while the user's request
for that cell is live; from then on the runtime fills it by *setting its
``outputs`` state*, which works from any task or thread and survives page
reloads and second windows (the widget manager restores it), where
``with out:`` and display-id updates do not (HOSTS.md).

Filling replaces the whole list in one state update, so the old output stays
on screen until the new one arrives (no flicker), and an unchanged list is
not resent at all.

Outputs holding an image (an inline matplotlib figure) are repainted at most
``max_fps`` times a second per cell: during a drag a fast plot cell would
otherwise send tens of PNGs a second that the browser cannot show anyway.  A
fill that comes too soon is held, a newer one replaces it, and the held one
is sent when the interval is up, so the final state always shows.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable
from typing import Any

from .capture import Output
from .timers import TIMERS, Handle

#: metadata our slot's display carries, so tools can tell it from user widgets
SLOT_MARK = "reactive_slot"
#: the MIME type of a widget's view in an output
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def _json_safe(outputs: Iterable[Output]) -> tuple[Output, ...]:
    clean: list[Output] = []
    for out in outputs:
        item = {k: v for k, v in out.items() if k != "transient"}
        clean.append(item)
    return tuple(clean)


def _key(value: tuple[Output, ...]) -> str:
    try:
        return json.dumps(value, sort_keys=True, default=repr)
    except (TypeError, ValueError):
        return repr(value)


def _has_widget(outputs: Iterable[Output]) -> bool:
    return any(isinstance(out.get("data"), dict) and WIDGET_MIME in out["data"] for out in outputs)


def _has_image(outputs: Iterable[Output]) -> bool:
    return any(
        isinstance(out.get("data"), dict) and any(k.startswith("image/") for k in out["data"])
        for out in outputs
    )


class Slots:
    """Cell id -> Output widget, created lazily, closed on cell deletion/unload."""

    def __init__(self) -> None:
        self._slots: dict[str, Any] = {}
        self._sent: dict[str, str] = {}
        self.updates_sent = 0
        self.updates_skipped = 0
        #: image repaints per second per cell (0: no cap); the runtime sets it from config
        self.max_fps = 0.0
        self.updates_deferred = 0
        self._painted: dict[str, float] = {}
        self._pending: dict[str, tuple[Output, ...]] = {}
        self._timers: dict[str, Handle] = {}
        self._lock = threading.RLock()

    def get(self, cell_id: str) -> Any:
        slot = self._slots.get(cell_id)
        if slot is None or getattr(slot, "comm", None) is None:
            from ipywidgets import Output as OutputWidget

            slot = OutputWidget()
            slot.add_class("reactive-slot")
            self._slots[cell_id] = slot
            self._sent.pop(cell_id, None)
        return slot

    def show(self, cell_id: str, publish: Any) -> Any:
        """Display the slot in the output area of the request being handled.

        ``publish`` is the real (uncaptured) display publisher, so the view
        goes to the cell and not into the capture.
        """
        slot = self.get(cell_id)
        data = {
            "text/plain": "Output()",
            "application/vnd.jupyter.widget-view+json": {
                "version_major": 2,
                "version_minor": 0,
                "model_id": slot.model_id,
            },
        }
        pub = getattr(publish, "__self__", None)
        session, socket = getattr(pub, "session", None), getattr(pub, "pub_socket", None)
        if session is not None and socket is not None:
            # straight to iopub: the publisher's own path first flushes stdout and
            # stderr through the iopub thread (~0.5 ms a cell), and nothing can be
            # pending at the start of a request anyway
            content = {"data": data, "metadata": {SLOT_MARK: cell_id}, "transient": {}}
            session.send(
                socket,
                "display_data",
                content,
                parent=pub.parent_header,
                ident=getattr(pub, "topic", None),
            )
        else:
            publish(data, {SLOT_MARK: cell_id})
        return slot

    def fill(
        self,
        cell_id: str,
        outputs: Iterable[Output],
        *,
        redisplayed: bool = False,
        final: bool = False,
    ) -> bool:
        """Make the slot show exactly ``outputs``; False when nothing was sent (yet).

        ``final``: the last fill of a user's request.  It is never held back by the
        frame-rate cap: the reply and ``idle`` follow it, and the page must show the
        request's whole output by then (a held fill would land later, in the next
        request's time -- a figure's second view appearing while another cell runs).

        ``redisplayed``: the slot was just displayed anew in a cleared output area (a
        user's request, so the fill is ``final`` too).  JupyterLab 3's widget manager
        (jupyterlab_widgets 3.0.16, the last for Lab 3) draws such a view without the
        widgets nested in outputs it already had, so unchanged outputs holding a widget
        are cleared and set again: a real change of state makes every view draw them.
        JupyterLab 4 needs no help.
        """
        value = _json_safe(outputs)
        with self._lock:
            if redisplayed and _has_widget(value) and self._sent.get(cell_id) == _key(value):
                self._cancel(cell_id)
                self._send(cell_id, (), False)
            image = _has_image(value)
            if image and self.max_fps > 0 and not final:
                wait = self._painted.get(cell_id, -1e9) + 1.0 / self.max_fps - time.monotonic()
                if wait > 0:
                    self._pending[cell_id] = value
                    self.updates_deferred += 1
                    if cell_id not in self._timers:
                        self._timers[cell_id] = TIMERS.call_later(wait, self._trailing, cell_id)
                    return False
            self._cancel(cell_id)
            return self._send(cell_id, value, image)

    def _trailing(self, cell_id: str) -> None:
        with self._lock:
            self._timers.pop(cell_id, None)
            value = self._pending.pop(cell_id, None)
            if value is not None:
                self._send(cell_id, value, True)

    def _cancel(self, cell_id: str) -> None:
        self._pending.pop(cell_id, None)
        timer = self._timers.pop(cell_id, None)
        if timer is not None:
            timer.cancel()

    def _send(self, cell_id: str, value: tuple[Output, ...], image: bool) -> bool:
        slot = self.get(cell_id)
        key = _key(value)
        if self._sent.get(cell_id) == key:
            self.updates_skipped += 1
            return False
        slot.outputs = value
        self._sent[cell_id] = key
        self.updates_sent += 1
        if image:
            self._painted[cell_id] = time.monotonic()
        return True

    def outputs(self, cell_id: str) -> tuple[Output, ...]:
        slot = self._slots.get(cell_id)
        return tuple(slot.outputs) if slot is not None else ()

    def has(self, cell_id: str) -> bool:
        return cell_id in self._slots

    def drop(self, cell_id: str) -> None:
        with self._lock:
            self._cancel(cell_id)
        slot = self._slots.pop(cell_id, None)
        self._sent.pop(cell_id, None)
        if slot is not None:
            slot.close()

    def forget_all(self) -> None:
        """Let go of every slot without closing it (the page keeps showing it)."""
        with self._lock:
            for cell_id, timer in list(self._timers.items()):
                timer.cancel()
                self._trailing(cell_id)  # what is held still shows
        self._slots.clear()
        self._sent.clear()
