//! `ExprPool` and `Expr`: Python operators and functions build nodes through the core's
//! canonicalising constructors.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use alkahest_core::pool::Node;
use alkahest_core::print::to_infix;
use alkahest_core::{BinaryOp, ExprId, ExprPool, UnaryOp};
use pyo3::basic::CompareOp;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyInt, PyList, PyTuple};

use crate::errors::{error, to_py, type_name, IntoPy};
use crate::persist;

const STR_LIMIT: usize = 1_000_000;
const REPR_LIMIT: usize = 2_000;

/// A store of expressions. Building the same structure twice gives the same node.
///
/// >>> pool = ExprPool()
/// >>> x, y = pool.symbol("x"), pool.symbol("y")
/// >>> (x + y).id == (y + x).id
/// True
#[pyclass(name = "ExprPool", module = "alkahest._native", frozen)]
pub struct PyExprPool {
    pub inner: Arc<ExprPool>,
}

/// A node of an `ExprPool`: build with operators and the functions of `alkahest`.
#[pyclass(name = "Expr", module = "alkahest._native", frozen)]
pub struct PyExpr {
    pub pool: Arc<ExprPool>,
    pub id: ExprId,
}

impl PyExpr {
    fn wrap(&self, id: ExprId) -> PyExpr {
        PyExpr { pool: self.pool.clone(), id }
    }
}

/// The node for a Python operand in `pool`: an `Expr` of the same pool or a number.
/// `Ok(None)` for other types (operators then return `NotImplemented`).
pub fn operand(py: Python<'_>, pool: &Arc<ExprPool>, obj: &Bound<'_, PyAny>) -> PyResult<Option<ExprId>> {
    if let Ok(e) = obj.cast::<PyExpr>() {
        let e = e.get();
        if !Arc::ptr_eq(&e.pool, pool) {
            return Err(to_py(py, alkahest_core::Error::PoolMismatch));
        }
        return Ok(Some(e.id));
    }
    if obj.is_instance_of::<PyInt>() {
        return Ok(Some(integer_constant(py, pool, obj)?));
    }
    match obj.extract::<f64>() {
        Ok(v) => Ok(Some(pool.constant(v).py_err(py)?)),
        Err(_) => Ok(None),
    }
}

fn integer_constant(py: Python<'_>, pool: &ExprPool, n: &Bound<'_, PyAny>) -> PyResult<ExprId> {
    let exact = match n.extract::<f64>() {
        Ok(v) if n.eq(v)? => Some(v),
        _ => None,
    };
    match exact {
        Some(v) => pool.constant(v).py_err(py),
        None => Err(error(
            py,
            "ExpressionError",
            format!(
                "the integer {n} is not exactly representable as a float64 (|n| > 2**53 with low bits set); \
                 pass float(n) if rounding is acceptable"
            ),
        )),
    }
}

/// Three-argument `pow(x, n, m)` has no meaning for real expressions: refuse it rather
/// than silently dropping `m`.
fn refuse_modulo(py: Python<'_>, modulo: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
    match modulo {
        Some(m) if !m.is_none() => Err(error(
            py,
            "ExpressionError",
            "pow(x, n, m) with a modulus is not supported for expressions; write pow(x, n) and, \
             if you meant a remainder, x - m * floor(x / m)",
        )),
        _ => Ok(()),
    }
}

fn binary_op(
    slf: &PyExpr,
    py: Python<'_>,
    op: BinaryOp,
    other: &Bound<'_, PyAny>,
    reflected: bool,
) -> PyResult<Py<PyAny>> {
    let Some(o) = operand(py, &slf.pool, other)? else {
        return Ok(py.NotImplemented().into_any());
    };
    let (a, b) = if reflected { (o, slf.id) } else { (slf.id, o) };
    let id = slf.pool.binary(op, a, b).py_err(py)?;
    Ok(slf.wrap(id).into_pyobject(py)?.into_any().unbind())
}

#[pymethods]
impl PyExprPool {
    #[new]
    fn new() -> Self {
        PyExprPool { inner: Arc::new(ExprPool::new()) }
    }

    /// The symbol called `name` (the same node every time).
    fn symbol(&self, py: Python<'_>, name: &str) -> PyResult<PyExpr> {
        let id = self.inner.symbol(name).py_err(py)?;
        Ok(PyExpr { pool: self.inner.clone(), id })
    }

    /// Several symbols from names separated by spaces or commas: `pool.symbols("x y z")`.
    fn symbols(&self, py: Python<'_>, names: &str) -> PyResult<Vec<PyExpr>> {
        names
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .map(|n| self.symbol(py, n))
            .collect()
    }

