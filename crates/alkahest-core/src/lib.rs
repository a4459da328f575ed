//! Core of the Alkahest compiler: the expression pool, the tape IR, the interpreter tier
//! and the bulk runner. Pure Rust; the Python bindings live in `alkahest-python`.
//!
//! ```
//! use alkahest_core::{lower, ExprPool, Interpreter, Kernel, UnaryOp, BinaryOp};
//! let pool = ExprPool::new();
//! let x = pool.symbol("x").unwrap();
//! let s = pool.unary(UnaryOp::Sin, x).unwrap();
//! let e = pool.binary(BinaryOp::Mul, s, s).unwrap();
//! let f = Interpreter::new(lower(&pool, &[e], &[x]).unwrap());
//! let mut out = [0.0];
//! f.eval(&[0.5], &mut out);
//! assert_eq!(out[0], 0.5f64.sin() * 0.5f64.sin());
//! ```

mod canon;
pub mod diff;
pub mod element;
pub mod emit_c;
pub mod emit_hlo;
pub mod error;
pub mod ffi;
pub mod horner;
pub mod interp;
pub mod kernel;
pub mod meter;
pub mod nary;
pub mod op;
pub mod parse;
pub mod plan;
pub mod pool;
pub mod powers;
pub mod print;
pub mod runner;
pub mod serial;
pub mod syntax;
pub mod tape;
pub mod tierslot;
pub mod vecmath;
pub mod workers;

pub use element::{DType, Element};
pub use error::{Error, Result};
pub use interp::Interpreter;
pub use kernel::{time_eval, AnyKernel, BulkFn, Kernel, NativeKernel, ScalarFn};
pub use meter::WorkMeter;
pub use op::{BinaryOp, UnaryOp};
pub use pool::{ExprId, ExprPool, Node};
pub use runner::{run, ArrayView};
pub use tape::{lower, lower_fastmath, lower_with, Instr, Powers, Tape, ValueId};
pub use tierslot::TierSlot;
