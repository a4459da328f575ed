//! The bulk call path: `numpy_eval`, `numpy_eval_par` and `f(arrays...)` go from Python
//! to the runner here, without a Python layer in between for the common case.
//!
//! Arrays of the function's element type (any strides) and Python floats are read in
//! place; a float64 function that follows its inputs' type sends all-float32 inputs to
//! its float32 variant; anything else (lists, other dtypes, DLPack objects) is converted
//! by `alkahest.batch._slow_path` first, which then comes back here. Shapes, `out` and
//! overlap are checked here only.

use std::sync::Arc;

use numpy::npyffi::flags::NPY_ARRAY_WRITEABLE;
use numpy::{IxDyn, PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyFloat, PyList, PyTuple};

use alkahest_core::runner::{self, ArrayView};
use alkahest_core::{workers, AnyKernel, DType, Element, Kernel};

use crate::compiled::PyCompiledFn;
use crate::errors::{error, type_name, IntoPy};

/// Calls of fewer points run without releasing the GIL (a release and re-acquire costs
/// ~0.1-0.2 us; 2,048 points of the cheapest kernel take ~1 us).
const KEEP_GIL_BELOW: usize = 2048;

/// An element type bulk calls compute in: a kernel's and a NumPy array's.
pub(crate) trait Elem: Element + numpy::Element {
    /// The kernel of this element type, if `kernel` is one.
    fn kernel(kernel: &AnyKernel) -> Option<&Arc<dyn Kernel<Self>>>;
}

impl Elem for f64 {
    fn kernel(kernel: &AnyKernel) -> Option<&Arc<dyn Kernel<f64>>> {
        kernel.f64()
    }
}

impl Elem for f32 {
    fn kernel(kernel: &AnyKernel) -> Option<&Arc<dyn Kernel<f32>>> {
        kernel.f32()
    }
}

/// Raw pointers handed to the runner while the GIL is released.
struct Job<E> {
    inputs: Vec<ArrayView<E>>,
    shape: Vec<usize>,
    outputs: Vec<*mut E>,
}

// SAFETY: the arrays behind the pointers are kept alive by the caller's references for
// the whole (GIL-released) run.
unsafe impl<E> Send for Job<E> {}

/// What `out=` was given as, so the call returns it the same way.
enum OutForm<'py> {
    /// No `out`: fresh arrays.
    Fresh,
    /// One array for a one-output function, or one `(n_outputs, ...)` array.
    Array(Bound<'py, PyAny>),
    /// A tuple or list of arrays, one per output.
    Sequence,
}

/// The inputs as views of `E` elements, or None if one needs converting first (another
/// dtype, not an array, misaligned). `scalars` holds the values of Python floats and
/// ints (rounded to `E`, as NumPy does), read as 0-d inputs.
fn views<'py, E: Elem>(
    arrays: &Bound<'py, PyTuple>,
    scalars: &mut [E],
    keep: &mut Vec<Bound<'py, PyArrayDyn<E>>>,
) -> Option<Vec<ArrayView<E>>> {
    let size = std::mem::size_of::<E>() as isize;
    let mut out = Vec::with_capacity(arrays.len());
    for (i, obj) in arrays.iter().enumerate() {
        if let Ok(a) = obj.cast::<PyArrayDyn<E>>() {
            let ptr = a.data() as *const E;
            if !(ptr as usize).is_multiple_of(size as usize) || a.strides().iter().any(|s| s % size != 0) {
                return None;
            }
            out.push(ArrayView {
                ptr,
                shape: a.shape().to_vec(),
                strides: a.strides().iter().map(|s| s / size).collect(),
            });
            keep.push(a.clone());
        } else if let Ok(f) = obj.cast_exact::<PyFloat>() {
            // Only Python's own floats: a NumPy float64 scalar has a type of its own.
            scalars[i] = E::from_f64(f.value());
            out.push(ArrayView { ptr: &scalars[i], shape: vec![], strides: vec![] });
        } else if let (true, Ok(v)) = (obj.is_instance_of::<pyo3::types::PyInt>(), obj.extract::<f64>()) {
            scalars[i] = E::from_f64(v); // NumPy's conversion too: int to the nearest value
            out.push(ArrayView { ptr: &scalars[i], shape: vec![], strides: vec![] });
        } else {
            return None;
        }
    }
    Some(out)
}

