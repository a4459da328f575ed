//! Textual MLIR in the StableHLO dialect from a tape (input for XLA).
//!
//! One `func.func` over `tensor<f64>` (or a static shape), one operation per tape
//! instruction, in MLIR's generic form (stable across dialect versions). Functions
//! StableHLO lacks use the CHLO dialect XLA accepts beside it (`chlo.erf`, `chlo.asin`,
//! ...); `log2`/`log10` divide `log` by a constant; `copysign` is bit arithmetic;
//! conditions are `compare` + `convert` to 0.0/1.0. StableHLO has no fused multiply-add,
//! so the tape's `fma` is a multiply and an add: integer powers beyond the cube (which
//! the other tiers compensate with `fma`, to ~0.5 ulp) are then the plain chain of
//! multiplications, ~n/2 ulp off. Constants are exact (hexadecimal literals).

use std::fmt::Write;

use crate::op::{BinaryOp, UnaryOp};
use crate::tape::{Instr, Tape};

struct Emitter {
    out: String,
    ty: String,
    cond_ty: String,
    int_ty: String,
    next: usize,
}

impl Emitter {
    fn fresh(&mut self) -> String {
        self.next += 1;
        format!("%t{}", self.next)
    }

    /// `%r = "name"(args) {attrs} : (arg types) -> result type`.
    fn op(&mut self, name: &str, args: &[&str], attrs: &str, arg_ty: &str, result_ty: &str) -> String {
        let r = self.fresh();
        let tys = vec![arg_ty; args.len()].join(", ");
        let attrs = if attrs.is_empty() { String::new() } else { format!(" {{{attrs}}}") };
        let _ =
            writeln!(self.out, "    {r} = \"{name}\"({}){attrs} : ({tys}) -> {result_ty}", args.join(", "));
        r
    }

    fn float(&mut self, name: &str, args: &[&str]) -> String {
        let ty = self.ty.clone();
        self.op(name, args, "", &ty, &ty)
    }

    fn constant(&mut self, v: f64) -> String {
        let ty = self.ty.clone();
        let r = self.fresh();
        let _ = writeln!(
            self.out,
            "    {r} = \"stablehlo.constant\"() {{value = dense<0x{:016X}> : {ty}}} : () -> {ty}",
            v.to_bits()
        );
        r
    }

    fn int_constant(&mut self, v: i64) -> String {
        let ty = self.int_ty.clone();
        let r = self.fresh();
        let _ = writeln!(
            self.out,
            "    {r} = \"stablehlo.constant\"() {{value = dense<{v}> : {ty}}} : () -> {ty}"
        );
        r
    }

    fn compare(&mut self, dir: &str, a: &str, b: &str) -> String {
        let (ty, cty) = (self.ty.clone(), self.cond_ty.clone());
        let attrs = format!(
            "comparison_direction = #stablehlo<comparison_direction {dir}>, \
             compare_type = #stablehlo<comparison_type FLOAT>"
        );
        self.op("stablehlo.compare", &[a, b], &attrs, &ty, &cty)
    }

    fn truth(&mut self, cond: &str) -> String {
        let (ty, cty) = (self.ty.clone(), self.cond_ty.clone());
        self.op("stablehlo.convert", &[cond], "", &cty, &ty)
    }

    fn nonzero(&mut self, x: &str) -> String {
        let zero = self.constant(0.0);
        self.compare("NE", x, &zero)
    }

    fn logical(&mut self, name: &str, a: &str, b: &str) -> String {
        let cty = self.cond_ty.clone();
        self.op(name, &[a, b], "", &cty, &cty)
    }

    fn copysign(&mut self, a: &str, b: &str) -> String {
        let (ty, ity) = (self.ty.clone(), self.int_ty.clone());
        let ab = self.op("stablehlo.bitcast_convert", &[a], "", &ty, &ity);
        let bb = self.op("stablehlo.bitcast_convert", &[b], "", &ty, &ity);
        let sign = self.int_constant(i64::MIN);
        let magnitude = self.int_constant(i64::MAX);
        let s = self.op("stablehlo.and", &[&bb, &sign], "", &ity, &ity);
        let m = self.op("stablehlo.and", &[&ab, &magnitude], "", &ity, &ity);
        let r = self.op("stablehlo.or", &[&s, &m], "", &ity, &ity);
        self.op("stablehlo.bitcast_convert", &[&r], "", &ity, &ty)
    }
}

fn unary_name(op: UnaryOp) -> Option<&'static str> {
    use UnaryOp::*;
    Some(match op {
        Neg => "stablehlo.negate",
        Sqrt => "stablehlo.sqrt",
        Cbrt => "stablehlo.cbrt",
        Exp => "stablehlo.exponential",
        Expm1 => "stablehlo.exponential_minus_one",
        Log => "stablehlo.log",
        Log1p => "stablehlo.log_plus_one",
        Sin => "stablehlo.sine",
        Cos => "stablehlo.cosine",
        Tan => "stablehlo.tan",
        Tanh => "stablehlo.tanh",
        Abs => "stablehlo.abs",
        Floor => "stablehlo.floor",
        Ceil => "stablehlo.ceil",
        Round => "stablehlo.round_nearest_afz",
        Asin => "chlo.asin",
        Acos => "chlo.acos",
        Atan => "chlo.atan",
        Sinh => "chlo.sinh",
        Cosh => "chlo.cosh",
        Asinh => "chlo.asinh",
        Acosh => "chlo.acosh",
        Atanh => "chlo.atanh",
        Erf => "chlo.erf",
        Erfc => "chlo.erfc",
        Log2 | Log10 | Not => return None,
    })
}

