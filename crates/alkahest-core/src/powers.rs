//! Integer powers `x**n` as tape instructions, accurate to about half an ulp for every
//! `|n| < 2^31`, on every tier.
//!
//! A plain chain of multiplications (binary powering) rounds once per multiplication,
//! and squaring doubles the relative error it inherits: `x**1000` is ~75 ulp off, and
//! `x**-2 = 1/(x*x)` overflows to 0 for `x = 1e160`. Chains are kept only where they are
//! within 2 ulp: `n` in {2, 3} (two roundings at most) and `n = -1` (one division).
//!
//! Every other power is *compensated powering*: binary powering carries each partial
//! result as a pair `(h, m)` whose exact value is `h - m`. `h` is the plain chain's value;
//! `m` collects the rounding errors, each one obtained exactly with a fused multiply-add
//! (`p = a*b` rounds away exactly `p - a*b = fma(-a, b, p)`). The result is `h - m`,
//! rounded once: about 0.5 ulp plus terms of order `n²·u²` (including `m`'s own square for
//! large `n`). A negative power starts from `1/x` as such a pair (its residual
//! `1 - x·(1/x)` is one fma), so `x**-2` at `x = 1e160` is `1e-320`, not 0.
//!
//! Special values follow from `h`, which is the plain chain: when `h` is ±inf, NaN or
//! the residuals are not finite (`x = ±0` or ±inf with `n < 0`), `h - m` is NaN or equal
//! to `h`, and the result is `h`. `m` is `+0` whenever every product is exact, so
//! `h - m` keeps the sign of a zero `h` (`(-0.0)**5` is `-0.0`).
//!
//! A power with one exponent costs about 5 instructions per squaring and 3 per
//! multiplication instead of 1; powers of one base share their squares. Where speed
//! matters more than the last digits, [`Powers::Plain`] (`CompileConfig(fastmath=True)`)
//! keeps the plain chain.

use crate::op::{BinaryOp, UnaryOp};
use crate::tape::{Builder, InstrKey, ValueId};

/// How lowering computes `x**n` for a constant integer `n`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Powers {
    /// Compensated powering: within ~0.5 ulp for every `|n| < 2^31` (the default).
    Compensated,
    /// The plain chain of binary powering (`1 / x**|n|` for `n < 0`): one instruction per
    /// step, error growing with `n` (~n/2 ulp), early overflow of negative powers.
    Plain,
}

/// Above this `|n|` the square of the error term is kept too.
const SECOND_ORDER_FROM: u64 = 1 << 12;

/// A value as `h - m` (`m = None`: exactly `h`).
#[derive(Clone, Copy)]
struct Pair {
    h: ValueId,
    m: Option<ValueId>,
}

struct Powering<'a> {
    b: &'a mut Builder,
    second_order: bool,
}

