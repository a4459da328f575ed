//! Canonicalising constructors: the only way the Python API builds nodes.
//!
//! The rewrites are those that never change a result under IEEE 754 arithmetic, signed
//! zeros included (constant folding uses the very functions the interpreter runs):
//! `x + (-0.0)` and `x - 0.0` are `x`, but `x + 0.0` is not (it turns `-0.0` into `+0.0`).
//! Arguments of commutative operations are sorted (constants first, then by id) so that
//! `x + y` and `y + x` are one node.

use crate::error::Result;
use crate::op::{select, BinaryOp, UnaryOp};
use crate::pool::{ExprId, ExprPool, Node};

impl ExprPool {
    /// `op(a)`, folded and simplified.
    pub fn unary(&self, op: UnaryOp, a: ExprId) -> Result<ExprId> {
        let node_a = self.node(a);
        if let Some(v) = node_a.as_const() {
            return self.constant(op.eval(v));
        }
        match (op, &node_a) {
            (UnaryOp::Neg, Node::Unary(UnaryOp::Neg, inner)) => return Ok(*inner),
            (UnaryOp::Abs, Node::Unary(UnaryOp::Neg | UnaryOp::Abs, inner)) => {
                return self.unary(UnaryOp::Abs, *inner)
            }
            _ => {}
        }
        self.intern(Node::Unary(op, a))
    }

    /// `op(a, b)`, folded, simplified and with commutative arguments sorted.
    pub fn binary(&self, op: BinaryOp, a: ExprId, b: ExprId) -> Result<ExprId> {
        use BinaryOp::*;
        let (mut a, mut b) = (a, b);
        let (mut na, mut nb) = (self.node(a), self.node(b));
        if let (Some(x), Some(y)) = (na.as_const(), nb.as_const()) {
            return self.constant(op.eval(x, y));
        }
        if op.is_commutative() && sort_key(b, &nb) < sort_key(a, &na) {
            std::mem::swap(&mut a, &mut b);
            std::mem::swap(&mut na, &mut nb);
        }
        let (ca, cb) = (na.as_const(), nb.as_const());
        let neg_of = |n: &Node| match n {
            Node::Unary(UnaryOp::Neg, inner) => Some(*inner),
            _ => None,
        };
        match op {
            Add if ca.is_some_and(|c| c == 0.0 && c.is_sign_negative()) => return Ok(b),
            // x + (-c) is x - c bit for bit (IEEE defines subtraction so): one node for both.
            Add if ca.is_some_and(|c| c < 0.0) => {
                return self.binary(Sub, b, self.constant(-ca.unwrap_or(0.0))?)
            }
            Add => {
                if let Some(y) = neg_of(&nb) {
                    return self.binary(Sub, a, y);
                }
                if let Some(x) = neg_of(&na) {
                    return self.binary(Sub, b, x);
                }
            }
            Sub if cb.is_some_and(|c| c == 0.0 && c.is_sign_positive()) => return Ok(a),
            Sub if cb.is_some_and(|c| c < 0.0) => {
                return self.binary(Add, a, self.constant(-cb.unwrap_or(0.0))?)
            }
            Sub => {
                if let Some(y) = neg_of(&nb) {
                    return self.binary(Add, a, y);
                }
            }
            Mul if ca == Some(1.0) => return Ok(b),
            Mul if ca == Some(-1.0) => return self.unary(UnaryOp::Neg, b),
            Mul => {
                if let (Some(x), Some(y)) = (neg_of(&na), neg_of(&nb)) {
                    return self.binary(Mul, x, y);
                }
            }
            Div if cb == Some(1.0) => return Ok(a),
            Div if cb == Some(-1.0) => return self.unary(UnaryOp::Neg, a),
            Pow if cb == Some(1.0) => return Ok(a),
            // pow(x, 0) is 1 for every x, NaN included.
            Pow if cb == Some(0.0) => return self.constant(1.0),
            _ => {}
        }
        self.intern(Node::Binary(op, [a, b]))
    }

    /// `where(cond, a, b)`.
    pub fn select(&self, cond: ExprId, a: ExprId, b: ExprId) -> Result<ExprId> {
        if let Some(c) = self.node(cond).as_const() {
            return Ok(if select(c, 1.0, 0.0) != 0.0 { a } else { b });
        }
        if a == b {
            return Ok(a);
        }
        self.intern(Node::Select([cond, a, b]))
    }
}

