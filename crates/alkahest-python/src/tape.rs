//! `Tape`: the lowered program as plain data for Python (the llvmlite backend reads it).

use std::sync::Arc;

use alkahest_core::{Instr, Tape};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};

use crate::errors::{error, to_py, type_name, IntoPy};
use crate::expr::PyExpr;

/// A lowered program: `n_inputs` inputs, constants, instructions (instruction k defines
/// value k; the first `n_inputs` are the inputs) and output values.
#[pyclass(name = "Tape", module = "alkahest._native", frozen)]
pub struct PyTape {
    pub inner: Arc<Tape>,
}

#[pymethods]
impl PyTape {
    #[getter]
    fn n_inputs(&self) -> usize {
        self.inner.n_inputs
    }

    #[getter]
    fn n_outputs(&self) -> usize {
        self.inner.n_outputs()
    }

    /// Number of instructions that compute something (inputs and constants excluded).
    #[getter]
    fn n_ops(&self) -> usize {
        self.inner.n_ops()
    }

    #[getter]
    fn consts(&self) -> Vec<f64> {
        self.inner.consts.clone()
    }

    #[getter]
    fn outputs(&self) -> Vec<u32> {
        self.inner.outputs.clone()
    }

    /// For each value, the last instruction reading it (`len(tape)` for outputs).
    #[getter]
    fn last_use(&self) -> Vec<u32> {
        self.inner.last_use.clone()
    }

    /// The instructions as `(op, args, load)`: `("input", (), i)`, `("const", (), k)`
    /// (`consts[k]`), `("sin", (a,), -1)`, `("add", (a, b), -1)`, `("select", (cond, a,
    /// b), -1)`, `("fma", (a, b, c), -1)` (`a*b + c` rounded once: integer powers use it
    /// to cancel rounding errors). `alkahest.backends.tapeview.Instr` names the fields.
    fn instructions<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let items = self.inner.instrs.iter().map(|ins| -> PyResult<Bound<'py, PyTuple>> {
            let args = PyTuple::new(py, ins.operands().collect::<Vec<_>>())?;
            let load = match *ins {
                Instr::Input(i) | Instr::Const(i) => i64::from(i),
                _ => -1,
            };
            (ins.op_name(), args, load).into_pyobject(py)
        });
        PyList::new(py, items.collect::<PyResult<Vec<_>>>()?)
    }

    /// How many instructions of each kind compute something: `{"add": 3, "sin": 1, ...}`.
    fn op_counts(&self) -> std::collections::HashMap<&'static str, usize> {
        self.inner.op_counts().into_iter().collect()
    }

    /// Counts of each kind of computing instruction, in the order of `op_kinds()`.
    fn op_count_vector(&self) -> Vec<u32> {
        self.inner.op_count_vector()
    }

    /// The staged bulk plan native tiers share (see `alkahest_core::plan`), as plain data:
    /// `{"stages": [("fused", [values]) | ("vector", value, op, src)], "buffer_of":
    /// [buffer or None per value], "stores": [[values stored by each stage]],
    /// "n_buffers": int, "stack_budget": bytes, "functions": [(start, end) of stages per
    /// generated function], "scalar_chunks": [(start, end) of instructions per function of
    /// the scalar entry], "spill_slot": {value: slot}}`. `vector_math=False` gives fused
    /// stages only. `alkahest.backends.tapeview.Plan` types it.
    #[pyo3(signature = (vector_math=true))]
    fn plan<'py>(&self, py: Python<'py>, vector_math: bool) -> PyResult<Bound<'py, PyDict>> {
        use alkahest_core::plan::{Plan, ScalarChunks, Stage};
        let bounds = |r: &std::ops::Range<usize>| (r.start, r.end);
        let plan = Plan::new(&self.inner, vector_math);
        let stages = PyList::empty(py);
        for stage in &plan.stages {
            let item = match stage {
                Stage::Fused { values } => ("fused", values.clone()).into_pyobject(py)?.into_any(),
                Stage::Vector { value, op, src } => {
                    ("vector", *value, op.name(), *src).into_pyobject(py)?.into_any()
                }
            };
            stages.append(item)?;
        }
        let d = PyDict::new(py);
        d.set_item("stages", stages)?;
        d.set_item("buffer_of", plan.buffer_of.clone())?;
        d.set_item("stores", plan.stores.clone())?;
        d.set_item("n_buffers", plan.n_buffers)?;
        d.set_item("stack_budget", alkahest_core::plan::STACK_BUDGET)?;
        d.set_item("functions", plan.functions().iter().map(bounds).collect::<Vec<_>>())?;
        let chunks = ScalarChunks::new(&self.inner);
        d.set_item("scalar_chunks", chunks.chunks.iter().map(bounds).collect::<Vec<_>>())?;
        d.set_item("spill_slot", chunks.slot)?;
        Ok(d)
    }

    fn __len__(&self) -> usize {
        self.inner.instrs.len()
    }

    /// The tape as bytes (compact, versioned, checksummed); `Tape.loads` reads them back.
    ///
    /// >>> from alkahest import ExprPool, lower, sin
    /// >>> x, = ExprPool().symbols("x")
    /// >>> t = lower(sin(x) * x, [x])
    /// >>> Tape.loads(t.dumps()) == t
    /// True
    fn dumps<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        let data = py.detach(|| alkahest_core::serial::dump_tape(&self.inner));
        PyBytes::new(py, &data)
    }

    /// The tape `data` (from `dumps`) holds, checked instruction by instruction: damaged
    /// or foreign data raises `SerializationError`.
    #[staticmethod]
    fn loads(py: Python<'_>, data: &[u8]) -> PyResult<PyTape> {
        let tape = py.detach(|| alkahest_core::serial::load_tape(data)).py_err(py)?;
        Ok(PyTape { inner: Arc::new(tape) })
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let py = slf.py();
        let loads = slf.get_type().getattr("loads")?;
        (loads, (slf.get().dumps(py),)).into_pyobject(py)
    }

    /// Consistent with `==` (cheap: sizes and outputs only).
    fn __hash__(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (self.inner.n_inputs, self.inner.instrs.len(), &self.inner.outputs).hash(&mut h);
        h.finish()
    }

    /// Equal content (same instructions, constants bit for bit, outputs).
    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other.cast::<PyTape>().is_ok_and(|o| {
            let (a, b) = (&*self.inner, &*o.get().inner);
            a.n_inputs == b.n_inputs
                && a.instrs == b.instrs
                && a.outputs == b.outputs
                && a.consts.len() == b.consts.len()
                && a.consts.iter().zip(&b.consts).all(|(x, y)| x.to_bits() == y.to_bits())
        })
    }

    fn __str__(&self) -> String {
        self.inner.to_string()
    }

    fn __repr__(&self) -> String {
        format!(
            "Tape(n_inputs={}, n_ops={}, n_outputs={})",
            self.inner.n_inputs,
            self.inner.n_ops(),
            self.inner.n_outputs()
        )
    }
}

