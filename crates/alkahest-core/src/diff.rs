//! Symbolic derivatives on the DAG, built in the same pool so that a derivative shares
//! every common subexpression with its function.
//!
//! One table of local rules ([`Rules::chain`]: `seed · ∂node/∂argument`) serves both
//! modes:
//! - forward ([`derivative`]): one variable, any number of roots; each node is
//!   differentiated once (memoised over the walk);
//! - reverse ([`gradient`]): one root, any number of variables; adjoints are accumulated
//!   from the root down, so the gradient costs a small constant times the function
//!   whatever the number of variables.
//!
//! Derivatives that are structurally zero are `None`, never the constant `0`: building
//! `0 * a` would turn an infinite or NaN `a` into a NaN the derivative does not have.
//! `floor`, `ceil`, `round`, comparisons and logic have derivative zero (almost
//! everywhere); `abs`, `min`, `max`, `copysign` and `where` take the derivative of the
//! branch they select. Both walks are iterative.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::op::{BinaryOp, UnaryOp};
use crate::pool::{topological_order, ExprId, ExprPool, Node};

/// A derivative: `None` is structurally zero.
pub type Deriv = Option<ExprId>;

struct Rules<'a> {
    pool: &'a ExprPool,
}

impl Rules<'_> {
    fn c(&self, v: f64) -> Result<ExprId> {
        self.pool.constant(v)
    }
    fn un(&self, op: UnaryOp, a: ExprId) -> Result<ExprId> {
        self.pool.unary(op, a)
    }
    fn bin(&self, op: BinaryOp, a: ExprId, b: ExprId) -> Result<ExprId> {
        self.pool.binary(op, a, b)
    }
    fn mul(&self, a: ExprId, b: ExprId) -> Result<ExprId> {
        self.bin(BinaryOp::Mul, a, b)
    }
    fn div(&self, a: ExprId, b: ExprId) -> Result<ExprId> {
        self.bin(BinaryOp::Div, a, b)
    }
    fn neg(&self, a: ExprId) -> Result<ExprId> {
        self.un(UnaryOp::Neg, a)
    }
    fn square(&self, a: ExprId) -> Result<ExprId> {
        self.mul(a, a)
    }
    /// `(1 - a)(1 + a)`: `1 - a²` without cancellation near `|a| = 1`.
    fn one_minus_square(&self, a: ExprId) -> Result<ExprId> {
        let one = self.c(1.0)?;
        self.mul(self.bin(BinaryOp::Sub, one, a)?, self.bin(BinaryOp::Add, one, a)?)
    }
    fn sum(&self, a: Deriv, b: Deriv) -> Result<Deriv> {
        Ok(match (a, b) {
            (Some(x), Some(y)) => Some(self.bin(BinaryOp::Add, x, y)?),
            (x, None) => x,
            (None, y) => y,
        })
    }
    /// `where(cond, a, b)` of two derivatives, a structural zero becoming `0` in one branch.
    fn select(&self, cond: ExprId, a: Deriv, b: Deriv) -> Result<Deriv> {
        if a.is_none() && b.is_none() {
            return Ok(None);
        }
        let zero = self.c(0.0)?;
        Ok(Some(self.pool.select(cond, a.unwrap_or(zero), b.unwrap_or(zero))?))
    }

    /// The condition under which `min`/`max` (or `where`) returns its first value argument.
    fn branch_condition(&self, node: &Node) -> Result<Option<ExprId>> {
        Ok(match *node {
            Node::Binary(BinaryOp::Min, [a, b]) => Some(self.bin(BinaryOp::Le, a, b)?),
            Node::Binary(BinaryOp::Max, [a, b]) => Some(self.bin(BinaryOp::Ge, a, b)?),
            Node::Select([cond, _, _]) => Some(cond),
            _ => None,
        })
    }

    /// `seed · ∂f/∂(argument k)` for the node `f` (id `f`); `None` where that partial is
    /// zero (almost everywhere).
    fn chain(&self, f: ExprId, node: &Node, k: usize, seed: ExprId) -> Result<Deriv> {
        use BinaryOp as B;
        use UnaryOp as U;
        let s = seed;
        let d = match *node {
            Node::Symbol(_) | Node::Const(_) => return Ok(None),
            Node::Unary(op, a) => match op {
                U::Neg => self.neg(s)?,
                U::Sqrt => self.div(s, self.mul(self.c(2.0)?, f)?)?,
                U::Cbrt => self.div(s, self.mul(self.c(3.0)?, self.square(f)?)?)?,
                U::Exp => self.mul(s, f)?,
                U::Expm1 => self.mul(s, self.un(U::Exp, a)?)?,
                U::Log => self.div(s, a)?,
                U::Log1p => self.div(s, self.bin(B::Add, self.c(1.0)?, a)?)?,
                U::Log2 => self.div(s, self.mul(self.c(std::f64::consts::LN_2)?, a)?)?,
                U::Log10 => self.div(s, self.mul(self.c(std::f64::consts::LN_10)?, a)?)?,
                U::Sin => self.mul(s, self.un(U::Cos, a)?)?,
                U::Cos => self.neg(self.mul(s, self.un(U::Sin, a)?)?)?,
                U::Tan => self.mul(s, self.bin(B::Add, self.c(1.0)?, self.square(f)?)?)?,
                U::Asin => self.div(s, self.un(U::Sqrt, self.one_minus_square(a)?)?)?,
                U::Acos => self.neg(self.div(s, self.un(U::Sqrt, self.one_minus_square(a)?)?)?)?,
                U::Atan => self.div(s, self.bin(B::Add, self.c(1.0)?, self.square(a)?)?)?,
                U::Sinh => self.mul(s, self.un(U::Cosh, a)?)?,
                U::Cosh => self.mul(s, self.un(U::Sinh, a)?)?,
                U::Tanh => self.mul(s, self.bin(B::Sub, self.c(1.0)?, self.square(f)?)?)?,
                U::Asinh => {
                    self.div(s, self.un(U::Sqrt, self.bin(B::Add, self.c(1.0)?, self.square(a)?)?)?)?
                }
                U::Acosh => {
                    let one = self.c(1.0)?;
                    let r = self.mul(self.bin(B::Sub, a, one)?, self.bin(B::Add, one, a)?)?;
                    self.div(s, self.un(U::Sqrt, r)?)?
                }
                U::Atanh => self.div(s, self.one_minus_square(a)?)?,
                U::Erf | U::Erfc => {
                    let scale = self.c(std::f64::consts::FRAC_2_SQRT_PI)?;
                    let g = self.mul(scale, self.un(U::Exp, self.neg(self.square(a)?)?)?)?;
                    let d = self.mul(s, g)?;
                    if op == U::Erfc {
                        self.neg(d)?
                    } else {
                        d
                    }
                }
                U::Abs => self.mul(s, self.bin(B::Copysign, self.c(1.0)?, a)?)?,
                U::Floor | U::Ceil | U::Round | U::Not => return Ok(None),
            },
            Node::Binary(op, [a, b]) => match (op, k) {
                (B::Add, _) => s,
                (B::Sub, 0) => s,
                (B::Sub, _) => self.neg(s)?,
                (B::Mul, 0) => self.mul(s, b)?,
                (B::Mul, _) => self.mul(s, a)?,
                (B::Div, 0) => self.div(s, b)?,
                (B::Div, _) => self.neg(self.div(self.mul(s, f)?, b)?)?,
                (B::Pow, 0) => {
                    // b·a^(b-1); with a constant b the power folds (a² → 2a, a^1.5 → 1.5·a^0.5).
                    let b_minus_1 = self.bin(B::Sub, b, self.c(1.0)?)?;
                    self.mul(s, self.mul(b, self.bin(B::Pow, a, b_minus_1)?)?)?
                }
                (B::Pow, _) => self.mul(s, self.mul(f, self.un(U::Log, a)?)?)?,
                (B::Atan2, _) => {
                    // atan2(a, b): ∂a = b/(a² + b²), ∂b = -a/(a² + b²).
                    let r = self.bin(B::Add, self.square(a)?, self.square(b)?)?;
                    let t = self.div(self.mul(s, if k == 0 { b } else { a })?, r)?;
                    if k == 0 {
                        t
                    } else {
                        self.neg(t)?
                    }
                }
                (B::Min | B::Max, _) => {
                    // Where `a` is selected, the seed goes to `a`, else to `b`.
                    let cond = self.bin(if op == B::Min { B::Le } else { B::Ge }, a, b)?;
                    let (x, y) = if k == 0 { (Some(s), None) } else { (None, Some(s)) };
                    return self.select(cond, x, y);
                }
                (B::Copysign, 0) => {
                    let one = self.c(1.0)?;
                    let sign_a = self.bin(B::Copysign, one, a)?;
                    let sign_b = self.bin(B::Copysign, one, b)?;
                    self.mul(s, self.mul(sign_a, sign_b)?)?
                }
                (B::Copysign, _) => return Ok(None),
                (B::Lt | B::Le | B::Gt | B::Ge | B::Eq | B::Ne | B::And | B::Or, _) => return Ok(None),
            },
            Node::Select([cond, _, _]) => {
                return match k {
                    1 => self.select(cond, Some(s), None),
                    2 => self.select(cond, None, Some(s)),
                    _ => Ok(None),
                }
            }
        };
        Ok(Some(d))
    }

    /// The forward derivative of `node` (id `f`) from its children's derivatives.
    fn forward(&self, f: ExprId, node: &Node, child: &[Deriv]) -> Result<Deriv> {
        if child.iter().all(Option::is_none) {
            return Ok(None);
        }
        // Selections take the selected branch's derivative: one `where`, not a sum of two.
        if let Some(cond) = self.branch_condition(node)? {
            let (a, b) = if child.len() == 3 { (child[1], child[2]) } else { (child[0], child[1]) };
            return self.select(cond, a, b);
        }
        let mut total = None;
        for (k, d) in child.iter().enumerate() {
            if let Some(d) = *d {
                total = self.sum(total, self.chain(f, node, k, d)?)?;
            }
        }
        Ok(total)
    }
}

