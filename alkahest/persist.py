"""Pickling of compiled functions, and the per-process cache that makes unpickling cheap.

A :class:`CompiledFn` pickles as what it was compiled from: its tape (the compact format
of ``Tape.dumps``, a few bytes per operation), its input names and its
:class:`CompileConfig`; never machine code, which is tied to one process and one CPU.
Unpickling compiles again for the tier the config asks for (``auto``: adaptive, as
``compile_expr`` makes it), so the receiving machine gets code for its own CPU; the
LLVM tier's disk cache turns a repeated compile into a load.

Unpickled functions are kept in a per-process cache keyed by content (the tape's bytes,
the input names and the config), not by object identity: a worker that receives the
same function with every task (``multiprocessing``, Dask) compiles it once. Pickling a
function also enters it there, so unpickling in the same process, or in a child forked
after the pickle, returns the function itself without compiling.

>>> import pickle
>>> from alkahest import ExprPool, compile_expr, sin
>>> x, y = ExprPool().symbols("x y")
>>> f = compile_expr(x**2 + sin(y), [x, y])
>>> g = pickle.loads(pickle.dumps(f))
>>> g is f, g(3.0, 0.0)
(True, 9.0)
"""

from __future__ import annotations

import hashlib
import pickle
import struct
import threading
import zlib
from collections import OrderedDict
from typing import Callable, Hashable, List, Optional, Tuple

from ._native import CompiledFn, Tape
from .config import CompileConfig, checked
from .errors import SerializationError

_MAGIC = b"AKHF\x01"  # alkahest function, format version 1
#: How many functions the per-process cache keeps (least recently used go first).
CAPACITY = 64

_lock = threading.Lock()
_functions: "OrderedDict[Hashable, CompiledFn]" = OrderedDict()


def _key(tape_bytes: bytes, names: Tuple[str, ...], config: CompileConfig, shape: Optional[List[int]]) -> Hashable:
    return (hashlib.sha256(tape_bytes).digest(), names, config, None if shape is None else tuple(shape))


def _remember(key: Hashable, fn: CompiledFn) -> CompiledFn:
    """Enters ``fn`` (or returns the function already there for ``key``)."""
    with _lock:
        existing = _functions.get(key)
        if existing is not None:
            _functions.move_to_end(key)
            return existing
        _functions[key] = fn
        while len(_functions) > CAPACITY:
            _functions.popitem(last=False)
        return fn


def _seal(payload: bytes) -> bytes:
    return _MAGIC + struct.pack("<I", zlib.crc32(payload)) + payload


def _unseal(blob: bytes) -> bytes:
    if not isinstance(blob, bytes) or blob[: len(_MAGIC)] != _MAGIC or len(blob) < len(_MAGIC) + 4:
        raise SerializationError("not a valid alkahest payload: expected a pickled compiled function")
    (crc,), payload = struct.unpack_from("<I", blob, len(_MAGIC)), blob[len(_MAGIC) + 4:]
    if zlib.crc32(payload) != crc:
        raise SerializationError("not a valid alkahest payload: checksum mismatch (the data is truncated or damaged)")
    return payload


def reduce_compiled(fn: CompiledFn) -> Tuple[Callable[[bytes], CompiledFn], Tuple[bytes]]:
    """``CompiledFn.__reduce__``: tape, input names and config, in one checksummed blob
    (a damaged pickle cannot rebuild a different function). A function made without
    ``compile_expr`` (``_native.compile_*``) carries a config for its tier."""
    dispatch = fn._dispatch()
    if dispatch is not None:
        config = dispatch.config
    else:  # a function that does not follow its inputs' type is fixed to its own
        config = CompileConfig(tier=fn.tier, dtype=None if fn.follows_input_dtype else fn.dtype)
    tape_bytes = fn.tape.dumps()
    names = tuple(fn.var_names)
    shape = fn.output_shape
    _remember(_key(tape_bytes, names, config, shape), fn)
    return (rebuild_compiled, (_seal(pickle.dumps((tape_bytes, names, config, shape), protocol=4)),))


def rebuild_compiled(blob: bytes) -> CompiledFn:
    """Unpickles a :class:`CompiledFn`: from the per-process cache, else compiled."""
    from .compile import shaped
    from .dispatch import build, resolve

    tape_bytes, names, config, shape = pickle.loads(_unseal(blob))
    config = checked(config)
    key = _key(tape_bytes, tuple(names), config, shape)
    with _lock:
        fn = _functions.get(key)
        if fn is not None:
            _functions.move_to_end(key)
            return fn
    tape = Tape.loads(tape_bytes)
    name_list: List[str] = list(names)
    fn = shaped(build(tape, name_list, config, resolve(lambda: tape, config)), None if shape is None else tuple(shape))
    return _remember(key, fn)


def clear() -> None:
    """Empties the per-process cache (functions in use stay alive)."""
    with _lock:
        _functions.clear()
