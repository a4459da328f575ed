//! The operation set shared by the expression DAG and the tape, with the scalar
//! semantics every tier must reproduce.
//!
//! Transcendental functions call the C library's `libm` symbols directly (not Rust's
//! intrinsics) so that native tiers calling the same symbols give bit-identical results.
//! Conditions are doubles: comparisons yield 1.0 or 0.0, and any non-zero value
//! (NaN included, as in C) counts as true.

use std::fmt;

pub(crate) mod libm {
    extern "C" {
        pub fn cbrt(x: f64) -> f64;
        pub fn exp(x: f64) -> f64;
        pub fn expm1(x: f64) -> f64;
        pub fn log(x: f64) -> f64;
        pub fn log1p(x: f64) -> f64;
        pub fn log2(x: f64) -> f64;
        pub fn log10(x: f64) -> f64;
        pub fn sin(x: f64) -> f64;
        pub fn cos(x: f64) -> f64;
        pub fn tan(x: f64) -> f64;
        pub fn asin(x: f64) -> f64;
        pub fn acos(x: f64) -> f64;
        pub fn atan(x: f64) -> f64;
        pub fn sinh(x: f64) -> f64;
        pub fn cosh(x: f64) -> f64;
        pub fn tanh(x: f64) -> f64;
        pub fn asinh(x: f64) -> f64;
        pub fn acosh(x: f64) -> f64;
        pub fn atanh(x: f64) -> f64;
        pub fn erf(x: f64) -> f64;
        pub fn erfc(x: f64) -> f64;
        pub fn atan2(y: f64, x: f64) -> f64;
        pub fn pow(x: f64, y: f64) -> f64;
    }
}

macro_rules! op_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident => $text:literal : $class:ident),* $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($variant),* }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// The lower-case name used in Python, in the tape listing and in printing.
            pub fn name(self) -> &'static str {
                match self { $($name::$variant => $text),* }
            }

            /// Inverse of [`Self::name`].
            pub fn from_name(name: &str) -> Option<Self> {
                match name { $($text => Some($name::$variant),)* _ => None }
            }

            /// How backends compute the operation.
            pub fn class(self) -> OpClass {
                match self { $($name::$variant => OpClass::$class),* }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.name()) }
        }
    };
}

/// How an operation is computed, which decides how every backend emits it. Each
/// operation's class is declared once, with the operation (below); [`table`] lists them
/// for the backends that are not Rust (LLVM, NVPTX) and for the tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpClass {
    /// IEEE 754 arithmetic, correctly rounded: `neg`, `add`, `sub`, `mul`, `div`, `fma`.
    Arithmetic,
    /// Exact operations that need no library function on a CPU with SSE4.1: `sqrt`,
    /// `abs`, `floor`, `ceil`, `round`, `min`, `max`, `copysign`.
    Exact,
    /// Comparisons, giving 1.0 or 0.0.
    Compare,
    /// Logic on conditions (non-zero is true), giving 1.0 or 0.0: `not`, `and`, `or`.
    Logic,
    /// `where(cond, a, b)`.
    Select,
    /// A call of the C library function of the same name (`sin`, `pow`, ...).
    Call,
}

impl OpClass {
    /// The lower-case name, as the Python op table spells it.
    pub fn name(self) -> &'static str {
        match self {
            OpClass::Arithmetic => "arithmetic",
            OpClass::Exact => "exact",
            OpClass::Compare => "compare",
            OpClass::Logic => "logic",
            OpClass::Select => "select",
            OpClass::Call => "call",
        }
    }
}

/// One row of the op table: what every backend needs to know about an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpInfo {
    pub name: &'static str,
    pub arity: usize,
    pub class: OpClass,
}

impl OpInfo {
    /// The C library function computing it (`sin` → `sin`), for calls.
    pub fn libm(&self) -> Option<&'static str> {
        (self.class == OpClass::Call).then_some(self.name)
    }

    /// Whether glibc's libmvec may have a vector variant (`_ZGVeN8v_<name>` and its
    /// siblings): the one-argument calls. Which of them this machine has is known at run
    /// time ([`crate::vecmath`]).
    pub fn vector(&self) -> bool {
        self.class == OpClass::Call && self.arity == 1
    }

    /// The result is a condition (1.0 or 0.0).
    pub fn is_condition(&self) -> bool {
        matches!(self.class, OpClass::Compare | OpClass::Logic)
    }
}

