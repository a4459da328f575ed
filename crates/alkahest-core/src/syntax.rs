//! Expression text in Python syntax → a syntax tree, without evaluating anything.
//!
//! A hand-written tokenizer and an operator-precedence (shunting-yard) parser with
//! explicit stacks: nesting costs heap, never call-stack depth, so hostile input cannot
//! overflow the stack. The tree is an arena in which every node comes after its
//! children, so consumers (`parse::build`, Python's `evaluate`) walk it with one loop.
//!
//! Precedence follows Python's grammar, loosest first: `or`; `and`; `not`; comparisons
//! (chained: `a < b < c` is `a < b and b < c`); `|`; `&`; `+ -`; `* / // %`; unary
//! `+ - ~`; `**` (right-associative, and binding tighter than a unary operator on its
//! left: `-x**2` is `-(x**2)`, `2**-x` is `2**(-x)`).

use crate::error::{Error, Result};

/// Inputs longer than this are refused before anything is allocated for them.
pub const MAX_INPUT_BYTES: usize = 100_000_000;
/// Parentheses and calls nested deeper than this are refused.
pub const MAX_NESTING: usize = 100_000;

/// Index of a node in [`Syntax::nodes`].
pub type NodeId = u32;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prefix {
    Neg,
    Pos,
    /// `~`
    Invert,
    /// `not`
    Not,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Infix {
    Or,
    And,
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
    BitOr,
    BitAnd,
    Add,
    Sub,
    Mul,
    Div,
    FloorDiv,
    Mod,
    Pow,
}

impl Prefix {
    pub fn name(self) -> &'static str {
        match self {
            Prefix::Neg => "neg",
            Prefix::Pos => "pos",
            Prefix::Invert => "invert",
            Prefix::Not => "not",
        }
    }
}

impl Infix {
    pub fn name(self) -> &'static str {
        use Infix::*;
        match self {
            Or => "or",
            And => "and",
            Lt => "lt",
            Le => "le",
            Gt => "gt",
            Ge => "ge",
            Eq => "eq",
            Ne => "ne",
            BitOr => "bitor",
            BitAnd => "bitand",
            Add => "add",
            Sub => "sub",
            Mul => "mul",
            Div => "div",
            FloorDiv => "floordiv",
            Mod => "mod",
            Pow => "pow",
        }
    }

    fn precedence(self) -> u8 {
        use Infix::*;
        match self {
            Or => 1,
            And => 2,
            Lt | Le | Gt | Ge | Eq | Ne => 4,
            BitOr => 5,
            BitAnd => 6,
            Add | Sub => 7,
            Mul | Div | FloorDiv | Mod => 8,
            Pow => 10,
        }
    }

    fn is_comparison(self) -> bool {
        use Infix::*;
        matches!(self, Lt | Le | Gt | Ge | Eq | Ne)
    }
}

const NOT_PRECEDENCE: u8 = 3;
const UNARY_PRECEDENCE: u8 = 9;

