//! The tape: the linear SSA program every tier reads, and `lower`, which builds it.
//!
//! Instruction `k` defines value `k`. The first `n_inputs` instructions are the inputs
//! in order (so value `i < n_inputs` is input `i`), constants follow as they are first
//! needed. Lowering visits only what the outputs reach (dead code never enters), shares
//! every repeated subexpression (hash-consing already did; the tape's own table catches
//! the ones lowering creates), expands integer powers into multiplications (compensated
//! with fused multiply-adds beyond the smallest, see `powers`) and records each value's
//! last use. Every walk is iterative.

use std::collections::HashMap;
use std::fmt;

use crate::error::{Error, Result};
use crate::op::{BinaryOp, UnaryOp};
use crate::pool::{ExprId, ExprPool, Node, PoolView};
pub use crate::powers::Powers;
use crate::print::format_const;

/// Index of a value (= of the instruction that defines it).
pub type ValueId = u32;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Instr {
    Input(u32),
    /// Index into [`Tape::consts`].
    Const(u32),
    Unary(UnaryOp, ValueId),
    Binary(BinaryOp, ValueId, ValueId),
    /// `where(cond, a, b)`.
    Select(ValueId, ValueId, ValueId),
    /// `a * b + c` with one rounding (IEEE 754 fusedMultiplyAdd). Lowering emits it for
    /// accurate integer powers; every tier computes it exactly.
    Fma(ValueId, ValueId, ValueId),
}

/// Names of the kinds of computing instructions, in the order of
/// [`Tape::op_count_vector`]: the unary ops, the binary ops, `"select"`, `"fma"`.
pub fn op_kinds() -> Vec<&'static str> {
    crate::op::table().iter().map(|info| info.name).collect()
}

impl Instr {
    /// Index of the instruction's kind in [`op_kinds`]; None for inputs and constants.
    pub fn op_kind(&self) -> Option<usize> {
        let (nu, nb) = (UnaryOp::ALL.len(), BinaryOp::ALL.len());
        match *self {
            Instr::Input(_) | Instr::Const(_) => None,
            Instr::Unary(op, _) => Some(op as usize),
            Instr::Binary(op, ..) => Some(nu + op as usize),
            Instr::Select(..) => Some(nu + nb),
            Instr::Fma(..) => Some(nu + nb + 1),
        }
    }

    /// Values read by the instruction.
    pub fn operands(&self) -> impl Iterator<Item = ValueId> {
        let (n, ops) = match *self {
            Instr::Input(_) | Instr::Const(_) => (0, [0; 3]),
            Instr::Unary(_, a) => (1, [a, 0, 0]),
            Instr::Binary(_, a, b) => (2, [a, b, 0]),
            Instr::Select(c, a, b) | Instr::Fma(c, a, b) => (3, [c, a, b]),
        };
        ops.into_iter().take(n)
    }

    /// The name of the operation as it appears in `Tape::instructions` in Python.
    pub fn op_name(&self) -> &'static str {
        match self {
            Instr::Input(_) => "input",
            Instr::Const(_) => "const",
            Instr::Unary(op, _) => op.name(),
            Instr::Binary(op, ..) => op.name(),
            Instr::Select(..) => "select",
            Instr::Fma(..) => "fma",
        }
    }
}

/// Key for sharing instructions: like `Instr`, but hashable (consts by bits).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum InstrKey {
    Const(u64),
    Unary(UnaryOp, ValueId),
    Binary(BinaryOp, ValueId, ValueId),
    Select(ValueId, ValueId, ValueId),
    Fma(ValueId, ValueId, ValueId),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Tape {
    pub n_inputs: usize,
    pub consts: Vec<f64>,
    pub instrs: Vec<Instr>,
    pub outputs: Vec<ValueId>,
    /// For each value, the index of the last instruction that reads it, or
    /// `instrs.len()` if an output needs it to the end. Unread values point at themselves.
    pub last_use: Vec<u32>,
}

impl Tape {
    pub fn n_outputs(&self) -> usize {
        self.outputs.len()
    }

    /// Number of instructions that compute something (not inputs or constants).
    pub fn n_ops(&self) -> usize {
        self.instrs.iter().filter(|i| !matches!(i, Instr::Input(_) | Instr::Const(_))).count()
    }

