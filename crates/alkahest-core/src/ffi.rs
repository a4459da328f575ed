//! C-callable routines native tiers link against, so that their results are the
//! interpreter's bit for bit: the same libm symbols, the same `round`, and the same
//! vector-math dispatch. (`fma` is exact everywhere: tiers use the CPU's instruction.)

use crate::element::{libmf, DType, Element};
use crate::op::{libm, BinaryOp, UnaryOp};
use crate::vecmath;

/// C's `round` (halfway cases away from zero), as the interpreter computes it.
pub extern "C" fn alkahest_round(x: f64) -> f64 {
    x.round()
}

/// C's `roundf`, as the interpreter computes it in float32.
pub extern "C" fn alkahest_roundf(x: f32) -> f32 {
    x.round()
}

/// `dst[k] = op(src[k * stride])` for `k < n` through the interpreter's vector-math
/// routine for `op` (an index into `UnaryOp::ALL`), or libm where there is none. A
/// non-unit stride (0 broadcasts) is gathered into a small buffer first.
///
/// # Safety
/// `src` must be readable at the `n` strided positions and `dst` writable for `n` doubles.
pub unsafe extern "C" fn alkahest_vector_apply(
    op: u32,
    src: *const f64,
    stride: i64,
    dst: *mut f64,
    n: usize,
) {
    vector_apply(op, src, stride, dst, n)
}

/// [`alkahest_vector_apply`] on floats.
///
/// # Safety
/// `src` must be readable at the `n` strided positions and `dst` writable for `n` floats.
pub unsafe extern "C" fn alkahest_vector_apply_f32(
    op: u32,
    src: *const f32,
    stride: i64,
    dst: *mut f32,
    n: usize,
) {
    vector_apply(op, src, stride, dst, n)
}

unsafe fn vector_apply<E: Element>(op: u32, src: *const E, stride: i64, dst: *mut E, n: usize) {
    let Some(&op) = UnaryOp::ALL.get(op as usize) else { return };
    let dst = std::slice::from_raw_parts_mut(dst, n);
    let run = |src: *const E, dst: &mut [E]| match vecmath::unary_of::<E>(op) {
        Some(f) => vecmath::apply(f, src, dst),
        None => {
            for (k, d) in dst.iter_mut().enumerate() {
                *d = E::unary(op, *src.add(k));
            }
        }
    };
    if stride == 1 {
        return run(src, dst);
    }
    const CHUNK: usize = 256;
    let mut buf = [E::ZERO; CHUNK];
    for (c, part) in dst.chunks_mut(CHUNK).enumerate() {
        for (k, slot) in buf.iter_mut().take(part.len()).enumerate() {
            *slot = *src.offset(((c * CHUNK + k) as isize) * stride as isize);
        }
        run(buf.as_ptr(), part);
    }
}

/// A contiguous view of `n` strided doubles: `src` itself when `stride == 1`, else `dst`
/// filled with `src[k * stride]` (stride 0 broadcasts).
///
/// # Safety
/// `src` must be readable at the `n` strided positions and `dst` writable for `n` doubles.
pub unsafe extern "C" fn alkahest_gather(
    src: *const f64,
    stride: i64,
    dst: *mut f64,
    n: usize,
) -> *const f64 {
    gather(src, stride, dst, n)
}

/// [`alkahest_gather`] on floats.
///
/// # Safety
/// `src` must be readable at the `n` strided positions and `dst` writable for `n` floats.
pub unsafe extern "C" fn alkahest_gather_f32(
    src: *const f32,
    stride: i64,
    dst: *mut f32,
    n: usize,
) -> *const f32 {
    gather(src, stride, dst, n)
}

unsafe fn gather<E: Copy>(src: *const E, stride: i64, dst: *mut E, n: usize) -> *const E {
    if stride == 1 {
        return src;
    }
    for k in 0..n {
        *dst.add(k) = *src.offset(k as isize * stride as isize);
    }
    dst
}

/// Bytes of block buffers a native bulk entry keeps on its own stack; a larger frame is
/// taken from [`alkahest_frame`]. (Worker threads have 2 MiB stacks; this leaves them
/// room for everything else.)
pub const STACK_FRAME_LIMIT: usize = 256 * 1024;

/// One cache line: the unit of the frame, so that the frame is 64-byte aligned.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([u8; 64]);