/// A StableHLO module whose function `fn_name` maps the tape's inputs to its outputs,
/// elementwise over tensors of `shape` (empty: scalars).
pub fn to_stablehlo(tape: &Tape, fn_name: &str, shape: &[usize]) -> String {
    let dims: String = shape.iter().map(|d| format!("{d}x")).collect();
    let mut e = Emitter {
        out: String::new(),
        ty: format!("tensor<{dims}f64>"),
        cond_ty: format!("tensor<{dims}i1>"),
        int_ty: format!("tensor<{dims}i64>"),
        next: 0,
    };
    let mut vals: Vec<String> = Vec::with_capacity(tape.instrs.len());
    for ins in &tape.instrs {
        let v = |k: u32, vals: &[String]| vals[k as usize].clone();
        let r = match *ins {
            Instr::Input(i) => format!("%arg{i}"),
            Instr::Const(c) => e.constant(tape.consts[c as usize]),
            Instr::Unary(op, a) => {
                let a = v(a, &vals);
                match (op, unary_name(op)) {
                    (_, Some(name)) => e.float(name, &[&a]),
                    (UnaryOp::Not, _) => {
                        let zero = e.constant(0.0);
                        let c = e.compare("EQ", &a, &zero);
                        e.truth(&c)
                    }
                    _ => {
                        let base: f64 = if op == UnaryOp::Log2 { 2.0 } else { 10.0 };
                        let l = e.float("stablehlo.log", &[&a]);
                        let d = e.constant(base.ln());
                        e.float("stablehlo.divide", &[&l, &d])
                    }
                }
            }
            Instr::Binary(op, a, b) => {
                let (a, b) = (v(a, &vals), v(b, &vals));
                use BinaryOp::*;
                match op {
                    Add => e.float("stablehlo.add", &[&a, &b]),
                    Sub => e.float("stablehlo.subtract", &[&a, &b]),
                    Mul => e.float("stablehlo.multiply", &[&a, &b]),
                    Div => e.float("stablehlo.divide", &[&a, &b]),
                    Pow => e.float("stablehlo.power", &[&a, &b]),
                    Atan2 => e.float("stablehlo.atan2", &[&a, &b]),
                    Min => e.float("stablehlo.minimum", &[&a, &b]),
                    Max => e.float("stablehlo.maximum", &[&a, &b]),
                    Copysign => e.copysign(&a, &b),
                    Lt | Le | Gt | Ge | Eq | Ne => {
                        let dir = ["LT", "LE", "GT", "GE", "EQ", "NE"][op as usize - Lt as usize];
                        let c = e.compare(dir, &a, &b);
                        e.truth(&c)
                    }
                    And | Or => {
                        let (ca, cb) = (e.nonzero(&a), e.nonzero(&b));
                        let c = e.logical(if op == And { "stablehlo.and" } else { "stablehlo.or" }, &ca, &cb);
                        e.truth(&c)
                    }
                }
            }
            // StableHLO has no fused multiply-add: a multiply and an add (XLA may fuse
            // them). Integer powers beyond the cube, which use fma to cancel rounding
            // errors, are then the plain chain of multiplications (see the module docs).
            Instr::Fma(a, b, c) => {
                let p = e.float("stablehlo.multiply", &[&v(a, &vals), &v(b, &vals)]);
                e.float("stablehlo.add", &[&p, &v(c, &vals)])
            }
            Instr::Select(c, a, b) => {
                let p = e.nonzero(&v(c, &vals));
                let (ty, cty) = (e.ty.clone(), e.cond_ty.clone());
                let r = e.fresh();
                let _ = writeln!(
                    e.out,
                    "    {r} = \"stablehlo.select\"({p}, {}, {}) : ({cty}, {ty}, {ty}) -> {ty}",
                    v(a, &vals),
                    v(b, &vals)
                );
                r
            }
        };
        vals.push(r);
    }
    let ty = e.ty.clone();
    let args: Vec<String> = (0..tape.n_inputs).map(|i| format!("%arg{i}: {ty}")).collect();
    let results: Vec<String> = tape.outputs.iter().map(|&o| vals[o as usize].clone()).collect();
    let result_tys = vec![ty.as_str(); results.len()].join(", ");
    let mut module = format!(
        "module @alkahest {{\n  func.func public @{fn_name}({}) -> ({result_tys}) {{\n",
        args.join(", ")
    );
    module.push_str(&e.out);
    let _ = writeln!(module, "    \"func.return\"({}) : ({result_tys}) -> ()\n  }}\n}}", results.join(", "));
    module
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::ExprPool;
    use crate::tape::lower;

    #[test]
    fn a_small_module() {
        let p = ExprPool::new();
        let x = p.symbol("x").unwrap();
        let y = p.symbol("y").unwrap();
        let s = p.unary(UnaryOp::Erf, x).unwrap();
        let e = p.binary(BinaryOp::Lt, s, y).unwrap();
        let t = lower(&p, &[e, s], &[x, y]).unwrap();
        let m = to_stablehlo(&t, "main", &[]);
        assert!(m.contains("\"chlo.erf\"(%arg0)"), "{m}");
        assert!(m.contains("comparison_direction LT"), "{m}");
        assert!(m.contains("-> (tensor<f64>, tensor<f64>)"), "{m}");
        let m = to_stablehlo(&t, "f", &[3, 4]);
        assert!(m.contains("tensor<3x4xf64>") && m.contains("tensor<3x4xi1>"), "{m}");
    }
}
