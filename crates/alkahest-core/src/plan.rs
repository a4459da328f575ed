//! How a native tier's bulk entry runs a tape: a loop over blocks of points, each block
//! a sequence of stages (used by Cranelift always, by LLVM for tapes with many
//! vector-math calls).
//!
//! A *fused* stage is one loop over the block's points that computes a run of
//! instructions in registers. A *vector* stage is one call of a vector-math routine over
//! the whole block (libmvec, the interpreter's own routines, so every tier gives the same
//! bits). Values that cross stages live in per-block stack buffers, reused once dead.
//! Without vector math the whole tape is a single fused stage. Calling one routine over
//! a whole block keeps its tables and code hot and no registers live across the calls.

use std::collections::HashMap;
use std::ops::Range;

use crate::tape::{Instr, Tape};
use crate::{vecmath, UnaryOp};

#[derive(Clone, Debug, PartialEq)]
pub enum Stage {
    /// Per point: compute `values` (tape value ids, in order).
    Fused { values: Vec<u32> },
    /// Once per block: `value = op(src)` over all points (`src` a buffer or an input,
    /// read in place).
    Vector { value: u32, op: UnaryOp, src: u32 },
}

#[derive(Debug)]
pub struct Plan {
    pub stages: Vec<Stage>,
    /// The block buffer holding a value, for values that cross stages.
    pub buffer_of: Vec<Option<u32>>,
    /// For each stage, the values it writes into their buffers.
    pub stores: Vec<Vec<u32>>,
    /// For each input read by fused stages: the buffer its block is gathered into when it
    /// is not contiguous (fused loops then always load two neighbouring doubles).
    pub input_buffer: Vec<Option<u32>>,
    pub n_buffers: usize,
    /// Points per block.
    pub block: usize,
}

/// Bytes of block buffers a block of points should take: they then stay in L2 (and, up
/// to [`crate::ffi::STACK_FRAME_LIMIT`], on the stack). Many buffers shrink the block,
/// down to 8 points; beyond that the area grows and moves to the heap frame.
pub const STACK_BUDGET: usize = 256 * 1024;
const MAX_BLOCK: usize = 1024;

/// Operations per function a native tier generates, about. Code generators spend time
/// that grows faster than the function (register allocation over many long-lived values,
/// loop analyses over many loops): Cranelift took 55 µs per op for a 72,000-op tape as
/// one function against 35 at 1,000, and 69 s for a 99,000-op loop whose 33,000 products
/// were all read again at its end. So large tapes are cut into functions of about this
/// size, called in turn, and compile time grows linearly:
/// * a fused stage holds at most this many operations (values crossing the cut use block
///   buffers like any other);
/// * [`Plan::functions`] groups the stages of the bulk loop;
/// * [`ScalarChunks`] cuts the scalar entry, values crossing chunks in spill slots.
pub const FUNCTION_OPS: usize = 1024;

/// What a stage costs in operations when grouping stages into functions (its loop, or
/// its call and the loop around it).
const STAGE_WEIGHT: usize = 32;

impl Plan {
    /// Bytes of all block buffers of one block.
    pub fn area_bytes(&self) -> usize {
        self.n_buffers * self.block * 8
    }

    /// Consecutive stages, one generated function each: about [`FUNCTION_OPS`] operations.
    pub fn functions(&self) -> Vec<Range<usize>> {
        let mut groups = Vec::new();
        let (mut begin, mut weight) = (0, 0);
        for (s, stage) in self.stages.iter().enumerate() {
            weight += STAGE_WEIGHT
                + match stage {
                    Stage::Fused { values } => values.len(),
                    Stage::Vector { .. } => 1,
                };
            if weight >= FUNCTION_OPS || s + 1 == self.stages.len() {
                groups.push(begin..s + 1);
                (begin, weight) = (s + 1, 0);
            }
        }
        groups
    }

