//! The interpreter tier: a block-vectorised virtual machine over the tape.
//!
//! Bulk evaluation runs each instruction over a block of points into reusable slot
//! buffers, as numexpr does: one pass per instruction over data that stays in cache,
//! no array-sized temporaries. Slots are assigned once at construction from the tape's
//! last-use information; a destination never aliases its operands, so the per-op loops
//! compile to SIMD. Functions with a glibc vector variant use it in bulk when
//! `vector_math` is on (see `vecmath`); the scalar entry always calls libm.

use std::cell::RefCell;
use std::sync::Arc;

use crate::element::Element;
use crate::kernel::Kernel;
use crate::op::{BinaryOp, UnaryOp};
use crate::tape::{Instr, Tape};
use crate::vecmath::{self, VectorFn};

/// Points per block: 8 KiB per float64 slot keeps a typical working set in L1/L2.
pub const BLOCK: usize = 1024;

#[derive(Clone, Copy, Debug)]
enum Operand<E> {
    Slot(u32),
    Input(u32),
    Const(E),
}

#[derive(Clone, Copy, Debug)]
enum StepKind {
    Unary(UnaryOp),
    Binary(BinaryOp),
    Select,
    Fma,
}

#[derive(Clone, Copy, Debug)]
struct Step<E> {
    kind: StepKind,
    dst: u32,
    args: [Operand<E>; 3],
    /// Set when bulk evaluation of this unary op goes through a vector-math routine.
    vector: Option<VectorFn>,
}

/// A tape prepared for interpretation in element type `E` (slots assigned, constants
/// rounded to `E`). Cheap to share between threads.
pub struct Interpreter<E: Element = f64> {
    tape: Arc<Tape>,
    steps: Vec<Step<E>>,
    outputs: Vec<Operand<E>>,
    n_slots: usize,
}

/// Where a block's operand values come from.
#[derive(Clone, Copy)]
enum Src<E> {
    Ptr(*const E),
    Scalar(E),
}

/// The arguments of one `Kernel::bulk` call.
#[derive(Clone, Copy)]
struct BulkArgs<'a, E> {
    inputs: &'a [*const E],
    strides: &'a [isize],
    outputs: &'a [*mut E],
}