    /// An integer constant; errors if it is not exactly representable as a float64.
    fn integer(&self, py: Python<'_>, n: &Bound<'_, PyAny>) -> PyResult<PyExpr> {
        if !n.is_instance_of::<PyInt>() {
            return Err(error(
                py,
                "ArgumentTypeError",
                format!("integer() takes a Python int, got {}", type_name(n)),
            ));
        }
        let id = integer_constant(py, &self.inner, n)?;
        Ok(PyExpr { pool: self.inner.clone(), id })
    }

    /// A floating-point constant.
    fn constant(&self, py: Python<'_>, value: f64) -> PyResult<PyExpr> {
        let id = self.inner.constant(value).py_err(py)?;
        Ok(PyExpr { pool: self.inner.clone(), id })
    }

    /// The expression `text` (Python syntax) denotes, built in this pool; names become
    /// symbols on first use (`pi`, `inf`, `nan`, `True`, `False` are constants). Never
    /// evaluates code; a syntax error raises `ParseError` showing where.
    fn parse(&self, py: Python<'_>, text: &str) -> PyResult<PyExpr> {
        let pool = self.inner.clone();
        let id = py.detach(|| alkahest_core::parse::parse(&pool, text)).py_err(py)?;
        Ok(PyExpr { pool: self.inner.clone(), id })
    }

    /// A number unique to this pool in the process.
    #[getter]
    fn uid(&self) -> u64 {
        self.inner.uid()
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other.cast::<PyExprPool>().is_ok_and(|o| Arc::ptr_eq(&o.get().inner, &self.inner))
    }

    fn __hash__(&self) -> u64 {
        self.inner.uid()
    }

    fn __repr__(&self) -> String {
        format!("ExprPool(uid={}, nodes={})", self.inner.uid(), self.inner.len())
    }

    /// The expressions (one, or a list of this pool's) as bytes: a compact, versioned,
    /// checksummed format storing each shared node once. `loads` reads it back.
    ///
    /// >>> pool = ExprPool(); x, y = pool.symbols("x y")
    /// >>> data = pool.dumps([x * y, x + y])
    /// >>> other = ExprPool()
    /// >>> other.loads(data)
    /// [x*y, x + y]
    fn dumps(&self, py: Python<'_>, exprs: &Bound<'_, PyAny>) -> PyResult<Py<PyBytes>> {
        let roots = persist::roots_of(py, &self.inner, exprs)?;
        Ok(persist::dump(py, &self.inner, &roots))
    }

    /// The expressions `data` (from `dumps`) holds, built in this pool: nodes it already
    /// has are reused. Truncated, damaged or foreign data raises `SerializationError`.
    fn loads(&self, py: Python<'_>, data: &[u8]) -> PyResult<Vec<PyExpr>> {
        persist::load(py, &self.inner, data)
    }

    fn __reduce__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let all: Vec<ExprId> = (0..self.inner.len() as u32).map(ExprId).collect();
        persist::reduce(py, &self.inner, &all, "_unpickle_pool")
    }
}

#[pymethods]
impl PyExpr {
    /// The node's index in its pool; equal ids mean equal expressions.
    #[getter]
    fn id(&self) -> u32 {
        self.id.0
    }

    #[getter]
    fn pool(&self) -> PyExprPool {
        PyExprPool { inner: self.pool.clone() }
    }

