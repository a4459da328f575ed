//! Binary formats for expressions (a sub-DAG of a pool) and for tapes: compact,
//! versioned, checksummed, and validated on load so that no payload, damaged or
//! hostile, can crash, hang or exhaust the process.
//!
//! Layout (integers are LEB128 varints unless stated):
//!
//! ```text
//! magic      b"AKH" + kind (b'D' expressions, b'T' tape)
//! version    one byte (FORMAT_VERSION)
//! op names   count, then each name (length, UTF-8): the operations the body uses,
//!            referenced by index, so op codes are never part of the format
//! body       DAG: nodes (children before parents, each once), then the roots
//!            tape: n_inputs, constants (8 bytes LE each), instructions, outputs
//! checksum   CRC-32 of everything before it, 4 bytes LE
//! ```
//!
//! A node or instruction refers only to earlier ones, so a payload cannot describe a
//! cycle; every count is checked against the bytes left before anything is allocated,
//! so loading is linear in the payload's size.

use crate::error::{Error, Result};
use crate::op::{BinaryOp, UnaryOp};
use crate::pool::{topological_order, ExprId, ExprPool, Node};
use crate::tape::{Instr, Tape};

const MAGIC: &[u8; 3] = b"AKH";
const KIND_DAG: u8 = b'D';
const KIND_TAPE: u8 = b'T';
/// Bumped when the layout changes; a payload of a newer version is refused by name.
pub const FORMAT_VERSION: u8 = 1;

const TAG_SYMBOL: u8 = 0;
const TAG_CONST: u8 = 1;
const TAG_UNARY: u8 = 2;
const TAG_BINARY: u8 = 3;
const TAG_SELECT: u8 = 4;
const TAG_INPUT: u8 = 5;
const TAG_FMA: u8 = 6;

fn bad(msg: impl std::fmt::Display) -> Error {
    Error::Format(format!("not a valid alkahest payload: {msg}"))
}

struct Writer {
    buf: Vec<u8>,
    ops: Vec<&'static str>,
}

impl Writer {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    fn op(&mut self, name: &'static str) -> u64 {
        match self.ops.iter().position(|&n| n == name) {
            Some(i) => i as u64,
            None => {
                self.ops.push(name);
                self.ops.len() as u64 - 1
            }
        }
    }

    /// Header, op table, `body`, checksum.
    fn finish(self, kind: u8) -> Vec<u8> {
        let mut out = Writer { buf: Vec::with_capacity(self.buf.len() + 64), ops: vec![] };
        out.buf.extend_from_slice(MAGIC);
        out.buf.push(kind);
        out.buf.push(FORMAT_VERSION);
        out.varint(self.ops.len() as u64);
        for name in &self.ops {
            out.varint(name.len() as u64);
            out.buf.extend_from_slice(name.as_bytes());
        }
        out.buf.extend_from_slice(&self.buf);
        let crc = crc32fast::hash(&out.buf);
        out.buf.extend_from_slice(&crc.to_le_bytes());
        out.buf
    }
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    ops: Vec<String>,
}

impl<'a> Reader<'a> {
    /// Checks magic, kind, version and checksum, and reads the op table.
    fn open(data: &'a [u8], kind: u8) -> Result<Self> {
        let what = if kind == KIND_DAG { "expressions" } else { "a tape" };
        if data.len() < 9 || &data[..3] != MAGIC {
            return Err(bad(format!("expected {what} written by alkahest (it starts with b\"AKH\")")));
        }
        if data[3] != kind {
            return Err(bad(format!("this payload holds {}, not {what}", kind_name(data[3]))));
        }
        if data[4] > FORMAT_VERSION {
            return Err(Error::Format(format!(
                "the payload is format version {}, newer than this alkahest reads ({FORMAT_VERSION}); \
                 upgrade alkahest where it is loaded",
                data[4]
            )));
        }
        if data[4] == 0 {
            return Err(bad("format version 0"));
        }
        let (body, crc) = data.split_at(data.len() - 4);
        if crc32fast::hash(body) != u32::from_le_bytes(crc.try_into().expect("4 bytes")) {
            return Err(bad("checksum mismatch (the data is truncated or damaged)"));
        }
        let mut r = Reader { data: body, pos: 5, ops: vec![] };
        let n = r.count(2, "op names")?;
        for _ in 0..n {
            let len = r.count(1, "op name length")?;
            let bytes = r.take(len)?;
            let name = std::str::from_utf8(bytes).map_err(|_| bad("an op name is not UTF-8"))?;
            r.ops.push(name.to_owned());
        }
        Ok(r)
    }

    fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(bad("it ends early"));
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn byte(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn varint(&mut self) -> Result<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(bad("an integer is too long"))
    }

    /// A count of items each at least `min_bytes` long: never more than the bytes left
    /// allow, so a hostile count cannot make us allocate.
    fn count(&mut self, min_bytes: usize, what: &str) -> Result<usize> {
        let n = self.varint()?;
        if n > (self.remaining() / min_bytes.max(1)) as u64 {
            return Err(bad(format!("{what}: {n} is more than the payload holds")));
        }
        Ok(n as usize)
    }

    /// An index that must be below `limit` (the items defined so far).
    fn index(&mut self, limit: usize, what: &str) -> Result<u32> {
        let i = self.varint()?;
        if i >= limit as u64 {
            return Err(bad(format!("{what} {i} refers forward or out of range (limit {limit})")));
        }
        Ok(i as u32)
    }

    fn f64(&mut self) -> Result<f64> {
        Ok(f64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }

    fn op_name(&mut self) -> Result<&str> {
        let i = self.varint()?;
        match self.ops.get(i as usize) {
            Some(name) => Ok(name.as_str()),
            None => Err(bad(format!("op index {i} is not in the op table"))),
        }
    }

    fn unary_op(&mut self) -> Result<UnaryOp> {
        let name = self.op_name()?;
        UnaryOp::from_name(name).ok_or_else(|| unknown_op(name, "unary"))
    }

    fn binary_op(&mut self) -> Result<BinaryOp> {
        let name = self.op_name()?;
        BinaryOp::from_name(name).ok_or_else(|| unknown_op(name, "binary"))
    }

    fn finish(&self) -> Result<()> {
        if self.remaining() != 0 {
            return Err(bad(format!("{} bytes follow the end of the data", self.remaining())));
        }
        Ok(())
    }
}

fn kind_name(kind: u8) -> &'static str {
    match kind {
        KIND_DAG => "expressions",
        KIND_TAPE => "a tape",
        _ => "an unknown kind of data",
    }
}

/// The error for an op name that is not of the expected arity: a known op in the wrong
/// place (damage), or one this alkahest lacks (a newer writer).
fn unknown_op(name: &str, arity: &str) -> Error {
    if UnaryOp::from_name(name).is_some() || BinaryOp::from_name(name).is_some() {
        bad(format!("'{name}' is not a {arity} operation"))
    } else {
        Error::Format(format!(
            "the payload uses the operation '{name}', which this alkahest does not have \
             (written by a newer version?); upgrade alkahest where it is loaded"
        ))
    }
}

/// The sub-DAG under `roots` as bytes: each node once, children first.
pub fn dump_exprs(pool: &ExprPool, roots: &[ExprId]) -> Vec<u8> {
    let view = pool.read();
    let (order, index) = topological_order(&view, roots);
    let mut w = Writer { buf: Vec::with_capacity(order.len() * 4 + 16), ops: vec![] };
    w.varint(order.len() as u64);
    for &id in &order {
        match view.node(id) {
            Node::Symbol(name) => {
                w.buf.push(TAG_SYMBOL);
                w.varint(name.len() as u64);
                w.buf.extend_from_slice(name.as_bytes());
            }
            Node::Const(bits) => {
                w.buf.push(TAG_CONST);
                w.buf.extend_from_slice(&bits.to_le_bytes());
            }
            Node::Unary(op, a) => {
                w.buf.push(TAG_UNARY);
                let o = w.op(op.name());
                w.varint(o);
                w.varint(index[a] as u64);
            }
            Node::Binary(op, [a, b]) => {
                w.buf.push(TAG_BINARY);
                let o = w.op(op.name());
                w.varint(o);
                w.varint(index[a] as u64);
                w.varint(index[b] as u64);
            }
            Node::Select(args) => {
                w.buf.push(TAG_SELECT);
                for c in args {
                    w.varint(index[c] as u64);
                }
            }
        }
    }
    w.varint(roots.len() as u64);
    for r in roots {
        w.varint(index[r] as u64);
    }
    w.finish(KIND_DAG)
}

