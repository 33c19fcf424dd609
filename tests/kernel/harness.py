"""Drive a real ipykernel the way JupyterLab 4 does, and model what the user sees per cell.

Kernel tests must assert on what a user would see in each cell, so every iopub message is
attributed to cells by the same rules the JupyterLab frontend applies (see HOSTS.md and
DESIGN.md §5/§8):

* An ``execute_request`` carries ``metadata.cellId``; sending it clears the cell's output
  area and makes that request the cell's *live* request. The frontend keeps the request's
  future after it is done (``requestExecute(content, disposeOnDone=false)``), so output whose
  parent is the cell's latest request lands in the cell even after ``idle``; output whose
  parent is an older request of a re-executed cell, a ``comm_msg``, or anything else lands in
  no cell.
* ``display_data`` / ``execute_result`` / ``update_display_data`` with a
  ``transient.display_id`` are re-routed by display id to every live request that displayed
  that id (``KernelConnection._handleDisplayId``); an ``update_display_data`` never reaches
  its own parent's cell.
* ipywidgets: ``comm_open`` / ``comm_msg`` (``update``, ``echo_update``) / ``comm_close`` on
  iopub maintain widget models. An ``Output`` model whose ``msg_id`` state names a live
  request registers a message hook on that request: the hook swallows every later message
  with that parent (``with out:`` capture). ``comm_msg`` futures sent by the "browser" are
  live until their ``idle``.

Design: one I/O thread owns all zmq sockets (zmq sockets are not thread-safe) and only
moves messages between sockets and queues, stamping each received message with
``time.monotonic()``. All modelling happens in the thread that drives the ``Notebook``
(normally the test), so predicates see a consistent model and exceptions surface in the
test. Every wait has a timeout and raises ``TimeoutError`` naming what it waited for.
The ``Notebook`` is not thread-safe: drive it from one thread.
"""

from __future__ import annotations

import atexit
import contextlib
import copy
import inspect
import json
import os
import queue
import shutil
import sys
import tempfile
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import zmq
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from jupyter_client.session import Session

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
WIDGET_TARGET = "jupyter.widget"
CONTROL_TARGET = "jupyter.widget.control"
#: The message protocol version JupyterLab 4 (``@jupyterlab/services``) puts in every header.
FRONTEND_PROTOCOL_VERSION = "5.2"
OUTPUT_MSG_TYPES = frozenset(
    {"stream", "display_data", "execute_result", "error", "clear_output", "update_display_data"}
)
#: ``Entry.route`` of an output message that no frontend output area took.
LOST = "lost"
#: Slow CI machines can scale every default timeout without editing tests.
TIMEOUT_SCALE = float(os.environ.get("REACTIVE_KERNEL_TIMEOUT_SCALE", "1"))
DEFAULT_KERNEL_CMD = (sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}")

Json = dict[str, Any]


def _scaled(timeout: float) -> float:
    return timeout * TIMEOUT_SCALE


# --------------------------------------------------------------------------------------
# Log entries and replies
# --------------------------------------------------------------------------------------


@dataclass
class Entry:
    """One message sent or received, with the time it crossed the wire.

    ``t`` is ``time.monotonic()`` when the I/O thread received the message (``recv``) or
    when the harness handed it to the I/O thread (``sent``), so latencies are
    ``received.t - sent.t``. ``route`` says where the frontend model put an output message:
    ``"cell:<id>"``, ``"output-widget:<comm_id>"``, ``"display-update:<n outputs>"`` or
    ``LOST`` (in no cell); comm traffic gets ``"comm"``; other messages keep ``None``.
    """

    t: float
    direction: Literal["sent", "recv"]
    channel: str
    msg: Json
    route: str | None = None

    @property
    def msg_type(self) -> str:
        return str(self.msg["header"]["msg_type"])

    @property
    def msg_id(self) -> str:
        return str(self.msg["header"]["msg_id"])

    @property
    def parent_id(self) -> str | None:
        parent = self.msg.get("parent_header") or {}
        return parent.get("msg_id")

    @property
    def content(self) -> Json:
        return self.msg["content"]

    def __repr__(self) -> str:
        body = json.dumps(self.content, default=str)
        if len(body) > 160:
            body = body[:157] + "..."
        return (
            f"Entry({self.direction} {self.channel} {self.msg_type} t={self.t:.4f} "
            f"parent={self.parent_id} route={self.route} {body})"
        )


class Reply(dict[str, Any]):
    """A reply's content, plus the ``msg_id`` of the request it answers.

    A dict so tests read it like the protocol (``reply["status"]``); ``msg_id`` lets them
    wait on or measure the request. A reply not yet received is empty with a ``msg_id``.
    """

    def __init__(self, content: Json, msg_id: str) -> None:
        super().__init__(content)
        self.msg_id = msg_id


# --------------------------------------------------------------------------------------
# Frontend output model
# --------------------------------------------------------------------------------------


def _joined(value: Any) -> Any:
    """nbformat allows multiline strings as lists of lines; the frontend joins them."""
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "".join(value)
    return value


def _as_output(content: Json, output_type: str) -> Json:
    """An output dict as the frontend stores it: the message content plus ``output_type``.

    ``transient`` is dropped (it never reaches nbformat) so tests can compare outputs with
    plain nbformat dicts; display ids are tracked beside the outputs instead.
    """
    out = {k: copy.deepcopy(v) for k, v in content.items() if k != "transient"}
    out["output_type"] = output_type
    if output_type == "stream":
        out["text"] = _joined(out.get("text", ""))
    elif "data" in out:
        out["data"] = {k: _joined(v) for k, v in out["data"].items()}
    return out


