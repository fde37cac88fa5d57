//! Every step's output columns, found by walking the pipeline from its sources in dependency
//! order and typing each step with the rules the engine's planner builds from
//! ([`super::step`], [`super::window_items`]).

use std::collections::BTreeMap;

use super::{Column, Scope, Ty};
use crate::{JobSpec, NexmarkTable, SourceSpec, TransformKind, TransformSpec, Violation};

/// Each step's output columns, by step name (a window's late output included).
pub type Columns = BTreeMap<String, Vec<Column>>;

impl NexmarkTable {
    /// The table's columns, in order.
    pub fn columns(self) -> &'static [(&'static str, Ty)] {
        match self {
            NexmarkTable::Person => &[
                ("id", Ty::Int),
                ("name", Ty::Str),
                ("email_address", Ty::Str),
                ("credit_card", Ty::Str),
                ("city", Ty::Str),
                ("state", Ty::Str),
                ("date_time", Ty::Int),
                ("extra", Ty::Str),
            ],
            NexmarkTable::Auction => &[
                ("id", Ty::Int),
                ("item_name", Ty::Str),
                ("description", Ty::Str),
                ("initial_bid", Ty::Int),
                ("reserve", Ty::Int),
                ("date_time", Ty::Int),
                ("expires", Ty::Int),
                ("seller", Ty::Int),
                ("category", Ty::Int),
                ("extra", Ty::Str),
            ],
            NexmarkTable::Bid => &[
                ("auction", Ty::Int),
                ("bidder", Ty::Int),
                ("price", Ty::Int),
                ("channel", Ty::Str),
                ("url", Ty::Str),
                ("date_time", Ty::Int),
                ("extra", Ty::Str),
            ],
        }
    }
}

/// The one column a generated column's `expr` sees: the record's sequence number.
pub fn generator_input() -> Vec<Column> {
    vec![Column::new("id", Ty::Int)]
}