    pub fn new(tape: &Tape, vector_math: bool) -> Plan {
        let n = tape.instrs.len();
        let mut stages: Vec<Stage> = Vec::new();
        let mut stage_of: Vec<Option<usize>> = vec![None; n];
        let mut store_stage: Vec<Option<usize>> = vec![None; n];
        let fused_index = |stages: &mut Vec<Stage>| {
            let open = matches!(stages.last(), Some(Stage::Fused { values }) if values.len() < FUNCTION_OPS);
            if !open {
                stages.push(Stage::Fused { values: vec![] });
            }
            stages.len() - 1
        };
        for (k, ins) in tape.instrs.iter().enumerate() {
            let k32 = k as u32;
            match *ins {
                Instr::Input(_) | Instr::Const(_) => {}
                Instr::Unary(op, src) if vector_math && vecmath::unary(op).is_some() => {
                    stages.push(Stage::Vector { value: k32, op, src });
                    stage_of[k] = Some(stages.len() - 1);
                    store_stage[k] = Some(stages.len() - 1);
                }
                _ => {
                    let s = fused_index(&mut stages);
                    if let Stage::Fused { values } = &mut stages[s] {
                        values.push(k32);
                    }
                    stage_of[k] = Some(s);
                }
            }
        }
        let last = fused_index(&mut stages); // outputs are stored by a final fused stage

        // The last stage that reads each value (outputs count as read by the last stage).
        let mut last_read: Vec<Option<usize>> = vec![None; n];
        let read = |v: u32, s: usize, last_read: &mut Vec<Option<usize>>| {
            let r = &mut last_read[v as usize];
            *r = Some(r.map_or(s, |x| x.max(s)));
        };
        for (s, stage) in stages.iter().enumerate() {
            match stage {
                Stage::Fused { values } => {
                    for &v in values {
                        for a in tape.instrs[v as usize].operands() {
                            read(a, s, &mut last_read);
                            // Computed in an earlier stage: it must be in a buffer.
                            if stage_of[a as usize].is_some_and(|d| d != s) {
                                store_stage[a as usize] = stage_of[a as usize];
                            }
                        }
                    }
                }
                Stage::Vector { src, .. } => {
                    read(*src, s, &mut last_read);
                    if stage_of[*src as usize].is_some() {
                        store_stage[*src as usize] = stage_of[*src as usize];
                    }
                }
            }
        }
        for &o in &tape.outputs {
            read(o, last, &mut last_read);
            if stage_of[o as usize].is_some_and(|d| d != last) {
                store_stage[o as usize] = stage_of[o as usize];
            }
        }

        // Assign buffers stage by stage: take new ones before releasing dead ones, so a
        // stage never writes a buffer it reads.
        let mut stores: Vec<Vec<u32>> = vec![Vec::new(); stages.len()];
        let mut dead_after: Vec<Vec<usize>> = vec![Vec::new(); stages.len()];
        for v in 0..n {
            if let (Some(s), Some(r)) = (store_stage[v], last_read[v]) {
                stores[s].push(v as u32);
                dead_after[r].push(v);
            }
        }
        let mut buffer_of: Vec<Option<u32>> = vec![None; n];
        let mut free: Vec<u32> = Vec::new();
        let mut n_buffers = 0u32;
        for s in 0..stages.len() {
            for &v in &stores[s] {
                buffer_of[v as usize] = Some(free.pop().unwrap_or_else(|| {
                    n_buffers += 1;
                    n_buffers - 1
                }));
            }
            free.extend(dead_after[s].iter().filter_map(|&v| buffer_of[v]));
        }
        let mut input_buffer: Vec<Option<u32>> = vec![None; tape.n_inputs];
        let fused_reads = stages
            .iter()
            .filter_map(|s| match s {
                Stage::Fused { values } => Some(values),
                Stage::Vector { .. } => None,
            })
            .flat_map(|values| values.iter().flat_map(|&v| tape.instrs[v as usize].operands()));
        for v in fused_reads.chain(tape.outputs.iter().copied()) {
            if let Instr::Input(i) = tape.instrs[v as usize] {
                if input_buffer[i as usize].is_none() {
                    input_buffer[i as usize] = Some(n_buffers);
                    n_buffers += 1;
                }
            }
        }
        let n_buffers = n_buffers as usize;
        let block = if n_buffers == 0 {
            MAX_BLOCK
        } else {
            (STACK_BUDGET / (8 * n_buffers)).clamp(8, MAX_BLOCK) / 8 * 8 // even: pairs never straddle the end
        };
        Plan { stages, buffer_of, stores, input_buffer, n_buffers, block }
    }
}

/// The scalar entry of a tape as chunks of about [`FUNCTION_OPS`] operations, one
/// function each, called in turn (one chunk: the whole tape, nothing spilled). A value a
/// chunk computes and a later chunk reads goes through its spill slot; inputs and
/// constants are read where they are used.
#[derive(Debug)]
pub struct ScalarChunks {
    /// Tape instruction ranges, in order, covering the tape.
    pub chunks: Vec<Range<usize>>,
    /// Per value read by a later chunk than its own: its slot (doubles) in the spill area.
    pub slot: HashMap<u32, u32>,
}