class OutputArea:
    """JupyterLab's ``OutputAreaModel`` plus the display-id index of its ``OutputArea``.

    Mirrors the frontend rules that change what a user reads: consecutive stream outputs
    with the same name merge into one; ``clear(wait=True)`` clears at the next *added*
    output (``clearNext``), and neither an immediate clear nor a re-execution resets that
    flag; ``set`` (display updates) never triggers the delayed clear; only ``display_data``
    outputs are indexed for ``update_display_data``, and any clear forgets the index.
    """

    def __init__(self) -> None:
        self.outputs: list[Json] = []
        self.display_ids: list[str | None] = []
        self.clear_next = False
        self._last_stream = ""
        self._last_name: str | None = None

    def add(self, output: Json, display_id: str | None = None) -> None:
        if self.clear_next:
            self.clear()
            self.clear_next = False
        self._add(output, display_id)

    def _add(self, output: Json, display_id: str | None = None) -> None:
        output = _as_output(output, output["output_type"])
        if output["output_type"] == "stream":
            if self._last_stream and output.get("name") == self._last_name and self.outputs:
                self._last_stream += output["text"]
                output["text"] = self._last_stream
                self.outputs[-1] = output
                return
            self._last_stream = output["text"]
            self._last_name = output.get("name")
        else:
            self._last_stream = ""
        self.outputs.append(output)
        self.display_ids.append(display_id)

    def clear(self, wait: bool = False) -> None:
        self._last_stream = ""
        if wait:
            self.clear_next = True
            return
        self.outputs.clear()
        self.display_ids.clear()

    def update_display(self, display_id: str, output: Json) -> int:
        """Replace every indexed output with ``display_id``; returns how many changed."""
        n = 0
        for i, did in enumerate(self.display_ids):
            if did == display_id:
                self.outputs[i] = _as_output(output, "display_data")
                n += 1
        return n

    def from_json(self, outputs: Iterable[Json]) -> None:
        """Replace everything, as ``OutputModel.setOutputs`` does for kernel-set state."""
        self.clear()
        for out in outputs:
            self._add(dict(out))

    def on_iopub(self, msg_type: str, content: Json) -> bool:
        """Apply one iopub message as ``OutputArea._onIOPub`` does; True if it had effect."""
        transient = content.get("transient") or {}
        display_id = transient.get("display_id")
        if msg_type in ("execute_result", "display_data", "stream", "error"):
            self.add(
                {**content, "output_type": msg_type},
                display_id if msg_type == "display_data" else None,
            )
            return True
        if msg_type == "clear_output":
            self.clear(bool(content.get("wait", False)))
            return True
        if msg_type == "update_display_data" and display_id:
            return self.update_display(display_id, content) > 0
        return False


@dataclass
class Cell:
    """What the notebook page holds for one code cell."""

    cell_id: str
    area: OutputArea = field(default_factory=OutputArea)
    request_id: str | None = None
    execution_count: int | None = None
    reply: Json | None = None

    @property
    def outputs(self) -> list[Json]:
        return self.area.outputs


@dataclass
class _Future:
    """A request the page still tracks (``KernelFutureHandler``): output routes to it.

    ``hooks`` are Output-widget comm ids capturing messages with this parent, in the order
    they registered; the latest one runs first and swallows the message.
    """

    msg_id: str
    kind: Literal["execute", "comm"]
    cell_id: str | None = None
    hooks: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------
# I/O thread
# --------------------------------------------------------------------------------------


class _IOThread(threading.Thread):
    """Owns the shell/control/iopub sockets: sends queued messages, stamps received ones."""

    #: messages read from one socket before the others get their turn
    BATCH = 64

    def __init__(self, session: Session, sockets: dict[str, zmq.Socket]) -> None:
        super().__init__(name="kernel-harness-io", daemon=True)
        self.session = session
        self.sockets = sockets
        self.inbox: queue.SimpleQueue[tuple[float, str, Json]] = queue.SimpleQueue()
        self._outbox: queue.SimpleQueue[tuple[str, list[bytes]]] = queue.SimpleQueue()
        self._wake_r, self._wake_w = os.pipe()
        self._stopping = threading.Event()
        self.error: BaseException | None = None

    def send(self, channel: str, frames: list[bytes]) -> None:
        """Queue already serialized frames (serializing in the caller surfaces bad state)."""
        self._outbox.put((channel, frames))
        os.write(self._wake_w, b"x")

    def stop(self) -> None:
        self._stopping.set()
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")
        self.join(timeout=5)
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    def run(self) -> None:
        poller = zmq.Poller()
        by_socket = {}
        for name, sock in self.sockets.items():
            poller.register(sock, zmq.POLLIN)
            by_socket[sock] = name
        poller.register(self._wake_r, zmq.POLLIN)
        try:
            while not self._stopping.is_set():
                events = dict(poller.poll(200))
                if self._wake_r in events:
                    os.read(self._wake_r, 4096)
                while True:
                    try:
                        channel, frames = self._outbox.get_nowait()
                    except queue.Empty:
                        break
                    self.sockets[channel].send_multipart(frames)
                for sock, name in by_socket.items():
                    if sock not in events:
                        continue
                    # a bounded batch per socket and round: under a flood iopub never runs
                    # dry, and reading it to the end starved the shell socket -- a reply
                    # the kernel sent at once sat here for seconds (JupyterLab's server
                    # reads each channel from its own handler, fairly)
                    for _ in range(self.BATCH):
                        _, msg = self.session.recv(sock, mode=zmq.NOBLOCK)
                        if msg is None:
                            break
                        self.inbox.put((time.monotonic(), name, msg))
        except BaseException as exc:  # surfaced in the driving thread by Notebook._check_io
            self.error = exc
        finally:
            for sock in self.sockets.values():
                sock.close(linger=0)


# --------------------------------------------------------------------------------------
# The notebook page + kernel session
# --------------------------------------------------------------------------------------

_LIVE: weakref.WeakSet[Notebook] = weakref.WeakSet()


@atexit.register
def _shutdown_leftovers() -> None:
    """Never leave kernels behind when a test run dies without fixture teardown."""
    for nb in list(_LIVE):
        with contextlib.suppress(Exception):
            nb.shutdown(now=True)