#[derive(Clone, Debug, PartialEq)]
pub enum SyntaxKind {
    /// A numeric literal as written; `integer` when it has no `.`, exponent or `j`.
    Number {
        text: String,
        integer: bool,
    },
    Name(String),
    Prefix(Prefix, NodeId),
    Infix(Infix, NodeId, NodeId),
    Call(String, Vec<NodeId>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct SyntaxNode {
    pub kind: SyntaxKind,
    /// Byte range of the node's text in the input.
    pub start: usize,
    pub end: usize,
}

/// A parsed expression: nodes in an order where children come first; `root` is last.
#[derive(Clone, Debug, PartialEq)]
pub struct Syntax {
    pub nodes: Vec<SyntaxNode>,
    pub root: NodeId,
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Number { text: String, integer: bool },
    Name(String),
    Op(&'static str),
    Open,
    Close,
    Comma,
    End,
}

/// An error at byte `pos` of `text`: the message, then the input (a window around the
/// position for long inputs) with a caret under the place.
pub fn error_at(text: &str, pos: usize, message: &str) -> Error {
    const WINDOW: usize = 60;
    let pos = pos.min(text.len());
    let mut start = pos.saturating_sub(WINDOW);
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    let mut end = (pos + WINDOW).min(text.len());
    while !text.is_char_boundary(end) {
        end += 1;
    }
    let (lead, tail) = (if start > 0 { "..." } else { "" }, if end < text.len() { "..." } else { "" });
    let shown: String =
        text[start..end].chars().map(|c| if c == '\n' || c == '\t' || c == '\r' { ' ' } else { c }).collect();
    let column = lead.chars().count() + text[start..pos].chars().count();
    Error::Parse(format!(
        "{message} (at position {pos})\n    {lead}{shown}{tail}\n    {caret:>width$}",
        caret = "^",
        width = column + 1
    ))
}

struct Lexer<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    /// The next token and its byte range.
    fn next(&mut self) -> Result<(Token, usize, usize)> {
        let bytes = self.text.as_bytes();
        while self.pos < bytes.len() && (bytes[self.pos] as char).is_ascii_whitespace() {
            self.pos += 1;
        }
        let start = self.pos;
        let Some(&b) = bytes.get(start) else {
            return Ok((Token::End, start, start));
        };
        let c = b as char;
        let token =
            if c.is_ascii_digit() || (c == '.' && bytes.get(start + 1).is_some_and(u8::is_ascii_digit)) {
                self.number()?
            } else if c == '_' || c.is_alphabetic() || !c.is_ascii() {
                let rest = &self.text[start..];
                let len = rest
                    .char_indices()
                    .find(|&(_, ch)| !(ch == '_' || ch.is_alphanumeric()))
                    .map_or(rest.len(), |(i, _)| i);
                if len == 0 {
                    let ch = rest.chars().next().unwrap_or('?');
                    return Err(error_at(self.text, start, &format!("unexpected character {ch:?}")));
                }
                self.pos += len;
                Token::Name(rest[..len].to_string())
            } else {
                self.punctuation(start)?
            };
        Ok((token, start, self.pos))
    }

    fn number(&mut self) -> Result<Token> {
        let bytes = self.text.as_bytes();
        let start = self.pos;
        let digits = |pos: &mut usize| {
            while *pos < bytes.len() && (bytes[*pos].is_ascii_digit() || bytes[*pos] == b'_') {
                *pos += 1;
            }
        };
        let mut p = start;
        let mut integer = true;
        digits(&mut p);
        if p < bytes.len() && bytes[p] == b'.' {
            integer = false;
            p += 1;
            digits(&mut p);
        }
        if p < bytes.len() && (bytes[p] == b'e' || bytes[p] == b'E') {
            let mut q = p + 1;
            if q < bytes.len() && (bytes[q] == b'+' || bytes[q] == b'-') {
                q += 1;
            }
            if q < bytes.len() && bytes[q].is_ascii_digit() {
                integer = false;
                p = q;
                digits(&mut p);
            } else {
                return Err(error_at(self.text, q, "expected the digits of an exponent"));
            }
        }
        if p < bytes.len() && (bytes[p] == b'j' || bytes[p] == b'J') {
            return Err(error_at(
                self.text,
                start,
                "complex literals are not supported: alkahest computes with real numbers",
            ));
        }
        if p < bytes.len() && (bytes[p] == b'_' || (bytes[p] as char).is_alphanumeric()) {
            return Err(error_at(self.text, p, "invalid number literal"));
        }
        let raw = &self.text[start..p];
        if raw.contains("__") || raw.ends_with('_') || raw.contains("_.") || raw.contains("._") {
            return Err(error_at(self.text, start, "invalid underscores in number literal"));
        }
        self.pos = p;
        Ok(Token::Number { text: raw.replace('_', ""), integer })
    }

    fn punctuation(&mut self, start: usize) -> Result<Token> {
        let rest = &self.text.as_bytes()[start..];
        let two = if rest.len() >= 2 { &rest[..2] } else { rest };
        let (tok, len) = match two {
            b"**" => (Token::Op("**"), 2),
            b"//" => (Token::Op("//"), 2),
            b"<=" => (Token::Op("<="), 2),
            b">=" => (Token::Op(">="), 2),
            b"==" => (Token::Op("=="), 2),
            b"!=" => (Token::Op("!="), 2),
            _ => match rest[0] {
                b'+' => (Token::Op("+"), 1),
                b'-' => (Token::Op("-"), 1),
                b'*' => (Token::Op("*"), 1),
                b'/' => (Token::Op("/"), 1),
                b'%' => (Token::Op("%"), 1),
                b'<' => (Token::Op("<"), 1),
                b'>' => (Token::Op(">"), 1),
                b'&' => (Token::Op("&"), 1),
                b'|' => (Token::Op("|"), 1),
                b'~' => (Token::Op("~"), 1),
                b'(' => (Token::Open, 1),
                b')' => (Token::Close, 1),
                b',' => (Token::Comma, 1),
                b'^' => return Err(error_at(self.text, start, "'^' is not supported; write powers as x**2")),
                b'=' => {
                    return Err(error_at(self.text, start, "'=' assigns in Python; compare with '=='"));
                }
                b'.' => {
                    return Err(error_at(
                        self.text,
                        start,
                        "attribute access is not supported; call functions by name, e.g. sin(x)",
                    ))
                }
                b'\'' | b'"' => {
                    return Err(error_at(
                        self.text,
                        start,
                        "strings are not supported: alkahest computes with numbers",
                    ))
                }
                b'[' | b']' | b'{' | b'}' => {
                    return Err(error_at(self.text, start, "indexing, lists and sets are not supported"))
                }
                _ => {
                    let ch = self.text[start..].chars().next().unwrap_or('?');
                    return Err(error_at(self.text, start, &format!("unexpected character {ch:?}")));
                }
            },
        };
        self.pos += len;
        Ok(tok)
    }
}

/// Entries of the operator stack.
enum Pending {
    Prefix(Prefix, usize),
    Infix(Infix),
    /// An opening parenthesis: of a call (name, its start) or of a group.
    Open {
        call: Option<(String, usize)>,
        args: usize,
        start: usize,
    },
}

struct Parser<'a> {
    text: &'a str,
    nodes: Vec<SyntaxNode>,
    operands: Vec<NodeId>,
    ops: Vec<Pending>,
    nesting: usize,
    /// Per node: written in parentheses (only grows as far as a group was closed).
    grouped: Vec<bool>,
}

impl Parser<'_> {
    fn push(&mut self, kind: SyntaxKind, start: usize, end: usize) -> NodeId {
        self.nodes.push(SyntaxNode { kind, start, end });
        (self.nodes.len() - 1) as NodeId
    }

