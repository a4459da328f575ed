//! Expression text → expressions of a pool: `pool.parse("sin(x)*cos(y) + exp(-x**2)")`.
//!
//! The syntax is Python's (see [`crate::syntax`]); this module gives it alkahest's
//! meaning. Names are symbols, created on first use, except the constants `pi`, `inf`,
//! `nan`, `True` and `False`. Functions are alkahest's (`sin`, `atan2`, `where`, ...)
//! plus NumPy's spellings (`arcsin`, `arctan2`, `absolute`, `minimum`, ...) and a few
//! that are built from them (`sign`, `trunc`, `rint`, `isnan`, ...). `and`/`&`, `or`/`|`
//! and `not`/`~` are logic on conditions, `a // b` is `floor(a / b)` and `a % b` is
//! `a - floor(a / b) * b` (NumPy's and numexpr's sign convention). Nothing is evaluated:
//! the text only ever becomes nodes.

use std::f64::consts::PI;

use crate::error::{Error, Result};
use crate::op::{BinaryOp, UnaryOp};
use crate::pool::{ExprId, ExprPool};
use crate::syntax::{error_at, parse_syntax, Infix, Prefix, Syntax, SyntaxKind};

/// Names that denote constants rather than symbols.
pub const CONSTANTS: &[(&str, f64)] =
    &[("pi", PI), ("inf", f64::INFINITY), ("nan", f64::NAN), ("True", 1.0), ("False", 0.0)];

/// How a function name builds its node.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Function {
    Unary(UnaryOp),
    Binary(BinaryOp),
    Where,
    /// `min`/`max` of two or more arguments.
    Fold(BinaryOp),
    Sign,
    Trunc,
    Rint,
    IsNan,
    IsInf,
    IsFinite,
    Signbit,
    Square,
    Exp2,
}

impl Function {
    fn lookup(name: &str) -> Option<Function> {
        use BinaryOp as B;
        use Function::*;
        use UnaryOp as U;
        let f = match name {
            "arcsin" => Unary(U::Asin),
            "arccos" => Unary(U::Acos),
            "arctan" => Unary(U::Atan),
            "arcsinh" => Unary(U::Asinh),
            "arccosh" => Unary(U::Acosh),
            "arctanh" => Unary(U::Atanh),
            "absolute" | "fabs" => Unary(U::Abs),
            "ceiling" => Unary(U::Ceil),
            "logical_not" => Unary(U::Not),
            "arctan2" => Binary(B::Atan2),
            "minimum" => Binary(B::Min),
            "maximum" => Binary(B::Max),
            "logical_and" => Binary(B::And),
            "logical_or" => Binary(B::Or),
            "min" => Fold(B::Min),
            "max" => Fold(B::Max),
            "where" => Where,
            "sign" => Sign,
            "trunc" => Trunc,
            "rint" => Rint,
            "isnan" => IsNan,
            "isinf" => IsInf,
            "isfinite" => IsFinite,
            "signbit" => Signbit,
            "square" => Square,
            "exp2" => Exp2,
            _ => {
                return UnaryOp::from_name(name).map(Unary).or_else(|| BinaryOp::from_name(name).map(Binary))
            }
        };
        Some(f)
    }

    /// Accepted argument counts: exactly `n`, or at least 2 for folds.
    fn arity_ok(self, n: usize) -> bool {
        match self {
            Function::Binary(_) => n == 2,
            Function::Where => n == 3,
            Function::Fold(_) => n >= 2,
            _ => n == 1,
        }
    }

    fn arity_text(self) -> &'static str {
        match self {
            Function::Binary(_) => "2 arguments",
            Function::Where => "3 arguments",
            Function::Fold(_) => "2 or more arguments",
            _ => "1 argument",
        }
    }
}

/// Every function name the parser knows, sorted (for error messages and docs).
pub fn function_names() -> Vec<&'static str> {
    let extra = [
        "arcsin",
        "arccos",
        "arctan",
        "arcsinh",
        "arccosh",
        "arctanh",
        "absolute",
        "fabs",
        "ceiling",
        "logical_not",
        "arctan2",
        "minimum",
        "maximum",
        "logical_and",
        "logical_or",
        "where",
        "sign",
        "trunc",
        "rint",
        "isnan",
        "isinf",
        "isfinite",
        "signbit",
        "square",
        "exp2",
    ];
    let mut names: Vec<&'static str> = UnaryOp::ALL
        .iter()
        .map(|op| op.name())
        .chain(BinaryOp::ALL.iter().map(|op| op.name()))
        .chain(extra)
        .filter(|n| *n != "neg")
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

