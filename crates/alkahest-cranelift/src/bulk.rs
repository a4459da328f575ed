//! The bulk entry, `void bulk(const T *const *in, const int64_t *stride, T *const *out,
//! int64_t n)`: a loop over blocks of points, each block run stage by stage (see
//! `alkahest_core::plan`) by stage functions of bounded size (`Plan::functions`).

use std::collections::HashMap;
use std::ops::Range;

use alkahest_core::plan::{Plan, Stage};
use alkahest_core::{Instr, Tape};
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, Block, InstBuilder, MemFlagsData, Value};
use cranelift_frontend::FunctionBuilder;
use cranelift_module::FuncId;

use crate::codegen::{define, outputs_by_value, scratch_area, Imports, Session, TRUSTED};
use crate::emit::{emit, fconst, Callees, Width};

/// Values a stage function reads in its entry block, made only for what its stages use.
struct Frame {
    start: Value,
    len: Value,
    /// Per input read in place by a vector stage: (base pointer, stride in elements).
    inputs: HashMap<u32, (Value, Value)>,
    /// The output pointers, in the function holding the last stage (which stores them).
    outputs: Vec<Value>,
    /// Per tape value that is a constant: made once, in the entry block.
    consts: HashMap<u32, Value>,
    /// Per input read by fused stages: this block's points, stride 1.
    contiguous: HashMap<u32, Value>,
    area: Value,       // the block buffers, 64-byte aligned, one after another
    buffer_bytes: i32, // the length of one buffer
}

impl Frame {
    /// Where buffer `k` starts in the area.
    fn buffer_offset(&self, k: u32) -> i32 {
        k as i32 * self.buffer_bytes
    }
}

/// Loads and stores that may be unaligned (user arrays are only element-aligned).
const UNALIGNED: MemFlagsData = MemFlagsData::new().with_notrap();

