//! glibc's libmvec vector math for bulk evaluation of transcendental functions.
//!
//! libmvec (`_ZGVeN8v_sin` for AVX-512, `_ZGVdN4v_sin` for AVX2, and the float32
//! `_ZGVeN16v_sinf`, `_ZGVdN8v_sinf`, ...) is 2–10× faster
//! than calling libm per element, at ≤ 4 ulp instead of ≤ 1. It is found at run time:
//! the CPU features are detected, `libmvec.so.1` is opened and each symbol looked up, so
//! a machine without it (another libc, an older CPU) simply keeps the libm path.
//! Every element goes through the vector routine, the tail of a block too (padded), so a
//! result never depends on where a point falls in a block or chunk.
//! `ALKAHEST_VECTOR_MATH=0` in the environment turns it off for the process.

use std::sync::OnceLock;

use crate::element::{DType, Element};
use crate::op::UnaryOp;

/// The vector ISA in use, which decides the lane count of every routine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Isa {
    Avx512,
    Avx2,
}

/// A resolved vector routine (an address in libmvec, for the ISA it was resolved for).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VectorFn {
    addr: usize,
    isa: Isa,
}

/// Lanes of one `isa` call for elements of `dtype`: a 512-bit or 256-bit register's worth.
fn lanes(isa: Isa, dtype: DType) -> usize {
    let bits = match isa {
        Isa::Avx512 => 512,
        Isa::Avx2 => 256,
    };
    bits / (8 * dtype.size())
}

struct Table {
    _lib: Option<libloading::Library>,
    name: &'static str,
    /// Per element type (float64, float32), per unary operation.
    fns: [Vec<Option<VectorFn>>; 2],
}

static TABLE: OnceLock<Table> = OnceLock::new();

fn index(dtype: DType) -> usize {
    match dtype {
        DType::F64 => 0,
        DType::F32 => 1,
    }
}

fn load() -> Table {
    let none = |name| Table {
        _lib: None,
        name,
        fns: [vec![None; UnaryOp::ALL.len()], vec![None; UnaryOp::ALL.len()]],
    };
    if std::env::var("ALKAHEST_VECTOR_MATH").is_ok_and(|v| v == "0") {
        return none("disabled");
    }
    #[cfg(target_arch = "x86_64")]
    {
        let (isa, name) = if std::arch::is_x86_feature_detected!("avx512f") {
            (Isa::Avx512, "avx512")
        } else if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            (Isa::Avx2, "avx2")
        } else {
            return none("none");
        };
        // SAFETY: libmvec has no initialisers with side effects.
        let Ok(lib) = (unsafe { libloading::Library::new("libmvec.so.1") }) else {
            return none("none");
        };
        let fns = [resolve(&lib, isa, DType::F64), resolve(&lib, isa, DType::F32)];
        Table { _lib: Some(lib), name, fns }
    }
    #[cfg(not(target_arch = "x86_64"))]
    none("none")
}

/// libmvec's name of the `isa` variant of `op` on `dtype` elements: `_ZGVeN8v_sin`,
/// `_ZGVdN8v_sinf`, ...
fn symbol(isa: Isa, dtype: DType, op: UnaryOp) -> String {
    let letter = match isa {
        Isa::Avx512 => 'e',
        Isa::Avx2 => 'd',
    };
    let suffix = if dtype == DType::F32 { "f" } else { "" };
    format!("_ZGV{letter}N{}v_{}{suffix}", lanes(isa, dtype), op.name())
}

/// Looks up every operation that has a vector variant in libmvec.
#[cfg(target_arch = "x86_64")]
fn resolve(lib: &libloading::Library, isa: Isa, dtype: DType) -> Vec<Option<VectorFn>> {
    UnaryOp::ALL
        .iter()
        .map(|&op| {
            if !op.info().vector() {
                return None;
            }
            let name = format!("{}\0", symbol(isa, dtype, op));
            // SAFETY: only the address is taken; it is called with the matching ABI.
            let sym = unsafe { lib.get::<*const ()>(name.as_bytes()) }.ok()?;
            Some(VectorFn { addr: *sym as usize, isa })
        })
        .collect()
}

/// The vector routine for `op` on elements `E`, if this machine has one.
pub fn unary_of<E: Element>(op: UnaryOp) -> Option<VectorFn> {
    TABLE.get_or_init(load).fns[index(E::DTYPE)][op as usize]
}

/// The float64 vector routine for `op`, if this machine has one.
pub fn unary(op: UnaryOp) -> Option<VectorFn> {
    unary_of::<f64>(op)
}

/// Which vector ISA is in use: "avx512", "avx2", "none" or "disabled".
pub fn isa() -> &'static str {
    TABLE.get_or_init(load).name
}

/// Every resolved routine on `dtype` elements as (operation, libmvec symbol name,
/// address, lanes), for native tiers that call the same routines the interpreter does.
pub fn functions_of(dtype: DType) -> Vec<(UnaryOp, String, usize, usize)> {
    let table = TABLE.get_or_init(load);
    UnaryOp::ALL
        .iter()
        .filter_map(|&op| {
            let f = table.fns[index(dtype)][op as usize]?;
            Some((op, symbol(f.isa, dtype, op), f.addr, lanes(f.isa, dtype)))
        })
        .collect()
}

/// [`functions_of`] float64.
pub fn functions() -> Vec<(UnaryOp, String, usize, usize)> {
    functions_of(DType::F64)
}

