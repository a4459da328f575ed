//! C99 source from a tape, for embedding alkahest's functions in other projects.
//!
//! One `const` statement per tape instruction, so common subexpressions appear once and
//! the evaluation order (hence every rounding) is the tape's. Functions map to their
//! `<math.h>` names; where C99 has no function with alkahest's semantics (NaN-propagating
//! `min`/`max`) a small `static` helper is emitted. Constants print with
//! round-trip precision. Symbol names become safe, unique C identifiers: only
//! `[A-Za-z0-9_]` ever reaches the output, so no name can inject code.
//!
//! Compile the result without FP contraction (`-std=c99`, or `-ffp-contract=off`) to get
//! the interpreter's results bit for bit on arithmetic.

use std::collections::HashSet;
use std::fmt::Write;

use crate::error::{Error, Result};
use crate::op::{BinaryOp, UnaryOp};
use crate::tape::{Instr, Tape};

/// The shape of the emitted function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CForm {
    /// `double f(double x, double y)` for one output; `void f(double x, ..., double *out)`
    /// for several.
    Scalar,
    /// `void f(const double *x, ..., double *out0, ..., long n)`: a loop over n points.
    Bulk,
}

#[derive(Clone, Debug)]
pub struct COptions {
    pub fn_name: String,
    pub form: CForm,
    /// `float` instead of `double` (and the `f`-suffixed functions).
    pub single: bool,
    /// `static inline` functions, for a header.
    pub header: bool,
}

const C_RESERVED: &[&str] = &[
    "auto",
    "break",
    "case",
    "char",
    "const",
    "continue",
    "default",
    "do",
    "double",
    "else",
    "enum",
    "extern",
    "float",
    "for",
    "goto",
    "if",
    "inline",
    "int",
    "long",
    "register",
    "restrict",
    "return",
    "short",
    "signed",
    "sizeof",
    "static",
    "struct",
    "switch",
    "typedef",
    "union",
    "unsigned",
    "void",
    "volatile",
    "while",
    "_Bool",
    "_Complex",
    "_Imaginary",
    "NAN",
    "INFINITY",
    "HUGE_VAL",
    "signbit",
    "isnan",
    "fabs",
    "fabsf",
    "copysign",
    "copysignf",
    "pow",
    "powf",
    "atan2",
    "atan2f",
    "fmin",
    "fmax",
];

/// Turns arbitrary names into distinct C identifiers that collide with nothing reserved.
struct Namer {
    taken: HashSet<String>,
}

impl Namer {
    fn new() -> Namer {
        let mut taken: HashSet<String> = C_RESERVED.iter().map(|s| s.to_string()).collect();
        for &op in UnaryOp::ALL {
            taken.insert(op.name().to_string());
            taken.insert(format!("{}f", op.name()));
        }
        Namer { taken }
    }

    fn claim(&mut self, wanted: &str) -> String {
        let mut base = String::new();
        for c in wanted.chars() {
            if c.is_ascii_alphanumeric() || c == '_' {
                base.push(c);
            } else if c.is_ascii() {
                base.push('_');
            } else {
                let _ = write!(base, "_u{:x}_", c as u32);
            }
        }
        if base.is_empty() || base.starts_with(|c: char| c.is_ascii_digit()) || base.starts_with('_') {
            base.insert(0, 'v');
        }
        let mut name = base.clone();
        let mut k = 1;
        while !self.taken.insert(name.clone()) {
            name = format!("{base}_{k}");
            k += 1;
        }
        name
    }
}

fn literal(v: f64, single: bool) -> String {
    // Rounded to float once, here: a double beyond float's range is an infinity in float.
    let v = if single { f64::from(v as f32) } else { v };
    let text = if v.is_nan() {
        return "NAN".into();
    } else if v.is_infinite() {
        return if v > 0.0 { "INFINITY".into() } else { "-INFINITY".into() };
    } else if single {
        format!("{:?}", v as f32)
    } else {
        format!("{v:?}")
    };
    // `{:?}` gives the shortest round-trip form; C needs a `.` or exponent to see a float.
    let text = if text.contains(['.', 'e']) { text } else { format!("{text}.0") };
    if single {
        format!("{text}f")
    } else {
        text
    }
}

fn c_function(op: UnaryOp) -> Option<&'static str> {
    use UnaryOp::*;
    Some(match op {
        Abs => "fabs",
        Neg | Not => return None,
        _ => op.name(),
    })
}

