//! `CompiledFn`: a kernel of any tier behind the one calling convention, scalar calls
//! in Rust for speed and bulk calls through the core runner with the GIL released.
//!
//! The kernel a function runs can be replaced while it is in use (tier-up): it sits in
//! a `TierSlot`, every call runs on the one it loaded, and an adaptive function's calls
//! feed a `WorkMeter` whose reports go to its controller (`alkahest.dispatch`).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};

use alkahest_core::meter::WorkMeter;
use alkahest_core::runner;
use alkahest_core::{AnyKernel, BulkFn, DType, Interpreter, NativeKernel, ScalarFn, Tape, TierSlot};
use numpy::npyffi::flags::NPY_ARRAY_WRITEABLE;
use numpy::{PyArrayDyn, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::{PyAttributeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyFloat, PyList, PyTuple};

use crate::errors::{error, type_name};
use crate::tape::PyTape;

/// What a function runs now: one tier's kernel and what keeps its code alive.
pub(crate) struct Active {
    pub(crate) kernel: AnyKernel,
    tier: String,
    fallback_reason: Option<String>,
    /// The tier's own object for code made outside Rust (the LLVM tier's JIT module): it
    /// owns the machine code, and answers `source()` and tier-specific inspection methods.
    backend: Option<Py<PyAny>>,
    /// Measured one-thread bulk work on this kernel, for the dispatch controller.
    timing: BulkTiming,
}

/// Time spent in one-thread bulk calls on one kernel (the controller compares tiers by it).
#[derive(Default)]
struct BulkTiming {
    calls: AtomicU64,
    points: AtomicU64,
    nanos: AtomicU64,
}

impl Active {
    fn new(
        kernel: AnyKernel,
        tier: &str,
        fallback_reason: Option<String>,
        backend: Option<Py<PyAny>>,
    ) -> Self {
        Active { kernel, tier: tier.into(), fallback_reason, backend, timing: BulkTiming::default() }
    }
}

/// How the function's tier was chosen (a Python object with `report()`), and for an
/// adaptive function the meter its calls feed; the object receives `on_threshold()`
/// and `on_bulk(n_points, threads)`.
struct Dispatch {
    controller: Py<PyAny>,
    meter: Option<WorkMeter>,
}

/// A compiled function. Call it with floats (`f(1.0, 2.0)` or `f([1.0, 2.0])`); use
/// `numpy_eval` for arrays.
#[pyclass(name = "CompiledFn", module = "alkahest._native", frozen, weakref)]
pub struct PyCompiledFn {
    /// Shared with background compiles, which install their code here.
    active: Arc<TierSlot<Active>>,
    tape: Arc<Tape>,
    var_names: Vec<String>,
    dispatch: OnceLock<Dispatch>,
    /// Set when the outputs were given as an array: calls return arrays of this shape.
    output_shape: OnceLock<Vec<usize>>,
    /// The element type its kernels compute in (every installed kernel has it).
    dtype: DType,
    /// Bulk calls on float32 inputs run its float32 variant (`CompileConfig(dtype=None)`).
    follows_inputs: std::sync::atomic::AtomicBool,
    /// That variant, compiled on the first such call (`alkahest.dispatch.float32_variant`).
    float32_variant: pyo3::sync::PyOnceLock<Py<PyCompiledFn>>,
}

const STACK_ARGS: usize = 16;

impl PyCompiledFn {
    fn with(active: Active, tape: Arc<Tape>, var_names: Vec<String>) -> Self {
        Self::from_active(Arc::new(active), tape, var_names)
    }

    fn from_active(active: Arc<Active>, tape: Arc<Tape>, var_names: Vec<String>) -> Self {
        PyCompiledFn {
            dtype: active.kernel.dtype(),
            active: Arc::new(TierSlot::from_arc(active)),
            tape,
            var_names,
            dispatch: OnceLock::new(),
            output_shape: OnceLock::new(),
            follows_inputs: std::sync::atomic::AtomicBool::new(false),
            float32_variant: pyo3::sync::PyOnceLock::new(),
        }
    }

    /// The element type this function computes in.
    pub(crate) fn element_type(&self) -> DType {
        self.dtype
    }

    /// The function bulk calls on float32 inputs run, if it is not this one: the float32
    /// variant of a float64 function that follows its inputs' type (made on first use).
    pub(crate) fn float32_variant<'py>(&self, py: Python<'py>) -> PyResult<Option<&Py<PyCompiledFn>>> {
        if self.dtype != DType::F64 || !self.follows_inputs.load(Relaxed) {
            return Ok(None);
        }
        static MAKE: pyo3::sync::PyOnceLock<Py<PyAny>> = pyo3::sync::PyOnceLock::new();
        let variant = self.float32_variant.get_or_try_init(py, || -> PyResult<Py<PyCompiledFn>> {
            let make = MAKE.import(py, "alkahest.dispatch", "float32_variant")?;
            let controller = self.dispatch.get().map(|d| d.controller.clone_ref(py));
            let made = make.call1((self.tape(), self.var_names.clone(), controller, self.output_shape()))?;
            Ok(made.cast_into::<PyCompiledFn>()?.unbind())
        })?;
        Ok(Some(variant))
    }

    fn meter(&self) -> Option<(&Py<PyAny>, &WorkMeter)> {
        let d = self.dispatch.get()?;
        Some((&d.controller, d.meter.as_ref()?))
    }

    /// Tells the controller; its failure must not fail the call that happened to report.
    fn notify<'py>(
        py: Python<'py>,
        controller: &Py<PyAny>,
        method: &str,
        args: impl pyo3::call::PyCallArgs<'py>,
    ) {
        if let Err(e) = controller.call_method1(py, method, args) {
            e.write_unraisable(py, Some(controller.bind(py)));
        }
    }

    /// The kernel installed now (alive as long as the function: every installed kernel is).
    pub(crate) fn active(&self) -> &Active {
        self.active.get()
    }

    /// Feeds a bulk call of `n` points to an adaptive function's meter, first letting the
    /// controller install a faster tier if a call this big asks for a decision.
    pub(crate) fn count_points(&self, py: Python<'_>, n: u64, threads: usize) {
        if let Some((controller, meter)) = self.meter() {
            if meter.wants_decision(n) {
                Self::notify(py, controller, "on_bulk", (n, threads));
            }
            if meter.add_points(n) {
                Self::notify(py, controller, "on_threshold", ());
            }
        }
    }

    /// Records a one-thread bulk call's time on `active` (what the controller measures).
    pub(crate) fn record_bulk(&self, active: &Active, n: u64, elapsed: std::time::Duration) {
        if self.dispatch.get().is_some() {
            let t = &active.timing;
            t.calls.fetch_add(1, Relaxed);
            t.points.fetch_add(n, Relaxed);
            t.nanos.fetch_add(elapsed.as_nanos() as u64, Relaxed);
        }
    }

    /// Feeds one scalar call to an adaptive function's meter, taking the GIL only when
    /// the controller is to be told (calls also come from native code: `low_level_callable`).
    pub(crate) fn count_call(&self) {
        if let Some((controller, meter)) = self.meter() {
            if meter.add_calls(1) {
                Python::attach(|py| Self::notify(py, controller, "on_threshold", ()));
            }
        }
    }

    /// The shape calls return their outputs in, when they were given as an array.
    pub(crate) fn output_shape_of(&self) -> Option<&[usize]> {
        self.output_shape.get().map(|s| s.as_slice())
    }

    pub(crate) fn repr(&self) -> String {
        self.__repr__()
    }

    fn signature(&self) -> String {
        format!("f({})", self.var_names.join(", "))
    }

    fn arity_error(&self, py: Python<'_>, got: usize) -> PyErr {
        error(
            py,
            "ArityError",
            format!("{} takes {} arguments, got {got}", self.signature(), self.var_names.len()),
        )
    }

    fn argument_error(&self, i: usize, item: &Bound<'_, PyAny>) -> PyErr {
        error(
            item.py(),
            "ArgumentTypeError",
            format!(
                "argument {i} ({}) must be a real number or an array of them, got {}",
                self.var_names.get(i).map_or("?", |s| s.as_str()),
                type_name(item)
            ),
        )
    }

    /// Reads a scalar call's arguments into `vals`: `f(x, y)`, or one sequence of all
    /// of them (`f([x, y])`, for two or more inputs). `Ok(false)`: the arguments are
    /// arrays (or mix arrays and numbers), for bulk evaluation.
    fn fill_args(&self, py: Python<'_>, args: &Bound<'_, PyTuple>, vals: &mut [f64]) -> PyResult<bool> {
        let n = vals.len();
        let put = |vals: &mut [f64], i: usize, item: &Bound<'_, PyAny>| -> PyResult<()> {
            vals[i] = item.extract::<f64>().map_err(|_| self.argument_error(i, item))?;
            Ok(())
        };
        if args.len() == 1 && n >= 2 {
            let a = args.get_item(0)?;
            if let Ok(list) = a.cast::<PyList>() {
                if list.len() != n {
                    return Err(self.arity_error(py, list.len()));
                }
                return list.iter().enumerate().try_for_each(|(i, it)| put(vals, i, &it)).map(|_| true);
            }
            if let Ok(t) = a.cast::<PyTuple>() {
                if t.len() != n {
                    return Err(self.arity_error(py, t.len()));
                }
                return t.iter().enumerate().try_for_each(|(i, it)| put(vals, i, &it)).map(|_| true);
            }
            if let Ok(v) = a.cast::<PyArrayDyn<f64>>() {
                // A float64 vector of all the arguments (an ODE state): read in place.
                if v.ndim() == 1 && v.len() == n {
                    if let Ok(ro) = v.try_readonly() {
                        if let Ok(s) = ro.as_slice() {
                            vals.copy_from_slice(s);
                            return Ok(true);
                        }
                    }
                }
            }
            if !is_lazy(&a) && a.extract::<f64>().is_err() {
                // Any other sequence of numbers (a NumPy vector, ...).
                let items: Vec<Bound<'_, PyAny>> = a.try_iter()?.collect::<PyResult<_>>()?;
                if items.len() != n {
                    return Err(self.arity_error(py, items.len()));
                }
                return items.iter().enumerate().try_for_each(|(i, it)| put(vals, i, it)).map(|_| true);
            }
        }
        if args.len() != n {
            return Err(self.arity_error(py, args.len()));
        }
        for (i, item) in args.iter().enumerate() {
            // Floats and ints first; arrays before any conversion that would raise and
            // clear an exception (a tenth of a microsecond each).
            if let Ok(f) = item.cast::<PyFloat>() {
                vals[i] = f.value();
            } else if item.is_instance_of::<pyo3::types::PyInt>() {
                vals[i] = item.extract::<f64>().map_err(|_| {
                    error(
                        py,
                        "DTypeError",
                        format!(
                            "argument {i} ({}) is an integer too large for a float64 (at most about 1.8e308)",
                            self.var_names.get(i).map_or("?", |s| s.as_str())
                        ),
                    )
                })?;
            } else if item.cast::<PyUntypedArray>().is_ok()
                || item.cast::<PyList>().is_ok()
                || item.cast::<PyTuple>().is_ok()
            {
                return Ok(false);
            } else if is_lazy(&item) {
                return Ok(false); // a Dask array: `float()` would compute all of it
            } else if let Ok(v) = item.extract::<f64>() {
                vals[i] = v; // NumPy scalars, and anything else with __float__
            } else if is_array_like(&item) {
                return Ok(false);
            } else {
                return Err(self.argument_error(i, &item));
            }
        }
        Ok(true)
    }
}

