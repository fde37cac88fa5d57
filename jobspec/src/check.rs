//! The rules that tie a job's steps together: names unique, inputs naming steps, one kind per
//! step, durations and distributions that make sense, SQL that parses. Every problem is
//! listed with its path.

use std::collections::{BTreeMap, BTreeSet};

use crate::{JobSpec, Violation, sql};

/// The most hopping windows one record may fall in (`size / slide`).
pub const MAX_HOP_WINDOWS: i64 = 10_000;

/// The longest generated text column, in characters.
pub const MAX_TEXT_LENGTH: u32 = 65_536;

/// The columns of a generated source: a Nexmark table or columns, each with exactly one of
/// `expr` and `random`, and distributions that make sense.
fn check_generated_columns(
    g: &crate::DatagenSource,
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
            } else if field == "text" && range.max > MAX_TEXT_LENGTH as f64 {
                fail(
                    format!("{at}.text.max"),
                    format!("must be at most {MAX_TEXT_LENGTH} characters"),
                );
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

pub(crate) fn check(spec: &JobSpec, problems: &mut Vec<Violation>) {
    let mut fail = |path: String, reason: String| problems.push(Violation { path, reason });
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
        let kinds = [s.file.is_some(), s.datagen.is_some(), s.kafka.is_some()];
        if kinds.iter().filter(|k| **k).count() != 1 {
            fail(
                path.clone(),
                "set exactly one of file, datagen and kafka".into(),
            );
        }
        if (s.file.is_some() || s.kafka.is_some()) && s.schema.is_empty() {
            fail(
                format!("{path}.schema"),
                "a file or Kafka source needs its columns".into(),
            );
        }
        if let Some(k) = &s.kafka {
            super::kafka::check_source(k, s, &format!("{path}.kafka"), &mut fail);
        }
        for (j, f) in s.schema.iter().enumerate() {
            let Some(m) = &f.metadata else { continue };
            let at = format!("{path}.schema[{j}].metadata");
            if s.kafka.is_none() {
                fail(at, "only a Kafka source's records have metadata".into());
            } else if !m.fits(f.type_) {
                fail(
                    at,
                    format!(
                        "{} does not fit a {} column (key, topic, header: STRING; \
                         partition: INT or BIGINT; offset, timestamp: BIGINT)",
                        String::from(m.clone()),
                        serde_json::to_value(f.type_)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_owned))
                            .unwrap_or_default()
                    ),
                );
            }
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
                    Err(e) => fail(
                        format!("{path}.datagen.rate_schedule[{j}].for"),
                        e.to_string(),
                    ),
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
                fail(
                    format!("{path}.watermark.max_out_of_orderness"),
                    e.to_string(),
                );
            }
            if let Some(Err(e)) = w.idle_timeout.as_ref().map(crate::Duration::millis) {
                fail(format!("{path}.watermark.idle_timeout"), e.to_string());
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
                match d.as_ref().map(crate::Duration::millis) {
                    Some(Err(e)) => fail(format!("{path}.window.{field}"), e.to_string()),
                    Some(Ok(0)) => fail(
                        format!("{path}.window.{field}"),
                        "must be greater than zero".into(),
                    ),
                    _ => {}
                }
            }
            if let Some(h) = &w.hop {
                match (h.size.millis(), h.slide.millis()) {
                    (Err(e), _) => fail(format!("{path}.window.hop.size"), e.to_string()),
                    (_, Err(e)) => fail(format!("{path}.window.hop.slide"), e.to_string()),
                    (Ok(size), Ok(slide)) if slide <= 0 || size <= 0 || size % slide != 0 => fail(
                        format!("{path}.window.hop"),
                        "size and slide must be positive and size a multiple of slide".into(),
                    ),
                    // Each record lands in size / slide windows: a 24h window sliding every
                    // millisecond would be 86 400 000 of them per record.
                    (Ok(size), Ok(slide)) if size / slide > MAX_HOP_WINDOWS => fail(
                        format!("{path}.window.hop"),
                        format!(
                            "size is {} times slide; at most {MAX_HOP_WINDOWS} windows may overlap (use a longer slide)",
                            size / slide
                        ),
                    ),
                    _ => {}
                }
            }
            match w.allowed_lateness.as_ref().map(crate::Duration::millis) {
                Some(Err(e)) => fail(format!("{path}.window.allowed_lateness"), e.to_string()),
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
            .map(crate::Duration::millis)
        {
            fail(format!("{path}.deduplicate.ttl"), e.to_string());
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
        let set = [
            s.file.is_some(),
            s.kafka.is_some(),
            s.stdout.is_some(),
            s.blackhole.is_some(),
        ]
        .iter()
        .filter(|x| **x)
        .count();
        if set != 1 {
            fail(
                path.clone(),
                "set exactly one of file, kafka, stdout and blackhole".into(),
            );
        }
        if let Some(k) = &s.kafka {
            super::kafka::check_sink(k, &format!("{path}.kafka"), &mut fail);
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
    check_sql(spec, problems);
}

/// Every SQL text parses: generated columns, conditions, select items, orderings. (Whether
/// its columns exist and its types fit is the engine's planner's to say: it knows each step's
/// columns.)
fn check_sql(spec: &JobSpec, problems: &mut Vec<Violation>) {
    let mut parses = |path: String, result: Result<(), String>| {
        if let Err(reason) = result {
            problems.push(Violation { path, reason });
        }
    };
    for (i, s) in spec.sources.iter().enumerate() {
        for (j, c) in s.datagen.iter().flat_map(|g| g.columns.iter().enumerate()) {
            if let Some(e) = &c.expr {
                parses(
                    format!("sources[{i}].datagen.columns[{j}].expr"),
                    sql::parse_expr(e).map(drop),
                );
            }
        }
    }
    for (i, t) in spec.transforms.iter().enumerate() {
        if let Some(w) = &t.where_ {
            parses(
                format!("transforms[{i}].where"),
                sql::parse_expr(w).map(drop),
            );
        }
        for (j, item) in t.select.iter().enumerate() {
            parses(
                format!("transforms[{i}].select[{j}]"),
                sql::parse_select_item(item).map(drop),
            );
        }
        if let Some(n) = &t.top_n {
            parses(
                format!("transforms[{i}].top_n.order_by"),
                sql::parse_order_by(&n.order_by).map(drop),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

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
    fn hostile_sizes_are_refused_by_path() {
        let spec = r#"
sources:
  - name: s
    datagen:
      count: 1
      columns:
        - {name: t, random: {text: {min: 0, max: 100000000}}}
        - {name: ts, expr: "id"}
    watermark: {field: ts, max_out_of_orderness: 1s}
transforms:
  - name: w
    input: s
    window: {hop: {size: 24h, slide: 1ms}}
    select: ["COUNT(*) AS n"]
sinks:
  - name: out
    input: w
"#;
        let problems = JobSpec::parse(spec).unwrap_err();
        let text = problems.to_string();
        assert!(
            text.contains(
                "sources[0].datagen.columns[0].random.text.max: must be at most 65536 characters"
            ),
            "{text}"
        );
        assert!(
            text.contains("transforms[0].window.hop: size is 86400000 times slide; at most 10000 windows may overlap"),
            "{text}"
        );
    }

    #[test]
    fn wrong_types_name_their_path() {
        let problems =
            JobSpec::parse("sources: [{name: s, datagen: {count: many, columns: []}}]\nsinks: []")
                .unwrap_err();
        assert_eq!(problems.0[0].path, "sources[0].datagen.count");
    }

    #[test]
    fn sql_that_does_not_parse_is_named_by_path() {
        let problems = JobSpec::parse(
            r#"
sources:
  - name: s
    datagen: {count: 1, columns: [{name: a, expr: "id +"}]}
transforms:
  - {name: t, input: s, where: "a = = 1", select: ["a AS"]}
  - {name: u, input: t, key_by: [a], window: {tumble: 1s}, select: ["COUNT(*) AS n"]}
  - {name: v, input: u, top_n: {limit: 1, order_by: "n DESC DESC"}}
sinks:
  - {name: out, input: v, stdout: {}}
"#,
        )
        .unwrap_err();
        let paths: Vec<&str> = problems.0.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "sources[0].datagen.columns[0].expr",
                "transforms[0].where",
                "transforms[0].select[0]",
                "transforms[2].top_n.order_by"
            ],
            "{problems}"
        );
        assert!(problems.0[1].reason.contains("\"a = = 1\""), "{problems}");
    }
}
