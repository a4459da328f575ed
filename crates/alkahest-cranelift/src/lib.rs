//! The Cranelift tier: a tape compiled to native code in about a millisecond.
//!
//! [`compile`] emits both entries of the kernel ABI (see `alkahest_core::kernel`) into a
//! JIT module of their own. The scalar entry is straight-line code; the bulk entry loops
//! over blocks of points in stages (see [`plan`]): fused per-point loops that keep every
//! value in registers, and vector-math calls over the block when `vector_math` is on.
//! Functions call the interpreter's own routines, so both tiers agree bit for bit. The
//! code lives as long as the returned [`CraneliftKernel`] and is freed when it drops.
//!
//! ```
//! use alkahest_core::{lower, ExprPool, Kernel, UnaryOp, BinaryOp};
//! let pool = ExprPool::new();
//! let x = pool.symbol("x").unwrap();
//! let e = pool.binary(BinaryOp::Mul, x, x).unwrap();
//! let f = alkahest_cranelift::compile(lower(&pool, &[e], &[x]).unwrap().into(), false).unwrap();
//! let mut out = [0.0];
//! f.eval(&[3.0], &mut out);
//! assert_eq!(out[0], 9.0);
//! ```

mod bulk;
mod codegen;
mod emit;
mod scalar;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, OnceLock};

use alkahest_core::{BulkFn, DType, Element, Kernel, ScalarFn, Tape};
use cranelift_codegen::isa::OwnedTargetIsa;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_jit::{JITBuilder, JITModule};

use alkahest_core::plan::Plan;

/// Tapes larger than this are refused. Compile time and memory grow linearly (functions
/// of bounded size, see `alkahest_core::plan::FUNCTION_OPS`): a 995,500-op model took
/// 17.7 s and 440 MiB peak; past this size the interpreter (0.5 µs per op) serves better.
pub const MAX_OPS: usize = 2_000_000;

/// The host ISA, built once per setting (detecting CPU features costs more than
/// compiling a small tape). The IR verifier costs ~20% of compile time: tests turn it on.
fn isa(verify: bool) -> Result<OwnedTargetIsa, String> {
    static ISA: [OnceLock<Result<OwnedTargetIsa, String>>; 2] = [OnceLock::new(), OnceLock::new()];
    ISA[usize::from(verify)]
        .get_or_init(|| {
            let mut flags = settings::builder();
            for (k, v) in [
                ("opt_level", "speed"),
                ("use_colocated_libcalls", "false"),
                ("is_pic", "false"),
                ("enable_verifier", if verify { "true" } else { "false" }),
                ("enable_probestack", "true"),
                ("probestack_strategy", "inline"),
            ] {
                flags.set(k, v).map_err(|e| format!("cranelift flag {k}={v}: {e}"))?;
            }
            let builder = cranelift_native::builder().map_err(|e| format!("unsupported host: {e}"))?;
            builder.finish(settings::Flags::new(flags)).map_err(|e| e.to_string())
        })
        .clone()
}

/// What [`compile_with`] may do.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Bulk evaluation of transcendental functions through libmvec (see `vecmath`).
    pub vector_math: bool,
    /// Run Cranelift's IR verifier (slower compiles; for tests).
    pub verify: bool,
}

/// Owns the JIT module whose memory holds the code; frees it on drop.
struct CodeMemory(Option<JITModule>);

// SAFETY: the module is never used after finalisation except to free its memory in
// `drop`, which runs once no reference to the kernel (and so no call into it) remains.
unsafe impl Send for CodeMemory {}
unsafe impl Sync for CodeMemory {}

impl Drop for CodeMemory {
    fn drop(&mut self) {
        if let Some(module) = self.0.take() {
            // SAFETY: see above: nothing can call into the code any more.
            unsafe { module.free_memory() };
        }
    }
}

/// A tape compiled by Cranelift, computing in `E` (`f64` or `f32`).
pub struct CraneliftKernel<E: Element = f64> {
    tape: Arc<Tape>,
    scalar: ScalarFn<E>,
    bulk: BulkFn<E>,
    stages: usize,
    vector_math: bool,
    _code: CodeMemory,
}

impl<E: Element> CraneliftKernel<E> {
    pub fn tape(&self) -> &Arc<Tape> {
        &self.tape
    }

    /// Number of stages of the bulk loop (1 when fully fused).
    pub fn n_stages(&self) -> usize {
        self.stages
    }
}

impl<E: Element> Kernel<E> for CraneliftKernel<E> {
    fn n_inputs(&self) -> usize {
        self.tape.n_inputs
    }

    fn n_outputs(&self) -> usize {
        self.tape.outputs.len()
    }

    fn eval(&self, args: &[E], out: &mut [E]) {
        assert!(args.len() == self.tape.n_inputs && out.len() == self.tape.outputs.len());
        // SAFETY: the lengths match what the code reads and writes.
        unsafe { (self.scalar)(args.as_ptr(), out.as_mut_ptr()) }
    }

    fn source(&self) -> String {
        clif_of(&self.tape, self.vector_math, E::DTYPE).unwrap_or_else(|e| format!("; CLIF unavailable: {e}"))
    }

