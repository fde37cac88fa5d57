//! SQL expressions over a batch's columns: parsed with `sqlparser`, checked against the
//! input's columns (unknown columns and type errors are found before anything runs), and
//! evaluated on whole Arrow arrays with Arrow's compute kernels.
//!
//! Semantics follow Flink SQL: integer `/` truncates toward zero and `MOD`/`%` takes the
//! dividend's sign (Java's), `CAST(x AS DOUBLE) / y` is IEEE division, strings are UTF-8 and
//! `SUBSTRING` counts characters from 1.

mod eval;

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema};
use sqlparser::ast::{self, BinaryOperator, UnaryOperator};

pub use eval::{Value, eval};

/// The value types expressions work with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    /// 64-bit integer.
    Int,
    /// 64-bit float.
    Float,
    /// UTF-8 string.
    Str,
    /// Boolean.
    Bool,
}

impl Ty {
    /// The Arrow type.
    pub fn arrow(self) -> DataType {
        match self {
            Ty::Int => DataType::Int64,
            Ty::Float => DataType::Float64,
            Ty::Str => DataType::Utf8,
            Ty::Bool => DataType::Boolean,
        }
    }

    /// The type of an Arrow column.
    pub fn of(dt: &DataType) -> Option<Ty> {
        Some(match dt {
            DataType::Int64 | DataType::Int32 => Ty::Int,
            DataType::Float64 => Ty::Float,
            DataType::Utf8 => Ty::Str,
            DataType::Boolean => Ty::Bool,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Ty::Int => "BIGINT",
            Ty::Float => "DOUBLE",
            Ty::Str => "STRING",
            Ty::Bool => "BOOLEAN",
        }
    }
}

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

/// Parses a SQL expression (the spec's own parser, so spec checks and the engine agree).
pub use strom_jobspec::sql::parse_expr as parse_sql;
pub use strom_jobspec::sql::{parse_order_by, parse_select_item};

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

/// Resolves names against the input's columns.
pub struct Scope<'a> {
    schema: &'a Schema,
}

impl<'a> Scope<'a> {
    /// A scope over `schema`.
    pub fn new(schema: &'a Schema) -> Self {
        Scope { schema }
    }

    /// The index and type of a column, or a message listing the columns there are.
    pub fn column(&self, name: &str) -> Result<(usize, Ty), String> {
        let fields = self.schema.fields();
        let exact = fields
            .iter()
            .enumerate()
            .find(|(_, f)| f.name().eq_ignore_ascii_case(name));
        // After a join, columns are named `<input>.<column>`; the bare name finds one when
        // it is unambiguous.
        let suffix = format!(".{}", name.to_lowercase());
        let qualified: Vec<_> = fields
            .iter()
            .enumerate()
            .filter(|(_, f)| f.name().to_lowercase().ends_with(&suffix))
            .collect();
        let found = match (exact, qualified.as_slice()) {
            (Some(x), _) => Some(x),
            (None, [one]) => Some(*one),
            (None, [_, _, ..]) => {
                let names: Vec<&str> = qualified.iter().map(|(_, f)| f.name().as_str()).collect();
                return Err(format!(
                    "column {name:?} is ambiguous (it could be {})",
                    names.join(" or ")
                ));
            }
            (None, []) => None,
        };
        let (i, field) = found.ok_or_else(|| {
            let names: Vec<&str> = fields.iter().map(|f| f.name().as_str()).collect();
            format!(
                "unknown column {name:?} (the input has {})",
                names.join(", ")
            )
        })?;
        let ty = Ty::of(field.data_type())
            .ok_or_else(|| format!("column {name:?} has an unsupported type"))?;
        Ok((i, ty))
    }