struct Builder<'a> {
    pool: &'a ExprPool,
}

impl Builder<'_> {
    fn c(&self, v: f64) -> Result<ExprId> {
        self.pool.constant(v)
    }
    fn u(&self, op: UnaryOp, a: ExprId) -> Result<ExprId> {
        self.pool.unary(op, a)
    }
    fn b(&self, op: BinaryOp, a: ExprId, b: ExprId) -> Result<ExprId> {
        self.pool.binary(op, a, b)
    }

    fn infix(&self, op: Infix, a: ExprId, b: ExprId) -> Result<ExprId> {
        use BinaryOp as B;
        let op = match op {
            Infix::Or | Infix::BitOr => B::Or,
            Infix::And | Infix::BitAnd => B::And,
            Infix::Lt => B::Lt,
            Infix::Le => B::Le,
            Infix::Gt => B::Gt,
            Infix::Ge => B::Ge,
            Infix::Eq => B::Eq,
            Infix::Ne => B::Ne,
            Infix::Add => B::Add,
            Infix::Sub => B::Sub,
            Infix::Mul => B::Mul,
            Infix::Div => B::Div,
            Infix::Pow => B::Pow,
            Infix::FloorDiv => {
                let q = self.b(B::Div, a, b)?;
                return self.u(UnaryOp::Floor, q);
            }
            Infix::Mod => {
                let q = self.b(B::Div, a, b)?;
                let fq = self.u(UnaryOp::Floor, q)?;
                let m = self.b(B::Mul, fq, b)?;
                return self.b(B::Sub, a, m);
            }
        };
        self.b(op, a, b)
    }

    fn call(&self, f: Function, args: &[ExprId]) -> Result<ExprId> {
        use BinaryOp as B;
        use UnaryOp as U;
        let x = args[0];
        match f {
            Function::Unary(op) => self.u(op, x),
            Function::Binary(op) => self.b(op, x, args[1]),
            Function::Where => self.pool.select(x, args[1], args[2]),
            Function::Fold(op) => args[1..].iter().try_fold(x, |acc, &a| self.b(op, acc, a)),
            // NaN stays NaN and both zeros give +0, as in NumPy.
            Function::Sign => {
                let (pos, neg) = (self.b(B::Gt, x, self.c(0.0)?)?, self.b(B::Lt, x, self.c(0.0)?)?);
                let rest = self.pool.select(neg, self.c(-1.0)?, self.u(U::Abs, x)?)?;
                self.pool.select(pos, self.c(1.0)?, rest)
            }
            Function::Trunc => {
                let neg = self.b(B::Lt, x, self.c(0.0)?)?;
                self.pool.select(neg, self.u(U::Ceil, x)?, self.u(U::Floor, x)?)
            }
            // Round half to even: `round` (half away from zero) except on exact halves,
            // where twice the rounded half is even.
            Function::Rint => {
                let frac = self.b(B::Sub, x, self.u(U::Floor, x)?)?;
                let half = self.b(B::Eq, frac, self.c(0.5)?)?;
                let halved = self.u(U::Round, self.b(B::Mul, x, self.c(0.5)?)?)?;
                let even = self.b(B::Mul, halved, self.c(2.0)?)?;
                self.pool.select(half, even, self.u(U::Round, x)?)
            }
            Function::IsNan => self.b(B::Ne, x, x),
            Function::IsInf => self.b(B::Eq, self.u(U::Abs, x)?, self.c(f64::INFINITY)?),
            Function::IsFinite => self.b(B::Lt, self.u(U::Abs, x)?, self.c(f64::INFINITY)?),
            Function::Signbit => self.b(B::Lt, self.b(B::Copysign, self.c(1.0)?, x)?, self.c(0.0)?),
            Function::Square => self.b(B::Mul, x, x),
            Function::Exp2 => self.b(B::Pow, self.c(2.0)?, x),
        }
    }
}

