//! A checked expression: columns resolved to their index and type, every node typed.

use sqlparser::ast;

use super::Ty;

/// A literal.
#[derive(Debug, Clone, PartialEq)]
pub enum Lit {
    /// Integer.
    Int(i64),
    /// Float.
    Float(f64),
    /// String.
    Str(String),
    /// Boolean.
    Bool(bool),
}

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    /// +
    Add,
    /// -
    Sub,
    /// *
    Mul,
    /// / (truncating for integers)
    Div,
    /// MOD / %
    Rem,
    /// =
    Eq,
    /// <>
    NotEq,
    /// <
    Lt,
    /// <=
    LtEq,
    /// >
    Gt,
    /// >=
    GtEq,
    /// AND
    And,
    /// OR
    Or,
}

/// Scalar functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    /// UPPER(s)
    Upper,
    /// LOWER(s)
    Lower,
    /// CONCAT(a, b, …)
    Concat,
    /// SUBSTRING(s, start [, len]), 1-based, in characters
    Substring,
    /// CHAR_LENGTH(s)
    CharLength,
    /// ABS(x)
    Abs,
}

/// A checked expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A column of the input.
    Column(usize, Ty),
    /// A constant.
    Literal(Lit),
    /// `left op right`.
    Binary(BinOp, Box<Expr>, Box<Expr>, Ty),
    /// NOT x
    Not(Box<Expr>),
    /// -x
    Neg(Box<Expr>, Ty),
    /// CASE WHEN … THEN … ELSE … END
    Case(Vec<(Expr, Expr)>, Option<Box<Expr>>, Ty),
    /// x [NOT] LIKE 'pattern'
    Like(Box<Expr>, String, bool),
    /// A function call.
    Call(Func, Vec<Expr>, Ty),
    /// CAST(x AS type)
    Cast(Box<Expr>, Ty),
}

impl Expr {
    /// The result type.
    pub fn ty(&self) -> Ty {
        match self {
            Expr::Column(_, t)
            | Expr::Binary(_, _, _, t)
            | Expr::Neg(_, t)
            | Expr::Case(_, _, t)
            | Expr::Call(_, _, t)
            | Expr::Cast(_, t) => *t,
            Expr::Literal(Lit::Int(_)) => Ty::Int,
            Expr::Literal(Lit::Float(_)) => Ty::Float,
            Expr::Literal(Lit::Str(_)) => Ty::Str,
            Expr::Literal(Lit::Bool(_)) => Ty::Bool,
            Expr::Not(_) | Expr::Like(..) => Ty::Bool,
        }
    }
}

/// The output name of an unaliased select item: the column name, or the expression text.
pub fn default_name(expr: &ast::Expr) -> String {
    match expr {
        ast::Expr::Identifier(id) => id.value.clone(),
        ast::Expr::CompoundIdentifier(ids) => {
            ids.last().map(|i| i.value.clone()).unwrap_or_default()
        }
        other => other.to_string(),
    }
}
