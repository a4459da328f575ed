"""The LLVM tier's on-disk cache of compiled object code.

MCJIT hands each compiled object to the engine's object cache; alkahest writes it to
``<cache dir>/<key>.o`` and gives it back to a later process that compiles the same tape
for the same CPU with the same options, which then skips code generation entirely.

* Location: ``CompileConfig(cache_dir=...)``; else ``$ALKAHEST_CACHE_DIR``; else
  ``$XDG_CACHE_HOME/alkahest/llvm`` (``~/.cache/alkahest/llvm``). ``cache_dir=False`` or
  ``ALKAHEST_CACHE_DIR`` set to ``0``/``off``/empty turns the cache off.
* Key: SHA-256 of the tape's content, the code generator's own source, the CPU name and
  features, opt level, options, and the llvmlite/LLVM versions.
* Integrity: each file holds a magic header and the SHA-256 of its payload; a truncated or
  corrupted file fails the check, is ignored and is overwritten by a fresh compile.
  Writers write a temporary file in the same directory and rename it into place, so
  concurrent processes never see a partial entry.
"""

from __future__ import annotations

import hashlib
import os
import struct
import tempfile
from pathlib import Path
from typing import Iterable, Optional, Union

ENV_VAR = "ALKAHEST_CACHE_DIR"
MAGIC = b"ALKAHEST-LLVM-OBJ\x01"
_OFF = {"", "0", "off", "none", "false", "no"}


def default_dir() -> Optional[Path]:
    """The cache directory when the config names none (None: caching is off)."""
    env = os.environ.get(ENV_VAR)
    if env is not None:
        return None if env.strip().lower() in _OFF else Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "alkahest" / "llvm"


def resolve_dir(cache_dir: Union[str, os.PathLike, bool, None]) -> Optional[Path]:
    """The directory a config's ``cache_dir`` means (None: no disk cache)."""
    if cache_dir is False:
        return None
    if cache_dir is None or cache_dir is True:
        return default_dir()
    return Path(cache_dir).expanduser()


def key(parts: Iterable[Union[str, bytes]]) -> str:
    """Hex SHA-256 over ``parts`` (each length-prefixed, so no two lists collide)."""
    h = hashlib.sha256()
    for p in parts:
        b = p.encode() if isinstance(p, str) else p
        h.update(struct.pack("<Q", len(b)))
        h.update(b)
    return h.hexdigest()


def tape_fingerprint(tape) -> bytes:
    """The tape's full content as bytes (constants by their bits)."""
    consts = struct.pack(f"<{len(tape.consts)}d", *tape.consts)
    return repr((tape.n_inputs, tape.instrs, tape.outputs)).encode() + consts


def load(path: Path) -> Optional[bytes]:
    """The object code stored at ``path``, or None if it is absent, unreadable or fails
    the integrity check."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    head = len(MAGIC) + 32
    if len(data) <= head or not data.startswith(MAGIC):
        return None
    digest, payload = data[len(MAGIC):head], data[head:]
    if hashlib.sha256(payload).digest() != digest:
        return None
    return payload


def store(path: Path, payload: bytes) -> bool:
    """Writes ``payload`` to ``path`` atomically; False if the directory is not writable
    (the cache is an optimisation: failing to write it is not an error)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(MAGIC + hashlib.sha256(payload).digest() + payload)
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
    except OSError:
        return False
    return True
