"""Tape → PTX: the element computation of the LLVM tier's emitter inside a grid-stride
CUDA kernel, linked with libdevice, optimised and assembled by LLVM's NVPTX backend.

The kernel (``alkahest_kernel``, a ``ptx_kernel``) takes, in order, each input as a
pointer and a stride in elements (0 broadcasts one value), each output as a pointer
(contiguous), and the point count ``n``; thread ``t`` of the grid handles points
``t, t + grid size, ...``.

Functions go to libdevice (``__nv_sin``, ``__nv_sinf``, ...), never to LLVM's
``llvm.sin``-style intrinsics, which the NVPTX backend cannot select and answers by
aborting the process. ``min``/``max`` are written out (IEEE ``minimum``/``maximum``).
No flush-to-zero: subnormals are kept, as on the CPU.
"""

from __future__ import annotations

import functools
from typing import Dict, List, Optional

from ...ops import OPS
from ..llvm.emitter import Emitter, MathLibrary, UnsupportedTape
from ..llvm.irgen import _compute, check, used_inputs
from ..tapeview import TapeView
from ..llvm.target import LOCK
from . import toolkit

TRIPLE = "nvptx64-nvidia-cuda"
DATALAYOUT = "e-i64:64-i128:128-v16:16-v32:32-n16:32:64"
KERNEL = "alkahest_kernel"
DEFAULT_ARCH = "sm_80"

#: The lowest PTX ISA version each architecture needs (what the driver must support).
PTX_VERSION = {"sm_70": 60, "sm_72": 61, "sm_75": 63, "sm_80": 70, "sm_86": 71, "sm_87": 74,
               "sm_89": 78, "sm_90": 78, "sm_100": 86, "sm_120": 87}

#: LLVM element types of the supported dtypes.
SCALAR = {"float64": "double", "float32": "float"}


def _nv_call(op: str, scalar: str) -> Optional[str]:
    # round too: NVPTX has no instruction for C's round (halfway cases away from zero).
    if OPS[op].libm or op == "round":
        return f"__nv_{op}" + ("f" if scalar == "float" else "")
    return None


#: libdevice for functions; only intrinsics the NVPTX backend selects natively.
LIBDEVICE_MATH = MathLibrary(
    intrinsics={"sqrt": "sqrt", "abs": "fabs", "floor": "floor", "ceil": "ceil", "copysign": "copysign"},
    call=_nv_call,
    ieee_minmax=False,
)


def kernel_ir(tape: TapeView, dtype: str) -> str:
    """The NVVM IR module (before libdevice is linked) for ``tape``."""
    check(tape)
    scalar = SCALAR[dtype]
    decls: Dict[str, str] = {}
    em = Emitter(1, {}, False, decls, scalar=scalar, math=LIBDEVICE_MATH)
    params = [f"ptr %in{i}, i64 %s{i}" for i in range(tape.n_inputs)]
    params += [f"ptr %out{j}" for j in range(len(tape.outputs))] + ["i64 %n"]
    L = [
        f'target triple = "{TRIPLE}"',
        f'target datalayout = "{DATALAYOUT}"',
        "",
        f"define ptx_kernel void @{KERNEL}({', '.join(params)}) {{",
        "entry:",
        "  %tid = call i32 @llvm.nvvm.read.ptx.sreg.tid.x()",
        "  %bid = call i32 @llvm.nvvm.read.ptx.sreg.ctaid.x()",
        "  %bdim = call i32 @llvm.nvvm.read.ptx.sreg.ntid.x()",
        "  %gdim = call i32 @llvm.nvvm.read.ptx.sreg.nctaid.x()",
        "  %base = mul i32 %bid, %bdim",
        "  %first32 = add i32 %base, %tid",
        "  %first = zext i32 %first32 to i64",
        "  %step32 = mul i32 %bdim, %gdim",
        "  %step = zext i32 %step32 to i64",
        "  br label %head",
        "head:",
        "  %i = phi i64 [ %first, %entry ], [ %i.next, %body ]",
        "  %more = icmp slt i64 %i, %n",
        "  br i1 %more, label %body, label %exit",
        "body:",
    ]
    em.lines = L
    inputs: List[List[str]] = [[] for _ in range(tape.n_inputs)]
    for i in used_inputs(tape):
        off = em.emit(f"mul i64 %i, %s{i}")
        p = em.emit(f"getelementptr inbounds {scalar}, ptr %in{i}, i64 {off}")
        inputs[i] = [em.emit(f"load {scalar}, ptr {p}, align {4 if scalar == 'float' else 8}")]
    results = _compute(tape, em, inputs, 1)
    for j, (v,) in enumerate(results):
        p = em.emit(f"getelementptr inbounds {scalar}, ptr %out{j}, i64 %i")
        L.append(f"  store {scalar} {v}, ptr {p}, align {4 if scalar == 'float' else 8}")
    L += [
        "  %i.next = add i64 %i, %step",
        "  br label %head",
        "exit:",
        "  ret void",
        "}",
        "",
        "declare i32 @llvm.nvvm.read.ptx.sreg.tid.x()",
        "declare i32 @llvm.nvvm.read.ptx.sreg.ctaid.x()",
        "declare i32 @llvm.nvvm.read.ptx.sreg.ntid.x()",
        "declare i32 @llvm.nvvm.read.ptx.sreg.nctaid.x()",
    ]
    L += sorted(decls.values())
    L += [
        "",
        "attributes #1 = { nounwind }",
        "!llvm.module.flags = !{!0}",
        '!0 = !{i32 4, !"nvvm-reflect-ftz", i32 0}',
    ]
    return "\n".join(L) + "\n"


@functools.lru_cache(maxsize=None)
def _libdevice_bytes() -> bytes:
    return toolkit.libdevice().read_bytes()


@functools.lru_cache(maxsize=None)
def _llvm():
    import llvmlite.binding as binding

    with LOCK:
        binding.initialize_all_targets()
        binding.initialize_all_asmprinters()
    return binding


def ptx_for(tape: TapeView, dtype: str, arch: str) -> str:
    """PTX text for ``tape`` on ``arch`` (``"sm_80"``, ...). Raises
    :class:`UnsupportedTape` for an operation the GPU tier cannot compile and
    :class:`~alkahest.errors.CudaToolkitError` without libdevice."""
    if dtype not in SCALAR:
        raise UnsupportedTape(f"dtype must be one of {', '.join(SCALAR)}, got {dtype!r}")
    ptx_version = PTX_VERSION.get(arch)
    if ptx_version is None:
        raise UnsupportedTape(f"unknown GPU architecture {arch!r}; choose one of {', '.join(PTX_VERSION)}")
    ir = kernel_ir(tape, dtype)
    library = _libdevice_bytes()
    binding = _llvm()
    with LOCK:
        module = binding.parse_assembly(ir)
        module.verify()
        lib = binding.parse_bitcode(library)
        lib.triple, lib.data_layout = TRIPLE, DATALAYOUT
        module.link_in(lib)
        # Only the kernel is visible: the unused rest of libdevice is deleted, the used
        # functions inlined.
        for fn in module.functions:
            if fn.name != KERNEL and not fn.is_declaration:
                fn.linkage = binding.Linkage.internal
        tm = binding.Target.from_triple(TRIPLE).create_target_machine(
            cpu=arch, features=f"+ptx{ptx_version}", opt=3
        )
        pto = binding.create_pipeline_tuning_options(speed_level=3)
        pb = binding.create_pass_builder(tm, pto)
        pb.getModulePassManager().run(module, pb)
        return tm.emit_assembly(module)
