"""Tape → LLVM IR text for the kernel ABI.

One emitter computes the tape's values on ``width``-lane values (``double`` when the width
is 1, ``<W x double>`` otherwise; ``float`` and ``<W x float>`` for float32 kernels, at
twice the lanes), ``interleave`` independent vectors at a time. It serves both entries:

* ``alkahest_scalar(args, out)``: one point, width 1.
* ``alkahest_bulk(in, stride, out, n)``: when every stride is 1 it calls the vector body
  on the caller's pointers; otherwise it gathers blocks of strided or broadcast inputs
  into buffers (``alkahest_gather``, the interpreter's own routine) and calls the body
  per block. Buffers live on the stack, or in the thread's heap frame
  (``alkahest_frame``) when they would take more than the plan's stack budget.
* ``alkahest_body(ins, outs, n, frame)`` (internal): the vector loop. Its last, partial
  iteration copies the remaining points into zero-padded buffers and runs the same code
  once more, so there is one copy of the computation (compile time) and a point's result
  never depends on where it falls (no scalar tail with other math).

The vector loop is written out here rather than left to LLVM's loop vectoriser: that
pass dominates compile time on large tapes and cannot use glibc's vector math for a
masked or scalar tail. Semantics follow ``alkahest_core::op`` exactly: IEEE ``minimum`` /
``maximum``, conditions as 1.0/0.0 with NaN true, ``fma`` rounded once, libm and libmvec through the very symbols the interpreter calls. Without
``fastmath`` no instruction carries fast-math flags, so arithmetic is bit-identical to
the interpreter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from ..tapeview import FusedStage, Instr, Plan, TapeView
from .emitter import HOST_MATH, SUPPORTED_OPS, Emitter, UnsupportedTape, hex_double  # noqa: F401

# Stack use of the bulk entry's gather buffers; the whole frame stays within the plan's
# ``stack_budget`` (the one budget of native tiers, ``alkahest_core::plan``).
GATHER_BUDGET = 128 * 1024


@dataclass(frozen=True)
class CodeShape:
    """How the bulk loop is laid out and which math it calls.

    ``width``: lanes per vector. ``interleave``: vectors computed per loop iteration (for
    instruction-level parallelism). ``vector_fns``: ``{op: libmvec symbol}`` of routines
    with ``width`` lanes; other transcendental operations call libm lane by lane.
    ``fastmath``: allow reassociation and FMA contraction. ``staged``: see below.
    """

    width: int
    interleave: int
    vector_fns: Mapping[str, str] = field(default_factory=dict)
    fastmath: bool = False
    #: Run each block of points in stages (``Tape.plan``): one loop per run of fused
    #: operations, one per vector-math call. Else one fused loop per block, calls inline.
    staged: bool = False
    #: Compile the stage loops without optimisation (``optnone``: fast instruction
    #: selection and register allocation; see ``make_shape``).
    quick_stages: bool = False
    #: Align the loops' frames to 64 bytes (see ``make_shape``).
    aligned_frames: bool = False
    #: The element type: ``double`` or ``float`` (the kernel ABI's ``T``).
    scalar: str = "double"

    @property
    def points_per_iteration(self) -> int:
        return self.width * self.interleave

    @property
    def size(self) -> int:
        """Bytes per element."""
        return ELEMENT_SIZE[self.scalar]

    def emitter(self, width: int, decls: Dict[str, str]) -> Emitter:
        """An emitter of this shape's element type at ``width`` lanes (vector math only
        at the shape's own width)."""
        return Emitter(width, self.vector_fns if width == self.width else {}, self.fastmath, decls, scalar=self.scalar)


#: Bytes of each element type.
ELEMENT_SIZE = {"double": 8, "float": 4}
#: The element type's suffix of the routines JIT code calls (``alkahest_gather_f32``).
ROUTINE_SUFFIX = {"double": "", "float": "_f32"}


def _compute(tape: TapeView, em: Emitter, inputs: Sequence[Sequence[str]], copies: int) -> List[List[str]]:
    """Values of the tape's outputs, ``copies`` independent sets of them.

    ``inputs[i][u]``: input ``i`` in copy ``u``. Operations are emitted copy after copy
    for each instruction, so independent work sits side by side.
    """
    vals: List[List[str]] = []
    for ins in tape.instrs:
        if ins.op == "input":
            vals.append(list(inputs[ins.load]))
        elif ins.op == "const":
            vals.append([em.const(tape.consts[ins.load])] * copies)
        else:
            vals.append([em.op(ins.op, [vals[a][u] for a in ins.args]) for u in range(copies)])
    return [vals[o] for o in tape.outputs]