/// Fresh outputs that take this many bytes together are rows of one array. Separate
/// arrays of a few hundred KiB each come from the C heap, which returns them to the
/// system when they are freed, so every call faults them in again page by page (a
/// function of 100 outputs at 10^4 points: ~280 ns a point of its ~260); NumPy gives
/// one array of this size huge pages.
const ONE_BLOCK_BYTES: usize = 4 << 20;

fn writeable<E: Elem>(a: &Bound<'_, PyArrayDyn<E>>) -> bool {
    // SAFETY: reading the flags of a live array object.
    unsafe { (*a.as_array_ptr()).fields.flags & NPY_ARRAY_WRITEABLE != 0 }
}

/// The output arrays `out` names, checked against the call's shape and element type.
fn outputs<'py, E: Elem>(
    py: Python<'py>,
    out: &Bound<'py, PyAny>,
    n: usize,
    shape: &[usize],
) -> PyResult<(Vec<Bound<'py, PyArrayDyn<E>>>, OutForm<'py>)> {
    let arity = || {
        error(
            py,
            "ArityError",
            format!(
                "out must be {} (the function has {n} output{})",
                if n == 1 {
                    "an array".to_string()
                } else {
                    format!("a tuple of {n} arrays or one array of shape (n_outputs, ...)")
                },
                if n == 1 { "" } else { "s" }
            ),
        )
    };
    let (items, form): (Vec<Bound<'py, PyAny>>, OutForm<'py>) = if let Ok(t) = out.cast::<PyTuple>() {
        (t.iter().collect(), OutForm::Sequence)
    } else if let Ok(l) = out.cast::<PyList>() {
        (l.iter().collect(), OutForm::Sequence)
    } else if let Ok(a) = out.cast::<PyArrayDyn<E>>() {
        let whole = n > 1 && a.ndim() == shape.len() + 1 && a.shape()[0] == n && &a.shape()[1..] == shape;
        if whole {
            let rows = (0..n).map(|j| out.get_item(j)).collect::<PyResult<Vec<_>>>()?;
            (rows, OutForm::Array(out.clone()))
        } else {
            (vec![out.clone()], OutForm::Array(out.clone()))
        }
    } else if out.cast::<numpy::PyUntypedArray>().is_ok() {
        (vec![out.clone()], OutForm::Array(out.clone()))
    } else {
        return Err(arity());
    };
    if items.len() != n {
        return Err(arity());
    }
    let mut arrays = Vec::with_capacity(n);
    for (j, o) in items.iter().enumerate() {
        let Ok(a) = o.cast::<PyArrayDyn<E>>() else {
            return Err(match o.cast::<numpy::PyUntypedArray>() {
                Ok(u) => error(
                    py,
                    "DTypeError",
                    format!(
                        "out[{j}] has dtype {}, but this call computes in {e} ({}); pass {e} outputs{}",
                        u.dtype(),
                        if E::DTYPE == DType::F32 {
                            "float32 inputs, or CompileConfig(dtype='float32')"
                        } else {
                            "float64 inputs"
                        },
                        if E::DTYPE == DType::F32 { ", or float64 inputs for float64 results" } else { "" },
                        e = E::DTYPE,
                    ),
                ),
                Err(_) => {
                    error(py, "DTypeError", format!("out[{j}] must be a NumPy array, got {}", type_name(o)))
                }
            });
        };
        if a.shape() != shape {
            return Err(error(
                py,
                "ShapeError",
                format!(
                    "out[{j}] has shape {}, but the inputs broadcast to {}",
                    runner::shape_text(a.shape()),
                    runner::shape_text(shape)
                ),
            ));
        }
        if !a.is_c_contiguous() || !writeable(a) {
            return Err(error(py, "ShapeError", format!("out[{j}] must be C-contiguous and writeable")));
        }
        arrays.push(a.clone());
    }
    Ok((arrays, form))
}

/// Whether `out` is one C-contiguous `E` array of shape (*output_shape, *shape).
fn is_whole<E: Elem>(out: &Bound<'_, PyAny>, output_shape: &[usize], shape: &[usize]) -> bool {
    out.cast::<PyArrayDyn<E>>().is_ok_and(|a| {
        a.shape().len() == output_shape.len() + shape.len()
            && a.shape()[..output_shape.len()] == *output_shape
            && a.shape()[output_shape.len()..] == *shape
            && a.is_c_contiguous()
            && writeable(a)
    })
}