    fn span(&self, id: NodeId) -> (usize, usize) {
        let n = &self.nodes[id as usize];
        (n.start, n.end)
    }

    /// Applies the operator on top of the stack to its operands.
    fn reduce(&mut self) {
        match self.ops.pop() {
            Some(Pending::Prefix(op, start)) => {
                let a = self.operands.pop().expect("a prefix operator has its operand");
                let end = self.span(a).1;
                let id = self.push(SyntaxKind::Prefix(op, a), start, end);
                self.operands.push(id);
            }
            Some(Pending::Infix(op)) => {
                let b = self.operands.pop().expect("an infix operator has two operands");
                let a = self.operands.pop().expect("an infix operator has two operands");
                let (start, end) = (self.span(a).0, self.span(b).1);
                // `a < b < c`: the left operand is itself a comparison whose right operand
                // is shared (Python's chaining); the tree is a DAG there.
                let id = match &self.nodes[a as usize].kind {
                    SyntaxKind::Infix(prev, _, middle)
                        if op.is_comparison() && prev.is_comparison() && self.chained(a) =>
                    {
                        let middle = *middle;
                        let right = self.push(SyntaxKind::Infix(op, middle, b), self.span(middle).0, end);
                        self.push(SyntaxKind::Infix(Infix::And, a, right), start, end)
                    }
                    _ => self.push(SyntaxKind::Infix(op, a, b), start, end),
                };
                self.operands.push(id);
            }
            _ => unreachable!("reduce is only called on operators"),
        }
    }

    /// Whether comparison node `a` was written without parentheses (so `a < b` chains).
    fn chained(&self, a: NodeId) -> bool {
        !self.grouped.get(a as usize).copied().unwrap_or(false)
    }

    /// Reduces while the stack top binds at least as tightly as an infix operator of
    /// precedence `prec` arriving (`right`: right-associative).
    fn reduce_for(&mut self, prec: u8, right: bool) {
        loop {
            let top = match self.ops.last() {
                Some(Pending::Infix(op)) => op.precedence(),
                Some(Pending::Prefix(Prefix::Not, _)) => NOT_PRECEDENCE,
                Some(Pending::Prefix(..)) => UNARY_PRECEDENCE,
                _ => return,
            };
            if top > prec || (top == prec && !right) {
                self.reduce();
            } else {
                return;
            }
        }
    }