/// `dst[k] = f(src[k])` for every k, `f` resolved for elements `E`.
///
/// # Safety
/// `src` must be readable for `dst.len()` elements.
pub unsafe fn apply<E: Element>(f: VectorFn, src: *const E, dst: &mut [E]) {
    #[cfg(target_arch = "x86_64")]
    match (E::DTYPE, f.isa) {
        (DType::F64, Isa::Avx512) => apply8(f.addr, src.cast(), dst.as_mut_ptr().cast(), dst.len()),
        (DType::F64, Isa::Avx2) => apply4(f.addr, src.cast(), dst.as_mut_ptr().cast(), dst.len()),
        (DType::F32, Isa::Avx512) => apply16f(f.addr, src.cast(), dst.as_mut_ptr().cast(), dst.len()),
        (DType::F32, Isa::Avx2) => apply8f(f.addr, src.cast(), dst.as_mut_ptr().cast(), dst.len()),
    }
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!("no vector routines are resolved off x86-64: {f:?} {src:?} {}", dst.len())
}

/// Defines `$name(addr, src, dst, n)`: full vectors of `$w` lanes, then the tail padded.
macro_rules! vector_apply {
    ($name:ident, $feature:literal, $t:ty, $vec:ident, $w:literal, $load:ident, $store:ident) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $feature)]
        unsafe fn $name(addr: usize, src: *const $t, out: *mut $t, n: usize) {
            use std::arch::x86_64::*;
            let f: unsafe extern "C" fn($vec) -> $vec = std::mem::transmute(addr);
            let mut k = 0;
            while k + $w <= n {
                $store(out.add(k), f($load(src.add(k))));
                k += $w;
            }
            if k < n {
                let mut buf = [0.0 as $t; $w];
                buf[..n - k].copy_from_slice(std::slice::from_raw_parts(src.add(k), n - k));
                $store(buf.as_mut_ptr(), f($load(buf.as_ptr())));
                std::ptr::copy_nonoverlapping(buf.as_ptr(), out.add(k), n - k);
            }
        }
    };
}

vector_apply!(apply8, "avx512f", f64, __m512d, 8, _mm512_loadu_pd, _mm512_storeu_pd);
vector_apply!(apply4, "avx2,fma", f64, __m256d, 4, _mm256_loadu_pd, _mm256_storeu_pd);
vector_apply!(apply16f, "avx512f", f32, __m512, 16, _mm512_loadu_ps, _mm512_storeu_ps);
vector_apply!(apply8f, "avx2,fma", f32, __m256, 8, _mm256_loadu_ps, _mm256_storeu_ps);

#[cfg(test)]
mod tests {
    use super::*;

    /// Distance in units in the last place of `E`, measured in float64.
    fn ulps<E: Element>(a: E, b: E) -> f64 {
        let (a, b) = (a.to_f64(), b.to_f64());
        if a == b || (a.is_nan() && b.is_nan()) {
            return 0.0;
        }
        let (eps, tiny) = match E::DTYPE {
            DType::F64 => (f64::EPSILON, f64::MIN_POSITIVE),
            DType::F32 => (f64::from(f32::EPSILON), f64::from(f32::MIN_POSITIVE)),
        };
        (a - b).abs() / (eps * a.abs().max(b.abs()).max(tiny))
    }

    fn check_table<E: Element>(table: &[Option<VectorFn>]) {
        let xs: Vec<E> = (0..1003).map(|i| E::from_f64((i as f64 - 500.0) * 0.0137 + 0.3)).collect();
        for &op in UnaryOp::ALL {
            let Some(f) = table[op as usize] else {
                continue;
            };
            let mut out = vec![E::ZERO; xs.len()];
            unsafe { apply(f, xs.as_ptr(), &mut out) };
            for (k, (&x, &y)) in xs.iter().zip(&out).enumerate() {
                let want = E::unary(op, x);
                assert!(ulps(y, want) <= 4.0, "{op}({x}) = {y}, libm {want}");
                // The same point at another offset (a padded tail) gives the same bits.
                let mut one = [E::ZERO];
                unsafe { apply(f, &xs[k], &mut one) };
                assert_eq!(one[0].to_f64().to_bits(), y.to_f64().to_bits(), "{op}({x}) depends on position");
            }
        }
    }

    #[test]
    fn vector_routines_agree_with_libm_within_4_ulp_and_ignore_position() {
        let table: Vec<_> = UnaryOp::ALL.iter().map(|&op| unary_of::<f64>(op)).collect();
        check_table::<f64>(&table);
        let table: Vec<_> = UnaryOp::ALL.iter().map(|&op| unary_of::<f32>(op)).collect();
        check_table::<f32>(&table);
    }

    #[test]
    fn symbols_follow_the_vector_abi_names() {
        assert_eq!(symbol(Isa::Avx512, DType::F64, UnaryOp::Sin), "_ZGVeN8v_sin");
        assert_eq!(symbol(Isa::Avx512, DType::F32, UnaryOp::Sin), "_ZGVeN16v_sinf");
        assert_eq!(symbol(Isa::Avx2, DType::F32, UnaryOp::Exp), "_ZGVdN8v_expf");
    }

    /// The AVX2 path, which machines without AVX-512 take, checked wherever it can run.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn avx2_routines_agree_with_libm() {
        if !(std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")) {
            return;
        }
        let Ok(lib) = (unsafe { libloading::Library::new("libmvec.so.1") }) else {
            return;
        };
        let table = resolve(&lib, Isa::Avx2, DType::F64);
        assert!(table.iter().filter(|f| f.is_some()).count() >= 15, "libmvec exports the AVX2 variants");
        check_table::<f64>(&table);
        let table = resolve(&lib, Isa::Avx2, DType::F32);
        assert!(table.iter().filter(|f| f.is_some()).count() >= 15, "libmvec exports the float variants");
        check_table::<f32>(&table);
    }
}
