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

use egg::{rewrite as rw, Applier, EGraph, Id, Pattern, PatternAst, Rewrite, Subst, Symbol, Var};

use crate::lang::{ConstantFolding, Math};

pub type Rule = Rewrite<Math, ConstantFolding>;

/// Rewrites that give the same bits for every input: (name, left, right). With
/// `div-pow2` (a division by a power of two as a multiplication), which checks its constant.
pub const EXACT: &[(&str, &str, &str)] = &[
    ("commute-add", "(add ?a ?b)", "(add ?b ?a)"),
    ("commute-mul", "(mul ?a ?b)", "(mul ?b ?a)"),
    ("commute-min", "(min ?a ?b)", "(min ?b ?a)"),
    ("commute-max", "(max ?a ?b)", "(max ?b ?a)"),
    ("mul-1", "(mul ?a 1)", "?a"),
    ("div-1", "(div ?a 1)", "?a"),
    ("mul-2", "(mul ?a 2)", "(add ?a ?a)"),
    ("sub-neg", "(sub ?a ?b)", "(add ?a (neg ?b))"),
    ("add-neg", "(add ?a (neg ?b))", "(sub ?a ?b)"),
    ("neg-neg", "(neg (neg ?a))", "?a"),
    ("mul-minus-1", "(mul ?a -1)", "(neg ?a)"),
    ("neg-mul", "(mul (neg ?a) ?b)", "(neg (mul ?a ?b))"),
    ("neg-div-left", "(div (neg ?a) ?b)", "(neg (div ?a ?b))"),
    ("neg-div-right", "(div ?a (neg ?b))", "(neg (div ?a ?b))"),
    ("abs-neg", "(abs (neg ?a))", "(abs ?a)"),
    ("abs-abs", "(abs (abs ?a))", "(abs ?a)"),
    ("where-same", "(where ?c ?a ?a)", "?a"),
];

/// Associativity and distributivity (inexact).
pub const ALGEBRA: &[(&str, &str, &str)] = &[
    ("assoc-add", "(add (add ?a ?b) ?c)", "(add ?a (add ?b ?c))"),
    ("assoc-add-rev", "(add ?a (add ?b ?c))", "(add (add ?a ?b) ?c)"),
    ("assoc-mul", "(mul (mul ?a ?b) ?c)", "(mul ?a (mul ?b ?c))"),
    ("assoc-mul-rev", "(mul ?a (mul ?b ?c))", "(mul (mul ?a ?b) ?c)"),
    ("distribute", "(mul ?a (add ?b ?c))", "(add (mul ?a ?b) (mul ?a ?c))"),
    ("factor", "(add (mul ?a ?b) (mul ?a ?c))", "(mul ?a (add ?b ?c))"),
    ("factor-sub", "(sub (mul ?a ?b) (mul ?a ?c))", "(mul ?a (sub ?b ?c))"),
];