/// A lazy collection (a Dask array): evaluated block by block, never converted here.
fn is_lazy(obj: &Bound<'_, PyAny>) -> bool {
    obj.get_type().hasattr("__dask_graph__").unwrap_or(false)
}

/// Arrays and what NumPy turns into arrays: lists, tuples, objects with `__array__`,
/// the array interface or DLPack.
fn is_array_like(obj: &Bound<'_, PyAny>) -> bool {
    obj.cast::<PyUntypedArray>().is_ok()
        || obj.cast::<PyList>().is_ok()
        || obj.cast::<PyTuple>().is_ok()
        || ["__array__", "__array_interface__", "__dlpack__"].iter().any(|a| obj.hasattr(*a).unwrap_or(false))
}

/// `out` of a scalar call: a writeable, C-contiguous float64 array of `n` elements.
fn output_vector<'py>(
    py: Python<'py>,
    out: &Bound<'py, PyAny>,
    n: usize,
) -> PyResult<Bound<'py, PyArrayDyn<f64>>> {
    let a = array(py, out, "out")?;
    // SAFETY: reading the flags of a live array object.
    let writeable = unsafe { (*a.as_array_ptr()).fields.flags } & NPY_ARRAY_WRITEABLE != 0;
    if !a.is_c_contiguous() || !writeable || a.len() != n {
        return Err(error(
            py,
            "ShapeError",
            format!(
                "out of a scalar call must be a writeable, C-contiguous float64 array of {n} element{} \
                 (one per output), got shape {:?}",
                if n == 1 { "" } else { "s" },
                a.shape()
            ),
        ));
    }
    Ok(a)
}

