//! The one bulk runner every tier goes through.
//!
//! It checks that the inputs broadcast to the output shape, folds the N-d iteration into
//! as few dimensions as the strides allow (a contiguous or broadcast array becomes one
//! row), and calls [`Kernel::bulk`] on rows — split into chunks over the worker pool
//! (`workers`) when more than one thread is asked for. Outputs are C-contiguous arrays of the output
//! shape, so a point's linear index is its offset in every output.
//!
//! Large results of many outputs (more than [`STREAM_BYTES`] in one call, at least
//! [`STREAM_OUTPUTS`] outputs) are written with non-temporal stores: the kernel runs on blocks of points into a small buffer that
//! stays in cache, and each block is streamed to the outputs without the processor first
//! reading every output cache line it is about to overwrite ("read for ownership"):
//! with many output streams that is half of the memory traffic. Values are the same bits
//! either way.

use std::cell::RefCell;

use crate::element::Element;
use crate::error::{Error, Result};
use crate::kernel::Kernel;
use crate::workers;

/// A strided view of an input array. Strides are in elements (not bytes) and may be 0
/// (broadcast) or negative.
#[derive(Clone, Debug)]
pub struct ArrayView<E = f64> {
    pub ptr: *const E,
    pub shape: Vec<usize>,
    pub strides: Vec<isize>,
}

/// Points per parallel chunk, at least: below this, thread hand-off costs more than it saves.
const MIN_CHUNK: usize = 1 << 14;
/// Calls of fewer points run on the calling thread whatever the thread count.
pub const MIN_PARALLEL_POINTS: usize = 2 * MIN_CHUNK;
/// Points per chunk, at most (a few milliseconds of the costliest kernels): the calling
/// thread checks for an interruption between chunks.
const MAX_CHUNK: usize = 1 << 18;

/// Calls writing more output than this (bytes, all outputs) with at least
/// [`STREAM_OUTPUTS`] outputs stream their results: such results have left the cache by
/// the time anyone reads them.
pub const STREAM_BYTES: usize = 16 << 20;
/// Below this many outputs the processor's own write handling wins: measured with 10^7
/// results of `x*c + y` split over k outputs (plain / streamed, ms): k = 1: 8.1 / 10.6,
/// 8: 3.0 / 5.0, 16: 5.3 / 6.8, 32: 8.8 / 7.1, 64: 10.5 / 7.3; a 342-output model at
/// 10^5 points: 390 / 284 ns per point.
pub const STREAM_OUTPUTS: usize = 32;
/// Block buffer of a streamed call, per thread (the outputs of one block stay in L2;
/// 128 KiB blocks were slower: more, shorter kernel calls).
const STREAM_BLOCK_BYTES: usize = 1 << 20;

