//! The e-graph optimiser: equality saturation over the expression DAG, on the `egg` crate.
//!
//! [`saturate`] puts a function's outputs into an e-graph and applies a rule set (see
//! [`rules`]) within node, iteration and time limits; [`Saturated::classes`] lists what
//! it found, and [`Saturated::extract`] picks one program per output by a cost per e-node
//! that the caller gives: calibrated operation costs for speed, measured local error for
//! accuracy (`alkahest.optimize` computes both). The extracted expressions go back into
//! the caller's pool, where hash-consing shares what they have in common.
//!
//! ```
//! use alkahest_core::{BinaryOp, ExprPool, UnaryOp};
//! use alkahest_egraph::{saturate, Limits, Rules};
//! let pool = ExprPool::new();
//! let x = pool.symbol("x").unwrap();
//! let e = pool.unary(UnaryOp::Exp, x).unwrap();
//! let one = pool.constant(1.0).unwrap();
//! let d = pool.binary(BinaryOp::Sub, e, one).unwrap(); // exp(x) - 1
//! let g = saturate(&pool, &[d], &[x], Rules { accuracy: true, ..Rules::default() }, Limits::default()).unwrap();
//! // Extract preferring expm1: cost 0 for it, 1 for every other operation.
//! let out = g.extract(&pool, &[x], |node| if node.op_name() == "expm1" { 0.0 } else { 1.0 }).unwrap();
//! assert_eq!(alkahest_core::print::to_infix(&pool.read(), out[0], 100), "expm1(x)");
//! ```

mod lang;
pub mod rules;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::{Duration, Instant};

use alkahest_core::pool::{topological_order, ExprId, ExprPool, Node};
use egg::{EGraph, Id, Language, RecExpr, Runner};

pub use lang::{ConstantFolding, Math};

/// Which rules to apply beyond the exact ones (see [`rules`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct Rules {
    /// Associativity and distributivity.
    pub algebra: bool,
    /// Rearrangements against cancellation.
    pub accuracy: bool,
}

/// Bounds on saturation: whichever is reached first stops it.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub nodes: usize,
    pub iterations: usize,
    pub time: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { nodes: 20_000, iterations: 12, time: Duration::from_millis(200) }
    }
}

/// What saturation did.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Times each rule applied, by rule name.
    pub applied: Vec<(String, usize)>,
    pub nodes: usize,
    pub classes: usize,
    pub iterations: usize,
    pub stop_reason: String,
    pub seconds: f64,
}

/// A saturated e-graph of a function's outputs.
pub struct Saturated {
    egraph: EGraph<Math, ConstantFolding>,
    roots: Vec<Id>,
    n_vars: usize,
    pub report: Report,
}

/// One e-class as [`Saturated::classes`] lists it: its id, its constant value if folding
/// found one, and its e-nodes (each with its children's class ids).
pub struct Class<'a> {
    pub id: usize,
    pub constant: Option<f64>,
    pub nodes: Vec<&'a Math>,
}

