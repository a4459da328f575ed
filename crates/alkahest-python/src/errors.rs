//! Core errors become the exception classes of `alkahest.errors` (defined in Python, so
//! their hierarchy and docstrings live in one readable place).

use alkahest_core::Error;
use pyo3::prelude::*;
use pyo3::types::PyType;

/// An instance of `alkahest.errors.<class_name>` carrying `msg`.
pub fn error(py: Python<'_>, class_name: &str, msg: impl Into<String>) -> PyErr {
    let msg = msg.into();
    match py.import("alkahest.errors").and_then(|m| m.getattr(class_name)) {
        Ok(cls) => match cls.cast_into::<PyType>() {
            Ok(ty) => PyErr::from_type(ty, msg),
            Err(_) => pyo3::exceptions::PyRuntimeError::new_err(msg),
        },
        Err(e) => e,
    }
}

/// The Python type name of `obj`, for error messages.
pub fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type().name().map(|n| n.to_string()).unwrap_or_default()
}

/// Maps a core error to its Python exception.
pub fn to_py(py: Python<'_>, e: Error) -> PyErr {
    let class_name = match &e {
        Error::Interrupted => return pyo3::exceptions::PyKeyboardInterrupt::new_err("interrupted"),
        Error::PoolMismatch => "PoolMismatchError",
        Error::InvalidVars(_) => "InvalidVarsError",
        Error::UnboundSymbol(_) => "UnboundSymbolError",
        Error::Arity(_) => "ArityError",
        Error::Shape(_) => "ShapeError",
        Error::Expression(_) => "ExpressionError",
        Error::Parse(_) => "ParseError",
        Error::Format(_) => "SerializationError",
    };
    error(py, class_name, e.to_string())
}

/// `Result` conversion with the GIL token at hand.
pub trait IntoPy<T> {
    fn py_err(self, py: Python<'_>) -> PyResult<T>;
}

impl<T> IntoPy<T> for alkahest_core::Result<T> {
    fn py_err(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|e| to_py(py, e))
    }
}