impl ScalarChunks {
    pub fn new(tape: &Tape) -> ScalarChunks {
        let leaf = |k: usize| matches!(tape.instrs[k], Instr::Input(_) | Instr::Const(_));
        let mut chunks = Vec::new();
        let mut chunk_of = vec![0usize; tape.instrs.len()];
        let (mut begin, mut ops) = (0, 0);
        for (k, chunk) in chunk_of.iter_mut().enumerate() {
            *chunk = chunks.len();
            ops += usize::from(!leaf(k));
            if ops >= FUNCTION_OPS || k + 1 == tape.instrs.len() {
                chunks.push(begin..k + 1);
                (begin, ops) = (k + 1, 0);
            }
        }
        let mut slot = HashMap::new();
        for (k, ins) in tape.instrs.iter().enumerate() {
            for a in ins.operands() {
                if !leaf(a as usize) && chunk_of[a as usize] != chunk_of[k] && !slot.contains_key(&a) {
                    slot.insert(a, slot.len() as u32);
                }
            }
        }
        ScalarChunks { chunks, slot }
    }

    /// Bytes of the spill area.
    pub fn spill_bytes(&self) -> usize {
        8 * self.slot.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{lower, BinaryOp, ExprPool};

    #[test]
    fn without_vector_math_everything_fuses() {
        let p = ExprPool::new();
        let x = p.symbol("x").unwrap();
        let s = p.unary(UnaryOp::Sin, x).unwrap();
        let e = p.binary(BinaryOp::Mul, s, x).unwrap();
        let t = lower(&p, &[e], &[x]).unwrap();
        let plan = Plan::new(&t, false);
        assert_eq!(plan.stages.len(), 1);
        assert_eq!(plan.n_buffers, 1, "only the input's gather buffer");
    }

    #[test]
    fn vector_calls_split_stages_and_buffers_are_reused() {
        if vecmath::unary(UnaryOp::Sin).is_none() {
            return; // no libmvec here: nothing to split
        }
        let p = ExprPool::new();
        let x = p.symbol("x").unwrap();
        let mut e = x;
        for _ in 0..50 {
            let s = p.unary(UnaryOp::Sin, e).unwrap();
            e = p.binary(BinaryOp::Add, s, x).unwrap();
        }
        let t = lower(&p, &[e], &[x]).unwrap();
        let plan = Plan::new(&t, true);
        assert!(plan.stages.iter().filter(|s| matches!(s, Stage::Vector { .. })).count() == 50);
        assert!(matches!(plan.stages.last(), Some(Stage::Fused { .. })));
        // x lives throughout (gathered once per block); a chain needs only a few more.
        assert!(plan.input_buffer[0].is_some());
        assert!(plan.n_buffers <= 4, "{} buffers", plan.n_buffers);
    }

    #[test]
    fn large_tapes_are_cut_into_functions_of_bounded_size() {
        let p = ExprPool::new();
        let x = p.symbol("x").unwrap();
        let mut e = x;
        let mut products = Vec::new();
        for k in 0..3000 {
            let c = p.constant(k as f64 + 2.0).unwrap();
            let m = p.binary(BinaryOp::Mul, x, c).unwrap();
            products.push(m);
            e = p.binary(BinaryOp::Add, e, m).unwrap();
        }
        let e = p.binary(BinaryOp::Mul, e, products[0]).unwrap();
        let t = lower(&p, &[e, products[0]], &[x]).unwrap();
        let plan = Plan::new(&t, false);
        assert!(plan.stages.len() >= 6, "{} fused stages of 6,000 ops", plan.stages.len());
        let groups = plan.functions();
        assert_eq!(groups.first().unwrap().start, 0);
        assert_eq!(groups.last().unwrap().end, plan.stages.len());
        assert!(groups.windows(2).all(|w| w[0].end == w[1].start));
        let chunks = ScalarChunks::new(&t);
        assert!(chunks.chunks.len() >= 5);
        assert_eq!(chunks.chunks.iter().map(|r| r.len()).sum::<usize>(), t.instrs.len());
        // The first product is read again by the last operation, far past its chunk; the
        // running sum crosses each cut once.
        let first = t.outputs[1];
        assert!(chunks.slot.contains_key(&first));
        assert!(chunks.slot.len() < 2 * chunks.chunks.len());
    }
}
