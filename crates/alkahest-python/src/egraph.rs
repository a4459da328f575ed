//! Bindings of the e-graph optimiser (`alkahest-egraph`): `saturate` and the `EGraph` it
//! returns, which `alkahest.optimize` reads and extracts from.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use alkahest_core::pool::{ExprId, ExprPool};
use alkahest_egraph::{Limits, Math, Rules, Saturated};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::error;
use crate::expr::PyExpr;

/// A saturated e-graph of a function's outputs. Internal: see `alkahest.optimize`.
#[pyclass(name = "EGraph", module = "alkahest._native", unsendable)]
pub struct PyEGraph {
    inner: Saturated,
    pool: Arc<ExprPool>,
    vars: Vec<ExprId>,
}

/// The pool of `exprs`, or a `PoolMismatchError`.
fn one_pool<'a>(py: Python<'_>, mut exprs: impl Iterator<Item = &'a PyExpr>) -> PyResult<Arc<ExprPool>> {
    let pool = exprs.next().map(|e| e.pool.clone()).ok_or_else(|| PyValueError::new_err("no expressions"))?;
    if exprs.any(|e| !Arc::ptr_eq(&e.pool, &pool)) {
        return Err(error(py, "PoolMismatchError", "the outputs and inputs must come from one ExprPool"));
    }
    Ok(pool)
}

/// The optimiser's rewrite rules as (set, name, left, right), the sides as s-expression
/// patterns over `?a`-style variables: what the tests check each rule against.
#[pyfunction]
pub fn rewrite_rules() -> Vec<(&'static str, &'static str, &'static str, &'static str)> {
    alkahest_egraph::rules::table()
}

/// Saturates the e-graph of `outputs` over the input symbols `vars` with the exact rules,
/// and the `algebra` and `accuracy` rule sets if asked, within the limits (nodes,
/// iterations, seconds).
#[pyfunction]
#[pyo3(signature = (outputs, vars, algebra=false, accuracy=false, node_limit=20_000, iter_limit=12, time_limit=0.2))]
#[allow(clippy::too_many_arguments)] // the bindings mirror the Python call
pub fn saturate(
    py: Python<'_>,
    outputs: Vec<PyRef<'_, PyExpr>>,
    vars: Vec<PyRef<'_, PyExpr>>,
    algebra: bool,
    accuracy: bool,
    node_limit: usize,
    iter_limit: usize,
    time_limit: f64,
) -> PyResult<PyEGraph> {
    let pool = one_pool(py, outputs.iter().chain(&vars).map(|e| &**e))?;
    if !(time_limit.is_finite() && time_limit > 0.0) {
        return Err(error(
            py,
            "ArgumentError",
            format!("time_limit must be a positive number of seconds, got {time_limit}"),
        ));
    }
    let roots: Vec<ExprId> = outputs.iter().map(|e| e.id).collect();
    let var_ids: Vec<ExprId> = vars.iter().map(|e| e.id).collect();
    let limits =
        Limits { nodes: node_limit, iterations: iter_limit, time: Duration::from_secs_f64(time_limit) };
    let shared = pool.clone();
    let saturated = py
        .detach(move || {
            alkahest_egraph::saturate(&shared, &roots, &var_ids, Rules { algebra, accuracy }, limits)
        })
        .map_err(|e| error(py, "ArgumentError", e))?;
    Ok(PyEGraph { inner: saturated, pool, vars: vars.iter().map(|e| e.id).collect() })
}

/// `(op name, payload, children)` of an e-node: the payload is the input index of a
/// `var`, the value of a `const`, else None.
type NodeRow = (&'static str, Option<f64>, Vec<usize>);

#[pymethods]
impl PyEGraph {
    /// Every e-class as `(id, constant or None, [node, ...])`, by id; a node is
    /// `(op name, payload, child class ids)`. `extract` takes one cost per node, in this
    /// order.
    fn classes(&self) -> Vec<(usize, Option<f64>, Vec<NodeRow>)> {
        self.inner
            .classes()
            .into_iter()
            .map(|c| {
                let nodes = c
                    .nodes
                    .iter()
                    .map(|n| {
                        let payload = match n {
                            Math::Var(k) => Some(f64::from(*k)),
                            Math::Const(b) => Some(f64::from_bits(*b)),
                            _ => None,
                        };
                        let children = egg::Language::children(*n).iter().map(|&i| usize::from(i)).collect();
                        (n.op_name(), payload, children)
                    })
                    .collect();
                (c.id, c.constant, nodes)
            })
            .collect()
    }

    /// The class of each output.
    #[getter]
    fn roots(&self) -> Vec<usize> {
        self.inner.roots()
    }

    /// What saturation did: rules applied (name: count), nodes, classes, iterations,
    /// why it stopped, seconds.
    fn report<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let r = &self.inner.report;
        let d = PyDict::new(py);
        d.set_item("applied", r.applied.iter().cloned().collect::<HashMap<String, usize>>())?;
        d.set_item("nodes", r.nodes)?;
        d.set_item("classes", r.classes)?;
        d.set_item("iterations", r.iterations)?;
        d.set_item("stop_reason", &r.stop_reason)?;
        d.set_item("seconds", r.seconds)?;
        Ok(d)
    }

    /// One expression per output: in each class the node of least total cost, `costs`
    /// giving each node's own cost in the order of `classes()`.
    /// One expression per output, by a cost per operation name (`costs`; `default` for
    /// the rest; inputs and constants cost nothing).
    fn extract_by_op(
        &self,
        py: Python<'_>,
        costs: HashMap<String, f64>,
        default: f64,
    ) -> PyResult<Vec<PyExpr>> {
        let ids = self
            .inner
            .extract_by_op(&self.pool, &self.vars, |op| costs.get(op).copied().unwrap_or(default))
            .map_err(|e| error(py, "ArgumentError", e))?;
        Ok(ids.into_iter().map(|id| PyExpr { pool: self.pool.clone(), id }).collect())
    }

    fn extract(&self, py: Python<'_>, costs: Vec<f64>) -> PyResult<Vec<PyExpr>> {
        let classes = self.inner.classes();
        let n: usize = classes.iter().map(|c| c.nodes.len()).sum();
        if costs.len() != n {
            return Err(error(
                py,
                "ArgumentError",
                format!("expected {n} costs (one per e-node), got {}", costs.len()),
            ));
        }
        let table: HashMap<&Math, f64> =
            classes.iter().flat_map(|c| c.nodes.iter().copied()).zip(costs.iter().copied()).collect();
        let ids = self
            .inner
            .extract(&self.pool, &self.vars, |node| table.get(node).copied().unwrap_or(1e30))
            .map_err(|e| error(py, "ArgumentError", e))?;
        Ok(ids.into_iter().map(|id| PyExpr { pool: self.pool.clone(), id }).collect())
    }
}