thread_local! {
    /// A streamed call's block buffer, in 8-byte units (any element type).
    static STREAM_BLOCK: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

/// Copies `n` elements with non-temporal stores (SSE2 `movntdq` from the first 16-byte
/// boundary of `dst`); the caller fences once when done.
unsafe fn stream_copy<E: Element>(src: *const E, dst: *mut E, n: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{__m128i, _mm_loadu_si128, _mm_stream_si128};
        let per_store = 16 / std::mem::size_of::<E>();
        let mut i = 0;
        while i < n && !(dst.add(i) as usize).is_multiple_of(16) {
            *dst.add(i) = *src.add(i);
            i += 1;
        }
        while i + per_store <= n {
            _mm_stream_si128(dst.add(i).cast::<__m128i>(), _mm_loadu_si128(src.add(i).cast::<__m128i>()));
            i += per_store;
        }
        while i < n {
            *dst.add(i) = *src.add(i);
            i += 1;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    std::ptr::copy_nonoverlapping(src, dst, n);
}

fn stream_fence() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: sfence has no preconditions; it orders the streamed stores before what follows.
    unsafe {
        std::arch::x86_64::_mm_sfence()
    };
}

/// The iteration space after broadcasting and folding dimensions.
#[derive(Debug, PartialEq)]
struct Layout {
    shape: Vec<usize>,
    /// `strides[i][d]`: input `i`'s stride along folded dimension `d`.
    strides: Vec<Vec<isize>>,
}

impl Layout {
    fn new<E>(inputs: &[ArrayView<E>], out_shape: &[usize]) -> Result<Layout> {
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

/// A small array on the stack (up to 16 values), else on the heap.
enum Small<T: Copy + Default> {
    Stack([T; 16], usize),
    Heap(Vec<T>),
}

impl<T: Copy + Default> Small<T> {
    fn new(n: usize) -> Self {
        if n <= 16 {
            Small::Stack([T::default(); 16], n)
        } else {
            Small::Heap(vec![T::default(); n])
        }
    }

    fn as_ref(&self) -> &[T] {
        match self {
            Small::Stack(a, n) => &a[..*n],
            Small::Heap(v) => v,
        }
    }

    fn as_mut(&mut self) -> &mut [T] {
        match self {
            Small::Stack(a, n) => &mut a[..*n],
            Small::Heap(v) => v,
        }
    }
}

struct Raw<'a, E: Element> {
    kernel: &'a dyn Kernel<E>,
    layout: Layout,
    inputs: Vec<*const E>,
    outputs: Vec<*mut E>,
    /// Write results through a cache-resident block with non-temporal stores.
    stream: bool,
}

// SAFETY: the pointers are only dereferenced inside `run_range`, on disjoint output
// ranges; the caller of `run` guarantees they stay valid until it returns.
unsafe impl<E: Element> Send for Raw<'_, E> {}
unsafe impl<E: Element> Sync for Raw<'_, E> {}

impl<E: Element> Raw<'_, E> {
    /// Evaluates points `[start, end)` in linear (C) order, one row piece at a time.
    unsafe fn run_range(&self, start: usize, end: usize) {
        let nd = self.layout.shape.len();
        let inner = self.layout.shape[nd - 1];
        // Pointer and stride arrays live on the stack for the common few inputs and
        // outputs: a small call is a few hundred nanoseconds, allocations would show.
        let mut inner_strides = Small::<isize>::new(self.inputs.len());
        let mut ins = Small::<usize>::new(self.inputs.len());
        let mut outs = Small::<usize>::new(self.outputs.len());
        for (s, strides) in inner_strides.as_mut().iter_mut().zip(&self.layout.strides) {
            *s = strides[nd - 1];
        }
        let mut lin = start;
        while lin < end {
            let (mut row, col) = (lin / inner, lin % inner);
            let len = (inner - col).min(end - lin);
            for (i, p) in ins.as_mut().iter_mut().enumerate() {
                *p = self.inputs[i].offset(col as isize * inner_strides.as_ref()[i]) as usize;
            }
            for d in (0..nd - 1).rev() {
                let idx = (row % self.layout.shape[d]) as isize;
                row /= self.layout.shape[d];
                for (i, p) in ins.as_mut().iter_mut().enumerate() {
                    *p = (*p as *const E).offset(idx * self.layout.strides[i][d]) as usize;
                }
            }
            for (o, p) in outs.as_mut().iter_mut().zip(&self.outputs) {
                *o = p.add(lin) as usize;
            }
            // Pointers are kept as addresses above (a stack array needs `Default`).
            let ins: &[*const E] =
                std::slice::from_raw_parts(ins.as_ref().as_ptr().cast(), self.inputs.len());
            let outs: &[*mut E] =
                std::slice::from_raw_parts(outs.as_ref().as_ptr().cast(), self.outputs.len());
            if self.stream {
                self.bulk_streamed(ins, inner_strides.as_ref(), outs, len);
            } else {
                self.kernel.bulk(ins, inner_strides.as_ref(), outs, len);
            }
            lin += len;
        }
        if self.stream {
            stream_fence();
        }
    }

    /// `kernel.bulk` on blocks of points into the thread's block buffer, each block then
    /// streamed to `outs`.
    unsafe fn bulk_streamed(&self, ins: &[*const E], strides: &[isize], outs: &[*mut E], n: usize) {
        let n_out = outs.len();
        let block = (STREAM_BLOCK_BYTES / std::mem::size_of::<E>() / n_out.max(1)).clamp(64, 4096) / 16 * 16;
        STREAM_BLOCK.with(|buffer| {
            let mut buffer = buffer.borrow_mut();
            buffer.resize((block * n_out * std::mem::size_of::<E>()).div_ceil(8), 0);
            let base = buffer.as_mut_ptr().cast::<E>();
            let rows: Vec<*mut E> = (0..n_out).map(|j| base.add(j * block)).collect();
            let mut at = vec![std::ptr::null::<E>(); ins.len()];
            let mut done = 0;
            while done < n {
                let m = block.min(n - done);
                for ((a, &p), &s) in at.iter_mut().zip(ins).zip(strides) {
                    *a = p.offset(done as isize * s);
                }
                self.kernel.bulk(&at, strides, &rows, m);
                for (&row, &out) in rows.iter().zip(outs) {
                    stream_copy(row, out.add(done), m);
                }
                done += m;
            }
        });
    }
}

/// Evaluates `kernel` over the broadcast of `inputs` into `outputs` (C-contiguous arrays
/// of `out_shape`), on `threads` threads (1 runs on the calling thread).
///
/// # Safety
/// Each input view must describe readable memory; each output pointer must be writable
/// for the product of `out_shape` elements. Both must stay valid until this returns.
pub unsafe fn run<E: Element>(
    kernel: &dyn Kernel<E>,
    inputs: &[ArrayView<E>],
    out_shape: &[usize],
    outputs: &[*mut E],
    threads: usize,
) -> Result<()> {
    run_interruptible(kernel, inputs, out_shape, outputs, threads, &mut || false)
}

/// [`run`], asking `interrupted()` on the calling thread every few milliseconds of a long
/// call; once it says yes the call stops and returns [`Error::Interrupted`] (outputs then
/// hold a partial result).
///
/// # Safety
/// As for [`run`].
pub unsafe fn run_interruptible<E: Element>(
    kernel: &dyn Kernel<E>,
    inputs: &[ArrayView<E>],
    out_shape: &[usize],
    outputs: &[*mut E],
    threads: usize,
    interrupted: &mut dyn FnMut() -> bool,
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
    let stream = outputs.len() >= STREAM_OUTPUTS
        && n.saturating_mul(outputs.len()).saturating_mul(std::mem::size_of::<E>()) > STREAM_BYTES;
    let raw = Raw {
        kernel,
        layout,
        inputs: inputs.iter().map(|a| a.ptr).collect(),
        outputs: outputs.to_vec(),
        stream,
    };
    let threads = if n < MIN_PARALLEL_POINTS { 1 } else { threads.max(1) };
    if n <= MAX_CHUNK && threads == 1 {
        raw.run_range(0, n);
        return Ok(());
    }
    // Several chunks per thread balances uneven progress; chunks stay short enough that
    // an interruption is seen within milliseconds.
    let chunk = n.div_ceil(threads * 4).clamp(MIN_CHUNK, MAX_CHUNK);
    // SAFETY: chunks write disjoint output ranges; see `run`'s contract.
    let work = |start: usize, end: usize| unsafe { raw.run_range(start, end) };
    workers::run_chunks(n, chunk, threads, &work, interrupted)
}

pub use crate::workers::default_threads;

/// The shape `shapes` broadcast to (NumPy's rules), or a `Shape` error naming them.
pub fn broadcast_shape<'a>(shapes: impl IntoIterator<Item = &'a [usize]> + Clone) -> Result<Vec<usize>> {
    let nd = shapes.clone().into_iter().map(<[usize]>::len).max().unwrap_or(0);
    let mut out = vec![1usize; nd];
    for s in shapes.clone() {
        let pad = nd - s.len();
        for (d, &len) in s.iter().enumerate() {
            let o = &mut out[pad + d];
            if *o == 1 {
                *o = len;
            } else if len != 1 && len != *o {
                let all: Vec<String> = shapes.into_iter().map(shape_text).collect();
                return Err(Error::Shape(format!(
                    "input shapes {} do not broadcast together (NumPy rules)",
                    all.join(", ")
                )));
            }
        }
    }
    Ok(out)
}