/// `name(args...)`: the node for a function the parser knows (alkahest's names, NumPy's
/// spellings and the functions built from them), with its arity checked.
pub fn apply(pool: &ExprPool, name: &str, args: &[ExprId]) -> Result<ExprId> {
    let Some(f) = Function::lookup(name) else {
        return Err(Error::Expression(format!(
            "unknown function '{name}'; known functions: {}",
            function_names().join(", ")
        )));
    };
    if !f.arity_ok(args.len()) {
        return Err(Error::Arity(format!("{name}() takes {}, got {}", f.arity_text(), args.len())));
    }
    Builder { pool }.call(f, args)
}

/// The value of an integer literal, if a float64 holds it exactly.
pub fn exact_integer(text: &str) -> Option<f64> {
    let v: u128 = text.parse().ok()?;
    let f = v as f64;
    (f as u128 == v).then_some(f)
}

/// Builds the expression `syntax` (parsed from `text`) describes in `pool`.
pub fn build(pool: &ExprPool, text: &str, syntax: &Syntax) -> Result<ExprId> {
    let b = Builder { pool };
    let mut values: Vec<ExprId> = Vec::with_capacity(syntax.nodes.len());
    for node in &syntax.nodes {
        let v = |i: &u32| values[*i as usize];
        let id = match &node.kind {
            SyntaxKind::Number { text: literal, integer: true } => match exact_integer(literal) {
                Some(f) => b.c(f)?,
                None => return Err(error_at(
                    text,
                    node.start,
                    "this integer is not exactly representable as a float64; write it as a float (e.g. 1e30)",
                )),
            },
            SyntaxKind::Number { text: literal, integer: false } => match literal.parse::<f64>() {
                Ok(f) => b.c(f)?,
                Err(_) => return Err(error_at(text, node.start, "invalid number literal")),
            },
            SyntaxKind::Name(name) => match CONSTANTS.iter().find(|(n, _)| n == name) {
                Some(&(_, value)) => b.c(value)?,
                None if name == "None" => return Err(error_at(text, node.start, "None is not a number")),
                None => pool.symbol(name)?,
            },
            SyntaxKind::Prefix(Prefix::Pos, a) => v(a),
            SyntaxKind::Prefix(Prefix::Neg, a) => b.u(UnaryOp::Neg, v(a))?,
            SyntaxKind::Prefix(Prefix::Not | Prefix::Invert, a) => b.u(UnaryOp::Not, v(a))?,
            SyntaxKind::Infix(op, a, c) => b.infix(*op, v(a), v(c))?,
            SyntaxKind::Call(name, args) => {
                let argv: Vec<ExprId> = args.iter().map(v).collect();
                apply(pool, name, &argv).map_err(|e| match e {
                    Error::Expression(m) | Error::Arity(m) => error_at(text, node.start, &m),
                    other => other,
                })?
            }
        };
        values.push(id);
    }
    Ok(values[syntax.root as usize])
}