    unsafe fn bulk(&self, inputs: &[*const E], strides: &[isize], outputs: &[*mut E], n: usize) {
        // The generated loops take one 128-bit vector of points at a time, so they only see
        // multiples of its lane count. isize and i64 have one layout on the 64-bit targets
        // Cranelift JITs for.
        let lanes = 16 / std::mem::size_of::<E>();
        let whole = n / lanes * lanes;
        if whole > 0 {
            (self.bulk)(inputs.as_ptr(), strides.as_ptr() as *const i64, outputs.as_ptr(), whole as i64);
        }
        let rest = n - whole;
        if rest > 0 {
            // The last points, padded to one vector by repeating the last: computed by the
            // same code as the rest.
            let tails: Vec<[E; 4]> = inputs
                .iter()
                .zip(strides)
                .map(|(&p, &s)| std::array::from_fn(|k| *p.offset((whole + k.min(rest - 1)) as isize * s)))
                .collect();
            let ins: Vec<*const E> = tails.iter().map(|t| t.as_ptr()).collect();
            let ones = vec![1i64; inputs.len()];
            let mut results = vec![[E::ZERO; 4]; outputs.len()];
            let outs: Vec<*mut E> = results.iter_mut().map(|r| r.as_mut_ptr()).collect();
            (self.bulk)(ins.as_ptr(), ones.as_ptr(), outs.as_ptr(), lanes as i64);
            for (o, r) in outputs.iter().zip(&results) {
                std::ptr::copy_nonoverlapping(r.as_ptr(), o.add(whole), rest);
            }
        }
    }
}

/// Compiles `tape` to compute in float64. `vector_math` routes transcendental functions
/// in bulk through the interpreter's vector-math dispatch (libmvec); the scalar entry
/// always calls libm.
pub fn compile(tape: Arc<Tape>, vector_math: bool) -> Result<CraneliftKernel, String> {
    compile_with(tape, Options { vector_math, verify: false })
}

/// [`compile`] with all options, computing in `E`.
pub fn compile_with<E: Element>(tape: Arc<Tape>, options: Options) -> Result<CraneliftKernel<E>, String> {
    if tape.n_ops() > MAX_OPS {
        return Err(format!(
            "the tape has {} operations; the Cranelift tier compiles at most {MAX_OPS}",
            tape.n_ops()
        ));
    }
    match catch_unwind(AssertUnwindSafe(|| compile_inner(tape, options))) {
        Ok(r) => r,
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            Err(format!("Cranelift failed: {msg}"))
        }
    }
}

fn compile_inner<E: Element>(tape: Arc<Tape>, options: Options) -> Result<CraneliftKernel<E>, String> {
    let mut builder = JITBuilder::with_isa(isa(options.verify)?, cranelift_module::default_libcall_names());
    for (name, addr) in alkahest_core::ffi::symbols() {
        builder.symbol(name, addr as *const u8);
    }
    // The libm symbols by their own names (`sin`, `sinf`), as the imports spell them.
    for dtype in [DType::F64, DType::F32] {
        for &op in alkahest_core::UnaryOp::ALL {
            if let Some((name, ptr)) = alkahest_core::ffi::unary_symbol_of(dtype, op) {
                builder.symbol(name, ptr);
            }
        }
        for &op in alkahest_core::BinaryOp::ALL {
            if let Some((name, ptr)) = alkahest_core::ffi::binary_symbol_of(dtype, op) {
                builder.symbol(name, ptr);
            }
        }
    }
    let mut module = JITModule::new(builder);

    let plan = Plan::new(&tape, options.vector_math);
    let imports = codegen::Imports::declare(&mut module, &tape, &plan, E::DTYPE)?;
    let mut session = codegen::Session::new(&mut module, false);
    let scalar_id = scalar::scalar(&mut session, &tape, &imports)?;
    let bulk_id = bulk::bulk(&mut session, &tape, &plan, &imports)?;
    drop(session);
    module.finalize_definitions().map_err(|e| e.to_string())?;
    // SAFETY: both functions were defined with exactly these signatures.
    let (scalar, bulk) = unsafe {
        (
            std::mem::transmute::<*const u8, ScalarFn<E>>(module.get_finalized_function(scalar_id)),
            std::mem::transmute::<*const u8, BulkFn<E>>(module.get_finalized_function(bulk_id)),
        )
    };
    Ok(CraneliftKernel {
        tape,
        scalar,
        bulk,
        stages: plan.stages.len(),
        vector_math: options.vector_math,
        _code: CodeMemory(Some(module)),
    })
}

/// The Cranelift IR (CLIF) of both entries of `tape`, as `compile` would build them.
/// Built afresh on request, so compiling never pays for the text.
pub fn clif(tape: &Tape, vector_math: bool) -> Result<String, String> {
    clif_of(tape, vector_math, DType::F64)
}

/// [`clif`] of the kernel computing in `dtype`.
pub fn clif_of(tape: &Tape, vector_math: bool, dtype: DType) -> Result<String, String> {
    let builder = JITBuilder::with_isa(isa(false)?, cranelift_module::default_libcall_names());
    let mut module = JITModule::new(builder);
    let plan = Plan::new(tape, vector_math);
    let imports = codegen::Imports::declare(&mut module, tape, &plan, dtype)?;
    let mut session = codegen::Session::new(&mut module, true);
    scalar::scalar(&mut session, tape, &imports)?;
    bulk::bulk(&mut session, tape, &plan, &imports)?;
    // Nothing was finalised: the module's memory holds no code to free.
    Ok(session.clif.take().unwrap_or_default())
}