fn array<'py>(py: Python<'py>, obj: &Bound<'py, PyAny>, what: &str) -> PyResult<Bound<'py, PyArrayDyn<f64>>> {
    obj.cast::<PyArrayDyn<f64>>()
        .cloned()
        .map_err(|_| error(py, "DTypeError", format!("{what} must be a float64 NumPy array")))
}

#[pymethods]
impl PyCompiledFn {
    /// `f(x, y)` → a float (a tuple of floats for several outputs); `f(x, y, out=buf)`
    /// writes the outputs into `buf` (a writeable, C-contiguous float64 array of
    /// `n_outputs` elements, any shape) and returns it, allocating nothing. With arrays
    /// among the arguments it is `numpy_eval(f, x, y, out=out)`.
    #[pyo3(signature = (*args, out=None))]
    fn __call__(
        self_: &Bound<'_, Self>,
        args: &Bound<'_, PyTuple>,
        out: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let (py, this) = (self_.py(), self_.get());
        let active = this.active.get();
        let (n_in, n_out) = (active.kernel.n_inputs(), active.kernel.n_outputs());
        let mut stack_in = [0.0f64; STACK_ARGS];
        let mut stack_out = [0.0f64; STACK_ARGS];
        let mut heap_in = Vec::new();
        let mut heap_out = Vec::new();
        let vals: &mut [f64] = if n_in <= STACK_ARGS {
            &mut stack_in[..n_in]
        } else {
            heap_in.resize(n_in, 0.0);
            &mut heap_in
        };
        if !this.fill_args(py, args, vals)? {
            // Arrays: like a ufunc, the same as numpy_eval(f, *args, out=out).
            return crate::bulk::eval(self_, args, out, 1);
        }
        if let Some(o) = out {
            let array = output_vector(py, o, n_out)?;
            // SAFETY: `array` is a live, writeable, C-contiguous float64 array of n_out
            // elements (checked above); the GIL is held, so no one else resizes it.
            let slice = unsafe { std::slice::from_raw_parts_mut(array.data(), n_out) };
            active.kernel.eval(vals, slice);
            this.count_call();
            return Ok(o.clone().unbind());
        }
        if let Some(shape) = this.output_shape.get() {
            // One array of the outputs' shape, written in place: no object per output.
            // SAFETY: the kernel writes all n_out elements before anyone reads them.
            let array = unsafe { PyArrayDyn::<f64>::new(py, numpy::IxDyn(shape), false) };
            // SAFETY: a fresh C-contiguous array of n_out elements, owned here.
            let slice = unsafe { std::slice::from_raw_parts_mut(array.data(), n_out) };
            active.kernel.eval(vals, slice);
            this.count_call();
            return Ok(array.into_any().unbind());
        }
        let out: &mut [f64] = if n_out <= STACK_ARGS {
            &mut stack_out[..n_out]
        } else {
            heap_out.resize(n_out, 0.0);
            &mut heap_out
        };
        active.kernel.eval(vals, out);
        this.count_call();
        if n_out == 1 {
            Ok(PyFloat::new(py, out[0]).into_any().unbind())
        } else {
            Ok(PyTuple::new(py, out.iter().copied())?.into_any().unbind())
        }
    }