/// The e-graph of `roots` (expressions of `pool` over the symbols `vars`, in order),
/// saturated with the exact rules and those `rules` adds, within `limits`.
pub fn saturate(
    pool: &ExprPool,
    roots: &[ExprId],
    vars: &[ExprId],
    rules: Rules,
    limits: Limits,
) -> Result<Saturated, String> {
    let start = Instant::now();
    let mut egraph: EGraph<Math, ConstantFolding> = EGraph::new(ConstantFolding);
    let view = pool.read();
    let (order, _) = topological_order(&view, roots);
    let mut ids: HashMap<ExprId, Id> = HashMap::new();
    for e in order {
        let node = match view.node(e) {
            Node::Symbol(name) => {
                let k = vars
                    .iter()
                    .position(|&v| v == e)
                    .ok_or_else(|| format!("the symbol {name} is not among the inputs; add it to vars"))?;
                Math::Var(k as u32)
            }
            Node::Const(bits) => Math::Const(*bits),
            Node::Unary(op, a) => Math::Unary(*op, [ids[a]]),
            Node::Binary(op, [a, b]) => Math::Binary(*op, [ids[a], ids[b]]),
            Node::Select([c, a, b]) => Math::Select([ids[c], ids[a], ids[b]]),
        };
        ids.insert(e, egraph.add(node));
    }
    drop(view);
    let root_ids: Vec<Id> = roots.iter().map(|r| ids[r]).collect();
    let mut set = rules::exact();
    if rules.algebra {
        set.extend(rules::algebra());
    }
    if rules.accuracy {
        set.extend(rules::accuracy());
    }
    let runner = Runner::default()
        .with_egraph(egraph)
        .with_node_limit(limits.nodes)
        .with_iter_limit(limits.iterations)
        .with_time_limit(limits.time)
        .run(&set);
    let mut applied: HashMap<String, usize> = HashMap::new();
    for it in &runner.iterations {
        for (name, n) in &it.applied {
            *applied.entry(name.to_string()).or_default() += n;
        }
    }
    let mut applied: Vec<(String, usize)> = applied.into_iter().filter(|(_, n)| *n > 0).collect();
    applied.sort();
    let egraph = runner.egraph;
    let report = Report {
        applied,
        nodes: egraph.total_size(),
        classes: egraph.number_of_classes(),
        iterations: runner.iterations.len(),
        stop_reason: format!("{:?}", runner.stop_reason),
        seconds: start.elapsed().as_secs_f64(),
    };
    let roots = root_ids.iter().map(|&r| egraph.find(r)).collect();
    Ok(Saturated { egraph, roots, n_vars: vars.len(), report })
}

impl Saturated {
    /// The class of each output.
    pub fn roots(&self) -> Vec<usize> {
        self.roots.iter().map(|&r| usize::from(r)).collect()
    }

    /// Every e-class, with canonical children ids (ordered by id).
    pub fn classes(&self) -> Vec<Class<'_>> {
        let mut out: Vec<Class<'_>> = self
            .egraph
            .classes()
            .map(|c| Class {
                id: usize::from(c.id),
                constant: c.data.map(f64::from_bits),
                nodes: c.nodes.iter().collect(),
            })
            .collect();
        out.sort_by_key(|c| c.id);
        out
    }

    /// One expression per output, into `pool` over the input symbols `vars`: in each
    /// class the e-node of least total cost, a node costing `cost(node)` plus its
    /// children's (finite and non-negative; anything else counts as prohibitive).
    pub fn extract(
        &self,
        pool: &ExprPool,
        vars: &[ExprId],
        cost: impl Fn(&Math) -> f64,
    ) -> Result<Vec<ExprId>, String> {
        if vars.len() != self.n_vars {
            return Err(format!("expected {} input symbols, got {}", self.n_vars, vars.len()));
        }
        let best = cheapest(&self.egraph, cost);
        self.roots
            .iter()
            .map(|&r| {
                let root = &best.get(&self.egraph.find(r)).ok_or("an output has no finite program")?.1;
                let expr = root.build_recexpr(|id| best[&self.egraph.find(id)].1.clone());
                build(pool, &expr, vars)
            })
            .collect()
    }
}

impl Saturated {
    /// [`Saturated::extract`] with a cost per operation (`op_cost("add")`; inputs and
    /// constants cost nothing), read from a table: extraction prices every e-node many
    /// times over (once per pass to its fixed point).
    pub fn extract_by_op(
        &self,
        pool: &ExprPool,
        vars: &[ExprId],
        op_cost: impl Fn(&str) -> f64,
    ) -> Result<Vec<ExprId>, String> {
        use alkahest_core::{BinaryOp, UnaryOp};
        let unary: Vec<f64> = UnaryOp::ALL.iter().map(|op| op_cost(op.name())).collect();
        let binary: Vec<f64> = BinaryOp::ALL.iter().map(|op| op_cost(op.name())).collect();
        let select = op_cost(Math::Select([Id::from(0usize); 3]).op_name());
        self.extract(pool, vars, |node| match node {
            Math::Var(_) | Math::Const(_) => 0.0,
            Math::Unary(op, _) => unary[*op as usize],
            Math::Binary(op, _) => binary[*op as usize],
            Math::Select(_) => select,
        })
    }
}