fn check_symbol(pool: &ExprPool, var: ExprId) -> Result<()> {
    match pool.node(var) {
        Node::Symbol(_) => Ok(()),
        _ => Err(Error::InvalidVars(
            "derivatives are taken with respect to symbols; got an expression that is not one".into(),
        )),
    }
}

/// The nodes under `roots` in topological order, copied out (the walk builds new nodes,
/// which needs the pool's write lock), and each node's position.
fn nodes_under(pool: &ExprPool, roots: &[ExprId]) -> (Vec<ExprId>, Vec<Node>, HashMap<ExprId, usize>) {
    let view = pool.read();
    let (order, index) = topological_order(&view, roots);
    let nodes = order.iter().map(|&id| view.node(id).clone()).collect();
    (order, nodes, index)
}

/// `∂root/∂var` for each root (forward mode; work shared across roots).
///
/// ```
/// use alkahest_core::{ExprPool, UnaryOp, BinaryOp, diff::derivative};
/// let pool = ExprPool::new();
/// let x = pool.symbol("x").unwrap();
/// let f = pool.unary(UnaryOp::Sin, x).unwrap();
/// let d = derivative(&pool, &[f], x).unwrap();
/// assert_eq!(d, vec![Some(pool.unary(UnaryOp::Cos, x).unwrap())]);
/// ```
pub fn derivative(pool: &ExprPool, roots: &[ExprId], var: ExprId) -> Result<Vec<Deriv>> {
    check_symbol(pool, var)?;
    let rules = Rules { pool };
    let (order, nodes, index) = nodes_under(pool, roots);
    let one = pool.constant(1.0)?;
    let mut d: Vec<Deriv> = Vec::with_capacity(order.len());
    let mut child = Vec::with_capacity(3);
    for (&id, node) in order.iter().zip(&nodes) {
        let di = match node {
            Node::Symbol(_) => (id == var).then_some(one),
            _ => {
                child.clear();
                child.extend(node.children().iter().map(|c| d[index[c]]));
                rules.forward(id, node, &child)?
            }
        };
        d.push(di);
    }
    Ok(roots.iter().map(|r| d[index[r]]).collect())
}