    /// This function as a `scipy.LowLevelCallable` (`double (int, double *, void *)`):
    /// `scipy.integrate.quad(f.low_level_callable(), a, b, args=rest)` integrates over the
    /// first input with the others fixed to `rest`, never entering Python. Calls run the
    /// tier installed at the time and count towards tier-up; a call with the wrong number
    /// of arguments returns NaN. The function must have one output (quad's integrand).
    fn low_level_callable(self_: &Bound<'_, Self>) -> PyResult<Py<PyAny>> {
        let n_out = self_.get().tape.n_outputs();
        if n_out != 1 {
            return Err(error(
                self_.py(),
                "ArityError",
                format!("low_level_callable() needs a function of one output, this one has {n_out}"),
            ));
        }
        crate::callback::low_level_callable(self_)
    }

    /// `f(t, *y, *params)` for an ODE right-hand side (`alkahest.ODE`): `y` a float64
    /// vector read in place. Returns the outputs as a new vector, or, with
    /// `scatter=(positions, n)`, an `(n, n)` array of zeros with output `k` at flat index
    /// `positions[k]` (a Jacobian from its non-zero entries). Internal.
    #[pyo3(signature = (t, y, params, scatter=None))]
    fn _eval_ode<'py>(
        &self,
        py: Python<'py>,
        t: f64,
        y: &Bound<'py, PyArrayDyn<f64>>,
        params: &Bound<'py, PyTuple>,
        scatter: Option<(Bound<'py, PyArrayDyn<isize>>, usize)>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let active = self.active.get();
        let (n_in, n_out) = (active.kernel.n_inputs(), active.kernel.n_outputs());
        let ro = y.try_readonly()?;
        let ys = ro.as_slice().map_err(|_| PyValueError::new_err("y must be a contiguous vector"))?;
        if y.ndim() != 1 || 1 + ys.len() + params.len() != n_in {
            return Err(self.arity_error(py, 1 + ys.len() + params.len()));
        }
        let mut vals = Vec::with_capacity(n_in);
        vals.push(t);
        vals.extend_from_slice(ys);
        for (i, p) in params.iter().enumerate() {
            vals.push(p.extract::<f64>().map_err(|_| self.argument_error(1 + ys.len() + i, &p))?);
        }
        let mut out = vec![0.0; n_out];
        active.kernel.eval(&vals, &mut out);
        self.count_call();
        let Some((positions, n)) = scatter else {
            return Ok(numpy::PyArray1::from_vec(py, out).into_any());
        };
        let positions = positions.try_readonly()?;
        let positions =
            positions.as_slice().map_err(|_| PyValueError::new_err("positions must be contiguous"))?;
        if positions.len() != n_out || positions.iter().any(|&k| k < 0 || k as usize >= n * n) {
            return Err(PyValueError::new_err("positions must give one index below n*n per output"));
        }
        let mut dense = vec![0.0; n * n];
        for (&k, &v) in positions.iter().zip(&out) {
            dense[k as usize] = v;
        }
        Ok(numpy::PyArray1::from_vec(py, dense).reshape([n, n])?.into_any())
    }

