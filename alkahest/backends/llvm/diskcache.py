"""The LLVM tier's on-disk cache of compiled object code.

MCJIT hands each compiled object to the engine's object cache; alkahest writes it to
``<cache dir>/<key>.o`` and gives it back to a later process that compiles the same tape
for the same CPU with the same options, which then skips code generation entirely.

* Location: ``CompileConfig(cache_dir=...)``; else ``$ALKAHEST_CACHE_DIR``; else
  ``$XDG_CACHE_HOME/alkahest/llvm`` (``~/.cache/alkahest/llvm``). ``cache_dir=False`` or
  ``ALKAHEST_CACHE_DIR`` set to ``0``/``off``/empty turns the cache off.
* Key: SHA-256 of the tape's content, the code generator's own source, the native
  library's build (a hash of its sources, embedded when it is built: the objects call
  its routines), the CPU name and
  features, opt level, options, and the llvmlite/LLVM versions. Workers of a cluster
  that share a cache directory but differ in CPU or build never load each other's code.
* Integrity: each file holds a magic header, the key it was written for and the SHA-256
  of key and payload. An entry is used only if its key is the one asked for (a file
  copied or renamed from another entry is refused) and it passes a structural check of
  the object (``elfcheck``) that keeps malformed code away from LLVM's loader, which
  would abort the process. Only regular files are read (no symlinks, FIFOs or devices),
  without blocking, up to ``MAX_BYTES``. Anything refused is ignored and overwritten by a
  fresh compile. Writers write a temporary file in the same directory and rename it into
  place, so concurrent processes never see a partial entry.

The directory holds code alkahest runs: whoever can write it can make alkahest run their
code, and no check can prevent that. The checks make sure that no file there, damaged or
odd, can crash, hang or exhaust the process, and that an entry is never used for another
key.
"""

from __future__ import annotations

import hashlib
import os
import stat
import struct
import tempfile
from pathlib import Path
from typing import Iterable, Optional, Union

from . import elfcheck

ENV_VAR = "ALKAHEST_CACHE_DIR"
MAGIC = b"ALKAHEST-LLVM-OBJ\x02"
#: Largest entry read (a 10^6-operation tape's object is ~60 MiB).
MAX_BYTES = 512 << 20
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


def _key_bytes(path: Path) -> Optional[bytes]:
    """The key an entry's file name stands for (``<hex key>.o``), as 32 bytes."""
    try:
        raw = bytes.fromhex(path.stem)
    except ValueError:
        return None
    return raw if len(raw) == 32 else None


def _read_regular(path: Path, limit: int) -> Optional[bytes]:
    """The bytes of ``path`` if it is a regular file (not through a symlink) of at most
    ``limit`` bytes; never blocks on a FIFO or device."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
            return None
        chunks, total = [], 0
        while total <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        return b"".join(chunks) if total <= limit else None
    except OSError:
        return None
    finally:
        os.close(fd)


def load(path: Path) -> Optional[bytes]:
    """The object code stored at ``path`` for the key its name gives, or None if it is
    absent, not a regular file, too large, for another key, or fails the checks."""
    expected = _key_bytes(path)
    data = _read_regular(path, MAX_BYTES)
    if expected is None or data is None:
        return None
    head = len(MAGIC) + 64
    if len(data) <= head or not data.startswith(MAGIC):
        return None
    stored_key, digest, payload = data[len(MAGIC):len(MAGIC) + 32], data[len(MAGIC) + 32:head], data[head:]
    if stored_key != expected or hashlib.sha256(stored_key + payload).digest() != digest:
        return None
    if elfcheck.problem(payload) is not None:
        return None
    return payload


def store(path: Path, payload: bytes) -> bool:
    """Writes ``payload`` to ``path`` atomically, bound to the key the name gives; False if
    the directory is not writable (the cache is an optimisation: failing to write it is
    not an error)."""
    key_bytes = _key_bytes(path)
    if key_bytes is None:
        return False
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(MAGIC + key_bytes + hashlib.sha256(key_bytes + payload).digest() + payload)
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
