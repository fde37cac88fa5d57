//! Names resolved against a step's input columns, and SQL expressions checked and compiled
//! against them.

use sqlparser::ast::{self, BinaryOperator, UnaryOperator};

use super::expr::{BinOp, Expr, Func, Lit};
use super::{Column, Ty};

/// Resolves names against the input's columns.
#[derive(Debug, Clone)]
pub struct Scope {
    columns: Vec<Column>,
}

impl Scope {
    /// A scope over `columns`.
    pub fn new(columns: Vec<Column>) -> Self {
        Scope { columns }
    }

    /// The columns in scope.
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// The index and type of a column, or a message listing the columns there are.
    pub fn column(&self, name: &str) -> Result<(usize, Ty), String> {
        let fields = &self.columns;
        let exact = fields
            .iter()
            .enumerate()
            .find(|(_, f)| f.name.eq_ignore_ascii_case(name));
        // After a join, columns are named `<input>.<column>`; the bare name finds one when
        // it is unambiguous.
        let suffix = format!(".{}", name.to_lowercase());
        let qualified: Vec<_> = fields
            .iter()
            .enumerate()
            .filter(|(_, f)| f.name.to_lowercase().ends_with(&suffix))
            .collect();
        let found = match (exact, qualified.as_slice()) {
            (Some(x), _) => Some(x),
            (None, [one]) => Some(*one),
            (None, [_, _, ..]) => {
                let names: Vec<&str> = qualified.iter().map(|(_, f)| f.name.as_str()).collect();
                return Err(format!(
                    "column {name:?} is ambiguous (it could be {})",
                    names.join(" or ")
                ));
            }
            (None, []) => None,
        };
        let (i, field) = found.ok_or_else(|| {
            let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
            format!(
                "unknown column {name:?} (the input has {})",
                names.join(", ")
            )
        })?;
        Ok((i, field.ty))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::parse_expr;

    fn scope() -> Scope {
        Scope::new(vec![
            Column::new("a", Ty::Int),
            Column::new("b", Ty::Int),
            Column::new("name", Ty::Str),
        ])
    }

    fn compile(sql: &str) -> Result<Expr, String> {
        scope().compile(&parse_expr(sql).map_err(|e| format!("does not parse: {e}"))?)
    }

    #[test]
    fn unknown_columns_and_type_errors_are_caught_before_running() {
        let err = compile("nope + 1").unwrap_err();
        assert!(
            err.contains("unknown column \"nope\" (the input has a, b, name)"),
            "{err}"
        );
        assert!(compile("name + 1").unwrap_err().contains("needs numbers"));
        assert!(
            compile("a = 'x'")
                .unwrap_err()
                .contains("cannot compare BIGINT with STRING")
        );
        assert!(
            compile("UPPER(a)")
                .unwrap_err()
                .contains("UPPER needs STRING but got BIGINT")
        );
        assert!(
            compile("NOPE(a)")
                .unwrap_err()
                .contains("unknown function NOPE")
        );
    }

    #[test]
    fn types_follow_flink_sql() {
        assert_eq!(compile("a / 2").map(|e| e.ty()), Ok(Ty::Int));
        assert_eq!(compile("a / 2.0").map(|e| e.ty()), Ok(Ty::Float));
        assert_eq!(compile("CHAR_LENGTH(name)").map(|e| e.ty()), Ok(Ty::Int));
        assert_eq!(compile("CONCAT(name, a)").map(|e| e.ty()), Ok(Ty::Str));
        assert_eq!(compile("a > 1 AND b < 2").map(|e| e.ty()), Ok(Ty::Bool));
        assert_eq!(compile("CAST(a AS DOUBLE)").map(|e| e.ty()), Ok(Ty::Float));
    }

    #[test]
    fn a_bare_name_finds_a_joined_column_when_unambiguous() {
        let s = Scope::new(vec![
            Column::new("l.k", Ty::Int),
            Column::new("l.v", Ty::Str),
            Column::new("r.k", Ty::Int),
        ]);
        assert_eq!(s.column("v"), Ok((1, Ty::Str)));
        assert!(s.column("k").unwrap_err().contains("ambiguous"));
        assert_eq!(s.column("r.k"), Ok((2, Ty::Int)));
    }
}
