//! The scalar entry, `void scalar(const T *args, T *out)`: straight-line code over the
//! tape, every function through libm.

use std::collections::HashMap;
use std::ops::Range;

use alkahest_core::plan::ScalarChunks;
use alkahest_core::{Instr, Tape};
use cranelift_codegen::ir::{InstBuilder, Value};
use cranelift_frontend::FunctionBuilder;
use cranelift_module::FuncId;

use crate::codegen::{define, outputs_by_value, scratch_area, Imports, Session, TRUSTED};
use crate::emit::{emit, fconst, Callees, Width};

/// The instructions `range` of the scalar entry: straight-line code, every function
/// through libm. Values of earlier chunks are read from `spill`.
fn scalar_chunk(
    b: &mut FunctionBuilder<'_>,
    tape: &Tape,
    callees: &Callees,
    layout: &ScalarChunks,
    outputs_of: &HashMap<u32, Vec<usize>>,
    range: Range<usize>,
    (args, out, spill): (Value, Value, Option<Value>),
) {
    let w = Width::scalar(callees.dtype);
    let size = w.dtype.size() as i32;
    // Each output is stored as soon as it is computed: kept until the end, hundreds of
    // outputs would be live across the whole function, and the register allocator's time
    // grows superlinearly with such values (a 72,000-op tape of 100 outputs: 6.7 s for
    // this function alone). Likewise inputs and constants are made at their first use,
    // not where the tape lists them (first of all).
    let mut vals: HashMap<u32, Value> = HashMap::new();
    let get = |b: &mut FunctionBuilder<'_>, vals: &mut HashMap<u32, Value>, v: u32| -> Value {
        if let Some(&x) = vals.get(&v) {
            return x;
        }
        let x = match tape.instrs[v as usize] {
            Instr::Input(i) => b.ins().load(w.elem(), TRUSTED, args, size * i as i32),
            Instr::Const(c) => fconst(b, w, tape.consts[c as usize]),
            _ => {
                let spill = spill.expect("values of other chunks are spilled");
                b.ins().load(w.elem(), TRUSTED, spill, size * layout.slot[&v] as i32)
            }
        };
        vals.insert(v, x);
        x
    };
    for k in range {
        let ins = &tape.instrs[k];
        let v = match *ins {
            Instr::Input(_) | Instr::Const(_) if !outputs_of.contains_key(&(k as u32)) => continue,
            Instr::Input(_) | Instr::Const(_) => get(b, &mut vals, k as u32),
            _ => {
                let ops: Vec<Value> = ins.operands().map(|a| get(b, &mut vals, a)).collect();
                let x = emit(b, w, callees, ins, &ops);
                vals.insert(k as u32, x);
                if let Some(&slot) = layout.slot.get(&(k as u32)) {
                    let spill = spill.expect("a spill area is passed when values cross chunks");
                    b.ins().store(TRUSTED, x, spill, size * slot as i32);
                }
                x
            }
        };
        for &j in outputs_of.get(&(k as u32)).into_iter().flatten() {
            b.ins().store(TRUSTED, v, out, size * j as i32);
        }
    }
}

/// `scalar(args, out)`: the tape's instructions in order, as one function, or for a
/// large tape as chunk functions called in turn (`alkahest_core::plan::ScalarChunks`).
pub fn scalar(session: &mut Session<'_>, tape: &Tape, imports: &Imports) -> Result<FuncId, String> {
    let layout = ScalarChunks::new(tape);
    let outputs_of = outputs_by_value(tape);
    if let [whole] = &layout.chunks[..] {
        return define(session, "alkahest_scalar", 2, imports, &[], |b, params, callees, _| {
            scalar_chunk(b, tape, callees, &layout, &outputs_of, whole.clone(), (params[0], params[1], None))
        });
    }
    let chunk_fns = layout
        .chunks
        .iter()
        .map(|range| {
            let name = format!("alkahest_scalar_{}", range.start);
            define(session, &name, 3, imports, &[], |b, params, callees, _| {
                let abi = (params[0], params[1], Some(params[2]));
                scalar_chunk(b, tape, callees, &layout, &outputs_of, range.clone(), abi)
            })
        })
        .collect::<Result<Vec<FuncId>, String>>()?;
    define(session, "alkahest_scalar", 2, imports, &chunk_fns, |b, params, callees, chunk_fns| {
        let spill = scratch_area(b, callees, layout.spill_bytes());
        for &f in chunk_fns {
            b.ins().call(f, &[params[0], params[1], spill]);
        }
    })
}
