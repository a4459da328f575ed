//! The element types kernels compute in: `f64` (the default) and `f32`.
//!
//! Every tier is generic over [`Element`]: the interpreter's loops, the kernel ABI, the
//! runner and the native tiers' code all take the type as a parameter, so float32 is the
//! same machinery at twice the lanes, not a copy. The scalar semantics of each operation
//! in float32 are those of the C library's float functions (`sinf`, `powf`, ...), which
//! native tiers call by the same symbols; conditions are 1.0 or 0.0 in the element type.
//! Constants are rounded to the element type once, when a kernel is built.

use std::fmt;

use crate::op::{self, BinaryOp, UnaryOp};

/// The element type of a kernel, as NumPy names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
    F64,
}

impl DType {
    /// "float32" or "float64".
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "float32",
            DType::F64 => "float64",
        }
    }

    /// Inverse of [`Self::name`].
    pub fn from_name(name: &str) -> Option<DType> {
        match name {
            "float32" => Some(DType::F32),
            "float64" => Some(DType::F64),
            _ => None,
        }
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F64 => 8,
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A floating-point type a kernel computes in.
pub trait Element:
    Copy + Default + PartialEq + PartialOrd + fmt::Debug + fmt::Display + Send + Sync + 'static
{
    const DTYPE: DType;
    const ZERO: Self;
    const ONE: Self;
    const NAN: Self;

    /// The nearest value of this type (round to nearest even; overflow gives ±inf).
    fn from_f64(x: f64) -> Self;
    fn is_nan(self) -> bool;
    fn is_sign_negative(self) -> bool;
    fn to_f64(self) -> f64;

    /// The operation at one point, as every tier computes it in this type.
    fn unary(op: UnaryOp, x: Self) -> Self;
    fn binary(op: BinaryOp, a: Self, b: Self) -> Self;
    /// `a * b + c` rounded once.
    fn fma(a: Self, b: Self, c: Self) -> Self;

    /// `where(cond, a, b)`: `a` where `cond` is non-zero (NaN counts as true).
    #[inline(always)]
    fn select(cond: Self, a: Self, b: Self) -> Self {
        if cond != Self::ZERO {
            a
        } else {
            b
        }
    }
}

impl Element for f64 {
    const DTYPE: DType = DType::F64;
    const ZERO: f64 = 0.0;
    const ONE: f64 = 1.0;
    const NAN: f64 = f64::NAN;

    #[inline(always)]
    fn from_f64(x: f64) -> f64 {
        x
    }

    #[inline(always)]
    fn is_nan(self) -> bool {
        f64::is_nan(self)
    }

    #[inline(always)]
    fn is_sign_negative(self) -> bool {
        f64::is_sign_negative(self)
    }

    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }

    #[inline(always)]
    fn unary(op: UnaryOp, x: f64) -> f64 {
        op.eval(x)
    }

    #[inline(always)]
    fn binary(op: BinaryOp, a: f64, b: f64) -> f64 {
        op.eval(a, b)
    }

    #[inline(always)]
    fn fma(a: f64, b: f64, c: f64) -> f64 {
        op::fma(a, b, c)
    }
}

pub(crate) mod libmf {
    extern "C" {
        pub fn cbrtf(x: f32) -> f32;
        pub fn expf(x: f32) -> f32;
        pub fn expm1f(x: f32) -> f32;
        pub fn logf(x: f32) -> f32;
        pub fn log1pf(x: f32) -> f32;
        pub fn log2f(x: f32) -> f32;
        pub fn log10f(x: f32) -> f32;
        pub fn sinf(x: f32) -> f32;
        pub fn cosf(x: f32) -> f32;
        pub fn tanf(x: f32) -> f32;
        pub fn asinf(x: f32) -> f32;
        pub fn acosf(x: f32) -> f32;
        pub fn atanf(x: f32) -> f32;
        pub fn sinhf(x: f32) -> f32;
        pub fn coshf(x: f32) -> f32;
        pub fn tanhf(x: f32) -> f32;
        pub fn asinhf(x: f32) -> f32;
        pub fn acoshf(x: f32) -> f32;
        pub fn atanhf(x: f32) -> f32;
        pub fn erff(x: f32) -> f32;
        pub fn erfcf(x: f32) -> f32;
        pub fn atan2f(y: f32, x: f32) -> f32;
        pub fn powf(x: f32, y: f32) -> f32;
    }
}

#[inline(always)]
fn truth32(b: bool) -> f32 {
    if b {
        1.0
    } else {
        0.0
    }
}

/// IEEE 754-2019 `minimum` in either type: NaN if either argument is NaN, and -0 below +0.
#[inline(always)]
pub fn minimum<E: Element>(a: E, b: E) -> E {
    if a < b {
        a
    } else if b < a {
        b
    } else if a.is_nan() || b.is_nan() {
        E::NAN
    } else if a.is_sign_negative() {
        a
    } else {
        b
    }
}

/// IEEE 754-2019 `maximum` in either type: NaN if either argument is NaN, and +0 above -0.
#[inline(always)]
pub fn maximum<E: Element>(a: E, b: E) -> E {
    if a > b {
        a
    } else if b > a {
        b
    } else if a.is_nan() || b.is_nan() {
        E::NAN
    } else if !a.is_sign_negative() {
        a
    } else {
        b
    }
}

