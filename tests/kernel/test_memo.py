"""Issue 5 on a real kernel: ``%%memoize`` and partial updates, driven as JupyterLab drives it.

Each memoized body appends one character to a log file, so ``body_runs`` counts how often
a body really ran: a hit is a run that left the log alone.  Every kernel gets its own
``XDG_CACHE_HOME``, so disk entries never leak between tests or into the user's cache.
"""

from __future__ import annotations

import json
import os
import pickle
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.kernel.harness import Notebook
from tests.kernel.test_reactive_kernel import lost_output, probe, runs, wait_text

pytestmark = pytest.mark.kernel

RT = "__import__('reactive.integrations.ipykernel.runtime', fromlist=['R']).Runtime.current"


@pytest.fixture
def cache_home(tmp_path: Path) -> Path:
    home = tmp_path / "xdg-cache"
    home.mkdir()
    return home


@pytest.fixture
def start(
    notebook_factory: Callable[..., Notebook], cache_home: Path, tmp_path: Path
) -> Iterator[Callable[..., Notebook]]:
    """Start a reactive kernel whose cache dir and log file are private to this test."""
    started: list[Notebook] = []

    def make(**kwargs: object) -> Notebook:
        env = {"XDG_CACHE_HOME": str(cache_home), **dict(kwargs.pop("env", {}) or {})}  # type: ignore[arg-type]
        nb = notebook_factory(env=env, **kwargs)
        setup = f"%load_ext reactive\nimport ipywidgets as W\nLOG = {str(tmp_path / 'runs.log')!r}"
        reply = nb.execute("setup", setup)
        assert reply["status"] == "ok", reply
        started.append(nb)
        return nb

    yield make
    for nb in started:
        assert lost_output(nb) == [], "output landed in no cell"


@pytest.fixture
def nb(start: Callable[..., Notebook]) -> Notebook:
    return start()


def body_runs(nb: Notebook) -> int:
    value = probe(nb, "len(open(LOG).read()) if __import__('os').path.exists(LOG) else 0")
    assert isinstance(value, int)
    return value


def memo_last(nb: Notebook, cell: str) -> str:
    value = probe(nb, f"{RT}.memo.last.get({cell!r}, '')")
    assert isinstance(value, str)
    return value


def slider(nb: Notebook, cell: str, code: str) -> str:
    nb.execute(cell, code)
    ids = nb.find_widget("IntSliderModel", cell_id=cell)
    assert ids, nb.visible(cell)
    return ids[-1]


def strip_count(outputs: list[dict]) -> list[dict]:
    """Outputs without execution counts (a hit shows the current one, like a run)."""
    return [{k: v for k, v in o.items() if k != "execution_count"} for o in outputs]


# --------------------------------------------------------------------------- hits and misses


def test_hit_and_miss_on_input_changes(nb: Notebook) -> None:
    nb.execute("k", "k = 2")
    body = "%%memoize\nopen(LOG, 'a').write('x')\ny = k * 10\nprint('y is', y)\ny"
    nb.execute("m", body)
    nb.execute("show", "print('show', y)")
    assert body_runs(nb) == 1 and nb.text("m") == "y is 20\n20\n"
    assert nb.execute("m", body)["status"] == "ok"
    assert body_runs(nb) == 1, "same inputs: the body must not run again"
    assert memo_last(nb, "m") == "hit"
    nb.execute("k", "k = 3")  # the memoized cell re-runs reactively: a miss
    wait_text(nb, "show", "show 30\n")
    assert body_runs(nb) == 2 and nb.text("m") == "y is 30\n30\n"  # a miss shows all
    nb.execute("k", "k = 2")  # back to a seen input: a hit restores y
    wait_text(nb, "show", "show 20\n")
    assert body_runs(nb) == 2
    assert nb.text("m") == "20\n"
    assert probe(nb, "y") == 20
    # editing the code is a different key, a comment is not
    nb.execute("m", body.replace("y = k * 10", "y = k * 10  # tens"))
    assert body_runs(nb) == 2
    nb.execute("m", body.replace("y = k * 10", "y = k * 11"))
    assert body_runs(nb) == 3 and probe(nb, "y") == 22


