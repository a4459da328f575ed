//! The rule sets. Each rule is an identity over the reals; the sets differ in what they
//! promise for doubles:
//!
//! * [`exact`]: every rewrite gives the same double for every input (signed zeros
//!   included): commutativity, `x*1`, `x*2 = x+x`, `a - b = a + (-b)`, sign moves,
//!   division by a power of two as a multiplication. Always safe.
//! * [`algebra`]: associativity and distributivity (factoring and sharing). Inexact:
//!   they change roundings, so an optimiser keeps their result only where it measured no
//!   loss of accuracy, or under `fastmath`.
//! * [`accuracy`]: the rearrangements numerical analysts use against cancellation:
//!   `expm1`, `log1p`, differences of squares, of square roots, of reciprocals, of
//!   sines, cosines, tangents, arctangents and logarithms, `1 - cos`, conjugates
//!   (`a - sqrt(b) = (a² - b)/(a + sqrt(b))`), and the cancellations they expose
//!   (`(a + b) - a = b`). Inexact by design: chosen by measured
//!   error.

use egg::{rewrite as rw, Applier, EGraph, Id, PatternAst, Rewrite, Subst, Symbol, Var};

use crate::lang::{ConstantFolding, Math};

pub type Rule = Rewrite<Math, ConstantFolding>;

/// Rewrites that give the same bits for every input.
pub fn exact() -> Vec<Rule> {
    let mut rules = vec![
        rw!("commute-add"; "(add ?a ?b)" => "(add ?b ?a)"),
        rw!("commute-mul"; "(mul ?a ?b)" => "(mul ?b ?a)"),
        rw!("commute-min"; "(min ?a ?b)" => "(min ?b ?a)"),
        rw!("commute-max"; "(max ?a ?b)" => "(max ?b ?a)"),
        rw!("mul-1"; "(mul ?a 1)" => "?a"),
        rw!("div-1"; "(div ?a 1)" => "?a"),
        rw!("mul-2"; "(mul ?a 2)" => "(add ?a ?a)"),
        rw!("sub-neg"; "(sub ?a ?b)" => "(add ?a (neg ?b))"),
        rw!("add-neg"; "(add ?a (neg ?b))" => "(sub ?a ?b)"),
        rw!("neg-neg"; "(neg (neg ?a))" => "?a"),
        rw!("mul-minus-1"; "(mul ?a -1)" => "(neg ?a)"),
        rw!("neg-mul"; "(mul (neg ?a) ?b)" => "(neg (mul ?a ?b))"),
        rw!("neg-div-left"; "(div (neg ?a) ?b)" => "(neg (div ?a ?b))"),
        rw!("neg-div-right"; "(div ?a (neg ?b))" => "(neg (div ?a ?b))"),
        rw!("abs-neg"; "(abs (neg ?a))" => "(abs ?a)"),
        rw!("abs-abs"; "(abs (abs ?a))" => "(abs ?a)"),
        rw!("where-same"; "(where ?c ?a ?a)" => "?a"),
    ];
    rules.push(rw!("div-pow2"; "(div ?a ?c)" => { ReciprocalPowerOfTwo { a: var("?a"), c: var("?c") } }));
    rules
}

/// Associativity and distributivity (inexact).
pub fn algebra() -> Vec<Rule> {
    vec![
        rw!("assoc-add"; "(add (add ?a ?b) ?c)" => "(add ?a (add ?b ?c))"),
        rw!("assoc-add-rev"; "(add ?a (add ?b ?c))" => "(add (add ?a ?b) ?c)"),
        rw!("assoc-mul"; "(mul (mul ?a ?b) ?c)" => "(mul ?a (mul ?b ?c))"),
        rw!("assoc-mul-rev"; "(mul ?a (mul ?b ?c))" => "(mul (mul ?a ?b) ?c)"),
        rw!("distribute"; "(mul ?a (add ?b ?c))" => "(add (mul ?a ?b) (mul ?a ?c))"),
        rw!("factor"; "(add (mul ?a ?b) (mul ?a ?c))" => "(mul ?a (add ?b ?c))"),
        rw!("factor-sub"; "(sub (mul ?a ?b) (mul ?a ?c))" => "(mul ?a (sub ?b ?c))"),
    ]
}

