//! The kernel ABI: what every tier provides and what the runner calls.
//!
//! Native tiers expose two C entry points (see DESIGN.md):
//!
//! ```c
//! void scalar(const double *args, double *out);
//! void bulk(const double *const *in, const int64_t *stride, double *const *out, int64_t n);
//! ```
//!
//! [`Kernel`] is the same contract as a Rust trait, so the interpreter and native code
//! are driven by one runner.

/// The C type of the `scalar` entry point.
pub type ScalarFn = unsafe extern "C" fn(*const f64, *mut f64);

/// The C type of the `bulk` entry point (strides in elements, 0 broadcasts).
pub type BulkFn = unsafe extern "C" fn(*const *const f64, *const i64, *const *mut f64, i64);

/// A compiled function of `n_inputs` doubles to `n_outputs` doubles.
pub trait Kernel: Send + Sync {
    fn n_inputs(&self) -> usize;
    fn n_outputs(&self) -> usize;

    /// What this kernel runs, as readable text (tape listing, compiler IR, ...).
    fn source(&self) -> String;

    /// Evaluates at one point. `args.len() == n_inputs`, `out.len() == n_outputs`.
    fn eval(&self, args: &[f64], out: &mut [f64]);

    /// Evaluates at `n` points: input `i`, point `k` is `*inputs[i].offset(k * strides[i])`
    /// (stride in elements, 0 broadcasts one value); output `j`, point `k` is
    /// `*outputs[j].add(k)`.
    ///
    /// # Safety
    /// Every input pointer must be readable at the `n` strided positions and every output
    /// pointer writable for `n` contiguous doubles; outputs must not overlap inputs except
    /// at the same point.
    unsafe fn bulk(&self, inputs: &[*const f64], strides: &[isize], outputs: &[*mut f64], n: usize);
}

/// Mean seconds per [`Kernel::eval`] call at `args` over `reps` calls: the scalar cost
/// calibration measures, without the Python call around it.
pub fn time_eval(kernel: &dyn Kernel, args: &[f64], reps: usize) -> f64 {
    let mut out = vec![0.0; kernel.n_outputs()];
    let start = std::time::Instant::now();
    for _ in 0..reps {
        kernel.eval(std::hint::black_box(args), &mut out);
        std::hint::black_box(&mut out);
    }
    start.elapsed().as_secs_f64() / reps.max(1) as f64
}

/// A kernel whose two entry points are native code made elsewhere (the LLVM tier's JIT):
/// the runner calls `bulk` as it calls every other tier.
pub struct NativeKernel {
    n_inputs: usize,
    n_outputs: usize,
    scalar: ScalarFn,
    bulk: BulkFn,
}

impl NativeKernel {
    /// # Safety
    /// `scalar` and `bulk` must implement the kernel ABI for `n_inputs` inputs and
    /// `n_outputs` outputs, and stay callable (from any thread) as long as the kernel lives.
    pub unsafe fn new(n_inputs: usize, n_outputs: usize, scalar: ScalarFn, bulk: BulkFn) -> Self {
        NativeKernel { n_inputs, n_outputs, scalar, bulk }
    }
}

impl Kernel for NativeKernel {
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

    fn eval(&self, args: &[f64], out: &mut [f64]) {
        assert!(args.len() == self.n_inputs && out.len() == self.n_outputs);
        // SAFETY: the lengths match the ABI contract given to `new`.
        unsafe { (self.scalar)(args.as_ptr(), out.as_mut_ptr()) }
    }

    unsafe fn bulk(&self, inputs: &[*const f64], strides: &[isize], outputs: &[*mut f64], n: usize) {
        // isize and i64 have one layout on the 64-bit targets native code is made for.
        (self.bulk)(inputs.as_ptr(), strides.as_ptr() as *const i64, outputs.as_ptr(), n as i64)
    }
}