thread_local! {
    static FRAME: std::cell::RefCell<Vec<Line>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A 64-byte-aligned area of at least `bytes` for the block buffers of the bulk entry
/// running on this thread, when they would not fit on its stack (a tape with many
/// inputs, outputs or values crossing stages). Each thread has one, grown on demand and
/// reused by its later calls; a bulk entry calls this once, on entry, and never calls
/// another kernel, so no two users share it. Like any Rust allocation, it aborts the
/// process if memory is exhausted.
pub extern "C" fn alkahest_frame(bytes: usize) -> *mut u8 {
    let lines = bytes.div_ceil(64).max(1);
    FRAME.with(|frame| {
        let mut frame = frame.borrow_mut();
        if frame.len() < lines {
            frame.resize(lines, Line([0; 64]));
        }
        frame.as_mut_ptr().cast::<u8>()
    })
}

/// The libm symbol a native tier calls for `op` on `dtype` elements (name, address), if
/// `op` is a call: `sin` for float64, `sinf` for float32.
pub fn unary_symbol_of(dtype: DType, op: UnaryOp) -> Option<(&'static str, *const u8)> {
    if dtype == DType::F64 {
        return unary_symbol(op);
    }
    use UnaryOp::*;
    let (name, f): (&str, unsafe extern "C" fn(f32) -> f32) = match op {
        Cbrt => ("cbrtf", libmf::cbrtf),
        Exp => ("expf", libmf::expf),
        Expm1 => ("expm1f", libmf::expm1f),
        Log => ("logf", libmf::logf),
        Log1p => ("log1pf", libmf::log1pf),
        Log2 => ("log2f", libmf::log2f),
        Log10 => ("log10f", libmf::log10f),
        Sin => ("sinf", libmf::sinf),
        Cos => ("cosf", libmf::cosf),
        Tan => ("tanf", libmf::tanf),
        Asin => ("asinf", libmf::asinf),
        Acos => ("acosf", libmf::acosf),
        Atan => ("atanf", libmf::atanf),
        Sinh => ("sinhf", libmf::sinhf),
        Cosh => ("coshf", libmf::coshf),
        Tanh => ("tanhf", libmf::tanhf),
        Asinh => ("asinhf", libmf::asinhf),
        Acosh => ("acoshf", libmf::acoshf),
        Atanh => ("atanhf", libmf::atanhf),
        Erf => ("erff", libmf::erff),
        Erfc => ("erfcf", libmf::erfcf),
        Round => return Some(("alkahest_roundf", alkahest_roundf as *const u8)),
        Neg | Sqrt | Abs | Floor | Ceil | Not => return None,
    };
    Some((name, f as *const u8))
}

/// The binary libm symbol on `dtype` elements (`pow`/`powf`, `atan2`/`atan2f`).
pub fn binary_symbol_of(dtype: DType, op: BinaryOp) -> Option<(&'static str, *const u8)> {
    if dtype == DType::F64 {
        return binary_symbol(op);
    }
    let (name, f): (&str, unsafe extern "C" fn(f32, f32) -> f32) = match op {
        BinaryOp::Pow => ("powf", libmf::powf),
        BinaryOp::Atan2 => ("atan2f", libmf::atan2f),
        _ => return None,
    };
    Some((name, f as *const u8))
}

/// The libm symbol a native tier calls for `op` (name, address), if `op` is a call.
pub fn unary_symbol(op: UnaryOp) -> Option<(&'static str, *const u8)> {
    use UnaryOp::*;
    let f: unsafe extern "C" fn(f64) -> f64 = match op {
        Cbrt => libm::cbrt,
        Exp => libm::exp,
        Expm1 => libm::expm1,
        Log => libm::log,
        Log1p => libm::log1p,
        Log2 => libm::log2,
        Log10 => libm::log10,
        Sin => libm::sin,
        Cos => libm::cos,
        Tan => libm::tan,
        Asin => libm::asin,
        Acos => libm::acos,
        Atan => libm::atan,
        Sinh => libm::sinh,
        Cosh => libm::cosh,
        Tanh => libm::tanh,
        Asinh => libm::asinh,
        Acosh => libm::acosh,
        Atanh => libm::atanh,
        Erf => libm::erf,
        Erfc => libm::erfc,
        Round => return Some(("alkahest_round", alkahest_round as *const u8)),
        Neg | Sqrt | Abs | Floor | Ceil | Not => return None,
    };
    Some((op.name(), f as *const u8))
}

/// The libm symbol for a binary operation that is a call (`pow`, `atan2`).
pub fn binary_symbol(op: BinaryOp) -> Option<(&'static str, *const u8)> {
    let f: unsafe extern "C" fn(f64, f64) -> f64 = match op {
        BinaryOp::Pow => libm::pow,
        BinaryOp::Atan2 => libm::atan2,
        _ => return None,
    };
    Some((op.name(), f as *const u8))
}

/// Every routine native code may call, as (symbol name, address): `alkahest_<op>` for the
/// float64 libm calls of [`unary_symbol`] and [`binary_symbol`] and `alkahest_<op>f` for
/// the float32 ones, `alkahest_gather`, `alkahest_frame` and `alkahest_vector_apply` (the
/// last two also as `_f32`). A JIT registers these names so its code calls exactly what
/// the interpreter calls.
pub fn symbols() -> Vec<(String, usize)> {
    let mut out = vec![
        ("alkahest_gather".to_string(), alkahest_gather as *const () as usize),
        ("alkahest_gather_f32".to_string(), alkahest_gather_f32 as *const () as usize),
        ("alkahest_frame".to_string(), alkahest_frame as *const () as usize),
        ("alkahest_vector_apply".to_string(), alkahest_vector_apply as *const () as usize),
        ("alkahest_vector_apply_f32".to_string(), alkahest_vector_apply_f32 as *const () as usize),
    ];
    for dtype in [DType::F64, DType::F32] {
        let suffix = if dtype == DType::F32 { "f" } else { "" };
        for &op in UnaryOp::ALL {
            if let Some((_, p)) = unary_symbol_of(dtype, op) {
                out.push((format!("alkahest_{}{suffix}", op.name()), p as usize));
            }
        }
        for &op in BinaryOp::ALL {
            if let Some((_, p)) = binary_symbol_of(dtype, op) {
                out.push((format!("alkahest_{}{suffix}", op.name()), p as usize));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_compute_what_the_interpreter_computes() {
        for &op in UnaryOp::ALL {
            if let Some((_, p)) = unary_symbol(op) {
                let f: extern "C" fn(f64) -> f64 = unsafe { std::mem::transmute(p) };
                assert_eq!(f(0.3).to_bits(), op.eval(0.3).to_bits(), "{op}");
            }
        }
        for &op in UnaryOp::ALL {
            if let Some((_, p)) = unary_symbol_of(DType::F32, op) {
                let f: extern "C" fn(f32) -> f32 = unsafe { std::mem::transmute(p) };
                assert_eq!(f(0.3).to_bits(), f32::unary(op, 0.3).to_bits(), "{op}");
            }
        }
        let (_, p) = binary_symbol_of(DType::F32, BinaryOp::Pow).unwrap();
        let f: extern "C" fn(f32, f32) -> f32 = unsafe { std::mem::transmute(p) };
        assert_eq!(f(1.5, 2.5), f32::binary(BinaryOp::Pow, 1.5, 2.5));
        let (_, p) = binary_symbol(BinaryOp::Atan2).unwrap();
        let f: extern "C" fn(f64, f64) -> f64 = unsafe { std::mem::transmute(p) };
        assert_eq!(f(1.0, 2.0), BinaryOp::Atan2.eval(1.0, 2.0));
    }

    #[test]
    fn frames_are_aligned_writable_and_per_thread() {
        let small = alkahest_frame(100);
        assert!(!small.is_null() && (small as usize).is_multiple_of(64));
        let big = alkahest_frame(3 << 20);
        assert!(!big.is_null() && (big as usize).is_multiple_of(64));
        unsafe { std::ptr::write_bytes(big, 7, 3 << 20) };
        let other = std::thread::spawn(|| alkahest_frame(1 << 20) as usize).join().unwrap();
        assert_ne!(other, big as usize, "each thread has its own frame");
        assert_eq!(alkahest_frame(64), big, "a smaller request reuses the frame");
    }

    #[test]
    fn vector_apply_matches_the_interpreter_vector_path() {
        let xs: Vec<f64> = (0..37).map(|i| i as f64 * 0.1 - 1.0).collect();
        let mut out = vec![0.0; xs.len()];
        unsafe { alkahest_vector_apply(UnaryOp::Sin as u32, xs.as_ptr(), 1, out.as_mut_ptr(), xs.len()) };
        let mut want = vec![0.0; xs.len()];
        match vecmath::unary(UnaryOp::Sin) {
            Some(f) => unsafe { vecmath::apply(f, xs.as_ptr(), &mut want) },
            None => want.iter_mut().zip(&xs).for_each(|(w, &x)| *w = UnaryOp::Sin.eval(x)),
        }
        assert_eq!(out, want);
        // Strided and broadcast sources give the same values as gathered ones.
        let twice: Vec<f64> = xs.iter().flat_map(|&x| [x, 99.0]).collect();
        let mut strided = vec![0.0; xs.len()];
        unsafe {
            alkahest_vector_apply(UnaryOp::Sin as u32, twice.as_ptr(), 2, strided.as_mut_ptr(), xs.len())
        };
        assert_eq!(strided, want);
        let mut bcast = vec![0.0; 300];
        unsafe { alkahest_vector_apply(UnaryOp::Sin as u32, &xs[3], 0, bcast.as_mut_ptr(), 300) };
        assert!(bcast.iter().all(|&v| v == want[3]));
    }
}