/// Types a spec whose structure is sound (see [`JobSpec::check`]): every expression
/// type-checks against its input's columns, keys and watermark fields exist, windows select
/// keys, bounds and aggregates, unions agree. Returns each step's output columns, or every
/// problem by path.
pub fn columns(spec: &JobSpec) -> Result<Columns, Vec<Violation>> {
    let mut out = Columns::new();
    let mut problems = Vec::new();
    for (i, s) in spec.sources.iter().enumerate() {
        if let Some(cols) = source(&format!("sources[{i}]"), s, &mut problems) {
            out.insert(s.name.clone(), cols);
        }
    }
    let mut done = vec![false; spec.transforms.len()];
    loop {
        let mut progressed = false;
        for (i, t) in spec.transforms.iter().enumerate() {
            if done[i] || !t.inputs().all(|n| out.contains_key(n)) {
                continue;
            }
            transform(&format!("transforms[{i}]"), t, &mut out, &mut problems);
            done[i] = true;
            progressed = true;
        }
        if !progressed {
            break;
        }
    }
    for (i, t) in spec.transforms.iter().enumerate() {
        if !done[i] && problems.is_empty() {
            problems.push(Violation::new(
                format!("transforms[{i}]"),
                format!(
                    "{:?} is part of a cycle or depends on a step that failed",
                    t.name
                ),
            ));
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// A source's columns, and its watermark field checked against them.
fn source(path: &str, s: &SourceSpec, problems: &mut Vec<Violation>) -> Option<Vec<Column>> {
    let cols = if s.file.is_some() || s.kafka.is_some() {
        s.schema
            .iter()
            .map(|f| Column::new(f.name.clone(), f.type_.into()))
            .collect()
    } else {
        let g = s.datagen.as_ref()?;
        if let Some(n) = &g.nexmark {
            n.table
                .columns()
                .iter()
                .map(|(name, ty)| Column::new(*name, *ty))
                .collect()
        } else {
            let scope = Scope::new(generator_input());
            let mut cols = Vec::new();
            for (j, c) in g.columns.iter().enumerate() {
                let ty = match &c.random {
                    Some(r) if r.uniform.is_some() || r.normal.is_some() => Ty::Float,
                    Some(r) if r.uniform_int.is_some() || r.zipf.is_some() => Ty::Int,
                    Some(_) => Ty::Str,
                    None => {
                        let text = c.expr.as_deref().unwrap_or("NULL");
                        match crate::sql::parse_expr(text).and_then(|e| scope.compile(&e)) {
                            Ok(e) => e.ty(),
                            Err(e) => {
                                problems.push(Violation::new(
                                    format!("{path}.datagen.columns[{j}].expr"),
                                    e,
                                ));
                                continue;
                            }
                        }
                    }
                };
                cols.push(Column::new(c.name.clone(), ty));
            }
            cols
        }
    };
    if let Some(w) = &s.watermark {
        match cols.iter().find(|c| c.name == w.field) {
            Some(c) if c.ty == Ty::Int => {}
            Some(_) => problems.push(Violation::new(
                format!("{path}.watermark.field"),
                format!("{:?} must be a BIGINT of epoch milliseconds", w.field),
            )),
            None => problems.push(Violation::new(
                format!("{path}.watermark.field"),
                format!("{:?} is not a column of this source", w.field),
            )),
        }
    }
    Some(cols)
}

/// Types transform `t` (at `path`) from its inputs' columns in `out`, and records its output.
fn transform(path: &str, t: &TransformSpec, out: &mut Columns, problems: &mut Vec<Violation>) {
    let input = t.input.as_ref().map(|n| out[n].clone());
    let scope = |cols: &[Column]| Scope::new(cols.to_vec());
    let cols = match (t.kind(), input) {
        (TransformKind::Calc, Some(input)) => {
            match super::calc(&scope(&input), path, t.where_.as_ref(), &t.select, problems) {
                Some(c) => c.columns,
                None => return,
            }
        }
        (TransformKind::Window(w), Some(mut input)) => {
            if t.where_.is_some() {
                match super::calc(&scope(&input), path, t.where_.as_ref(), &[], problems) {
                    Some(c) => input = c.columns,
                    None => return,
                }
            }
            let s = scope(&input);
            let Some((keys, _)) = super::keys(&s, &format!("{path}.key_by"), &t.key_by, problems)
            else {
                return;
            };
            if w.kind().is_none() {
                return;
            }
            let key_types: Vec<Ty> = keys.iter().map(super::Expr::ty).collect();
            let (_, _, cols) =
                super::window_items(&s, path, &t.key_by, &key_types, &t.select, problems);
            if let Some(late) = &w.late_output {
                out.insert(late.clone(), input);
            }
            // A window's `select` is its aggregate list, not a projection after it.
            out.insert(t.name.clone(), cols);
            return;
        }
        (TransformKind::Deduplicate(d), Some(input)) => {
            let s = scope(&input);
            super::keys(&s, &format!("{path}.deduplicate.key"), &d.key, problems);
            input
        }
        (TransformKind::TopN(n), Some(mut input)) => {
            if super::top_n_order(&scope(&input), path, &n.order_by, problems).is_none() {
                return;
            }
            if let Some(number) = &n.number_as {
                input.push(Column::new(number.clone(), Ty::Int));
            }
            input
        }
        (TransformKind::IntervalJoin(j), Some(left)) => {
            let right = out[&j.right].clone();
            super::join_keys(
                &scope(&left),
                &scope(&right),
                &format!("{path}.interval_join.keys"),
                &j.keys,
                problems,
            );
            super::interval_bounds(
                &format!("{path}.interval_join"),
                &j.lower,
                &j.upper,
                problems,
            );
            let left_name = t.input.as_deref().unwrap_or_default();
            [(left_name, &left), (j.right.as_str(), &right)]
                .into_iter()
                .flat_map(|(name, cols)| {
                    cols.iter()
                        .map(move |c| Column::new(format!("{name}.{}", c.name), c.ty))
                })
                .collect()
        }
        (TransformKind::Union(names), _) => {
            let inputs: Vec<&Vec<Column>> = names.iter().map(|n| &out[n]).collect();
            for (j, cols) in inputs.iter().enumerate().skip(1) {
                let same = cols.len() == inputs[0].len()
                    && cols.iter().zip(inputs[0]).all(|(a, b)| a.ty == b.ty);
                if !same {
                    problems.push(Violation::new(
                        format!("{path}.union[{j}]"),
                        "has different columns than the first input",
                    ));
                    return;
                }
            }
            inputs[0].clone()
        }
        (TransformKind::Throttle(_), Some(input)) => input,
        (_, None) => return,
    };
    // After a stateful step, `where` and `select` apply to its output.
    let cols =
        if matches!(t.kind(), TransformKind::Calc) || (t.select.is_empty() && t.where_.is_none()) {
            cols
        } else {
            match super::calc(&scope(&cols), path, t.where_.as_ref(), &t.select, problems) {
                Some(c) => c.columns,
                None => return,
            }
        };
    out.insert(t.name.clone(), cols);
}