def test_mutation_in_place_invalidates(nb: Notebook) -> None:
    """The same objects, mutated: a key on identity would hit here and show 13."""
    nb.execute("arr", "import numpy as np\narr = np.arange(5)\ncfg = {'a': [1, 2]}")
    nb.execute("mut", "arr[0] = 0")  # a cell above the memoized one that mutates its inputs
    body = "%%memoize\nopen(LOG, 'a').write('x')\ntotal = int(arr.sum()) + sum(cfg['a'])\ntotal"
    nb.execute("m", body)
    assert nb.text("m") == "13\n" and body_runs(nb) == 1
    # each step mutates, then runs the memoized cell by hand (whether or not the graph
    # also re-ran it reactively, the body ran once per new state)
    for mutation, shown, ran in (
        ("arr[0] = 9", "22", 2),
        ("arr[0] = 9\ncfg['a'][:] = [1, 2, 5]", "27", 3),  # idempotent: cells may re-run
        ("arr[0] = 0\ncfg['a'][:] = [1, 2]", "13", 3),  # back to the first state: a hit
    ):
        nb.execute("mut", mutation)
        nb.execute("m", body)
        assert nb.text("m") == f"{shown}\n", mutation
        assert body_runs(nb) == ran, mutation


def test_function_defined_in_the_notebook_and_its_globals_are_inputs(nb: Notebook) -> None:
    nb.execute("f", "scale = 2\ndef f(v):\n    return v * scale")
    body = "%%memoize\nopen(LOG, 'a').write('x')\nout = f(5)\nout"
    nb.execute("m", body)
    assert nb.text("m") == "10\n"
    nb.execute("m", body)
    assert body_runs(nb) == 1
    nb.execute("f", "scale = 3\ndef f(v):\n    return v * scale")
    wait_text(nb, "m", "15\n")
    assert body_runs(nb) == 2
    nb.execute("f", "scale = 3\ndef f(v):\n    return v * scale + 1")
    wait_text(nb, "m", "16\n")
    assert body_runs(nb) == 3


def test_widget_value_is_an_input(nb: Notebook) -> None:
    s = slider(nb, "s", "s = W.IntSlider(value=1, max=10); s")
    body = "%%memoize\nopen(LOG, 'a').write('x')\nsq = s.value ** 2\nprint('sq', sq)"
    nb.execute("m", body)
    nb.execute("show", "print('shown', sq)")
    assert body_runs(nb) == 1
    for value, expected_runs in ((2, 2), (3, 3), (2, 3), (1, 3), (3, 3)):
        nb.send_widget_update(s, {"value": value})
        wait_text(nb, "show", f"shown {value**2}\n")
        assert body_runs(nb) == expected_runs, value
    assert runs(nb).get("m") == 5, "the cell itself re-ran each time (a hit is cheap)"


def test_unfingerprintable_input_always_runs_with_a_note_under_verbose(nb: Notebook) -> None:
    nb.execute("lock", "import threading\nlk = threading.Lock()")
    body = "open(LOG, 'a').write('x')\nheld = lk.locked()\nprint('held', held)"
    nb.execute("m", "%%memoize --verbose\n" + body)
    nb.execute("m", "%%memoize --verbose\n" + body)
    assert body_runs(nb) == 2, "never a hit on an input that cannot be fingerprinted"
    text = nb.text("m")
    assert text.startswith("held False\n")
    note = text.splitlines()[1]
    assert note.startswith("memoize: not memoized: input `lk.locked` cannot be fingerprinted"), note
    nb.execute("m2", "%%memoize\n" + body)
    assert nb.text("m2") == "held False\n", "no note without --verbose"


# --------------------------------------------------------------------------- replay modes

BODY = (
    "open(LOG, 'a').write('x')\n"
    "import sys\n"
    "from IPython.display import HTML, display\n"
    "print('out', n)\n"
    "print('err', n, file=sys.stderr)\n"
    "display(HTML(f'<b>{n}</b>'))\n"
    "{'n': n}"
)