    /// The tier that runs this function now: "interpreter", "cranelift" or "llvm"
    /// (an adaptive function's tier changes as it tiers up).
    #[getter]
    fn tier(&self) -> String {
        self.active.get().tier.clone()
    }

    /// Why a faster tier was not used, if one was asked for and failed; else None.
    #[getter]
    fn fallback_reason(&self) -> Option<String> {
        self.active.get().fallback_reason.clone()
    }

    #[getter]
    pub(crate) fn n_inputs(&self) -> usize {
        self.tape.n_inputs
    }

    #[getter]
    pub(crate) fn n_outputs(&self) -> usize {
        self.tape.n_outputs()
    }

    /// Whether this function tiers up by itself as it is used (`CompileConfig(tier="auto")`
    /// without `expected_evals`).
    #[getter]
    fn adaptive(&self) -> bool {
        self.meter().is_some()
    }

    /// How this function's tier was chosen: predicted times per tier, the choice, and
    /// for an adaptive function the tier-ups so far (see `alkahest.explain`). None for a
    /// function made without `compile_expr`.
    fn dispatch_report(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        match self.dispatch.get() {
            Some(d) => Ok(Some(d.controller.call_method0(py, "report")?)),
            None => Ok(None),
        }
    }

    /// Attaches how the tier was chosen (once). With `meter = (call_weight, point_weight,
    /// threshold, sync_points)` the function becomes adaptive: its calls feed the meter
    /// and `controller` receives `on_threshold()` / `on_bulk(n, threads)`. Internal.
    #[pyo3(signature = (controller, meter=None))]
    fn _attach_dispatch(&self, controller: Py<PyAny>, meter: Option<(u64, u64, u64, u64)>) -> PyResult<()> {
        let meter = meter.map(|(cw, pw, t, s)| WorkMeter::new(cw, pw, t, s));
        self.dispatch
            .set(Dispatch { controller, meter })
            .map_err(|_| PyValueError::new_err("this function's dispatch is already attached"))
    }

    /// Restarts an adaptive function's meter with new weights and threshold. Internal.
    fn _rearm(&self, call_weight: u64, point_weight: u64, threshold: u64, sync_points: u64) -> PyResult<()> {
        let (_, meter) = self.meter().ok_or_else(|| PyValueError::new_err("not an adaptive function"))?;
        meter.rearm(call_weight, point_weight, threshold, sync_points);
        Ok(())
    }

    /// `(calls, points, work, threshold)` of an adaptive function's meter, else None.
    fn _meter(&self) -> Option<(u64, u64, u64, u64)> {
        let r = self.meter()?.1.reading();
        Some((r.calls, r.points, r.work, r.threshold))
    }

