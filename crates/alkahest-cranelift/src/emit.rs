//! One tape instruction as Cranelift IR, shared by the scalar and bulk entries.
//!
//! The scalar entry computes one point per value (`f64`, or `f32` for float32 kernels);
//! the bulk loops compute a 128-bit vector of points per value (`f64x2` or `f32x4`,
//! SSE2), so arithmetic runs at the width of the interpreter's SIMD loops while staying
//! fused in registers. Arithmetic, `sqrt`, `abs`, `floor`,
//! `ceil`, `min`/`max` (WebAssembly rules = IEEE 754-2019 minimum/maximum) and `copysign`
//! are native instructions; every other function calls, lane by lane, the very symbol
//! the interpreter calls (see `alkahest_core::ffi`). Conditions and `where` are
//! branch-free: integer `select` (cmov) on scalars, bit masks on pairs.

use std::collections::HashMap;

use alkahest_core::{BinaryOp, DType, Instr, UnaryOp};
use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::{types, FuncRef, InstBuilder, MemFlagsData, Type, Value};
use cranelift_frontend::FunctionBuilder;

/// The functions a body may call, imported into the function being built.
pub struct Callees {
    /// The element type the function computes in.
    pub dtype: DType,
    pub unary: HashMap<UnaryOp, FuncRef>,
    pub binary: HashMap<BinaryOp, FuncRef>,
    /// `alkahest_vector_apply`, `alkahest_gather` and `alkahest_frame` (bulk entry only).
    pub vector_apply: Option<FuncRef>,
    pub gather: Option<FuncRef>,
    pub frame: Option<FuncRef>,
}

/// What one value holds: one point or a vector of points, of one element type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Width {
    pub dtype: DType,
    pub vector: bool,
}

impl Width {
    pub fn scalar(dtype: DType) -> Width {
        Width { dtype, vector: false }
    }

    pub fn vector(dtype: DType) -> Width {
        Width { dtype, vector: true }
    }

    /// The element's IR type (`f64`, `f32`).
    pub fn elem(self) -> Type {
        match self.dtype {
            DType::F64 => types::F64,
            DType::F32 => types::F32,
        }
    }

    /// The integer type of the element's size.
    fn int(self) -> Type {
        match self.dtype {
            DType::F64 => types::I64,
            DType::F32 => types::I32,
        }
    }

    /// The IR type of a value: the element, or a 128-bit vector of them.
    pub fn ty(self) -> Type {
        if self.vector {
            self.elem().by(self.lanes() as u32).expect("a 128-bit vector type")
        } else {
            self.elem()
        }
    }

    /// Points per value.
    pub fn lanes(self) -> usize {
        if self.vector {
            16 / self.dtype.size()
        } else {
            1
        }
    }

    /// log2 of the element's size in bytes (index to byte offset).
    pub fn shift(self) -> i64 {
        self.dtype.size().trailing_zeros() as i64
    }
}

/// A constant of the given width, rounded to its element type once, here.
pub fn fconst(b: &mut FunctionBuilder<'_>, w: Width, v: f64) -> Value {
    let c = match w.dtype {
        DType::F64 => b.ins().f64const(v),
        DType::F32 => b.ins().f32const(v as f32),
    };
    if w.vector {
        b.ins().splat(w.ty(), c)
    } else {
        c
    }
}

fn bitcast(b: &mut FunctionBuilder<'_>, ty: Type, x: Value) -> Value {
    b.ins().bitcast(ty, MemFlagsData::new(), x)
}

/// 1.0 where `cond` holds, else 0.0 (`cond`: i8 for scalars, a lane mask for vectors).
fn truth(b: &mut FunctionBuilder<'_>, w: Width, cond: Value) -> Value {
    if w.vector {
        let mask = bitcast(b, w.ty(), cond);
        let one = fconst(b, w, 1.0);
        return b.ins().band(mask, one);
    }
    let one_bits = match w.dtype {
        DType::F64 => 1.0f64.to_bits() as i64,
        DType::F32 => i64::from(1.0f32.to_bits()),
    };
    let one = b.ins().iconst(w.int(), one_bits);
    let zero = b.ins().iconst(w.int(), 0);
    let bits = b.ins().select(cond, one, zero);
    bitcast(b, w.elem(), bits)
}

/// `cond ? x : y` without a branch.
fn choose(b: &mut FunctionBuilder<'_>, w: Width, cond: Value, x: Value, y: Value) -> Value {
    if w.vector {
        let mask = bitcast(b, w.ty(), cond);
        return b.ins().bitselect(mask, x, y);
    }
    let (xi, yi) = (bitcast(b, w.int(), x), bitcast(b, w.int(), y));
    let r = b.ins().select(cond, xi, yi);
    bitcast(b, w.elem(), r)
}

/// A vector of `w` from its lanes.
fn from_lanes(b: &mut FunctionBuilder<'_>, w: Width, lanes: &[Value]) -> Value {
    let mut v = b.ins().scalar_to_vector(w.ty(), lanes[0]);
    for (k, &x) in lanes.iter().enumerate().skip(1) {
        v = b.ins().insertlane(v, x, k as u8);
    }
    v
}

fn nonzero(b: &mut FunctionBuilder<'_>, w: Width, x: Value) -> Value {
    let zero = fconst(b, w, 0.0);
    // NotEqual is "unordered or not equal": NaN counts as true, as in C.
    b.ins().fcmp(FloatCC::NotEqual, x, zero)
}

