//! `alkahest._native`: the pyo3 module. It translates and checks arguments and maps
//! errors; the logic lives in `alkahest-core` and in the Python package.

use pyo3::prelude::*;

mod bulk;
mod callback;
mod compiled;
mod derivatives;
mod egraph;
mod errors;
mod expr;
mod persist;
mod tape;
mod text;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<expr::PyExprPool>()?;
    m.add_class::<expr::PyExpr>()?;
    m.add_class::<tape::PyTape>()?;
    m.add_class::<compiled::PyCompiledFn>()?;
    m.add_class::<egraph::PyEGraph>()?;
    m.add_function(wrap_pyfunction!(egraph::saturate, m)?)?;
    m.add_function(wrap_pyfunction!(egraph::rewrite_rules, m)?)?;
    m.add_function(wrap_pyfunction!(expr::apply, m)?)?;
    m.add_function(wrap_pyfunction!(expr::horner, m)?)?;
    m.add_function(wrap_pyfunction!(expr::dag, m)?)?;
    m.add_function(wrap_pyfunction!(persist::_unpickle_expr, m)?)?;
    m.add_function(wrap_pyfunction!(persist::_unpickle_pool, m)?)?;
    m.add_function(wrap_pyfunction!(persist::_close_pools_for_fork, m)?)?;
    m.add_function(wrap_pyfunction!(persist::_open_pools_after_fork, m)?)?;
    m.add_function(wrap_pyfunction!(derivatives::derivative, m)?)?;
    m.add_function(wrap_pyfunction!(derivatives::gradient, m)?)?;
    m.add_function(wrap_pyfunction!(text::parse_syntax_tree, m)?)?;
    m.add_function(wrap_pyfunction!(tape::lower, m)?)?;
    m.add_function(wrap_pyfunction!(tape::op_table, m)?)?;
    m.add_function(wrap_pyfunction!(tape::emit_c, m)?)?;
    m.add_function(wrap_pyfunction!(tape::to_stablehlo, m)?)?;
    m.add_function(wrap_pyfunction!(bulk::numpy_eval, m)?)?;
    m.add_function(wrap_pyfunction!(bulk::numpy_eval_par, m)?)?;
    m.add_function(wrap_pyfunction!(compiled::compile_interpreter, m)?)?;
    m.add_function(wrap_pyfunction!(compiled::compile_cranelift, m)?)?;
    m.add_function(wrap_pyfunction!(compiled::wrap_native, m)?)?;
    m.add_function(wrap_pyfunction!(compiled::native_symbols, m)?)?;
    m.add_function(wrap_pyfunction!(compiled::vector_math_functions, m)?)?;
    m.add_function(wrap_pyfunction!(compiled::default_threads, m)?)?;
    m.add_function(wrap_pyfunction!(compiled::max_threads, m)?)?;
    m.add_function(wrap_pyfunction!(compiled::vector_math_isa, m)?)?;
    m.add("BLOCK", alkahest_core::interp::BLOCK)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    // Which build this is (a hash of the sources, see build.rs): the LLVM disk cache's key.
    m.add("BUILD_ID", env!("ALKAHEST_BUILD_ID"))?;
    Ok(())
}