class Notebook:
    """A real kernel plus a model of one JupyterLab 4 notebook page attached to it.

    ``kernel_cmd`` is an argv template (``{connection_file}`` is substituted); it defaults
    to this interpreter's ``ipykernel_launcher``. ``kernel_name`` selects an installed
    kernelspec instead. ``extra_args`` are appended to the argv (e.g.
    ``["--IPKernelApp.extensions=['reactive']"]``); ``env`` is added to the environment.
    The kernel gets a private ``IPYTHONDIR`` (so user profiles cannot leak into tests)
    unless ``env`` sets one. ``comms_over_subshells=True`` routes widget comm messages
    through one subshell per comm target, as JupyterLab 4.6 does by default.
    """

    def __init__(
        self,
        *,
        kernel_name: str | None = None,
        kernel_cmd: Sequence[str] | None = None,
        extra_args: Sequence[str] = (),
        env: dict[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        startup_timeout: float = 30.0,
        comms_over_subshells: bool = False,
    ) -> None:
        if kernel_name is not None and kernel_cmd is not None:
            raise ValueError("give kernel_name or kernel_cmd, not both")
        self.kernel_name = kernel_name
        self.kernel_cmd = list(kernel_cmd or DEFAULT_KERNEL_CMD)
        self.extra_args = list(extra_args)
        self.env = dict(env or {})
        self.cwd = cwd
        self.startup_timeout = startup_timeout
        self.comms_over_subshells = comms_over_subshells

        self.km: KernelManager | None = None
        self.session: Session | None = None
        self.kernel_info: Json = {}
        self.log: list[Entry] = []
        self.cells: dict[str, Cell] = {}
        #: comm_id -> {"model_name", "target", "state"}; open widget models only.
        self.models: dict[str, Json] = {}
        self.closed_models: set[str] = set()
        #: Non-widget comms the kernel opened (comm_id -> target_name).
        self.comms: dict[str, str] = {}

        self._tmp: Path | None = None
        self._io: _IOThread | None = None
        self._log_file: Any = None
        self._futures: dict[str, _Future] = {}
        self._request_cell: dict[str, str] = {}
        self._replies: dict[str, Entry] = {}
        self._idle: set[str] = set()
        self._display_parents: dict[str, list[str]] = {}
        self._output_areas: dict[str, OutputArea] = {}
        self._deleted_cells: list[str] = []
        self._comm_subshells: dict[str, str] = {}
        self._expected_echo: dict[str, dict[str, str]] = {}
        self._sync_pending: dict[str, int] = {}
        self._sync_buffer: dict[str, Json] = {}
        self._sync_msgs: dict[str, str] = {}
        self._control_states: dict[str, Json] = {}
        self._last_alive_check = 0.0

    # -- lifecycle ---------------------------------------------------------------------

    def __enter__(self) -> Notebook:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def start(self) -> Notebook:
        """Launch the kernel, connect, and wait until iopub is live (kernel_info round trip).

        On failure the kernel is stopped before the error propagates, so a broken start
        never leaks a process.
        """
        try:
            return self._start()
        except BaseException:
            self.shutdown(now=True)
            raise

    def _start(self) -> Notebook:
        self._tmp = Path(tempfile.mkdtemp(prefix="kernel-harness-"))
        env = {**os.environ, **self.env}
        env.setdefault("IPYTHONDIR", str(self._tmp / "ipython"))
        # debugpy's "frozen modules" warning is printed at startup with no parent (in no
        # cell), racing our iopub subscription; it would make in_no_cell() flaky.
        env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
        env.pop("JPY_PARENT_PID", None)
        if self.kernel_name is not None:
            km = KernelManager(kernel_name=self.kernel_name)
        else:
            spec_dir = self._tmp / "kernels" / "harness"
            spec_dir.mkdir(parents=True)
            spec = {"argv": self.kernel_cmd, "display_name": "harness", "language": "python"}
            (spec_dir / "kernel.json").write_text(json.dumps(spec))
            ksm = KernelSpecManager(kernel_dirs=[str(self._tmp / "kernels")])
            km = KernelManager(kernel_name="harness", kernel_spec_manager=ksm)
        km.connection_file = str(self._tmp / "connection.json")
        km.shutdown_wait_time = 3.0
        self.km = km
        self._log_file = open(self._tmp / "kernel.log", "wb")  # noqa: SIM115 (closed in shutdown)
        _LIVE.add(self)
        km.start_kernel(
            extra_arguments=self.extra_args,
            env=env,
            cwd=str(self.cwd or os.getcwd()),
            stdout=self._log_file,
            stderr=self._log_file,
        )
        self.session = km.session
        ident = self.session.bsession
        sockets = {
            "shell": km.connect_shell(identity=ident),
            "control": km.connect_control(identity=ident),
            "iopub": km.connect_iopub(),
        }
        self._io = _IOThread(self.session, sockets)
        self._io.start()
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        """Retry kernel_info until a reply *and* an iopub message for it arrived.

        A SUB socket misses whatever is published before its subscription propagates, so
        seeing iopub traffic for our request is the only proof that no output will be lost.
        """
        deadline = time.monotonic() + _scaled(self.startup_timeout)
        while True:
            mid = self._send_shell("kernel_info_request", {})
            try:
                self._wait(
                    lambda mid=mid: mid in self._replies and mid in self._idle,
                    min(2.0, max(0.1, deadline - time.monotonic())),
                    f"kernel_info_reply and iopub idle for {mid} (kernel startup)",
                    scale=False,
                )
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"kernel did not become ready within {self.startup_timeout}s; "
                        f"kernel log:\n{self.kernel_log()}"
                    ) from None
                continue
            self.kernel_info = dict(self._replies[mid].content)
            return

    def shutdown(self, *, now: bool = False) -> None:
        """Stop the I/O thread and the kernel; idempotent."""
        _LIVE.discard(self)
        if self._io is not None:
            self._io.stop()
            self._io = None
        if self.km is not None:
            try:
                if self.km.has_kernel:
                    self.km.shutdown_kernel(now=now)
            except Exception:
                with contextlib.suppress(Exception):
                    self.km.shutdown_kernel(now=True)
            self.km = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def kernel_log(self, tail: int = 4000) -> str:
        """The kernel process's stdout/stderr (last ``tail`` chars), for failure messages."""
        if self._tmp is None:
            return ""
        path = self._tmp / "kernel.log"
        if not path.exists():
            return ""
        return path.read_bytes()[-tail:].decode("utf-8", "replace")

    def interrupt(self) -> None:
        """Interrupt the running cell, as the toolbar's stop button does."""
        assert self.km is not None
        self.km.interrupt_kernel()

    @property
    def supports_subshells(self) -> bool:
        return "kernel subshells" in self.kernel_info.get("supported_features", [])

    # -- sending -----------------------------------------------------------------------

    def _new_msg(
        self,
        msg_type: str,
        content: Json,
        *,
        metadata: Json | None = None,
        subshell_id: str | None = None,
    ) -> Json:
        assert self.session is not None, "Notebook not started"
        msg = self.session.msg(msg_type, content, metadata=metadata)
        msg["header"]["version"] = FRONTEND_PROTOCOL_VERSION
        if subshell_id:
            msg["header"]["subshell_id"] = subshell_id
        return msg

    def _send(self, channel: str, msg: Json) -> str:
        # The page handles everything that already arrived before it sends (a late output
        # of a cell is shown before the cell's re-execution clears it).
        self._pump_pending()
        if self._io is None or self.session is None:
            raise RuntimeError("Notebook is not running")
        frames = self.session.serialize(msg)  # raises here if the content is not JSON-able
        self.log.append(Entry(time.monotonic(), "sent", channel, msg))
        self._io.send(channel, frames)
        return str(msg["header"]["msg_id"])

    def _send_shell(
        self,
        msg_type: str,
        content: Json,
        *,
        metadata: Json | None = None,
        subshell_id: str | None = None,
    ) -> str:
        msg = self._new_msg(msg_type, content, metadata=metadata, subshell_id=subshell_id)
        if msg_type.startswith("comm_"):
            self._futures[msg["header"]["msg_id"]] = _Future(msg["header"]["msg_id"], "comm")
        return self._send("shell", msg)

    def request(
        self, msg_type: str, content: Json, *, channel: str = "shell", timeout: float = 10.0
    ) -> Reply:
        """Send any request and return its reply (e.g. ``comm_info_request``)."""
        msg = self._new_msg(msg_type, content)
        mid = self._send(channel, msg)
        return self.wait_reply(mid, timeout=timeout)

    # -- executing cells ---------------------------------------------------------------

    def execute(
        self,
        cell_id: str,
        code: str,
        *,
        wait: bool = True,
        timeout: float = 30.0,
        cell_metadata: Json | None = None,
        subshell_id: str | None = None,
    ) -> Reply:
        """Run ``code`` as cell ``cell_id`` exactly as JupyterLab's ``CodeCell.execute`` does.

        Clears the cell's outputs, disposes its previous request (late output of that request
        now lands in no cell), and sends the execute_request. ``cell_metadata`` (e.g.
        ``{"tags": ["raises-exception"]}``) is merged into the request metadata like the
        cell's own metadata. With ``wait`` it returns once both the reply and the ``idle``
        arrived (the frontend future's "done"); otherwise an empty ``Reply`` with
        ``msg_id`` (use ``wait_reply``).
        """
        self._pump_pending()
        cell = self.cells.setdefault(cell_id, Cell(cell_id))
        if not code.strip():
            # JupyterLab never sends an empty cell; it only clears it.
            self._dispose_cell_future(cell)
            cell.area.clear()
            cell.execution_count = None
            return Reply({"status": "empty"}, "")
        metadata = {
            **(cell_metadata or {}),
            "cellId": cell_id,
            "deletedCells": list(self._deleted_cells),
            "recordTiming": False,
        }
        self._deleted_cells.clear()
        tags = metadata.get("tags") or []
        content = {
            "code": code,
            "silent": False,
            "store_history": True,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": "raises-exception" not in tags,
        }
        msg = self._new_msg("execute_request", content, metadata=metadata, subshell_id=subshell_id)
        mid = str(msg["header"]["msg_id"])
        self._dispose_cell_future(cell)
        cell.area.clear()
        cell.execution_count = None
        cell.reply = None
        cell.request_id = mid
        self._futures[mid] = _Future(mid, "execute", cell_id=cell_id)
        self._request_cell[mid] = cell_id
        self._send("shell", msg)
        if not wait:
            return Reply({}, mid)
        return self.wait_reply(mid, timeout=timeout, idle=True)

    def delete_cell(self, cell_id: str) -> None:
        """Delete a cell from the page; the next execute_request lists it in deletedCells."""
        cell = self.cells.pop(cell_id, None)
        if cell is not None:
            self._dispose_cell_future(cell)
        self._deleted_cells.append(cell_id)

    def _dispose_cell_future(self, cell: Cell) -> None:
        if cell.request_id is not None:
            self._dispose_future(cell.request_id)

    def _dispose_future(self, msg_id: str) -> None:
        self._futures.pop(msg_id, None)
        for parents in self._display_parents.values():
            if msg_id in parents:
                parents.remove(msg_id)

    # -- widgets: sending as the browser does --------------------------------------------

    def _comm_subshell(self, target: str, subshell_id: str | None) -> str | None:
        """Resolve ``subshell_id``: None = page default, "" = main shell, else that id."""
        if subshell_id is not None:
            return subshell_id or None
        if not self.comms_over_subshells:
            return None
        if target not in self._comm_subshells:
            self._comm_subshells[target] = self.create_subshell()
        return self._comm_subshells[target]

    def send_widget_update(
        self, comm_id: str, state: Json, *, subshell_id: str | None = None
    ) -> str:
        """Send one widget ``update`` comm_msg as the ipywidgets frontend does; returns msg_id.

        The page's own model takes the new state at once (the user already sees the slider
        there). No throttling: this is the raw wire message. ``subshell_id=None`` follows the
        page default (see ``comms_over_subshells``); ``""`` forces the main shell.
        """
        target = self.models.get(comm_id, {}).get("target", WIDGET_TARGET)
        sub = self._comm_subshell(target, subshell_id)
        mid = self._send_shell(
            "comm_msg",
            {
                "comm_id": comm_id,
                "data": {"method": "update", "state": state, "buffer_paths": []},
            },
            subshell_id=sub,
        )
        model = self.models.get(comm_id)
        if model is not None:
            model["state"].update(copy.deepcopy(state))
        expected = self._expected_echo.setdefault(comm_id, {})
        for key in state:
            expected[key] = mid
        return mid

    def set_widget(self, comm_id: str, state: Json, *, subshell_id: str | None = None) -> None:
        """A user change under the ipywidgets frontend's throttle, without blocking.

        Like ``WidgetModel.save_changes``: with an update in flight (no ``idle`` for it yet)
        the change is merged into a buffer that is sent when that idle arrives. If the idle
        never comes (the concurrent-dispatch wedge in HOSTS.md) the buffer stays unsent,
        exactly as in the browser; ``widget_backlog`` shows it.
        """
        if self._sync_pending.get(comm_id, 0) >= 1:
            self._sync_buffer.setdefault(comm_id, {}).update(state)
            model = self.models.get(comm_id)
            if model is not None:
                model["state"].update(copy.deepcopy(state))
            return
        mid = self.send_widget_update(comm_id, state, subshell_id=subshell_id)
        self._sync_pending[comm_id] = self._sync_pending.get(comm_id, 0) + 1
        self._sync_msgs[mid] = comm_id

    def widget_backlog(self, comm_id: str) -> Json:
        """State the browser holds back for ``comm_id`` while an update is unacknowledged."""
        return dict(self._sync_buffer.get(comm_id, {}))

    def send_widget_updates_throttled(
        self,
        comm_id: str,
        values: Iterable[Any],
        key: str = "value",
        *,
        subshell_id: str | None = None,
        timeout: float = 10.0,
    ) -> list[str]:
        """Send ``{key: v}`` for each value, each only after the previous one's ``idle``.

        The one-update-in-flight rule of the ipywidgets frontend, for a user who moves the
        slider slower than the kernel answers. Raises TimeoutError if an idle never comes.
        """
        sent = []
        for value in values:
            mid = self.send_widget_update(comm_id, {key: value}, subshell_id=subshell_id)
            sent.append(mid)
            self.wait_idle(mid, timeout=timeout)
        return sent

    def send_widget_updates_flood(
        self,
        comm_id: str,
        values: Iterable[Any],
        key: str = "value",
        *,
        subshell_id: str | None = None,
    ) -> list[str]:
        """Send ``{key: v}`` for every value back to back, waiting for nothing."""
        return [self.send_widget_update(comm_id, {key: v}, subshell_id=subshell_id) for v in values]

    def send_widget_custom(
        self, comm_id: str, content: Json, *, subshell_id: str | None = None
    ) -> str:
        """A ``custom`` comm_msg (a Button click is ``{"event": "click"}``)."""
        target = self.models.get(comm_id, {}).get("target", WIDGET_TARGET)
        return self._send_shell(
            "comm_msg",
            {"comm_id": comm_id, "data": {"method": "custom", "content": content}},
            subshell_id=self._comm_subshell(target, subshell_id),
        )

    def create_subshell(self, timeout: float = 10.0) -> str:
        """Create a kernel subshell over the control channel; returns its ``subshell_id``."""
        if not self.supports_subshells:
            raise RuntimeError(
                "kernel does not list 'kernel subshells' in supported_features: "
                f"{self.kernel_info.get('supported_features')}"
            )
        reply = self.request("create_subshell_request", {}, channel="control", timeout=timeout)
        if reply.get("status") != "ok":
            raise RuntimeError(f"create_subshell_request failed: {dict(reply)}")
        return str(reply["subshell_id"])

    def delete_subshell(self, subshell_id: str, timeout: float = 10.0) -> Reply:
        """Delete a subshell created by ``create_subshell``."""
        for target, sid in list(self._comm_subshells.items()):
            if sid == subshell_id:
                del self._comm_subshells[target]
        return self.request(
            "delete_subshell_request",
            {"subshell_id": subshell_id},
            channel="control",
            timeout=timeout,
        )

    def reload_page(self, *, timeout: float = 10.0) -> None:
        """Emulate a browser reload of a notebook that was saved just before.

        Cell outputs stay as they are (the saved document), but every request the old page
        tracked is forgotten (late output and display updates land in no cell), Output
        captures stop, and widget models are restored the way ipywidgets 8 does: a
        ``jupyter.widget.control`` comm and ``request_states``.
        """
        self._pump_pending()
        self._futures.clear()
        self._display_parents.clear()
        for cell in self.cells.values():
            cell.request_id = None
        self.models.clear()
        self._output_areas.clear()
        self._expected_echo.clear()
        self._sync_pending.clear()
        self._sync_buffer.clear()
        self._sync_msgs.clear()
        sub = self._comm_subshell(CONTROL_TARGET, None)
        comm_id = uuid.uuid4().hex
        self._send_shell(
            "comm_open",
            {"comm_id": comm_id, "target_name": CONTROL_TARGET, "data": {}},
            metadata={"version": "1.0.0"},
            subshell_id=sub,
        )
        self._send_shell(
            "comm_msg",
            {"comm_id": comm_id, "data": {"method": "request_states"}},
            subshell_id=sub,
        )
        self._wait(
            lambda: comm_id in self._control_states,
            timeout,
            f"update_states on the {CONTROL_TARGET} comm after reload",
        )
        self._send_shell("comm_close", {"comm_id": comm_id, "data": {}}, subshell_id=sub)
        for model_id, info in self._control_states.pop(comm_id).items():
            self._open_model(model_id, WIDGET_TARGET, dict(info.get("state", {})))

    # -- waiting -----------------------------------------------------------------------

    def _check_io(self, what: str) -> None:
        if self._io is None:
            raise RuntimeError(f"Notebook is not running (waiting for {what})")
        if self._io.error is not None:
            raise RuntimeError(f"harness I/O thread failed: {self._io.error!r}") from self._io.error
        now = time.monotonic()
        if now - self._last_alive_check > 0.5:
            self._last_alive_check = now
            if self.km is not None and not self.km.is_alive():
                raise RuntimeError(
                    f"kernel died while waiting for {what}; kernel log:\n{self.kernel_log()}"
                )

    def _pump_pending(self) -> Entry | None:
        """Apply every message already received, without waiting."""
        last = None
        if self._io is None:
            return None
        while True:
            try:
                item = self._io.inbox.get_nowait()
            except queue.Empty:
                return last
            last = self._apply(*item)

    def _wait(
        self, cond: Callable[[], bool], timeout: float, what: str, *, scale: bool = True
    ) -> Entry | None:
        """Apply messages one at a time until ``cond()``; return the entry that made it true."""
        if cond():
            return None
        deadline = time.monotonic() + (_scaled(timeout) if scale else timeout)
        while True:
            self._check_io(what)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"timed out after {timeout}s waiting for {what}\n{self}")
            assert self._io is not None
            try:
                item = self._io.inbox.get(timeout=min(remaining, 0.25))
            except queue.Empty:
                continue
            entry = self._apply(*item)
            if cond():
                return entry

    def wait_for(
        self, predicate: Callable[[], Any], timeout: float = 10.0, what: str | None = None
    ) -> Entry | None:
        """Pump iopub until ``predicate()`` is truthy over the model.

        Returns the received entry after which it became true (None if it already was), so
        ``entry.t - nb.sent_at(msg_id)`` is the latency of the message that made a cell show
        something. Raises TimeoutError naming ``what`` (or the predicate's source).
        """
        return self._wait(lambda: bool(predicate()), timeout, what or _describe(predicate))

    def wait_idle(self, msg_id: str, timeout: float = 10.0) -> Entry | None:
        """Wait for the iopub ``idle`` status whose parent is ``msg_id``."""
        return self._wait(lambda: msg_id in self._idle, timeout, f"iopub idle for {msg_id}")

    def wait_reply(self, msg_id: str, *, timeout: float = 30.0, idle: bool = False) -> Reply:
        """Wait for the shell/control reply to ``msg_id`` (and its ``idle`` if asked)."""
        what = f"reply{' and idle' if idle else ''} for {msg_id}"
        self._wait(
            lambda: msg_id in self._replies and (not idle or msg_id in self._idle),
            timeout,
            what,
        )
        return Reply(self._replies[msg_id].content, msg_id)

    def drain(self, quiet: float = 0.2, timeout: float = 10.0) -> None:
        """Pump until iopub has been quiet for ``quiet`` s — only for "nothing more happens".

        Never use it to wait for something to happen; use ``wait_for``.
        """
        deadline = time.monotonic() + _scaled(timeout)
        while True:
            self._check_io("a quiet iopub")
            assert self._io is not None
            try:
                item = self._io.inbox.get(timeout=quiet)
            except queue.Empty:
                return
            self._apply(*item)
            if time.monotonic() > deadline:
                raise TimeoutError(f"iopub never went quiet for {quiet}s within {timeout}s")

    # -- applying received messages (the frontend model) -------------------------------

    def _apply(self, t: float, channel: str, msg: Json) -> Entry:
        entry = Entry(t, "recv", channel, msg)
        self.log.append(entry)
        parent_id = entry.parent_id
        if channel != "iopub":
            if parent_id:
                self._replies[parent_id] = entry
                cell_id = self._request_cell.get(parent_id)
                if entry.msg_type == "execute_reply" and cell_id in self.cells:
                    cell = self.cells[cell_id]
                    if cell.request_id == parent_id:
                        cell.reply = dict(entry.content)
                        cell.execution_count = entry.content.get("execution_count")
            return entry

        msg_type = entry.msg_type
        content = entry.content
        handled = False
        # 1. KernelConnection._handleDisplayId: re-route by display id first.
        display_id = (content.get("transient") or {}).get("display_id")
        if display_id and msg_type in ("display_data", "update_display_data", "execute_result"):
            handled = self._handle_display_id(display_id, entry)
        # 2. Route by parent to a future the page still tracks.
        if not handled:
            future = self._futures.get(parent_id) if parent_id else None
            if future is not None:
                self._future_handle(future, entry)
            elif msg_type in OUTPUT_MSG_TYPES:
                entry.route = LOST
        # 3. Status and comms are handled by the connection whatever their parent.
        if msg_type == "status":
            if content.get("execution_state") == "idle" and parent_id:
                self._idle.add(parent_id)
                self._on_idle(parent_id)
        elif msg_type == "comm_open":
            entry.route = "comm"
            data = content.get("data") or {}
            if content.get("target_name") == WIDGET_TARGET:
                self._open_model(content["comm_id"], WIDGET_TARGET, dict(data.get("state", {})))
            else:
                self.comms[content["comm_id"]] = content.get("target_name", "")
        elif msg_type == "comm_msg":
            entry.route = "comm"
            self._comm_msg(entry)
        elif msg_type == "comm_close":
            entry.route = "comm"
            comm_id = content.get("comm_id")
            if comm_id in self.models:
                self._close_model(comm_id)
            self.comms.pop(comm_id, None)
        return entry

    def _future_handle(self, future: _Future, entry: Entry) -> None:
        msg_type = entry.msg_type
        # Message hooks (Output widgets capturing this request) run first, latest first,
        # and swallow the message whatever its type.
        for comm_id in reversed(future.hooks):
            area = self._output_areas.get(comm_id)
            if area is None:
                continue
            # OutputModel.add: outputs are appended (no display-id index), clear_output
            # clears, anything else (update_display_data included) is swallowed unseen.
            if msg_type in ("execute_result", "display_data", "stream", "error"):
                area.add({**entry.content, "output_type": msg_type})
            elif msg_type == "clear_output":
                area.clear(bool(entry.content.get("wait", False)))
            if msg_type in OUTPUT_MSG_TYPES:
                if msg_type == "update_display_data":
                    entry.route = LOST
                else:
                    entry.route = f"output-widget:{comm_id}"
                    self.models[comm_id]["state"]["outputs"] = copy.deepcopy(area.outputs)
            return
        if future.kind == "execute" and msg_type in OUTPUT_MSG_TYPES:
            cell = self.cells.get(future.cell_id or "")
            if cell is None:
                entry.route = LOST
                return
            changed = cell.area.on_iopub(msg_type, entry.content)
            entry.route = f"cell:{cell.cell_id}" if changed else LOST
        elif msg_type in OUTPUT_MSG_TYPES:
            # A comm future has no output handler: the page drops it.
            entry.route = LOST

    def _handle_display_id(self, display_id: str, entry: Entry) -> bool:
        """``KernelConnection._handleDisplayId``: update every live displayer of the id."""
        parents = self._display_parents.get(display_id)
        updated = 0
        if parents:
            update = {**entry.content}
            for pid in list(parents):
                future = self._futures.get(pid)
                if future is None:
                    continue
                if future.hooks:
                    continue  # an Output hook swallows the synthesized update
                if future.kind == "execute":
                    cell = self.cells.get(future.cell_id or "")
                    if cell is not None:
                        updated += cell.area.update_display(display_id, update)
        if entry.msg_type == "update_display_data":
            entry.route = f"display-update:{updated}" if updated else LOST
            return True
        parent_id = entry.parent_id
        if parent_id:
            ids = self._display_parents.setdefault(display_id, [])
            if parent_id not in ids:
                ids.append(parent_id)
        return False

    def _on_idle(self, parent_id: str) -> None:
        future = self._futures.get(parent_id)
        if future is not None and future.kind == "comm":
            self._dispose_future(parent_id)  # comm futures are disposed when done
        comm_id = self._sync_msgs.pop(parent_id, None)
        if comm_id is not None:
            self._sync_pending[comm_id] = max(0, self._sync_pending.get(comm_id, 0) - 1)
            buffered = self._sync_buffer.pop(comm_id, None)
            if buffered and self._sync_pending[comm_id] < 1 and comm_id in self.models:
                self.set_widget(comm_id, buffered)

    def _open_model(self, comm_id: str, target: str, state: Json) -> None:
        self.closed_models.discard(comm_id)
        self.models[comm_id] = {
            "model_name": state.get("_model_name"),
            "target": target,
            "state": state,
        }
        if state.get("_model_name") == "OutputModel":
            area = OutputArea()
            area.from_json(state.get("outputs") or [])
            self._output_areas[comm_id] = area
            if state.get("msg_id"):
                self._set_output_msg_id(comm_id, "", state["msg_id"])

    def _close_model(self, comm_id: str) -> None:
        self.models.pop(comm_id, None)
        self._output_areas.pop(comm_id, None)
        self.closed_models.add(comm_id)
        for future in self._futures.values():
            if comm_id in future.hooks:
                future.hooks.remove(comm_id)

    def _comm_msg(self, entry: Entry) -> None:
        content = entry.content
        comm_id = content.get("comm_id", "")
        data = content.get("data") or {}
        method = data.get("method")
        if method == "update_states":
            self._control_states[comm_id] = data.get("states") or {}
            return
        model = self.models.get(comm_id)
        if model is None or method not in ("update", "echo_update"):
            return
        state = copy.deepcopy(data.get("state") or {})
        if method == "echo_update":
            # WidgetModel: an echo of an older message of ours must not undo a newer local
            # value; our latest echo confirms it unless a buffered change is about to go.
            expected = self._expected_echo.get(comm_id, {})
            for key in [k for k in state if k in expected]:
                if expected[key] != entry.parent_id:
                    del state[key]
                else:
                    del expected[key]
                    if key in self._sync_buffer.get(comm_id, {}):
                        del state[key]
        old_msg_id = model["state"].get("msg_id", "")
        model["state"].update(state)
        if comm_id in self._output_areas:
            if "outputs" in state:
                self._output_areas[comm_id].from_json(state["outputs"])
            if "msg_id" in state and state["msg_id"] != old_msg_id:
                self._set_output_msg_id(comm_id, old_msg_id, state["msg_id"])

    def _set_output_msg_id(self, comm_id: str, old: str, new: str) -> None:
        """``OutputModel.reset_msg_id``: move the capture hook to the new request."""
        if old and old in self._futures and comm_id in self._futures[old].hooks:
            self._futures[old].hooks.remove(comm_id)
        if new and new in self._futures:
            self._futures[new].hooks.append(comm_id)

    # -- reading the model -------------------------------------------------------------

    def outputs(self, cell_id: str) -> list[Json]:
        """The cell's own outputs (widget views not expanded)."""
        return copy.deepcopy(self._cell(cell_id).outputs)

    def visible(self, cell_id: str) -> list[Json]:
        """The cell's outputs with Output widgets (and widget boxes) expanded, recursively.

        An Output widget view becomes that widget's outputs; a box view becomes its children
        (each a widget view, itself expanded); a closed widget's view disappears (the
        frontend removes it); other widget views stay as their ``display_data``.
        """
        return self._expand(self._cell(cell_id).outputs, frozenset())

    def text(self, cell_id: str) -> str:
        """What a user reads in the cell: stream text, ``text/plain``, ``ename: evalue``.

        Widget views read as ``<IntSliderModel value=3>`` from the live model state.
        Each non-stream output ends with a newline.
        """
        return "".join(self._output_text(out) for out in self.visible(cell_id))

    def output_widget_text(self, comm_id: str) -> str:
        """What a user reads inside one Output widget."""
        return "".join(
            self._output_text(out)
            for out in self._expand_widget(comm_id, _widget_view(comm_id), frozenset())
        )

    def _cell(self, cell_id: str) -> Cell:
        try:
            return self.cells[cell_id]
        except KeyError:
            raise KeyError(f"no cell {cell_id!r} on the page (cells: {list(self.cells)})") from None

    def _expand(self, outputs: Iterable[Json], seen: frozenset[str]) -> list[Json]:
        result: list[Json] = []
        for out in outputs:
            model_id = _view_model_id(out)
            if model_id is None:
                result.append(copy.deepcopy(out))
            else:
                result.extend(self._expand_widget(model_id, out, seen))
        return result

    def _expand_widget(self, model_id: str, view: Json, seen: frozenset[str]) -> list[Json]:
        if model_id in self.closed_models:
            return []
        model = self.models.get(model_id)
        if model is None or model_id in seen:
            return [copy.deepcopy(view)]
        seen = seen | {model_id}
        if model_id in self._output_areas:
            return self._expand(self._output_areas[model_id].outputs, seen)
        children = model["state"].get("children")
        if isinstance(children, list):
            refs = [c[len("IPY_MODEL_") :] for c in children if str(c).startswith("IPY_MODEL_")]
            return self._expand([_widget_view(ref) for ref in refs], seen)
        return [copy.deepcopy(view)]

    def _output_text(self, out: Json) -> str:
        kind = out.get("output_type")
        if kind == "stream":
            return str(out.get("text", ""))
        if kind == "error":
            return f"{out.get('ename')}: {out.get('evalue')}\n"
        data = out.get("data") or {}
        model_id = _view_model_id(out)
        if model_id is not None:
            text = self.widget_placeholder(model_id)
        elif "text/plain" in data:
            text = str(data["text/plain"])
        elif data:
            text = f"<{next(iter(data))}>"
        else:
            text = ""
        return text if text.endswith("\n") else text + "\n"

    def widget_placeholder(self, model_id: str) -> str:
        """``<IntSliderModel value=3>``: how ``text`` renders a widget view."""
        model = self.models.get(model_id)
        if model is None:
            return f"<missing widget {model_id}>"
        state = model["state"]
        name = model.get("model_name") or "widget"
        for key in ("value", "description"):
            if key in state:
                return f"<{name} {key}={state[key]!r}>"
        return f"<{name}>"

    def find_widget(
        self,
        model_name: str | None = None,
        predicate: Callable[[Json], bool] | None = None,
        *,
        cell_id: str | None = None,
    ) -> list[str]:
        """Comm ids of open widget models, oldest first, filtered by ``_model_name``, by
        ``predicate(state)``, and (``cell_id``) by being visible in that cell."""
        in_cell: set[str] | None = None
        if cell_id is not None:
            in_cell = set(self.widgets_in(cell_id))
        found = []
        for comm_id, model in self.models.items():
            if model_name is not None and model.get("model_name") != model_name:
                continue
            if in_cell is not None and comm_id not in in_cell:
                continue
            if predicate is not None and not predicate(model["state"]):
                continue
            found.append(comm_id)
        return found

    def widgets_in(self, cell_id: str) -> list[str]:
        """Model ids of every widget view shown in the cell, including nested ones."""
        ids: list[str] = []

        def walk(outputs: Iterable[Json], seen: frozenset[str]) -> None:
            for out in outputs:
                mid = _view_model_id(out)
                if mid is None or mid in seen or mid in self.closed_models:
                    continue
                ids.append(mid)
                model = self.models.get(mid)
                if model is None:
                    continue
                if mid in self._output_areas:
                    walk(self._output_areas[mid].outputs, seen | {mid})
                children = model["state"].get("children")
                if isinstance(children, list):
                    refs = [str(c)[len("IPY_MODEL_") :] for c in children]
                    walk([_widget_view(r) for r in refs], seen | {mid})

        walk(self._cell(cell_id).outputs, frozenset())
        return ids

    def widget_state(self, comm_id: str) -> Json:
        """The page's current state of one widget model."""
        return self.models[comm_id]["state"]

    # -- log queries -------------------------------------------------------------------

    def mark(self) -> int:
        """A position in the log; pass it as ``since`` to look only at later messages."""
        self._pump_pending()
        return len(self.log)

    def entries(
        self,
        msg_type: str | None = None,
        *,
        since: int = 0,
        direction: str = "recv",
        parent_id: str | None = None,
    ) -> list[Entry]:
        """Logged messages filtered by type, direction and parent (after ``since``)."""
        self._pump_pending()
        return [
            e
            for e in self.log[since:]
            if e.direction == direction
            and (msg_type is None or e.msg_type == msg_type)
            and (parent_id is None or e.parent_id == parent_id)
        ]

    def in_no_cell(self, since: int = 0) -> list[Entry]:
        """Output messages that no output area took: the user never sees them.

        Streams, displays, results, errors and clear_outputs whose parent is no request the
        page tracks and that no Output widget captured, plus display updates that reached no
        output. Tests assert this is empty.
        """
        self._pump_pending()
        return [e for e in self.log[since:] if e.route == LOST]

    def executions(self, cell_id: str | None = None, *, since: int = 0) -> list[Entry]:
        """``execute_input`` messages (one per execute_request the kernel ran)."""
        return [
            e
            for e in self.entries("execute_input", since=since)
            if cell_id is None or self._request_cell.get(e.parent_id or "") == cell_id
        ]

    def echo_updates(self, comm_id: str | None = None, *, since: int = 0) -> list[Entry]:
        """``echo_update`` comm messages the kernel sent (state it accepted from us)."""
        return [
            e
            for e in self.entries("comm_msg", since=since)
            if (e.content.get("data") or {}).get("method") == "echo_update"
            and (comm_id is None or e.content.get("comm_id") == comm_id)
        ]

    def sent_at(self, msg_id: str) -> float:
        """``time.monotonic()`` when the request ``msg_id`` was sent."""
        for e in self.log:
            if e.direction == "sent" and e.msg_id == msg_id:
                return e.t
        raise KeyError(f"no sent message {msg_id}")

    def cell_of(self, entry: Entry) -> str | None:
        """The cell whose execute_request is the entry's parent, if any."""
        return self._request_cell.get(entry.parent_id or "")

    def __repr__(self) -> str:
        lines = [f"<Notebook cells={len(self.cells)} widgets={len(self.models)}>"]
        for cid in self.cells:
            text = self.text(cid)
            if len(text) > 200:
                text = text[:197] + "..."
            lines.append(f"  [{cid}] {text!r}")
        return "\n".join(lines)


def _view_model_id(out: Json) -> str | None:
    data = out.get("data") or {}
    view = data.get(WIDGET_MIME)
    if isinstance(view, dict) and view.get("model_id"):
        return str(view["model_id"])
    return None


def _widget_view(model_id: str) -> Json:
    return {
        "output_type": "display_data",
        "data": {WIDGET_MIME: {"model_id": model_id, "version_major": 2, "version_minor": 0}},
        "metadata": {},
    }


def _describe(predicate: Callable[..., Any]) -> str:
    """The predicate's source line, so a timeout says what it waited for."""
    try:
        return inspect.getsource(predicate).strip()
    except (OSError, TypeError):
        return repr(predicate)