    /// "symbol", "const", "where", or the operation's name ("add", "sin", "lt", ...).
    #[getter]
    fn op(&self) -> &'static str {
        node_op(&self.pool.node(self.id))
    }

    /// The operands, in evaluation order.
    #[getter]
    fn args<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let node = self.pool.node(self.id);
        PyTuple::new(py, node.children().iter().map(|&c| self.wrap(c)))
    }

    /// The name of a symbol, else None.
    #[getter]
    fn name(&self) -> Option<String> {
        match self.pool.node(self.id) {
            Node::Symbol(n) => Some(n.to_string()),
            _ => None,
        }
    }

    /// The value of a constant, else None.
    #[getter]
    fn value(&self) -> Option<f64> {
        self.pool.node(self.id).as_const()
    }

    /// The symbols this expression depends on, in order of first appearance.
    fn free_symbols(&self) -> Vec<PyExpr> {
        self.pool.free_symbols(&[self.id]).into_iter().map(|id| self.wrap(id)).collect()
    }

    /// The `n`-th derivative with respect to the symbol `var` (see `alkahest.diff`).
    #[pyo3(signature = (var, n=1))]
    fn diff(&self, py: Python<'_>, var: &PyExpr, n: usize) -> PyResult<PyExpr> {
        if !Arc::ptr_eq(&self.pool, &var.pool) {
            return Err(to_py(py, alkahest_core::Error::PoolMismatch));
        }
        let (pool, v) = (self.pool.clone(), var.id);
        let mut id = Some(self.id);
        for _ in 0..n {
            let Some(e) = id else { break };
            let p = pool.clone();
            id = py.detach(move || alkahest_core::diff::derivative(&p, &[e], v)).py_err(py)?[0];
        }
        let id = match id {
            Some(id) => id,
            None => self.pool.constant(0.0).py_err(py)?,
        };
        Ok(self.wrap(id))
    }

    fn __str__(&self) -> String {
        to_infix(&self.pool.read(), self.id, STR_LIMIT)
    }

    fn __repr__(&self) -> String {
        to_infix(&self.pool.read(), self.id, REPR_LIMIT)
    }

    /// Pickles with its sub-DAG; unpickled in another process, expressions of one pool
    /// land in one pool there.
    fn __reduce__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        persist::reduce(py, &self.pool, &[self.id], "_unpickle_expr")
    }

    fn __hash__(&self) -> u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (self.pool.uid(), self.id.0).hash(&mut h);
        h.finish()
    }

    /// `==` and `!=` compare structure (usable as dict keys); `<`, `<=`, `>`, `>=` build
    /// conditions. Use `eq(a, b)` / `ne(a, b)` for equality conditions.
    fn __richcmp__(&self, py: Python<'_>, other: &Bound<'_, PyAny>, op: CompareOp) -> PyResult<Py<PyAny>> {
        let same = || {
            other
                .cast::<PyExpr>()
                .is_ok_and(|o| Arc::ptr_eq(&o.get().pool, &self.pool) && o.get().id == self.id)
        };
        let bop = match op {
            CompareOp::Eq => return Ok(same().into_pyobject(py)?.to_owned().into_any().unbind()),
            CompareOp::Ne => return Ok((!same()).into_pyobject(py)?.to_owned().into_any().unbind()),
            CompareOp::Lt => BinaryOp::Lt,
            CompareOp::Le => BinaryOp::Le,
            CompareOp::Gt => BinaryOp::Gt,
            CompareOp::Ge => BinaryOp::Ge,
        };
        binary_op(self, py, bop, other, false)
    }

    fn __bool__(&self, py: Python<'_>) -> PyResult<bool> {
        Err(error(
            py,
            "ArgumentTypeError",
            "an alkahest expression has no truth value; use where(cond, a, b) for a \
             conditional, or `a == b` / `.id` to compare structure",
        ))
    }

    fn __float__(&self, py: Python<'_>) -> PyResult<f64> {
        self.value().ok_or_else(|| {
            error(
                py,
                "ExpressionError",
                format!("{} is not a constant; evaluate it with eval_expr", self.__repr__()),
            )
        })
    }

    fn __add__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        binary_op(self, py, BinaryOp::Add, o, false)
    }
    fn __radd__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        binary_op(self, py, BinaryOp::Add, o, true)
    }
    fn __sub__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        binary_op(self, py, BinaryOp::Sub, o, false)
    }
    fn __rsub__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        binary_op(self, py, BinaryOp::Sub, o, true)
    }
    fn __mul__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        binary_op(self, py, BinaryOp::Mul, o, false)
    }
    fn __rmul__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        binary_op(self, py, BinaryOp::Mul, o, true)
    }
    fn __truediv__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        binary_op(self, py, BinaryOp::Div, o, false)
    }
    fn __rtruediv__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        binary_op(self, py, BinaryOp::Div, o, true)
    }
    fn __pow__(
        &self,
        py: Python<'_>,
        o: &Bound<'_, PyAny>,
        modulo: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        refuse_modulo(py, modulo)?;
        binary_op(self, py, BinaryOp::Pow, o, false)
    }
    fn __rpow__(
        &self,
        py: Python<'_>,
        o: &Bound<'_, PyAny>,
        modulo: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        refuse_modulo(py, modulo)?;
        binary_op(self, py, BinaryOp::Pow, o, true)
    }
    fn __and__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        binary_op(self, py, BinaryOp::And, o, false)
    }
    fn __rand__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        binary_op(self, py, BinaryOp::And, o, true)
    }
    fn __or__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        binary_op(self, py, BinaryOp::Or, o, false)
    }
    fn __ror__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        binary_op(self, py, BinaryOp::Or, o, true)
    }
    fn __neg__(&self, py: Python<'_>) -> PyResult<PyExpr> {
        Ok(self.wrap(self.pool.unary(UnaryOp::Neg, self.id).py_err(py)?))
    }
    fn __pos__(&self) -> PyExpr {
        self.wrap(self.id)
    }
    fn __abs__(&self, py: Python<'_>) -> PyResult<PyExpr> {
        Ok(self.wrap(self.pool.unary(UnaryOp::Abs, self.id).py_err(py)?))
    }
    /// `~cond`: logical not.
    fn __invert__(&self, py: Python<'_>) -> PyResult<PyExpr> {
        Ok(self.wrap(self.pool.unary(UnaryOp::Not, self.id).py_err(py)?))
    }
}