/// Parses `text` into an expression of `pool`.
///
/// ```
/// use alkahest_core::{parse::parse, print::to_infix, ExprPool};
/// let pool = ExprPool::new();
/// let e = parse(&pool, "sin(x)*cos(y) + exp(-x**2)").unwrap();
/// assert_eq!(to_infix(&pool.read(), e, 100), "sin(x)*cos(y) + exp(-x**2)");
/// ```
pub fn parse(pool: &ExprPool, text: &str) -> Result<ExprId> {
    let syntax = parse_syntax(text)?;
    build(pool, text, &syntax)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::print::to_infix;
    use crate::{lower, Interpreter, Kernel};

    fn eval(text: &str, args: &[(&str, f64)]) -> f64 {
        let pool = ExprPool::new();
        let e = parse(&pool, text).unwrap();
        let vars: Vec<ExprId> = args.iter().map(|(n, _)| pool.symbol(n).unwrap()).collect();
        let f = Interpreter::new(lower(&pool, &[e], &vars).unwrap());
        let mut out = [0.0];
        f.eval(&args.iter().map(|a| a.1).collect::<Vec<_>>(), &mut out);
        out[0]
    }

    #[test]
    fn parsed_text_means_what_python_means() {
        assert_eq!(eval("-x**2", &[("x", 3.0)]), -9.0);
        assert_eq!(eval("2**-x", &[("x", 1.0)]), 0.5);
        assert_eq!(eval("7 // 2 + 7 % 3", &[]), 4.0);
        assert_eq!(eval("-7 % 3", &[]), 2.0);
        assert_eq!(eval("7 % -3", &[]), -2.0);
        assert_eq!(eval("1 < x < 3", &[("x", 2.0)]), 1.0);
        assert_eq!(eval("1 < x < 3", &[("x", 4.0)]), 0.0);
        assert_eq!(eval("not x > 0 or x == -1", &[("x", -1.0)]), 1.0);
        assert_eq!(eval("(x > 0) & ~(x > 2)", &[("x", 1.0)]), 1.0);
        assert_eq!(eval("where(x > 0, sqrt(x), -1)", &[("x", 4.0)]), 2.0);
        assert_eq!(eval("max(x, 2, 5, 3)", &[("x", 4.0)]), 5.0);
        assert_eq!(eval("arctan2(1, x) * 4", &[("x", 1.0)]), PI);
        assert_eq!(eval("pi + True", &[]), PI + 1.0);
        assert!(eval("nan + x", &[("x", 1.0)]).is_nan());
        assert_eq!(eval("1e-3 * 1_000", &[]), 1.0);
    }

    #[test]
    fn derived_functions_match_numpy() {
        for (x, sign, trunc, rint) in [
            (2.5, 1.0, 2.0, 2.0),
            (3.5, 1.0, 3.0, 4.0),
            (-2.5, -1.0, -2.0, -2.0),
            (-0.7, -1.0, -0.0, -1.0),
            (0.0, 0.0, 0.0, 0.0),
        ] {
            assert_eq!(eval("sign(x)", &[("x", x)]), sign, "sign({x})");
            assert_eq!(eval("trunc(x)", &[("x", x)]), trunc, "trunc({x})");
            assert_eq!(eval("rint(x)", &[("x", x)]), rint, "rint({x})");
        }
        assert!(eval("sign(x)", &[("x", f64::NAN)]).is_nan());
        assert!(eval("sign(x)", &[("x", -0.0)]).is_sign_positive());
        assert!(eval("trunc(x)", &[("x", -0.5)]).is_sign_negative());
        assert_eq!(eval("isnan(x) + isinf(x)*2 + isfinite(x)*4", &[("x", f64::NAN)]), 1.0);
        assert_eq!(eval("isnan(x) + isinf(x)*2 + isfinite(x)*4", &[("x", f64::NEG_INFINITY)]), 2.0);
        assert_eq!(eval("signbit(x)", &[("x", -0.0)]), 1.0);
        assert_eq!(eval("signbit(x)", &[("x", 0.0)]), 0.0);
    }

    #[test]
    fn printing_parses_back_to_the_same_node() {
        let pool = ExprPool::new();
        for text in [
            "sin(x)*cos(y) + exp(-x**2)",
            "where((x > 0) & (y <= 2) | ~(x == y), x**-3, atan2(y, x))",
            "min(x, max(y, 2.5e-300)) - copysign(x, -0.0)",
            "(x - y)**(1/3) / -x",
        ] {
            let e = parse(&pool, text).unwrap();
            let printed = to_infix(&pool.read(), e, 10_000);
            assert_eq!(parse(&pool, &printed).unwrap(), e, "{text} printed as {printed}");
        }
    }

    #[test]
    fn errors_name_the_function_or_literal() {
        let pool = ExprPool::new();
        let msg = |t: &str| parse(&pool, t).unwrap_err().to_string();
        assert!(msg("foo(x)").contains("unknown function 'foo'"));
        assert!(msg("sin(x, y)").contains("sin() takes 1 argument, got 2"));
        assert!(msg("max(x)").contains("2 or more"));
        assert!(msg("x + 123456789012345678901").contains("not exactly representable"));
        assert!(msg("x + None").contains("None"));
        assert!(parse(&pool, "2**53 + 9007199254740992").is_ok());
    }
}
