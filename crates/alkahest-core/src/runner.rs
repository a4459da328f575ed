//! The one bulk runner every tier goes through.
//!
//! It checks that the inputs broadcast to the output shape, folds the N-d iteration into
//! as few dimensions as the strides allow (a contiguous or broadcast array becomes one
//! row), and calls [`Kernel::bulk`] on rows — split into chunks over a rayon pool when
//! more than one thread is asked for. Outputs are C-contiguous arrays of the output
//! shape, so a point's linear index is its offset in every output.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::kernel::Kernel;

/// A strided view of an input array. Strides are in elements (not bytes) and may be 0
/// (broadcast) or negative.
#[derive(Clone, Debug)]
pub struct ArrayView {
    pub ptr: *const f64,
    pub shape: Vec<usize>,
    pub strides: Vec<isize>,
}

/// Points per parallel chunk, at least: below this, thread hand-off costs more than it saves.
const MIN_CHUNK: usize = 1 << 14;

/// The iteration space after broadcasting and folding dimensions.
#[derive(Debug, PartialEq)]
struct Layout {
    shape: Vec<usize>,
    /// `strides[i][d]`: input `i`'s stride along folded dimension `d`.
    strides: Vec<Vec<isize>>,
}

impl Layout {
    fn new(inputs: &[ArrayView], out_shape: &[usize]) -> Result<Layout> {
        let nd = out_shape.len();
        let mut strides = Vec::with_capacity(inputs.len());
        for (i, a) in inputs.iter().enumerate() {
            let bad = || {
                Error::Shape(format!(
                    "input {i} has shape {:?}, which does not broadcast to the output shape {:?}; \
                     make the array shapes compatible (NumPy broadcasting rules)",
                    a.shape, out_shape
                ))
            };
            if a.shape.len() > nd || a.strides.len() != a.shape.len() {
                return Err(bad());
            }
            let pad = nd - a.shape.len();
            let mut s = vec![0isize; nd];
            for d in 0..a.shape.len() {
                let (len, want) = (a.shape[d], out_shape[pad + d]);
                if len == want {
                    s[pad + d] = if len == 1 { 0 } else { a.strides[d] };
                } else if len != 1 {
                    return Err(bad());
                }
            }
            strides.push(s);
        }
        // Fold: drop length-1 dimensions, then merge neighbours whose strides chain.
        let mut shape: Vec<usize> = Vec::new();
        let mut folded: Vec<Vec<isize>> = vec![Vec::new(); inputs.len()];
        for d in 0..nd {
            if out_shape[d] == 1 {
                continue;
            }
            let mergeable = !shape.is_empty()
                && strides
                    .iter()
                    .zip(&folded)
                    .all(|(s, f)| *f.last().unwrap_or(&0) == s[d] * out_shape[d] as isize);
            if mergeable {
                *shape.last_mut().unwrap_or(&mut 0) *= out_shape[d];
                for (f, s) in folded.iter_mut().zip(&strides) {
                    *f.last_mut().unwrap_or(&mut 0) = s[d];
                }
            } else {
                shape.push(out_shape[d]);
                for (f, s) in folded.iter_mut().zip(&strides) {
                    f.push(s[d]);
                }
            }
        }
        if shape.is_empty() {
            shape.push(1);
            folded.iter_mut().for_each(|f| f.push(0));
        }
        Ok(Layout { shape, strides: folded })
    }

    fn len(&self) -> usize {
        self.shape.iter().product()
    }
}

struct Raw<'a> {
    kernel: &'a dyn Kernel,
    layout: Layout,
    inputs: Vec<*const f64>,
    outputs: Vec<*mut f64>,
}

// SAFETY: the pointers are only dereferenced inside `run_range`, on disjoint output
// ranges; the caller of `run` guarantees they stay valid until it returns.
unsafe impl Send for Raw<'_> {}
unsafe impl Sync for Raw<'_> {}

impl Raw<'_> {
    /// Evaluates points `[start, end)` in linear (C) order, one row piece at a time.
    unsafe fn run_range(&self, start: usize, end: usize) {
        let nd = self.layout.shape.len();
        let inner = self.layout.shape[nd - 1];
        let inner_strides: Vec<isize> = self.layout.strides.iter().map(|s| s[nd - 1]).collect();
        let mut ins = vec![std::ptr::null::<f64>(); self.inputs.len()];
        let mut outs = vec![std::ptr::null_mut::<f64>(); self.outputs.len()];
        let mut lin = start;
        while lin < end {
            let (mut row, col) = (lin / inner, lin % inner);
            let len = (inner - col).min(end - lin);
            for (i, p) in ins.iter_mut().enumerate() {
                *p = self.inputs[i].offset(col as isize * inner_strides[i]);
            }
            for d in (0..nd - 1).rev() {
                let idx = (row % self.layout.shape[d]) as isize;
                row /= self.layout.shape[d];
                for (i, p) in ins.iter_mut().enumerate() {
                    *p = p.offset(idx * self.layout.strides[i][d]);
                }
            }
            for (o, p) in outs.iter_mut().zip(&self.outputs) {
                *o = p.add(lin);
            }
            self.kernel.bulk(&ins, &inner_strides, &outs, len);
            lin += len;
        }
    }
}

/// A rayon pool per thread count, built once and reused.
fn thread_pool(threads: usize) -> Result<Arc<rayon::ThreadPool>> {
    static POOLS: OnceLock<Mutex<HashMap<usize, Arc<rayon::ThreadPool>>>> = OnceLock::new();
    let mut pools = POOLS.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = pools.get(&threads) {
        return Ok(p.clone());
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("alkahest-{i}"))
        .build()
        .map_err(|e| Error::Expression(format!("could not start {threads} threads: {e}")))?;
    let pool = Arc::new(pool);
    pools.insert(threads, pool.clone());
    Ok(pool)
}