impl Element for f32 {
    const DTYPE: DType = DType::F32;
    const ZERO: f32 = 0.0;
    const ONE: f32 = 1.0;
    const NAN: f32 = f32::NAN;

    #[inline(always)]
    fn from_f64(x: f64) -> f32 {
        x as f32
    }

    #[inline(always)]
    fn is_nan(self) -> bool {
        f32::is_nan(self)
    }

    #[inline(always)]
    fn is_sign_negative(self) -> bool {
        f32::is_sign_negative(self)
    }

    #[inline(always)]
    fn to_f64(self) -> f64 {
        f64::from(self)
    }

    #[inline(always)]
    fn unary(op: UnaryOp, x: f32) -> f32 {
        use UnaryOp::*;
        // SAFETY: the libm float functions are pure and defined for every float.
        unsafe {
            match op {
                Neg => -x,
                Sqrt => x.sqrt(),
                Cbrt => libmf::cbrtf(x),
                Exp => libmf::expf(x),
                Expm1 => libmf::expm1f(x),
                Log => libmf::logf(x),
                Log1p => libmf::log1pf(x),
                Log2 => libmf::log2f(x),
                Log10 => libmf::log10f(x),
                Sin => libmf::sinf(x),
                Cos => libmf::cosf(x),
                Tan => libmf::tanf(x),
                Asin => libmf::asinf(x),
                Acos => libmf::acosf(x),
                Atan => libmf::atanf(x),
                Sinh => libmf::sinhf(x),
                Cosh => libmf::coshf(x),
                Tanh => libmf::tanhf(x),
                Asinh => libmf::asinhf(x),
                Acosh => libmf::acoshf(x),
                Atanh => libmf::atanhf(x),
                Erf => libmf::erff(x),
                Erfc => libmf::erfcf(x),
                Abs => x.abs(),
                Floor => x.floor(),
                Ceil => x.ceil(),
                Round => x.round(),
                Not => truth32(x == 0.0),
            }
        }
    }

    #[inline(always)]
    fn binary(op: BinaryOp, a: f32, b: f32) -> f32 {
        use BinaryOp::*;
        match op {
            Add => a + b,
            Sub => a - b,
            Mul => a * b,
            Div => a / b,
            // SAFETY: pure libm functions, defined for every pair of floats.
            Pow => unsafe { libmf::powf(a, b) },
            Atan2 => unsafe { libmf::atan2f(a, b) },
            Min => minimum(a, b),
            Max => maximum(a, b),
            Copysign => a.copysign(b),
            Lt => truth32(a < b),
            Le => truth32(a <= b),
            Gt => truth32(a > b),
            Ge => truth32(a >= b),
            Eq => truth32(a == b),
            Ne => truth32(a != b),
            And => truth32(a != 0.0 && b != 0.0),
            Or => truth32(a != 0.0 || b != 0.0),
        }
    }

    #[inline(always)]
    fn fma(a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Distance in float32 units in the last place.
    fn ulps32(a: f32, b: f32) -> f64 {
        if a == b || (a.is_nan() && b.is_nan()) {
            return 0.0;
        }
        let spacing = f64::from(f32::EPSILON) * f64::from(a.abs().max(b.abs()).max(f32::MIN_POSITIVE));
        (f64::from(a) - f64::from(b)).abs() / spacing
    }

    #[test]
    fn float32_ops_are_the_float64_ones_rounded_within_a_few_ulp() {
        let xs = [-2.5f32, -0.75, -0.0, 0.0, 0.3, 0.5, 0.99, 1.5, 3.0, 40.0];
        for &op in UnaryOp::ALL {
            for &x in &xs {
                let want = f64::unary(op, f64::from(x)) as f32;
                let got = f32::unary(op, x);
                assert!(ulps32(got, want) <= 2.0, "{op}({x}): {got} vs {want}");
            }
        }
        for &op in BinaryOp::ALL {
            for &a in &xs {
                for &b in &xs {
                    let want = f64::binary(op, f64::from(a), f64::from(b)) as f32;
                    let got = f32::binary(op, a, b);
                    assert!(ulps32(got, want) <= 2.0, "{op}({a}, {b}): {got} vs {want}");
                }
            }
        }
    }

    #[test]
    fn conditions_minimum_and_rounding_follow_the_float64_rules() {
        assert!(f32::binary(BinaryOp::Min, f32::NAN, 1.0).is_nan());
        assert!(f32::binary(BinaryOp::Min, 0.0, -0.0).is_sign_negative());
        assert!(f32::binary(BinaryOp::Max, -0.0, 0.0).is_sign_positive());
        assert_eq!(f32::unary(UnaryOp::Not, f32::NAN), 0.0);
        assert_eq!(f32::select(f32::NAN, 1.0, 2.0), 1.0);
        assert_eq!(f32::unary(UnaryOp::Round, -2.5), -3.0);
        assert_eq!(f32::from_f64(1e39), f32::INFINITY);
        assert_eq!(DType::from_name("float32"), Some(DType::F32));
        assert_eq!(DType::F64.size(), 8);
    }
}
