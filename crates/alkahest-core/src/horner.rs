//! Horner form: `c0 + c1*x + ... + cn*x**n` as `((cn*x + c(n-1))*x + ...)*x + c0`.
//!
//! The expression is first read as a polynomial in `var` whose coefficients are
//! expressions free of `var` (sums, differences, products, negations, non-negative
//! integer powers and division by `var`-free expressions); anything else that involves
//! `var` is an error. The walk is iterative and shares work across the DAG.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::op::{BinaryOp, UnaryOp};
use crate::pool::{ExprId, ExprPool, Node};

/// Highest degree `horner` expands to (powers multiply the coefficient lists out).
pub const MAX_DEGREE: usize = 4096;

/// Most coefficient products one expansion may form: `(x + y)**4096` needs ~8 million
/// (16.8 million nodes, 2 GB, 10 s); this many take well under a second.
pub const MAX_PRODUCTS: usize = 1 << 20;

/// Coefficients, lowest degree first; `None` is a coefficient that is structurally
/// absent (not the expression `0`, which would turn `inf * 0` into NaN terms the
/// original never computed). Never empty.
type Poly = Vec<Option<ExprId>>;

struct Builder<'a> {
    pool: &'a ExprPool,
    /// Coefficient products formed so far (bounded by [`MAX_PRODUCTS`]).
    products: std::cell::Cell<usize>,
}

impl Builder<'_> {
    fn add(&self, a: &Poly, b: &Poly, op: BinaryOp) -> Result<Poly> {
        (0..a.len().max(b.len()))
            .map(|k| match (a.get(k).copied().flatten(), b.get(k).copied().flatten()) {
                (None, None) => Ok(None),
                (Some(x), None) => Ok(Some(x)),
                (None, Some(y)) if op == BinaryOp::Sub => self.pool.unary(UnaryOp::Neg, y).map(Some),
                (None, Some(y)) => Ok(Some(y)),
                (Some(x), Some(y)) => self.pool.binary(op, x, y).map(Some),
            })
            .collect()
    }

    fn mul(&self, a: &Poly, b: &Poly) -> Result<Poly> {
        let degree = a.len() + b.len() - 2;
        if degree > MAX_DEGREE {
            return Err(Error::Expression(format!("the polynomial's degree exceeds {MAX_DEGREE}")));
        }
        let products = self.products.get().saturating_add(a.len().saturating_mul(b.len()));
        if products > MAX_PRODUCTS {
            return Err(Error::Expression(format!(
                "expanding this polynomial needs more than {MAX_PRODUCTS} coefficient products \
                 (its coefficients are themselves large polynomials); horner() expands in one symbol \
                 only, so write the expression in Horner form by hand or leave it unexpanded"
            )));
        }
        self.products.set(products);
        let mut out: Poly = vec![None; degree + 1];
        for (i, x) in a.iter().enumerate() {
            for (j, y) in b.iter().enumerate() {
                if let (Some(x), Some(y)) = (x, y) {
                    let term = self.pool.binary(BinaryOp::Mul, *x, *y)?;
                    out[i + j] = Some(match out[i + j] {
                        None => term,
                        Some(acc) => self.pool.binary(BinaryOp::Add, acc, term)?,
                    });
                }
            }
        }
        Ok(out)
    }

    fn map(&self, a: &Poly, f: impl Fn(ExprId) -> Result<ExprId>) -> Result<Poly> {
        a.iter().map(|c| c.map(&f).transpose()).collect()
    }
}

fn not_polynomial(pool: &ExprPool, var: ExprId, why: &str) -> Error {
    let name = match pool.node(var) {
        Node::Symbol(n) => n.to_string(),
        _ => "?".into(),
    };
    Error::Expression(format!("the expression is not a polynomial in {name}: {why}"))
}