    fn parse(mut self) -> Result<Syntax> {
        let mut lexer = Lexer { text: self.text, pos: 0 };
        // Whether the next token must start an operand (else: an operator, ')' or ',').
        let mut want_operand = true;
        loop {
            let (token, start, end) = lexer.next()?;
            if want_operand {
                match token {
                    Token::Number { text, integer } => {
                        let id = self.push(SyntaxKind::Number { text, integer }, start, end);
                        self.operands.push(id);
                        want_operand = false;
                    }
                    Token::Name(name) if name == "not" => self.ops.push(Pending::Prefix(Prefix::Not, start)),
                    Token::Name(name) if is_keyword(&name) => {
                        return Err(error_at(
                            self.text,
                            start,
                            &format!("expected an operand, found keyword '{name}'"),
                        ))
                    }
                    Token::Name(name) => {
                        let save = lexer.pos;
                        let (next, open_start, _) = lexer.next()?;
                        if next == Token::Open {
                            self.open(Some((name, start)), open_start)?;
                        } else {
                            lexer.pos = save;
                            let id = self.push(SyntaxKind::Name(name), start, end);
                            self.operands.push(id);
                            want_operand = false;
                        }
                    }
                    Token::Op("-") => self.ops.push(Pending::Prefix(Prefix::Neg, start)),
                    Token::Op("+") => self.ops.push(Pending::Prefix(Prefix::Pos, start)),
                    Token::Op("~") => self.ops.push(Pending::Prefix(Prefix::Invert, start)),
                    Token::Open => self.open(None, start)?,
                    Token::Close
                        if matches!(self.ops.last(), Some(Pending::Open { call: Some(_), args: 0, .. })) =>
                    {
                        self.close(start, end)?;
                        want_operand = false;
                    }
                    other => return Err(error_at(self.text, start, &expected_operand(&other))),
                }
                continue;
            }
            if let Some(op) = infix_of(&token) {
                self.reduce_for(op.precedence(), op == Infix::Pow);
                self.ops.push(Pending::Infix(op));
                want_operand = true;
                continue;
            }
            match token {
                Token::Close => self.close(start, end)?,
                Token::Comma => {
                    self.reduce_to_open();
                    match self.ops.last_mut() {
                        Some(Pending::Open { call: Some(_), args, .. }) => *args += 1,
                        _ => return Err(error_at(self.text, start, "',' outside a function call")),
                    }
                    want_operand = true;
                }
                Token::End => {
                    self.reduce_to_open();
                    if let Some(Pending::Open { start, .. }) = self.ops.last() {
                        return Err(error_at(self.text, *start, "this '(' is never closed"));
                    }
                    let root = self.operands.pop().expect("a complete expression has a value");
                    debug_assert!(self.operands.is_empty());
                    return Ok(Syntax { nodes: self.nodes, root });
                }
                Token::Open => {
                    return Err(error_at(
                        self.text,
                        start,
                        "expected an operator before '('; only names can be called, e.g. sin(x)",
                    ))
                }
                Token::Name(name) if is_keyword(&name) => {
                    return Err(error_at(
                        self.text,
                        start,
                        &format!("'{name}' is not supported in expressions"),
                    ))
                }
                Token::Number { .. } | Token::Name(_) => {
                    return Err(error_at(
                        self.text,
                        start,
                        "expected an operator (such as + or *) or the end of the input",
                    ))
                }
                Token::Op(op) => {
                    return Err(error_at(self.text, start, &format!("unexpected '{op}' after an operand")))
                }
            }
        }
    }

