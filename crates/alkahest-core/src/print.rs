//! Readable infix printing, in Python syntax where Python has one.
//!
//! The walk is iterative (a 100,000-deep expression prints without recursion) and
//! streams into one buffer that stops at a length limit, since a DAG with sharing can
//! expand to a tree exponentially larger than itself.

use crate::op::{BinaryOp, UnaryOp};
use crate::pool::{ExprId, Node, PoolView};

// Precedence levels, loosest first, following Python's grammar.
const CMP: u8 = 1;
const OR: u8 = 2;
const AND: u8 = 3;
const ADD: u8 = 4;
const MUL: u8 = 5;
const UNARY: u8 = 6;
const POW: u8 = 7;
const ATOM: u8 = 8;

enum Task {
    Text(&'static str),
    Owned(String),
    /// Print this node, in parentheses if it binds looser than the given level.
    Visit(ExprId, u8),
}

/// Formats a constant as Python would read it back (`3`, `2.5`, `1e-300`, `inf`, `nan`).
pub fn format_const(v: f64) -> String {
    if v.is_nan() {
        "nan".into()
    } else if v.is_infinite() {
        if v > 0.0 { "inf" } else { "-inf" }.into()
    } else if v == v.trunc() && v.abs() < 1e16 && !(v == 0.0 && v.is_sign_negative()) {
        format!("{}", v as i64)
    } else {
        format!("{v:?}")
    }
}

fn precedence(node: &Node) -> u8 {
    match node {
        Node::Symbol(_) => ATOM,
        Node::Const(_) => match node.as_const() {
            Some(v) if v.is_sign_negative() && !v.is_nan() => UNARY,
            _ => ATOM,
        },
        Node::Unary(UnaryOp::Neg | UnaryOp::Not, _) => UNARY,
        Node::Unary(..) | Node::Select(_) => ATOM,
        Node::Binary(op, _) => infix(*op).map_or(ATOM, |(_, p, _, _)| p),
    }
}

/// For infix operators: (symbol, own level, level needed on the left, on the right).
fn infix(op: BinaryOp) -> Option<(&'static str, u8, u8, u8)> {
    use BinaryOp::*;
    Some(match op {
        Add => (" + ", ADD, ADD, ADD + 1),
        Sub => (" - ", ADD, ADD, ADD + 1),
        Mul => ("*", MUL, MUL, MUL + 1),
        Div => ("/", MUL, MUL, MUL + 1),
        Pow => ("**", POW, POW + 1, UNARY + 1),
        Lt => (" < ", CMP, CMP + 1, CMP + 1),
        Le => (" <= ", CMP, CMP + 1, CMP + 1),
        Gt => (" > ", CMP, CMP + 1, CMP + 1),
        Ge => (" >= ", CMP, CMP + 1, CMP + 1),
        And => (" & ", AND, AND, AND + 1),
        Or => (" | ", OR, OR, OR + 1),
        Atan2 | Min | Max | Copysign | Eq | Ne => return None,
    })
}

/// Infix text of `root`, cut at about `limit` characters (then ending in `...`).
pub fn to_infix(view: &PoolView<'_>, root: ExprId, limit: usize) -> String {
    let mut out = String::new();
    let mut stack = vec![Task::Visit(root, 0)];
    while let Some(task) = stack.pop() {
        if out.len() > limit {
            out.push_str("...");
            break;
        }
        let id = match task {
            Task::Text(s) => {
                out.push_str(s);
                continue;
            }
            Task::Owned(s) => {
                out.push_str(&s);
                continue;
            }
            Task::Visit(id, _) => id,
        };
        let Task::Visit(_, need) = task else { unreachable!() };
        let node = view.node(id);
        let parens = precedence(node) < need;
        // Tasks are pushed in reverse: the last pushed prints first.
        if parens {
            stack.push(Task::Text(")"));
        }
        match node {
            Node::Symbol(name) => stack.push(Task::Owned(name.to_string())),
            Node::Const(_) => stack.push(Task::Owned(format_const(node.as_const().unwrap_or(f64::NAN)))),
            Node::Unary(op, a) => match op {
                UnaryOp::Neg | UnaryOp::Not => {
                    stack.push(Task::Visit(*a, UNARY));
                    stack.push(Task::Text(if *op == UnaryOp::Neg { "-" } else { "~" }));
                }
                _ => {
                    stack.push(Task::Text(")"));
                    stack.push(Task::Visit(*a, 0));
                    stack.push(Task::Owned(format!("{}(", op.name())));
                }
            },
            Node::Binary(op, [a, b]) => match infix(*op) {
                // Constants sort first; `x + 2` reads better than `2 + x` (and `x + -2` is
                // made `x - 2` when it is built).
                Some(_) if *op == BinaryOp::Add && view.node(*a).as_const().is_some() => {
                    stack.push(Task::Visit(*a, ADD + 1));
                    stack.push(Task::Text(" + "));
                    stack.push(Task::Visit(*b, ADD));
                }
                Some((sym, _, left, right)) => {
                    stack.push(Task::Visit(*b, right));
                    stack.push(Task::Text(sym));
                    stack.push(Task::Visit(*a, left));
                }
                None => {
                    stack.push(Task::Text(")"));
                    stack.push(Task::Visit(*b, 0));
                    stack.push(Task::Text(", "));
                    stack.push(Task::Visit(*a, 0));
                    stack.push(Task::Owned(format!("{}(", op.name())));
                }
            },
            Node::Select([c, a, b]) => {
                stack.push(Task::Text(")"));
                stack.push(Task::Visit(*b, 0));
                stack.push(Task::Text(", "));
                stack.push(Task::Visit(*a, 0));
                stack.push(Task::Text(", "));
                stack.push(Task::Visit(*c, 0));
                stack.push(Task::Text("where("));
            }
        }
        if parens {
            stack.push(Task::Text("("));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::ExprPool;

    #[test]
    fn prints_minimal_parentheses() {
        let p = ExprPool::new();
        let x = p.symbol("x").unwrap();
        let y = p.symbol("y").unwrap();
        let two = p.constant(2.0).unwrap();
        let s = p.binary(BinaryOp::Add, x, y).unwrap();
        let m = p.binary(BinaryOp::Mul, s, two).unwrap();
        let pw = p.binary(BinaryOp::Pow, x, two).unwrap();
        let n = p.unary(UnaryOp::Neg, pw).unwrap();
        let e = p.binary(BinaryOp::Sub, m, n).unwrap();
        let show = |id| to_infix(&p.read(), id, 1000);
        assert_eq!(show(m), "2*(x + y)");
        assert_eq!(show(n), "-x**2");
        assert_eq!(show(e), "2*(x + y) + x**2");
        let lt = p.binary(BinaryOp::Lt, x, y).unwrap();
        let gt = p.binary(BinaryOp::Gt, x, two).unwrap();
        let both = p.binary(BinaryOp::And, lt, gt).unwrap();
        assert_eq!(show(both), "(x < y) & (x > 2)");
        let minus_two = p.constant(-2.0).unwrap();
        let xm2 = p.binary(BinaryOp::Add, x, minus_two).unwrap();
        assert_eq!(show(xm2), "x - 2");
        let pw2 = p.binary(BinaryOp::Pow, minus_two, x).unwrap();
        assert_eq!(show(pw2), "(-2)**x");
        let sn = p.unary(UnaryOp::Sin, xm2).unwrap();
        let w = p.select(lt, sn, two).unwrap();
        assert_eq!(show(w), "where(x < y, sin(x - 2), 2)");
    }

    #[test]
    fn deep_expressions_print_without_recursion_and_are_cut() {
        let p = ExprPool::new();
        let mut e = p.symbol("x").unwrap();
        let one = p.constant(1.0).unwrap();
        for _ in 0..100_000 {
            e = p.binary(BinaryOp::Add, e, one).unwrap();
        }
        let s = to_infix(&p.read(), e, 1000);
        assert!(s.starts_with("x + 1 + 1"));
        assert!(s.ends_with("...") && s.len() < 1100);
    }

    #[test]
    fn constants_print_as_python_literals() {
        assert_eq!(format_const(3.0), "3");
        assert_eq!(format_const(2.5), "2.5");
        assert_eq!(format_const(-0.0), "-0.0");
        assert_eq!(format_const(1e300), "1e300");
        assert_eq!(format_const(f64::NEG_INFINITY), "-inf");
    }
}