/// Rearrangements against cancellation (inexact; chosen by measured error).
pub const ACCURACY: &[(&str, &str, &str)] = &[
    ("expm1", "(sub (exp ?x) 1)", "(expm1 ?x)"),
    ("log1p", "(log (add 1 ?x))", "(log1p ?x)"),
    ("log1p-sub", "(log (sub 1 ?x))", "(log1p (neg ?x))"),
    ("diff-squares", "(sub (mul ?a ?a) (mul ?b ?b))", "(mul (add ?a ?b) (sub ?a ?b))"),
    ("sqrt-diff", "(sub (sqrt ?a) (sqrt ?b))", "(div (sub ?a ?b) (add (sqrt ?a) (sqrt ?b)))"),
    ("recip-diff", "(sub (div 1 ?a) (div 1 ?b))", "(div (sub ?b ?a) (mul ?a ?b))"),
    ("frac-sub", "(sub (div ?a ?b) (div ?c ?d))", "(div (sub (mul ?a ?d) (mul ?c ?b)) (mul ?b ?d))"),
    ("frac-add", "(add (div ?a ?b) (div ?c ?d))", "(div (add (mul ?a ?d) (mul ?c ?b)) (mul ?b ?d))"),
    ("one-minus-cos", "(sub 1 (cos ?x))", "(mul 2 (mul (sin (mul ?x 0.5)) (sin (mul ?x 0.5))))"),
    (
        "sin-diff",
        "(sub (sin ?a) (sin ?b))",
        "(mul 2 (mul (cos (mul (add ?a ?b) 0.5)) (sin (mul (sub ?a ?b) 0.5))))",
    ),
    (
        "cos-diff",
        "(sub (cos ?a) (cos ?b))",
        "(mul -2 (mul (sin (mul (add ?a ?b) 0.5)) (sin (mul (sub ?a ?b) 0.5))))",
    ),
    ("tan-diff", "(sub (tan ?a) (tan ?b))", "(div (sin (sub ?a ?b)) (mul (cos ?a) (cos ?b)))"),
    ("atan-diff", "(sub (atan ?a) (atan ?b))", "(atan2 (sub ?a ?b) (add 1 (mul ?a ?b)))"),
    ("log-diff", "(sub (log ?a) (log ?b))", "(log (div ?a ?b))"),
    ("exp-sum", "(mul (exp ?a) (exp ?b))", "(exp (add ?a ?b))"),
    ("exp-diff", "(div (exp ?a) (exp ?b))", "(exp (sub ?a ?b))"),
    ("cancel-add", "(sub (add ?a ?b) ?a)", "?b"),
    ("cancel-add-2", "(sub ?a (add ?a ?b))", "(neg ?b)"),
    ("cancel-sub-3", "(sub (sub ?a ?b) ?a)", "(neg ?b)"),
    ("conjugate", "(sub (sqrt ?b) ?a)", "(div (sub ?b (mul ?a ?a)) (add (sqrt ?b) ?a))"),
    ("conjugate-2", "(sub ?a (sqrt ?b))", "(div (sub (mul ?a ?a) ?b) (add ?a (sqrt ?b)))"),
    ("cancel-sub", "(add (sub ?a ?b) ?b)", "?a"),
    ("cancel-sub-2", "(sub ?a (sub ?a ?b))", "?b"),
    ("sub-sub", "(sub (sub ?a ?b) ?c)", "(sub ?a (add ?b ?c))"),
];

/// Every rule of the three sets, as (set, name, left, right) patterns: what the tests
/// check each rule against (the exact ones bit for bit, the others as identities over
/// the reals).
pub fn table() -> Vec<(&'static str, &'static str, &'static str, &'static str)> {
    [("exact", EXACT), ("algebra", ALGEBRA), ("accuracy", ACCURACY)]
        .into_iter()
        .flat_map(|(set, rows)| rows.iter().map(move |&(name, left, right)| (set, name, left, right)))
        .collect()
}

fn rewrites(rows: &[(&str, &str, &str)]) -> Vec<Rule> {
    rows.iter()
        .map(|&(name, left, right)| {
            let (left, right): (Pattern<Math>, Pattern<Math>) = (
                left.parse().expect("a rule's pattern parses"),
                right.parse().expect("a rule's pattern parses"),
            );
            Rewrite::new(name, left, right).expect("a rule's right side uses only its left side's variables")
        })
        .collect()
}

/// Rewrites that give the same bits for every input.
pub fn exact() -> Vec<Rule> {
    let mut rules = rewrites(EXACT);
    rules.push(rw!("div-pow2"; "(div ?a ?c)" => { ReciprocalPowerOfTwo { a: var("?a"), c: var("?c") } }));
    rules
}

/// Associativity and distributivity (inexact).
pub fn algebra() -> Vec<Rule> {
    rewrites(ALGEBRA)
}

/// Rearrangements against cancellation (inexact; chosen by measured error).
pub fn accuracy() -> Vec<Rule> {
    rewrites(ACCURACY)
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