/// `∂root/∂vars[i]` for each variable (reverse mode: one backward sweep whatever the
/// number of variables).
///
/// ```
/// use alkahest_core::{ExprPool, BinaryOp, diff::gradient};
/// let pool = ExprPool::new();
/// let (x, y) = (pool.symbol("x").unwrap(), pool.symbol("y").unwrap());
/// let f = pool.binary(BinaryOp::Mul, x, y).unwrap();
/// assert_eq!(gradient(&pool, f, &[x, y]).unwrap(), vec![Some(y), Some(x)]);
/// ```
pub fn gradient(pool: &ExprPool, root: ExprId, vars: &[ExprId]) -> Result<Vec<Deriv>> {
    for &v in vars {
        check_symbol(pool, v)?;
    }
    let rules = Rules { pool };
    let (order, nodes, index) = nodes_under(pool, &[root]);
    // Only nodes that depend on a variable carry an adjoint.
    let mut active = vec![false; order.len()];
    for (i, (id, node)) in order.iter().zip(&nodes).enumerate() {
        active[i] = match node {
            Node::Symbol(_) => vars.contains(id),
            _ => node.children().iter().any(|c| active[index[c]]),
        };
    }
    let mut adjoint: Vec<Deriv> = vec![None; order.len()];
    let top = index[&root];
    if active[top] {
        adjoint[top] = Some(pool.constant(1.0)?);
    }
    for i in (0..order.len()).rev() {
        let Some(seed) = adjoint[i] else { continue };
        let node = &nodes[i];
        for (k, c) in node.children().iter().enumerate() {
            let j = index[c];
            if active[j] {
                let contribution = rules.chain(order[i], node, k, seed)?;
                adjoint[j] = rules.sum(adjoint[j], contribution)?;
            }
        }
    }
    Ok(vars.iter().map(|v| index.get(v).and_then(|&i| adjoint[i])).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{lower, Interpreter, Kernel};

    fn eval(pool: &ExprPool, e: ExprId, vars: &[ExprId], at: &[f64]) -> f64 {
        let f = Interpreter::new(lower(pool, &[e], vars).unwrap());
        let mut out = [0.0];
        f.eval(at, &mut out);
        out[0]
    }

    #[test]
    fn structural_zeros_stay_absent() {
        let pool = ExprPool::new();
        let (x, y) = (pool.symbol("x").unwrap(), pool.symbol("y").unwrap());
        let f = pool.unary(UnaryOp::Floor, x).unwrap();
        let g = pool.binary(BinaryOp::Add, f, y).unwrap();
        assert_eq!(derivative(&pool, &[g], x).unwrap(), vec![None]);
        assert_eq!(gradient(&pool, g, &[x, y]).unwrap(), vec![None, Some(pool.constant(1.0).unwrap())]);
    }

    #[test]
    fn forward_and_reverse_agree_numerically() {
        let pool = ExprPool::new();
        let (x, y) = (pool.symbol("x").unwrap(), pool.symbol("y").unwrap());
        let s = pool.unary(UnaryOp::Sin, x).unwrap();
        let p = pool.binary(BinaryOp::Pow, y, s).unwrap();
        let a = pool.binary(BinaryOp::Atan2, p, x).unwrap();
        let m = pool.binary(BinaryOp::Max, a, y).unwrap();
        let f = pool.binary(BinaryOp::Mul, m, s).unwrap();
        let g = gradient(&pool, f, &[x, y]).unwrap();
        for (k, var) in [x, y].into_iter().enumerate() {
            let fwd = derivative(&pool, &[f], var).unwrap()[0].unwrap();
            let rev = g[k].unwrap();
            let at = [0.7, 1.3];
            let (u, v) = (eval(&pool, fwd, &[x, y], &at), eval(&pool, rev, &[x, y], &at));
            assert!((u - v).abs() <= 1e-14 * u.abs().max(1.0), "{u} vs {v}");
        }
    }

    #[test]
    fn derivative_of_a_deep_chain_is_iterative() {
        let pool = ExprPool::new();
        let x = pool.symbol("x").unwrap();
        let mut e = x;
        for _ in 0..200_000 {
            e = pool.unary(UnaryOp::Sin, e).unwrap();
        }
        assert!(derivative(&pool, &[e], x).unwrap()[0].is_some());
        assert!(gradient(&pool, e, &[x]).unwrap()[0].is_some());
    }

    #[test]
    fn only_symbols_are_variables() {
        let pool = ExprPool::new();
        let x = pool.symbol("x").unwrap();
        let s = pool.unary(UnaryOp::Sin, x).unwrap();
        assert!(matches!(derivative(&pool, &[s], s), Err(Error::InvalidVars(_))));
    }
}