/// The `n` per-output views of a C-contiguous array holding (*output_shape, *shape).
/// A fresh array of shape (*lead, *shape) for the run to fill.
fn block<'py, E: Elem>(py: Python<'py>, lead: &[usize], shape: &[usize]) -> Bound<'py, PyAny> {
    let full: Vec<usize> = lead.iter().chain(shape).copied().collect();
    // SAFETY: every caller hands it to the run, which writes every element before anyone
    // reads it.
    unsafe { PyArrayDyn::<E>::new(py, IxDyn(&full), false) }.into_any()
}

fn rows<'py, E: Elem>(
    whole: &Bound<'py, PyAny>,
    n: usize,
    shape: &[usize],
) -> PyResult<Vec<Bound<'py, PyArrayDyn<E>>>> {
    let flat_shape: Vec<usize> = std::iter::once(n).chain(shape.iter().copied()).collect();
    let flat = whole.call_method1("reshape", (flat_shape,))?;
    (0..n).map(|j| Ok(flat.get_item(j)?.cast_into::<PyArrayDyn<E>>()?)).collect()
}

/// Whether an output's memory overlaps an input's or another output's.
fn overlapping<E: Elem>(inputs: &[ArrayView<E>], outs: &[Bound<'_, PyArrayDyn<E>>]) -> bool {
    let size = std::mem::size_of::<E>() as isize;
    let in_spans: Vec<(usize, usize)> =
        inputs.iter().filter_map(|v| runner::extent(v.ptr, &v.shape, &v.strides)).collect();
    let out_spans: Vec<(usize, usize)> = outs
        .iter()
        .filter_map(|o| {
            runner::extent(o.data(), o.shape(), &o.strides().iter().map(|s| s / size).collect::<Vec<_>>())
        })
        .collect();
    runner::overlapping(&in_spans, &out_spans)
}

/// `threads` for "the default thread count", resolved only for calls big enough to use
/// threads (reading the environment costs more than a small call computes).
pub const DEFAULT_THREADS: usize = 0;

/// `f` over `arrays` into `out` (or fresh arrays) on `threads` threads.
pub fn eval<'py>(
    f: &Bound<'py, PyCompiledFn>,
    arrays: &Bound<'py, PyTuple>,
    out: Option<&Bound<'py, PyAny>>,
    threads: usize,
) -> PyResult<Py<PyAny>> {
    eval_inputs(f, arrays, out, threads, false)
}

fn eval_inputs<'py>(
    f: &Bound<'py, PyCompiledFn>,
    arrays: &Bound<'py, PyTuple>,
    out: Option<&Bound<'py, PyAny>>,
    threads: usize,
    converted: bool,
) -> PyResult<Py<PyAny>> {
    match f.get().element_type() {
        DType::F64 => eval_typed::<f64>(f, arrays, out, threads, converted),
        DType::F32 => eval_typed::<f32>(f, arrays, out, threads, converted),
    }
}