/// Every computing operation of the tape, in the order of [`crate::tape::op_kinds`]:
/// the unary operations, the binary operations, `select`, `fma`.
pub fn table() -> Vec<OpInfo> {
    let unary = UnaryOp::ALL.iter().map(|&op| op.info());
    let binary = BinaryOp::ALL.iter().map(|&op| op.info());
    let ternary = [
        OpInfo { name: "select", arity: 3, class: OpClass::Select },
        OpInfo { name: "fma", arity: 3, class: OpClass::Arithmetic },
    ];
    unary.chain(binary).chain(ternary).collect()
}

op_enum! {
    /// Operations of one argument.
    UnaryOp {
        Neg => "neg": Arithmetic, Sqrt => "sqrt": Exact, Cbrt => "cbrt": Call,
        Exp => "exp": Call, Expm1 => "expm1": Call, Log => "log": Call,
        Log1p => "log1p": Call, Log2 => "log2": Call, Log10 => "log10": Call,
        Sin => "sin": Call, Cos => "cos": Call, Tan => "tan": Call, Asin => "asin": Call,
        Acos => "acos": Call, Atan => "atan": Call, Sinh => "sinh": Call, Cosh => "cosh": Call,
        Tanh => "tanh": Call, Asinh => "asinh": Call, Acosh => "acosh": Call,
        Atanh => "atanh": Call, Erf => "erf": Call, Erfc => "erfc": Call, Abs => "abs": Exact,
        Floor => "floor": Exact, Ceil => "ceil": Exact, Round => "round": Exact,
        Not => "not": Logic,
    }
}

op_enum! {
    /// Operations of two arguments.
    BinaryOp {
        Add => "add": Arithmetic, Sub => "sub": Arithmetic, Mul => "mul": Arithmetic,
        Div => "div": Arithmetic, Pow => "pow": Call, Atan2 => "atan2": Call,
        Min => "min": Exact, Max => "max": Exact, Copysign => "copysign": Exact,
        Lt => "lt": Compare, Le => "le": Compare, Gt => "gt": Compare, Ge => "ge": Compare,
        Eq => "eq": Compare, Ne => "ne": Compare, And => "and": Logic, Or => "or": Logic,
    }
}

impl UnaryOp {
    /// Its row of the op table.
    pub fn info(self) -> OpInfo {
        OpInfo { name: self.name(), arity: 1, class: self.class() }
    }
}

impl BinaryOp {
    /// Its row of the op table.
    pub fn info(self) -> OpInfo {
        OpInfo { name: self.name(), arity: 2, class: self.class() }
    }
}

