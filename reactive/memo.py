"""Memoization: cache keys, a byte-bounded LRU in memory, and a verified disk store.

``%%memoize`` (DESIGN.md §6) skips a slow cell when it has already run on the
same inputs: its defs are restored and its outputs replayed.  This module is
the host-agnostic part; the kernel integration decides what the inputs are
(the graph's refs, resolved in the namespace) and how outputs are replayed.

The rules, each chosen because the alternative is a wrong answer on screen:

* **Never a false hit.**  A key is a SHA-256 over the normalised source and
  the exact content fingerprint (``reactive.fingerprint``) of every input.  An
  input that cannot be fingerprinted gives *no key*: the cell runs.  A key
  also covers the Python version and this module's format version, because a
  pickle from another interpreter may not mean the same thing.
* **Isolation.**  Values are stored as one pickle of all the cell's defs (so
  aliases between them survive) taken when the cell finished, and every hit
  unpickles a fresh copy: mutating a restored list, array or frame later
  cannot corrupt the entry, and neither can mutating the originals.  Objects
  that only exist in the notebook's ``__main__`` (its functions and classes)
  would be pickled *by name* and come back as whatever that name means later,
  so a value that references one is not cached at all.  Modules are stored by
  name (``import numpy as np`` inside a memoized cell is fine).
* **Bounded memory.**  Entries are kept in an LRU bounded by the bytes of their
  pickles and outputs; an entry larger than the bound is not kept.
* **The disk is hostile.**  Files in the cache directory may be truncated (a
  crash), corrupted, or written by someone else.  Every entry carries an
  HMAC-SHA256 under a per-user secret, computed over the entry *and its key*
  (so a valid entry copied under another key's name is rejected too), and it
  is verified before a single byte is unpickled.  Anything that fails is
  deleted and reported as a miss.  The directory must be private to the user
  (mode 0700, owned by them); one that is group/world-writable or owned by
  someone else is refused rather than trusted.  Writes go to a temporary file
  in the same directory and are renamed into place (``os.replace`` is atomic),
  so two kernels writing the same key leave one complete entry, never a mix.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import hmac
import importlib
import io
import json
import os
import pickle
import secrets
import stat
import struct
import sys
import tempfile
import textwrap
import time
import types
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .fingerprint import Unfingerprintable, fingerprint

__all__ = [
    "DiskStore",
    "Entry",
    "MemoCache",
    "MemoryStore",
    "Missing",
    "Unpicklable",
    "UnsafeCacheDir",
    "build_key",
    "default_cache_dir",
    "ends_with_semicolon",
    "normalise_source",
    "pack_values",
    "unpack_values",
]

#: bumped whenever the key derivation or the entry format changes
FORMAT = 1
_MAGIC = b"RMEMO\x01\n"
_MAC_SIZE = 32
_LEN = struct.Struct("<Q")
_SECRET_SIZE = 32
_ENTRY_SUFFIX = ".entry"
_TMP_PREFIX = ".tmp-"
#: a temporary file older than this is a leftover of a crashed writer
_STALE_TMP_SECONDS = 3600.0


class Missing:
    """Marks a def the cell deleted (``del x``) or an input that is not defined."""

    def __reduce__(self) -> str:
        return "MISSING"

    def __repr__(self) -> str:
        return "<missing>"


MISSING = Missing()


# ---------------------------------------------------------------------------
# Keys
# ---------------------------------------------------------------------------


def normalise_source(body: str, transform: Callable[[str], str] | None = None) -> str:
    """The part of a cell's text that decides what it computes.

    The (IPython-transformed) body's AST dump: comments, blank lines and
    formatting do not change the key; any change to the code does.  A final
    ``;`` is kept as a flag because it decides whether the last value shows.
    Text that does not parse keys on its whitespace-normalised self.
    """
    text = textwrap.dedent(body.replace("\r\n", "\n").replace("\r", "\n"))
    code = text
    if transform is not None:
        with contextlib.suppress(Exception):
            code = transform(text)
    quiet = ends_with_semicolon(code)
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        lines = [line.rstrip() for line in text.split("\n")]
        return "text:" + "\n".join(line for line in lines if line)
    return f"ast:{int(quiet)}:" + ast.dump(tree, include_attributes=False)


def ends_with_semicolon(code: str) -> bool:
    """Whether the last token is ``;`` (IPython then hides the final value)."""
    import tokenize

    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(code).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return code.rstrip().endswith(";")
    skip = (tokenize.ENDMARKER, tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT)
    skip += (tokenize.INDENT, tokenize.DEDENT)
    for tok in reversed(tokens):
        if tok.type in skip:
            continue
        return tok.type == tokenize.OP and tok.string == ";"
    return False


def build_key(
    source: str,
    inputs: Mapping[str, Any],
    *,
    scope: str = "",
    fp: Callable[[Any], bytes | Unfingerprintable] = fingerprint,
) -> tuple[str | None, str | None]:
    """``(key, None)``, or ``(None, why)`` when an input cannot be fingerprinted.

    ``scope`` keeps entries apart that should not be shared (the kernel
    passes the cell id: a cell's first run shows its own outputs even when
    another cell has the same text).
    ``source`` is the normalised source; ``inputs`` maps each input's name
    (a symbol path as text) to its current value, :data:`MISSING` for one that
    is not defined.  Inputs are hashed in sorted order, each prefixed by its
    name and length, so no two different input sets share a serialization.
    """
    h = hashlib.sha256()
    head = f"reactive-memo/{FORMAT}/py{sys.version_info[0]}.{sys.version_info[1]}"
    for part in (head, scope, source):
        raw = part.encode("utf-8", "surrogatepass")
        h.update(_LEN.pack(len(raw)) + raw)
    for name in sorted(inputs):
        value = inputs[name]
        digest = b"<missing>" if isinstance(value, Missing) else fp(value)
        if isinstance(digest, Unfingerprintable):
            return None, f"input `{name}` cannot be fingerprinted ({digest.reason})"
        raw = name.encode("utf-8", "surrogatepass")
        h.update(_LEN.pack(len(raw)) + raw + _LEN.pack(len(digest)) + digest)
    return h.hexdigest(), None


# ---------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------


class Unpicklable(Exception):
    """A def cannot be stored as an isolated copy; the reason names it."""


class _Pickler(pickle.Pickler):
    """Pickles modules by name and refuses objects only ``__main__`` can name."""

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, types.ModuleType):
            name = getattr(obj, "__name__", None)
            if not name or name == "__main__" or sys.modules.get(name) is not obj:
                raise Unpicklable(f"module {name!r} cannot be re-imported by name")
            return importlib.import_module, (name,)
        if isinstance(obj, (types.FunctionType, type)) and getattr(obj, "__module__", None) in (
            "__main__",
            None,
        ):
            kind = "class" if isinstance(obj, type) else "function"
            raise Unpicklable(
                f"{kind} {getattr(obj, '__qualname__', obj)!r} is defined in the notebook"
            )
        return NotImplemented


def pack_values(values: Mapping[str, Any]) -> bytes:
    """One pickle of all defs (aliases between them preserved); :class:`Unpicklable` if not."""
    buf = io.BytesIO()
    try:
        _Pickler(buf, protocol=5).dump(dict(values))
    except Unpicklable:
        raise
    except Exception as exc:  # pickling runs arbitrary __reduce__ code
        raise Unpicklable(f"{type(exc).__name__}: {exc}") from None
    return buf.getvalue()


def unpack_values(blob: bytes) -> dict[str, Any]:
    """A fresh copy of stored defs.  Only ever called on memory or verified bytes."""
    values = pickle.loads(blob)
    if not isinstance(values, dict):
        raise ValueError("memo entry does not hold a dict of values")
    return values


# ---------------------------------------------------------------------------
# Entries
# ---------------------------------------------------------------------------


@dataclass
class Entry:
    """What a run left behind: its outputs (nbformat dicts) and its defs (a pickle)."""

    key: str
    cell: str
    outputs: list[dict[str, Any]]
    values: bytes
    created: float = field(default_factory=time.time)
    #: bytes this entry holds (pickle + outputs as JSON); the LRU's measure
    size: int = 0

    def __post_init__(self) -> None:
        if not self.size:
            self.size = len(self.values) + len(_outputs_json(self.outputs))


def _outputs_json(outputs: list[dict[str, Any]]) -> bytes:
    return json.dumps(outputs, sort_keys=True, default=repr).encode()


# ---------------------------------------------------------------------------
# Memory
# ---------------------------------------------------------------------------


class MemoryStore:
    """An LRU of entries bounded by their total size in bytes."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self.bytes = 0
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def get(self, key: str) -> Entry | None:
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def put(self, entry: Entry) -> bool:
        """Keep ``entry`` (evicting the least recently used); False if it alone is too big."""
        old = self._entries.pop(entry.key, None)
        if old is not None:
            self.bytes -= old.size
        if entry.size > self.max_bytes:
            return False
        self._entries[entry.key] = entry
        self.bytes += entry.size
        self._shrink()
        return True

    def pop(self, key: str) -> Entry | None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self.bytes -= entry.size
        return entry

    def resize(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._shrink()

    def _shrink(self) -> None:
        while self.bytes > self.max_bytes and self._entries:
            _, gone = self._entries.popitem(last=False)
            self.bytes -= gone.size
            self.evictions += 1

    def clear(self, cell: str | None = None) -> int:
        keys = [k for k, e in self._entries.items() if cell is None or e.cell == cell]
        for k in keys:
            self.bytes -= self._entries.pop(k).size
        return len(keys)

    def entries(self) -> list[Entry]:
        return list(self._entries.values())


# ---------------------------------------------------------------------------
# Disk
# ---------------------------------------------------------------------------


class UnsafeCacheDir(Exception):
    """The cache directory (or its secret) is not private to this user."""


def default_cache_dir() -> Path:
    """``<platform cache dir>/reactive/memo``: XDG on Linux, Library/Caches, LOCALAPPDATA."""
    home = Path.home()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or home / "AppData" / "Local")
        return base / "reactive" / "Cache" / "memo"
    if sys.platform == "darwin":
        return home / "Library" / "Caches" / "reactive" / "memo"
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else home / ".cache"
    return base / "reactive" / "memo"


