//! The two kernel-ABI entries as Cranelift functions.
//!
//! ```c
//! void scalar(const double *args, double *out);
//! void bulk(const double *const *in, const int64_t *stride, double *const *out, int64_t n);
//! ```

use std::collections::HashMap;

use alkahest_core::{BinaryOp, Instr, Tape, UnaryOp};
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{
    types, AbiParam, Block, Function, InstBuilder, MemFlagsData, StackSlotData, StackSlotKind, UserFuncName,
    Value,
};
use cranelift_codegen::Context;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::JITModule;
use cranelift_module::{FuncId, Linkage, Module};

use crate::emit::{emit, fconst, Callees, Width};
use alkahest_core::plan::{Plan, Stage};

/// Loads and stores of addresses the caller guarantees aligned and valid.
const TRUSTED: MemFlagsData = MemFlagsData::trusted();

/// Functions the generated code calls, declared once per module.
pub struct Imports {
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
    pub fn declare(module: &mut JITModule, tape: &Tape, plan: &Plan) -> Result<Imports, String> {
        let mut imports = Imports {
            unary: HashMap::new(),
            binary: HashMap::new(),
            vector_apply: None,
            gather: None,
            frame: None,
        };
        for ins in &tape.instrs {
            match *ins {
                Instr::Unary(op, _) if !imports.unary.contains_key(&op) => {
                    if let Some((name, _)) = alkahest_core::ffi::unary_symbol(op) {
                        imports.unary.insert(op, declare(module, name, &[types::F64], Some(types::F64))?);
                    }
                }
                Instr::Binary(op, ..) if !imports.binary.contains_key(&op) => {
                    if let Some((name, _)) = alkahest_core::ffi::binary_symbol(op) {
                        imports
                            .binary
                            .insert(op, declare(module, name, &[types::F64, types::F64], Some(types::F64))?);
                    }
                }
                _ => {}
            }
        }
        if plan.stages.iter().any(|s| matches!(s, Stage::Vector { .. })) {
            let params = [types::I32, types::I64, types::I64, types::I64, types::I64];
            imports.vector_apply = Some(declare(module, "alkahest_vector_apply", &params, None)?);
        }
        let params = [types::I64, types::I64, types::I64, types::I64];
        imports.gather = Some(declare(module, "alkahest_gather", &params, Some(types::I64))?);
        if !plan.frame_on_stack() {
            imports.frame = Some(declare(module, "alkahest_frame", &[types::I64], Some(types::I64))?);
        }
        Ok(imports)
    }