    fn open(&mut self, call: Option<(String, usize)>, start: usize) -> Result<()> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            return Err(error_at(
                self.text,
                start,
                &format!("parentheses and calls are nested more than {MAX_NESTING} deep"),
            ));
        }
        self.ops.push(Pending::Open { call, args: 0, start });
        Ok(())
    }

    fn reduce_to_open(&mut self) {
        while matches!(self.ops.last(), Some(Pending::Prefix(..) | Pending::Infix(..))) {
            self.reduce();
        }
    }

    /// A `)` at `start..end`: closes a group or finishes a call.
    fn close(&mut self, start: usize, end: usize) -> Result<()> {
        self.reduce_to_open();
        let Some(Pending::Open { call, args, start: open }) = self.ops.pop() else {
            return Err(error_at(self.text, start, "this ')' has no matching '('"));
        };
        self.nesting -= 1;
        match call {
            None => {
                // Marks the group: a parenthesised comparison does not chain.
                let inner = *self.operands.last().expect("a group holds an expression");
                self.grouped.resize(self.nodes.len(), false);
                self.grouped[inner as usize] = true;
            }
            Some((name, name_start)) => {
                let n = match args {
                    0 if self.operand_since(open) => 1,
                    0 => 0,
                    _ => args + 1,
                };
                let first = self.operands.len() - n;
                let argv = self.operands.split_off(first);
                let id = self.push(SyntaxKind::Call(name, argv), name_start, end);
                self.operands.push(id);
            }
        }
        Ok(())
    }

    /// Whether the operand on top of the stack was written after byte `open`.
    fn operand_since(&self, open: usize) -> bool {
        self.operands.last().is_some_and(|&id| self.span(id).0 > open)
    }
}

fn is_keyword(name: &str) -> bool {
    matches!(
        name,
        "and"
            | "or"
            | "not"
            | "if"
            | "else"
            | "lambda"
            | "for"
            | "in"
            | "is"
            | "import"
            | "def"
            | "return"
            | "yield"
    )
}

fn infix_of(token: &Token) -> Option<Infix> {
    use Infix::*;
    let text = match token {
        Token::Op(op) => *op,
        Token::Name(n) if n == "and" || n == "or" => n.as_str(),
        _ => return None,
    };
    Some(match text {
        "or" => Or,
        "and" => And,
        "<" => Lt,
        "<=" => Le,
        ">" => Gt,
        ">=" => Ge,
        "==" => Eq,
        "!=" => Ne,
        "|" => BitOr,
        "&" => BitAnd,
        "+" => Add,
        "-" => Sub,
        "*" => Mul,
        "/" => Div,
        "//" => FloorDiv,
        "%" => Mod,
        "**" => Pow,
        _ => return None,
    })
}

fn expected_operand(found: &Token) -> String {
    let what = match found {
        Token::End => "the end of the input".to_string(),
        Token::Close => "')'".to_string(),
        Token::Comma => "','".to_string(),
        Token::Op(op) => format!("'{op}'"),
        _ => "this".to_string(),
    };
    format!("expected a number, a name or '(' here, found {what}")
}

