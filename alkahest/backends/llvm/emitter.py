"""One tape operation at a time as LLVM IR, on values of one width and float type.

Every LLVM-based tier emits its element computation with :class:`Emitter`: the CPU tier
(``irgen``: ``double``, ``float`` or vectors of them, the interpreter's libm/libmvec routines) and
the GPU tier (``float`` or ``double``, libdevice's ``__nv_*`` functions). What differs is a
:class:`MathLibrary`: which operations are LLVM intrinsics and which function each call
goes to. Semantics follow ``alkahest_core::op``: IEEE ``minimum``/``maximum``, conditions
as 1.0/0.0 with NaN true, ``fma`` rounded once (``llvm.fma``, never split). Without
``fastmath`` no instruction carries fast-math flags.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
from typing import Callable, Dict, List, Mapping, Optional, Sequence

from ...ops import OPS

#: How this generator spells each operation of the op table (``alkahest.ops``), by class:
#: arithmetic as LLVM instructions, exact operations as intrinsics on the CPU, comparisons
#: as ``fcmp`` predicates; calls go to the math library's function of the same name.
UNARY_INTRINSICS = {"sqrt": "sqrt", "abs": "fabs", "floor": "floor", "ceil": "ceil", "round": "round"}
BINARY_INTRINSICS = {"min": "minimum", "max": "maximum", "copysign": "copysign"}
ARITHMETIC = {"add": "fadd", "sub": "fsub", "mul": "fmul", "div": "fdiv"}
COMPARISONS = {"lt": "olt", "le": "ole", "gt": "ogt", "ge": "oge", "eq": "oeq", "ne": "une"}

#: Every tape instruction this generator handles: the op table and the tape's loads.
SUPPORTED_OPS = frozenset(OPS) | {"input", "const"}

FAST_FLAGS = "reassoc nsz arcp contract afn "


class UnsupportedTape(Exception):
    """The tape cannot be compiled by this generator (the message says why)."""


@dataclass(frozen=True)
class MathLibrary:
    """Where operations beyond arithmetic go. ``intrinsics``: tape op -> LLVM intrinsic
    base name (``llvm.<name>.<type>``); ``call``: (op, scalar type) -> the scalar function
    to call for ``op`` (None: not a call); ``ieee_minmax``: ``min``/``max`` as
    ``llvm.minimum``/``maximum`` (else written out with compares)."""

    intrinsics: Mapping[str, str]
    call: Callable[[str, str], Optional[str]]
    ieee_minmax: bool = True


def _host_call(op: str, scalar: str) -> Optional[str]:
    """The interpreter's routine: ``alkahest_sin`` on doubles, ``alkahest_sinf`` on floats."""
    if not OPS[op].libm:
        return None
    return f"alkahest_{op}f" if scalar == "float" else f"alkahest_{op}"


#: The CPU: exact operations as intrinsics, functions through the interpreter's routines.
HOST_MATH = MathLibrary(intrinsics={**UNARY_INTRINSICS, **BINARY_INTRINSICS}, call=_host_call)


def hex_double(value: float) -> str:
    """LLVM's exact spelling of a double: its IEEE bits in hex."""
    return "0x%016X" % struct.unpack("<Q", struct.pack("<d", value))[0]


