"""The LLVM tier: tape → LLVM IR (:mod:`.irgen`) → optimised for the host CPU → machine
code through MCJIT, handed to the Rust runner as the two kernel-ABI entry points.

Compiled objects go through MCJIT's object cache to disk (:mod:`.diskcache`), so a later
process loads a kernel instead of compiling it.

>>> f = compile_expr(sin(x) * cos(y), [x, y], CompileConfig(tier="llvm"))  # doctest: +SKIP
>>> f.tier, f.llvm_ir()[:40]  # doctest: +SKIP
('llvm', '; ModuleID = ...')
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Optional

from ... import _native
from ...errors import CompileError
from ..tapeview import instructions
from . import diskcache, irgen, target

__all__ = ["compile_llvm", "LLVMModule", "available"]


def available() -> bool:
    """True when llvmlite can be imported (the tier can compile)."""
    try:
        target.llvm()
    except ImportError:
        return False
    return True


def _generator_fingerprint() -> str:
    """Hash of this tier's code generator, so a changed generator never loads old objects."""
    h = hashlib.sha256()
    for name in ("emitter.py", "irgen.py", "__init__.py"):
        h.update((Path(__file__).parent / name).read_bytes())
    return h.hexdigest()


_GENERATOR = _generator_fingerprint()


def native_identity() -> str:
    """Which build of the native library this is (a hash of its sources, made when it was
    built). Cached objects call its routines by ABI and follow its bulk-plan layout, so
    objects written by another build are never loaded."""
    return _native.BUILD_ID


class LLVMModule:
    """The LLVM tier's side of a compiled function: it owns the machine code (the MCJIT
    engine) and shows what runs. ``CompiledFn`` forwards ``llvm_ir()`` and ``asm()`` here.
    """

    def __init__(self, engine, view: irgen.TapeView, shape: irgen.CodeShape, opt_level: int, cache_path, loaded: bool):
        self._engine = engine
        self._view = view
        self.shape = shape
        self.opt_level = opt_level
        #: Where the object code is cached on disk (None: no disk cache).
        self.cache_path: Optional[Path] = cache_path
        #: True when the code was loaded from the disk cache instead of compiled.
        self.loaded_from_cache = loaded

    def llvm_ir(self) -> str:
        """The LLVM IR this function was compiled from (regenerated from the tape on
        request, so compiling never pays for it)."""
        h = target.host()
        with target.LOCK:
            layout = str(target.target_machine(self.opt_level).target_data)
        return irgen.generate(self._view, self.shape, h.triple, layout)

    def asm(self) -> str:
        """The machine code as assembly text for this CPU."""
        binding = target.llvm()
        ir = self.llvm_ir()
        with target.LOCK:
            return target.target_machine(self.opt_level).emit_assembly(binding.parse_assembly(ir))

    def source(self) -> str:
        return self.llvm_ir()

    def __repr__(self) -> str:
        s = self.shape
        return (
            f"LLVMModule(width={s.width}, interleave={s.interleave}, staged={s.staged}, opt_level={self.opt_level}, "
            f"fastmath={s.fastmath}, loaded_from_cache={self.loaded_from_cache})"
        )


def _cache_path(view: irgen.TapeView, shape: irgen.CodeShape, opt_level: int, cache_dir) -> Optional[Path]:
    directory = diskcache.resolve_dir(cache_dir)
    if directory is None:
        return None
    h = target.host()
    k = diskcache.key(
        [
            "alkahest-llvm-object-v1",
            _GENERATOR,
            native_identity(),
            h.llvm_version,
            h.triple,
            h.cpu,
            h.features,
            repr((opt_level, shape.width, shape.interleave, shape.fastmath, shape.staged, shape.quick_stages, shape.aligned_frames,
                  sorted(shape.vector_fns.items()), shape.scalar)),
            diskcache.tape_fingerprint(view),
        ]
    )
    return directory / f"{k}.o"