def test_replay_modes(nb: Notebook) -> None:
    nb.execute("n", "n = 4")
    first: dict[str, list[dict]] = {}
    for mode in ("", "--verbose", "--quiet"):
        cell = f"m{mode}"
        nb.execute(cell, f"%%memoize {mode}\n{BODY}")
        first[mode] = strip_count(nb.visible(cell))
        kinds = [o["output_type"] for o in first[mode]]
        assert kinds == ["stream", "stream", "display_data", "execute_result"], kinds
    assert body_runs(nb) == 3
    hits = {}
    for mode in ("", "--verbose", "--quiet"):
        cell = f"m{mode}"
        nb.execute(cell, f"%%memoize {mode}\n{BODY}")
        hits[mode] = strip_count(nb.visible(cell))
    assert body_runs(nb) == 3, "all three were hits"
    assert hits["--verbose"] == first["--verbose"], "verbose replays exactly what the run showed"
    assert hits[""] == [o for o in first[""] if o["output_type"] == "execute_result"]
    assert hits[""][0]["data"]["text/plain"] == "{'n': 4}"
    assert hits["--quiet"] == []
    # a trailing semicolon hides the value, on a run and on a hit
    nb.execute("semi", "%%memoize\nopen(LOG, 'a').write('x')\nv = n + 1\nv;")
    nb.execute("semi", "%%memoize\nopen(LOG, 'a').write('x')\nv = n + 1\nv;")
    assert nb.visible("semi") == [] and probe(nb, "v") == 5


def test_inline_figure_is_replayed_under_verbose(nb: Notebook) -> None:
    nb.execute("mpl", "import matplotlib.pyplot as plt\n%matplotlib inline")
    nb.execute("n", "n = 3")
    body = "%%memoize --verbose\nopen(LOG, 'a').write('x')\nplt.plot(range(n))\nprint('drawn')"
    nb.execute("p", body)
    first = strip_count(nb.visible("p"))
    assert [o["output_type"] for o in first] == ["stream", "display_data"], first
    assert "image/png" in first[1]["data"]
    nb.execute("p", body)
    assert body_runs(nb) == 1
    assert strip_count(nb.visible("p")) == first


# --------------------------------------------------------------------------- isolation, memory


def test_restored_defs_are_isolated_from_the_cache(nb: Notebook) -> None:
    nb.execute("n", "import numpy as np\nn = 3")
    body = (
        "%%memoize\nopen(LOG, 'a').write('x')\nlst = list(range(n))\nar = np.zeros(n)\nalias = lst"
    )
    nb.execute("m", body)
    mutate = "lst.append(99) or ar.__setitem__(0, 7)"  # a silent request: nothing re-runs
    assert probe(nb, mutate) is None and probe(nb, "len(alias)") == 4
    for _ in range(2):
        nb.execute("m", body)  # hit: fresh copies
        assert probe(nb, "lst") == [0, 1, 2]
        assert probe(nb, "ar.tolist()") == [0.0, 0.0, 0.0]
        assert probe(nb, "alias is lst") is True, "aliases between defs survive"
        assert probe(nb, mutate) is None
    assert body_runs(nb) == 1


def test_lru_eviction_at_the_byte_bound(nb: Notebook) -> None:
    nb.execute("cfg", f"{RT}.config.memo_max_bytes = 250_000")
    nb.execute("n", "n = 0")
    body = "%%memoize --verbose\nopen(LOG, 'a').write('x')\nblob = bytes([n]) * 100_000\nprint(n)"

    def visit(v: int) -> int:
        nb.execute("n", f"n = {v}")
        wait_text(nb, "m", f"{v}\n")
        return body_runs(nb)

    nb.execute("m", body)
    assert [visit(1), visit(2)] == [2, 3]  # three entries of ~100 kB: the first is evicted
    nb.execute("st", "%reactive memo status")
    status = nb.text("st")
    assert status.startswith("memo: 2 entries,"), status
    used = probe(nb, f"{RT}.memo.cache.memory.bytes")
    assert isinstance(used, int) and 200_000 < used <= 250_000
    assert visit(1) == 3, "the two most recent are cached; now 2 is the least recent"
    assert visit(0) == 4, "0 was evicted: it runs again, evicting 2"
    assert visit(1) == 4
    assert visit(2) == 5


