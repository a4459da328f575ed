//! Sums and products shared across terms: `fastmath=True` only, since it reassociates.
//!
//! Hash-consing shares identical binary nodes, but `a*b*c*d` and `(c*b)*(a*e)` share
//! nothing. [`share_sums_and_products`] flattens a tape's chains of additions and of
//! multiplications into n-ary sums and products (`a - b` is the sum of `a` and `-b`,
//! `-a` in a sum is `a` subtracted, `a / b` is the product of `a` and `1/b`). A small sum
//! or product read in several places is flattened into each reader too, and values are
//! numbered by what they compute (a product is the multiset of its factors), so the same
//! product built in two orders is one value. It then finds the terms several sums or
//! products have in common (greedily, as `sympy.cse` does), makes each common part a sum
//! or product of its own, and writes back what the outputs need as binary operations in
//! one canonical order. Regrouping changes the rounding of the result, which the
//! project's semantics allow only under `fastmath`.
//!
//! On SymPy's equations of motion of a pendulum on a cart (`benchmarks/cse.py`), the
//! tape is 0.91-1.05 times as long as after `sympy.cse` (1.07-1.24 without this pass),
//! and the pass costs ~4-5 µs per operation, linear in the tape.
//!
//! ```
//! use alkahest_core::{lower, nary, BinaryOp, ExprPool};
//! let p = ExprPool::new();
//! let [a, b, c, d, e] = ["a", "b", "c", "d", "e"].map(|s| p.symbol(s).unwrap());
//! let mul = |x, y| p.binary(BinaryOp::Mul, x, y).unwrap();
//! let first = mul(mul(mul(a, b), c), d); // ((a*b)*c)*d
//! let second = mul(mul(c, b), mul(a, e)); // (c*b)*(a*e)
//! let tape = lower(&p, &[first, second], &[a, b, c, d, e]).unwrap();
//! assert_eq!(tape.n_ops(), 6);
//! assert_eq!(nary::share_sums_and_products(&tape).n_ops(), 4); // a*b*c once, then *d, *e
//! ```

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::tape::{Instr, Tape, ValueId};
use crate::{BinaryOp, UnaryOp};

/// What a term is: a value of the tape, or a common part found here.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
enum Operand {
    Value(ValueId),
    Part(u32),
}

/// A term of an n-ary sum or product: an operand, subtracted from the sum (divided into
/// the product) when `inverted`. `a - b*c + d` is the sum `{a, d, -(b*c)}`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
struct Term {
    inverted: bool,
    operand: Operand,
}

/// An n-ary sum (`op` is `Add`) or product (`Mul`); `terms` sorted, a multiset (`x*x`
/// has `x` twice).
#[derive(Clone, Debug)]
struct Nary {
    op: BinaryOp,
    terms: Vec<Term>,
}

/// The n-ary kind an operation belongs to, and whether it inverts its second operand.
fn kind(op: BinaryOp) -> Option<(BinaryOp, bool)> {
    match op {
        BinaryOp::Add => Some((BinaryOp::Add, false)),
        BinaryOp::Sub => Some((BinaryOp::Add, true)),
        BinaryOp::Mul => Some((BinaryOp::Mul, false)),
        BinaryOp::Div => Some((BinaryOp::Mul, true)),
        _ => None,
    }
}

/// A value read by several sums (products) is flattened into each of them while it has
/// at most this many terms, none repeated: its sharing is then found again, and sums
/// that hold it split differently (`(a*b)*c` and `(a*c)*b`) still share. Beyond this,
/// copying its terms into every reader would cost more than it finds; a repeated term
/// (`x*x`, shared) stays one value, as a power does, and chains of squares stay chains.
const SHARED_TERMS: usize = 16;