/// One fused stage: a loop over the block's points, one vector of them per iteration
/// (the bulk entry is only ever called with a multiple of the lane count; see
/// `CraneliftKernel::bulk`).
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
    let w = Width::vector(callees.dtype);
    let points = open_loop(b, frame.len);
    let k = points.counter;
    let idx = b.ins().iadd(frame.start, k);
    let k8 = b.ins().ishl_imm_u(k, w.shift());
    // Buffer accesses are `area + k*size + constant`: one register for all buffers.
    let in_area = b.ins().iadd(frame.area, k8);
    let mut env: HashMap<u32, Value> = HashMap::new();
    let get = |b: &mut FunctionBuilder<'_>, v: u32, env: &mut HashMap<u32, Value>| -> Value {
        if let Some(&x) = env.get(&v) {
            return x;
        }
        let x = match tape.instrs[v as usize] {
            Instr::Const(_) => frame.consts[&v],
            Instr::Input(i) => {
                let block_points = frame.contiguous[&i];
                let addr = b.ins().iadd(block_points, k8);
                b.ins().load(w.ty(), UNALIGNED, addr, 0)
            }
            _ => {
                let buf = plan.buffer_of[v as usize].expect("a value from another stage is buffered");
                b.ins().load(w.ty(), TRUSTED, in_area, frame.buffer_offset(buf))
            }
        };
        env.insert(v, x);
        x
    };
    // The last stage stores each output it computes at once (see `scalar`); outputs
    // from earlier stages or inputs are stored at the end.
    let idx8 = b.ins().ishl_imm_u(idx, w.shift());
    let mut outputs_of = if is_last { outputs_by_value(tape) } else { HashMap::new() };
    let store_output = |b: &mut FunctionBuilder<'_>, x: Value, j: usize| {
        let addr = b.ins().iadd(frame.outputs[j], idx8);
        b.ins().store(UNALIGNED, x, addr, 0);
    };
    for &v in values {
        let ins = &tape.instrs[v as usize];
        let ops: Vec<Value> = ins.operands().map(|a| get(b, a, &mut env)).collect();
        let x = emit(b, w, callees, ins, &ops);
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
    let next = b.ins().iadd_imm_s(k, w.lanes() as i64);
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

/// The bulk entry's area: the block buffers, then a table of pointers to each input's
/// points of the block (contiguous: the array itself or its gather buffer), which the
/// stage functions read. Returns (table offset, total bytes).
fn area_layout(tape: &Tape, plan: &Plan) -> (usize, usize) {
    let table = plan.area_bytes();
    (table, table + 8 * tape.n_inputs)
}

/// The arguments of a stage function, in order.
const STAGE_PARAMS: usize = 6; // in, stride, out, area, start, len

/// `stages(in, stride, out, area, start, len)`: the stages `range` over one block.
fn stage_function(
    session: &mut Session<'_>,
    tape: &Tape,
    plan: &Plan,
    imports: &Imports,
    range: Range<usize>,
) -> Result<FuncId, String> {
    let name = format!("alkahest_stages_{}", range.start);
    define(session, &name, STAGE_PARAMS, imports, &[], |b, params, callees, _| {
        let (in_pp, stride_p, out_pp, area, start, len) =
            (params[0], params[1], params[2], params[3], params[4], params[5]);
        let table = area_layout(tape, plan).0 as i32;
        let holds_last = range.end == plan.stages.len();
        let mut frame = Frame {
            start,
            len,
            inputs: HashMap::new(),
            outputs: Vec::new(),
            consts: HashMap::new(),
            contiguous: HashMap::new(),
            area,
            buffer_bytes: (plan.block * callees.dtype.size()) as i32,
        };
        // What the fused stages read directly (the last one also reads the outputs).
        let mut leaves: Vec<u32> = Vec::new();
        for stage in &plan.stages[range.clone()] {
            match stage {
                Stage::Fused { values } => {
                    leaves.extend(values.iter().flat_map(|&v| tape.instrs[v as usize].operands()))
                }
                Stage::Vector { src, .. } => {
                    if let Instr::Input(i) = tape.instrs[*src as usize] {
                        if let std::collections::hash_map::Entry::Vacant(e) = frame.inputs.entry(i) {
                            let base = b.ins().load(types::I64, TRUSTED, in_pp, 8 * i as i32);
                            let stride = b.ins().load(types::I64, TRUSTED, stride_p, 8 * i as i32);
                            e.insert((base, stride));
                        }
                    }
                }
            }
        }
        if holds_last {
            frame.outputs = (0..tape.outputs.len() as i32)
                .map(|j| b.ins().load(types::I64, TRUSTED, out_pp, 8 * j))
                .collect();
            leaves.extend(tape.outputs.iter().copied());
        }
        for v in leaves {
            match tape.instrs[v as usize] {
                Instr::Const(c) if !frame.consts.contains_key(&v) => {
                    let x = fconst(b, Width::vector(callees.dtype), tape.consts[c as usize]);
                    frame.consts.insert(v, x);
                }
                Instr::Input(i) if !frame.contiguous.contains_key(&i) => {
                    let x = b.ins().load(types::I64, TRUSTED, area, table + 8 * i as i32);
                    frame.contiguous.insert(i, x);
                }
                _ => {}
            }
        }
        for s in range.clone() {
            match &plan.stages[s] {
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
                            let (base, stride) = frame.inputs[&i];
                            let off = b.ins().imul(start, stride);
                            let shift = Width::scalar(callees.dtype).shift();
                            let off8 = b.ins().ishl_imm_u(off, shift);
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
    })
}

/// `bulk(in, stride, out, n)`: blocks of `plan.block` points; per block, each input the
/// fused loops read is made contiguous, then the stage functions run in turn.
pub fn bulk(
    session: &mut Session<'_>,
    tape: &Tape,
    plan: &Plan,
    imports: &Imports,
) -> Result<FuncId, String> {
    let stage_fns = plan
        .functions()
        .into_iter()
        .map(|range| stage_function(session, tape, plan, imports, range))
        .collect::<Result<Vec<FuncId>, String>>()?;
    define(session, "alkahest_bulk", 4, imports, &stage_fns, |b, params, callees, stage_fns| {
        let (in_pp, stride_p, out_pp, n) = (params[0], params[1], params[2], params[3]);
        // One area for all block buffers, 64-byte aligned (libmvec's AVX-512 loads then
        // never split a cache line); each buffer is a multiple of 64 bytes long (the block
        // is a multiple of 8).
        let (table, area_bytes) = area_layout(tape, plan);
        let area = scratch_area(b, callees, area_bytes);
        let gathered: Vec<(usize, u32, Value, Value)> = (0..tape.n_inputs)
            .filter_map(|i| {
                let buf = plan.input_buffer[i]?;
                let base = b.ins().load(types::I64, TRUSTED, in_pp, 8 * i as i32);
                let stride = b.ins().load(types::I64, TRUSTED, stride_p, 8 * i as i32);
                Some((i, buf, base, stride))
            })
            .collect();
        let w = Width::scalar(callees.dtype);
        let buffer_bytes = (plan.block * w.dtype.size()) as i64;

        let blocks = open_loop(b, n);
        let start = blocks.counter;
        let rem = b.ins().isub(n, start);
        let full = b.ins().iconst(types::I64, plan.block as i64);
        let short = b.ins().icmp(IntCC::SignedLessThan, rem, full);
        let len = b.ins().select(short, rem, full);
        // Each input the fused loops read, as a contiguous run of this block's points:
        // the array itself when its stride is 1, else gathered into its buffer.
        let gather = callees.gather.expect("gather is always declared");
        for &(i, buf, base, stride) in &gathered {
            let off = b.ins().imul(start, stride);
            let off8 = b.ins().ishl_imm_u(off, w.shift());
            let src = b.ins().iadd(base, off8);
            let dst = b.ins().iadd_imm_s(area, i64::from(buf) * buffer_bytes);
            let call = b.ins().call(gather, &[src, stride, dst, len]);
            let points = b.inst_results(call)[0];
            b.ins().store(TRUSTED, points, area, (table + 8 * i) as i32);
        }
        for &f in stage_fns {
            b.ins().call(f, &[in_pp, stride_p, out_pp, area, start, len]);
        }
        let next = b.ins().iadd(start, len);
        close_loop(b, blocks, next);
    })
}