def used_inputs(tape: TapeView) -> Tuple[int, ...]:
    """Inputs some instruction or output reads (the rest are never loaded)."""
    return tape.used_inputs()


def check(tape: TapeView) -> None:
    """Raises :class:`UnsupportedTape` for an operation this generator does not know."""
    for ins in tape.instrs:
        if ins.op not in SUPPORTED_OPS:
            raise UnsupportedTape(f"the LLVM tier has no code for the tape operation {ins.op!r}")


def _scalar_chunk(tape: TapeView, em: Emitter, start: int, end: int) -> None:
    """Instructions ``start:end`` at one point: inputs from ``%args``, values of earlier
    chunks from ``%spill``; each output is stored once computed, each value a later chunk
    reads into its spill slot."""
    slot = tape.plan.spill_slot
    local: Dict[int, str] = {}
    T, size = em.scalar, ELEMENT_SIZE[em.scalar]

    def get(v: int) -> str:
        if v not in local:
            ins = tape.instrs[v]
            if ins.op == "input":
                p = em.emit(f"getelementptr inbounds {T}, ptr %args, i64 {ins.load}")
                local[v] = em.emit(f"load {T}, ptr {p}, align {size}")
            elif ins.op == "const":
                local[v] = em.const(tape.consts[ins.load])
            else:
                p = em.emit(f"getelementptr inbounds {T}, ptr %spill, i64 {slot[v]}")
                local[v] = em.emit(f"load {T}, ptr {p}, align {size}")
        return local[v]

    outputs_of: Dict[int, List[int]] = {}
    for j, o in enumerate(tape.outputs):
        if start <= o < end:
            outputs_of.setdefault(o, []).append(j)
    for v in range(start, end):
        ins = tape.instrs[v]
        if ins.computes:
            local[v] = em.op(ins.op, [get(a) for a in ins.args])
            if v in slot:
                p = em.emit(f"getelementptr inbounds {T}, ptr %spill, i64 {slot[v]}")
                em.lines.append(f"  store {T} {local[v]}, ptr {p}, align {size}")
        for j in outputs_of.get(v, ()):
            p = em.emit(f"getelementptr inbounds {T}, ptr %out, i64 {j}")
            em.lines.append(f"  store {T} {get(v)}, ptr {p}, align {size}")


def _scalar_entry(tape: TapeView, shape: CodeShape, decls: Dict[str, str]) -> List[str]:
    """``alkahest_scalar(args, out)``: the tape in order, in one function, or for a large
    tape in chunk functions (``Plan.scalar_chunks``) called in turn with a spill area."""
    chunks = tape.plan.scalar_chunks
    if len(chunks) == 1:
        em = shape.emitter(1, decls)
        _scalar_chunk(tape, em, 0, len(tape.instrs))
        return ["define void @alkahest_scalar(ptr %args, ptr %out) #0 {", "entry:"] + em.lines + ["  ret void", "}"]
    out: List[str] = []
    for c, (start, end) in enumerate(chunks):
        em = shape.emitter(1, decls)
        _scalar_chunk(tape, em, start, end)
        out += [f"define internal void @alkahest_scalar{c}(ptr %args, ptr %out, ptr %spill) #5 {{", "entry:"]
        out += em.lines + ["  ret void", "}", ""]
    out += ["define void @alkahest_scalar(ptr %args, ptr %out) #0 {", "entry:"]
    spill = max(1, len(tape.plan.spill_slot))
    if shape.size * spill <= tape.plan.stack_budget:
        out.append(f"  %spill = alloca {shape.scalar}, i64 {spill}, align 64")
    else:
        decls["alkahest_frame"] = "declare ptr @alkahest_frame(i64) #3"
        out.append(f"  %spill = call ptr @alkahest_frame(i64 {shape.size * spill})")
    out += [f"  call void @alkahest_scalar{c}(ptr %args, ptr %out, ptr %spill)" for c in range(len(chunks))]
    return out + ["  ret void", "}"]