def _posix() -> bool:
    return hasattr(os, "geteuid")


def _check_private_dir(path: Path) -> None:
    st = os.stat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafeCacheDir(f"{path} is not a directory")
    if not _posix():
        return
    if st.st_uid != os.geteuid():
        raise UnsafeCacheDir(f"{path} is owned by another user (uid {st.st_uid})")
    if st.st_mode & 0o022:
        raise UnsafeCacheDir(f"{path} is writable by other users; use a private directory")
    if st.st_mode & 0o077:
        raise UnsafeCacheDir(f"{path} is readable by other users; chmod 700 it")


class DiskStore:
    """Entries as files ``<key>.entry`` in a private directory, each HMAC-authenticated.

    File layout: magic, HMAC-SHA256 (32 bytes), then the authenticated body:
    length-prefixed JSON metadata (key, cell, outputs, created) and the pickle.
    The MAC covers the magic, the key the file is looked up under, and the
    body; it is checked before the metadata is parsed or the pickle loaded.
    """

    def __init__(self, directory: str | os.PathLike[str], max_bytes: int) -> None:
        self.dir = Path(directory).expanduser()
        self.max_bytes = max_bytes
        self.discarded = 0
        #: why the last ``get`` found nothing usable (for ``--verbose``)
        self.last_problem: str | None = None
        self._prepare()
        self._secret = self._load_secret()

    # ------------------------------------------------------------- setup
    def _prepare(self) -> None:
        d = self.dir
        if not d.exists():
            # parents the usual way; the store itself strictly private
            d.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            with contextlib.suppress(FileExistsError):
                d.mkdir(mode=0o700)
        _check_private_dir(d)

    def _load_secret(self) -> bytes:
        path = self.dir / "secret"
        for _ in range(3):
            try:
                return self._read_secret(path)
            except FileNotFoundError:
                pass
            # write it completely under a temporary name, then link it into place:
            # link() fails if another kernel got there first, and then we read theirs
            fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=_TMP_PREFIX)
            try:
                os.write(fd, secrets.token_bytes(_SECRET_SIZE))
                os.fsync(fd)
            finally:
                os.close(fd)
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass
            except OSError:  # no hard links (some filesystems): rename, which overwrites
                os.replace(tmp, path)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
        return self._read_secret(path)

    def _read_secret(self, path: Path) -> bytes:
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(path, flags)
        try:
            st = os.fstat(fd)
            if _posix():
                if st.st_uid != os.geteuid():
                    raise UnsafeCacheDir(f"{path} is owned by another user")
                if st.st_mode & 0o077:
                    raise UnsafeCacheDir(f"{path} is readable by other users (must be 0600)")
            data = os.read(fd, _SECRET_SIZE + 1)
        finally:
            os.close(fd)
        if len(data) != _SECRET_SIZE:
            raise UnsafeCacheDir(f"{path} is not a {_SECRET_SIZE}-byte secret")
        return data

    # --------------------------------------------------------- entries
    def _path(self, key: str) -> Path:
        if not key or not all(c in "0123456789abcdef" for c in key):
            raise ValueError(f"bad memo key {key!r}")
        return self.dir / (key + _ENTRY_SUFFIX)

    def _mac(self, key: str, body: bytes) -> bytes:
        return hmac.new(self._secret, _MAGIC + key.encode() + body, hashlib.sha256).digest()

    def encode(self, entry: Entry) -> bytes:
        meta = json.dumps(
            {
                "key": entry.key,
                "cell": entry.cell,
                "created": entry.created,
                "outputs": entry.outputs,
            },
            default=repr,
        ).encode()
        body = _LEN.pack(len(meta)) + meta + entry.values
        return _MAGIC + self._mac(entry.key, body) + body

    def decode(self, key: str, raw: bytes) -> Entry:
        """The entry in ``raw``; ValueError if it is not authentic and complete."""
        head = len(_MAGIC) + _MAC_SIZE
        if len(raw) < head + _LEN.size or not raw.startswith(_MAGIC):
            raise ValueError("truncated or not a memo entry")
        mac, body = raw[len(_MAGIC) : head], raw[head:]
        if not hmac.compare_digest(mac, self._mac(key, body)):
            raise ValueError("authentication failed (corrupt, truncated or tampered)")
        (n,) = _LEN.unpack_from(body)
        meta = json.loads(body[_LEN.size : _LEN.size + n])
        if meta.get("key") != key:
            raise ValueError("entry belongs to another key")
        return Entry(
            key=key,
            cell=str(meta.get("cell", "")),
            outputs=list(meta.get("outputs") or []),
            values=body[_LEN.size + n :],
            created=float(meta.get("created", 0.0)),
            size=len(raw),
        )

    def get(self, key: str) -> Entry | None:
        """The verified entry for ``key``; a bad one is deleted and None returned."""
        self.last_problem = None
        path = self._path(key)
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError:
            return None
        except OSError as exc:
            self.last_problem = f"cannot open {path.name}: {exc}"
            return None
        try:
            with os.fdopen(fd, "rb") as f:
                raw = f.read()
        except OSError as exc:
            self.last_problem = f"cannot read {path.name}: {exc}"
            return None
        try:
            entry = self.decode(key, raw)
        except (ValueError, json.JSONDecodeError, struct.error) as exc:
            self.discard(key, f"discarded disk entry {path.name[:12]}: {exc}")
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # recency for eviction
        return entry

    def has(self, key: str) -> bool:
        return self._path(key).is_file()

    def discard(self, key: str, why: str) -> None:
        self.last_problem = why
        self.discarded += 1
        with contextlib.suppress(OSError):
            os.unlink(self._path(key))

    def put(self, entry: Entry) -> None:
        """Write atomically: a complete file appears under the key's name, or nothing."""
        data = self.encode(entry)
        if len(data) > self.max_bytes:
            return
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=_TMP_PREFIX, suffix=_ENTRY_SUFFIX)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self._path(entry.key))
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        self.evict()

    def _listing(self) -> list[tuple[float, int, Path]]:
        found = []
        now = time.time()
        with os.scandir(self.dir) as it:
            for de in it:
                try:
                    st = de.stat(follow_symlinks=False)
                except OSError:
                    continue
                if de.name.startswith(_TMP_PREFIX):
                    if now - st.st_mtime > _STALE_TMP_SECONDS:
                        with contextlib.suppress(OSError):
                            os.unlink(de.path)
                    continue
                if de.name.endswith(_ENTRY_SUFFIX) and stat.S_ISREG(st.st_mode):
                    found.append((st.st_mtime, st.st_size, Path(de.path)))
        return found

    def evict(self) -> int:
        """Delete least recently used entries until the total fits the bound."""
        listing = sorted(self._listing())
        total = sum(size for _, size, _ in listing)
        removed = 0
        for _, size, path in listing:
            if total <= self.max_bytes:
                break
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            total -= size
            removed += 1
        return removed

    def usage(self) -> tuple[int, int]:
        """(entries, bytes) on disk."""
        listing = self._listing()
        return len(listing), sum(size for _, size, _ in listing)

    def clear(self, cell: str | None = None) -> int:
        removed = 0
        for _, _, path in self._listing():
            if cell is not None:
                key = path.name[: -len(_ENTRY_SUFFIX)]
                try:
                    entry = self.decode(key, path.read_bytes())
                except (OSError, ValueError, json.JSONDecodeError, struct.error):
                    continue
                if entry.cell != cell:
                    continue
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed += 1
        return removed


