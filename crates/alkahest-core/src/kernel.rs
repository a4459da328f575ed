//! The kernel ABI: what every tier provides and what the runner calls.
//!
//! Native tiers expose two C entry points, for one element type `T` (`double` or
//! `float`, see `element`):
//!
//! ```c
//! void scalar(const T *args, T *out);
//! void bulk(const T *const *in, const int64_t *stride, T *const *out, int64_t n);
//! ```
//!
//! [`Kernel`] is the same contract as a Rust trait, so the interpreter and native code
//! are driven by one runner.

use std::sync::Arc;

use crate::element::{DType, Element};

/// The C type of the `scalar` entry point.
pub type ScalarFn<E = f64> = unsafe extern "C" fn(*const E, *mut E);

/// The C type of the `bulk` entry point (strides in elements, 0 broadcasts).
pub type BulkFn<E = f64> = unsafe extern "C" fn(*const *const E, *const i64, *const *mut E, i64);

/// A compiled function of `n_inputs` values of type `E` to `n_outputs` of them.
pub trait Kernel<E: Element = f64>: Send + Sync {
    fn n_inputs(&self) -> usize;
    fn n_outputs(&self) -> usize;

    /// What this kernel runs, as readable text (tape listing, compiler IR, ...).
    fn source(&self) -> String;

    /// Evaluates at one point. `args.len() == n_inputs`, `out.len() == n_outputs`.
    fn eval(&self, args: &[E], out: &mut [E]);

    /// Evaluates at `n` points: input `i`, point `k` is `*inputs[i].offset(k * strides[i])`
    /// (stride in elements, 0 broadcasts one value); output `j`, point `k` is
    /// `*outputs[j].add(k)`.
    ///
    /// # Safety
    /// Every input pointer must be readable at the `n` strided positions and every output
    /// pointer writable for `n` contiguous elements; outputs must not overlap inputs except
    /// at the same point.
    unsafe fn bulk(&self, inputs: &[*const E], strides: &[isize], outputs: &[*mut E], n: usize);
}

/// Mean seconds per [`Kernel::eval`] call at `args` over `reps` calls: the scalar cost
/// calibration measures, without the Python call around it.
pub fn time_eval<E: Element>(kernel: &dyn Kernel<E>, args: &[E], reps: usize) -> f64 {
    let mut out = vec![E::ZERO; kernel.n_outputs()];
    let start = std::time::Instant::now();
    for _ in 0..reps {
        kernel.eval(std::hint::black_box(args), &mut out);
        std::hint::black_box(&mut out);
    }
    start.elapsed().as_secs_f64() / reps.max(1) as f64
}

/// A kernel whose two entry points are native code made elsewhere (the LLVM tier's JIT):
/// the runner calls `bulk` as it calls every other tier.
pub struct NativeKernel<E: Element = f64> {
    n_inputs: usize,
    n_outputs: usize,
    scalar: ScalarFn<E>,
    bulk: BulkFn<E>,
}

impl<E: Element> NativeKernel<E> {
    /// # Safety
    /// `scalar` and `bulk` must implement the kernel ABI for `n_inputs` inputs and
    /// `n_outputs` outputs, and stay callable (from any thread) as long as the kernel lives.
    pub unsafe fn new(n_inputs: usize, n_outputs: usize, scalar: ScalarFn<E>, bulk: BulkFn<E>) -> Self {
        NativeKernel { n_inputs, n_outputs, scalar, bulk }
    }
}

impl<E: Element> Kernel<E> for NativeKernel<E> {
    fn n_inputs(&self) -> usize {
        self.n_inputs
    }

    fn n_outputs(&self) -> usize {
        self.n_outputs
    }

    fn source(&self) -> String {
        format!(
            "; native code: scalar at {:p}, bulk at {:p}",
            self.scalar as *const u8, self.bulk as *const u8
        )
    }