#[inline(always)]
fn truth(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

/// IEEE 754-2019 `minimum`: NaN if either argument is NaN, and -0 below +0.
#[inline(always)]
pub fn minimum(a: f64, b: f64) -> f64 {
    crate::element::minimum(a, b)
}

/// IEEE 754-2019 `maximum`: NaN if either argument is NaN, and +0 above -0.
#[inline(always)]
pub fn maximum(a: f64, b: f64) -> f64 {
    crate::element::maximum(a, b)
}

impl UnaryOp {
    /// The value of the operation at one point.
    #[inline(always)]
    pub fn eval(self, x: f64) -> f64 {
        use UnaryOp::*;
        // SAFETY: the libm functions are pure and defined for every double.
        unsafe {
            match self {
                Neg => -x,
                Sqrt => x.sqrt(),
                Cbrt => libm::cbrt(x),
                Exp => libm::exp(x),
                Expm1 => libm::expm1(x),
                Log => libm::log(x),
                Log1p => libm::log1p(x),
                Log2 => libm::log2(x),
                Log10 => libm::log10(x),
                Sin => libm::sin(x),
                Cos => libm::cos(x),
                Tan => libm::tan(x),
                Asin => libm::asin(x),
                Acos => libm::acos(x),
                Atan => libm::atan(x),
                Sinh => libm::sinh(x),
                Cosh => libm::cosh(x),
                Tanh => libm::tanh(x),
                Asinh => libm::asinh(x),
                Acosh => libm::acosh(x),
                Atanh => libm::atanh(x),
                Erf => libm::erf(x),
                Erfc => libm::erfc(x),
                Abs => x.abs(),
                Floor => x.floor(),
                Ceil => x.ceil(),
                // C's round(): halfway cases away from zero.
                Round => x.round(),
                Not => truth(x == 0.0),
            }
        }
    }

    /// True for operations whose result is a condition (1.0 or 0.0).
    pub fn is_condition(self) -> bool {
        self.info().is_condition()
    }
}

impl BinaryOp {
    /// The value of the operation at one point.
    #[inline(always)]
    pub fn eval(self, a: f64, b: f64) -> f64 {
        use BinaryOp::*;
        match self {
            Add => a + b,
            Sub => a - b,
            Mul => a * b,
            Div => a / b,
            // SAFETY: pure libm functions, defined for every pair of doubles.
            Pow => unsafe { libm::pow(a, b) },
            Atan2 => unsafe { libm::atan2(a, b) },
            Min => minimum(a, b),
            Max => maximum(a, b),
            Copysign => a.copysign(b),
            Lt => truth(a < b),
            Le => truth(a <= b),
            Gt => truth(a > b),
            Ge => truth(a >= b),
            Eq => truth(a == b),
            Ne => truth(a != b),
            And => truth(a != 0.0 && b != 0.0),
            Or => truth(a != 0.0 || b != 0.0),
        }
    }

    /// `op(a, b) == op(b, a)` for every pair of doubles, so arguments may be sorted.
    pub fn is_commutative(self) -> bool {
        use BinaryOp::*;
        matches!(self, Add | Mul | Min | Max | Eq | Ne | And | Or)
    }

    /// True for comparisons and logical operations (results are 1.0 or 0.0).
    pub fn is_condition(self) -> bool {
        self.info().is_condition()
    }
}

/// `where(cond, a, b)`: `a` where `cond` is non-zero (NaN counts as true), else `b`.
#[inline(always)]
pub fn select(cond: f64, a: f64, b: f64) -> f64 {
    if cond != 0.0 {
        a
    } else {
        b
    }
}

/// `a * b + c` rounded once (the tape's `fma`): hardware FMA where the CPU has it, else
/// the C library's exact software `fma`.
#[inline(always)]
pub fn fma(a: f64, b: f64, c: f64) -> f64 {
    a.mul_add(b, c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for &op in UnaryOp::ALL {
            assert_eq!(UnaryOp::from_name(op.name()), Some(op));
        }
        for &op in BinaryOp::ALL {
            assert_eq!(BinaryOp::from_name(op.name()), Some(op));
        }
        assert_eq!(UnaryOp::from_name("nope"), None);
    }

    #[test]
    fn the_table_lists_every_operation_once_with_its_arity() {
        let table = table();
        let names: std::collections::HashSet<_> = table.iter().map(|i| i.name).collect();
        assert_eq!(names.len(), table.len(), "names are unique");
        assert_eq!(table.len(), UnaryOp::ALL.len() + BinaryOp::ALL.len() + 2);
        for info in &table {
            if let Some(op) = UnaryOp::from_name(info.name) {
                assert_eq!((info.arity, info.class), (1, op.class()));
            } else if let Some(op) = BinaryOp::from_name(info.name) {
                assert_eq!((info.arity, info.class), (2, op.class()));
            } else {
                assert_eq!(info.arity, 3, "{}", info.name);
            }
        }
    }

    #[test]
    fn classes_agree_with_the_semantics() {
        // Conditions give 0.0 or 1.0 wherever they are evaluated; the others do not at 0.3.
        let points = [-2.0, -0.0, 0.0, 0.3, 1.0, f64::NAN, f64::INFINITY];
        for &op in UnaryOp::ALL {
            let all_truth = points.iter().all(|&x| matches!(op.eval(x), v if v == 0.0 || v == 1.0));
            assert_eq!(all_truth, op.is_condition(), "{op}");
            assert_eq!(op.info().libm().is_some(), op.class() == OpClass::Call, "{op}");
        }
        for &op in BinaryOp::ALL {
            let all_truth = points
                .iter()
                .all(|&a| points.iter().all(|&b| matches!(op.eval(a, b), v if v == 0.0 || v == 1.0)));
            assert_eq!(all_truth, op.is_condition(), "{op}");
        }
    }

    #[test]
    fn minimum_and_maximum_follow_ieee_2019() {
        assert!(minimum(f64::NAN, 1.0).is_nan());
        assert!(maximum(1.0, f64::NAN).is_nan());
        assert!(minimum(0.0, -0.0).is_sign_negative());
        assert!(minimum(-0.0, 0.0).is_sign_negative());
        assert!(maximum(-0.0, 0.0).is_sign_positive());
        assert_eq!(minimum(2.0, -3.0), -3.0);
        assert_eq!(maximum(2.0, -3.0), 2.0);
    }

    #[test]
    fn conditions_are_zero_or_one_and_nan_is_true() {
        assert_eq!(BinaryOp::Lt.eval(1.0, 2.0), 1.0);
        assert_eq!(BinaryOp::Lt.eval(f64::NAN, 2.0), 0.0);
        assert_eq!(BinaryOp::Ne.eval(f64::NAN, f64::NAN), 1.0);
        assert_eq!(BinaryOp::And.eval(f64::NAN, 1.0), 1.0);
        assert_eq!(UnaryOp::Not.eval(f64::NAN), 0.0);
        assert_eq!(select(f64::NAN, 1.0, 2.0), 1.0);
        assert_eq!(select(0.0, 1.0, 2.0), 2.0);
    }

    #[test]
    fn round_is_half_away_from_zero() {
        assert_eq!(UnaryOp::Round.eval(2.5), 3.0);
        assert_eq!(UnaryOp::Round.eval(-2.5), -3.0);
    }

    #[test]
    fn libm_functions_are_wired_to_the_right_symbols() {
        let cases: &[(UnaryOp, f64, f64)] = &[
            (UnaryOp::Sin, 0.5, 0.479_425_538_604_203),
            (UnaryOp::Cos, 0.5, 0.877_582_561_890_372_8),
            (UnaryOp::Tan, 0.5, 0.546_302_489_843_790_5),
            (UnaryOp::Exp, 0.5, 1.648_721_270_700_128_2),
            (UnaryOp::Expm1, 0.5, 0.648_721_270_700_128_2),
            (UnaryOp::Log, 0.5, -std::f64::consts::LN_2),
            (UnaryOp::Log1p, 0.5, 0.405_465_108_108_164_4),
            (UnaryOp::Log2, 0.5, -1.0),
            (UnaryOp::Log10, 0.5, -std::f64::consts::LOG10_2),
            (UnaryOp::Asin, 0.5, std::f64::consts::FRAC_PI_6),
            (UnaryOp::Acos, 0.5, 1.047_197_551_196_597_6),
            (UnaryOp::Atan, 0.5, 0.463_647_609_000_806_1),
            (UnaryOp::Sinh, 0.5, 0.521_095_305_493_747_4),
            (UnaryOp::Cosh, 0.5, 1.127_625_965_206_380_8),
            (UnaryOp::Tanh, 0.5, 0.462_117_157_260_009_74),
            (UnaryOp::Asinh, 0.5, 0.481_211_825_059_603_47),
            (UnaryOp::Acosh, 1.5, 0.962_423_650_119_206_9),
            (UnaryOp::Atanh, 0.5, 0.549_306_144_334_054_9),
            (UnaryOp::Erf, 0.5, 0.520_499_877_813_046_5),
            (UnaryOp::Erfc, 0.5, 0.479_500_122_186_953_5),
            (UnaryOp::Cbrt, 8.0, 2.0),
        ];
        for &(op, x, want) in cases {
            let got = op.eval(x);
            assert!((got - want).abs() <= 2.0 * f64::EPSILON * want.abs(), "{op}({x}) = {got}, want {want}");
        }
    }
}
