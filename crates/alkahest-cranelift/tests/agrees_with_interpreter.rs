//! The Cranelift tier against the interpreter: same bits, scalar and bulk, in float64
//! and in float32.

use std::sync::Arc;

use alkahest_core::{lower, BinaryOp, Element, ExprId, ExprPool, Interpreter, Kernel, Tape, UnaryOp};

fn bits<E: Element>(v: E) -> u64 {
    let v = v.to_f64(); // exact for float32
    if v.is_nan() {
        f64::NAN.to_bits() // NaN payloads are unspecified by IEEE 754
    } else {
        v.to_bits()
    }
}

/// Edge values of both types: 1e39 overflows float32, 1e-40 is a float32 subnormal,
/// 1e300 and -1e-310 become ±inf and -0 in float32.
const EDGE: [f64; 14] = [
    0.0,
    -0.0,
    1.0,
    -1.5,
    0.5,
    3.0,
    1e300,
    -1e-310,
    f64::INFINITY,
    f64::NEG_INFINITY,
    f64::NAN,
    2.5,
    1e39,
    1e-40,
];

fn check(tape: Tape) {
    let tape = Arc::new(tape);
    check_as::<f64>(&tape);
    check_as::<f32>(&tape);
}

fn check_as<E: Element>(tape: &Arc<Tape>) {
    let edge: Vec<E> = EDGE.iter().map(|&x| E::from_f64(x)).collect();
    let half = E::from_f64(0.5);
    for vector_math in [false, true] {
        let interp = Interpreter::<E>::with_options(tape.clone(), vector_math);
        let options = alkahest_cranelift::Options { vector_math, verify: true };
        let jit = alkahest_cranelift::compile_with::<E>(tape.clone(), options).expect("compiles");
        let (ni, no) = (tape.n_inputs, tape.outputs.len());
        // Scalar, on every combination of edge values for the first two inputs.
        let mut a = vec![E::ZERO; no];
        let mut b = vec![E::ZERO; no];
        for &u in &edge {
            for &v in &edge {
                let args: Vec<E> =
                    (0..ni).map(|i| [u, v, E::binary(BinaryOp::Mul, u, half)][i % 3]).collect();
                interp.eval(&args, &mut a);
                jit.eval(&args, &mut b);
                assert_eq!(
                    a.iter().map(|&x| bits(x)).collect::<Vec<_>>(),
                    b.iter().map(|&x| bits(x)).collect::<Vec<_>>(),
                    "scalar at {args:?}\n{tape}"
                );
            }
        }
        // Bulk: strided first input, broadcast last, n odd and not a multiple of any block.
        for n in [1, 2, 3, 5, 7, 2501] {
            let data: Vec<Vec<E>> = (0..ni)
                .map(|i| {
                    (0..2 * n)
                        .map(|k| E::from_f64(EDGE[(k * (i + 3)) % EDGE.len()] + (k as f64 * 0.001)))
                        .collect()
                })
                .collect();
            let ptrs: Vec<*const E> = data.iter().map(|d| d.as_ptr()).collect();
            let strides: Vec<isize> = (0..ni)
                .map(|i| {
                    if i == 0 {
                        2
                    } else if i + 1 == ni {
                        0
                    } else {
                        1
                    }
                })
                .collect();
            let mut oa: Vec<Vec<E>> = vec![vec![E::ZERO; n]; no];
            let mut ob: Vec<Vec<E>> = vec![vec![E::ZERO; n]; no];
            let pa: Vec<*mut E> = oa.iter_mut().map(|o| o.as_mut_ptr()).collect();
            let pb: Vec<*mut E> = ob.iter_mut().map(|o| o.as_mut_ptr()).collect();
            unsafe {
                interp.bulk(&ptrs, &strides, &pa, n);
                jit.bulk(&ptrs, &strides, &pb, n);
            }
            for j in 0..no {
                for k in 0..n {
                    assert_eq!(
                        bits(oa[j][k]),
                        bits(ob[j][k]),
                        "bulk output {j} point {k} of {n} ({}, vector_math={vector_math})\n{tape}",
                        E::DTYPE
                    );
                }
            }
        }
    }
}