def _load_pointers(L: List[str], array: str, indices, slot: str, name: str) -> None:
    """``%<name>.<k> = array[k]`` for each k (through ``%<slot>.<k>`` addresses)."""
    for k in indices:
        L.append(f"  %{slot}.{k} = getelementptr inbounds ptr, ptr {array}, i64 {k}")
        L.append(f"  %{name}.{k} = load ptr, ptr %{slot}.{k}, align 8")


def _store_pointers(L: List[str], array: str, indices, slot: str, name: str) -> None:
    """``array[k] = %<name>.<k>`` for each k (through ``%<slot>.<k>`` addresses)."""
    for k in indices:
        L.append(f"  %{slot}.{k} = getelementptr inbounds ptr, ptr {array}, i64 {k}")
        L.append(f"  store ptr %{name}.{k}, ptr %{slot}.{k}, align 8")


class _Areas:
    """Where a function's buffers live: ``alloca``s on its stack, or consecutive 64-byte
    aligned regions of the thread's heap frame at ``base`` (``alkahest_frame``) when the
    stack would not hold them (``frame_bytes`` sizes the heap regions)."""

    def __init__(self, L: List[str], base: Optional[str]):
        self.L, self.base, self.offset = L, base, 0

    @staticmethod
    def bytes(count: int) -> int:
        return -(-8 * max(1, count) // 64) * 64

    def take(self, name: str, elem: str, count: int, align: int) -> None:
        """``name`` = room for ``count`` elements of ``elem`` (at most 8 bytes: double,
        float or ptr; the heap regions take 8 bytes per element whatever the type)."""
        if self.base is None:
            self.L.append(f"  {name} = alloca {elem}, i64 {max(1, count)}, align {align}")
        else:
            self.L.append(f"  {name} = getelementptr inbounds i8, ptr {self.base}, i64 {self.offset}")
            self.offset += self.bytes(count)


class _Block:
    """Emits loads, stores and computation at one point index of a block."""

    def __init__(self, tape: TapeView, shape: CodeShape, em: Emitter, block: int):
        self.tape, self.em, self.block = tape, em, block
        self.w, self.copies = shape.width, shape.interleave

    def address(self, base: str, index: str, u: int, row: Optional[int] = None) -> str:
        """Address of copy ``u`` at ``index``: ``base[index + u * width]``, or with ``row``
        the block buffer ``base[row][index + u * width]`` (one instruction either way)."""
        extra = u * self.w
        if index == "0":
            at = str(extra)
        elif extra == 0:
            at = index
        else:
            at = self.em.emit(f"add nuw nsw i64 {index}, {extra}")
        T = self.em.scalar
        if row is None:
            return self.em.emit(f"getelementptr inbounds {T}, ptr {base}, i64 {at}")
        return self.em.emit(f"getelementptr inbounds [{self.block} x {T}], ptr {base}, i64 {row}, i64 {at}")

    def load(self, base: str, index: str, row: Optional[int] = None) -> List[str]:
        size = ELEMENT_SIZE[self.em.scalar]
        return [self.em.emit(f"load {self.em.ty}, ptr {self.address(base, index, u, row)}, align {size}")
                for u in range(self.copies)]

    def store(self, values: Sequence[str], base: str, index: str, row: Optional[int] = None) -> None:
        size = ELEMENT_SIZE[self.em.scalar]
        for u, v in enumerate(values):
            self.em.lines.append(f"  store {self.em.ty} {v}, ptr {self.address(base, index, u, row)}, align {size}")

    def fused(self, index: str, values: Sequence[int], buffer: Mapping[int, int],
              stores: Sequence[int], outputs: bool) -> None:
        """Computes ``values`` at ``index``; values of earlier stages come from their block
        buffers (row ``buffer[v]`` of ``%buf``), inputs from ``%pa.<i>``. Then stores ``stores`` into
        their buffers and, if ``outputs``, every output to ``%pr.<j>``."""
        tape, em = self.tape, self.em
        local: Dict[int, List[str]] = {}

        def get(v: int) -> List[str]:
            if v not in local:
                ins = tape.instrs[v]
                if ins.op == "input":
                    local[v] = self.load(f"%pa.{ins.load}", index)
                elif ins.op == "const":
                    local[v] = [em.const(tape.consts[ins.load])] * self.copies
                else:
                    local[v] = self.load("%buf", index, buffer[v])
            return local[v]

        for v in values:
            ins = tape.instrs[v]
            args = [get(a) for a in ins.args]
            local[v] = [em.op(ins.op, [a[u] for a in args]) for u in range(self.copies)]
        for v in stores:
            self.store(get(v), "%buf", index, buffer[v])
        if outputs:
            for j, o in enumerate(tape.outputs):
                self.store(get(o), f"%pr.{j}", index)


def staged_block(tape: TapeView, shape: CodeShape) -> int:
    """Points per block of staged code: buffers for values crossing stages within
    ``GATHER_BUDGET``, at most 512, a multiple of the loop step."""
    step = shape.points_per_iteration
    per_point = shape.size * max(1, tape.plan.crossing_buffers)
    return max(step, min(512, GATHER_BUDGET // per_point) // step * step)


def _body_regions(tape: TapeView, shape: CodeShape) -> List[Tuple[str, str, int, int]]:
    """The body's buffers: (name, element type, count, alignment)."""
    step, n_out, n_buffers = shape.points_per_iteration, len(tape.outputs), tape.plan.crossing_buffers
    block = staged_block(tape, shape) if n_buffers else 0
    T = shape.scalar
    return [
        # Padded copies of the last partial step (cleared and copied whole: at least one).
        ("%tin", T, max(1, len(used_inputs(tape))) * step, 64),
        ("%tout", T, max(1, n_out) * step, 64),
        # Values crossing stages: one area, addressed from one pointer (a pointer per
        # buffer would keep hundreds of values live across every call, and the register
        # allocator's time grows much faster than the code).
        ("%buf", T, n_buffers * block, 64),
        ("%pins", "ptr", tape.n_inputs, 8),
        ("%pouts", "ptr", n_out, 8),
    ]


def _pointer_regions(tape: TapeView) -> List[Tuple[str, str, int, int]]:
    """The bulk entry's arrays of the block's input and output pointers."""
    return [("%ins", "ptr", tape.n_inputs, 8), ("%outs", "ptr", len(tape.outputs), 8)]


def _bulk_regions(tape: TapeView, shape: CodeShape) -> List[Tuple[str, str, int, int]]:
    """The bulk entry's buffers: pointer arrays and the gather buffers of one block."""
    gather = ("%buf", shape.scalar, max(1, tape.n_inputs) * gather_block(tape, shape), 64)
    return _pointer_regions(tape) + [gather]


def frame_bytes(regions: Sequence[Tuple[str, str, int, int]]) -> int:
    """Bytes ``regions`` take in the heap frame."""
    return sum(_Areas.bytes(count) for _, _, count, _ in regions)


def _body(tape: TapeView, shape: CodeShape, decls: Dict[str, str]) -> List[str]:
    """``alkahest_body(ins, outs, n, frame)`` over contiguous inputs: passes over the
    stages, each of up to ``block`` points (the whole array when no value crosses
    stages), in whole loop steps; the last few points (less than a step) run once more
    on zero-padded copies, so results never depend on a point's position. Its buffers
    are at ``frame`` when the bulk entry runs on the heap frame, else on its stack."""
    step, T, size, shift = shape.points_per_iteration, shape.scalar, shape.size, shape.size.bit_length() - 1
    em = shape.emitter(shape.width, decls)
    used = used_inputs(tape)
    n_out = len(tape.outputs)
    buffer_of = tape.plan.buffer_of
    n_buffers = tape.plan.crossing_buffers
    # Points per pass over the stages: bounded by the block buffers when values cross
    # stages; otherwise one pass takes every whole loop step.
    block = staged_block(tape, shape) if n_buffers else 1 << 62
    at = _Block(tape, shape, em, block)
    decls["llvm.memcpy"] = "declare void @llvm.memcpy.p0.p0.i64(ptr, ptr, i64, i1)"
    decls["llvm.memset"] = "declare void @llvm.memset.p0.i64(ptr, i8, i64, i1)"
    L = em.lines
    L += ["define internal void @alkahest_body(ptr %ins, ptr %outs, i64 %n, ptr %frame) #2 {", "entry:"]
    _load_pointers(L, "%ins", used, "ins", "a")
    _load_pointers(L, "%outs", range(n_out), "outs", "r")
    areas = _Areas(L, "%frame" if heap_frame(tape, shape) else None)
    for region in _body_regions(tape, shape):
        areas.take(*region)
    for slot, i in enumerate(used):
        L.append(f"  %ti.{i} = getelementptr inbounds {T}, ptr %tin, i64 {slot * step}")
    for j in range(n_out):
        L.append(f"  %to.{j} = getelementptr inbounds {T}, ptr %tout, i64 {j * step}")
    buffer = {v: b for v, b in enumerate(buffer_of) if b is not None}
    L += [
        "  br label %head",
        "head:",
        "  %k = phi i64 [ 0, %entry ], [ %k.next, %latch ]",
        "  %rem = sub i64 %n, %k",
        f"  %short = icmp slt i64 %rem, {block}",
        f"  %avail = select i1 %short, i64 %rem, i64 {block}",
        f"  %cnt.direct = and i64 %avail, {-step}",
        "  %whole = icmp sgt i64 %cnt.direct, 0",
        "  br i1 %whole, label %direct, label %tailcheck",
        "tailcheck:",
        "  %some = icmp sgt i64 %rem, 0",
        "  br i1 %some, label %tail, label %exit",
        "tail:",
        f"  call void @llvm.memset.p0.i64(ptr align 64 %tin, i8 0, i64 {max(1, len(used)) * step * size}, i1 false)",
        f"  %bytes = shl i64 %rem, {shift}",
    ]
    for i in used:
        L.append(f"  %src.{i} = getelementptr inbounds {T}, ptr %a.{i}, i64 %k")
        L.append(f"  call void @llvm.memcpy.p0.p0.i64(ptr align {size} %ti.{i}, ptr align {size} %src.{i}, i64 %bytes, i1 false)")
    L += ["  br label %compute", "direct:"]
    for i in used:
        L.append(f"  %da.{i} = getelementptr inbounds {T}, ptr %a.{i}, i64 %k")
    for j in range(n_out):
        L.append(f"  %dr.{j} = getelementptr inbounds {T}, ptr %r.{j}, i64 %k")
    L += ["  br label %compute", "compute:"]
    for i in used:
        L.append(f"  %pa.{i} = phi ptr [ %da.{i}, %direct ], [ %ti.{i}, %tail ]")
    for j in range(n_out):
        L.append(f"  %pr.{j} = phi ptr [ %dr.{j}, %direct ], [ %to.{j}, %tail ]")
    L.append("  %istail = phi i1 [ false, %direct ], [ true, %tail ]")
    L.append(f"  %cnt = phi i64 [ %cnt.direct, %direct ], [ {step}, %tail ]")
    _store_pointers(L, "%pins", used, "pins", "pa")
    _store_pointers(L, "%pouts", range(n_out), "pouts", "pr")
    stage_functions = _stages(tape, shape, at, buffer)
    L += ["  br i1 %istail, label %tailout, label %latch", "tailout:", f"  %bytes.out = shl i64 %rem, {shift}"]
    for j in range(n_out):
        L.append(f"  %dst.{j} = getelementptr inbounds {T}, ptr %r.{j}, i64 %k")
        L.append(f"  call void @llvm.memcpy.p0.p0.i64(ptr align {size} %dst.{j}, ptr align {size} %to.{j}, i64 %bytes.out, i1 false)")
    L += [
        "  br label %exit",
        "latch:",
        "  %k.next = add nuw nsw i64 %k, %cnt",
        "  br label %head",
        "exit:",
        "  ret void",
        "}",
        "",
    ]
    return L + stage_functions


#: Vector-math calls per loop of staged code (see ``_loops``).
CALLS_PER_LOOP = 1


def _loops(plan: Plan, stages: range) -> List[Tuple[List[int], List[int]]]:
    """The plan's ``stages`` packed into loops ``(values computed, values stored)``: a
    loop holds up to ``CALLS_PER_LOOP`` vector stages and the fused stage after each (a
    fused stage after a fused one, cut from it for size, has its own). Fewer loops
    compile faster; a few calls per loop still keep their routines in cache. The plan's
    buffers stay valid: a stage never writes a buffer an earlier stage of the same loop
    still reads at a later point (each iteration loads its points before it stores them,
    and buffers are per point)."""
    loops: List[Tuple[List[int], List[int]]] = []
    calls = CALLS_PER_LOOP  # start a new loop at the first stage
    after_fused = False
    for k in stages:
        stage, stores = plan.stages[k], plan.stores[k]
        fused = isinstance(stage, FusedStage)
        values = list(stage.values) if isinstance(stage, FusedStage) else [stage.value]
        if not fused:
            if calls >= CALLS_PER_LOOP:
                loops.append(([], []))
                calls = 0
            calls += 1
        elif after_fused or not loops:
            loops.append(([], []))
        after_fused = fused
        loops[-1][0].extend(values)
        loops[-1][1].extend(stores)
    return loops


def _stages(tape: TapeView, shape: CodeShape, at: _Block, buffer: Mapping[int, int]) -> List[str]:
    """The plan's stages, each a loop over the block's ``%cnt`` points, in the functions
    ``Plan.functions`` groups them into; ``%ins`` / ``%outs`` hold the block's input and
    output pointers. Returns the functions' code and appends their calls to the body.

    The stages are spread over functions of bounded size because LLVM's loop analyses
    (scalar evolution, for loop strength reduction) grow quadratically with the loops of
    one function and register allocation faster than linearly with its values, while
    each function costs the code generator a fixed ~1 ms."""
    em, step = at.em, shape.points_per_iteration
    body_lines = em.lines
    out: List[str] = []
    used = used_inputs(tape)
    groups = [_loops(tape.plan, range(start, end)) for start, end in tape.plan.functions]
    for g, loops in enumerate(groups):
        last = g == len(groups) - 1
        reads = {a for values, _ in loops for v in values for a in tape.instrs[v].args}
        if last:
            reads |= set(tape.outputs)
        attrs = "#4" if shape.quick_stages else "#2"
        em.lines = L = [f"define internal void @alkahest_stages{g}(ptr %buf, ptr %ins, ptr %outs, i64 %cnt) {attrs} {{",
                        "entry:"]
        _load_pointers(L, "%ins", [i for i in used if i in reads], "pi", "pa")
        if last:
            _load_pointers(L, "%outs", range(len(tape.outputs)), "po", "pr")
        prev = "entry"
        L.append("  br label %s0")
        for s, (values, stores) in enumerate(loops):
            em.conds.clear()  # condition lanes do not cross loops
            L += [f"s{s}:", f"  %j{s} = phi i64 [ 0, %{prev} ], [ %j{s}.next, %s{s} ]"]
            at.fused(f"%j{s}", values, buffer, stores, outputs=last and s == len(loops) - 1)
            nxt = f"s{s + 1}" if s + 1 < len(loops) else "done"
            L += [
                f"  %j{s}.next = add nuw nsw i64 %j{s}, {step}",
                f"  %more{s} = icmp ult i64 %j{s}.next, %cnt",
                f"  br i1 %more{s}, label %s{s}, label %{nxt}",
            ]
            prev = f"s{s}"
        L += ["done:", "  ret void", "}", ""]
        out += L
    em.lines = body_lines
    em.conds.clear()
    for g in range(len(groups)):
        body_lines.append(f"  call void @alkahest_stages{g}(ptr %buf, ptr %pins, ptr %pouts, i64 %cnt)")
    return out


def _fixed_stack_bytes(tape: TapeView, shape: CodeShape) -> int:
    """Frame bytes besides the gather buffers: pointer arrays, padded tail buffers and
    the block buffers of staged code."""
    return frame_bytes(_pointer_regions(tape)) + frame_bytes(_body_regions(tape, shape))


def gather_block(tape: TapeView, shape: CodeShape) -> int:
    """Points per block when inputs are gathered: a multiple of the loop step, with the
    gather buffers of all inputs within ``GATHER_BUDGET`` and the whole frame within
    the plan's stack budget (many inputs and outputs take smaller blocks)."""
    step = shape.points_per_iteration
    per_point = shape.size * max(1, tape.n_inputs)
    room = min(GATHER_BUDGET, tape.plan.stack_budget - _fixed_stack_bytes(tape, shape))
    return max(step, min(1024, room // per_point) // step * step)


def stack_bytes(tape: TapeView, shape: CodeShape) -> int:
    """Bytes of the bulk entry's whole frame: its regions and the body's."""
    return frame_bytes(_bulk_regions(tape, shape)) + frame_bytes(_body_regions(tape, shape))


def heap_frame(tape: TapeView, shape: CodeShape) -> bool:
    """Whether the bulk entry's buffers go to the thread's heap frame: when they would
    take more than the plan's stack budget (many inputs, outputs or crossing values)."""
    return stack_bytes(tape, shape) > tape.plan.stack_budget


def _bulk_entry(tape: TapeView, shape: CodeShape, decls: Dict[str, str]) -> List[str]:
    n_out = len(tape.outputs)
    block = gather_block(tape, shape)
    used = set(used_inputs(tape))
    T = shape.scalar
    gather = f"alkahest_gather{ROUTINE_SUFFIX[T]}"
    decls[gather] = f"declare ptr @{gather}(ptr, i64, ptr, i64) #3"
    L = ["define void @alkahest_bulk(ptr %in, ptr %stride, ptr %out, i64 %n) #0 {", "entry:"]
    heap = heap_frame(tape, shape)
    body_frame = "null"
    if heap:
        # One request for the whole frame: the bulk entry's regions, then the body's.
        own = frame_bytes(_bulk_regions(tape, shape))
        decls["alkahest_frame"] = "declare ptr @alkahest_frame(i64) #3"
        L.append(f"  %frame = call ptr @alkahest_frame(i64 {stack_bytes(tape, shape)})")
        L.append(f"  %frame.body = getelementptr inbounds i8, ptr %frame, i64 {own}")
        body_frame = "%frame.body"
    contiguous = "true"
    for i in sorted(used):
        L.append(f"  %sp.{i} = getelementptr inbounds i64, ptr %stride, i64 {i}")
        L.append(f"  %s.{i} = load i64, ptr %sp.{i}, align 8")
        L.append(f"  %unit.{i} = icmp eq i64 %s.{i}, 1")
        L.append(f"  %c.{i} = and i1 {contiguous}, %unit.{i}")
        contiguous = f"%c.{i}"
    L += [
        f"  br i1 {contiguous}, label %direct, label %strided",
        "direct:",
        f"  call void @alkahest_body(ptr %in, ptr %out, i64 %n, ptr {body_frame})",
        "  ret void",
        "strided:",
    ]
    areas = _Areas(L, "%frame" if heap else None)
    for region in _bulk_regions(tape, shape):
        areas.take(*region)
    _load_pointers(L, "%in", sorted(used), "ip", "p")
    _load_pointers(L, "%out", range(n_out), "op", "o")
    L += [
        "  br label %block",
        "block:",
        "  %k = phi i64 [ 0, %strided ], [ %k.next, %block ]",
        "  %rem = sub i64 %n, %k",
        f"  %short = icmp slt i64 %rem, {block}",
        f"  %len = select i1 %short, i64 %rem, i64 {block}",
    ]
    for i in sorted(used):
        L.append(f"  %off.{i} = mul i64 %k, %s.{i}")
        L.append(f"  %src.{i} = getelementptr {T}, ptr %p.{i}, i64 %off.{i}")
        L.append(f"  %b.{i} = getelementptr inbounds {T}, ptr %buf, i64 {i * block}")
        L.append(f"  %q.{i} = call ptr @{gather}(ptr %src.{i}, i64 %s.{i}, ptr %b.{i}, i64 %len)")
        L.append(f"  %qs.{i} = getelementptr inbounds ptr, ptr %ins, i64 {i}")
        L.append(f"  store ptr %q.{i}, ptr %qs.{i}, align 8")
    for j in range(n_out):
        L.append(f"  %dst.{j} = getelementptr inbounds {T}, ptr %o.{j}, i64 %k")
        L.append(f"  %ds.{j} = getelementptr inbounds ptr, ptr %outs, i64 {j}")
        L.append(f"  store ptr %dst.{j}, ptr %ds.{j}, align 8")
    L += [
        f"  call void @alkahest_body(ptr %ins, ptr %outs, i64 %len, ptr {body_frame})",
        "  %k.next = add nuw nsw i64 %k, %len",
        "  %more = icmp slt i64 %k.next, %n",
        "  br i1 %more, label %block, label %done",
        "done:",
        "  ret void",
        "}",
    ]
    return L


def generate(tape: TapeView, shape: CodeShape, triple: str = "", datalayout: str = "") -> str:
    """The module's IR text: ``alkahest_scalar``, ``alkahest_bulk`` and their helpers.

    Raises :class:`UnsupportedTape` for an unknown operation.
    """
    check(tape)
    decls: Dict[str, str] = {}
    parts = [_scalar_entry(tape, shape, decls), _body(tape, shape, decls), _bulk_entry(tape, shape, decls)]
    head = ["; alkahest LLVM tier"]
    if triple:
        head.append(f'target triple = "{triple}"')
    if datalayout:
        head.append(f'target datalayout = "{datalayout}"')
    lines = head + [""]
    for part in parts:
        lines += part + [""]
    lines += sorted(decls.values())
    align = " alignstack=64" if shape.aligned_frames else ""
    lines += [
        "",
        "attributes #0 = { nounwind }",
        "attributes #1 = { nounwind willreturn memory(none) }",
        f"attributes #2 = {{ nounwind noinline{align} }}",
        f"attributes #4 = {{ nounwind noinline optnone{align} }}",
        "attributes #3 = { nounwind }",
        "attributes #5 = { nounwind noinline }",
    ]
    return "\n".join(lines) + "\n"


#: Tapes with more vector-math calls than this run staged (see CodeShape.staged).
STAGED_CALLS = 4
#: Tapes with at most this many operations per vector-math call get aligned frames.
ALIGNED_OPS_PER_CALL = 8


# Staged code compiles its stage loops ``optnone`` (fast instruction selection and
# register allocation) unless opt_level=3. A stage loop is mostly one libmvec call, so
# optimising it buys little at run time and costs ~1.2 ms of LLVM's code generator per
# loop (measured, generated DAGs: 100 ops 41 -> 27 ms, 500 ops 114 -> 70 ms, 10,000 ops
# 3.1 -> 1.4 s to compile; run times within the machine's noise, -12% to +10%).


def make_shape(instrs: Sequence[Instr], width: int, vector_fns: Mapping[str, Tuple[str, int]], fastmath: bool,
               opt_level: int = 2, scalar: str = "double") -> CodeShape:
    """The code shape for a tape with instructions ``instrs`` on a machine with
    ``width``-lane vectors of ``scalar`` (``double`` or ``float``); ``vector_fns`` are the
    available ``{op: (libmvec symbol, lanes)}`` for that type."""
    fns = {op: sym for op, (sym, lanes) in vector_fns.items() if lanes == width}
    n_ops = sum(1 for ins in instrs if ins.computes)
    n_calls = sum(1 for ins in instrs if ins.op in fns)
    # Several vectors per iteration hide the latency of dependent chains (4 measured ~5%
    # faster than 2 on the polynomial); large bodies have enough independent work already
    # and would only multiply the register pressure.
    interleave = 4 if n_ops <= 32 else 2 if n_ops <= 200 else 1
    # Fused code interleaves the routines point by point: past a few calls their tables
    # and code no longer stay in cache and every call spills the live registers (measured
    # on the suite: 3-4 calls run faster inline, 5 and more 1.5-2x faster staged).
    staged = n_calls > STAGED_CALLS
    quick = staged and opt_level < 3
    # Every call clobbers every vector register, so vectors live across it are spilled;
    # in a 16-byte-aligned frame a 64-byte spill splits a cache line. Call-dominated
    # loops get frames aligned to 64 bytes (realigned through the frame pointer). Measured
    # at 10^5 points, AVX-512 (suite cases): where (6 ops, 1 call) 1.35 -> 0.98 ns per
    # point, the 500-op DAG (120 calls) 169 -> 153; but Black-Scholes (58 ops, 4 calls)
    # 5.49 -> 6.41, where the frame pointer costs more than the spills.
    aligned = 0 < n_ops <= ALIGNED_OPS_PER_CALL * n_calls
    return CodeShape(width=width, interleave=interleave, vector_fns=fns, fastmath=fastmath, staged=staged,
                     quick_stages=quick, aligned_frames=aligned, scalar=scalar)