    /// How many instructions of each kind compute something, indexed like
    /// [`op_kinds`]: what the cost model prices.
    pub fn op_count_vector(&self) -> Vec<u32> {
        let mut counts = vec![0u32; op_kinds().len()];
        for k in self.instrs.iter().filter_map(Instr::op_kind) {
            counts[k] += 1;
        }
        counts
    }

    /// The nonzero entries of [`Tape::op_count_vector`] by op name (`"add"`, `"sin"`, ...).
    pub fn op_counts(&self) -> Vec<(&'static str, usize)> {
        let names = op_kinds();
        let counts = self.op_count_vector();
        names.into_iter().zip(counts).filter(|(_, c)| *c > 0).map(|(n, c)| (n, c as usize)).collect()
    }

    /// A tape from its parts (already checked: operands defined before use, inputs
    /// first); computes `last_use`.
    pub fn from_parts(n_inputs: usize, consts: Vec<f64>, instrs: Vec<Instr>, outputs: Vec<ValueId>) -> Tape {
        let mut tape = Tape { n_inputs, consts, instrs, outputs, last_use: vec![] };
        tape.compute_last_use();
        tape
    }

    pub(crate) fn compute_last_use(&mut self) {
        let n = self.instrs.len();
        self.last_use = (0..n as u32).collect();
        for (k, ins) in self.instrs.iter().enumerate() {
            for v in ins.operands() {
                self.last_use[v as usize] = k as u32;
            }
        }
        for &o in &self.outputs {
            self.last_use[o as usize] = n as u32;
        }
    }
}

impl fmt::Display for Tape {
    /// One instruction per line: `%3 = sin %1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (k, ins) in self.instrs.iter().enumerate() {
            write!(f, "%{k} = ")?;
            match *ins {
                Instr::Input(i) => write!(f, "input {i}")?,
                Instr::Const(c) => write!(f, "const {}", format_const(self.consts[c as usize]))?,
                _ => {
                    write!(f, "{}", ins.op_name())?;
                    for (j, v) in ins.operands().enumerate() {
                        write!(f, "{}%{v}", if j == 0 { " " } else { ", " })?;
                    }
                }
            }
            writeln!(f)?;
        }
        let outs: Vec<String> = self.outputs.iter().map(|o| format!("%{o}")).collect();
        write!(f, "return {}", outs.join(", "))
    }
}

pub(crate) struct Builder {
    tape: Tape,
    pub(crate) powers: Powers,
    shared: HashMap<InstrKey, ValueId>,
}

impl Builder {
    pub(crate) fn push(&mut self, key: InstrKey) -> ValueId {
        if let Some(&v) = self.shared.get(&key) {
            return v;
        }
        let instr = match key {
            InstrKey::Const(bits) => {
                self.tape.consts.push(f64::from_bits(bits));
                Instr::Const(self.tape.consts.len() as u32 - 1)
            }
            InstrKey::Unary(op, a) => Instr::Unary(op, a),
            InstrKey::Binary(op, a, b) => Instr::Binary(op, a, b),
            InstrKey::Select(c, a, b) => Instr::Select(c, a, b),
            InstrKey::Fma(a, b, c) => Instr::Fma(a, b, c),
        };
        let v = self.tape.instrs.len() as ValueId;
        self.tape.instrs.push(instr);
        self.shared.insert(key, v);
        v
    }

    pub(crate) fn constant(&mut self, x: f64) -> ValueId {
        self.push(InstrKey::Const(x.to_bits()))
    }

    fn lower_node(&mut self, view: &PoolView<'_>, node: &Node, value_of: &[ValueId]) -> ValueId {
        let v = |id: &ExprId| value_of[id.index()];
        match node {
            Node::Symbol(_) => unreachable!("symbols are bound before the walk"),
            Node::Const(_) => self.constant(node.as_const().unwrap_or(f64::NAN)),
            Node::Unary(op, a) => self.push(InstrKey::Unary(*op, v(a))),
            Node::Binary(BinaryOp::Pow, [a, b]) => match integer_exponent(view, node) {
                Some(n) => crate::powers::integer_power(self, v(a), n),
                None => self.push(InstrKey::Binary(BinaryOp::Pow, v(a), v(b))),
            },
            Node::Binary(op, [a, b]) => self.push(InstrKey::Binary(*op, v(a), v(b))),
            Node::Select([c, a, b]) => self.push(InstrKey::Select(v(c), v(a), v(b))),
        }
    }
}

