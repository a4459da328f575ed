//! Bytes and pickles of expressions, pools and tapes (the formats are `alkahest_core::serial`).
//!
//! A pickled expression or pool carries its pool's origin; unpickling loads into the live
//! pool of this process for that origin (the source pool itself, in the process that
//! pickled it), so expressions pickled one by one can still be combined after loading.

use std::sync::Arc;

use alkahest_core::pool::Origin;
use alkahest_core::serial;
use alkahest_core::{ExprId, ExprPool};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};

use crate::errors::{error, to_py, type_name, IntoPy};
use crate::expr::PyExpr;

/// The ids of `exprs` (one expression or a sequence of them), all of `pool`.
pub fn roots_of(py: Python<'_>, pool: &Arc<ExprPool>, exprs: &Bound<'_, PyAny>) -> PyResult<Vec<ExprId>> {
    let one = |item: &Bound<'_, PyAny>| -> PyResult<ExprId> {
        let e = item.cast::<PyExpr>().map_err(|_| {
            error(
                py,
                "ArgumentTypeError",
                format!(
                    "dumps() takes alkahest expressions (one, or a list of them), got {}",
                    type_name(item)
                ),
            )
        })?;
        if !Arc::ptr_eq(&e.get().pool, pool) {
            return Err(to_py(py, alkahest_core::Error::PoolMismatch));
        }
        Ok(e.get().id)
    };
    if exprs.cast::<PyExpr>().is_ok() {
        return Ok(vec![one(exprs)?]);
    }
    let items = exprs.try_iter().map_err(|_| {
        error(
            py,
            "ArgumentTypeError",
            format!("dumps() takes an expression or a list of expressions, got {}", type_name(exprs)),
        )
    })?;
    items.map(|item| one(&item?)).collect()
}

/// The serialised sub-DAG, with the GIL released for large ones.
pub fn dump(py: Python<'_>, pool: &Arc<ExprPool>, roots: &[ExprId]) -> Py<PyBytes> {
    let data = py.detach(|| serial::dump_exprs(pool, roots));
    PyBytes::new(py, &data).unbind()
}

/// Loads serialised expressions into `pool`.
pub fn load(py: Python<'_>, pool: &Arc<ExprPool>, data: &[u8]) -> PyResult<Vec<PyExpr>> {
    let ids = py.detach(|| serial::load_exprs(pool, data)).py_err(py)?;
    Ok(ids.into_iter().map(|id| PyExpr { pool: pool.clone(), id }).collect())
}

/// `(constructor, args)` for `__reduce__`: the expressions under `roots` with their origin.
pub fn reduce<'py>(
    py: Python<'py>,
    pool: &Arc<ExprPool>,
    roots: &[ExprId],
    constructor: &str,
) -> PyResult<Bound<'py, PyTuple>> {
    ExprPool::register(pool);
    let ctor = py.import("alkahest._native")?.getattr(constructor)?;
    let args = (pool.origin().to_vec(), dump(py, pool, roots));
    (ctor, args).into_pyobject(py)
}

fn origin_pool(py: Python<'_>, origin: Vec<u64>) -> PyResult<Arc<ExprPool>> {
    let origin: Origin = origin.try_into().map_err(|_| {
        to_py(py, alkahest_core::Error::Format("a pickled pool's origin is three integers".into()))
    })?;
    Ok(ExprPool::for_origin(origin))
}

/// Before `fork`: waits until no thread holds a pool lock and keeps new ones out
/// (registered with `os.register_at_fork` by `alkahest`).
#[pyfunction]
pub fn _close_pools_for_fork() {
    alkahest_core::pool::close_for_fork();
}

/// After `fork`, in parent and child: undoes `_close_pools_for_fork`.
#[pyfunction]
pub fn _open_pools_after_fork() {
    alkahest_core::pool::open_after_fork();
}

/// Unpickles one expression (`Expr.__reduce__`).
#[pyfunction]
pub fn _unpickle_expr(py: Python<'_>, origin: Vec<u64>, data: &[u8]) -> PyResult<PyExpr> {
    let pool = origin_pool(py, origin)?;
    let mut exprs = load(py, &pool, data)?;
    match exprs.len() {
        1 => Ok(exprs.remove(0)),
        n => Err(to_py(
            py,
            alkahest_core::Error::Format(format!("a pickled expression holds {n} roots, not 1")),
        )),
    }
}

/// Unpickles a pool (`ExprPool.__reduce__`).
#[pyfunction]
pub fn _unpickle_pool(py: Python<'_>, origin: Vec<u64>, data: &[u8]) -> PyResult<crate::expr::PyExprPool> {
    let pool = origin_pool(py, origin)?;
    load(py, &pool, data)?;
    Ok(crate::expr::PyExprPool { inner: pool })
}