fn sort_key(id: ExprId, node: &Node) -> (bool, ExprId) {
    (node.as_const().is_none(), id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool_xy() -> (ExprPool, ExprId, ExprId) {
        let p = ExprPool::new();
        let x = p.symbol("x").unwrap();
        let y = p.symbol("y").unwrap();
        (p, x, y)
    }

    #[test]
    fn commutative_arguments_are_sorted() {
        let (p, x, y) = pool_xy();
        assert_eq!(p.binary(BinaryOp::Add, x, y), p.binary(BinaryOp::Add, y, x));
        assert_eq!(p.binary(BinaryOp::Max, x, y), p.binary(BinaryOp::Max, y, x));
        assert_ne!(p.binary(BinaryOp::Sub, x, y), p.binary(BinaryOp::Sub, y, x));
    }

    #[test]
    fn constants_fold_with_runtime_semantics() {
        let (p, _, _) = pool_xy();
        let two = p.constant(2.0).unwrap();
        let three = p.constant(3.0).unwrap();
        let s = p.binary(BinaryOp::Pow, two, three).unwrap();
        assert_eq!(p.node(s).as_const(), Some(8.0));
        let zero = p.constant(0.0).unwrap();
        let d = p.binary(BinaryOp::Div, two, zero).unwrap();
        assert_eq!(p.node(d).as_const(), Some(f64::INFINITY));
        let sin = p.unary(UnaryOp::Sin, three).unwrap();
        assert_eq!(p.node(sin).as_const(), Some(UnaryOp::Sin.eval(3.0)));
    }

    #[test]
    fn identities_that_are_ieee_safe_apply() {
        let (p, x, _) = pool_xy();
        let one = p.constant(1.0).unwrap();
        let zero = p.constant(0.0).unwrap();
        assert_eq!(p.binary(BinaryOp::Mul, x, one).unwrap(), x);
        let minus_zero = p.constant(-0.0).unwrap();
        assert_eq!(p.binary(BinaryOp::Add, minus_zero, x).unwrap(), x);
        assert_eq!(p.binary(BinaryOp::Sub, x, zero).unwrap(), x);
        // x + 0.0 and x - (-0.0) are +0.0 at x = -0.0: not x.
        assert!(matches!(p.node(p.binary(BinaryOp::Add, zero, x).unwrap()), Node::Binary(BinaryOp::Add, _)));
        assert!(matches!(
            p.node(p.binary(BinaryOp::Sub, x, minus_zero).unwrap()),
            Node::Binary(BinaryOp::Sub, _)
        ));
        assert_eq!(p.binary(BinaryOp::Div, x, one).unwrap(), x);
        assert_eq!(p.binary(BinaryOp::Pow, x, zero).unwrap(), one);
        let nx = p.unary(UnaryOp::Neg, x).unwrap();
        assert_eq!(p.unary(UnaryOp::Neg, nx).unwrap(), x);
        // x*0 is not folded: NaN*0 and inf*0 are NaN.
        let m = p.binary(BinaryOp::Mul, x, zero).unwrap();
        assert!(matches!(p.node(m), Node::Binary(BinaryOp::Mul, _)));
    }

    #[test]
    fn adding_a_negative_constant_is_subtracting() {
        let (p, x, _) = pool_xy();
        let c = |v| p.constant(v).unwrap();
        let sub = p.binary(BinaryOp::Sub, x, c(2.5)).unwrap();
        assert_eq!(p.binary(BinaryOp::Add, x, c(-2.5)).unwrap(), sub);
        assert_eq!(p.binary(BinaryOp::Add, c(-2.5), x).unwrap(), sub);
        let add = p.binary(BinaryOp::Add, x, c(2.5)).unwrap();
        assert_eq!(p.binary(BinaryOp::Sub, x, c(-2.5)).unwrap(), add);
        let inf = p.binary(BinaryOp::Add, x, c(f64::NEG_INFINITY)).unwrap();
        assert_eq!(p.node(inf), Node::Binary(BinaryOp::Sub, [x, c(f64::INFINITY)]));
    }

    #[test]
    fn negation_folds_into_subtraction() {
        let (p, x, y) = pool_xy();
        let ny = p.unary(UnaryOp::Neg, y).unwrap();
        assert_eq!(p.binary(BinaryOp::Add, x, ny), p.binary(BinaryOp::Sub, x, y));
        assert_eq!(p.binary(BinaryOp::Sub, x, ny), p.binary(BinaryOp::Add, x, y));
    }

    #[test]
    fn select_with_constant_condition_picks_a_branch() {
        let (p, x, y) = pool_xy();
        let one = p.constant(1.0).unwrap();
        let zero = p.constant(0.0).unwrap();
        assert_eq!(p.select(one, x, y).unwrap(), x);
        assert_eq!(p.select(zero, x, y).unwrap(), y);
        assert_eq!(p.select(x, y, y).unwrap(), y);
    }
}
