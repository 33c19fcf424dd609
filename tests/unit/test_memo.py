"""reactive.memo: keys that never falsely hit, isolated values, the LRU, and the hostile disk."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import stat
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from reactive.fingerprint import Unfingerprintable
from reactive.memo import (
    MISSING,
    DiskStore,
    Entry,
    MemoCache,
    MemoryStore,
    Unpicklable,
    UnsafeCacheDir,
    build_key,
    default_cache_dir,
    ends_with_semicolon,
    normalise_source,
    pack_values,
    unpack_values,
)

# --------------------------------------------------------------------------- keys


def key(inputs: dict, source: str = "y = x", scope: str = "c") -> str | None:
    return build_key(normalise_source(source), inputs, scope=scope)[0]


def test_same_inputs_same_key_and_any_difference_changes_it() -> None:
    base = key({"x": 1, "s.value": 3})
    assert base is not None and base == key({"s.value": 3, "x": 1})
    others = [
        key({"x": 1.0, "s.value": 3}),  # type matters
        key({"x": True, "s.value": 3}),
        key({"x": 1, "s.value": 4}),
        key({"x": 1}),  # a missing input is a different input set
        key({"x": 1, "s.value": 3, "z": MISSING}),
        key({"x": 1, "s.value": 3}, scope="other cell"),
        key({"x": 1, "s.value": 3}, source="y = x + 1"),
    ]
    assert base not in others and len(set(others)) == len(others)


def test_names_and_values_cannot_be_confused() -> None:
    assert key({"ab": "c"}) != key({"a": "bc"})
    assert key({"a": "b", "c": "d"}) != key({"a": "bc", "": "d"})


def test_mutation_in_place_changes_the_key() -> None:
    arr = np.arange(10)
    lst = [1, 2, {"k": [3]}]
    before = key({"arr": arr, "lst": lst})
    arr[0] = 9
    after_arr = key({"arr": arr, "lst": lst})
    lst[2]["k"].append(4)  # type: ignore[index]
    after_lst = key({"arr": arr, "lst": lst})
    assert len({before, after_arr, after_lst}) == 3


def test_an_unfingerprintable_input_gives_no_key_and_says_which() -> None:
    import threading

    k, why = build_key("src", {"ok": 1, "lk": threading.Lock()})
    assert k is None and why is not None and why.startswith("input `lk` cannot be fingerprinted")
    always_new = build_key("src", {"v": 1}, fp=lambda v: Unfingerprintable("test"))
    assert always_new == (None, "input `v` cannot be fingerprinted (test)")


def test_source_normalisation_ignores_comments_and_layout_only() -> None:
    a = normalise_source("x = 1\ny = x + 2\n")
    assert a == normalise_source("x = 1  # one\n\n\ny = x+2\n")
    assert a == normalise_source("    x = 1\n    y = x + 2\n")  # dedented
    assert a != normalise_source("x = 1\ny = x + 3\n")
    assert normalise_source("x") != normalise_source("x;")
    assert normalise_source("f'{x = }'") != normalise_source("f'{x=}'")
    bad = normalise_source("x = (")
    assert bad.startswith("text:") and bad != normalise_source("x = [")


def test_ends_with_semicolon() -> None:
    assert ends_with_semicolon("x;") and ends_with_semicolon("x;  # quiet\n")
    assert not ends_with_semicolon("x") and not ends_with_semicolon("s = ';'")


# --------------------------------------------------------------------------- values


def test_values_round_trip_as_isolated_copies_with_aliases_kept() -> None:
    lst = [1, 2]
    arr = np.zeros(3)
    blob = pack_values({"pairs": [("lst", lst), ("alias", lst), ("arr", arr)]})
    lst.append(3)  # mutating the originals does not touch the entry
    arr[0] = 5
    first = dict(unpack_values(blob)["pairs"])
    assert first["lst"] == [1, 2] and first["arr"].tolist() == [0, 0, 0]
    assert first["alias"] is first["lst"]
    first["lst"].append(99)  # nor does mutating a restored copy
    first["arr"][1] = 7
    second = dict(unpack_values(blob)["pairs"])
    assert second["lst"] == [1, 2] and second["arr"].tolist() == [0, 0, 0]


def test_modules_are_stored_by_name() -> None:
    blob = pack_values({"np": np, "os": os})
    assert unpack_values(blob) == {"np": np, "os": os}


def test_notebook_functions_and_classes_are_refused() -> None:
    main = types.ModuleType("__main__")
    exec("def f():\n    return 1\nclass C:\n    pass\n", main.__dict__)
    with pytest.raises(Unpicklable, match="function 'f' is defined in the notebook"):
        pack_values({"f": main.__dict__["f"]})
    with pytest.raises(Unpicklable, match="class 'C' is defined in the notebook"):
        pack_values({"c": [main.__dict__["C"]()]})
    with pytest.raises(Unpicklable):
        pack_values({"gen": (i for i in range(3))})
    fake = types.ModuleType("not_importable_anywhere")
    with pytest.raises(Unpicklable, match="cannot be re-imported"):
        pack_values({"m": fake})


# --------------------------------------------------------------------------- memory


def entry(k: str, size: int, cell: str = "c") -> Entry:
    return Entry(key=k, cell=cell, outputs=[], values=b"", size=size)


def test_lru_is_bounded_by_bytes_and_evicts_least_recently_used() -> None:
    m = MemoryStore(max_bytes=100)
    for k in ("a", "b", "c"):
        assert m.put(entry(k, 30))
    assert m.bytes == 90 and len(m) == 3
    assert m.get("a") is not None  # a is now the most recent
    m.put(entry("d", 30))  # 120 > 100: b goes
    assert "b" not in m and {"a", "c", "d"} <= {e.key for e in m.entries()}
    assert m.bytes == 90 and m.evictions == 1
    assert not m.put(entry("huge", 101)), "an entry larger than the bound is not kept"
    assert "huge" not in m and m.bytes == 90
    m.resize(40)
    assert len(m) == 1 and m.bytes == 30 and "d" in m
    m.put(entry("e", 10, cell="other"))
    assert m.clear("other") == 1 and m.bytes == 30
    assert m.clear() == 1 and m.bytes == 0


def test_entry_size_counts_pickle_and_outputs() -> None:
    e = Entry(
        key="k", cell="c", outputs=[{"output_type": "stream", "text": "x" * 50}], values=b"v" * 10
    )
    assert e.size > 60


# --------------------------------------------------------------------------- disk


@pytest.fixture
def store(tmp_path: Path) -> DiskStore:
    return DiskStore(tmp_path / "cache" / "memo", max_bytes=10_000_000)


def stored(s: DiskStore, k: str = "ab" * 32, **values: object) -> Entry:
    e = Entry(
        key=k,
        cell="cell-1",
        outputs=[{"output_type": "execute_result", "data": {"text/plain": "42"}, "metadata": {}}],
        values=pack_values({"pairs": list(values.items()) or [("x", 42)]}),
    )
    s.put(e)
    return e


def test_store_is_private_and_round_trips(store: DiskStore) -> None:
    assert stat.S_IMODE(store.dir.stat().st_mode) == 0o700
    secret = store.dir / "secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600 and secret.stat().st_size == 32
    e = stored(store)
    got = store.get(e.key)
    assert got is not None and got.outputs == e.outputs and got.cell == "cell-1"
    assert unpack_values(got.values) == {"pairs": [("x", 42)]}
    assert DiskStore(store.dir, 10_000_000).get(e.key) is not None, "same secret next time"


class Marker:
    """Unpickling this creates a file."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.path, "w"))