/// `tape` with its sums and products flattened, their common terms computed once.
pub fn share_sums_and_products(tape: &Tape) -> Tape {
    let n = tape.instrs.len();
    // Uses of each value (outputs count), and for a value used once, its user.
    let mut uses = vec![0u32; n];
    let mut user = vec![u32::MAX; n];
    for (k, ins) in tape.instrs.iter().enumerate() {
        for v in ins.operands() {
            uses[v as usize] += 1;
            user[v as usize] = k as u32;
        }
    }
    for &o in &tape.outputs {
        uses[o as usize] += 1;
        user[o as usize] = u32::MAX;
    }
    let op_of = |v: usize| match tape.instrs[v] {
        Instr::Binary(op, ..) => kind(op).map(|(k, _)| k),
        _ => None,
    };
    // A sum inside a sum (a product inside a product) that nothing else reads is part of
    // the outer one; the rest are roots, one n-ary node each.
    let absorbed: Vec<bool> = (0..n)
        .map(|v| {
            op_of(v).is_some() && uses[v] == 1 && user[v] != u32::MAX && op_of(user[v] as usize) == op_of(v)
        })
        .collect();
    // Each root's terms, bottom-up: an absorbed operand's terms move in, a small root's
    // are copied in (SHARED_TERMS), anything else is one term. Values are numbered by what
    // they compute (`rep`): a sum equal to an earlier one as a multiset of terms, or an
    // operation on equal operands, *is* that earlier value, so sums of equal products
    // built in different orders share their terms.
    let mut rep: Vec<ValueId> = (0..n as ValueId).collect();
    let mut by_terms: HashMap<(BinaryOp, Vec<Term>), ValueId> = HashMap::new();
    let mut by_instr: HashMap<Instr, ValueId> = HashMap::new();
    let mut flat: Vec<Vec<Term>> = vec![Vec::new(); n];
    let mut nodes: Vec<Nary> = Vec::new();
    let mut node_of: HashMap<ValueId, usize> = HashMap::new();
    for v in 0..n {
        let (Some(op), Instr::Binary(o, a, b)) = (op_of(v), tape.instrs[v]) else {
            let key = match tape.instrs[v] {
                Instr::Unary(op, a) => Instr::Unary(op, rep[a as usize]),
                Instr::Binary(op, a, b) => Instr::Binary(op, rep[a as usize], rep[b as usize]),
                Instr::Select(c, a, b) => Instr::Select(rep[c as usize], rep[a as usize], rep[b as usize]),
                Instr::Fma(a, b, c) => Instr::Fma(rep[a as usize], rep[b as usize], rep[c as usize]),
                leaf => leaf,
            };
            rep[v] = *by_instr.entry(key).or_insert(v as ValueId);
            continue;
        };
        let flips = kind(o).is_some_and(|(_, flips)| flips);
        let mut terms = Vec::new();
        for (x, inverted) in [(a, false), (b, flips)] {
            let (mut x, mut inverted) = (rep[x as usize] as usize, inverted);
            // `-y` in a sum is `y` subtracted.
            while let (BinaryOp::Add, Instr::Unary(UnaryOp::Neg, y)) = (op, tape.instrs[x]) {
                (x, inverted) = (rep[y as usize] as usize, !inverted);
            }
            let inner = if op_of(x) != Some(op) {
                None
            } else if absorbed[x] {
                Some(std::mem::take(&mut flat[x]))
            } else if flat[x].len() <= SHARED_TERMS && flat[x].windows(2).all(|w| w[0] != w[1]) {
                Some(flat[x].clone())
            } else {
                None
            };
            match inner {
                Some(inner) => {
                    terms.extend(inner.into_iter().map(|t| Term { inverted: t.inverted ^ inverted, ..t }))
                }
                None => terms.push(Term { inverted, operand: Operand::Value(x as ValueId) }),
            }
        }
        if absorbed[v] {
            flat[v] = terms;
            continue;
        }
        terms.sort_unstable();
        match by_terms.entry((op, terms)) {
            Entry::Occupied(seen) => rep[v] = *seen.get(),
            Entry::Vacant(slot) => {
                flat[v] = slot.key().1.clone();
                node_of.insert(v as ValueId, nodes.len());
                nodes.push(Nary { op, terms: slot.key().1.clone() });
                slot.insert(v as ValueId);
            }
        }
    }
    drop(flat);
    // Smaller sums and products first (as sympy.cse orders them): one contained in a
    // larger one then becomes a part of it whole.
    let mut order: Vec<usize> = (0..nodes.len()).collect();
    order.sort_by_key(|&k| (nodes[k].terms.len(), k));
    let mut position = vec![0; order.len()];
    for (new, &old) in order.iter().enumerate() {
        position[old] = new;
    }
    let mut nodes: Vec<Nary> = order.iter().map(|&k| nodes[k].clone()).collect();
    for k in node_of.values_mut() {
        *k = position[*k];
    }
    let roots = nodes.len();
    extract_common_terms(&mut nodes, roots);
    emit(tape, &nodes, &node_of, &rep)
}