    fn callees(&self, module: &mut JITModule, func: &mut Function) -> Callees {
        Callees {
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

fn define(
    session: &mut Session<'_>,
    name: &str,
    n_params: usize,
    imports: &Imports,
    body: impl FnOnce(&mut FunctionBuilder<'_>, &[Value], &Callees),
) -> Result<FuncId, String> {
    let Session { module, ctx, fbc, clif } = session;
    let mut sig = module.make_signature();
    sig.params.extend((0..n_params).map(|_| AbiParam::new(types::I64)));
    let id = module.declare_function(name, Linkage::Local, &sig).map_err(|e| e.to_string())?;
    ctx.func.signature = sig;
    ctx.func.name = UserFuncName::user(0, id.as_u32());
    let callees = imports.callees(module, &mut ctx.func);
    let frontend = module.isa().frontend_config();
    {
        let mut b = FunctionBuilder::new(&mut ctx.func, fbc);
        let entry = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        let params = b.block_params(entry).to_vec();
        body(&mut b, &params, &callees);
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
fn outputs_by_value(tape: &Tape) -> HashMap<u32, Vec<usize>> {
    let mut by_value: HashMap<u32, Vec<usize>> = HashMap::new();
    for (j, &o) in tape.outputs.iter().enumerate() {
        by_value.entry(o).or_default().push(j);
    }
    by_value
}

/// `scalar(args, out)`: straight-line code, every function through libm.
pub fn scalar(session: &mut Session<'_>, tape: &Tape, imports: &Imports) -> Result<FuncId, String> {
    define(session, "alkahest_scalar", 2, imports, |b, params, callees| {
        let (args, out) = (params[0], params[1]);
        // Each output is stored as soon as it is computed: kept until the end, hundreds
        // of outputs would be live across the whole function, and the register
        // allocator's time grows superlinearly with such values (a 72,000-op tape of 100
        // outputs: 6.7 s for this function alone).
        let outputs_of = outputs_by_value(tape);
        // Likewise inputs and constants are made at their first use, not where the tape
        // lists them (first of all).
        let mut vals: Vec<Option<Value>> = vec![None; tape.instrs.len()];
        let leaf = |b: &mut FunctionBuilder<'_>, vals: &mut Vec<Option<Value>>, v: u32| -> Value {
            if let Some(x) = vals[v as usize] {
                return x;
            }
            let x = match tape.instrs[v as usize] {
                Instr::Input(i) => b.ins().load(types::F64, TRUSTED, args, 8 * i as i32),
                Instr::Const(c) => b.ins().f64const(tape.consts[c as usize]),
                _ => unreachable!("operations are computed in tape order"),
            };
            vals[v as usize] = Some(x);
            x
        };
        for (k, ins) in tape.instrs.iter().enumerate() {
            let v = match *ins {
                Instr::Input(_) | Instr::Const(_) if !outputs_of.contains_key(&(k as u32)) => continue,
                Instr::Input(_) | Instr::Const(_) => leaf(b, &mut vals, k as u32),
                _ => {
                    let ops: Vec<Value> = ins.operands().map(|a| leaf(b, &mut vals, a)).collect();
                    let x = emit(b, Width::Scalar, callees, ins, &ops);
                    vals[k] = Some(x);
                    x
                }
            };
            for &j in outputs_of.get(&(k as u32)).into_iter().flatten() {
                b.ins().store(TRUSTED, v, out, 8 * j as i32);
            }
        }
    })
}

/// Values a bulk function reads from its entry block.
struct Frame {
    start: Value,
    len: Value,
    inputs: Vec<(Value, Value)>, // (base pointer, stride in elements)
    outputs: Vec<Value>,
    consts: Vec<Option<Value>>, // per tape value: materialised once, in the entry block
    contiguous: Vec<Option<Value>>, // per input read by fused stages: this block's points, stride 1
    area: Value,                // the block buffers, 64-byte aligned, one after another
    buffer_bytes: i32,          // the length of one buffer
}

impl Frame {
    /// Where buffer `k` starts in the area.
    fn buffer_offset(&self, k: u32) -> i32 {
        k as i32 * self.buffer_bytes
    }
}

/// Loads and stores that may be unaligned (user arrays are only 8-byte aligned).
const UNALIGNED: MemFlagsData = MemFlagsData::new().with_notrap();

/// One fused stage: a loop over the block's points, two per iteration (the bulk entry
/// is only ever called with an even number of points; see `CraneliftKernel::bulk`).
fn fused_stage(
    b: &mut FunctionBuilder<'_>,
    tape: &Tape,
    plan: &Plan,
    frame: &Frame,
    callees: &Callees,
    stage: usize,
    values: &[u32],
) {
    let is_last = stage + 1 == plan.stages.len();
    let points = open_loop(b, frame.len);
    let k = points.counter;
    let idx = b.ins().iadd(frame.start, k);
    let k8 = b.ins().ishl_imm_u(k, 3);
    // Buffer accesses are `area + k*8 + constant`: one register for all buffers.
    let in_area = b.ins().iadd(frame.area, k8);
    let mut env: HashMap<u32, Value> = HashMap::new();
    let get = |b: &mut FunctionBuilder<'_>, v: u32, env: &mut HashMap<u32, Value>| -> Value {
        if let Some(&x) = env.get(&v) {
            return x;
        }
        let x = match tape.instrs[v as usize] {
            Instr::Const(_) => frame.consts[v as usize].expect("constants are hoisted"),
            Instr::Input(i) => {
                let block_points = frame.contiguous[i as usize].expect("inputs of fused stages are gathered");
                let addr = b.ins().iadd(block_points, k8);
                b.ins().load(types::F64X2, UNALIGNED, addr, 0)
            }
            _ => {
                let buf = plan.buffer_of[v as usize].expect("a value from another stage is buffered");
                b.ins().load(types::F64X2, TRUSTED, in_area, frame.buffer_offset(buf))
            }
        };
        env.insert(v, x);
        x
    };
    // The last stage stores each output it computes at once (see `scalar`); outputs
    // from earlier stages or inputs are stored at the end.
    let idx8 = b.ins().ishl_imm_u(idx, 3);
    let mut outputs_of = if is_last { outputs_by_value(tape) } else { HashMap::new() };
    let store_output = |b: &mut FunctionBuilder<'_>, x: Value, j: usize| {
        let addr = b.ins().iadd(frame.outputs[j], idx8);
        b.ins().store(UNALIGNED, x, addr, 0);
    };
    for &v in values {
        let ins = &tape.instrs[v as usize];
        let ops: Vec<Value> = ins.operands().map(|a| get(b, a, &mut env)).collect();
        let x = emit(b, Width::Pair, callees, ins, &ops);
        env.insert(v, x);
        for j in outputs_of.remove(&v).into_iter().flatten() {
            store_output(b, x, j);
        }
    }
    for &v in &plan.stores[stage] {
        let x = get(b, v, &mut env);
        let buf = plan.buffer_of[v as usize].expect("stored values have buffers");
        b.ins().store(TRUSTED, x, in_area, frame.buffer_offset(buf));
    }
    let mut rest: Vec<(u32, usize)> =
        outputs_of.into_iter().flat_map(|(o, js)| js.into_iter().map(move |j| (o, j))).collect();
    rest.sort_unstable_by_key(|&(_, j)| j);
    for (o, j) in rest {
        let x = get(b, o, &mut env);
        store_output(b, x, j);
    }
    let next = b.ins().iadd_imm_s(k, 2);
    close_loop(b, points, next);
}

/// `for (counter = 0; counter < limit; ...)`: the builder is left in the loop body.
struct Loop {
    header: Block,
    exit: Block,
    counter: Value,
}

fn open_loop(b: &mut FunctionBuilder<'_>, limit: Value) -> Loop {
    let (header, body, exit) = (b.create_block(), b.create_block(), b.create_block());
    b.append_block_param(header, types::I64);
    let zero = b.ins().iconst(types::I64, 0);
    b.ins().jump(header, &[zero.into()]);
    b.switch_to_block(header);
    let counter = b.block_params(header)[0];
    let more = b.ins().icmp(IntCC::SignedLessThan, counter, limit);
    b.ins().brif(more, body, &[], exit, &[]);
    b.switch_to_block(body);
    Loop { header, exit, counter }
}

/// Ends the body with `counter = next` and continues after the loop.
fn close_loop(b: &mut FunctionBuilder<'_>, lp: Loop, next: Value) {
    b.ins().jump(lp.header, &[next.into()]);
    b.switch_to_block(lp.exit);
}

/// `bulk(in, stride, out, n)`: blocks of `plan.block` points, each run stage by stage.
pub fn bulk(
    session: &mut Session<'_>,
    tape: &Tape,
    plan: &Plan,
    imports: &Imports,
) -> Result<FuncId, String> {
    define(session, "alkahest_bulk", 4, imports, |b, params, callees| {
        let (in_pp, stride_p, out_pp, n) = (params[0], params[1], params[2], params[3]);
        let flags = TRUSTED;
        let inputs: Vec<(Value, Value)> = (0..tape.n_inputs as i32)
            .map(|i| {
                let base = b.ins().load(types::I64, flags, in_pp, 8 * i);
                let stride = b.ins().load(types::I64, flags, stride_p, 8 * i);
                (base, stride)
            })
            .collect();
        let outputs =
            (0..tape.outputs.len() as i32).map(|j| b.ins().load(types::I64, flags, out_pp, 8 * j)).collect();
        let consts = tape
            .instrs
            .iter()
            .map(|ins| match *ins {
                Instr::Const(c) => Some(fconst(b, Width::Pair, tape.consts[c as usize])),
                _ => None,
            })
            .collect();
        // One area for all block buffers, aligned to 64 bytes (libmvec's AVX-512 loads
        // then never split a cache line); each buffer is a multiple of 64 bytes long (the
        // block is a multiple of 8). On the stack, aligned at run time (the frame only
        // guarantees 16), unless too large: then the thread's heap frame.
        let bytes = plan.block * 8;
        let area = if plan.frame_on_stack() {
            let area = StackSlotData::new(StackSlotKind::ExplicitSlot, (plan.area_bytes() + 64) as u32, 4);
            let area = b.create_sized_stack_slot(area);
            let raw = b.ins().stack_addr(types::I64, area, 0);
            let bumped = b.ins().iadd_imm_s(raw, 63);
            b.ins().band_imm_s(bumped, -64)
        } else {
            let frame = callees.frame.expect("declared for frames off the stack");
            let size = b.ins().iconst(types::I64, plan.area_bytes() as i64);
            let call = b.ins().call(frame, &[size]);
            b.inst_results(call)[0]
        };
        let buffer_bytes = bytes as i32;

        let blocks = open_loop(b, n);
        let start = blocks.counter;
        let rem = b.ins().isub(n, start);
        let full = b.ins().iconst(types::I64, plan.block as i64);
        let short = b.ins().icmp(IntCC::SignedLessThan, rem, full);
        let len = b.ins().select(short, rem, full);
        // Each input the fused loops read, as a contiguous run of this block's points:
        // the array itself when its stride is 1, else gathered into its buffer.
        let contiguous = (0..tape.n_inputs)
            .map(|i| {
                let buf = plan.input_buffer[i]?;
                let (base, stride) = inputs[i];
                let off = b.ins().imul(start, stride);
                let off8 = b.ins().ishl_imm_u(off, 3);
                let src = b.ins().iadd(base, off8);
                let gather = callees.gather.expect("gather is always declared");
                let dst = b.ins().iadd_imm_s(area, i64::from(buf) * i64::from(buffer_bytes));
                let call = b.ins().call(gather, &[src, stride, dst, len]);
                Some(b.inst_results(call)[0])
            })
            .collect();
        let frame = Frame { start, len, inputs, outputs, consts, contiguous, area, buffer_bytes };
        for (s, stage) in plan.stages.iter().enumerate() {
            match stage {
                Stage::Fused { values } => fused_stage(b, tape, plan, &frame, callees, s, values),
                Stage::Vector { value, op, src } => {
                    let f = callees.vector_apply.expect("declared when the plan has vector stages");
                    let buf = |b: &mut FunctionBuilder<'_>, v: u32| {
                        let k = plan.buffer_of[v as usize].expect("buffered");
                        b.ins().iadd_imm_s(frame.area, i64::from(frame.buffer_offset(k)))
                    };
                    let (src_addr, src_stride) = match tape.instrs[*src as usize] {
                        Instr::Input(i) => {
                            // Read in place: the block's first point, stride in elements.
                            let (base, stride) = frame.inputs[i as usize];
                            let off = b.ins().imul(start, stride);
                            let off8 = b.ins().ishl_imm_u(off, 3);
                            (b.ins().iadd(base, off8), stride)
                        }
                        _ => (buf(b, *src), b.ins().iconst(types::I64, 1)),
                    };
                    let op_index = b.ins().iconst(types::I32, *op as i64);
                    let dst = buf(b, *value);
                    b.ins().call(f, &[op_index, src_addr, src_stride, dst, frame.len]);
                }
            }
        }
        let next = b.ins().iadd(start, len);
        close_loop(b, blocks, next);
    })
}