/// Rearrangements against cancellation (inexact; chosen by measured error).
pub fn accuracy() -> Vec<Rule> {
    vec![
        rw!("expm1"; "(sub (exp ?x) 1)" => "(expm1 ?x)"),
        rw!("log1p"; "(log (add 1 ?x))" => "(log1p ?x)"),
        rw!("log1p-sub"; "(log (sub 1 ?x))" => "(log1p (neg ?x))"),
        rw!("diff-squares"; "(sub (mul ?a ?a) (mul ?b ?b))" => "(mul (add ?a ?b) (sub ?a ?b))"),
        rw!("sqrt-diff"; "(sub (sqrt ?a) (sqrt ?b))" => "(div (sub ?a ?b) (add (sqrt ?a) (sqrt ?b)))"),
        rw!("recip-diff"; "(sub (div 1 ?a) (div 1 ?b))" => "(div (sub ?b ?a) (mul ?a ?b))"),
        rw!("frac-sub"; "(sub (div ?a ?b) (div ?c ?d))" => "(div (sub (mul ?a ?d) (mul ?c ?b)) (mul ?b ?d))"),
        rw!("frac-add"; "(add (div ?a ?b) (div ?c ?d))" => "(div (add (mul ?a ?d) (mul ?c ?b)) (mul ?b ?d))"),
        rw!("one-minus-cos"; "(sub 1 (cos ?x))" => "(mul 2 (mul (sin (mul ?x 0.5)) (sin (mul ?x 0.5))))"),
        rw!("sin-diff"; "(sub (sin ?a) (sin ?b))"
            => "(mul 2 (mul (cos (mul (add ?a ?b) 0.5)) (sin (mul (sub ?a ?b) 0.5))))"),
        rw!("cos-diff"; "(sub (cos ?a) (cos ?b))"
            => "(mul -2 (mul (sin (mul (add ?a ?b) 0.5)) (sin (mul (sub ?a ?b) 0.5))))"),
        rw!("tan-diff"; "(sub (tan ?a) (tan ?b))" => "(div (sin (sub ?a ?b)) (mul (cos ?a) (cos ?b)))"),
        rw!("atan-diff"; "(sub (atan ?a) (atan ?b))" => "(atan2 (sub ?a ?b) (add 1 (mul ?a ?b)))"),
        rw!("log-diff"; "(sub (log ?a) (log ?b))" => "(log (div ?a ?b))"),
        rw!("exp-sum"; "(mul (exp ?a) (exp ?b))" => "(exp (add ?a ?b))"),
        rw!("exp-diff"; "(div (exp ?a) (exp ?b))" => "(exp (sub ?a ?b))"),
        rw!("cancel-add"; "(sub (add ?a ?b) ?a)" => "?b"),
        rw!("cancel-add-2"; "(sub ?a (add ?a ?b))" => "(neg ?b)"),
        rw!("cancel-sub-3"; "(sub (sub ?a ?b) ?a)" => "(neg ?b)"),
        rw!("conjugate"; "(sub (sqrt ?b) ?a)" => "(div (sub ?b (mul ?a ?a)) (add (sqrt ?b) ?a))"),
        rw!("conjugate-2"; "(sub ?a (sqrt ?b))" => "(div (sub (mul ?a ?a) ?b) (add ?a (sqrt ?b)))"),
        rw!("cancel-sub"; "(add (sub ?a ?b) ?b)" => "?a"),
        rw!("cancel-sub-2"; "(sub ?a (sub ?a ?b))" => "?b"),
        rw!("sub-sub"; "(sub (sub ?a ?b) ?c)" => "(sub ?a (add ?b ?c))"),
    ]
}

fn var(name: &str) -> Var {
    name.parse().expect("a pattern variable")
}

/// `a / c` → `a * (1/c)` when `c` is a constant power of two whose reciprocal is a
/// normal double: the same bits (both are exact scalings).
struct ReciprocalPowerOfTwo {
    a: Var,
    c: Var,
}

impl Applier<Math, ConstantFolding> for ReciprocalPowerOfTwo {
    fn apply_one(
        &self,
        egraph: &mut EGraph<Math, ConstantFolding>,
        eclass: Id,
        subst: &Subst,
        _ast: Option<&PatternAst<Math>>,
        _rule: Symbol,
    ) -> Vec<Id> {
        let Some(bits) = egraph[subst[self.c]].data else { return vec![] };
        let c = f64::from_bits(bits);
        let r = 1.0 / c;
        let power_of_two = c.is_finite() && c != 0.0 && (c.abs().to_bits() & ((1u64 << 52) - 1)) == 0;
        if !power_of_two || !r.is_normal() {
            return vec![];
        }
        let rc = egraph.add(Math::constant(r));
        let product = egraph.add(Math::Binary(alkahest_core::BinaryOp::Mul, [subst[self.a], rc]));
        if egraph.union(eclass, product) {
            vec![eclass]
        } else {
            vec![]
        }
    }
}
