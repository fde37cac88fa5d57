//! Reading a spec: types and unknown fields (with their paths), then the rules that tie the
//! steps together.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::Value;

use super::JobSpec;

/// One problem with a spec: where, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Path, e.g. `transforms[2].window.tumble`.
    pub path: String,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.reason)
    }
}

/// Every problem found. Never empty.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Problems(pub Vec<Problem>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&lines.join("\n"))
    }
}

impl Problems {
    /// One problem.
    pub fn one(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Problems(vec![Problem {
            path: path.into(),
            reason: reason.into(),
        }])
    }
}

fn ignored_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", ignored_path(parent)),
        Path::Map { parent, key } => {
            let p = ignored_path(parent);
            if p.is_empty() {
                key.clone()
            } else {
                format!("{p}.{key}")
            }
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => ignored_path(parent),
    }
}

pub(super) fn parse(text: &str) -> Result<JobSpec, Problems> {
    let value: Value = serde_yaml_ng::from_str(text)
        .map_err(|e| Problems::one("<spec>", format!("is not valid YAML or JSON: {e}")))?;
    let mut problems = Vec::new();
    let mut record = |p: serde_ignored::Path<'_>| {
        problems.push(Problem {
            path: ignored_path(&p),
            reason: "unknown field (check its spelling and indentation)".into(),
        })
    };
    let spec: JobSpec =
        serde_path_to_error::deserialize(serde_ignored::Deserializer::new(&value, &mut record))
            .map_err(|e| {
                let mut path = e.path().to_string();
                let mut reason = e.inner().to_string();
                if let Some(field) = reason
                    .strip_prefix("missing field `")
                    .and_then(|r| r.strip_suffix('`'))
                {
                    path = if path == "." {
                        field.to_owned()
                    } else {
                        format!("{path}.{field}")
                    };
                    reason = "is required".into();
                }
                Problems::one(path, reason)
            })?;
    check(&spec, &mut problems);
    if problems.is_empty() {
        Ok(spec)
    } else {
        Err(Problems(problems))
    }
}

/// The columns of a generated source: a Nexmark table or columns, each with exactly one of
/// `expr` and `random`, and distributions that make sense.
fn check_generated_columns(
    g: &super::DatagenSource,
    path: &str,
    fail: &mut dyn FnMut(String, String),
) {
    match (&g.nexmark, g.columns.is_empty()) {
        (Some(_), false) => fail(
            format!("{path}.columns"),
            "a Nexmark table has its own columns; leave columns out".into(),
        ),
        (None, true) => fail(
            format!("{path}.columns"),
            "needs at least one column (or a nexmark table)".into(),
        ),
        _ => {}
    }
    if g.nexmark.as_ref().and_then(|n| n.events_per_second) == Some(0) {
        fail(
            format!("{path}.nexmark.events_per_second"),
            "must be at least 1".into(),
        );
    }
    for (j, c) in g.columns.iter().enumerate() {
        let at = format!("{path}.columns[{j}]");
        let Some(r) = &c.random else {
            if c.expr.is_none() {
                fail(at, "set expr or random".into());
            }
            continue;
        };
        if c.expr.is_some() {
            fail(at.clone(), "set expr or random, not both".into());
        }
        let at = format!("{at}.random");
        let set = [
            r.uniform.is_some(),
            r.uniform_int.is_some(),
            r.normal.is_some(),
            r.zipf.is_some(),
            !r.one_of.is_empty(),
            r.text.is_some(),
        ];
        if set.iter().filter(|x| **x).count() != 1 {
            fail(
                at.clone(),
                "set exactly one of uniform, uniform_int, normal, zipf, one_of and text".into(),
            );
        }
        let whole = |v: f64| v.fract() == 0.0 && v.abs() < 9.0e15;
        for (field, range) in [
            ("uniform", &r.uniform),
            ("uniform_int", &r.uniform_int),
            ("text", &r.text),
        ] {
            let Some(range) = range else { continue };
            if !(range.min.is_finite() && range.max.is_finite()) {
                fail(
                    format!("{at}.{field}"),
                    "min and max must be numbers".into(),
                );
            } else if range.min > range.max || (field == "uniform" && range.min == range.max) {
                fail(
                    format!("{at}.{field}"),
                    format!("min ({}) must be below max ({})", range.min, range.max),
                );
            } else if field != "uniform" && !(whole(range.min) && whole(range.max)) {
                fail(
                    format!("{at}.{field}"),
                    "min and max must be whole numbers".into(),
                );
            } else if field == "text" && range.min < 0.0 {
                fail(format!("{at}.text.min"), "must not be negative".into());
            }
        }
        if let Some(n) = &r.normal
            && !(n.stddev >= 0.0 && n.stddev.is_finite() && n.mean.is_finite())
        {
            fail(
                format!("{at}.normal.stddev"),
                "must be a number of at least 0".into(),
            );
        }
        if let Some(z) = &r.zipf {
            if z.max == 0 {
                fail(format!("{at}.zipf.max"), "must be at least 1".into());
            }
            if !(z.exponent > 0.0 && z.exponent.is_finite()) {
                fail(
                    format!("{at}.zipf.exponent"),
                    "must be greater than 0".into(),
                );
            }
        }
    }
}