/// `n` if `node` is `x**n` for an integer constant `n` (then `n` is never a tape value).
fn integer_exponent(view: &PoolView<'_>, node: &Node) -> Option<i64> {
    match node {
        Node::Binary(BinaryOp::Pow, [_, b]) => match view.node(*b).as_const() {
            Some(e) if e == e.trunc() && e.abs() <= i32::MAX as f64 => Some(e as i64),
            _ => None,
        },
        _ => None,
    }
}

/// The children lowering evaluates: all of them, except an integer exponent.
fn lowered_children<'a>(view: &PoolView<'_>, node: &'a Node) -> &'a [ExprId] {
    let children = node.children();
    if integer_exponent(view, node).is_some() {
        &children[..1]
    } else {
        children
    }
}

const UNVISITED: ValueId = ValueId::MAX;

/// Lowers `outputs` (expressions of `pool`) to a tape whose inputs are `inputs`, in order.
///
/// Errors if an input is not a symbol, appears twice, or if an output uses a symbol that
/// is not among the inputs.
pub fn lower(pool: &ExprPool, outputs: &[ExprId], inputs: &[ExprId]) -> Result<Tape> {
    lower_with(pool, outputs, inputs, Powers::Compensated)
}

/// [`lower`] as `fastmath=True` allows: integer powers as plain multiplication chains,
/// and sums and products regrouped so that terms they share are computed once
/// ([`crate::nary`]). Results may differ from [`lower`]'s in the last digits (more where
/// a sum cancels).
pub fn lower_fastmath(pool: &ExprPool, outputs: &[ExprId], inputs: &[ExprId]) -> Result<Tape> {
    Ok(crate::nary::share_sums_and_products(&lower_with(pool, outputs, inputs, Powers::Plain)?))
}

