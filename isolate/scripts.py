"""Scripts as the host sends them: compiled once per worker, and cached data.

A script is identified by a key: a hash of its code and of what compiling
it depends on (file name, line and column offsets). A worker compiles a
script the first time it sees its key and keeps the bytecode; the host
remembers which keys each worker has, and afterwards sends only the key.

Cached data (``Script.create_cached_data()``) is that bytecode, signed. QuickJS
loads bytecode without verifying it, and bytecode from elsewhere can corrupt
the worker's memory, so cached data is only ever turned back into bytecode
after its HMAC-SHA256, under a key only this host user holds, matches the
script's key and the engine's version. Anything else is rejected
(``cached_data_rejected``) and the script is compiled from its code.

The signing key comes from ``ISOLATE_CACHED_DATA_KEY`` (any text) when set,
else from ``$XDG_CACHE_HOME/isolate/cached-data.key`` (``~/.cache/...``),
created on first use with mode 0600. If that file can be neither read nor
created, a random key for this process is used: cached data then only
verifies in the process that produced it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
from collections import OrderedDict
from pathlib import Path

__all__ = ["ScriptSource", "make_cached_data", "open_cached_data", "KnownScripts"]

_MAGIC = b"isolate-cached-data\x01"
_KEY_ENV = "ISOLATE_CACHED_DATA_KEY"


class ScriptSource:
    """The code of one script with what compiling it depends on, and its key."""

    __slots__ = ("code", "filename", "line_offset", "column_offset", "key", "bytecode", "kind")

    def __init__(self, code: str, filename: str, line_offset: int, column_offset: int,
                 kind: str = "script"):
        self.code = code
        self.filename = filename
        self.line_offset = line_offset
        self.column_offset = column_offset
        self.kind = kind
        digest = hashlib.blake2b(digest_size=20)
        for part in (kind, filename, str(line_offset), str(column_offset)):
            digest.update(part.encode("utf-8", "surrogatepass"))
            digest.update(b"\0")
        digest.update(code.encode("utf-8", "surrogatepass"))
        self.key = digest.hexdigest()
        self.bytecode: bytes | None = None  # set once verified (cached data) or produced

    @classmethod
    def of(cls, code: str, compile_opts) -> "ScriptSource":
        script = cls(code, compile_opts.filename, compile_opts.line_offset, compile_opts.column_offset)
        if getattr(compile_opts, "cached_data", None) is not None:
            script.bytecode = open_cached_data(script, compile_opts.cached_data)
        return script


class KnownScripts:
    """The keys a worker was sent, most recent last (the worker keeps at most as many)."""

    def __init__(self, max_entries: int = 4096):
        self._keys: "OrderedDict[str, None]" = OrderedDict()
        self._lock = threading.Lock()
        self._max = max_entries

    def __contains__(self, key: str) -> bool:
        with self._lock:
            return key in self._keys

    def add(self, key: str) -> None:
        with self._lock:
            self._keys[key] = None
            self._keys.move_to_end(key)
            while len(self._keys) > self._max:
                self._keys.popitem(last=False)

    def discard(self, key: str) -> None:
        with self._lock:
            self._keys.pop(key, None)


# -- cached data -----------------------------------------------------------------

_signing_key: bytes | None = None
_signing_lock = threading.Lock()


def _engine_tag() -> bytes:
    """Bytecode fits only the engine build that wrote it: name the dukpy release."""
    from importlib import metadata  # here, not at import: it costs a cold start ~16 ms

    try:
        version = metadata.version("dukpy")
    except metadata.PackageNotFoundError:  # pragma: no cover - dukpy is a dependency
        version = "unknown"
    return f"dukpy {version}".encode()


def _key_file() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "isolate" / "cached-data.key"


def signing_key() -> bytes:
    global _signing_key
    with _signing_lock:
        if _signing_key is None:
            _signing_key = _load_signing_key()
        return _signing_key


def _load_signing_key() -> bytes:
    configured = os.environ.get(_KEY_ENV)
    if configured:
        return hashlib.sha256(configured.encode()).digest()
    path = _key_file()
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    except OSError:
        return secrets.token_bytes(32)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(32))
    except FileExistsError:
        pass  # another process created it first: use theirs
    except OSError:
        return secrets.token_bytes(32)
    try:
        return _read_key(path)
    except OSError:
        return secrets.token_bytes(32)


def _read_key(path: Path) -> bytes:
    data = path.read_bytes()
    if len(data) < 32:
        raise OSError(f"{path} is too short to be a key")
    return data[:32]


def _header(script: ScriptSource) -> bytes:
    tag = _engine_tag()
    return _MAGIC + len(tag).to_bytes(2, "big") + tag + bytes.fromhex(script.key)


def make_cached_data(script: ScriptSource, bytecode: bytes) -> bytes:
    header = _header(script)
    mac = hmac.new(signing_key(), header + bytecode, hashlib.sha256).digest()
    return header + mac + bytecode


def open_cached_data(script: ScriptSource, data: bytes) -> bytes | None:
    """The bytecode inside ``data`` if it was made by this library for exactly this
    script and engine; None otherwise (never partially trusted)."""
    header = _header(script)
    if len(data) < len(header) + 32 or not hmac.compare_digest(data[:len(header)], header):
        return None
    mac, bytecode = data[len(header):len(header) + 32], data[len(header) + 32:]
    expected = hmac.new(signing_key(), header + bytecode, hashlib.sha256).digest()
    if not hmac.compare_digest(mac, expected):
        return None
    return bytecode