/// Calls `f` on each lane.
fn call(b: &mut FunctionBuilder<'_>, w: Width, f: FuncRef, args: &[Value]) -> Value {
    let one_lane = |b: &mut FunctionBuilder<'_>, lane_args: Vec<Value>| {
        let inst = b.ins().call(f, &lane_args);
        b.inst_results(inst)[0]
    };
    if !w.vector {
        return one_lane(b, args.to_vec());
    }
    let lanes: Vec<Value> = (0..w.lanes() as u8)
        .map(|lane| {
            let lane_args = args.iter().map(|&a| b.ins().extractlane(a, lane)).collect();
            one_lane(b, lane_args)
        })
        .collect();
    from_lanes(b, w, &lanes)
}

/// `a * b + c` rounded once. Cranelift lowers scalar `fma` to the instruction or, on a
/// CPU without FMA, to the C library's `fma`; vectors need the instruction, so without it
/// they go lane by lane.
fn fma(b: &mut FunctionBuilder<'_>, w: Width, x: Value, y: Value, z: Value) -> Value {
    #[cfg(target_arch = "x86_64")]
    let lanes = w.vector && !std::arch::is_x86_feature_detected!("fma");
    #[cfg(not(target_arch = "x86_64"))]
    let lanes = false;
    if !lanes {
        return b.ins().fma(x, y, z);
    }
    let r: Vec<Value> = (0..w.lanes() as u8)
        .map(|lane| {
            let (xl, yl, zl) =
                (b.ins().extractlane(x, lane), b.ins().extractlane(y, lane), b.ins().extractlane(z, lane));
            b.ins().fma(xl, yl, zl)
        })
        .collect();
    from_lanes(b, w, &r)
}

/// `r`, with any NaN replaced by the canonical quiet NaN (`f64::NAN`, `f32::NAN`). Cranelift's
/// `fmin`/`fmax` leave the NaN's sign and payload unspecified (x86 gives a negative one),
/// and `copysign` can make that sign visible; the interpreter returns `f64::NAN`.
fn canonical_nan(b: &mut FunctionBuilder<'_>, w: Width, r: Value) -> Value {
    let is_nan = b.ins().fcmp(FloatCC::Unordered, r, r);
    let nan = fconst(b, w, f64::NAN);
    choose(b, w, is_nan, nan, r)
}

/// Emits `ins` applied to the operand values `args` (in `Instr::operands` order).
pub fn emit(b: &mut FunctionBuilder<'_>, w: Width, callees: &Callees, ins: &Instr, args: &[Value]) -> Value {
    match *ins {
        Instr::Input(_) | Instr::Const(_) => unreachable!("inputs and constants are not computed"),
        Instr::Unary(op, _) => {
            let x = args[0];
            match op {
                UnaryOp::Neg => b.ins().fneg(x),
                UnaryOp::Abs => b.ins().fabs(x),
                UnaryOp::Sqrt => b.ins().sqrt(x),
                UnaryOp::Floor => b.ins().floor(x),
                UnaryOp::Ceil => b.ins().ceil(x),
                UnaryOp::Not => {
                    let zero = fconst(b, w, 0.0);
                    let c = b.ins().fcmp(FloatCC::Equal, x, zero);
                    truth(b, w, c)
                }
                _ => call(b, w, callees.unary[&op], &[x]),
            }
        }
        Instr::Binary(op, ..) => {
            let (x, y) = (args[0], args[1]);
            let cmp = |b: &mut FunctionBuilder<'_>, cc| {
                let c = b.ins().fcmp(cc, x, y);
                truth(b, w, c)
            };
            match op {
                BinaryOp::Add => b.ins().fadd(x, y),
                BinaryOp::Sub => b.ins().fsub(x, y),
                BinaryOp::Mul => b.ins().fmul(x, y),
                BinaryOp::Div => b.ins().fdiv(x, y),
                BinaryOp::Min => {
                    let r = b.ins().fmin(x, y);
                    canonical_nan(b, w, r)
                }
                BinaryOp::Max => {
                    let r = b.ins().fmax(x, y);
                    canonical_nan(b, w, r)
                }
                BinaryOp::Copysign if !w.vector => b.ins().fcopysign(x, y),
                BinaryOp::Copysign => {
                    let sign = fconst(b, w, -0.0);
                    let (sy, mx) = (b.ins().band(y, sign), b.ins().band_not(x, sign));
                    b.ins().bor(sy, mx)
                }
                BinaryOp::Lt => cmp(b, FloatCC::LessThan),
                BinaryOp::Le => cmp(b, FloatCC::LessThanOrEqual),
                BinaryOp::Gt => cmp(b, FloatCC::GreaterThan),
                BinaryOp::Ge => cmp(b, FloatCC::GreaterThanOrEqual),
                BinaryOp::Eq => cmp(b, FloatCC::Equal),
                BinaryOp::Ne => cmp(b, FloatCC::NotEqual),
                BinaryOp::And | BinaryOp::Or => {
                    let (cx, cy) = (nonzero(b, w, x), nonzero(b, w, y));
                    let c = if op == BinaryOp::And { b.ins().band(cx, cy) } else { b.ins().bor(cx, cy) };
                    truth(b, w, c)
                }
                BinaryOp::Pow | BinaryOp::Atan2 => call(b, w, callees.binary[&op], &[x, y]),
            }
        }
        Instr::Fma(..) => fma(b, w, args[0], args[1], args[2]),
        Instr::Select(..) => {
            let c = nonzero(b, w, args[0]);
            choose(b, w, c, args[1], args[2])
        }
    }
}
