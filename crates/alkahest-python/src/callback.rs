//! `CompiledFn.low_level_callable()`: the function as a C callback SciPy calls without
//! Python (`scipy.integrate.quad`), `double f(int n, double *xx, void *user_data)`.
//!
//! The callback is one capsule: its pointer is [`trampoline`], its name the C signature
//! SciPy matches, its context a boxed strong reference to the function (freed by the
//! capsule's destructor). Each call runs the kernel installed at that moment and feeds
//! an adaptive function's meter, so a function integrated often tiers up as it would
//! when called from Python.

use std::ffi::{c_char, c_int, c_void, CStr};

use pyo3::ffi;
use pyo3::prelude::*;

use crate::compiled::PyCompiledFn;

const SIGNATURE: &CStr = c"double (int, double *, void *)";

/// The C callback: `xx` holds `n` arguments (quad's `x` then its `args`). A call with
/// the wrong number of arguments returns NaN (a C callback cannot raise).
unsafe extern "C" fn trampoline(n: c_int, xx: *const f64, user_data: *mut c_void) -> f64 {
    // SAFETY: `user_data` is the capsule's context, a live `Py<PyCompiledFn>` (see below).
    let f: &PyCompiledFn = unsafe { (*(user_data as *const Py<PyCompiledFn>)).get() };
    if n < 0 || n as usize != f.n_inputs() || xx.is_null() {
        return f64::NAN;
    }
    // SAFETY: SciPy passes `n` readable doubles.
    let args = unsafe { std::slice::from_raw_parts(xx, n as usize) };
    // One output: `low_level_callable` refuses other functions.
    let mut out = [0.0f64];
    f.active().kernel.eval(args, &mut out);
    f.count_call();
    out[0]
}

unsafe extern "C" fn release(capsule: *mut ffi::PyObject) {
    // SAFETY: called once, with the GIL, by the capsule being destroyed; its context is
    // the box made in `low_level_callable`.
    unsafe {
        let context = ffi::PyCapsule_GetContext(capsule);
        if !context.is_null() {
            drop(Box::from_raw(context as *mut Py<PyCompiledFn>));
        }
    }
}

/// The function as a `scipy.LowLevelCallable` of signature
/// `double (int, double *, void *)`.
pub fn low_level_callable(self_: &Bound<'_, PyCompiledFn>) -> PyResult<Py<PyAny>> {
    let py = self_.py();
    let scipy = py.import("scipy").map_err(|_| {
        pyo3::exceptions::PyImportError::new_err(
            "low_level_callable() needs SciPy: pip install 'alkahest[scipy]'",
        )
    })?;
    let context = Box::into_raw(Box::new(self_.clone().unbind()));
    // SAFETY: a capsule of a non-null function pointer and a static name; the context is
    // set before anything can read it and freed by `release` exactly once.
    let capsule = unsafe {
        let raw =
            ffi::PyCapsule_New(trampoline as *mut c_void, SIGNATURE.as_ptr() as *const c_char, Some(release));
        if raw.is_null() {
            drop(Box::from_raw(context));
            return Err(PyErr::fetch(py));
        }
        let capsule = Bound::from_owned_ptr(py, raw);
        if ffi::PyCapsule_SetContext(raw, context as *mut c_void) != 0 {
            drop(Box::from_raw(context));
            return Err(PyErr::fetch(py));
        }
        capsule
    };
    Ok(scipy.getattr("LowLevelCallable")?.call1((capsule,))?.unbind())
}