def _jit(view, shape, opt_level: int, cache_path: Optional[Path], cached: Optional[bytes]):
    """(engine, scalar address, bulk address). With ``cached`` object code, the module is
    an empty stub and MCJIT's object cache supplies the code; otherwise the tape is
    compiled and the object written to ``cache_path``."""
    binding = target.llvm()
    h = target.host()

    def notify(module, data):
        if cache_path is not None and cached is None:
            diskcache.store(cache_path, bytes(data))

    def getbuffer(module):
        return cached

    with target.LOCK:
        tm = target.target_machine(opt_level)
        layout = str(tm.target_data)
        if cached is not None:
            module = binding.parse_assembly(f'target triple = "{h.triple}"\ntarget datalayout = "{layout}"\n')
        else:
            # No IR optimisation pipeline: the generated IR is already what should run
            # (explicit vectors, CSE'd by the tape), and llvmlite 0.50's pass builder keeps
            # ~90 KiB per run alive. The code generator still optimises at `opt_level`.
            module = binding.parse_assembly(irgen.generate(view, shape, h.triple, layout))
            module.verify()
        engine = binding.create_mcjit_compiler(module, tm)
        engine.set_object_cache(notify, getbuffer)
        engine.finalize_object()
        return (
            engine,
            engine.get_function_address("alkahest_scalar"),
            engine.get_function_address("alkahest_bulk"),
        )


#: The LLVM type of each element type.
_LLVM_TYPE = {"float64": "double", "float32": "float"}


def _plan(tape, config):
    """(view, shape, cache path) of ``tape`` under ``config``: everything but the compile."""
    h = target.host()
    instrs = instructions(tape)
    scalar = _LLVM_TYPE[config.element_type]
    width, vector_fns = h.for_scalar(scalar)
    shape = irgen.make_shape(instrs, width, vector_fns if config.vector_math else {}, config.fastmath,
                             config.opt_level, scalar)
    view = irgen.TapeView.of(tape, staged=shape.staged, instrs=instrs)
    return view, shape, _cache_path(view, shape, config.opt_level, config.cache_dir)


def disk_cached(tape, config) -> bool:
    """Whether compiling ``tape`` under ``config`` would load object code from the disk
    cache instead of compiling (the dispatcher asks when that changes its choice). False
    until LLVM has started in this process: starting it costs more than the answer saves."""
    if not target.started() or diskcache.resolve_dir(config.cache_dir) is None:
        return False
    path = _plan(tape, config)[2]
    return path is not None and path.is_file()


#: Largest tape this tier compiles. Compile time and memory grow linearly (functions of
#: bounded size, see ``irgen._stages``), but at ~0.16 ms and ~3 KiB per operation
#: (measured: a 995,500-op model, 162 s and 2.9 GiB peak), so larger tapes are refused
#: up front, before any work, and fall back to Cranelift.
MAX_OPS = 1_000_000


def compile_llvm(tape, var_names, config) -> "_native.CompiledFn":
    """Compiles ``tape`` with LLVM for this CPU. Raises :class:`CompileError` when llvmlite
    is missing or the tape cannot be compiled; the caller picks the fallback."""
    if tape.n_ops > MAX_OPS:
        raise CompileError(f"the tape has {tape.n_ops} operations; the LLVM tier compiles at most {MAX_OPS} "
                           "(~0.16 ms and ~3 KiB of memory per operation)")
    try:
        target.llvm()
    except ImportError as e:
        raise CompileError(f"llvmlite is not installed ({e}); pip install llvmlite") from None
    view, shape, cache_path = _plan(tape, config)
    try:
        irgen.check(view)
        cached = diskcache.load(cache_path) if cache_path is not None else None
        try:
            engine, scalar, bulk = _jit(view, shape, config.opt_level, cache_path, cached)
        except RuntimeError:
            if cached is None:
                raise
            engine, scalar, bulk = 0, 0, 0  # LLVM refused the cached object: compile below
        if cached is not None and not (scalar and bulk):
            # A cached object LLVM would not load, or without our entry points: compile
            # afresh (and overwrite the entry).
            cached = None
            engine, scalar, bulk = _jit(view, shape, config.opt_level, cache_path, None)
    except irgen.UnsupportedTape as e:
        raise CompileError(str(e)) from None
    except RuntimeError as e:  # llvmlite reports LLVM's parse/verify/codegen errors so
        raise CompileError(f"LLVM failed: {e}") from None
    if not (scalar and bulk):
        raise CompileError("LLVM produced no entry points")
    module = LLVMModule(engine, view, shape, config.opt_level, cache_path, cached is not None)
    return _native.wrap_native(tape, var_names, "llvm", scalar, bulk, module, dtype=config.element_type)