impl Powering<'_> {
    fn mul(&mut self, a: ValueId, b: ValueId) -> ValueId {
        self.b.push(InstrKey::Binary(BinaryOp::Mul, a, b))
    }

    fn neg(&mut self, a: ValueId) -> ValueId {
        self.b.push(InstrKey::Unary(UnaryOp::Neg, a))
    }

    fn fma(&mut self, a: ValueId, b: ValueId, c: ValueId) -> ValueId {
        self.b.push(InstrKey::Fma(a, b, c))
    }

    /// `p = a.h * b.h` and its exact rounding error as `p - a.h*b.h`.
    fn product(&mut self, a: ValueId, b: ValueId) -> (ValueId, ValueId) {
        let p = self.mul(a, b);
        let na = self.neg(a);
        (p, self.fma(na, b, p))
    }

    /// `a * b` as a pair: `(ah - am)(bh - bm) = ah·bh - (ah·bm + am·bh) + am·bm`.
    fn times(&mut self, a: Pair, b: Pair) -> Pair {
        let (p, mut m) = self.product(a.h, b.h);
        if let Some(bm) = b.m {
            m = self.fma(a.h, bm, m);
        }
        if let Some(am) = a.m {
            m = self.fma(am, b.h, m);
            if let (Some(bm), true) = (b.m, self.second_order) {
                let nam = self.neg(am);
                m = self.fma(nam, bm, m);
            }
        }
        Pair { h: p, m: Some(m) }
    }

    /// `a²` as a pair (the cross term once, doubled).
    fn square(&mut self, a: Pair) -> Pair {
        let (p, mut m) = self.product(a.h, a.h);
        if let Some(am) = a.m {
            let twice = self.b.push(InstrKey::Binary(BinaryOp::Add, a.h, a.h));
            m = self.fma(twice, am, m);
            if self.second_order {
                let nam = self.neg(am);
                m = self.fma(nam, am, m);
            }
        }
        Pair { h: p, m: Some(m) }
    }

    /// `1/x` as a pair: `h = 1/x`, and `x·h = 1 - e` exactly, so `1/x ≈ h·(1 + e)`.
    fn reciprocal(&mut self, x: ValueId) -> Pair {
        let one = self.b.constant(1.0);
        let minus_one = self.b.constant(-1.0);
        let h = self.b.push(InstrKey::Binary(BinaryOp::Div, one, x));
        let minus_e = self.fma(h, x, minus_one);
        let m = self.mul(h, minus_e);
        Pair { h, m: Some(m) }
    }

    /// `h - m`, or `h` where that is NaN (overflow, infinities, NaN inputs).
    fn round(&mut self, v: Pair) -> ValueId {
        let Some(m) = v.m else { return v.h };
        let r = self.b.push(InstrKey::Binary(BinaryOp::Sub, v.h, m));
        let nan = self.b.push(InstrKey::Binary(BinaryOp::Ne, r, r));
        self.b.push(InstrKey::Select(nan, v.h, r))
    }
}

/// Instructions computing `x**n` (see the module documentation).
pub(crate) fn integer_power(b: &mut Builder, x: ValueId, n: i64) -> ValueId {
    let mul = |b: &mut Builder, a, c| b.push(InstrKey::Binary(BinaryOp::Mul, a, c));
    match n {
        0 => return b.constant(1.0),
        1 => return x,
        2 => return mul(b, x, x),
        3 => {
            let sq = mul(b, x, x);
            return mul(b, sq, x);
        }
        -1 => {
            let one = b.constant(1.0);
            return b.push(InstrKey::Binary(BinaryOp::Div, one, x));
        }
        _ => {}
    }
    if b.powers == Powers::Plain {
        return plain_power(b, x, n);
    }
    let mut k = n.unsigned_abs();
    let mut pw = Powering { b, second_order: k >= SECOND_ORDER_FROM };
    let mut base = if n < 0 { pw.reciprocal(x) } else { Pair { h: x, m: None } };
    let mut acc: Option<Pair> = None;
    while k > 0 {
        if k & 1 == 1 {
            acc = Some(match acc {
                None => base,
                Some(a) => pw.times(a, base),
            });
        }
        k >>= 1;
        if k > 0 {
            base = pw.square(base);
        }
    }
    let result = acc.expect("|n| >= 2 has a set bit");
    pw.round(result)
}

/// `x**n` by binary powering without compensation.
fn plain_power(b: &mut Builder, x: ValueId, n: i64) -> ValueId {
    let mut k = n.unsigned_abs();
    let (mut base, mut acc) = (x, None);
    while k > 0 {
        if k & 1 == 1 {
            acc = Some(match acc {
                None => base,
                Some(a) => b.push(InstrKey::Binary(BinaryOp::Mul, a, base)),
            });
        }
        k >>= 1;
        if k > 0 {
            base = b.push(InstrKey::Binary(BinaryOp::Mul, base, base));
        }
    }
    let positive = acc.expect("|n| >= 2 has a set bit");
    if n < 0 {
        let one = b.constant(1.0);
        b.push(InstrKey::Binary(BinaryOp::Div, one, positive))
    } else {
        positive
    }
}