def test_memo_status_and_clear(nb: Notebook) -> None:
    nb.execute("k", "k = 1")
    nb.execute("a", "%%memoize\nopen(LOG, 'a').write('x')\nya = k + 1")
    nb.execute("b", "%%memoize\nopen(LOG, 'a').write('x')\nyb = k + 2")
    nb.execute("a", "%%memoize\nopen(LOG, 'a').write('x')\nya = k + 1")
    nb.execute("st", "%reactive memo status")
    lines = nb.text("st").splitlines()
    assert lines[0].startswith("memo: 2 entries") and "hits 1, misses 2, hit rate 33%" in lines[0]
    assert any("last run: hit" in line for line in lines[2:])
    nb.execute("clr", "%reactive memo clear ya")
    assert nb.text("clr").startswith("memo: cleared cell [")
    nb.execute("st", "%reactive memo status")
    assert nb.text("st").startswith("memo: 1 entries")
    nb.execute("clr", "%reactive memo clear")
    nb.execute("st", "%reactive memo status")
    assert nb.text("st").startswith("memo: 0 entries")
    nb.execute("bad", "%reactive memo flush")
    assert "usage: %reactive memo status | %reactive memo clear [cell]" in nb.text("bad")
    nb.execute("bad2", "%%memoize --fast\nx = 1")
    assert "unknown option '--fast'" in nb.text("bad2")


# --------------------------------------------------------------------------- disk

DISK_BODY = (
    "%%memoize --disk\nopen(LOG, 'a').write('x')\nimport numpy as np\nd = np.arange(n)\nd.sum()"
)


def test_disk_cache_survives_a_kernel_restart(
    start: Callable[..., Notebook], cache_home: Path
) -> None:
    nb = start()
    nb.execute("n", "n = 10")
    nb.execute("m", DISK_BODY)
    assert body_runs(nb) == 1 and nb.text("m") == "np.int64(45)\n"
    store = cache_home / "reactive" / "memo"
    assert stat.S_IMODE(store.stat().st_mode) == 0o700
    assert stat.S_IMODE((store / "secret").stat().st_mode) == 0o600
    assert len(list(store.glob("*.entry"))) == 1
    nb.shutdown()
    nb2 = start()
    nb2.execute("n", "n = 10")
    nb2.execute("m", DISK_BODY)
    assert body_runs(nb2) == 1, "a new kernel hits the disk entry"
    assert nb2.text("m") == "np.int64(45)\n" and probe(nb2, "d.tolist()") == list(range(10))
    nb2.execute("st", "%reactive memo status")
    assert "1 entries" in nb2.text("st").splitlines()[1]