fn pool3() -> (ExprPool, [ExprId; 3]) {
    let p = ExprPool::new();
    let s = [p.symbol("x").unwrap(), p.symbol("y").unwrap(), p.symbol("z").unwrap()];
    (p, s)
}

#[test]
fn every_unary_op() {
    let (p, [x, y, _]) = pool3();
    let outs: Vec<ExprId> = UnaryOp::ALL.iter().map(|&op| p.unary(op, x).unwrap()).collect();
    // Feed a vector-math op from a computed value too, not only from an input.
    let xy = p.binary(BinaryOp::Add, x, y).unwrap();
    let mut outs = outs;
    outs.push(p.unary(UnaryOp::Sin, xy).unwrap());
    check(lower(&p, &outs, &[x, y]).unwrap());
}

#[test]
fn every_binary_op_select_and_powers() {
    let (p, [x, y, z]) = pool3();
    let mut outs: Vec<ExprId> = BinaryOp::ALL.iter().map(|&op| p.binary(op, x, y).unwrap()).collect();
    outs.push(p.select(z, x, y).unwrap());
    for n in [2.0, 3.0, -2.0, 17.0, -40.0, 0.5] {
        let c = p.constant(n).unwrap();
        outs.push(p.binary(BinaryOp::Pow, x, c).unwrap());
    }
    outs.push(x); // an input as an output
    outs.push(p.constant(2.5).unwrap()); // a constant as an output
    check(lower(&p, &outs, &[x, y, z]).unwrap());
}

#[test]
fn a_transcendental_chain_crossing_many_stages() {
    let (p, [x, y, _]) = pool3();
    let mut e = x;
    for i in 0..60 {
        let op = [UnaryOp::Sin, UnaryOp::Exp, UnaryOp::Tanh, UnaryOp::Sqrt][i % 4];
        let a = p.unary(op, e).unwrap();
        let b = p.binary(BinaryOp::Mul, a, y).unwrap();
        e = p.binary(BinaryOp::Add, b, x).unwrap();
    }
    check(lower(&p, &[e, x], &[x, y]).unwrap());
}

#[test]
fn code_memory_is_released() {
    let (p, [x, y, _]) = pool3();
    let e = p.binary(BinaryOp::Add, x, y).unwrap();
    let tape = Arc::new(lower(&p, &[e], &[x, y]).unwrap());
    for _ in 0..2000 {
        drop(alkahest_cranelift::compile(tape.clone(), true).unwrap());
    }
}

#[test]
fn oversized_tapes_are_refused() {
    let (p, [x, _, _]) = pool3();
    let mut e = x;
    let one = p.constant(1.0).unwrap();
    for _ in 0..=alkahest_cranelift::MAX_OPS {
        e = p.binary(BinaryOp::Add, e, one).unwrap();
    }
    let t = lower(&p, &[e], &[x]).unwrap();
    let err = alkahest_cranelift::compile(Arc::new(t), true).err().expect("refused");
    assert!(err.contains("at most"), "{err}");
}

#[test]
fn large_tapes_are_split_into_functions_and_spill_past_the_stack() {
    // 33,000 products, summed forwards for one output and backwards for the other: the
    // second sum reads values of chunks long past, more of them (8 bytes each) than fit
    // the scalar entry's stack, so its spill area is the heap frame; the bulk entry's
    // stages span dozens of functions.
    let (p, [x, y, _]) = pool3();
    let n = 33_000;
    let products: Vec<ExprId> = (0..n)
        .map(|k| {
            let c = p.constant(1.0 + k as f64 / n as f64).unwrap();
            p.binary(BinaryOp::Mul, x, c).unwrap()
        })
        .collect();
    let (mut forward, mut backward) = (y, y);
    for (&u, &v) in products.iter().zip(products.iter().rev()) {
        forward = p.binary(BinaryOp::Add, forward, u).unwrap();
        backward = p.binary(BinaryOp::Sub, backward, v).unwrap();
    }
    let tape = lower(&p, &[forward, backward], &[x, y]).unwrap();
    assert!(tape.n_ops() > 2 * n, "{} ops", tape.n_ops());
    check(tape);
}