/// C99 source of `tape` with parameters named after `names` (made into safe, unique C
/// identifiers). Errors if `fn_name` is not usable as it is.
pub fn emit_c(tape: &Tape, names: &[String], options: &COptions) -> Result<String> {
    let single = options.single;
    let (ty, sfx) = if single { ("float", "f") } else { ("double", "") };
    let zero = literal(0.0, single);
    let one = literal(1.0, single);
    let mut namer = Namer::new();
    let fn_name = namer.claim(&options.fn_name);
    if fn_name != options.fn_name {
        return Err(Error::Expression(format!(
            "fn_name {:?} is not a usable C function name (a C identifier that is no keyword \
             or <math.h> name); try {fn_name:?}",
            options.fn_name
        )));
    }
    let params: Vec<String> = names.iter().map(|n| namer.claim(n)).collect();
    let min_name = namer.claim("alkahest_min");
    let max_name = namer.claim("alkahest_max");
    let temps: Vec<String> = (0..tape.instrs.len()).map(|k| namer.claim(&format!("t{k}"))).collect();
    let linkage = if options.header { "static inline " } else { "" };
    let helper = if options.header { "static inline " } else { "static " };

    let mut uses = (false, false);
    for ins in &tape.instrs {
        match ins {
            Instr::Binary(BinaryOp::Min, ..) => uses.0 = true,
            Instr::Binary(BinaryOp::Max, ..) => uses.1 = true,
            _ => {}
        }
    }

    let mut src = String::new();
    let _ = writeln!(src, "/* Generated by alkahest. Compile with -std=c99 (or -ffp-contract=off). */");
    let _ = writeln!(src, "#include <math.h>\n");
    if uses.0 || uses.1 {
        for (used, name, cmp, zero_sign) in
            [(uses.0, &min_name, "<", "signbit(a)"), (uses.1, &max_name, ">", "!signbit(a)")]
        {
            if used {
                let _ = writeln!(
                    src,
                    "/* IEEE 754-2019 {}: NaN if either argument is NaN; orders -0 and +0. */\n\
                     {helper}{ty} {name}({ty} a, {ty} b) {{\n    \
                     if (a {cmp} b) return a;\n    if (b {cmp} a) return b;\n    \
                     if (a != a || b != b) return a + b;\n    return {zero_sign} ? a : b;\n}}\n",
                    if cmp == "<" { "minimum" } else { "maximum" }
                );
            }
        }
    }
    let bulk = options.form == CForm::Bulk;
    let n_out = tape.outputs.len();
    let mut sig: Vec<String> =
        params.iter().map(|p| if bulk { format!("const {ty} *{p}") } else { format!("{ty} {p}") }).collect();
    let out_names: Vec<String> = if bulk {
        (0..n_out).map(|j| namer.claim(&format!("out{j}"))).collect()
    } else {
        vec![namer.claim("out")]
    };
    let n_name = namer.claim("count");
    let i_name = namer.claim("idx");
    let returns_value = !bulk && n_out == 1;
    if bulk {
        sig.extend(out_names.iter().map(|o| format!("{ty} *{o}")));
        sig.push(format!("long {n_name}"));
    } else if n_out > 1 {
        sig.push(format!("{ty} *{}", out_names[0]));
    }
    if sig.is_empty() {
        sig.push("void".into());
    }
    let ret = if returns_value { ty } else { "void" };
    let _ = writeln!(src, "{linkage}{ret} {fn_name}({}) {{", sig.join(", "));
    for (i, p) in params.iter().enumerate() {
        if tape.last_use[i] as usize == i {
            let _ = writeln!(src, "    (void){p}; /* unused */");
        }
    }
    let indent = if bulk { "        " } else { "    " };
    if bulk {
        let _ =
            writeln!(src, "    long {i_name};\n    for ({i_name} = 0; {i_name} < {n_name}; ++{i_name}) {{");
    }
    let value = |k: u32| -> String {
        match tape.instrs[k as usize] {
            Instr::Input(i) if bulk => format!("{}[{i_name}]", params[i as usize]),
            Instr::Input(i) => params[i as usize].clone(),
            Instr::Const(c) => literal(tape.consts[c as usize], single),
            _ => temps[k as usize].clone(),
        }
    };
    let truth = |cond: String| format!("({cond} ? {one} : {zero})");
    for (k, ins) in tape.instrs.iter().enumerate() {
        let expr = match *ins {
            Instr::Input(_) | Instr::Const(_) => continue,
            Instr::Unary(op, a) => {
                let a = value(a);
                match op {
                    UnaryOp::Neg => format!("-{a}"),
                    UnaryOp::Not => truth(format!("{a} == {zero}")),
                    _ => format!("{}{sfx}({a})", c_function(op).unwrap_or("")),
                }
            }
            Instr::Binary(op, a, b) => {
                let (a, b) = (value(a), value(b));
                use BinaryOp::*;
                match op {
                    Add => format!("{a} + {b}"),
                    Sub => format!("{a} - {b}"),
                    Mul => format!("{a} * {b}"),
                    Div => format!("{a} / {b}"),
                    Pow => format!("pow{sfx}({a}, {b})"),
                    Atan2 => format!("atan2{sfx}({a}, {b})"),
                    Copysign => format!("copysign{sfx}({a}, {b})"),
                    Min => format!("{min_name}({a}, {b})"),
                    Max => format!("{max_name}({a}, {b})"),
                    Lt => truth(format!("{a} < {b}")),
                    Le => truth(format!("{a} <= {b}")),
                    Gt => truth(format!("{a} > {b}")),
                    Ge => truth(format!("{a} >= {b}")),
                    Eq => truth(format!("{a} == {b}")),
                    Ne => truth(format!("{a} != {b}")),
                    And => truth(format!("{a} != {zero} && {b} != {zero}")),
                    Or => truth(format!("{a} != {zero} || {b} != {zero}")),
                }
            }
            Instr::Select(c, a, b) => format!("({} != {zero} ? {} : {})", value(c), value(a), value(b)),
            Instr::Fma(a, b, c) => format!("fma{sfx}({}, {}, {})", value(a), value(b), value(c)),
        };
        let _ = writeln!(src, "{indent}const {ty} {} = {expr};", temps[k]);
    }
    for (j, &o) in tape.outputs.iter().enumerate() {
        if bulk {
            let _ = writeln!(src, "{indent}{}[{i_name}] = {};", out_names[j], value(o));
        } else if returns_value {
            let _ = writeln!(src, "{indent}return {};", value(o));
        } else {
            let _ = writeln!(src, "{indent}{}[{j}] = {};", out_names[0], value(o));
        }
    }
    if bulk {
        let _ = writeln!(src, "    }}");
    }
    let _ = writeln!(src, "}}");
    Ok(src)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::ExprPool;
    use crate::tape::lower;

    #[test]
    fn names_are_sanitised_and_unique() {
        let mut n = Namer::new();
        assert_eq!(n.claim("x"), "x");
        assert_eq!(n.claim("x"), "x_1");
        assert_eq!(n.claim("int"), "int_1");
        assert_eq!(n.claim("sin"), "sin_1");
        assert_eq!(n.claim("x; system(\"rm -rf /\")"), "x__system__rm__rf____");
        assert_eq!(n.claim("α"), "v_u3b1_");
        assert_eq!(n.claim("2x"), "v2x");
    }

    #[test]
    fn literals_round_trip() {
        assert_eq!(literal(0.1, false), "0.1");
        assert_eq!(literal(3.0, false), "3.0");
        assert_eq!(literal(-0.0, false), "-0.0");
        assert_eq!(literal(1e300, false), "1e300");
        assert_eq!(literal(f64::NEG_INFINITY, false), "-INFINITY");
        assert_eq!(literal(0.5, true), "0.5f");
        // Rounded to float once: the shortest float spelling, and overflow is infinite.
        assert_eq!(literal(0.1, true), "0.1f");
        assert_eq!(literal(1e39, true), "INFINITY");
        assert_eq!(literal(1e-50, true), "0.0f");
    }

    #[test]
    fn shared_subexpressions_appear_once() {
        let p = ExprPool::new();
        let x = p.symbol("x").unwrap();
        let s = p.unary(UnaryOp::Sin, x).unwrap();
        let e = p.binary(BinaryOp::Mul, s, s).unwrap();
        let t = lower(&p, &[e], &[x]).unwrap();
        let opts = COptions { fn_name: "f".into(), form: CForm::Scalar, single: false, header: false };
        let c = emit_c(&t, &["x".into()], &opts).unwrap();
        assert_eq!(c.matches("sin(").count(), 1, "{c}");
        assert!(c.contains("double f(double x)"), "{c}");
    }
}