/// Multiset intersection of two sorted term lists.
fn common(a: &[Term], b: &[Term]) -> Vec<Term> {
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

/// `a` without the terms of `part` (a sub-multiset of `a`), plus `with`, sorted.
fn replace(a: &[Term], part: &[Term], with: Term) -> Vec<Term> {
    let mut out = Vec::with_capacity(a.len() - part.len() + 1);
    let mut j = 0;
    for &t in a {
        if j < part.len() && part[j] == t {
            j += 1;
        } else {
            out.push(t);
        }
    }
    out.push(with);
    out.sort_unstable();
    out
}

/// Later nodes a node is compared with, per term it holds: bounds the work on terms
/// that thousands of nodes hold (a symbol in every product of a model) to linear.
const CANDIDATES: usize = 256;

/// Greedy common-term extraction over the first `roots` nodes, as `sympy.cse` does it:
/// for each node (the smallest first), the later nodes of its kind that share at least
/// two terms with it, the largest overlap first; the overlap becomes a node of its own
/// (a *part*) that replaces those terms in both, and in every other later node that
/// holds them all.
fn extract_common_terms(nodes: &mut Vec<Nary>, roots: usize) {
    // Which root nodes hold each (kind, term), kept current as terms are replaced.
    let mut holders: HashMap<(BinaryOp, Term), BTreeSet<usize>> = HashMap::new();
    for (k, node) in nodes.iter().enumerate() {
        for &t in &node.terms {
            holders.entry((node.op, t)).or_default().insert(k);
        }
    }
    let mut parts: HashMap<(BinaryOp, Vec<Term>), u32> = HashMap::new();
    for i in 0..roots {
        while nodes[i].terms.len() >= 2 {
            let op = nodes[i].op;
            let mut counts: BTreeMap<usize, usize> = BTreeMap::new();
            let mut distinct = nodes[i].terms.clone();
            distinct.dedup();
            for t in &distinct {
                for &j in holders.get(&(op, *t)).into_iter().flat_map(|h| h.range(i + 1..).take(CANDIDATES)) {
                    *counts.entry(j).or_default() += 1;
                }
            }
            let best = counts.iter().filter(|&(_, &c)| c >= 2).max_by_key(|&(&j, &c)| (c, usize::MAX - j));
            let Some((&j, _)) = best else { break };
            let shared = common(&nodes[i].terms, &nodes[j].terms);
            // A part of inverted terms only (`-b - c`) is made positive (`b + c`) and read
            // inverted: no operation is spent on a zero or a one to start from.
            let inverted = shared.iter().all(|t| t.inverted);
            let mut positive = shared.clone();
            for t in positive.iter_mut() {
                t.inverted ^= inverted;
            }
            let part = *parts.entry((op, positive.clone())).or_insert_with(|| {
                nodes.push(Nary { op, terms: positive });
                (nodes.len() - 1) as u32
            });
            let part = Term { inverted, operand: Operand::Part(part) };
            // Every candidate holding all of the shared terms reads the part too.
            let mut targets = vec![i, j];
            targets.extend(
                counts
                    .iter()
                    .filter(|&(&k, &c)| {
                        k != j && c >= 2 && common(&nodes[k].terms, &shared).len() == shared.len()
                    })
                    .map(|(&k, _)| k),
            );
            for k in targets {
                let old = std::mem::take(&mut nodes[k].terms);
                let new = replace(&old, &shared, part);
                for t in &old {
                    if let Some(h) = holders.get_mut(&(op, *t)) {
                        h.remove(&k);
                    }
                }
                for &t in &new {
                    holders.entry((op, t)).or_default().insert(k);
                }
                nodes[k].terms = new;
            }
        }
    }
}

/// The tape being written: identical operations are made once.
struct Writer {
    out: Tape,
    seen: HashMap<Instr, ValueId>,
}

impl Writer {
    fn push(&mut self, ins: Instr) -> ValueId {
        let key = match ins {
            Instr::Binary(op @ (BinaryOp::Add | BinaryOp::Mul), a, b) if b < a => Instr::Binary(op, b, a),
            other => other,
        };
        let out = &mut self.out;
        *self.seen.entry(key).or_insert_with(|| {
            out.instrs.push(key);
            (out.instrs.len() - 1) as ValueId
        })
    }

    /// `op` over `operands` (sorted), folded left; None when there are none.
    fn fold(&mut self, op: BinaryOp, mut operands: Vec<ValueId>) -> Option<ValueId> {
        operands.sort_unstable();
        let (&first, rest) = operands.split_first()?;
        Some(rest.iter().fold(first, |acc, &x| self.push(Instr::Binary(op, acc, x))))
    }
}

/// The values the outputs need once sums and products read their terms: a root reads
/// its node's terms (through parts), anything else its operands.
fn needed(tape: &Tape, nodes: &[Nary], node_of: &HashMap<ValueId, usize>, rep: &[ValueId]) -> Vec<bool> {
    let mut needed = vec![false; tape.instrs.len()];
    let mut part_seen = vec![false; nodes.len()];
    let mut values: Vec<ValueId> = tape.outputs.clone();
    let mut parts: Vec<usize> = Vec::new();
    loop {
        if let Some(p) = parts.pop() {
            for t in &nodes[p].terms {
                match t.operand {
                    Operand::Value(x) => values.push(x),
                    Operand::Part(q) if !part_seen[q as usize] => {
                        part_seen[q as usize] = true;
                        parts.push(q as usize);
                    }
                    Operand::Part(_) => {}
                }
            }
        } else if let Some(v) = values.pop() {
            let v = rep[v as usize];
            if std::mem::replace(&mut needed[v as usize], true) {
                continue;
            }
            match node_of.get(&v) {
                Some(&k) => {
                    part_seen[k] = true;
                    parts.push(k);
                }
                None => values.extend(tape.instrs[v as usize].operands()),
            }
        } else {
            return needed;
        }
    }
}

/// Writes the tape again, in its order, with what the outputs need: roots as their n-ary
/// nodes (parts first), everything else copied. A sum is written as (its terms) - (its
/// inverted terms), a product as (its factors) / (its inverted factors), each folded left
/// over its operands in the order of their new values.
fn emit(tape: &Tape, nodes: &[Nary], node_of: &HashMap<ValueId, usize>, rep: &[ValueId]) -> Tape {
    let mut w = Writer {
        out: Tape {
            n_inputs: tape.n_inputs,
            consts: tape.consts.clone(),
            instrs: Vec::with_capacity(tape.instrs.len()),
            outputs: Vec::new(),
            last_use: Vec::new(),
        },
        seen: HashMap::new(),
    };
    let needed = needed(tape, nodes, node_of, rep);
    let mut new_of = vec![ValueId::MAX; tape.instrs.len()];
    let mut part_value: Vec<Option<ValueId>> = vec![None; nodes.len()];
    for (v, ins) in tape.instrs.iter().enumerate() {
        // Inputs stay first and in order, needed or not.
        if !needed[v] && !matches!(ins, Instr::Input(_)) {
            continue;
        }
        let map = |x: ValueId| new_of[rep[x as usize] as usize];
        new_of[v] = match node_of.get(&(v as ValueId)) {
            Some(&k) => {
                // Parts this node needs, innermost first (an explicit stack: parts nest).
                let mut stack = vec![(k, false)];
                while let Some((p, ready)) = stack.pop() {
                    if part_value[p].is_some() {
                        continue;
                    }
                    if !ready {
                        stack.push((p, true));
                        stack.extend(nodes[p].terms.iter().filter_map(|t| match t.operand {
                            Operand::Part(q) => Some((q as usize, false)),
                            Operand::Value(_) => None,
                        }));
                        continue;
                    }
                    let operands = |inverted: bool| -> Vec<ValueId> {
                        let of = |t: &Term| match t.operand {
                            Operand::Value(x) => new_of[x as usize],
                            Operand::Part(q) => part_value[q as usize].expect("parts come first"),
                        };
                        nodes[p].terms.iter().filter(|t| t.inverted == inverted).map(of).collect()
                    };
                    let (plus, minus) = (operands(false), operands(true));
                    let op = nodes[p].op;
                    // Every node keeps a term that is not inverted: a root's first operand,
                    // and a part of inverted terms only is made positive (extract_common_terms).
                    let inverse = if op == BinaryOp::Add { BinaryOp::Sub } else { BinaryOp::Div };
                    part_value[p] = Some(match (w.fold(op, plus), w.fold(op, minus)) {
                        (Some(a), None) => a,
                        (Some(a), Some(b)) => w.push(Instr::Binary(inverse, a, b)),
                        // Only a sum can lose its last positive term (`-a - b`, read as
                        // `-(a + b)`); products keep the first factor they were written with.
                        (None, Some(b)) if op == BinaryOp::Add => w.push(Instr::Unary(UnaryOp::Neg, b)),
                        _ => unreachable!("every product keeps a factor that is not inverted"),
                    });
                }
                part_value[k].expect("just made")
            }
            None => w.push(match *ins {
                Instr::Unary(op, a) => Instr::Unary(op, map(a)),
                Instr::Binary(op, a, b) => Instr::Binary(op, map(a), map(b)),
                Instr::Select(c, a, b) => Instr::Select(map(c), map(a), map(b)),
                Instr::Fma(a, b, c) => Instr::Fma(map(a), map(b), map(c)),
                leaf => leaf,
            }),
        };
    }
    let mut out = w.out;
    out.outputs = tape.outputs.iter().map(|&o| new_of[rep[o as usize] as usize]).collect();
    out.compute_last_use();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{lower, ExprId, ExprPool, Interpreter, Kernel};

    fn symbols(p: &ExprPool) -> [ExprId; 4] {
        ["w", "x", "y", "z"].map(|s| p.symbol(s).unwrap())
    }

    /// Both tapes on small integers, where every sum and product is exact: any regrouping
    /// must give the same numbers.
    fn same_on_integers(a: &Tape, b: &Tape) {
        let (fa, fb) = (Interpreter::new(a.clone()), Interpreter::new(b.clone()));
        let (mut oa, mut ob) = (vec![0.0; a.n_outputs()], vec![0.0; b.n_outputs()]);
        for args in [[1.0, 2.0, 3.0, 4.0], [-3.0, 5.0, 0.0, 7.0], [2.0, -1.0, 6.0, -8.0]] {
            fa.eval(&args, &mut oa);
            fb.eval(&args, &mut ob);
            assert_eq!(oa, ob, "{a}\n{b}");
        }
    }

    #[test]
    fn differences_share_their_common_terms() {
        let p = ExprPool::new();
        let [w, x, y, z] = symbols(&p);
        let (add, sub) =
            (|a, b| p.binary(BinaryOp::Add, a, b).unwrap(), |a, b| p.binary(BinaryOp::Sub, a, b).unwrap());
        // x - y + z and z - y + w share z - y; x - y - z and w - y - z share -(y + z).
        let outs = [add(sub(x, y), z), add(sub(z, y), w), sub(sub(x, y), z), sub(sub(w, y), z)];
        let tape = lower(&p, &outs, &[w, x, y, z]).unwrap();
        let shared = share_sums_and_products(&tape);
        assert_eq!((tape.n_ops(), shared.n_ops()), (7, 6), "{shared}");
        same_on_integers(&tape, &shared);
        // w - y - z and x - y - z share -(y + z): made as y + z, then subtracted.
        let outs = [sub(sub(w, y), z), sub(sub(x, y), z)];
        let tape = lower(&p, &outs, &[w, x, y, z]).unwrap();
        let shared = share_sums_and_products(&tape);
        assert_eq!((tape.n_ops(), shared.n_ops()), (4, 3), "{shared}");
        assert!(shared.consts.is_empty(), "no zero to start from: {shared}");
        same_on_integers(&tape, &shared);
    }

    #[test]
    fn quotients_share_their_common_factors() {
        let p = ExprPool::new();
        let [w, x, y, z] = symbols(&p);
        let (mul, div) =
            (|a, b| p.binary(BinaryOp::Mul, a, b).unwrap(), |a, b| p.binary(BinaryOp::Div, a, b).unwrap());
        // x/y*z and w*z/y share z/y.
        let outs = [mul(div(x, y), z), div(mul(w, z), y)];
        let tape = lower(&p, &outs, &[w, x, y, z]).unwrap();
        let shared = share_sums_and_products(&tape);
        assert_eq!((tape.n_ops(), shared.n_ops()), (4, 3), "{shared}");
    }

    #[test]
    fn products_split_differently_still_share() {
        let p = ExprPool::new();
        let [w, x, y, z] = symbols(&p);
        let mul = |a, b| p.binary(BinaryOp::Mul, a, b).unwrap();
        let sin = |a| p.unary(UnaryOp::Sin, a).unwrap();
        // x*y is read by sin and by a product, x*z by another: (x*y)*z and (x*z)*y are
        // one product, and (x*y)*w shares x*y.
        let (xy, xz) = (mul(x, y), mul(x, z));
        let outs = [sin(xy), mul(xy, z), mul(xz, y), mul(sin(xz), mul(xy, w))];
        let tape = lower(&p, &outs, &[w, x, y, z]).unwrap();
        let shared = share_sums_and_products(&tape);
        // x*y, x*z, (x*y)*z, sin twice, (x*y)*w, and the last product.
        assert_eq!((tape.n_ops(), shared.n_ops()), (8, 7), "{shared}");
        assert_eq!(shared.outputs[1], shared.outputs[2], "one product: {shared}");
        same_on_integers(&tape, &shared);
    }

    #[test]
    fn chains_of_squares_stay_chains() {
        let p = ExprPool::new();
        let [w, x, ..] = symbols(&p);
        let mul = |a, b| p.binary(BinaryOp::Mul, a, b).unwrap();
        let mut power = x;
        for _ in 0..10 {
            power = mul(power, power); // x**1024 in ten squarings
        }
        let outs = [mul(power, w), power];
        let tape = lower(&p, &outs, &[w, x]).unwrap();
        let shared = share_sums_and_products(&tape);
        assert_eq!((tape.n_ops(), shared.n_ops()), (11, 11), "{shared}");
    }

    #[test]
    fn sums_of_equal_products_are_equal() {
        let p = ExprPool::new();
        let [w, x, y, z] = symbols(&p);
        let (add, mul) =
            (|a, b| p.binary(BinaryOp::Add, a, b).unwrap(), |a, b| p.binary(BinaryOp::Mul, a, b).unwrap());
        let sin = |a| p.unary(UnaryOp::Sin, a).unwrap();
        // sin(x*y*z + w) twice, the product written in two orders: one sine.
        let first = sin(add(mul(mul(x, y), z), w));
        let second = sin(add(w, mul(mul(z, y), x)));
        let tape = lower(&p, &[first, second], &[w, x, y, z]).unwrap();
        let shared = share_sums_and_products(&tape);
        assert_eq!((tape.n_ops(), shared.n_ops()), (8, 4), "{shared}");
        assert_eq!(shared.outputs[0], shared.outputs[1]);
    }

    #[test]
    fn negations_in_sums_are_subtractions() {
        let p = ExprPool::new();
        let [w, x, y, z] = symbols(&p);
        let (sub, neg) =
            (|a, b| p.binary(BinaryOp::Sub, a, b).unwrap(), |a| p.unary(UnaryOp::Neg, a).unwrap());
        let mul = |a, b| p.binary(BinaryOp::Mul, a, b).unwrap();
        // -(w*x) - y and z - y - w*x: the first is -(w*x + y), sharing w*x + y.
        let outs = [sub(neg(mul(w, x)), y), sub(sub(z, y), mul(w, x))];
        let tape = lower(&p, &outs, &[w, x, y, z]).unwrap();
        let shared = share_sums_and_products(&tape);
        assert_eq!((tape.n_ops(), shared.n_ops()), (5, 4), "{shared}");
        same_on_integers(&tape, &shared);
    }

    #[test]
    fn values_read_elsewhere_stay_and_outputs_keep_their_order() {
        let p = ExprPool::new();
        let [w, x, y, z] = symbols(&p);
        let mul = |a, b| p.binary(BinaryOp::Mul, a, b).unwrap();
        let inner = mul(x, y); // read by two products and an output
        let outs = [mul(inner, z), inner, mul(mul(w, inner), z), x];
        let tape = lower(&p, &outs, &[w, x, y, z]).unwrap();
        let shared = share_sums_and_products(&tape);
        assert!(shared.n_ops() <= tape.n_ops());
        same_on_integers(&tape, &shared);
        assert_eq!(shared.outputs[3], 1, "an input as an output stays that input");
    }
}
