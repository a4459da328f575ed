//! One tape instruction as Cranelift IR, shared by the scalar and bulk entries.
//!
//! Arithmetic, `sqrt`, `abs`, `floor`, `ceil`, `min`/`max` (WebAssembly rules = IEEE
//! 754-2019 minimum/maximum) and `copysign` are native instructions; every other
//! function calls the very symbol the interpreter calls (see `alkahest_core::ffi`).
//! Conditions become `fcmp` + `select` on 1.0/0.0: branch-free.

use std::collections::HashMap;

use alkahest_core::{BinaryOp, Instr, UnaryOp};
use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::{types, FuncRef, InstBuilder, Value};
use cranelift_frontend::FunctionBuilder;

/// The functions a body may call, imported into the function being built.
#[derive(Default)]
pub struct Callees {
    pub unary: HashMap<UnaryOp, FuncRef>,
    pub binary: HashMap<BinaryOp, FuncRef>,
    pub powi: Option<FuncRef>,
}

fn call(b: &mut FunctionBuilder<'_>, f: FuncRef, args: &[Value]) -> Value {
    let inst = b.ins().call(f, args);
    b.inst_results(inst)[0]
}

fn truth(b: &mut FunctionBuilder<'_>, cond: Value) -> Value {
    let one = b.ins().f64const(1.0);
    let zero = b.ins().f64const(0.0);
    b.ins().select(cond, one, zero)
}

fn nonzero(b: &mut FunctionBuilder<'_>, x: Value) -> Value {
    let zero = b.ins().f64const(0.0);
    // NotEqual is "unordered or not equal": NaN counts as true, as in C.
    b.ins().fcmp(FloatCC::NotEqual, x, zero)
}

/// Emits `ins` applied to the operand values `args` (in `Instr::operands` order).
pub fn emit(b: &mut FunctionBuilder<'_>, callees: &Callees, ins: &Instr, args: &[Value]) -> Value {
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
                    let zero = b.ins().f64const(0.0);
                    let c = b.ins().fcmp(FloatCC::Equal, x, zero);
                    truth(b, c)
                }
                _ => call(b, callees.unary[&op], &[x]),
            }
        }
        Instr::Binary(op, ..) => {
            let (x, y) = (args[0], args[1]);
            let cmp = |b: &mut FunctionBuilder<'_>, cc| {
                let c = b.ins().fcmp(cc, x, y);
                truth(b, c)
            };
            match op {
                BinaryOp::Add => b.ins().fadd(x, y),
                BinaryOp::Sub => b.ins().fsub(x, y),
                BinaryOp::Mul => b.ins().fmul(x, y),
                BinaryOp::Div => b.ins().fdiv(x, y),
                BinaryOp::Min => b.ins().fmin(x, y),
                BinaryOp::Max => b.ins().fmax(x, y),
                BinaryOp::Copysign => b.ins().fcopysign(x, y),
                BinaryOp::Lt => cmp(b, FloatCC::LessThan),
                BinaryOp::Le => cmp(b, FloatCC::LessThanOrEqual),
                BinaryOp::Gt => cmp(b, FloatCC::GreaterThan),
                BinaryOp::Ge => cmp(b, FloatCC::GreaterThanOrEqual),
                BinaryOp::Eq => cmp(b, FloatCC::Equal),
                BinaryOp::Ne => cmp(b, FloatCC::NotEqual),
                BinaryOp::And | BinaryOp::Or => {
                    let (cx, cy) = (nonzero(b, x), nonzero(b, y));
                    let c = if op == BinaryOp::And { b.ins().band(cx, cy) } else { b.ins().bor(cx, cy) };
                    truth(b, c)
                }
                BinaryOp::Pow | BinaryOp::Atan2 => call(b, callees.binary[&op], &[x, y]),
            }
        }
        Instr::PowI(_, n) => {
            let n = b.ins().iconst(types::I32, i64::from(n));
            let f = callees.powi.expect("powi is declared when the tape uses it");
            call(b, f, &[args[0], n])
        }
        Instr::Select(..) => {
            let c = nonzero(b, args[0]);
            b.ins().select(c, args[1], args[2])
        }
    }
}
