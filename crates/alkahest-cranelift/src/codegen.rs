//! What building the two kernel-ABI entries as Cranelift functions shares: the imported
//! routines, the session that defines functions into one JIT module, scratch areas.
//!
//! ```c
//! void scalar(const T *args, T *out);  // see `scalar`
//! void bulk(const T *const *in, const int64_t *stride, T *const *out, int64_t n);  // see `bulk`
//! ```
//!
//! `T` is the element type the module is built for (`double` or `float`).

use std::collections::HashMap;

use alkahest_core::{BinaryOp, DType, Instr, Tape, UnaryOp};
use cranelift_codegen::ir::{
    types, AbiParam, FuncRef, Function, InstBuilder, MemFlagsData, StackSlotData, StackSlotKind,
    UserFuncName, Value,
};
use cranelift_codegen::Context;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::JITModule;
use cranelift_module::{FuncId, Linkage, Module};

use crate::emit::Callees;
use alkahest_core::plan::{Plan, Stage};

/// Loads and stores of addresses the caller guarantees aligned and valid.
pub const TRUSTED: MemFlagsData = MemFlagsData::trusted();

/// Functions the generated code calls, declared once per module.
pub struct Imports {
    /// The element type every function of the module computes in.
    pub dtype: DType,
    unary: HashMap<UnaryOp, FuncId>,
    binary: HashMap<BinaryOp, FuncId>,
    vector_apply: Option<FuncId>,
    gather: Option<FuncId>,
    frame: Option<FuncId>,
}

fn declare(
    module: &mut JITModule,
    name: &str,
    params: &[types::Type],
    ret: Option<types::Type>,
) -> Result<FuncId, String> {
    let mut sig = module.make_signature();
    sig.params.extend(params.iter().map(|&t| AbiParam::new(t)));
    sig.returns.extend(ret.map(AbiParam::new));
    module.declare_function(name, Linkage::Import, &sig).map_err(|e| e.to_string())
}

impl Imports {
    pub fn declare(
        module: &mut JITModule,
        tape: &Tape,
        plan: &Plan,
        dtype: DType,
    ) -> Result<Imports, String> {
        let elem = crate::emit::Width::scalar(dtype).elem();
        let suffix = if dtype == DType::F32 { "_f32" } else { "" };
        let mut imports = Imports {
            dtype,
            unary: HashMap::new(),
            binary: HashMap::new(),
            vector_apply: None,
            gather: None,
            frame: None,
        };
        for ins in &tape.instrs {
            match *ins {
                Instr::Unary(op, _) if !imports.unary.contains_key(&op) => {
                    if let Some((name, _)) = alkahest_core::ffi::unary_symbol_of(dtype, op) {
                        imports.unary.insert(op, declare(module, name, &[elem], Some(elem))?);
                    }
                }
                Instr::Binary(op, ..) if !imports.binary.contains_key(&op) => {
                    if let Some((name, _)) = alkahest_core::ffi::binary_symbol_of(dtype, op) {
                        imports.binary.insert(op, declare(module, name, &[elem, elem], Some(elem))?);
                    }
                }
                _ => {}
            }
        }
        if plan.stages.iter().any(|s| matches!(s, Stage::Vector { .. })) {
            let params = [types::I32, types::I64, types::I64, types::I64, types::I64];
            let name = format!("alkahest_vector_apply{suffix}");
            imports.vector_apply = Some(declare(module, &name, &params, None)?);
        }
        let params = [types::I64, types::I64, types::I64, types::I64];
        let name = format!("alkahest_gather{suffix}");
        imports.gather = Some(declare(module, &name, &params, Some(types::I64))?);
        imports.frame = Some(declare(module, "alkahest_frame", &[types::I64], Some(types::I64))?);
        Ok(imports)
    }