/// Loads expressions written by [`dump_exprs`] into `pool` (merging: a node the pool
/// already has is that node) and returns the roots in order.
pub fn load_exprs(pool: &ExprPool, data: &[u8]) -> Result<Vec<ExprId>> {
    let mut r = Reader::open(data, KIND_DAG)?;
    // Decode everything before touching the pool, so a bad payload adds nothing.
    let n = r.count(2, "node count")?;
    let mut nodes: Vec<Node> = Vec::with_capacity(n);
    for k in 0..n {
        let node = match r.byte()? {
            TAG_SYMBOL => {
                let len = r.count(1, "symbol length")?;
                let name =
                    std::str::from_utf8(r.take(len)?).map_err(|_| bad("a symbol name is not UTF-8"))?;
                if name.is_empty() {
                    return Err(bad("a symbol has an empty name"));
                }
                Node::Symbol(name.into())
            }
            TAG_CONST => Node::constant(r.f64()?),
            TAG_UNARY => Node::Unary(r.unary_op()?, ExprId(r.index(k, "node")?)),
            TAG_BINARY => {
                let op = r.binary_op()?;
                Node::Binary(op, [ExprId(r.index(k, "node")?), ExprId(r.index(k, "node")?)])
            }
            TAG_SELECT => Node::Select([
                ExprId(r.index(k, "node")?),
                ExprId(r.index(k, "node")?),
                ExprId(r.index(k, "node")?),
            ]),
            t => return Err(bad(format!("unknown node tag {t}"))),
        };
        nodes.push(node);
    }
    let n_roots = r.count(1, "root count")?;
    let roots: Vec<u32> = (0..n_roots).map(|_| r.index(n, "root")).collect::<Result<_>>()?;
    r.finish()?;
    // Children refer to positions in the payload; map them to the pool's ids as we go.
    let mut ids: Vec<ExprId> = Vec::with_capacity(n);
    for node in nodes {
        let at = |c: ExprId| ids[c.index()];
        let node = match node {
            Node::Unary(op, a) => Node::Unary(op, at(a)),
            Node::Binary(op, [a, b]) => Node::Binary(op, [at(a), at(b)]),
            Node::Select([c, a, b]) => Node::Select([at(c), at(a), at(b)]),
            leaf => leaf,
        };
        ids.push(pool.intern(node)?);
    }
    Ok(roots.into_iter().map(|i| ids[i as usize]).collect())
}

/// The tape as bytes.
pub fn dump_tape(tape: &Tape) -> Vec<u8> {
    let mut w =
        Writer { buf: Vec::with_capacity(tape.instrs.len() * 4 + tape.consts.len() * 8 + 16), ops: vec![] };
    w.varint(tape.n_inputs as u64);
    w.varint(tape.consts.len() as u64);
    for c in &tape.consts {
        w.buf.extend_from_slice(&c.to_bits().to_le_bytes());
    }
    w.varint(tape.instrs.len() as u64);
    for ins in &tape.instrs {
        match *ins {
            Instr::Input(i) => {
                w.buf.push(TAG_INPUT);
                w.varint(i.into());
            }
            Instr::Const(c) => {
                w.buf.push(TAG_CONST);
                w.varint(c.into());
            }
            Instr::Unary(op, a) => {
                w.buf.push(TAG_UNARY);
                let o = w.op(op.name());
                w.varint(o);
                w.varint(a.into());
            }
            Instr::Binary(op, a, b) => {
                w.buf.push(TAG_BINARY);
                let o = w.op(op.name());
                w.varint(o);
                w.varint(a.into());
                w.varint(b.into());
            }
            Instr::Select(c, a, b) | Instr::Fma(c, a, b) => {
                w.buf.push(if matches!(ins, Instr::Select(..)) { TAG_SELECT } else { TAG_FMA });
                for v in [c, a, b] {
                    w.varint(v.into());
                }
            }
        }
    }
    w.varint(tape.outputs.len() as u64);
    for &o in &tape.outputs {
        w.varint(o.into());
    }
    w.finish(KIND_TAPE)
}

