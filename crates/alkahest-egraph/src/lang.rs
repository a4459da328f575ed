//! The expression language of the e-graph: the pool's nodes (`alkahest_core::pool::Node`),
//! with inputs numbered, and constant folding as the e-graph's analysis.
//!
//! Operation names are the op table's (`add`, `sin`, ...; `where` for selection), so rule
//! patterns read like the tape listing: `(sub (exp ?x) 1)`.

use std::fmt;

use alkahest_core::{BinaryOp, UnaryOp};
use egg::{Analysis, DidMerge, EGraph, FromOp, Id, Language};

/// One e-node.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Math {
    /// Input `k` of the function.
    Var(u32),
    /// A constant (its bits; NaN canonical).
    Const(u64),
    Unary(UnaryOp, [Id; 1]),
    Binary(BinaryOp, [Id; 2]),
    /// `where(cond, then, else)`.
    Select([Id; 3]),
}

impl Math {
    pub fn constant(v: f64) -> Math {
        Math::Const(if v.is_nan() { f64::NAN.to_bits() } else { v.to_bits() })
    }

    /// The operation's name in the op table (`var`, `const` for leaves).
    pub fn op_name(&self) -> &'static str {
        match self {
            Math::Var(_) => "var",
            Math::Const(_) => "const",
            Math::Unary(op, _) => op.name(),
            Math::Binary(op, _) => op.name(),
            Math::Select(_) => "select",
        }
    }
}

/// What distinguishes e-nodes apart from their children.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Var(u32),
    Const(u64),
    Unary(UnaryOp),
    Binary(BinaryOp),
    Select,
}

impl Language for Math {
    type Discriminant = Kind;

    fn discriminant(&self) -> Kind {
        match self {
            Math::Var(k) => Kind::Var(*k),
            Math::Const(b) => Kind::Const(*b),
            Math::Unary(op, _) => Kind::Unary(*op),
            Math::Binary(op, _) => Kind::Binary(*op),
            Math::Select(_) => Kind::Select,
        }
    }

    fn matches(&self, other: &Self) -> bool {
        self.discriminant() == other.discriminant()
    }

    fn children(&self) -> &[Id] {
        match self {
            Math::Var(_) | Math::Const(_) => &[],
            Math::Unary(_, c) => c,
            Math::Binary(_, c) => c,
            Math::Select(c) => c,
        }
    }

    fn children_mut(&mut self) -> &mut [Id] {
        match self {
            Math::Var(_) | Math::Const(_) => &mut [],
            Math::Unary(_, c) => c,
            Math::Binary(_, c) => c,
            Math::Select(c) => c,
        }
    }
}

impl fmt::Display for Math {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Math::Var(k) => write!(f, "v{k}"),
            Math::Const(b) => write!(f, "{}", f64::from_bits(*b)),
            Math::Select(_) => f.write_str("where"),
            other => f.write_str(other.op_name()),
        }
    }
}

/// A rule pattern's operator that is not one.
#[derive(Debug)]
pub struct UnknownOp(pub String);

impl FromOp for Math {
    type Error = UnknownOp;

    fn from_op(op: &str, children: Vec<Id>) -> Result<Self, UnknownOp> {
        let bad = || UnknownOp(format!("{op} with {} arguments", children.len()));
        match children.len() {
            0 => {
                if let Some(k) = op.strip_prefix('v').and_then(|k| k.parse().ok()) {
                    return Ok(Math::Var(k));
                }
                op.parse::<f64>().map(Math::constant).map_err(|_| bad())
            }
            1 => UnaryOp::from_name(op).map(|u| Math::Unary(u, [children[0]])).ok_or_else(bad),
            2 => BinaryOp::from_name(op).map(|b| Math::Binary(b, [children[0], children[1]])).ok_or_else(bad),
            3 if op == "where" => Ok(Math::Select([children[0], children[1], children[2]])),
            _ => Err(bad()),
        }
    }
}

/// Constant folding: a class whose value is a constant holds that constant's node. The
/// value is what every tier computes at run time (the same operations on the same
/// doubles), so folding never changes a result.
#[derive(Default)]
pub struct ConstantFolding;

impl Analysis<Math> for ConstantFolding {
    type Data = Option<u64>;

    fn make(egraph: &mut EGraph<Math, Self>, enode: &Math, _id: Id) -> Option<u64> {
        let value = |id: &Id| egraph[*id].data.map(f64::from_bits);
        let v = match enode {
            Math::Var(_) => return None,
            Math::Const(b) => return Some(*b),
            Math::Unary(op, [a]) => op.eval(value(a)?),
            Math::Binary(op, [a, b]) => op.eval(value(a)?, value(b)?),
            Math::Select([c, a, b]) => {
                let chosen = if value(c)? != 0.0 { a } else { b };
                value(chosen)?
            }
        };
        match Math::constant(v) {
            Math::Const(bits) => Some(bits),
            _ => unreachable!("constant() makes constants"),
        }
    }

    fn merge(&mut self, to: &mut Option<u64>, from: Option<u64>) -> DidMerge {
        // Two constants in one class are equal over the reals; keep the first.
        egg::merge_option(to, from, |_, _| DidMerge(false, false))
    }

    fn modify(egraph: &mut EGraph<Math, Self>, id: Id) {
        if let Some(bits) = egraph[id].data {
            let c = egraph.add(Math::Const(bits));
            egraph.union(id, c);
        }
    }
}