class _Marker:
    """Unpickling this creates a file: proof that unverified bytes were loaded."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.path, "w"))


def test_tampered_disk_entries_are_rejected_and_the_cell_runs(
    start: Callable[..., Notebook], cache_home: Path, tmp_path: Path
) -> None:
    nb = start()
    nb.execute("n", "n = 6")
    nb.execute("m", DISK_BODY)
    store = cache_home / "reactive" / "memo"
    (entry,) = store.glob("*.entry")
    good = entry.read_bytes()
    marker = tmp_path / "pwned"
    evil = pickle.dumps({"pairs": [], "x": _Marker(str(marker))})
    head = len(b"RMEMO\x01\n") + 32
    variants = {
        "raw pickle": evil,
        "forged mac": good[:head] + good[head:].replace(b"\x00", b"\x01", 1) + evil,
        "valid header, evil body": good[: head + 8] + evil,
        "truncated": good[: len(good) // 2],
        "bit flip": good[:-1] + bytes([good[-1] ^ 1]),
    }
    expected = 1
    for name, data in variants.items():
        entry.write_bytes(data)
        nb.execute("drop", f"{RT}.memo.cache.memory.clear()")  # force a disk lookup
        nb.execute("m", DISK_BODY.replace("--disk", "--disk --verbose"))
        expected += 1
        assert body_runs(nb) == expected, f"{name}: the cell must simply run"
        assert not marker.exists(), f"{name}: unverified bytes were unpickled"
        lines = nb.text("m").splitlines()
        assert lines[-1] == "np.int64(15)", (name, lines)
        assert lines[0].startswith("memoize: discarded disk entry"), (name, lines)
        assert entry.read_bytes() != data, f"{name}: the bad entry was replaced"
    # the rewritten entry is good again
    nb.execute("drop", f"{RT}.memo.cache.memory.clear()")
    nb.execute("m", DISK_BODY)
    assert body_runs(nb) == expected


def test_a_valid_entry_under_another_keys_name_is_rejected(
    start: Callable[..., Notebook], cache_home: Path
) -> None:
    nb = start()
    nb.execute("n", "n = 3")
    nb.execute("m", DISK_BODY)
    nb.execute("n", "n = 4")
    wait_text(nb, "m", "np.int64(6)\n")
    store = cache_home / "reactive" / "memo"
    entries = sorted(store.glob("*.entry"), key=lambda p: p.stat().st_mtime)
    assert len(entries) == 2
    entries[1].write_bytes(entries[0].read_bytes())  # n=4's name now holds n=3's entry
    nb.execute("drop", f"{RT}.memo.cache.memory.clear()")
    nb.execute("m", DISK_BODY)
    assert nb.text("m") == "np.int64(6)\n", "never the other key's result"
    assert body_runs(nb) == 3


def test_refuses_a_cache_dir_writable_by_others(
    start: Callable[..., Notebook], cache_home: Path
) -> None:
    store = cache_home / "reactive" / "memo"
    store.mkdir(parents=True)
    os.chmod(store, 0o777)
    nb = start()
    nb.execute("n", "n = 3")
    nb.execute("m", DISK_BODY)
    text = nb.text("m")
    assert "memoize: disk memo disabled:" in text and "writable by other users" in text
    assert not (store / "secret").exists()
    nb.execute("m", DISK_BODY)
    assert body_runs(nb) == 1, "memory memo still works"


def test_two_kernels_writing_the_same_key_concurrently(
    start: Callable[..., Notebook], cache_home: Path
) -> None:
    kernels = [start(), start()]
    body = "%%memoize --disk\nopen(LOG, 'a').write('x')\n"
    body += "big = bytes(range(256)) * (n * 4096)\nlen(big)"
    for k in kernels:
        k.execute("n", "n = 40")  # ~42 MB each: the writes overlap
    for _ in range(3):
        pending = [k.execute("m", body, wait=False) for k in kernels]
        for k, r in zip(kernels, pending, strict=True):
            assert k.wait_reply(r.msg_id, timeout=120, idle=True)["status"] == "ok"
        for k in kernels:
            k.execute("drop", f"{RT}.memo.cache.memory.clear()")
    store = cache_home / "reactive" / "memo"
    assert len(list(store.glob("*.entry"))) == 1
    assert not list(store.glob(".tmp-*")), "no temporary files left behind"
    third = start()
    third.execute("n", "n = 40")
    before = body_runs(third)
    third.execute("m", body)
    assert body_runs(third) == before, "the entry both kernels wrote is whole and valid"
    assert third.text("m") == f"{256 * 40 * 4096}\n"


# --------------------------------------------------------------------------- partial updates


def slot_updates(nb: Notebook, cell: str, since: int) -> list[dict]:
    """``outputs`` updates the runtime sent to a cell's slot since a mark."""
    slot = nb.widgets_in(cell)
    assert slot, f"{cell} has no slot"
    out = []
    for e in nb.entries(since=since):
        if e.msg_type != "comm_msg" or e.content.get("comm_id") not in slot:
            continue
        data = e.content["data"]
        if data.get("method") == "update" and "outputs" in data.get("state", {}):
            out.append(
                {
                    "t": e.t,
                    "outputs": data["state"]["outputs"],
                    "bytes": len(json.dumps(e.msg["content"])),
                }
            )
    return out


