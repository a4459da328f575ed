//! glibc's libmvec vector math for bulk evaluation of transcendental functions.
//!
//! libmvec (`_ZGVeN8v_sin` for AVX-512, `_ZGVdN4v_sin` for AVX2, ...) is 2–10× faster
//! than calling libm per element, at ≤ 4 ulp instead of ≤ 1. It is found at run time:
//! the CPU features are detected, `libmvec.so.1` is opened and each symbol looked up, so
//! a machine without it (another libc, an older CPU) simply keeps the libm path.
//! Every element goes through the vector routine, the tail of a block too (padded), so a
//! result never depends on where a point falls in a block or chunk.
//! `ALKAHEST_VECTOR_MATH=0` in the environment turns it off for the process.

use std::sync::OnceLock;

use crate::op::UnaryOp;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Width {
    W8,
    W4,
}

/// A resolved vector routine (an address in libmvec and its lane count).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VectorFn {
    addr: usize,
    width: Width,
}

struct Table {
    _lib: Option<libloading::Library>,
    isa: &'static str,
    prefix: &'static str,
    fns: Vec<Option<VectorFn>>,
}

static TABLE: OnceLock<Table> = OnceLock::new();

fn load() -> Table {
    let none = |isa| Table { _lib: None, isa, prefix: "", fns: vec![None; UnaryOp::ALL.len()] };
    if std::env::var("ALKAHEST_VECTOR_MATH").is_ok_and(|v| v == "0") {
        return none("disabled");
    }
    #[cfg(target_arch = "x86_64")]
    {
        let (prefix, width, isa) = if std::arch::is_x86_feature_detected!("avx512f") {
            ("_ZGVeN8v_", Width::W8, "avx512")
        } else if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            ("_ZGVdN4v_", Width::W4, "avx2")
        } else {
            return none("none");
        };
        // SAFETY: libmvec has no initialisers with side effects.
        let Ok(lib) = (unsafe { libloading::Library::new("libmvec.so.1") }) else {
            return none("none");
        };
        let fns = resolve(&lib, prefix, width);
        Table { _lib: Some(lib), isa, prefix, fns }
    }
    #[cfg(not(target_arch = "x86_64"))]
    none("none")
}

/// Looks up `{prefix}{op}` in libmvec for every operation that has a vector variant.
#[cfg(target_arch = "x86_64")]
fn resolve(lib: &libloading::Library, prefix: &str, width: Width) -> Vec<Option<VectorFn>> {
    UnaryOp::ALL
        .iter()
        .map(|&op| {
            if !op.info().vector() {
                return None;
            }
            let name = format!("{prefix}{}\0", op.name());
            // SAFETY: only the address is taken; it is called with the matching ABI.
            let sym = unsafe { lib.get::<*const ()>(name.as_bytes()) }.ok()?;
            Some(VectorFn { addr: *sym as usize, width })
        })
        .collect()
}

/// The vector routine for `op`, if this machine has one.
pub fn unary(op: UnaryOp) -> Option<VectorFn> {
    TABLE.get_or_init(load).fns[op as usize]
}

/// Which vector ISA is in use: "avx512", "avx2", "none" or "disabled".
pub fn isa() -> &'static str {
    TABLE.get_or_init(load).isa
}

/// Every resolved routine as (operation, libmvec symbol name, address, lanes), for
/// native tiers that call the same routines the interpreter does.
pub fn functions() -> Vec<(UnaryOp, String, usize, usize)> {
    let table = TABLE.get_or_init(load);
    UnaryOp::ALL
        .iter()
        .filter_map(|&op| {
            let f = table.fns[op as usize]?;
            let lanes = match f.width {
                Width::W8 => 8,
                Width::W4 => 4,
            };
            Some((op, format!("{}{}", table.prefix, op.name()), f.addr, lanes))
        })
        .collect()
}

/// `dst[k] = f(src[k])` for every k.
///
/// # Safety
/// `src` must be readable for `dst.len()` doubles.
pub unsafe fn apply(f: VectorFn, src: *const f64, dst: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    match f.width {
        Width::W8 => apply8(f.addr, src, dst),
        Width::W4 => apply4(f.addr, src, dst),
    }
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!("no vector routines are resolved off x86-64: {f:?} {src:?} {}", dst.len())
}

/// Defines `$name(addr, src, dst)`: full vectors of `$w` lanes, then the tail padded.
macro_rules! vector_apply {
    ($name:ident, $feature:literal, $vec:ident, $w:literal, $load:ident, $store:ident) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $feature)]
        unsafe fn $name(addr: usize, src: *const f64, dst: &mut [f64]) {
            use std::arch::x86_64::*;
            let f: unsafe extern "C" fn($vec) -> $vec = std::mem::transmute(addr);
            let n = dst.len();
            let out = dst.as_mut_ptr();
            let mut k = 0;
            while k + $w <= n {
                $store(out.add(k), f($load(src.add(k))));
                k += $w;
            }
            if k < n {
                let mut buf = [0.0f64; $w];
                buf[..n - k].copy_from_slice(std::slice::from_raw_parts(src.add(k), n - k));
                $store(buf.as_mut_ptr(), f($load(buf.as_ptr())));
                dst[k..].copy_from_slice(&buf[..n - k]);
            }
        }
    };
}

vector_apply!(apply8, "avx512f", __m512d, 8, _mm512_loadu_pd, _mm512_storeu_pd);
vector_apply!(apply4, "avx2,fma", __m256d, 4, _mm256_loadu_pd, _mm256_storeu_pd);

#[cfg(test)]
mod tests {
    use super::*;

    fn ulps(a: f64, b: f64) -> f64 {
        if a == b || (a.is_nan() && b.is_nan()) {
            return 0.0;
        }
        let spacing = f64::EPSILON * a.abs().max(b.abs()).max(f64::MIN_POSITIVE);
        (a - b).abs() / spacing
    }

    fn check_table(table: &[Option<VectorFn>]) {
        let xs: Vec<f64> = (0..1003).map(|i| (i as f64 - 500.0) * 0.0137 + 0.3).collect();
        for &op in UnaryOp::ALL {
            let Some(f) = table[op as usize] else {
                continue;
            };
            let mut out = vec![0.0; xs.len()];
            unsafe { apply(f, xs.as_ptr(), &mut out) };
            for (k, (&x, &y)) in xs.iter().zip(&out).enumerate() {
                let want = op.eval(x);
                assert!(ulps(y, want) <= 4.0, "{op}({x}) = {y}, libm {want}");
                // The same point at another offset (a padded tail) gives the same bits.
                let mut one = [0.0];
                unsafe { apply(f, &xs[k], &mut one) };
                assert_eq!(one[0].to_bits(), y.to_bits(), "{op}({x}) depends on position");
            }
        }
    }

    #[test]
    fn vector_routines_agree_with_libm_within_4_ulp_and_ignore_position() {
        let table: Vec<_> = UnaryOp::ALL.iter().map(|&op| unary(op)).collect();
        check_table(&table);
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
        let table = resolve(&lib, "_ZGVdN4v_", Width::W4);
        assert!(table.iter().filter(|f| f.is_some()).count() >= 15, "libmvec exports the AVX2 variants");
        check_table(&table);
    }
}