/// [`lower`], with integer powers computed as `powers` says.
pub fn lower_with(pool: &ExprPool, outputs: &[ExprId], inputs: &[ExprId], powers: Powers) -> Result<Tape> {
    let view = pool.read();
    let mut value_of = vec![UNVISITED; view.len()];
    let mut b = Builder {
        tape: Tape {
            n_inputs: inputs.len(),
            consts: vec![],
            instrs: vec![],
            outputs: vec![],
            last_use: vec![],
        },
        shared: HashMap::new(),
        powers,
    };
    for (i, &id) in inputs.iter().enumerate() {
        match view.node(id) {
            Node::Symbol(name) => {
                if value_of[id.index()] != UNVISITED {
                    return Err(Error::InvalidVars(format!(
                        "symbol '{name}' appears twice in vars; list each input once"
                    )));
                }
                value_of[id.index()] = i as ValueId;
                b.tape.instrs.push(Instr::Input(i as u32));
            }
            _ => {
                return Err(Error::InvalidVars(format!(
                    "vars[{i}] is not a symbol; vars must list the symbols the inputs bind, \
                     e.g. [x, y]"
                )))
            }
        }
    }
    // Iterative post-order: a node is lowered once all its children have values.
    let mut stack: Vec<(ExprId, bool)> = Vec::new();
    for &out in outputs {
        stack.push((out, false));
        while let Some((id, children_done)) = stack.pop() {
            if value_of[id.index()] != UNVISITED {
                continue;
            }
            let node = view.node(id);
            if let Node::Symbol(name) = node {
                return Err(Error::UnboundSymbol(format!(
                    "the expression uses symbol '{name}', which is not in vars; \
                     add it to vars (or substitute a value for it)"
                )));
            }
            if children_done {
                value_of[id.index()] = b.lower_node(&view, node, &value_of);
            } else {
                stack.push((id, true));
                for &c in lowered_children(&view, node).iter().rev() {
                    if value_of[c.index()] == UNVISITED {
                        stack.push((c, false));
                    }
                }
            }
        }
        b.tape.outputs.push(value_of[out.index()]);
    }
    b.tape.compute_last_use();
    Ok(b.tape)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowering_shares_and_drops_dead_code() {
        let p = ExprPool::new();
        let x = p.symbol("x").unwrap();
        let y = p.symbol("y").unwrap();
        let s = p.unary(UnaryOp::Sin, x).unwrap();
        let a = p.binary(BinaryOp::Add, s, y).unwrap();
        let m = p.binary(BinaryOp::Mul, s, y).unwrap();
        let _dead = p.unary(UnaryOp::Cos, x).unwrap();
        let t = lower(&p, &[a, m], &[x, y]).unwrap();
        assert_eq!(t.n_ops(), 3, "{t}");
        assert_eq!(t.instrs[0], Instr::Input(0));
        assert_eq!(t.instrs[1], Instr::Input(1));
        assert_eq!(t.last_use[2], 4, "sin is last read by the mul:\n{t}");
        assert_eq!(t.last_use[3], 5, "outputs live to the end");
    }

    #[test]
    fn op_counts_name_every_computing_instruction() {
        let p = ExprPool::new();
        let x = p.symbol("x").unwrap();
        let s = p.unary(UnaryOp::Sin, x).unwrap();
        let a = p.binary(BinaryOp::Add, s, x).unwrap();
        let m = p.binary(BinaryOp::Mul, a, s).unwrap();
        let t = lower(&p, &[m], &[x]).unwrap();
        let mut counts = t.op_counts();
        counts.sort();
        assert_eq!(counts, vec![("add", 1), ("mul", 1), ("sin", 1)]);
        let kinds = op_kinds();
        assert_eq!(kinds.len(), UnaryOp::ALL.len() + BinaryOp::ALL.len() + 2);
        assert_eq!(t.op_count_vector().iter().sum::<u32>() as usize, t.n_ops());
        for ins in &t.instrs {
            if let Some(k) = ins.op_kind() {
                assert_eq!(kinds[k], ins.op_name());
            }
        }
    }

    #[test]
    fn integer_powers_become_multiplications() {
        let p = ExprPool::new();
        let x = p.symbol("x").unwrap();
        let c = |v| p.constant(v).unwrap();
        let pow = |n: f64| p.binary(BinaryOp::Pow, x, c(n)).unwrap();
        let t = lower(&p, &[pow(3.0)], &[x]).unwrap();
        assert!(t.consts.is_empty(), "the exponent is not a value:\n{t}");
        assert_eq!(t.n_ops(), 2, "x^3 = x^2 * x:\n{t}");
        for n in [5.0, -2.0, 1000.0, -(2f64.powi(31)) + 1.0] {
            let t = lower(&p, &[pow(n)], &[x]).unwrap();
            assert!(t.instrs.iter().all(|i| !matches!(i, Instr::Binary(BinaryOp::Pow, ..))), "{t}");
            assert!(t.instrs.iter().any(|i| matches!(i, Instr::Fma(..))), "compensated:\n{t}");
            assert!(matches!(t.instrs.last(), Some(Instr::Select(..))), "{t}");
            assert!(t.n_ops() < 500, "{} ops for x**{n}", t.n_ops());
        }
        // Powers of one base share their squares.
        let both = lower(&p, &[pow(4.0), pow(5.0)], &[x]).unwrap();
        let five = lower(&p, &[pow(5.0)], &[x]).unwrap();
        assert!(both.n_ops() < five.n_ops() + 4, "{both}");
        // The plain chain: x^5 = x * (x^2)^2, x^-2 = 1 / (x*x).
        let plain = |n| lower_with(&p, &[pow(n)], &[x], Powers::Plain).unwrap();
        assert_eq!(plain(5.0).n_ops(), 3, "{}", plain(5.0));
        assert!(matches!(plain(-2.0).instrs.last(), Some(Instr::Binary(BinaryOp::Div, ..))));
        assert!(plain(1000.0).instrs.iter().all(|i| !matches!(i, Instr::Fma(..))));
    }

    #[test]
    fn bad_vars_are_reported() {
        let p = ExprPool::new();
        let x = p.symbol("x").unwrap();
        let y = p.symbol("y").unwrap();
        let s = p.binary(BinaryOp::Add, x, y).unwrap();
        assert!(matches!(lower(&p, &[s], &[x]), Err(Error::UnboundSymbol(m)) if m.contains("'y'")));
        assert!(matches!(lower(&p, &[s], &[x, x]), Err(Error::InvalidVars(_))));
        assert!(matches!(lower(&p, &[s], &[x, s]), Err(Error::InvalidVars(_))));
    }

    #[test]
    fn a_chain_100k_deep_lowers() {
        let p = ExprPool::new();
        let x = p.symbol("x").unwrap();
        let mut e = x;
        for i in 0..100_000 {
            let c = p.constant((i % 7) as f64 + 0.5).unwrap();
            e = p.binary(BinaryOp::Add, e, c).unwrap();
        }
        let t = lower(&p, &[e], &[x]).unwrap();
        assert_eq!(t.n_ops(), 100_000);
    }
}