    /// Checks and compiles an expression.
    pub fn compile(&self, e: &ast::Expr) -> Result<Expr, String> {
        use ast::Expr as E;
        Ok(match e {
            E::Identifier(id) => {
                let (i, t) = self.column(&id.value)?;
                Expr::Column(i, t)
            }
            E::CompoundIdentifier(ids) => {
                let full: Vec<&str> = ids.iter().map(|i| i.value.as_str()).collect();
                let (i, t) = self.column(&full.join("."))?;
                Expr::Column(i, t)
            }
            E::Value(v) => Expr::Literal(literal(&v.value)?),
            E::Nested(inner) => self.compile(inner)?,
            E::UnaryOp {
                op: UnaryOperator::Not,
                expr,
            } => {
                let x = self.compile(expr)?;
                expect(&x, Ty::Bool, "NOT")?;
                Expr::Not(Box::new(x))
            }
            E::UnaryOp {
                op: UnaryOperator::Minus,
                expr,
            } => match self.compile(expr)? {
                Expr::Literal(Lit::Int(n)) => Expr::Literal(Lit::Int(-n)),
                Expr::Literal(Lit::Float(f)) => Expr::Literal(Lit::Float(-f)),
                x => {
                    let t = numeric(&x, "-")?;
                    Expr::Neg(Box::new(x), t)
                }
            },
            E::UnaryOp {
                op: UnaryOperator::Plus,
                expr,
            } => self.compile(expr)?,
            E::BinaryOp { left, op, right } => {
                let (l, r) = (self.compile(left)?, self.compile(right)?);
                self.binary(op, l, r)?
            }
            E::Like {
                negated,
                expr,
                pattern,
                ..
            } => {
                let x = self.compile(expr)?;
                expect(&x, Ty::Str, "LIKE")?;
                let E::Value(v) = pattern.as_ref() else {
                    return Err("LIKE needs a constant pattern".into());
                };
                let Lit::Str(p) = literal(&v.value)? else {
                    return Err("LIKE needs a string pattern".into());
                };
                Expr::Like(Box::new(x), p, *negated)
            }
            E::Case {
                operand,
                conditions,
                else_result,
                ..
            } => {
                let mut branches = Vec::new();
                for w in conditions {
                    let cond = match operand {
                        Some(op) => self.binary(
                            &BinaryOperator::Eq,
                            self.compile(op)?,
                            self.compile(&w.condition)?,
                        )?,
                        None => self.compile(&w.condition)?,
                    };
                    expect(&cond, Ty::Bool, "CASE WHEN")?;
                    branches.push((cond, self.compile(&w.result)?));
                }
                let otherwise = else_result.as_ref().map(|e| self.compile(e)).transpose()?;
                let ty = branches.first().map(|(_, r)| r.ty()).unwrap_or(Ty::Str);
                for (_, r) in &branches {
                    if r.ty() != ty {
                        return Err(format!(
                            "CASE branches have different types ({} and {})",
                            ty.name(),
                            r.ty().name()
                        ));
                    }
                }
                if let Some(o) = &otherwise
                    && o.ty() != ty
                {
                    return Err(format!(
                        "CASE ELSE has type {} but the branches {}",
                        o.ty().name(),
                        ty.name()
                    ));
                }
                Expr::Case(branches, otherwise.map(Box::new), ty)
            }
            E::Cast {
                expr, data_type, ..
            } => {
                let x = self.compile(expr)?;
                let ty = cast_target(data_type)?;
                Expr::Cast(Box::new(x), ty)
            }
            E::Substring {
                expr,
                substring_from,
                substring_for,
                ..
            } => {
                let mut args = vec![self.compile(expr)?];
                if let Some(f) = substring_from {
                    args.push(self.compile(f)?);
                }
                if let Some(f) = substring_for {
                    args.push(self.compile(f)?);
                }
                self.call("SUBSTRING", args)?
            }
            E::Function(f) => {
                let name = f.name.to_string().to_uppercase();
                let args = match &f.args {
                    ast::FunctionArguments::List(list) => list
                        .args
                        .iter()
                        .map(|a| match a {
                            ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => {
                                self.compile(e)
                            }
                            other => Err(format!("unsupported argument {other}")),
                        })
                        .collect::<Result<Vec<_>, _>>()?,
                    ast::FunctionArguments::None => vec![],
                    ast::FunctionArguments::Subquery(_) => {
                        return Err("subqueries are not supported".into());
                    }
                };
                if name == "MOD" {
                    let [a, b]: [Expr; 2] = args
                        .try_into()
                        .map_err(|_| "MOD takes two arguments".to_owned())?;
                    return self.binary(&BinaryOperator::Modulo, a, b);
                }
                self.call(&name, args)?
            }
            other => return Err(format!("unsupported expression: {other}")),
        })
    }

    fn call(&self, name: &str, args: Vec<Expr>) -> Result<Expr, String> {
        let (func, ty) = match name {
            "UPPER" => (Func::Upper, Ty::Str),
            "LOWER" => (Func::Lower, Ty::Str),
            "CONCAT" => (Func::Concat, Ty::Str),
            "SUBSTRING" | "SUBSTR" => (Func::Substring, Ty::Str),
            "CHAR_LENGTH" | "CHARACTER_LENGTH" | "LENGTH" => (Func::CharLength, Ty::Int),
            "ABS" => {
                let t = args.first().map(Expr::ty).unwrap_or(Ty::Int);
                (Func::Abs, t)
            }
            other => return Err(format!("unknown function {other}")),
        };
        let arity_ok = match func {
            Func::Upper | Func::Lower | Func::CharLength | Func::Abs => args.len() == 1,
            Func::Concat => !args.is_empty(),
            Func::Substring => args.len() == 2 || args.len() == 3,
        };
        if !arity_ok {
            return Err(format!("{name} takes a different number of arguments"));
        }
        match func {
            Func::Upper | Func::Lower | Func::CharLength => expect(&args[0], Ty::Str, name)?,
            Func::Substring => {
                expect(&args[0], Ty::Str, name)?;
                for a in &args[1..] {
                    expect(a, Ty::Int, name)?;
                }
            }
            Func::Abs => {
                numeric(&args[0], name)?;
            }
            Func::Concat => {}
        }
        // CONCAT takes strings; other values are cast (Flink requires explicit casts, we are
        // lenient in the same direction as its implicit rules for string concatenation).
        let args = if func == Func::Concat {
            args.into_iter()
                .map(|a| {
                    if a.ty() == Ty::Str {
                        a
                    } else {
                        Expr::Cast(Box::new(a), Ty::Str)
                    }
                })
                .collect()
        } else {
            args
        };
        Ok(Expr::Call(func, args, ty))
    }