/// `expr` in Horner form in the symbol `var` (see `alkahest_core::horner`).
#[pyfunction]
pub fn horner(py: Python<'_>, expr: &PyExpr, var: &PyExpr) -> PyResult<PyExpr> {
    if !Arc::ptr_eq(&expr.pool, &var.pool) {
        return Err(to_py(py, alkahest_core::Error::PoolMismatch));
    }
    let id = alkahest_core::horner::horner(&expr.pool, expr.id, var.id).py_err(py)?;
    Ok(expr.wrap(id))
}

/// `apply(name, *args)`: the node for function `name` ("sin", "atan2", "where", NumPy's
/// spellings such as "arctan2", and the functions the parser builds, such as "sign")
/// applied to expressions or numbers (at least one expression).
#[pyfunction]
#[pyo3(signature = (name, *args))]
pub fn apply(py: Python<'_>, name: &str, args: &Bound<'_, PyTuple>) -> PyResult<PyExpr> {
    let pool = args
        .iter()
        .find_map(|a| a.cast::<PyExpr>().ok().map(|e| e.get().pool.clone()))
        .ok_or_else(|| {
            error(
                py,
                "ArgumentTypeError",
                format!(
                    "{name}() needs at least one alkahest expression argument; for plain numbers use the math module"
                ),
            )
        })?;
    let mut ids = Vec::with_capacity(args.len());
    for (i, a) in args.iter().enumerate() {
        ids.push(operand(py, &pool, &a)?.ok_or_else(|| {
            error(
                py,
                "ArgumentTypeError",
                format!("argument {i} of {name}() must be an expression or a number, not {}", type_name(&a)),
            )
        })?);
    }
    let id = alkahest_core::parse::apply(&pool, name, &ids).py_err(py)?;
    Ok(PyExpr { pool, id })
}
/// The DAG under `exprs` (expressions of one pool) as plain data: `(nodes, roots)`,
/// nodes children first, each `(op, payload, children)` with op as in `Expr.op`,
/// payload the symbol's name or the constant's value (else None) and children indices
/// into `nodes`; `roots[i]` is the index of `exprs[i]`. Each shared node appears once.
#[pyfunction]
pub fn dag<'py>(
    py: Python<'py>,
    exprs: Vec<PyRef<'py, PyExpr>>,
) -> PyResult<(Bound<'py, PyList>, Vec<usize>)> {
    let Some(first) = exprs.first() else {
        return Ok((PyList::empty(py), vec![]));
    };
    let pool = first.pool.clone();
    if exprs.iter().any(|e| !Arc::ptr_eq(&e.pool, &pool)) {
        return Err(to_py(py, alkahest_core::Error::PoolMismatch));
    }
    let roots: Vec<ExprId> = exprs.iter().map(|e| e.id).collect();
    let view = pool.read();
    let (order, index) = alkahest_core::pool::topological_order(&view, &roots);
    let mut items = Vec::with_capacity(order.len());
    for &id in &order {
        let node = view.node(id);
        let payload: Option<Bound<'py, PyAny>> = match node {
            Node::Symbol(name) => Some(name.as_ref().into_pyobject(py)?.into_any()),
            Node::Const(_) => Some(node.as_const().unwrap_or(f64::NAN).into_pyobject(py)?.into_any()),
            _ => None,
        };
        let children: Vec<usize> = node.children().iter().map(|c| index[c]).collect();
        items.push((node_op(node), payload, PyTuple::new(py, children)?).into_pyobject(py)?);
    }
    Ok((PyList::new(py, items)?, roots.iter().map(|r| index[r]).collect()))
}

fn node_op(node: &Node) -> &'static str {
    match node {
        Node::Symbol(_) => "symbol",
        Node::Const(_) => "const",
        Node::Unary(op, _) => op.name(),
        Node::Binary(op, _) => op.name(),
        Node::Select(_) => "where",
    }
}
