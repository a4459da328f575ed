//! The one error type of the core. Each variant maps to one Python exception class.

use std::fmt;

/// What went wrong, worded for the person who has to fix it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// Expressions of two different pools were combined.
    PoolMismatch,
    /// `vars` holds something that is not a symbol, or a symbol twice.
    InvalidVars(String),
    /// An output uses a symbol missing from `vars`.
    UnboundSymbol(String),
    /// A call got the wrong number of arguments or outputs.
    Arity(String),
    /// Array shapes do not broadcast, or an output has the wrong shape.
    Shape(String),
    /// An expression cannot be built (bad constant, unknown function, ...).
    Expression(String),
    /// Expression text does not parse; the message shows where.
    Parse(String),
    /// A serialised payload is truncated, damaged, hostile or of a newer format.
    Format(String),
    /// A long call stopped because the caller asked it to (Ctrl-C).
    Interrupted,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::PoolMismatch => f.write_str(
                "expressions from two different ExprPools cannot be combined; \
                 build all symbols of one computation from the same pool",
            ),
            Error::Interrupted => f.write_str("interrupted"),
            Error::InvalidVars(m)
            | Error::UnboundSymbol(m)
            | Error::Arity(m)
            | Error::Shape(m)
            | Error::Expression(m)
            | Error::Parse(m)
            | Error::Format(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;