thread_local! {
    /// Block buffers of this thread's bulk calls, in 8-byte units (any element type).
    static WORKSPACE: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

impl Interpreter<f64> {
    /// Prepares `tape`, using vector math in bulk where available.
    pub fn new(tape: Tape) -> Self {
        Self::with_options(Arc::new(tape), true)
    }
}

impl<E: Element> Interpreter<E> {
    /// Prepares `tape`; `vector_math = false` keeps every element on libm (≤ 1 ulp).
    pub fn with_options(tape: Arc<Tape>, vector_math: bool) -> Self {
        let mut operand_of: Vec<Operand<E>> = Vec::with_capacity(tape.instrs.len());
        let mut free: Vec<u32> = Vec::new();
        let mut n_slots = 0u32;
        let mut steps = Vec::new();
        for (k, ins) in tape.instrs.iter().enumerate() {
            let arg = |v: u32| operand_of[v as usize];
            let (kind, args) = match *ins {
                Instr::Input(i) => {
                    operand_of.push(Operand::Input(i));
                    continue;
                }
                Instr::Const(c) => {
                    operand_of.push(Operand::Const(E::from_f64(tape.consts[c as usize])));
                    continue;
                }
                Instr::Unary(op, a) => {
                    (StepKind::Unary(op), [arg(a), Operand::Const(E::ZERO), Operand::Const(E::ZERO)])
                }
                Instr::Binary(op, a, b) => (StepKind::Binary(op), [arg(a), arg(b), Operand::Const(E::ZERO)]),
                Instr::Select(c, a, b) => (StepKind::Select, [arg(c), arg(a), arg(b)]),
                Instr::Fma(a, b, c) => (StepKind::Fma, [arg(a), arg(b), arg(c)]),
            };
            // Take the destination before freeing operands: no in-place aliasing.
            let dst = free.pop().unwrap_or_else(|| {
                n_slots += 1;
                n_slots - 1
            });
            let vector = match kind {
                StepKind::Unary(op) if vector_math => vecmath::unary_of::<E>(op),
                _ => None,
            };
            steps.push(Step { kind, dst, args, vector });
            operand_of.push(Operand::Slot(dst));
            let mut operands: Vec<u32> = ins.operands().collect();
            operands.dedup();
            operands.sort_unstable();
            operands.dedup();
            for v in operands {
                if tape.last_use[v as usize] as usize == k {
                    if let Operand::Slot(s) = operand_of[v as usize] {
                        free.push(s);
                    }
                }
            }
        }
        let outputs = tape.outputs.iter().map(|&o| operand_of[o as usize]).collect();
        Interpreter { tape, steps, outputs, n_slots: n_slots as usize }
    }

    pub fn tape(&self) -> &Arc<Tape> {
        &self.tape
    }

    /// Number of block buffers bulk evaluation uses.
    pub fn n_slots(&self) -> usize {
        self.n_slots
    }

    fn eval_with(&self, args: &[E], out: &mut [E], slots: &mut [E]) {
        let val = |o: Operand<E>, slots: &[E]| match o {
            Operand::Slot(s) => slots[s as usize],
            Operand::Input(i) => args[i as usize],
            Operand::Const(c) => c,
        };
        for st in &self.steps {
            let [a, b, c] = st.args;
            let r = match st.kind {
                StepKind::Unary(op) => E::unary(op, val(a, slots)),
                StepKind::Binary(op) => E::binary(op, val(a, slots), val(b, slots)),
                StepKind::Select => E::select(val(a, slots), val(b, slots), val(c, slots)),
                StepKind::Fma => E::fma(val(a, slots), val(b, slots), val(c, slots)),
            };
            slots[st.dst as usize] = r;
        }
        for (o, &operand) in out.iter_mut().zip(&self.outputs) {
            *o = val(operand, slots);
        }
    }

    /// One block of `len ≤ BLOCK` points starting at point `start`.
    unsafe fn eval_block(
        &self,
        ws: *mut E,
        srcs: &mut [Src<E>],
        io: &BulkArgs<'_, E>,
        start: usize,
        len: usize,
    ) {
        let BulkArgs { inputs, strides, outputs } = *io;
        let gather_base = ws.add(self.n_slots * BLOCK);
        for (i, src) in srcs.iter_mut().enumerate() {
            let stride = strides[i];
            *src = match stride {
                0 => Src::Scalar(*inputs[i]),
                1 => Src::Ptr(inputs[i].add(start)),
                _ => {
                    let buf = gather_base.add(i * BLOCK);
                    let p = inputs[i].offset(start as isize * stride);
                    for k in 0..len {
                        *buf.add(k) = *p.offset(k as isize * stride);
                    }
                    Src::Ptr(buf)
                }
            };
        }
        let resolve = |o: Operand<E>| match o {
            Operand::Slot(s) => Src::Ptr(ws.add(s as usize * BLOCK)),
            Operand::Input(i) => srcs[i as usize],
            Operand::Const(c) => Src::Scalar(c),
        };
        for st in &self.steps {
            let d = std::slice::from_raw_parts_mut(ws.add(st.dst as usize * BLOCK), len);
            let [a, b, c] = st.args.map(resolve);
            match st.kind {
                StepKind::Unary(op) => match (st.vector, a) {
                    (Some(vf), Src::Ptr(p)) => vecmath::apply(vf, p, d),
                    // A broadcast value goes through the same routine as an array would.
                    (Some(vf), Src::Scalar(v)) => {
                        let mut one = [E::ZERO];
                        vecmath::apply(vf, &v, &mut one);
                        d.fill(one[0]);
                    }
                    _ => unary_block(op, a, d),
                },
                StepKind::Binary(op) => binary_block(op, a, b, d),
                StepKind::Select => select_block(a, b, c, d),
                StepKind::Fma => fma_block(a, b, c, d),
            }
        }
        for (j, &o) in self.outputs.iter().enumerate() {
            let dst = std::slice::from_raw_parts_mut(outputs[j].add(start), len);
            match resolve(o) {
                Src::Ptr(p) => dst.copy_from_slice(std::slice::from_raw_parts(p, len)),
                Src::Scalar(v) => dst.fill(v),
            }
        }
    }
}

impl<E: Element> Kernel<E> for Interpreter<E> {
    fn n_inputs(&self) -> usize {
        self.tape.n_inputs
    }

    fn n_outputs(&self) -> usize {
        self.tape.outputs.len()
    }

    fn source(&self) -> String {
        format!("; interpreter: the tape, run block by block ({} slots)\n{}", self.n_slots, self.tape)
    }

    fn eval(&self, args: &[E], out: &mut [E]) {
        const STACK_SLOTS: usize = 64;
        if self.n_slots <= STACK_SLOTS {
            let mut slots = [E::ZERO; STACK_SLOTS];
            self.eval_with(args, out, &mut slots);
        } else {
            let mut slots = vec![E::ZERO; self.n_slots];
            self.eval_with(args, out, &mut slots);
        }
    }

    unsafe fn bulk(&self, inputs: &[*const E], strides: &[isize], outputs: &[*mut E], n: usize) {
        WORKSPACE.with(|cell| {
            let mut ws = cell.borrow_mut();
            let need = ((self.n_slots + self.tape.n_inputs) * BLOCK * std::mem::size_of::<E>()).div_ceil(8);
            if ws.len() < need {
                ws.resize(need, 0);
            }
            let mut srcs = vec![Src::Scalar(E::ZERO); self.tape.n_inputs];
            let io = BulkArgs { inputs, strides, outputs };
            let mut start = 0;
            while start < n {
                let len = BLOCK.min(n - start);
                // u64 storage is aligned for every element type.
                self.eval_block(ws.as_mut_ptr().cast::<E>(), &mut srcs, &io, start, len);
                start += len;
            }
        });
    }
}

// The per-op loops. Each `match` arm instantiates a loop with the operation inlined, so
// arithmetic vectorises; libm calls stay one call per element.

macro_rules! monomorphise {
    ($value:expr, $Enum:ident [$($V:ident),* $(,)?], |$k:ident| $body:expr) => {
        match $value { $($Enum::$V => { const $k: $Enum = $Enum::$V; $body })* }
    };
}

#[inline(always)]
unsafe fn map1<E: Element>(a: Src<E>, d: &mut [E], f: impl Fn(E) -> E) {
    match a {
        Src::Ptr(p) => {
            let a = std::slice::from_raw_parts(p, d.len());
            for (d, &a) in d.iter_mut().zip(a) {
                *d = f(a);
            }
        }
        Src::Scalar(v) => d.fill(f(v)),
    }
}

#[inline(always)]
unsafe fn map2<E: Element>(a: Src<E>, b: Src<E>, d: &mut [E], f: impl Fn(E, E) -> E) {
    let n = d.len();
    match (a, b) {
        (Src::Ptr(p), Src::Ptr(q)) => {
            let (a, b) = (std::slice::from_raw_parts(p, n), std::slice::from_raw_parts(q, n));
            for ((d, &a), &b) in d.iter_mut().zip(a).zip(b) {
                *d = f(a, b);
            }
        }
        (Src::Ptr(p), Src::Scalar(b)) => {
            for (d, &a) in d.iter_mut().zip(std::slice::from_raw_parts(p, n)) {
                *d = f(a, b);
            }
        }
        (Src::Scalar(a), Src::Ptr(q)) => {
            for (d, &b) in d.iter_mut().zip(std::slice::from_raw_parts(q, n)) {
                *d = f(a, b);
            }
        }
        (Src::Scalar(a), Src::Scalar(b)) => d.fill(f(a, b)),
    }
}

unsafe fn unary_block<E: Element>(op: UnaryOp, a: Src<E>, d: &mut [E]) {
    use UnaryOp as U;
    monomorphise!(op, U [Neg, Sqrt, Cbrt, Exp, Expm1, Log, Log1p, Log2, Log10, Sin, Cos, Tan,
        Asin, Acos, Atan, Sinh, Cosh, Tanh, Asinh, Acosh, Atanh, Erf, Erfc, Abs, Floor, Ceil,
        Round, Not], |K| map1(a, d, |x| E::unary(K, x)))
}

unsafe fn binary_block<E: Element>(op: BinaryOp, a: Src<E>, b: Src<E>, d: &mut [E]) {
    use BinaryOp as B;
    monomorphise!(op, B [Add, Sub, Mul, Div, Pow, Atan2, Min, Max, Copysign, Lt, Le, Gt, Ge,
        Eq, Ne, And, Or], |K| map2(a, b, d, |x, y| E::binary(K, x, y)))
}

#[inline(always)]
unsafe fn map3<E: Element>(a: Src<E>, b: Src<E>, c: Src<E>, d: &mut [E], f: impl Fn(E, E, E) -> E) {
    let at = |s: Src<E>, k: usize| match s {
        Src::Ptr(p) => *p.add(k),
        Src::Scalar(v) => v,
    };
    for (k, dk) in d.iter_mut().enumerate() {
        *dk = f(at(a, k), at(b, k), at(c, k));
    }
}

/// `fma` over a block: with the CPU's FMA instructions when it has them (the build
/// targets baseline x86-64, where `mul_add` is a call to the C library's `fma`).
unsafe fn fma_block<E: Element>(a: Src<E>, b: Src<E>, c: Src<E>, d: &mut [E]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("fma") {
        return fma_block_hardware(a, b, c, d);
    }
    map3(a, b, c, d, E::fma)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "fma")]