def test_unchanged_output_is_not_resent(nb: Notebook) -> None:
    s = slider(nb, "s", "s = W.IntSlider(value=1, max=100); s")
    nb.execute("tens", "print('tens', s.value // 10)")
    nb.execute("m", "%%memoize --verbose\nopen(LOG, 'a').write('x')\nprint('parity', s.value % 2)")
    nb.execute("last", "print('value', s.value)")
    mark = nb.mark()
    nb.send_widget_update(s, {"value": 3})  # tens: same output; m: same output (a miss)
    wait_text(nb, "last", "value 3\n")
    assert runs(nb).get("tens") == 1 and runs(nb).get("m") == 1
    assert slot_updates(nb, "tens", mark) == []
    assert slot_updates(nb, "m", mark) == []
    assert len(slot_updates(nb, "last", mark)) == 1
    nb.send_widget_update(s, {"value": 5})
    wait_text(nb, "last", "value 5\n")
    nb.send_widget_update(s, {"value": 3})  # a hit, same output
    wait_text(nb, "last", "value 3\n")
    assert body_runs(nb) == 3 and memo_last(nb, "m") == "hit"
    assert len(slot_updates(nb, "m", mark)) == 0
    nb.send_widget_update(s, {"value": 14})
    wait_text(nb, "tens", "tens 1\n")
    wait_text(nb, "last", "value 14\n")
    assert len(slot_updates(nb, "tens", mark)) == 1
    assert len(slot_updates(nb, "m", mark)) == 1


def test_widget_figure_updated_in_place_is_not_redisplayed(nb: Notebook) -> None:
    pytest.importorskip("ipympl")
    nb.execute("mpl", "import matplotlib.pyplot as plt\n%matplotlib widget")
    s = slider(nb, "s", "s = W.IntSlider(value=1, max=100); s")
    nb.execute("fig", "fig, ax = plt.subplots()\nline, = ax.plot([0, 1], [0, 1])\nfig.canvas")
    # from here on the figure's slot must not change: not even a repaint of its first
    # state held back by the frame-rate cap and sent after the request was answered
    fig_done = nb.mark()
    (canvas,) = nb.find_widget("MPLCanvasModel", cell_id="fig")
    nb.execute("upd", "line.set_ydata([0, s.value])\nfig.canvas.draw_idle()")
    nb.execute("last", "print('value', s.value)")
    models = set(nb.models)
    mark = nb.mark()
    for v in (2, 3, 4):
        nb.send_widget_update(s, {"value": v})
        wait_text(nb, "last", f"value {v}\n")
    assert runs(nb).get("upd") == 3 and runs(nb).get("fig", 0) == 0
    assert set(nb.models) == models, "no widget was re-created"
    assert not [e for e in nb.entries(since=mark) if e.msg_type == "comm_open"]
    assert slot_updates(nb, "fig", fig_done) == [] and slot_updates(nb, "upd", mark) == []
    to_canvas = [
        e
        for e in nb.entries(since=mark)
        if e.msg_type == "comm_msg" and e.content["comm_id"] == canvas
    ]
    assert to_canvas, "the figure was told to redraw through its own comm"
    assert probe(nb, "list(map(int, line.get_ydata()))") == [0, 4]


def test_a_request_shows_its_last_image_before_its_reply_despite_the_frame_rate_cap(
    nb: Notebook,
) -> None:
    # the first image goes out while the cell runs (streamed after one interval); the
    # final fill comes well inside 1/max_fps of it, and must not wait for the cap
    cfg = f"{RT}.config"
    nb.execute(
        "fps",
        f"saved = ({cfg}.max_fps, {cfg}.stream_interval_ms)\n"
        f"{cfg}.max_fps = 1\n{cfg}.stream_interval_ms = 50",
    )
    try:
        nb.execute("n", "n = 1")  # a cell another cell's write reaches has a slot
        nb.execute(
            "pics",
            "import time\nfrom IPython.display import display\n"
            "display({'image/png': 'AAAA', 'text/plain': f'first {n}'}, raw=True)\n"
            "time.sleep(0.3)\n"
            "display({'image/png': 'BBBB', 'text/plain': 'second'}, raw=True)",
        )
        # execute() returned on the request's idle: what the page shows now is what the
        # user sees when the cell's [*] turns into a number
        assert nb.text("pics") == "first 1\nsecond\n"
        painted = slot_updates(nb, "pics", 0)
        assert [len(u["outputs"]) for u in painted] == [1, 2], "streamed, then final"
    finally:
        nb.execute("fps", f"{cfg}.max_fps, {cfg}.stream_interval_ms = saved")