/// The coefficients of `expr` as a polynomial in `var`, lowest degree first (`None`:
/// no term of that degree).
pub fn coefficients(pool: &ExprPool, expr: ExprId, var: ExprId) -> Result<Vec<Option<ExprId>>> {
    if !matches!(pool.node(var), Node::Symbol(_)) {
        return Err(Error::Expression("horner() needs a symbol to expand in".into()));
    }
    let b = Builder { pool, products: std::cell::Cell::new(0) };
    let mut memo: HashMap<ExprId, Poly> = HashMap::new();
    let mut stack = vec![(expr, false)];
    while let Some((id, children_done)) = stack.pop() {
        if memo.contains_key(&id) {
            continue;
        }
        let node = pool.node(id);
        if !children_done {
            stack.push((id, true));
            stack.extend(node.children().iter().map(|&c| (c, false)));
            continue;
        }
        let kids: Vec<&Poly> = node.children().iter().map(|c| &memo[c]).collect();
        let free = kids.iter().all(|p| p.len() == 1);
        let poly = if id == var {
            vec![None, Some(pool.constant(1.0)?)]
        } else if free {
            vec![Some(id)] // no `var` below: a coefficient as it is
        } else {
            match &node {
                Node::Binary(BinaryOp::Add, _) => b.add(kids[0], kids[1], BinaryOp::Add)?,
                Node::Binary(BinaryOp::Sub, _) => b.add(kids[0], kids[1], BinaryOp::Sub)?,
                Node::Binary(BinaryOp::Mul, _) => b.mul(kids[0], kids[1])?,
                Node::Unary(UnaryOp::Neg, _) => b.map(kids[0], |c| pool.unary(UnaryOp::Neg, c))?,
                Node::Binary(BinaryOp::Div, [_, d]) if kids[1].len() == 1 => {
                    b.map(kids[0], |c| pool.binary(BinaryOp::Div, c, *d))?
                }
                Node::Binary(BinaryOp::Pow, [_, e]) => match pool.node(*e).as_const() {
                    Some(n) if n >= 0.0 && n == n.trunc() && n as usize <= MAX_DEGREE => {
                        let mut acc: Poly = vec![Some(pool.constant(1.0)?)];
                        for _ in 0..n as usize {
                            acc = b.mul(&acc, kids[0])?;
                        }
                        acc
                    }
                    _ => {
                        return Err(not_polynomial(
                            pool,
                            var,
                            "it has a power that is not a non-negative integer",
                        ))
                    }
                },
                Node::Binary(BinaryOp::Div, _) => {
                    return Err(not_polynomial(pool, var, "it divides by an expression in the variable"))
                }
                _ => return Err(not_polynomial(pool, var, "it applies a function to the variable")),
            }
        };
        memo.insert(id, poly);
    }
    let mut poly = memo.remove(&expr).unwrap_or_default();
    while poly.len() > 1 && poly.last() == Some(&None) {
        poly.pop();
    }
    Ok(poly)
}

/// `expr` rewritten in Horner form in `var`: an ordinary expression of the same pool.
pub fn horner(pool: &ExprPool, expr: ExprId, var: ExprId) -> Result<ExprId> {
    let coeffs = coefficients(pool, expr, var)?;
    let Some(&Some(mut acc)) = coeffs.last() else {
        return pool.constant(0.0); // every term cancelled structurally
    };
    for c in coeffs.iter().rev().skip(1) {
        acc = pool.binary(BinaryOp::Mul, acc, var)?;
        if let Some(c) = c {
            acc = pool.binary(BinaryOp::Add, acc, *c)?;
        }
    }
    Ok(acc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tape::lower;

    #[test]
    fn dense_polynomial_takes_n_multiplications_and_n_additions() {
        let p = ExprPool::new();
        let x = p.symbol("x").unwrap();
        let two = p.constant(2.0).unwrap();
        // sum (k + 2) * x**k for k = 0..=5, written naively
        let mut e = p.constant(2.0).unwrap();
        for k in 1..=5 {
            let c = p.constant(k as f64 + 2.0).unwrap();
            let n = p.constant(k as f64).unwrap();
            let xk = p.binary(BinaryOp::Pow, x, n).unwrap();
            let term = p.binary(BinaryOp::Mul, c, xk).unwrap();
            e = p.binary(BinaryOp::Add, e, term).unwrap();
        }
        let h = horner(&p, e, x).unwrap();
        let t = lower(&p, &[h], &[x]).unwrap();
        assert_eq!(t.n_ops(), 10, "{t}");
        let _ = two;
    }

    #[test]
    fn functions_of_the_variable_are_refused() {
        let p = ExprPool::new();
        let x = p.symbol("x").unwrap();
        let s = p.unary(UnaryOp::Sin, x).unwrap();
        assert!(matches!(horner(&p, s, x), Err(Error::Expression(m)) if m.contains("polynomial in x")));
        let inv = p.binary(BinaryOp::Div, p.constant(1.0).unwrap(), x).unwrap();
        assert!(horner(&p, inv, x).is_err());
    }
}