    fn binary(&self, op: &BinaryOperator, l: Expr, r: Expr) -> Result<Expr, String> {
        use BinaryOperator as B;
        let op = match op {
            B::Plus => BinOp::Add,
            B::Minus => BinOp::Sub,
            B::Multiply => BinOp::Mul,
            B::Divide => BinOp::Div,
            B::Modulo => BinOp::Rem,
            B::Eq => BinOp::Eq,
            B::NotEq => BinOp::NotEq,
            B::Lt => BinOp::Lt,
            B::LtEq => BinOp::LtEq,
            B::Gt => BinOp::Gt,
            B::GtEq => BinOp::GtEq,
            B::And => BinOp::And,
            B::Or => BinOp::Or,
            other => return Err(format!("unsupported operator {other}")),
        };
        let (l, r) = coerce(l, r);
        let ty = match op {
            BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Rem => {
                numeric(&l, "arithmetic")?;
                numeric(&r, "arithmetic")?;
                l.ty()
            }
            BinOp::And | BinOp::Or => {
                expect(&l, Ty::Bool, "AND/OR")?;
                expect(&r, Ty::Bool, "AND/OR")?;
                Ty::Bool
            }
            _ => {
                if l.ty() != r.ty() {
                    return Err(format!(
                        "cannot compare {} with {}",
                        l.ty().name(),
                        r.ty().name()
                    ));
                }
                Ty::Bool
            }
        };
        Ok(Expr::Binary(op, Box::new(l), Box::new(r), ty))
    }
}

/// Integers meeting floats become floats.
fn coerce(l: Expr, r: Expr) -> (Expr, Expr) {
    match (l.ty(), r.ty()) {
        (Ty::Int, Ty::Float) => (Expr::Cast(Box::new(l), Ty::Float), r),
        (Ty::Float, Ty::Int) => (l, Expr::Cast(Box::new(r), Ty::Float)),
        _ => (l, r),
    }
}

fn expect(e: &Expr, ty: Ty, what: &str) -> Result<(), String> {
    if e.ty() == ty {
        Ok(())
    } else {
        Err(format!(
            "{what} needs {} but got {}",
            ty.name(),
            e.ty().name()
        ))
    }
}

fn numeric(e: &Expr, what: &str) -> Result<Ty, String> {
    match e.ty() {
        t @ (Ty::Int | Ty::Float) => Ok(t),
        t => Err(format!("{what} needs numbers but got {}", t.name())),
    }
}

fn literal(v: &ast::Value) -> Result<Lit, String> {
    Ok(match v {
        ast::Value::Number(n, _) => match n.parse::<i64>() {
            Ok(i) => Lit::Int(i),
            Err(_) => Lit::Float(n.parse().map_err(|_| format!("bad number {n}"))?),
        },
        ast::Value::SingleQuotedString(s) => Lit::Str(s.clone()),
        ast::Value::Boolean(b) => Lit::Bool(*b),
        other => return Err(format!("unsupported literal {other}")),
    })
}

fn cast_target(t: &ast::DataType) -> Result<Ty, String> {
    let name = t.to_string().to_uppercase();
    Ok(match name.split('(').next().unwrap_or_default().trim() {
        "BIGINT" | "INT" | "INTEGER" | "SMALLINT" | "TINYINT" => Ty::Int,
        "DOUBLE" | "FLOAT" | "REAL" | "DOUBLE PRECISION" => Ty::Float,
        "STRING" | "VARCHAR" | "TEXT" | "CHAR" => Ty::Str,
        "BOOLEAN" | "BOOL" => Ty::Bool,
        other => return Err(format!("cannot CAST to {other}")),
    })
}

/// A schema of the given names and types.
pub fn schema_of(columns: &[(String, Ty)]) -> Arc<Schema> {
    Arc::new(Schema::new(
        columns
            .iter()
            .map(|(n, t)| Field::new(n, t.arrow(), false))
            .collect::<Vec<_>>(),
    ))
}
