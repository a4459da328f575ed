//! Derivatives (`alkahest_core::diff`) for Python: argument checks and the GIL released
//! while the DAG is walked. Structural zeros come back as `None`.

use std::sync::Arc;

use alkahest_core::diff;
use alkahest_core::{ExprId, ExprPool};
use pyo3::prelude::*;

use crate::errors::{to_py, IntoPy};
use crate::expr::PyExpr;

/// The one pool of `exprs` and `vars` (both non-empty lists are checked).
fn one_pool(
    py: Python<'_>,
    exprs: &[PyRef<'_, PyExpr>],
    vars: &[PyRef<'_, PyExpr>],
) -> PyResult<Option<Arc<ExprPool>>> {
    let Some(first) = exprs.iter().chain(vars).next() else { return Ok(None) };
    let pool = first.pool.clone();
    if exprs.iter().chain(vars).any(|e| !Arc::ptr_eq(&e.pool, &pool)) {
        return Err(to_py(py, alkahest_core::Error::PoolMismatch));
    }
    Ok(Some(pool))
}

fn wrap(pool: &Arc<ExprPool>, ids: Vec<diff::Deriv>) -> Vec<Option<PyExpr>> {
    ids.into_iter().map(|d| d.map(|id| PyExpr { pool: pool.clone(), id })).collect()
}

/// `[∂e/∂var for e in exprs]` by forward mode, work shared across `exprs`; `None` for a
/// derivative that is structurally zero.
#[pyfunction]
pub fn derivative(
    py: Python<'_>,
    exprs: Vec<PyRef<'_, PyExpr>>,
    var: PyRef<'_, PyExpr>,
) -> PyResult<Vec<Option<PyExpr>>> {
    let Some(pool) = one_pool(py, &exprs, std::slice::from_ref(&var))? else { return Ok(vec![]) };
    let roots: Vec<ExprId> = exprs.iter().map(|e| e.id).collect();
    let v = var.id;
    let shared = pool.clone();
    let ids = py.detach(move || diff::derivative(&shared, &roots, v)).py_err(py)?;
    Ok(wrap(&pool, ids))
}

/// `[∂expr/∂v for v in vars]` by reverse mode (one backward sweep); `None` for a
/// derivative that is structurally zero.
#[pyfunction]
pub fn gradient(
    py: Python<'_>,
    expr: PyRef<'_, PyExpr>,
    vars: Vec<PyRef<'_, PyExpr>>,
) -> PyResult<Vec<Option<PyExpr>>> {
    let Some(pool) = one_pool(py, std::slice::from_ref(&expr), &vars)? else { return Ok(vec![]) };
    let ids: Vec<ExprId> = vars.iter().map(|v| v.id).collect();
    let root = expr.id;
    let shared = pool.clone();
    let grads = py.detach(move || diff::gradient(&shared, root, &ids)).py_err(py)?;
    Ok(wrap(&pool, grads))
}