    /// `{tier: (calls, points, seconds)}` of one-thread bulk calls measured on each kernel
    /// this function has run (an adaptive function's controller reads it). Internal.
    fn _measured(&self) -> std::collections::HashMap<String, (u64, u64, f64)> {
        self.active
            .installed()
            .iter()
            .map(|a| {
                let t = &a.timing;
                let secs = t.nanos.load(Relaxed) as f64 * 1e-9;
                (a.tier.clone(), (t.calls.load(Relaxed), t.points.load(Relaxed), secs))
            })
            .collect()
    }

    /// Makes the last installed kernel of `tier` current again (a tier-up measured slower
    /// than the tier it replaced is undone). Internal.
    fn _restore(&self, tier: &str) -> bool {
        self.active.restore(|a| a.tier == tier)
    }

    /// Makes this function run `other`'s code from the next call on (tier-up). Calls
    /// already running finish on the code they started with. Internal.
    fn _install(&self, other: PyRef<'_, PyCompiledFn>) -> PyResult<()> {
        if *other.tape != *self.tape || other.dtype != self.dtype {
            return Err(PyValueError::new_err(
                "can only install code compiled from the same tape for the same element type",
            ));
        }
        self.active.install_if(other.active.get_arc(), |_| true);
        Ok(())
    }

    /// Mean seconds per scalar evaluation at `args` over `reps` calls, measured in Rust
    /// without the Python call (calibration). Internal.
    fn _time_eval(&self, py: Python<'_>, args: Vec<f64>, reps: usize) -> PyResult<f64> {
        if args.len() != self.tape.n_inputs {
            return Err(self.arity_error(py, args.len()));
        }
        let kernel = self.active.get().kernel.clone();
        Ok(py.detach(move || kernel.time_eval(&args, reps)))
    }

    /// The element type it computes in, "float64" or "float32" (`CompileConfig(dtype=...)`).
    /// Scalar calls take and return Python floats either way.
    #[getter]
    fn dtype(&self) -> &'static str {
        self.dtype.name()
    }

    /// Whether bulk calls on float32 inputs compute in float32 (through a float32
    /// variant of this function), as `CompileConfig(dtype=None)` asks.
    #[getter]
    fn follows_input_dtype(&self) -> bool {
        self.follows_inputs.load(Relaxed)
    }

    /// Makes bulk calls on float32 inputs run a float32 variant. Internal.
    fn _follow_input_dtype(&self) -> PyResult<()> {
        if self.dtype != DType::F64 {
            return Err(PyValueError::new_err("only a float64 function follows its inputs' type"));
        }
        self.follows_inputs.store(true, Relaxed);
        Ok(())
    }

    /// The float32 variant bulk calls on float32 inputs run, once made; else None.
    #[getter]
    fn _float32_variant(&self, py: Python<'_>) -> Option<Py<PyCompiledFn>> {
        self.float32_variant.get(py).map(|f| f.clone_ref(py))
    }

    /// Names of the input symbols, in argument order.
    #[getter]
    fn var_names(&self) -> Vec<String> {
        self.var_names.clone()
    }

    /// What this function runs, as text: the tape listing for the interpreter, Cranelift
    /// IR (CLIF) for the Cranelift tier, optimised LLVM IR for the LLVM tier.
    fn source(&self, py: Python<'_>) -> PyResult<String> {
        let active = self.active.get();
        if let Some(backend) = &active.backend {
            return backend.call_method0(py, "source")?.extract(py);
        }
        let kernel = active.kernel.clone();
        Ok(py.detach(move || kernel.source()))
    }

    /// The tier's own object behind natively compiled code made in Python (the LLVM
    /// tier's module), else None.
    #[getter]
    fn backend(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.active.get().backend.as_ref().map(|b| b.clone_ref(py))
    }

    /// Tier-specific inspection methods (`f.llvm_ir()`, `f.asm()` on the LLVM tier) are
    /// the backend's; other names raise AttributeError.
    fn __getattr__(&self, py: Python<'_>, name: &str) -> PyResult<Py<PyAny>> {
        let active = self.active.get();
        if !name.starts_with('_') {
            if let Some(backend) = &active.backend {
                if let Ok(attr) = backend.getattr(py, name) {
                    return Ok(attr);
                }
            }
        }
        Err(PyAttributeError::new_err(format!(
            "'CompiledFn' object (tier '{}') has no attribute '{name}'",
            active.tier
        )))
    }

    /// The shape the outputs are returned in (`compile_expr` given an array of
    /// expressions), or None (a float, or a tuple of floats).
    #[getter]
    fn output_shape(&self) -> Option<Vec<usize>> {
        self.output_shape.get().cloned()
    }

    /// Makes calls return the outputs as an array of `shape` (once). Internal.
    fn _set_output_shape(&self, shape: Vec<usize>) -> PyResult<()> {
        if shape.iter().product::<usize>() != self.tape.n_outputs() || shape.is_empty() {
            return Err(PyValueError::new_err("the output shape must hold exactly the outputs"));
        }
        self.output_shape.set(shape).map_err(|_| PyValueError::new_err("the output shape is already set"))
    }

    /// The object that decided this function's tier (its controller, for an adaptive
    /// one), or None for a function made without `compile_expr`. Internal.
    fn _dispatch(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.dispatch.get().map(|d| d.controller.clone_ref(py))
    }

    /// Pickles as its tape, input names and config (`alkahest.persist`).
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        slf.py().import("alkahest.persist")?.call_method1("reduce_compiled", (slf,))
    }

    /// The tape this function was compiled from.
    #[getter]
    fn tape(&self) -> PyTape {
        PyTape { inner: self.tape.clone() }
    }

    fn __repr__(&self) -> String {
        let n_out = self.tape.n_outputs();
        format!(
            "CompiledFn({} -> {} output{}, tier='{}'{}, ops={}{})",
            self.signature(),
            n_out,
            if n_out == 1 { "" } else { "s" },
            self.active.get().tier,
            if self.meter().is_some() { " (adaptive)" } else { "" },
            self.tape.n_ops(),
            if self.dtype == DType::F32 { ", dtype='float32'" } else { "" }
        )
    }
}