class Emitter:
    """Emits instructions on values of one width into ``lines``; names are fresh SSA names."""

    def __init__(self, width: int, vector_fns: Mapping[str, str], fastmath: bool, decls: Dict[str, str],
                 scalar: str = "double", math: MathLibrary = HOST_MATH):
        self.width = width
        self.scalar = scalar
        self.math = math
        self.vector_fns = vector_fns
        self.flags = FAST_FLAGS if fastmath else ""
        self.decls = decls
        self.lines: List[str] = []
        self.counter = 0
        self.conds: Dict[str, str] = {}  # value of a condition (1.0/0.0) -> its i1 lanes
        bits = {"double": 64, "float": 32}[scalar]
        if width == 1:
            self.ty, self.cond_ty, self.int_ty, self.suffix = scalar, "i1", f"i{bits}", f"f{bits}"
            self.zero, self.one, self.true = "0.0", "1.0", "true"
        else:
            self.ty, self.cond_ty, self.suffix = f"<{width} x {scalar}>", f"<{width} x i1>", f"v{width}f{bits}"
            self.int_ty = f"<{width} x i{bits}>"
            self.zero, self.one, self.true = "zeroinitializer", f"splat ({scalar} 1.0)", "splat (i1 true)"

    def fresh(self) -> str:
        self.counter += 1
        return f"%t{self.counter}"

    def emit(self, text: str) -> str:
        name = self.fresh()
        self.lines.append(f"  {name} = {text}")
        return name

    def const(self, value: float) -> str:
        if self.scalar == "float":
            # LLVM spells a float constant as the double it widens to exactly.
            with np.errstate(over="ignore"):
                value = float(np.float32(value))
        h = hex_double(value)
        return h if self.width == 1 else f"splat ({self.scalar} {h})"

    def intrinsic(self, name: str, *args: str) -> str:
        fn = f"llvm.{name}.{self.suffix}"
        params = ", ".join([self.ty] * len(args))
        self.decls[fn] = f"declare {self.ty} @{fn}({params})"
        return self.emit(f"call {self.flags}{self.ty} @{fn}(" + ", ".join(f"{self.ty} {a}" for a in args) + ")")

    def truth(self, a: str) -> str:
        """Non-zero (NaN included) as i1 lanes; a condition's own i1 lanes when ``a`` is one
        (LLVM's code generator does not always see through the 1.0/0.0 round trip)."""
        if a in self.conds:
            return self.conds[a]
        return self.emit(f"fcmp une {self.ty} {a}, {self.zero}")

    def from_cond(self, c: str) -> str:
        value = self.emit(f"uitofp {self.cond_ty} {c} to {self.ty}")
        self.conds[value] = c
        return value

    def libm(self, fn: str, *args: str) -> str:
        """The scalar function ``fn`` per lane (the interpreter's routine on the CPU)."""
        sc = self.scalar
        self.decls[fn] = f"declare {sc} @{fn}({', '.join([sc] * len(args))}) #1"
        if self.width == 1:
            return self.emit(f"call {sc} @{fn}(" + ", ".join(f"{sc} {a}" for a in args) + ")")
        result = "poison"
        for lane in range(self.width):
            lane_args = [self.emit(f"extractelement {self.ty} {a}, i32 {lane}") for a in args]
            r = self.emit(f"call {sc} @{fn}(" + ", ".join(f"{sc} {x}" for x in lane_args) + ")")
            result = self.emit(f"insertelement {self.ty} {result}, {sc} {r}, i32 {lane}")
        return result

    def minmax(self, name: str, a: str, b: str) -> str:
        """IEEE 754-2019 ``minimum``/``maximum`` from compares and selects (for targets
        whose intrinsics cannot be relied on): the canonical NaN if either is NaN (as the
        interpreter), -0 below +0."""
        first, second = (a, b) if name == "min" else (b, a)
        below = self.emit(f"fcmp olt {self.ty} {first}, {second}")  # a wins outright
        above = self.emit(f"fcmp olt {self.ty} {second}, {first}")  # b wins outright
        nan = self.emit(f"fcmp uno {self.ty} {a}, {b}")
        bits = self.emit(f"bitcast {self.ty} {a} to {self.int_ty}")
        zero = "0" if self.width == 1 else "zeroinitializer"
        a_negative = self.emit(f"icmp slt {self.int_ty} {bits}, {zero}")
        # Equal (±0 included): minimum takes the negative one, maximum the positive one.
        take_a = a_negative if name == "min" else self.emit(f"xor {self.cond_ty} {a_negative}, {self.true}")
        tie = self.emit(f"select {self.cond_ty} {take_a}, {self.ty} {a}, {self.ty} {b}")
        tie = self.emit(f"select {self.cond_ty} {nan}, {self.ty} {self.const(float('nan'))}, {self.ty} {tie}")
        tie = self.emit(f"select {self.cond_ty} {above}, {self.ty} {second}, {self.ty} {tie}")
        return self.emit(f"select {self.cond_ty} {below}, {self.ty} {first}, {self.ty} {tie}")

    def op(self, name: str, args: Sequence[str]) -> str:
        """The value of tape operation ``name`` on ``args``."""
        ty, fl = self.ty, self.flags
        info = OPS.get(name)
        kind = info.op_class if info else None
        if kind == "arithmetic":
            if name == "neg":
                return self.emit(f"fneg {fl}{ty} {args[0]}")
            if name == "fma":
                # Without fast-math flags: the exact rounding error it yields is the point
                # (integer powers), which reassociation would fold away.
                fma = f"llvm.fma.{self.suffix}"
                self.decls[fma] = f"declare {ty} @{fma}({ty}, {ty}, {ty})"
                return self.emit(f"call {ty} @{fma}({ty} {args[0]}, {ty} {args[1]}, {ty} {args[2]})")
            return self.emit(f"{ARITHMETIC[name]} {fl}{ty} {args[0]}, {args[1]}")
        if kind == "exact" and name in ("min", "max"):
            if not self.math.ieee_minmax:
                return self.minmax(name, args[0], args[1])
            # llvm.minimum passes an input NaN through; the interpreter returns the
            # canonical quiet NaN, and copysign can tell them apart.
            r = self.intrinsic(self.math.intrinsics[name], *args)
            return self.emit(f"select {self.cond_ty} {self.emit(f'fcmp uno {ty} {r}, {r}')}, {ty} {self.const(float('nan'))}, {ty} {r}")
        if kind == "exact" and name in self.math.intrinsics:
            return self.intrinsic(self.math.intrinsics[name], *args)
        if kind == "compare":
            return self.from_cond(self.emit(f"fcmp {COMPARISONS[name]} {ty} {args[0]}, {args[1]}"))
        if kind == "logic":
            if name == "not":
                if args[0] in self.conds:
                    return self.from_cond(self.emit(f"xor {self.cond_ty} {self.conds[args[0]]}, {self.true}"))
                return self.from_cond(self.emit(f"fcmp oeq {ty} {args[0]}, {self.zero}"))
            a, b = self.truth(args[0]), self.truth(args[1])
            return self.from_cond(self.emit(f"{name} {self.cond_ty} {a}, {b}"))
        if kind == "select":
            c = self.truth(args[0])
            return self.emit(f"select {self.cond_ty} {c}, {ty} {args[1]}, {ty} {args[2]}")
        fn = self.math.call(name, self.scalar) if info else None
        if fn is not None:
            symbol = self.vector_fns.get(name) if self.width > 1 else None
            if symbol is None:
                return self.libm(fn, *args)
            self.decls[symbol] = f"declare {ty} @{symbol}({ty}) #1"
            return self.emit(f"call {ty} @{symbol}({ty} {args[0]})")
        raise UnsupportedTape(f"no code for the tape operation {name!r}")