unsafe fn fma_block_hardware<E: Element>(a: Src<E>, b: Src<E>, c: Src<E>, d: &mut [E]) {
    map3(a, b, c, d, E::fma)
}

unsafe fn select_block<E: Element>(c: Src<E>, a: Src<E>, b: Src<E>, d: &mut [E]) {
    match c {
        Src::Scalar(c) => map1(if c != E::ZERO { a } else { b }, d, |x| x),
        Src::Ptr(p) => {
            let cond = std::slice::from_raw_parts(p, d.len());
            // Blend both branches elementwise (branch-free, vectorises).
            for (k, dk) in d.iter_mut().enumerate() {
                let av = match a {
                    Src::Ptr(q) => *q.add(k),
                    Src::Scalar(v) => v,
                };
                let bv = match b {
                    Src::Ptr(q) => *q.add(k),
                    Src::Scalar(v) => v,
                };
                *dk = E::select(cond[k], av, bv);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::ExprPool;
    use crate::tape::lower;

    fn build() -> (Interpreter, impl Fn(f64, f64) -> [f64; 2]) {
        let p = ExprPool::new();
        let x = p.symbol("x").unwrap();
        let y = p.symbol("y").unwrap();
        let s = p.unary(UnaryOp::Sin, x).unwrap();
        let two = p.constant(2.0).unwrap();
        let x2 = p.binary(BinaryOp::Pow, x, two).unwrap();
        let e1 = p.binary(BinaryOp::Add, x2, s).unwrap();
        let gt = p.binary(BinaryOp::Gt, x, y).unwrap();
        let e2 = p.select(gt, s, y).unwrap();
        let t = lower(&p, &[e1, e2], &[x, y]).unwrap();
        let reference =
            |x: f64, y: f64| [x * x + UnaryOp::Sin.eval(x), if x > y { UnaryOp::Sin.eval(x) } else { y }];
        (Interpreter::with_options(Arc::new(t), false), reference)
    }

    #[test]
    fn scalar_matches_reference() {
        let (f, r) = build();
        let mut out = [0.0; 2];
        for &(x, y) in &[(0.5, 0.25), (-1.0, 3.0), (f64::NAN, 1.0), (f64::INFINITY, 0.0)] {
            f.eval(&[x, y], &mut out);
            let want = r(x, y);
            for k in 0..2 {
                assert!(
                    out[k] == want[k] || (out[k].is_nan() && want[k].is_nan()),
                    "{x} {y}: {out:?} vs {want:?}"
                );
            }
        }
    }

    #[test]
    fn bulk_matches_scalar_with_strides_and_broadcast() {
        let (f, _) = build();
        let n = 3 * BLOCK + 17;
        let xs: Vec<f64> = (0..2 * n).map(|i| (i as f64 * 0.37).sin() * 3.0).collect();
        let y = [0.1];
        let mut o0 = vec![0.0; n];
        let mut o1 = vec![0.0; n];
        unsafe {
            f.bulk(&[xs.as_ptr(), y.as_ptr()], &[2, 0], &[o0.as_mut_ptr(), o1.as_mut_ptr()], n);
        }
        let mut out = [0.0; 2];
        for k in 0..n {
            f.eval(&[xs[2 * k], 0.1], &mut out);
            assert_eq!((o0[k], o1[k]), (out[0], out[1]), "point {k}");
        }
    }

    #[test]
    fn float32_bulk_matches_float32_scalar_and_the_float64_result_rounded() {
        let (f64_kernel, _) = build();
        let f = Interpreter::<f32>::with_options(f64_kernel.tape().clone(), false);
        let n = 2 * BLOCK + 5;
        let xs: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin() * 3.0).collect();
        let y = [0.1f32];
        let (mut o0, mut o1) = (vec![0.0f32; n], vec![0.0f32; n]);
        unsafe { f.bulk(&[xs.as_ptr(), y.as_ptr()], &[1, 0], &[o0.as_mut_ptr(), o1.as_mut_ptr()], n) };
        let (mut out, mut wide) = ([0.0f32; 2], [0.0f64; 2]);
        for k in 0..n {
            f.eval(&[xs[k], 0.1], &mut out);
            assert_eq!((o0[k].to_bits(), o1[k].to_bits()), (out[0].to_bits(), out[1].to_bits()), "point {k}");
            f64_kernel.eval(&[f64::from(xs[k]), f64::from(0.1f32)], &mut wide);
            for j in 0..2 {
                let want = wide[j] as f32;
                assert!(
                    (out[j] - want).abs() <= 4.0 * f32::EPSILON * want.abs().max(1.0),
                    "{k}: {out:?} vs {wide:?}"
                );
            }
        }
    }

    #[test]
    fn slots_are_reused() {
        let p = ExprPool::new();
        let x = p.symbol("x").unwrap();
        let mut e = x;
        for _ in 0..1000 {
            e = p.unary(UnaryOp::Sin, e).unwrap();
        }
        let f = Interpreter::new(lower(&p, &[e], &[x]).unwrap());
        assert!(f.n_slots() <= 2, "a chain needs two slots, got {}", f.n_slots());
    }
}