/// Loads a tape written by [`dump_tape`], checking every invariant the tiers rely on:
/// the inputs first and in order, operands defined before use, constants in range.
pub fn load_tape(data: &[u8]) -> Result<Tape> {
    let mut r = Reader::open(data, KIND_TAPE)?;
    let n_inputs = r.varint()?;
    let n_consts = r.count(8, "constant count")?;
    let consts: Vec<f64> = (0..n_consts).map(|_| r.f64()).collect::<Result<_>>()?;
    let n = r.count(2, "instruction count")?;
    if n_inputs > n as u64 {
        return Err(bad(format!("{n_inputs} inputs but only {n} instructions")));
    }
    let n_inputs = n_inputs as usize;
    let mut instrs = Vec::with_capacity(n);
    for k in 0..n {
        let ins = match r.byte()? {
            TAG_INPUT => {
                let i = r.varint()?;
                if i != k as u64 || k >= n_inputs {
                    return Err(bad(format!("instruction {k} is input {i}: inputs come first, in order")));
                }
                Instr::Input(i as u32)
            }
            TAG_CONST => Instr::Const(r.index(n_consts, "constant")?),
            TAG_UNARY => Instr::Unary(r.unary_op()?, r.index(k, "value")?),
            TAG_BINARY => {
                let op = r.binary_op()?;
                Instr::Binary(op, r.index(k, "value")?, r.index(k, "value")?)
            }
            TAG_FMA => Instr::Fma(r.index(k, "value")?, r.index(k, "value")?, r.index(k, "value")?),
            TAG_SELECT => Instr::Select(r.index(k, "value")?, r.index(k, "value")?, r.index(k, "value")?),
            t => return Err(bad(format!("unknown instruction tag {t}"))),
        };
        if k < n_inputs && !matches!(ins, Instr::Input(_)) {
            return Err(bad(format!("instruction {k} should be input {k}")));
        }
        instrs.push(ins);
    }
    let n_outputs = r.count(1, "output count")?;
    let outputs: Vec<u32> = (0..n_outputs).map(|_| r.index(n, "output")).collect::<Result<_>>()?;
    r.finish()?;
    Ok(Tape::from_parts(n_inputs, consts, instrs, outputs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lower;

    fn sample(pool: &ExprPool) -> (Vec<ExprId>, Vec<ExprId>) {
        let x = pool.symbol("x").unwrap();
        let y = pool.symbol("y").unwrap();
        let s = pool.unary(UnaryOp::Sin, x).unwrap();
        let p = pool.binary(BinaryOp::Pow, y, pool.constant(30.0).unwrap()).unwrap();
        let m = pool.binary(BinaryOp::Mul, s, p).unwrap();
        let c = pool.binary(BinaryOp::Lt, x, y).unwrap();
        let w = pool.select(c, m, pool.constant(-0.0).unwrap()).unwrap();
        (vec![w, m], vec![x, y])
    }

    #[test]
    fn exprs_round_trip_and_merge() {
        let pool = ExprPool::new();
        let (roots, _) = sample(&pool);
        let data = dump_exprs(&pool, &roots);
        assert_eq!(load_exprs(&pool, &data).unwrap(), roots, "loading into the source pool merges");
        let other = ExprPool::new();
        let loaded = load_exprs(&other, &data).unwrap();
        assert_eq!(dump_exprs(&other, &loaded), data);
        assert_eq!(other.len(), pool.len());
    }

    #[test]
    fn tape_round_trips() {
        let pool = ExprPool::new();
        let (roots, vars) = sample(&pool);
        let tape = lower(&pool, &roots, &vars).unwrap();
        assert!(tape.instrs.iter().any(|i| matches!(i, Instr::Fma(..))));
        assert_eq!(load_tape(&dump_tape(&tape)).unwrap(), tape);
    }

    #[test]
    fn every_truncation_and_flip_is_refused() {
        let pool = ExprPool::new();
        let (roots, vars) = sample(&pool);
        let tape = dump_tape(&lower(&pool, &roots, &vars).unwrap());
        let dag = dump_exprs(&pool, &roots);
        for data in [&tape, &dag] {
            for end in 0..data.len() {
                assert!(matches!(load_tape(&data[..end]), Err(Error::Format(_))));
                assert!(matches!(load_exprs(&pool, &data[..end]), Err(Error::Format(_))));
            }
            for i in 0..data.len() {
                for bit in 0..8 {
                    let mut d = data.to_vec();
                    d[i] ^= 1 << bit;
                    assert!(load_tape(&d).is_err() && load_exprs(&pool, &d).is_err(), "flip at {i}.{bit}");
                }
            }
        }
    }

    /// A payload with a valid checksum but hostile content is still refused.
    #[test]
    fn hostile_bodies_with_valid_checksums_are_refused() {
        let seal = |kind: u8, body: &[u8]| {
            let mut w = Writer { buf: body.to_vec(), ops: vec!["sin"] };
            w.ops.push("frobnicate");
            w.finish(kind)
        };
        let cases: Vec<(u8, Vec<u8>, &str)> = vec![
            (KIND_DAG, vec![0xff, 0xff, 0xff, 0xff, 0x0f], "more than the payload holds"),
            (KIND_DAG, vec![2, TAG_SYMBOL, 1, b'x', TAG_UNARY, 0, 1], "refers forward"),
            (KIND_DAG, vec![1, TAG_UNARY, 0, 0], "refers forward"),
            (KIND_DAG, vec![2, TAG_SYMBOL, 1, b'x', TAG_UNARY, 1, 0, 1, 1], "frobnicate"),
            (KIND_DAG, vec![1, 9, 0], "unknown node tag"),
            (KIND_DAG, vec![1, TAG_SYMBOL, 1, b'x', 1, 0, 7], "follow the end"),
            (KIND_TAPE, vec![1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, TAG_CONST, 0, 1, 0], "should be input 0"),
            (KIND_TAPE, vec![1, 0, 2, TAG_INPUT, 0, TAG_INPUT, 1, 1, 0], "inputs come first"),
            (KIND_TAPE, vec![0, 0, 1, TAG_UNARY, 0, 0, 1, 0], "refers forward"),
            (KIND_TAPE, vec![0, 0, 1, TAG_CONST, 0, 1, 0], "constant 0"),
            (KIND_TAPE, vec![5, 0, 1, TAG_INPUT, 0, 1, 0], "5 inputs"),
        ];
        for (kind, body, want) in cases {
            let data = seal(kind, &body);
            let err = if kind == KIND_DAG {
                load_exprs(&ExprPool::new(), &data).unwrap_err()
            } else {
                load_tape(&data).unwrap_err()
            };
            assert!(err.to_string().contains(want), "{err} (wanted '{want}')");
        }
    }

    #[test]
    fn a_newer_version_is_refused_by_name() {
        let pool = ExprPool::new();
        let x = pool.symbol("x").unwrap();
        let mut data = dump_exprs(&pool, &[x]);
        data[4] = FORMAT_VERSION + 1;
        let n = data.len() - 4;
        let crc = crc32fast::hash(&data[..n]);
        data[n..].copy_from_slice(&crc.to_le_bytes());
        assert!(load_exprs(&pool, &data).unwrap_err().to_string().contains("upgrade alkahest"));
        assert!(load_tape(&dump_exprs(&pool, &[x])).unwrap_err().to_string().contains("holds expressions"));
    }
}
