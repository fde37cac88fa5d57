//! Aggregates of a windowed step: which SQL functions aggregate, their argument and result
//! types, and what each column of a window's `select` holds.

use sqlparser::ast;

use super::expr::{Expr, default_name};
use super::{Column, Scope, Ty};
use crate::Violation;

/// Which aggregate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggKind {
    /// COUNT(*)
    CountStar,
    /// COUNT(x)
    Count,
    /// SUM(x)
    Sum,
    /// MIN(x)
    Min,
    /// MAX(x)
    Max,
    /// AVG(x): integer average truncates (as Flink's BIGINT AVG).
    Avg,
    /// FIRST_VALUE(x): the first row's value in arrival order.
    First,
    /// LAST_VALUE(x)
    Last,
    /// COUNT(DISTINCT x)
    CountDistinct,
}

impl AggKind {
    /// The aggregate a SQL function name names.
    pub fn from_name(name: &str, distinct: bool, star: bool) -> Option<AggKind> {
        Some(match (name.to_uppercase().as_str(), distinct, star) {
            ("COUNT", _, true) => AggKind::CountStar,
            ("COUNT", true, false) => AggKind::CountDistinct,
            ("COUNT", false, false) => AggKind::Count,
            ("SUM", false, _) => AggKind::Sum,
            ("MIN", false, _) => AggKind::Min,
            ("MAX", false, _) => AggKind::Max,
            ("AVG", false, _) => AggKind::Avg,
            ("FIRST_VALUE" | "FIRST", false, _) => AggKind::First,
            ("LAST_VALUE" | "LAST", false, _) => AggKind::Last,
            _ => return None,
        })
    }
}

/// One aggregate call of a select list.
#[derive(Debug, Clone, PartialEq)]
pub struct AggCall {
    /// The function.
    pub kind: AggKind,
    /// Its argument (none for COUNT(*)).
    pub arg: Option<Expr>,
}

impl AggCall {
    /// The result type.
    pub fn ty(&self) -> Ty {
        match (self.kind, self.arg.as_ref().map(Expr::ty)) {
            (AggKind::CountStar | AggKind::Count | AggKind::CountDistinct, _) => Ty::Int,
            (_, Some(t)) => t,
            (_, None) => Ty::Int,
        }
    }
}

/// What a column of a window's output holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutItem {
    /// The i-th key column.
    Key(usize),
    /// Window start (epoch ms).
    Start,
    /// Window end (epoch ms).
    End,
    /// The j-th aggregate.
    Agg(usize),
}

/// An aggregate call, if `e` is one (`COUNT(*)`, `SUM(v)`, …).
pub fn compile_aggregate(scope: &Scope, e: &ast::Expr) -> Result<Option<AggCall>, String> {
    use ast::{Expr as E, FunctionArg, FunctionArgExpr, FunctionArguments};
    let E::Function(f) = e else { return Ok(None) };
    let name = f.name.to_string();
    let FunctionArguments::List(list) = &f.args else {
        return Ok(None);
    };
    let distinct = matches!(
        list.duplicate_treatment,
        Some(ast::DuplicateTreatment::Distinct)
    );
    let star = matches!(
        list.args.as_slice(),
        [FunctionArg::Unnamed(FunctionArgExpr::Wildcard)]
    );
    let Some(kind) = AggKind::from_name(&name, distinct, star) else {
        return Ok(None);
    };
    let arg = if star {
        None
    } else {
        match list.args.as_slice() {
            [FunctionArg::Unnamed(FunctionArgExpr::Expr(a))] => Some(scope.compile(a)?),
            _ => return Err(format!("{name} takes one argument")),
        }
    };
    if let (AggKind::Sum | AggKind::Avg, Some(a)) = (kind, &arg)
        && !matches!(a.ty(), Ty::Int | Ty::Float)
    {
        return Err(format!("{name} needs a number"));
    }
    Ok(Some(AggCall { kind, arg }))
}

/// A window's `select` list (at `path`) over `scope`, keyed by `key_by` with key types
/// `key_types`: the aggregate calls, what each output column holds, and the output columns.
/// Items that are neither a key, `window_start`, `window_end` nor an aggregate are problems.
pub fn window_items(
    scope: &Scope,
    path: &str,
    key_by: &[String],
    key_types: &[Ty],
    select: &[String],
    problems: &mut Vec<Violation>,
) -> (Vec<AggCall>, Vec<(String, OutItem)>, Vec<Column>) {
    let mut calls = Vec::new();
    let mut items = Vec::new();
    for (j, s) in select.iter().enumerate() {
        let item_path = format!("{path}.select[{j}]");
        let (e, alias) = match crate::sql::parse_select_item(s) {
            Ok(x) => x,
            Err(e) => {
                problems.push(Violation::new(item_path, e));
                continue;
            }
        };
        let name = alias.unwrap_or_else(|| default_name(&e));
        match compile_aggregate(scope, &e) {
            Ok(Some(call)) => {
                calls.push(call);
                items.push((name, OutItem::Agg(calls.len() - 1)));
            }
            Ok(None) => {
                let col = default_name(&e).to_lowercase();
                if col == "window_start" {
                    items.push((name, OutItem::Start));
                } else if col == "window_end" {
                    items.push((name, OutItem::End));
                } else if let Some(k) = key_by.iter().position(|k| k.eq_ignore_ascii_case(&col)) {
                    items.push((name, OutItem::Key(k)));
                } else {
                    problems.push(Violation::new(
                        item_path,
                        format!(
                            "{s:?} must be a key_by column, window_start, window_end or an \
                             aggregate such as COUNT(*)"
                        ),
                    ));
                }
            }
            Err(e) => problems.push(Violation::new(item_path, e)),
        }
    }
    let columns = items
        .iter()
        .map(|(name, item)| {
            let ty = match item {
                OutItem::Key(i) => key_types[*i],
                OutItem::Start | OutItem::End => Ty::Int,
                OutItem::Agg(j) => calls[*j].ty(),
            };
            Column::new(name.clone(), ty)
        })
        .collect();
    (calls, items, columns)
}