    fn eval(&self, args: &[E], out: &mut [E]) {
        assert!(args.len() == self.n_inputs && out.len() == self.n_outputs);
        // SAFETY: the lengths match the ABI contract given to `new`.
        unsafe { (self.scalar)(args.as_ptr(), out.as_mut_ptr()) }
    }

    unsafe fn bulk(&self, inputs: &[*const E], strides: &[isize], outputs: &[*mut E], n: usize) {
        // isize and i64 have one layout on the 64-bit targets native code is made for.
        (self.bulk)(inputs.as_ptr(), strides.as_ptr() as *const i64, outputs.as_ptr(), n as i64)
    }
}

/// A kernel of either element type, as a function holds it: scalar calls take and give
/// float64 whatever the type (a float32 kernel rounds its arguments and widens its
/// results); bulk calls go to the typed kernel ([`AnyKernel::f64`], [`AnyKernel::f32`]).
#[derive(Clone)]
pub enum AnyKernel {
    F64(Arc<dyn Kernel<f64>>),
    F32(Arc<dyn Kernel<f32>>),
}

impl AnyKernel {
    pub fn dtype(&self) -> DType {
        match self {
            AnyKernel::F64(_) => DType::F64,
            AnyKernel::F32(_) => DType::F32,
        }
    }

    pub fn n_inputs(&self) -> usize {
        match self {
            AnyKernel::F64(k) => k.n_inputs(),
            AnyKernel::F32(k) => k.n_inputs(),
        }
    }

    pub fn n_outputs(&self) -> usize {
        match self {
            AnyKernel::F64(k) => k.n_outputs(),
            AnyKernel::F32(k) => k.n_outputs(),
        }
    }

    pub fn source(&self) -> String {
        match self {
            AnyKernel::F64(k) => k.source(),
            AnyKernel::F32(k) => k.source(),
        }
    }

    /// The float64 kernel, if this is one.
    pub fn f64(&self) -> Option<&Arc<dyn Kernel<f64>>> {
        match self {
            AnyKernel::F64(k) => Some(k),
            AnyKernel::F32(_) => None,
        }
    }

    /// The float32 kernel, if this is one.
    pub fn f32(&self) -> Option<&Arc<dyn Kernel<f32>>> {
        match self {
            AnyKernel::F32(k) => Some(k),
            AnyKernel::F64(_) => None,
        }
    }

    /// Evaluates at one point given in float64 (see the type's description).
    pub fn eval(&self, args: &[f64], out: &mut [f64]) {
        match self {
            AnyKernel::F64(k) => k.eval(args, out),
            AnyKernel::F32(k) => with_narrowed(args, out.len(), |a, o| {
                k.eval(a, o);
                for (w, &n) in out.iter_mut().zip(o.iter()) {
                    *w = f64::from(n);
                }
            }),
        }
    }

    /// [`time_eval`] of the typed kernel at `args` (rounded for a float32 kernel).
    pub fn time_eval(&self, args: &[f64], reps: usize) -> f64 {
        match self {
            AnyKernel::F64(k) => time_eval(k.as_ref(), args, reps),
            AnyKernel::F32(k) => {
                let narrow: Vec<f32> = args.iter().map(|&x| x as f32).collect();
                time_eval(k.as_ref(), &narrow, reps)
            }
        }
    }
}

/// Calls `f` with `args` rounded to float32 and room for `n_out` float32 results, on the
/// stack for the common few arguments (a scalar call is tens of nanoseconds).
fn with_narrowed(args: &[f64], n_out: usize, f: impl FnOnce(&[f32], &mut [f32])) {
    const STACK: usize = 16;
    if args.len() <= STACK && n_out <= STACK {
        let (mut a, mut o) = ([0.0f32; STACK], [0.0f32; STACK]);
        for (n, &w) in a.iter_mut().zip(args) {
            *n = w as f32;
        }
        f(&a[..args.len()], &mut o[..n_out]);
    } else {
        let a: Vec<f32> = args.iter().map(|&x| x as f32).collect();
        let mut o = vec![0.0f32; n_out];
        f(&a, &mut o);
    }
}