    fn callees(&self, module: &mut JITModule, func: &mut Function) -> Callees {
        Callees {
            dtype: self.dtype,
            unary: self.unary.iter().map(|(&op, &id)| (op, module.declare_func_in_func(id, func))).collect(),
            binary: self
                .binary
                .iter()
                .map(|(&op, &id)| (op, module.declare_func_in_func(id, func)))
                .collect(),
            vector_apply: self.vector_apply.map(|id| module.declare_func_in_func(id, func)),
            gather: self.gather.map(|id| module.declare_func_in_func(id, func)),
            frame: self.frame.map(|id| module.declare_func_in_func(id, func)),
        }
    }
}

/// What building functions into one JIT module needs.
pub struct Session<'m> {
    pub module: &'m mut JITModule,
    pub ctx: Context,
    pub fbc: FunctionBuilderContext,
    /// When set, the CLIF of each function built is appended here.
    pub clif: Option<String>,
}

impl<'m> Session<'m> {
    pub fn new(module: &'m mut JITModule, keep_clif: bool) -> Self {
        let ctx = module.make_context();
        Session { module, ctx, fbc: FunctionBuilderContext::new(), clif: keep_clif.then(String::new) }
    }
}

pub fn define(
    session: &mut Session<'_>,
    name: &str,
    n_params: usize,
    imports: &Imports,
    calls: &[FuncId],
    body: impl FnOnce(&mut FunctionBuilder<'_>, &[Value], &Callees, &[FuncRef]),
) -> Result<FuncId, String> {
    let Session { module, ctx, fbc, clif } = session;
    let mut sig = module.make_signature();
    sig.params.extend((0..n_params).map(|_| AbiParam::new(types::I64)));
    let id = module.declare_function(name, Linkage::Local, &sig).map_err(|e| e.to_string())?;
    ctx.func.signature = sig;
    ctx.func.name = UserFuncName::user(0, id.as_u32());
    let callees = imports.callees(module, &mut ctx.func);
    let locals: Vec<FuncRef> =
        calls.iter().map(|&id| module.declare_func_in_func(id, &mut ctx.func)).collect();
    let frontend = module.isa().frontend_config();
    {
        let mut b = FunctionBuilder::new(&mut ctx.func, fbc);
        let entry = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        let params = b.block_params(entry).to_vec();
        body(&mut b, &params, &callees, &locals);
        b.ins().return_(&[]);
        b.seal_all_blocks();
        b.finalize(frontend);
    }
    if let Some(text) = clif.as_mut() {
        text.push_str(&format!("; {name}\n{}\n", ctx.func.display()));
    }
    module.define_function(id, ctx).map_err(|e| format!("{e:?}"))?;
    module.clear_context(ctx);
    Ok(id)
}

/// The output positions each tape value is stored to.
pub fn outputs_by_value(tape: &Tape) -> HashMap<u32, Vec<usize>> {
    let mut by_value: HashMap<u32, Vec<usize>> = HashMap::new();
    for (j, &o) in tape.outputs.iter().enumerate() {
        by_value.entry(o).or_default().push(j);
    }
    by_value
}

/// A 64-byte-aligned scratch area of `bytes` for the function being built: on its stack
/// (aligned at run time: the frame only guarantees 16), or when too large for it, the
/// thread's heap frame (`alkahest_core::ffi::alkahest_frame`).
pub fn scratch_area(b: &mut FunctionBuilder<'_>, callees: &Callees, bytes: usize) -> Value {
    if bytes + 64 <= alkahest_core::ffi::STACK_FRAME_LIMIT {
        let slot = StackSlotData::new(StackSlotKind::ExplicitSlot, (bytes + 64) as u32, 4);
        let slot = b.create_sized_stack_slot(slot);
        let raw = b.ins().stack_addr(types::I64, slot, 0);
        let bumped = b.ins().iadd_imm_s(raw, 63);
        b.ins().band_imm_s(bumped, -64)
    } else {
        let frame = callees.frame.expect("alkahest_frame is always declared");
        let size = b.ins().iconst(types::I64, bytes as i64);
        let call = b.ins().call(frame, &[size]);
        b.inst_results(call)[0]
    }
}