/// A shape as Python writes it: `()`, `(3,)`, `(2, 3)`.
pub fn shape_text(shape: &[usize]) -> String {
    match shape {
        [n] => format!("({n},)"),
        _ => format!("({})", shape.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(", ")),
    }
}

/// The byte range an array may touch: `[start, end)` of `ptr` with `shape` and element
/// `strides`, or None if it is empty.
pub fn extent<E>(ptr: *const E, shape: &[usize], strides: &[isize]) -> Option<(usize, usize)> {
    let size = std::mem::size_of::<E>() as isize;
    let (mut lo, mut hi) = (ptr as isize, ptr as isize);
    for (&n, &s) in shape.iter().zip(strides) {
        if n == 0 {
            return None;
        }
        let span = (n as isize - 1) * s * size;
        if span > 0 {
            hi += span;
        } else {
            lo += span;
        }
    }
    Some((lo as usize, (hi + size) as usize))
}

/// Whether an output range overlaps an input's or another output's (the kernel reads
/// inputs while it writes outputs, block by block, so such a call needs fresh outputs).
pub fn overlapping(inputs: &[(usize, usize)], outputs: &[(usize, usize)]) -> bool {
    let mut spans: Vec<(usize, usize, bool)> = outputs
        .iter()
        .map(|&(a, b)| (a, b, true))
        .chain(inputs.iter().map(|&(a, b)| (a, b, false)))
        .collect();
    spans.sort_unstable();
    let (mut reach_out, mut reach_in) = (0usize, 0usize);
    for (lo, hi, is_out) in spans {
        if lo < reach_out || (is_out && lo < reach_in) {
            return true;
        }
        if is_out {
            reach_out = reach_out.max(hi);
        } else {
            reach_in = reach_in.max(hi);
        }
    }
    false
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
    fn streamed_results_equal_direct_ones() {
        // STREAM_OUTPUTS outputs (x - y, x - 2y, ...), over the streaming size, ragged end.
        let p = ExprPool::new();
        let (x, y) = (p.symbol("x").unwrap(), p.symbol("y").unwrap());
        let outs: Vec<_> = (0..STREAM_OUTPUTS)
            .map(|k| {
                let c = p.constant(k as f64 + 1.0).unwrap();
                let ky = p.binary(BinaryOp::Mul, c, y).unwrap();
                p.binary(BinaryOp::Sub, x, ky).unwrap()
            })
            .collect();
        let f = Interpreter::new(lower(&p, &outs, &[x, y]).unwrap());
        let n = STREAM_BYTES / 8 / STREAM_OUTPUTS + 1001;
        let xs: Vec<f64> = (0..n).map(|i| i as f64 * 0.25).collect();
        let ys: Vec<f64> = (0..n).map(|i| (i % 97) as f64).collect();
        // Outputs not aligned to 16 bytes, run on two threads: every point written once.
        let mut streamed = vec![0.0; STREAM_OUTPUTS * n + 1];
        let ptrs: Vec<*mut f64> =
            (0..STREAM_OUTPUTS).map(|k| unsafe { streamed.as_mut_ptr().add(1 + k * n) }).collect();
        unsafe { run(&f, &[view(&xs, &[n], &[1]), view(&ys, &[n], &[1])], &[n], &ptrs, 2).unwrap() };
        for k in 0..STREAM_OUTPUTS {
            let row = &streamed[1 + k * n..1 + (k + 1) * n];
            assert!(
                row.iter().enumerate().all(|(i, &v)| v == xs[i] - (k as f64 + 1.0) * ys[i]),
                "output {k}"
            );
        }
        assert_eq!(streamed[0], 0.0);
    }

    #[test]
    fn shapes_broadcast_like_numpy() {
        let b = |shapes: &[&[usize]]| broadcast_shape(shapes.iter().copied());
        assert_eq!(b(&[&[3, 1], &[4], &[]]).unwrap(), vec![3, 4]);
        assert_eq!(b(&[&[], &[]]).unwrap(), Vec::<usize>::new());
        assert_eq!(b(&[&[2, 0], &[1]]).unwrap(), vec![2, 0]);
        let e = b(&[&[3], &[4]]).unwrap_err().to_string();
        assert!(e.contains("(3,), (4,)") && e.contains("broadcast"), "{e}");
    }

    #[test]
    fn overlap_of_byte_ranges() {
        let buf = [0.0f64; 10];
        let p = buf.as_ptr();
        let whole = extent(p, &[10], &[1]).unwrap();
        let head = extent(p, &[5], &[1]).unwrap();
        let tail = extent(unsafe { p.add(5) }, &[5], &[1]).unwrap();
        let reversed = extent(unsafe { p.add(9) }, &[10], &[-1]).unwrap();
        assert_eq!(reversed, whole);
        assert_eq!(extent(p, &[0], &[1]), None);
        assert!(!overlapping(&[head], &[tail]));
        assert!(overlapping(&[whole], &[tail]));
        assert!(overlapping(&[], &[head, whole]));
        assert!(!overlapping(&[head, head], &[tail])); // inputs may overlap each other
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