/// The cheapest e-node of each class and its total cost: the node's own `cost` (finite
/// and non-negative; anything else counts as prohibitive) plus its children's. Knuth's
/// generalisation of Dijkstra's algorithm: classes are settled cheapest first, and a
/// class is re-priced only when one of its children settles. egg's `Extractor` instead
/// re-prices every class until a whole pass changes nothing: on the 500-op DAG's
/// e-graph (10,000 nodes) that took 37 ms of the speed goal's 68.
fn cheapest(egraph: &EGraph<Math, ConstantFolding>, cost: impl Fn(&Math) -> f64) -> HashMap<Id, (f64, Math)> {
    let own = |node: &Math| {
        let c = cost(node);
        if c.is_finite() && c >= 0.0 {
            c
        } else {
            1e30
        }
    };
    let mut settled: HashMap<Id, (f64, Math)> = HashMap::new();
    // A class's cheapest node over settled children only.
    let price = |id: Id, settled: &HashMap<Id, (f64, Math)>| -> Option<(f64, Math)> {
        egraph[id]
            .nodes
            .iter()
            .filter_map(|node| {
                let children = node.children().iter();
                let total =
                    children.map(|&c| settled.get(&egraph.find(c)).map(|b| b.0)).sum::<Option<f64>>()?;
                Some((own(node) + total, node))
            })
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(c, node)| (c, node.clone()))
    };
    // Non-negative doubles order as their bits do.
    let mut heap: BinaryHeap<Reverse<(u64, Id)>> = BinaryHeap::new();
    let mut tentative: HashMap<Id, (f64, Math)> = HashMap::new();
    for class in egraph.classes() {
        if let Some(p) = price(class.id, &settled) {
            heap.push(Reverse((p.0.to_bits(), class.id)));
            tentative.insert(class.id, p);
        }
    }
    while let Some(Reverse((bits, id))) = heap.pop() {
        if settled.contains_key(&id) || tentative[&id].0.to_bits() != bits {
            continue; // settled already, or a stale entry
        }
        settled.insert(id, tentative[&id].clone());
        for parent in egraph[id].parents() {
            let parent = egraph.find(parent);
            if settled.contains_key(&parent) {
                continue;
            }
            if let Some(p) = price(parent, &settled) {
                if tentative.get(&parent).is_none_or(|t| p.0 < t.0) {
                    heap.push(Reverse((p.0.to_bits(), parent)));
                    tentative.insert(parent, p);
                }
            }
        }
    }
    settled
}

/// The pool expression of an extracted program (input `k` is `vars[k]`).
fn build(pool: &ExprPool, expr: &RecExpr<Math>, vars: &[ExprId]) -> Result<ExprId, String> {
    let mut made: Vec<ExprId> = Vec::with_capacity(expr.len());
    for node in expr.iter() {
        let e = match node {
            Math::Var(k) => Ok(vars[*k as usize]),
            Math::Const(bits) => pool.constant(f64::from_bits(*bits)),
            Math::Unary(op, [a]) => pool.unary(*op, made[usize::from(*a)]),
            Math::Binary(op, [a, b]) => pool.binary(*op, made[usize::from(*a)], made[usize::from(*b)]),
            Math::Select([c, a, b]) => {
                pool.select(made[usize::from(*c)], made[usize::from(*a)], made[usize::from(*b)])
            }
        }
        .map_err(|e| e.to_string())?;
        made.push(e);
    }
    made.last().copied().ok_or_else(|| "an empty program".to_string())
}

#[cfg(test)]
mod tests;
