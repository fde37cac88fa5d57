//! The typing rules of each kind of step, shared by the spec's check ([`super::columns`]) and
//! the engine's planner, so both refuse the same pipelines with the same words.

use super::expr::{Expr, default_name};
use super::{Column, Scope, Ty};
use crate::{Duration, Violation};

/// A checked `where` and `select`.
#[derive(Debug, Clone, PartialEq)]
pub struct Calc {
    /// The condition rows must meet.
    pub predicate: Option<Expr>,
    /// The output columns as expressions over the input; none: the input's columns.
    pub projection: Option<Vec<(String, Expr)>>,
    /// The output columns.
    pub columns: Vec<Column>,
}

/// Checks a step's `where` and `select` (at `path`) over `scope`. None when the condition
/// does not type-check (there is nothing to build on); select items that do not are left out
/// after their problem is recorded.
pub fn calc(
    scope: &Scope,
    path: &str,
    where_: Option<&String>,
    select: &[String],
    problems: &mut Vec<Violation>,
) -> Option<Calc> {
    let predicate = match where_.map(|w| crate::sql::parse_expr(w).and_then(|e| scope.compile(&e)))
    {
        Some(Ok(p)) if p.ty() == Ty::Bool => Some(p),
        Some(Ok(_)) => {
            problems.push(Violation::new(
                format!("{path}.where"),
                "must be a condition (true or false)",
            ));
            return None;
        }
        Some(Err(e)) => {
            problems.push(Violation::new(format!("{path}.where"), e));
            return None;
        }
        None => None,
    };
    let projection = if select.is_empty() {
        None
    } else {
        let mut items = Vec::new();
        for (j, s) in select.iter().enumerate() {
            match crate::sql::parse_select_item(s).and_then(|(e, alias)| {
                Ok((
                    alias.unwrap_or_else(|| default_name(&e)),
                    scope.compile(&e)?,
                ))
            }) {
                Ok(item) => items.push(item),
                Err(e) => problems.push(Violation::new(format!("{path}.select[{j}]"), e)),
            }
        }
        Some(items)
    };
    let columns = match &projection {
        Some(items) => items
            .iter()
            .map(|(n, e)| Column::new(n.clone(), e.ty()))
            .collect(),
        None => scope.columns().to_vec(),
    };
    Some(Calc {
        predicate,
        projection,
        columns,
    })
}

/// Key columns by name (at `path[j]`): their expressions and indexes, or None when one is
/// not a column of the scope.
pub fn keys(
    scope: &Scope,
    path: &str,
    names: &[String],
    problems: &mut Vec<Violation>,
) -> Option<(Vec<Expr>, Vec<usize>)> {
    let mut exprs = Vec::new();
    let mut idx = Vec::new();
    for (j, k) in names.iter().enumerate() {
        match scope.column(k) {
            Ok((i, t)) => {
                exprs.push(Expr::Column(i, t));
                idx.push(i);
            }
            Err(e) => problems.push(Violation::new(format!("{path}[{j}]"), e)),
        }
    }
    (exprs.len() == names.len()).then_some((exprs, idx))
}

/// The key pairs of an interval join (`left_column = right_column`, at `path[k]`): left key
/// expressions and indexes, right key expressions and indexes.
pub type JoinKeys = (Vec<Expr>, Vec<Expr>, Vec<usize>, Vec<usize>);

/// Resolves an interval join's key conditions against its two inputs.
pub fn join_keys(
    left: &Scope,
    right: &Scope,
    path: &str,
    conditions: &[String],
    problems: &mut Vec<Violation>,
) -> JoinKeys {
    let (mut lk, mut rk, mut li, mut ri) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (k, cond) in conditions.iter().enumerate() {
        let parts: Vec<&str> = cond.split('=').map(str::trim).collect();
        let bare = |c: &str| c.rsplit('.').next().unwrap_or(c).to_owned();
        let resolved = match parts.as_slice() {
            [l, r] => left
                .column(&bare(l))
                .and_then(|a| Ok((a, right.column(&bare(r))?))),
            _ => Err("write the condition as left_column = right_column".into()),
        };
        match resolved {
            Ok(((a, at), (b, bt))) if at == bt => {
                lk.push(Expr::Column(a, at));
                rk.push(Expr::Column(b, bt));
                li.push(a);
                ri.push(b);
            }
            Ok(_) => problems.push(Violation::new(
                format!("{path}[{k}]"),
                "the two columns have different types",
            )),
            Err(e) => problems.push(Violation::new(format!("{path}[{k}]"), e)),
        }
    }
    (lk, rk, li, ri)
}

/// An interval join's bounds in milliseconds (`lower`/`upper` under `path`, each a duration
/// with an optional leading `-`), or None when they do not parse or lower exceeds upper.
pub fn interval_bounds(
    path: &str,
    lower: &str,
    upper: &str,
    problems: &mut Vec<Violation>,
) -> Option<(i64, i64)> {
    let bound = |s: &str| match s.strip_prefix('-') {
        Some(rest) => Duration(rest.into()).millis().map(|v| -v),
        None => Duration(s.into()).millis(),
    };
    match (bound(lower), bound(upper)) {
        (Ok(l), Ok(u)) if l <= u => Some((l, u)),
        (Ok(_), Ok(_)) => {
            problems.push(Violation::new(path, "lower must not exceed upper"));
            None
        }
        (Err(e), _) => {
            problems.push(Violation::new(format!("{path}.lower"), e.to_string()));
            None
        }
        (_, Err(e)) => {
            problems.push(Violation::new(format!("{path}.upper"), e.to_string()));
            None
        }
    }
}

/// A top-N's window columns (`window_start`, `window_end` indexes) and its ORDER BY list
/// (expressions and whether each ascends), or None with the problem recorded.
pub type TopNOrder = (usize, usize, Vec<(Expr, bool)>);

/// Checks a top-N (the step at `path`) over its input.
pub fn top_n_order(
    scope: &Scope,
    path: &str,
    order_by: &str,
    problems: &mut Vec<Violation>,
) -> Option<TopNOrder> {
    let (start, end) = match (scope.column("window_start"), scope.column("window_end")) {
        (Ok((s, _)), Ok((e, _))) => (s, e),
        _ => {
            problems.push(Violation::new(
                format!("{path}.input"),
                "top_n needs an input with window_start and window_end columns (a windowed \
                 aggregation)",
            ));
            return None;
        }
    };
    match crate::sql::parse_order_by(order_by).and_then(|items| {
        items
            .into_iter()
            .map(|(e, asc)| Ok((scope.compile(&e)?, asc)))
            .collect::<Result<Vec<_>, String>>()
    }) {
        Ok(o) => Some((start, end, o)),
        Err(e) => {
            problems.push(Violation::new(format!("{path}.top_n.order_by"), e));
            None
        }
    }
}