/// The element type named `dtype` ("float64" or "float32").
fn dtype_of(py: Python<'_>, dtype: &str) -> PyResult<DType> {
    DType::from_name(dtype).ok_or_else(|| {
        error(py, "ConfigError", format!("dtype must be 'float64' or 'float32', got {dtype:?}"))
    })
}

/// Prepares `tape` for the interpreter tier, computing in `dtype`.
#[pyfunction]
#[pyo3(signature = (tape, var_names, vector_math=true, fallback_reason=None, dtype="float64"))]
pub fn compile_interpreter(
    py: Python<'_>,
    tape: &PyTape,
    var_names: Vec<String>,
    vector_math: bool,
    fallback_reason: Option<String>,
    dtype: &str,
) -> PyResult<PyCompiledFn> {
    let shared = tape.inner.clone();
    let kernel = match dtype_of(py, dtype)? {
        DType::F64 => AnyKernel::F64(Arc::new(Interpreter::<f64>::with_options(shared, vector_math))),
        DType::F32 => AnyKernel::F32(Arc::new(Interpreter::<f32>::with_options(shared, vector_math))),
    };
    let active = Active::new(kernel, "interpreter", fallback_reason, None);
    Ok(PyCompiledFn::with(active, tape.inner.clone(), var_names))
}

/// Compiles `tape` with Cranelift (GIL released). Raises `CompileError` if Cranelift
/// cannot compile it; the caller decides what to fall back to. `into`: a function of the
/// same tape that runs the new code from the moment it exists, before this call needs the
/// GIL again (a background tier-up then never waits for the GIL to take effect).
#[pyfunction]
#[pyo3(signature = (tape, var_names, vector_math=true, fallback_reason=None, into=None, dtype="float64"))]
pub fn compile_cranelift(
    py: Python<'_>,
    tape: &PyTape,
    var_names: Vec<String>,
    vector_math: bool,
    fallback_reason: Option<String>,
    into: Option<PyRef<'_, PyCompiledFn>>,
    dtype: &str,
) -> PyResult<PyCompiledFn> {
    let dtype = dtype_of(py, dtype)?;
    let target = match &into {
        Some(f) if *f.tape != *tape.inner || f.dtype != dtype => {
            return Err(PyValueError::new_err(
                "can only install code compiled from the same tape for the same element type",
            ));
        }
        Some(f) => Some(f.active.clone()),
        None => None,
    };
    let shared = tape.inner.clone();
    let active = py
        .detach(move || -> Result<Arc<Active>, String> {
            let options = alkahest_cranelift::Options { vector_math, verify: false };
            let kernel = match dtype {
                DType::F64 => {
                    AnyKernel::F64(Arc::new(alkahest_cranelift::compile_with::<f64>(shared, options)?))
                }
                DType::F32 => {
                    AnyKernel::F32(Arc::new(alkahest_cranelift::compile_with::<f32>(shared, options)?))
                }
            };
            let active = Arc::new(Active::new(kernel, "cranelift", fallback_reason, None));
            if let Some(slot) = target {
                slot.install_if(active.clone(), |_| true);
            }
            Ok(active)
        })
        .map_err(|e| error(py, "CompileError", e))?;
    Ok(PyCompiledFn::from_active(active, tape.inner.clone(), var_names))
}