/// Evaluates `kernel` over the broadcast of `inputs` into `outputs` (C-contiguous arrays
/// of `out_shape`), on `threads` threads (1 runs on the calling thread).
///
/// # Safety
/// Each input view must describe readable memory; each output pointer must be writable
/// for the product of `out_shape` doubles. Both must stay valid until this returns.
pub unsafe fn run(
    kernel: &dyn Kernel,
    inputs: &[ArrayView],
    out_shape: &[usize],
    outputs: &[*mut f64],
    threads: usize,
) -> Result<()> {
    if inputs.len() != kernel.n_inputs() {
        return Err(Error::Arity(format!(
            "the function takes {} input arrays, got {}",
            kernel.n_inputs(),
            inputs.len()
        )));
    }
    if outputs.len() != kernel.n_outputs() {
        return Err(Error::Arity(format!(
            "the function has {} outputs, got {} output arrays",
            kernel.n_outputs(),
            outputs.len()
        )));
    }
    let layout = Layout::new(inputs, out_shape)?;
    let n = layout.len();
    if n == 0 || out_shape.contains(&0) {
        return Ok(());
    }
    let raw =
        Raw { kernel, layout, inputs: inputs.iter().map(|a| a.ptr).collect(), outputs: outputs.to_vec() };
    let threads = threads.max(1);
    if threads == 1 || n < 2 * MIN_CHUNK {
        raw.run_range(0, n);
        return Ok(());
    }
    // Several chunks per thread balances uneven progress; never below MIN_CHUNK.
    let chunk = n.div_ceil(threads * 4).max(MIN_CHUNK);
    let n_chunks = n.div_ceil(chunk);
    thread_pool(threads)?.install(|| {
        (0..n_chunks).into_par_iter().for_each(|c| {
            let (start, end) = (c * chunk, ((c + 1) * chunk).min(n));
            // SAFETY: chunks write disjoint output ranges; see `run`'s contract.
            unsafe { raw.run_range(start, end) }
        })
    });
    Ok(())
}

/// Default thread count for parallel runs: `ALKAHEST_NUM_THREADS`, else all cores.
pub fn default_threads() -> usize {
    std::env::var("ALKAHEST_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&t| t > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::BinaryOp;
    use crate::pool::ExprPool;
    use crate::tape::lower;
    use crate::Interpreter;

    fn view(data: &[f64], shape: &[usize], strides: &[isize]) -> ArrayView {
        ArrayView { ptr: data.as_ptr(), shape: shape.to_vec(), strides: strides.to_vec() }
    }

    #[test]
    fn contiguous_and_broadcast_arrays_fold_to_one_row() {
        let a = [0.0; 6];
        let l = Layout::new(&[view(&a, &[2, 3], &[3, 1]), view(&a, &[1], &[1])], &[2, 3]).unwrap();
        assert_eq!(l, Layout { shape: vec![6], strides: vec![vec![1], vec![0]] });
        // A transposed input keeps two dimensions.
        let l = Layout::new(&[view(&a, &[2, 3], &[1, 2])], &[2, 3]).unwrap();
        assert_eq!(l.shape, vec![2, 3]);
        assert!(Layout::new(&[view(&a, &[4], &[1])], &[2, 3]).is_err());
    }

    fn add_kernel() -> Interpreter {
        let p = ExprPool::new();
        let x = p.symbol("x").unwrap();
        let y = p.symbol("y").unwrap();
        let e = p.binary(BinaryOp::Sub, x, y).unwrap();
        Interpreter::new(lower(&p, &[e], &[x, y]).unwrap())
    }

    #[test]
    fn broadcasting_a_column_against_a_row() {
        let f = add_kernel();
        let col = [1.0, 2.0, 3.0];
        let row = [10.0, 20.0];
        let mut out = vec![0.0; 6];
        unsafe {
            run(&f, &[view(&col, &[3, 1], &[1, 1]), view(&row, &[2], &[1])], &[3, 2], &[out.as_mut_ptr()], 1)
                .unwrap();
        }
        assert_eq!(out, vec![-9.0, -19.0, -8.0, -18.0, -7.0, -17.0]);
    }

    #[test]
    fn parallel_equals_serial_on_strided_input() {
        let f = add_kernel();
        let n = 200_003;
        let x: Vec<f64> = (0..2 * n).map(|i| i as f64 * 0.5).collect();
        let y: Vec<f64> = (0..n).map(|i| (i as f64).sqrt()).collect();
        let (mut a, mut b) = (vec![0.0; n], vec![0.0; n]);
        let ins = [view(&x, &[n], &[2]), view(&y, &[n], &[1])];
        unsafe {
            run(&f, &ins, &[n], &[a.as_mut_ptr()], 1).unwrap();
            run(&f, &ins, &[n], &[b.as_mut_ptr()], 3).unwrap();
        }
        assert_eq!(a, b);
        assert_eq!(a[7], x[14] - y[7]);
    }

    #[test]
    fn wrong_counts_are_errors() {
        let f = add_kernel();
        let x = [1.0];
        let mut out = [0.0];
        let r = unsafe { run(&f, &[view(&x, &[1], &[1])], &[1], &[out.as_mut_ptr()], 1) };
        assert!(matches!(r, Err(Error::Arity(_))));
    }
}
