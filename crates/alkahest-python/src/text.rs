//! Expression text: `ExprPool.parse` lives with the pool (`expr.rs`); this module gives
//! Python the syntax tree itself, for front ends with their own meaning of names and
//! types (`alkahest.evaluate`, numexpr's conventions).

use alkahest_core::syntax::{parse_syntax, SyntaxKind};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};

use crate::errors::IntoPy;

/// The syntax tree of `text` (Python expression syntax) as a list of nodes, children
/// before parents, the root last. Each node is `(kind, value, children, start, end)`:
/// kind "int"/"float" with the literal's text, "name" with the name, "call" with the
/// function name, or an operator ("neg", "pos", "invert", "not", "add", "sub", "mul",
/// "div", "floordiv", "mod", "pow", "lt", "le", "gt", "ge", "eq", "ne", "and", "or",
/// "bitand", "bitor") with None; children are indices into the list; start and end
/// are the node's character offsets in `text`. Raises `ParseError`.
#[pyfunction]
pub fn parse_syntax_tree<'py>(py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyList>> {
    let syntax = py.detach(|| parse_syntax(text)).py_err(py)?;
    // Byte offsets become character offsets, as Python indexes strings.
    let char_at = |byte: usize| text[..byte].chars().count();
    let ascii = text.is_ascii();
    let offset = |byte: usize| if ascii { byte } else { char_at(byte) };
    let mut items = Vec::with_capacity(syntax.nodes.len());
    for node in &syntax.nodes {
        let (kind, value, children): (&str, Option<&str>, Vec<u32>) = match &node.kind {
            SyntaxKind::Number { text, integer } => {
                (if *integer { "int" } else { "float" }, Some(text), vec![])
            }
            SyntaxKind::Name(name) => ("name", Some(name), vec![]),
            SyntaxKind::Prefix(op, a) => (op.name(), None, vec![*a]),
            SyntaxKind::Infix(op, a, b) => (op.name(), None, vec![*a, *b]),
            SyntaxKind::Call(name, args) => ("call", Some(name), args.clone()),
        };
        let children = PyTuple::new(py, children)?;
        items.push((kind, value, children, offset(node.start), offset(node.end)).into_pyobject(py)?);
    }
    PyList::new(py, items)
}