def test_inline_figures_repaint_at_most_max_fps_and_end_on_the_final_state(nb: Notebook) -> None:
    nb.execute("mpl", "import matplotlib\nimport matplotlib.pyplot as plt\n%matplotlib inline")
    nb.execute("fps", f"{RT}.config.max_fps = 4")
    s = slider(nb, "s", "s = W.IntSlider(value=0, max=1000); s")
    nb.execute(
        "plot",
        "fig = plt.figure(figsize=(2, 1), dpi=30)\nplt.plot([0, s.value])\nprint('v', s.value)",
    )
    mark = nb.mark()
    values = list(range(1, 41))
    nb.send_widget_updates_throttled(s, values, timeout=30)
    nb.wait_for(
        lambda: (
            nb.text("plot").startswith("v 40\n")
            and any("image/png" in o.get("data", {}) for o in nb.visible("plot"))
        ),
        timeout=20,
        what="final state: text and picture of the last value",
    )
    painted = [
        u
        for u in slot_updates(nb, "plot", mark)
        if any("image/png" in o.get("data", {}) for o in u["outputs"])
    ]
    n_runs = runs(nb).get("plot", 0)
    assert n_runs >= 20, f"the burst should re-run the plot often ({n_runs})"
    assert len(painted) < n_runs, "repaints were capped"
    times = [u["t"] for u in painted]
    for i, t in enumerate(times):
        in_window = [x for x in times[i:] if x - t < 1.0]
        assert len(in_window) <= 4 + 1, f"{len(in_window)} repaints within one second"
    final = painted[-1]["outputs"]
    assert final[0]["text"] == "v 40\n" and "image/png" in final[1]["data"]


# --------------------------------------------------------------------------- the example


def test_memo_plot_example_revisits_are_instant(
    notebook_factory: Callable[..., Notebook], cache_home: Path
) -> None:
    from tests.kernel.test_examples import LAUNCHER, code_cells, png

    nb = notebook_factory(kernel_cmd=LAUNCHER, env={"XDG_CACHE_HOME": str(cache_home)})
    for cid, src in code_cells("memo_plot.ipynb"):
        reply = nb.execute(cid, src, timeout=60)
        assert reply["status"] == "ok", (cid, reply)
    assert nb.text("data") == "simulated 2000 samples at 3 Hz\n"
    assert len(png(nb, "plot")) == 1
    freq = nb.find_widget("IntSliderModel")[0]
    images = {3: png(nb, "plot")[0]}
    shown = images[3]
    for v in (5, 3, 5):
        mark = nb.mark()
        mid = nb.send_widget_update(freq, {"value": v})
        nb.wait_for(
            lambda v=v, before=shown: (
                f"at {v} Hz" in nb.text("data") and png(nb, "plot") not in ([], [before])
            ),
            timeout=30,
            what=f"data and plot at {v} Hz",
        )
        (shown,) = png(nb, "plot")
        if v in images:
            assert shown == images[v], "a revisit shows the same picture"
            assert memo_last(nb, "data") == "hit"
            assert nb.text("data") == f"simulated 2000 samples at {v} Hz\n", "--verbose replays"
            took = slot_updates(nb, "plot", mark)[-1]["t"] - nb.sent_at(mid)
            assert took < 0.9, f"a revisit does not wait for the 1 s body ({took:.2f} s)"
        images[v] = shown
    assert runs(nb).get("data") == 3 and probe(nb, f"{RT}.memo.cache.stats.hits") == 2
    assert lost_output(nb) == []