fn eval_typed<'py, E: Elem>(
    f: &Bound<'py, PyCompiledFn>,
    arrays: &Bound<'py, PyTuple>,
    out: Option<&Bound<'py, PyAny>>,
    threads: usize,
    converted: bool,
) -> PyResult<Py<PyAny>> {
    let py = f.py();
    let this = f.get();
    let n_in = this.n_inputs();
    if arrays.len() != n_in {
        return Err(error(
            py,
            "ArityError",
            format!("{} takes {n_in} input arrays, got {}", this.repr(), arrays.len()),
        ));
    }
    let mut scalars = vec![E::ZERO; n_in];
    let mut keep = Vec::new();
    let Some(inputs) = views::<E>(arrays, &mut scalars, &mut keep) else {
        if E::DTYPE == DType::F64 && all_float32(arrays) {
            if let Some(variant) = this.float32_variant(py)? {
                return eval_typed::<f32>(variant.bind(py), arrays, out, threads, converted);
            }
        }
        if converted {
            return Err(error(
                py,
                "DTypeError",
                format!("an input could not be read as aligned {} values; pass a copy", E::DTYPE),
            ));
        }
        // Lists, other dtypes, DLPack: NumPy converts, then this runs again. Dask
        // arrays: a lazy Dask result instead.
        static SLOW_PATH: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
        let (converted, lazy): (Option<Bound<'py, PyTuple>>, Bound<'py, PyAny>) = SLOW_PATH
            .import(py, "alkahest.batch", "_slow_path")?
            .call1((f, arrays, out, threads))?
            .extract()?;
        return match converted {
            Some(arrays) => eval_inputs(f, &arrays, out, threads, true),
            None => Ok(lazy.unbind()),
        };
    };
    let shape = runner::broadcast_shape(inputs.iter().map(|v| v.shape.as_slice())).py_err(py)?;
    let n_out = this.n_outputs();
    let output_shape = this.output_shape_of();
    let (outs, form) = match (out, output_shape) {
        (None, Some(oshape)) => {
            // Outputs given as an array: one array of shape (*output_shape, *shape).
            let whole = block::<E>(py, oshape, &shape);
            (rows(&whole, n_out, &shape)?, OutForm::Array(whole))
        }
        (None, None)
            if n_out > 1 && n_out * shape.iter().product::<usize>() * size_of::<E>() >= ONE_BLOCK_BYTES =>
        {
            // Many outputs: rows of one block (see ONE_BLOCK_BYTES).
            let whole = block::<E>(py, &[n_out], &shape);
            (rows(&whole, n_out, &shape)?, OutForm::Fresh)
        }
        (None, None) => {
            // SAFETY: every element is written by the run below before anyone reads it.
            let fresh =
                (0..n_out).map(|_| unsafe { PyArrayDyn::<E>::new(py, IxDyn(&shape), false) }).collect();
            (fresh, OutForm::Fresh)
        }
        (Some(o), Some(oshape)) if is_whole::<E>(o, oshape, &shape) => {
            (rows(o, n_out, &shape)?, OutForm::Array(o.clone()))
        }
        (Some(o), _) => outputs(py, o, n_out, &shape)?,
    };
    let n: usize = shape.iter().product();
    if matches!(form, OutForm::Fresh) || !overlapping(&inputs, &outs) {
        run(f, inputs, &shape, outs.iter().map(|o| o.data()).collect(), threads, n)?;
    } else {
        // An output shares memory with an input (or another output): the kernel reads
        // inputs while it writes outputs, block by block, so it writes fresh arrays
        // first (as NumPy buffers overlapping operands).
        // SAFETY: as above, fully written by the run.
        let fresh: Vec<_> =
            (0..n_out).map(|_| unsafe { PyArrayDyn::<E>::new(py, IxDyn(&shape), false) }).collect();
        run(f, inputs, &shape, fresh.iter().map(|o| o.data()).collect(), threads, n)?;
        for (o, r) in outs.iter().zip(&fresh) {
            // SAFETY: both are C-contiguous arrays of `n` elements of E (checked).
            unsafe { std::ptr::copy(r.data(), o.data(), n) };
        }
    }
    drop(keep);
    match form {
        OutForm::Array(o) => Ok(o.unbind()),
        OutForm::Sequence => Ok(PyTuple::new(py, outs)?.into_any().unbind()),
        OutForm::Fresh => {
            // A ufunc on scalars gives NumPy scalars, not 0-d arrays.
            let items: Vec<Bound<'py, PyAny>> = if shape.is_empty() {
                outs.iter().map(|o| o.get_item(())).collect::<PyResult<_>>()?
            } else {
                outs.into_iter().map(Bound::into_any).collect()
            };
            if n_out == 1 {
                Ok(items.into_iter().next().expect("one output").unbind())
            } else {
                Ok(PyTuple::new(py, items)?.into_any().unbind())
            }
        }
    }
}

/// Whether every input is a float32 array or a Python number, and one at least an array
/// (NumPy's rule: Python numbers take the arrays' type).
fn all_float32(arrays: &Bound<'_, PyTuple>) -> bool {
    let mut any = false;
    for obj in arrays.iter() {
        if obj.cast::<PyArrayDyn<f32>>().is_ok() {
            any = true;
        } else if !(obj.cast_exact::<PyFloat>().is_ok() || obj.cast_exact::<pyo3::types::PyInt>().is_ok()) {
            return false;
        }
    }
    any
}