# ---------------------------------------------------------------------------
# The cache the kernel uses
# ---------------------------------------------------------------------------


@dataclass
class Stats:
    hits: int = 0
    misses: int = 0
    #: runs whose result could not be stored (no key, or a def that cannot be copied)
    uncached: int = 0

    @property
    def hit_rate(self) -> float:
        looked = self.hits + self.misses
        return self.hits / looked if looked else 0.0


class MemoCache:
    """Memory first, then (for disk-enabled lookups) the disk store."""

    def __init__(self, max_bytes: int) -> None:
        self.memory = MemoryStore(max_bytes)
        self.disk: DiskStore | None = None
        #: why the disk store is unavailable, when it was asked for and refused
        self.disk_problem: str | None = None
        self.stats = Stats()

    def open_disk(self, directory: str | os.PathLike[str] | None, max_bytes: int) -> bool:
        target = Path(directory).expanduser() if directory else default_cache_dir()
        if self.disk is not None and self.disk.dir == target:
            self.disk.max_bytes = max_bytes
            return True
        try:
            self.disk = DiskStore(target, max_bytes)
        except (UnsafeCacheDir, OSError) as exc:
            self.disk, self.disk_problem = None, f"disk memo disabled: {exc}"
            return False
        self.disk_problem = None
        return True

    def lookup(self, key: str, *, disk: bool) -> Entry | None:
        entry = self.memory.get(key)
        if entry is None and disk and self.disk is not None:
            entry = self.disk.get(key)
            if entry is not None:
                self.memory.put(entry)
        return entry

    def store(self, entry: Entry, *, disk: bool) -> None:
        self.memory.put(entry)
        if disk and self.disk is not None:
            self.disk.put(entry)

    def ensure_on_disk(self, entry: Entry) -> None:
        """A memory hit under ``--disk`` writes the entry if the disk lacks it."""
        if self.disk is not None and not self.disk.has(entry.key):
            self.disk.put(entry)

    def discard(self, key: str, why: str) -> None:
        """Forget an entry whose values turned out not to load."""
        self.memory.pop(key)
        if self.disk is not None:
            self.disk.discard(key, why)

    def clear(self, cell: str | None = None) -> tuple[int, int]:
        on_disk = self.disk.clear(cell) if self.disk is not None else 0
        return self.memory.clear(cell), on_disk

    def cells(self) -> dict[str, tuple[int, int]]:
        """cell -> (entries, bytes) in memory."""
        out: dict[str, tuple[int, int]] = {}
        for e in self.memory.entries():
            n, b = out.get(e.cell, (0, 0))
            out[e.cell] = (n + 1, b + e.size)
        return out


def iter_outputs(outputs: Iterable[dict[str, Any]], kinds: Iterable[str]) -> list[dict[str, Any]]:
    """The outputs of the given ``output_type``s, in order (what a replay mode shows)."""
    wanted = set(kinds)
    return [o for o in outputs if o.get("output_type") in wanted]