/// C99 source for `tape` (see `alkahest_core::emit_c`).
#[pyfunction]
#[pyo3(signature = (tape, names, fn_name, bulk=false, single=false, header=false))]
pub fn emit_c(
    py: Python<'_>,
    tape: &PyTape,
    names: Vec<String>,
    fn_name: String,
    bulk: bool,
    single: bool,
    header: bool,
) -> PyResult<String> {
    use alkahest_core::emit_c::{CForm, COptions};
    if names.len() != tape.inner.n_inputs {
        return Err(error(py, "ArityError", "one name per input is needed"));
    }
    let form = if bulk { CForm::Bulk } else { CForm::Scalar };
    let options = COptions { fn_name, form, single, header };
    alkahest_core::emit_c::emit_c(&tape.inner, &names, &options).py_err(py)
}

/// StableHLO text for `tape` (see `alkahest_core::emit_hlo`).
#[pyfunction]
pub fn to_stablehlo(tape: &PyTape, fn_name: &str, shape: Vec<usize>) -> String {
    alkahest_core::emit_hlo::to_stablehlo(&tape.inner, fn_name, &shape)
}

/// Checks `vars` (symbols of one pool, each once) and lowers `outputs` to a tape;
/// `fastmath`: lowered as `CompileConfig(fastmath=True)` allows (plain integer powers,
/// sums and products regrouped to share terms; `alkahest_core::lower_fastmath`).
#[pyfunction]
#[pyo3(signature = (outputs, vars, fastmath=false))]
pub fn lower(
    py: Python<'_>,
    outputs: Vec<Bound<'_, PyAny>>,
    vars: Vec<Bound<'_, PyAny>>,
    fastmath: bool,
) -> PyResult<PyTape> {
    let mut out_ids = Vec::with_capacity(outputs.len());
    let mut pool = None;
    for (i, o) in outputs.iter().enumerate() {
        let e = o.cast::<PyExpr>().map_err(|_| {
            error(
                py,
                "ArgumentTypeError",
                format!("output {i} is a {}, not an alkahest expression", type_name(o)),
            )
        })?;
        let e = e.get();
        match &pool {
            None => pool = Some(e.pool.clone()),
            Some(p) if !Arc::ptr_eq(p, &e.pool) => return Err(to_py(py, alkahest_core::Error::PoolMismatch)),
            _ => {}
        }
        out_ids.push(e.id);
    }
    let Some(pool) = pool else {
        return Err(error(py, "ArityError", "nothing to compile: give at least one output expression"));
    };
    let mut in_ids = Vec::with_capacity(vars.len());
    for (i, v) in vars.iter().enumerate() {
        let e = v.cast::<PyExpr>().map_err(|_| {
            error(
                py,
                "InvalidVarsError",
                format!("vars[{i}] is a {}, not a symbol; vars must list symbols, e.g. [x, y]", type_name(v)),
            )
        })?;
        let e = e.get();
        if !Arc::ptr_eq(&pool, &e.pool) {
            return Err(to_py(py, alkahest_core::Error::PoolMismatch));
        }
        in_ids.push(e.id);
    }
    let tape = if fastmath {
        alkahest_core::lower_fastmath(&pool, &out_ids, &in_ids)
    } else {
        alkahest_core::lower(&pool, &out_ids, &in_ids)
    };
    let tape = tape.py_err(py)?;
    Ok(PyTape { inner: Arc::new(tape) })
}

/// The op table (`alkahest_core::op::table`): `(name, arity, class, libm function or
/// None, may have a libmvec variant)` per computing operation, in the order of
/// `Tape.op_count_vector()`.
#[pyfunction]
pub fn op_table() -> Vec<(&'static str, usize, &'static str, Option<&'static str>, bool)> {
    let row = |i: alkahest_core::op::OpInfo| (i.name, i.arity, i.class.name(), i.libm(), i.vector());
    alkahest_core::op::table().into_iter().map(row).collect()
}