/// Wraps native entry points made by a tier in Python (the LLVM tier) as a function the
/// runner drives like any other. `backend` must own the code at `scalar_addr` and
/// `bulk_addr` (both implementing the kernel ABI for `tape`); the function keeps it alive.
/// Internal: wrong addresses crash the process.
#[pyfunction]
#[pyo3(signature = (tape, var_names, tier, scalar_addr, bulk_addr, backend, dtype="float64"))]
#[allow(clippy::too_many_arguments)] // the bindings mirror the Python call
pub fn wrap_native(
    py: Python<'_>,
    tape: &PyTape,
    var_names: Vec<String>,
    tier: String,
    scalar_addr: usize,
    bulk_addr: usize,
    backend: Py<PyAny>,
    dtype: &str,
) -> PyResult<PyCompiledFn> {
    if scalar_addr == 0 || bulk_addr == 0 {
        return Err(PyValueError::new_err("native entry points must be non-null"));
    }
    let (n_in, n_out) = (tape.inner.n_inputs, tape.inner.n_outputs());
    // SAFETY: the caller (alkahest.backends) passes the addresses of the JIT-compiled
    // entry points of `tape` for `dtype`, owned by `backend`, which the function holds.
    let kernel = unsafe {
        match dtype_of(py, dtype)? {
            DType::F64 => AnyKernel::F64(Arc::new(NativeKernel::<f64>::new(
                n_in,
                n_out,
                std::mem::transmute::<usize, ScalarFn<f64>>(scalar_addr),
                std::mem::transmute::<usize, BulkFn<f64>>(bulk_addr),
            ))),
            DType::F32 => AnyKernel::F32(Arc::new(NativeKernel::<f32>::new(
                n_in,
                n_out,
                std::mem::transmute::<usize, ScalarFn<f32>>(scalar_addr),
                std::mem::transmute::<usize, BulkFn<f32>>(bulk_addr),
            ))),
        }
    };
    let active = Active::new(kernel, &tier, None, Some(backend));
    Ok(PyCompiledFn::with(active, tape.inner.clone(), var_names))
}

/// Every routine native code may call, `{symbol name: address}` (see
/// `alkahest_core::ffi::symbols`), libmvec routines in use included.
#[pyfunction]
pub fn native_symbols() -> std::collections::HashMap<String, usize> {
    let mut out: std::collections::HashMap<String, usize> =
        alkahest_core::ffi::symbols().into_iter().collect();
    for dtype in [DType::F64, DType::F32] {
        for (_, name, addr, _) in alkahest_core::vecmath::functions_of(dtype) {
            out.insert(name, addr);
        }
    }
    out
}

/// The vector-math routines bulk evaluation uses on `dtype` elements ("float64" or
/// "float32"): `{op name: (libmvec symbol, lanes)}`.
#[pyfunction]
#[pyo3(signature = (dtype="float64"))]
pub fn vector_math_functions(
    py: Python<'_>,
    dtype: &str,
) -> PyResult<std::collections::HashMap<&'static str, (String, usize)>> {
    Ok(alkahest_core::vecmath::functions_of(dtype_of(py, dtype)?)
        .into_iter()
        .map(|(op, name, _, lanes)| (op.name(), (name, lanes)))
        .collect())
}

/// Threads `numpy_eval_par` uses by default: `ALKAHEST_NUM_THREADS`, else all cores.
#[pyfunction]
pub fn default_threads() -> usize {
    runner::default_threads()
}

/// Most threads `numpy_eval_par` uses (the size of its one worker pool): the core count,
/// or `ALKAHEST_NUM_THREADS` if larger, at most 1024. Larger `threads=` are capped to it.
#[pyfunction]
pub fn max_threads() -> usize {
    alkahest_core::workers::max_threads()
}

/// The vector-math instruction set bulk evaluation uses ("avx512", "avx2", "none", "disabled").
#[pyfunction]
pub fn vector_math_isa() -> &'static str {
    alkahest_core::vecmath::isa()
}
