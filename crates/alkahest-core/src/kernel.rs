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