/// Parses `text` (Python expression syntax) into a syntax tree.
pub fn parse_syntax(text: &str) -> Result<Syntax> {
    if text.len() > MAX_INPUT_BYTES {
        return Err(Error::Parse(format!(
            "the expression is {} bytes long; the parser accepts at most {MAX_INPUT_BYTES}",
            text.len()
        )));
    }
    if text.trim().is_empty() {
        return Err(Error::Parse("the expression is empty".into()));
    }
    Parser { text, nodes: Vec::new(), operands: Vec::new(), ops: Vec::new(), nesting: 0, grouped: Vec::new() }
        .parse()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tree as a fully parenthesised string, for readable assertions.
    fn show(text: &str) -> String {
        let s = parse_syntax(text).unwrap();
        let mut out: Vec<String> = Vec::new();
        for n in &s.nodes {
            let r = |i: &NodeId| out[*i as usize].clone();
            let t = match &n.kind {
                SyntaxKind::Number { text, .. } => text.clone(),
                SyntaxKind::Name(n) => n.clone(),
                SyntaxKind::Prefix(Prefix::Pos, a) => r(a),
                SyntaxKind::Prefix(op, a) => format!("{}({})", op.name(), r(a)),
                SyntaxKind::Infix(op, a, b) => format!("{}({}, {})", op.name(), r(a), r(b)),
                SyntaxKind::Call(f, args) => {
                    format!("{f}[{}]", args.iter().map(r).collect::<Vec<_>>().join(", "))
                }
            };
            out.push(t);
        }
        out[s.root as usize].clone()
    }

    fn err(text: &str) -> String {
        match parse_syntax(text) {
            Err(Error::Parse(m)) => m,
            Ok(_) => panic!("{:.80} parsed", text),
            Err(other) => panic!("{other:?}"),
        }
    }

    #[test]
    fn precedence_follows_python() {
        assert_eq!(show("a + b * c"), "add(a, mul(b, c))");
        assert_eq!(show("-x**2"), "neg(pow(x, 2))");
        assert_eq!(show("2**-x"), "pow(2, neg(x))");
        assert_eq!(show("a**b**c"), "pow(a, pow(b, c))");
        assert_eq!(show("a - b - c"), "sub(sub(a, b), c)");
        assert_eq!(show("a < b | c"), "lt(a, bitor(b, c))");
        assert_eq!(show("(a > 0) & (b < 1)"), "bitand(gt(a, 0), lt(b, 1))");
        assert_eq!(show("not a < b and c or d"), "or(and(not(lt(a, b)), c), d)");
        assert_eq!(show("~x & y"), "bitand(invert(x), y)");
        assert_eq!(show("a // b % c"), "mod(floordiv(a, b), c)");
    }

    #[test]
    fn comparisons_chain_unless_parenthesised() {
        assert_eq!(show("a < b <= c"), "and(lt(a, b), le(b, c))");
        assert_eq!(show("(a < b) < c"), "lt(lt(a, b), c)");
    }

    #[test]
    fn calls_take_any_number_of_arguments() {
        assert_eq!(show("f()"), "f[]");
        assert_eq!(show("sin(x)"), "sin[x]");
        assert_eq!(show("where(x > 0, sqrt(x), -x)"), "where[gt(x, 0), sqrt[x], neg(x)]");
        assert_eq!(show("max(a, (b), c + 1)"), "max[a, b, add(c, 1)]");
        assert_eq!(show("((x))"), "x");
    }

    #[test]
    fn numbers() {
        let s = parse_syntax("1_000 + 2.5e-3 + .5 + 1E3").unwrap();
        let nums: Vec<_> = s
            .nodes
            .iter()
            .filter_map(|n| match &n.kind {
                SyntaxKind::Number { text, integer } => Some((text.clone(), *integer)),
                _ => None,
            })
            .collect();
        assert_eq!(
            nums,
            vec![
                ("1000".into(), true),
                ("2.5e-3".into(), false),
                (".5".into(), false),
                ("1E3".into(), false)
            ]
        );
    }

    #[test]
    fn errors_point_at_the_problem() {
        let m = err("sin(x) + ");
        assert!(m.contains("found the end of the input") && m.contains("position 9"), "{m}");
        assert!(m.ends_with("\n    sin(x) + \n             ^"), "{m:?}");
        assert!(err("x ^ 2").contains("x**2"));
        assert!(err("x = 2").contains("=="));
        assert!(err("(x + 1").contains("never closed"));
        assert!(err("x + 1)").contains("no matching"));
        assert!(err("np.sin(x)").contains("attribute"));
        assert!(err("2j").contains("complex"));
        assert!(err("'a' + x").contains("strings"));
        assert!(err("x y").contains("expected an operator"));
        assert!(err("f(x,)").contains("found ')'"));
        assert!(err("x, y").contains("outside a function call"));
        assert!(err("1e").contains("exponent"));
        assert!(err("x if y else z").contains("'if'"));
        assert!(err("   ").contains("empty"));
        assert!(err("$").contains("'$'"));
    }

    #[test]
    fn long_inputs_show_a_window() {
        let text = format!("{} * x", "a + ".repeat(1000));
        let m = err(&text);
        let lines: Vec<&str> = m.lines().collect();
        assert!(lines[1].len() < 140, "{m}");
        let caret = lines[2].find('^').unwrap();
        assert_eq!(&lines[1][caret..caret + 1], "*");
    }

    #[test]
    fn deep_nesting_costs_no_stack() {
        let n = 50_000;
        let text = format!("{}x{}", "(".repeat(n), ")".repeat(n));
        assert_eq!(show(&text), "x");
        let text = format!("{}x{}", "sin(".repeat(n), ")".repeat(n));
        assert_eq!(parse_syntax(&text).unwrap().nodes.len(), n + 1);
        let text = format!("{}x", "-".repeat(200_000));
        assert_eq!(parse_syntax(&text).unwrap().nodes.len(), 200_001);
        let deep = MAX_NESTING + 1;
        let text = format!("{}x{}", "(".repeat(deep), ")".repeat(deep));
        assert!(err(&text).contains("nested more than"));
    }
}