def _variants(good: bytes, evil: bytes) -> dict[str, bytes]:
    head = len(b"RMEMO\x01\n") + 32
    return {
        "raw pickle": evil,
        "good mac, evil body": good[:head] + evil,
        "good mac and meta, evil values": good[: len(good) - 20] + evil,
        "truncated": good[: len(good) // 2],
        "truncated to the header": good[:head],
        "empty": b"",
        "flipped mac bit": good[:10] + bytes([good[10] ^ 1]) + good[11:],
        "flipped body bit": good[:-1] + bytes([good[-1] ^ 1]),
        "wrong magic": b"XMEMO\x01\n" + good[7:],
    }


def test_bad_entries_are_discarded_and_never_unpickled(store: DiskStore, tmp_path: Path) -> None:
    e = stored(store)
    path = store.dir / f"{e.key}.entry"
    good = path.read_bytes()
    marker = tmp_path / "pwned"
    evil = pickle.dumps({"pairs": [("x", Marker(str(marker)))]})
    for name, data in _variants(good, evil).items():
        path.write_bytes(data)
        assert store.get(e.key) is None, name
        assert not marker.exists(), f"{name}: unverified bytes were unpickled"
        assert not path.exists(), f"{name}: a bad entry is deleted"
        assert store.last_problem and store.last_problem.startswith("discarded disk entry")
    path.write_bytes(good)
    assert store.get(e.key) is not None


def test_a_valid_entry_copied_under_another_key_is_rejected(store: DiskStore) -> None:
    a = stored(store, "aa" * 32, x=1)
    b_path = store.dir / ("bb" * 32 + ".entry")
    b_path.write_bytes((store.dir / f"{a.key}.entry").read_bytes())
    assert store.get("bb" * 32) is None and not b_path.exists()


def test_an_entry_made_with_another_secret_is_rejected(tmp_path: Path) -> None:
    one = DiskStore(tmp_path / "one", 1_000_000)
    two = DiskStore(tmp_path / "two", 1_000_000)
    e = stored(one)
    (two.dir / f"{e.key}.entry").write_bytes((one.dir / f"{e.key}.entry").read_bytes())
    assert two.get(e.key) is None


def test_keys_must_be_hex(store: DiskStore) -> None:
    for bad in ("../../etc/passwd", "", "AB", "a/b"):
        with pytest.raises(ValueError):
            store.get(bad)


@pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX permissions")
def test_refuses_directories_others_can_write_or_read(tmp_path: Path) -> None:
    for mode, words in ((0o777, "writable by other users"), (0o770, "writable"),
                        (0o755, "readable by other users")):  # fmt: skip
        d = tmp_path / f"d{mode:o}"
        d.mkdir()
        os.chmod(d, mode)
        with pytest.raises(UnsafeCacheDir, match=words):
            DiskStore(d, 1000)
        assert not (d / "secret").exists(), "nothing is written into a refused directory"


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs chown")
def test_refuses_a_directory_owned_by_another_user(tmp_path: Path) -> None:
    d = tmp_path / "theirs"
    d.mkdir(mode=0o700)
    os.chown(d, 65534, 65534)
    with pytest.raises(UnsafeCacheDir, match="owned by another user"):
        DiskStore(d, 1000)


@pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX permissions")
def test_refuses_a_secret_others_can_read(store: DiskStore) -> None:
    os.chmod(store.dir / "secret", 0o644)
    with pytest.raises(UnsafeCacheDir, match="readable by other users"):
        DiskStore(store.dir, 1000)
    os.chmod(store.dir / "secret", 0o600)
    (store.dir / "secret").write_bytes(b"short")
    with pytest.raises(UnsafeCacheDir, match="32-byte secret"):
        DiskStore(store.dir, 1000)


def test_cache_refusal_is_reported_not_raised(tmp_path: Path) -> None:
    d = tmp_path / "open"
    d.mkdir()
    os.chmod(d, 0o777)
    cache = MemoCache(1000)
    if hasattr(os, "geteuid"):
        assert not cache.open_disk(d, 1000)
        assert cache.disk is None and "disk memo disabled" in (cache.disk_problem or "")


def test_eviction_keeps_the_total_under_the_bound_least_recent_first(tmp_path: Path) -> None:
    s = DiskStore(tmp_path / "m", max_bytes=10**9)
    keys = [f"{i:02x}" * 32 for i in range(4)]
    for i, k in enumerate(keys):
        stored(s, k, blob=b"x" * 10_000)
        os.utime(s.dir / f"{k}.entry", (1000 + i, 1000 + i))
    size = (s.dir / f"{keys[0]}.entry").stat().st_size
    s.get(keys[0])  # a hit makes it recent
    s.max_bytes = size * 2 + 10
    s.evict()
    left = {p.name[:64] for p in s.dir.glob("*.entry")}
    assert left == {keys[0], keys[3]}
    assert s.usage() == (2, sum((s.dir / f"{k}.entry").stat().st_size for k in left))
    assert s.clear() == 2 and s.usage() == (0, 0)


def test_clear_one_cell_only(store: DiskStore) -> None:
    stored(store, "aa" * 32)
    e = Entry(key="bb" * 32, cell="other", outputs=[], values=pack_values({"pairs": []}))
    store.put(e)
    assert store.clear("other") == 1 and store.usage()[0] == 1


def test_stale_temporary_files_are_cleaned(store: DiskStore) -> None:
    tmp = store.dir / ".tmp-crashed.entry"
    tmp.write_bytes(b"half")
    os.utime(tmp, (0, 0))
    fresh = store.dir / ".tmp-writing.entry"
    fresh.write_bytes(b"half")
    store.evict()
    assert not tmp.exists() and fresh.exists(), "another writer's file in progress is kept"


def test_default_cache_dir_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    if sys.platform in ("win32", "darwin"):
        pytest.skip("XDG is the Linux/BSD convention")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "reactive" / "memo"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")  # the spec says: ignore it
    assert default_cache_dir() == Path.home() / ".cache" / "reactive" / "memo"


# --------------------------------------------------------------------------- concurrency


def _writer(directory: str, k: str, fill: int, rounds: int) -> None:
    s = DiskStore(directory, 10**9)
    for _ in range(rounds):
        s.put(
            Entry(
                key=k, cell="c", outputs=[], values=pack_values({"fill": bytes([fill]) * 300_000})
            )
        )


def _reader(directory: str, k: str, rounds: int, q: multiprocessing.Queue) -> None:
    s = DiskStore(directory, 10**9)
    seen = set()
    for _ in range(rounds):
        e = s.get(k)
        if e is not None:
            seen.add(unpack_values(e.values)["fill"][:1])
        elif s.last_problem:
            q.put(f"problem: {s.last_problem}")
            return
    q.put(sorted(seen))


def test_concurrent_writers_of_one_key_leave_whole_entries(tmp_path: Path) -> None:
    """Processes race to create the secret and write one key while another reads it."""
    ctx = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    d = str(tmp_path / "shared")
    k = "cd" * 32
    q = ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(d, k, fill, 30)) for fill in (1, 2, 3)]
    procs.append(ctx.Process(target=_reader, args=(d, k, 200, q)))
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    result = q.get(timeout=10)
    assert not isinstance(result, str), result
    assert set(result) <= {b"\x01", b"\x02", b"\x03"}
    final = DiskStore(d, 10**9).get(k)
    assert final is not None and unpack_values(final.values)["fill"] in (
        b"\x01" * 300_000,
        b"\x02" * 300_000,
        b"\x03" * 300_000,
    )
    assert [p.name for p in Path(d).iterdir() if p.name.startswith(".tmp-")] == []
