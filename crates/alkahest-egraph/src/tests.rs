use alkahest_core::{BinaryOp, ExprPool, Interpreter, Kernel, UnaryOp};

use super::*;

fn ops(node: &Math) -> f64 {
    match node {
        Math::Var(_) | Math::Const(_) => 0.0,
        _ => 1.0,
    }
}

fn value(pool: &ExprPool, e: ExprId, vars: &[ExprId], at: &[f64]) -> f64 {
    let f = Interpreter::new(alkahest_core::lower(pool, &[e], vars).unwrap());
    let mut out = [0.0];
    f.eval(at, &mut out);
    out[0]
}

#[test]
fn exact_rules_keep_every_bit() {
    // y*(-x) + w/4 + x/(-y): divisions by a power of two become multiplications, and
    // signs move, with the same bits for every input.
    let p = ExprPool::new();
    let [x, y, w] = ["x", "y", "w"].map(|n| p.symbol(n).unwrap());
    let nx = p.unary(UnaryOp::Neg, x).unwrap();
    let ny = p.unary(UnaryOp::Neg, y).unwrap();
    let a = p.binary(BinaryOp::Mul, y, nx).unwrap();
    let four = p.constant(4.0).unwrap();
    let b = p.binary(BinaryOp::Div, w, four).unwrap();
    let c = p.binary(BinaryOp::Div, x, ny).unwrap();
    let ab = p.binary(BinaryOp::Add, a, b).unwrap();
    let e = p.binary(BinaryOp::Add, ab, c).unwrap();
    let vars = [x, y, w];
    let g = saturate(&p, &[e], &vars, Rules::default(), Limits::default()).unwrap();
    let cost = |n: &Math| match n {
        Math::Binary(BinaryOp::Div, _) => 4.0,
        _ => ops(n),
    };
    let out = g.extract(&p, &vars, cost).unwrap()[0];
    let text = alkahest_core::print::to_infix(&p.read(), out, usize::MAX);
    assert!(text.contains("0.25") && !text.contains("/4"), "{text}");
    let points = [0.3, -1.7, 2.5, -0.0, 0.0, 1e308, -1e-310, f64::INFINITY, f64::NAN, 7.0];
    for &u in &points {
        for &v in &points {
            let at = [u, v, u - v];
            let (before, after) = (value(&p, e, &vars, &at), value(&p, out, &vars, &at));
            assert!(
                before.to_bits() == after.to_bits() || (before.is_nan() && after.is_nan()),
                "{at:?}: {before} vs {after}"
            );
        }
    }
}

#[test]
fn accuracy_rules_find_the_difference_of_sines_without_cancellation() {
    let p = ExprPool::new();
    let [x, eps] = ["x", "eps"].map(|n| p.symbol(n).unwrap());
    // sin(x + eps) - sin(x) has an equivalent free of cancellation.
    let xe = p.binary(BinaryOp::Add, x, eps).unwrap();
    let a = p.unary(UnaryOp::Sin, xe).unwrap();
    let b = p.unary(UnaryOp::Sin, x).unwrap();
    let d = p.binary(BinaryOp::Sub, a, b).unwrap();
    let g = saturate(&p, &[d], &[x, eps], Rules { accuracy: true, ..Rules::default() }, Limits::default())
        .unwrap();
    assert!(g.report.applied.iter().any(|(r, _)| r == "sin-diff"), "{:?}", g.report);
    // Sines cost more than anything else: the form with one sine and one cosine wins.
    let out = g
        .extract(&p, &[x, eps], |n| match n {
            Math::Unary(UnaryOp::Sin, _) => 10.0,
            _ => ops(n),
        })
        .unwrap()[0];
    let text = alkahest_core::print::to_infix(&p.read(), out, usize::MAX);
    assert!(text.contains("cos") && !text.contains(" - sin"), "{text} {:?}", g.report);
    let (x0, e0) = (1.0, 1e-12);
    let want = 2.0 * (x0 + e0 / 2.0_f64).cos() * (e0 / 2.0_f64).sin();
    let got = value(&p, out, &[x, eps], &[x0, e0]);
    assert!((got - want).abs() <= 1e-15 * want.abs(), "{got} vs {want}");
}

#[test]
fn unknown_symbols_are_refused() {
    let p = ExprPool::new();
    let [x, y] = ["x", "y"].map(|n| p.symbol(n).unwrap());
    let e = p.binary(BinaryOp::Add, x, y).unwrap();
    let err = saturate(&p, &[e], &[x], Rules::default(), Limits::default()).err().unwrap();
    assert!(err.contains("not among the inputs"), "{err}");
}