fn check(spec: &JobSpec, problems: &mut Vec<Problem>) {
    let mut fail = |path: String, reason: String| problems.push(Problem { path, reason });
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    // `field` is the path of the name itself, e.g. `transforms[2].name`.
    let mut name = |n: &str, field: String, fail: &mut dyn FnMut(String, String)| {
        let owner = field.strip_suffix(".name").unwrap_or(&field).to_owned();
        if n.is_empty() {
            fail(field, "must not be empty".into());
        } else if let Some(first) = names.get(n) {
            fail(field, format!("{n:?} is already the name of {first}"));
        } else {
            names.insert(n.to_owned(), owner);
        }
    };
    if spec.sources.is_empty() {
        fail("sources".into(), "a job needs at least one source".into());
    }
    if spec.sinks.is_empty() {
        fail("sinks".into(), "a job needs at least one sink".into());
    }
    for (i, s) in spec.sources.iter().enumerate() {
        let path = format!("sources[{i}]");
        name(&s.name, format!("{path}.name"), &mut fail);
        match (&s.file, &s.datagen) {
            (Some(_), Some(_)) | (None, None) => {
                fail(path.clone(), "set exactly one of file and datagen".into())
            }
            _ => {}
        }
        if s.file.is_some() && s.schema.is_empty() {
            fail(
                format!("{path}.schema"),
                "a file source needs its columns".into(),
            );
        }
        if let Some(g) = &s.datagen {
            check_generated_columns(g, &format!("{path}.datagen"), &mut fail);
            if g.rate.is_some() && !g.rate_schedule.is_empty() {
                fail(
                    format!("{path}.datagen"),
                    "set rate or rate_schedule, not both".into(),
                );
            }
            if g.rate == Some(0) {
                fail(
                    format!("{path}.datagen.rate"),
                    "must be at least 1 record per second".into(),
                );
            }
            for (j, _) in g.rate_schedule.iter().enumerate() {
                let phase = &g.rate_schedule[j];
                match phase.for_.millis() {
                    Err(e) => fail(format!("{path}.datagen.rate_schedule[{j}].for"), e),
                    Ok(0) => fail(
                        format!("{path}.datagen.rate_schedule[{j}].for"),
                        "must be greater than zero".into(),
                    ),
                    Ok(_) => {}
                }
            }
        }
        if let Some(w) = &s.watermark {
            if let Err(e) = w.max_out_of_orderness.millis() {
                fail(format!("{path}.watermark.max_out_of_orderness"), e);
            }
            if let Some(Err(e)) = w.idle_timeout.as_ref().map(super::Duration::millis) {
                fail(format!("{path}.watermark.idle_timeout"), e);
            }
        }
    }
    for (i, t) in spec.transforms.iter().enumerate() {
        let path = format!("transforms[{i}]");
        name(&t.name, format!("{path}.name"), &mut fail);
        let kinds = [
            t.window.is_some(),
            t.deduplicate.is_some(),
            t.top_n.is_some(),
            t.interval_join.is_some(),
            !t.union.is_empty(),
            t.throttle.is_some(),
        ];
        if kinds.iter().filter(|k| **k).count() > 1 {
            fail(
                path.clone(),
                "set at most one of window, deduplicate, top_n, interval_join, union and throttle"
                    .into(),
            );
        }
        if t.union.is_empty() && t.input.is_none() {
            fail(format!("{path}.input"), "is required".into());
        }
        if !t.union.is_empty() && t.input.is_some() {
            fail(
                format!("{path}.input"),
                "a union names its inputs in union, not input".into(),
            );
        }
        if let Some(w) = &t.window {
            let set = [w.tumble.is_some(), w.hop.is_some(), w.session.is_some()]
                .iter()
                .filter(|x| **x)
                .count();
            if set != 1 {
                fail(
                    format!("{path}.window"),
                    "set exactly one of tumble, hop and session".into(),
                );
            }
            for (field, d) in [("tumble", &w.tumble), ("session", &w.session)] {
                match d.as_ref().map(super::Duration::millis) {
                    Some(Err(e)) => fail(format!("{path}.window.{field}"), e),
                    Some(Ok(0)) => fail(
                        format!("{path}.window.{field}"),
                        "must be greater than zero".into(),
                    ),
                    _ => {}
                }
            }
            if let Some(h) = &w.hop {
                match (h.size.millis(), h.slide.millis()) {
                    (Err(e), _) => fail(format!("{path}.window.hop.size"), e),
                    (_, Err(e)) => fail(format!("{path}.window.hop.slide"), e),
                    (Ok(size), Ok(slide)) if slide <= 0 || size <= 0 || size % slide != 0 => fail(
                        format!("{path}.window.hop"),
                        "size and slide must be positive and size a multiple of slide".into(),
                    ),
                    _ => {}
                }
            }
            match w.allowed_lateness.as_ref().map(super::Duration::millis) {
                Some(Err(e)) => fail(format!("{path}.window.allowed_lateness"), e),
                Some(Ok(l)) if l > 0 && w.session.is_some() => fail(
                    format!("{path}.window.allowed_lateness"),
                    "is supported for tumble and hop windows, not yet for sessions".into(),
                ),
                _ => {}
            }
            if let Some(late) = &w.late_output {
                name(late, format!("{path}.window.late_output"), &mut fail);
            }
            if t.select.is_empty() {
                fail(
                    format!("{path}.select"),
                    "a window needs its aggregates in select (e.g. \"COUNT(*) AS n\")".into(),
                );
            }
        }
        if let Some(d) = &t.deduplicate
            && d.key.is_empty()
        {
            fail(
                format!("{path}.deduplicate.key"),
                "needs at least one column".into(),
            );
        }
        if let Some(Err(e)) = t
            .deduplicate
            .as_ref()
            .and_then(|d| d.ttl.as_ref())
            .map(super::Duration::millis)
        {
            fail(format!("{path}.deduplicate.ttl"), e);
        }
        if let Some(n) = &t.top_n
            && n.limit == 0
        {
            fail(format!("{path}.top_n.limit"), "must be at least 1".into());
        }
        if t.throttle == Some(0) {
            fail(
                format!("{path}.throttle"),
                "must be at least 1 record per second".into(),
            );
        }
        if t.parallelism == Some(0) {
            fail(format!("{path}.parallelism"), "must be at least 1".into());
        }
    }
    for (i, s) in spec.sinks.iter().enumerate() {
        let path = format!("sinks[{i}]");
        name(&s.name, format!("{path}.name"), &mut fail);
        let set = [s.file.is_some(), s.stdout.is_some(), s.blackhole.is_some()]
            .iter()
            .filter(|x| **x)
            .count();
        if set != 1 {
            fail(
                path.clone(),
                "set exactly one of file, stdout and blackhole".into(),
            );
        }
    }
    // Every input names a step, and the steps form no cycle.
    let producers: BTreeSet<&str> = spec
        .sources
        .iter()
        .map(|s| s.name.as_str())
        .chain(spec.transforms.iter().map(|t| t.name.as_str()))
        .chain(
            spec.transforms
                .iter()
                .filter_map(|t| t.window.as_ref()?.late_output.as_deref()),
        )
        .collect();
    let mut check_input = |path: String, input: &str| {
        if !producers.contains(input) {
            fail(
                path,
                format!("{input:?} is not the name of a source, a transform or a late_output"),
            );
        }
    };
    for (i, t) in spec.transforms.iter().enumerate() {
        if let Some(input) = &t.input {
            check_input(format!("transforms[{i}].input"), input);
        }
        for (j, u) in t.union.iter().enumerate() {
            check_input(format!("transforms[{i}].union[{j}]"), u);
        }
        if let Some(j) = &t.interval_join {
            check_input(format!("transforms[{i}].interval_join.right"), &j.right);
        }
    }
    for (i, s) in spec.sinks.iter().enumerate() {
        check_input(format!("sinks[{i}].input"), &s.input);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_is_listed_with_its_path() {
        let spec = r#"
sources:
  - name: s
    file: {path: x.csv, format: csv}
    schema: [{name: a, type: BIGINT}]
    watermark: {field: a, max_out_of_orderness: 2x}
transforms:
  - name: t
    input: nowhere
    window: {tumble: 1x}
    select: ["COUNT(*) AS n"]
    colour: red
sinks:
  - name: out
    input: t
"#;
        let problems = JobSpec::parse(spec).unwrap_err();
        let paths: Vec<&str> = problems.0.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "transforms[0].colour",
                "sources[0].watermark.max_out_of_orderness",
                "transforms[0].window.tumble",
                "sinks[0]",
                "transforms[0].input"
            ]
        );
        assert!(
            problems
                .to_string()
                .contains("transforms[0].window.tumble: \"1x\" is not a duration")
        );
    }

    #[test]
    fn wrong_types_name_their_path() {
        let problems =
            JobSpec::parse("sources: [{name: s, datagen: {count: many, columns: []}}]\nsinks: []")
                .unwrap_err();
        assert_eq!(problems.0[0].path, "sources[0].datagen.count");
    }
}