/// Runs the kernel with the GIL released, feeding the function's meter and timing.
fn run<E: Elem>(
    f: &Bound<'_, PyCompiledFn>,
    inputs: Vec<ArrayView<E>>,
    shape: &[usize],
    outputs: Vec<*mut E>,
    threads: usize,
    n: usize,
) -> PyResult<()> {
    let py = f.py();
    let this = f.get();
    // Calls too small for threads run on the calling thread whatever was asked (the
    // runner would too); only parallel-sized calls read the thread settings.
    let threads = match threads {
        _ if n < runner::MIN_PARALLEL_POINTS => 1,
        DEFAULT_THREADS => runner::default_threads(),
        t => t.min(workers::max_threads()),
    };
    this.count_points(py, n as u64, threads);
    let active = this.active(); // lives as long as `f`, like every installed kernel
    let kernel =
        E::kernel(&active.kernel).expect("installed kernels have the function's element type").clone();
    let job = Job { inputs, shape: shape.to_vec(), outputs };
    let start = std::time::Instant::now();
    // A long call looks for Ctrl-C (Python's pending signals) every few milliseconds.
    let mut signal: Option<PyErr> = None;
    let pending = &mut signal;
    let work = move || {
        let job = job;
        let mut interrupted = || {
            Python::attach(|py| match py.check_signals() {
                Ok(()) => false,
                Err(e) => {
                    *pending = Some(e);
                    true
                }
            })
        };
        // SAFETY: views and outputs describe live NumPy arrays checked by the caller.
        unsafe {
            runner::run_interruptible(
                kernel.as_ref(),
                &job.inputs,
                &job.shape,
                &job.outputs,
                threads,
                &mut interrupted,
            )
        }
    };
    // Releasing and retaking the GIL costs more than a small call computes.
    let result = if n < KEEP_GIL_BELOW { work() } else { py.detach(work) };
    if let Some(e) = signal {
        return Err(e);
    }
    if threads == 1 && n > 0 {
        this.record_bulk(active, n as u64, start.elapsed());
    }
    result.py_err(py)
}

/// `numpy_eval(f, *arrays, out=None)`: evaluates `f` elementwise over arrays (one per
/// input, broadcast together like NumPy's) on the calling thread, in one fused pass with
/// the GIL released. Returns an array, or a tuple of arrays for several outputs.
///
/// Any array-like works as input: float64 arrays (any strides, read in place) and Python
/// floats directly; lists, integer and bool arrays are converted; PyTorch CPU tensors and
/// JAX arrays are read through DLPack without a copy. `out` (an array, a tuple or list of
/// C-contiguous float64 arrays, or for several outputs one array of shape
/// `(n_outputs, *shape)`) receives the results and is returned; it may share memory with
/// the inputs (the results are then computed first).
#[pyfunction]
#[pyo3(signature = (f, *arrays, out=None))]
pub fn numpy_eval<'py>(
    f: &Bound<'py, PyAny>,
    arrays: &Bound<'py, PyTuple>,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Py<PyAny>> {
    eval(compiled(f)?, arrays, out, 1)
}

/// `numpy_eval_par(f, *arrays, out=None, threads=None)`: like `numpy_eval`, split over
/// `threads` threads (default: `ALKAHEST_NUM_THREADS`, else every core; at most
/// `max_threads()`, the size of the one worker pool). Calls too small for threads to pay
/// (under 32,768 points) run on the calling thread. Results are identical to
/// `numpy_eval`'s.
#[pyfunction]
#[pyo3(signature = (f, *arrays, out=None, threads=None))]
pub fn numpy_eval_par<'py>(
    f: &Bound<'py, PyAny>,
    arrays: &Bound<'py, PyTuple>,
    out: Option<&Bound<'py, PyAny>>,
    threads: Option<&Bound<'py, PyAny>>,
) -> PyResult<Py<PyAny>> {
    let threads = match threads {
        None => DEFAULT_THREADS,
        Some(t) => match t.extract::<usize>() {
            Ok(n) if n >= 1 && !t.is_instance_of::<pyo3::types::PyBool>() => n,
            _ => {
                return Err(error(
                    t.py(),
                    "ArgumentError",
                    format!("threads must be a positive int, got {}", t.repr()?),
                ))
            }
        },
    };
    eval(compiled(f)?, arrays, out, threads)
}

fn compiled<'a, 'py>(f: &'a Bound<'py, PyAny>) -> PyResult<&'a Bound<'py, PyCompiledFn>> {
    f.cast::<PyCompiledFn>().map_err(|_| {
        error(
            f.py(),
            "ArgumentTypeError",
            format!("expected a CompiledFn (from compile_expr), got {}", type_name(f)),
        )
    })
}
