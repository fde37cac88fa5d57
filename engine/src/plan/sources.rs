//! Source vertices: files, Kafka topics and generated records, with their watermarks; the rate schedule
//! of a generated source.

use std::sync::Arc;

use super::builder::Builder;
use super::{Vertex, VertexKind, problem};
use crate::expr::{self, Scope, Ty};
use crate::io::{generate, source};
use crate::spec::{FileFormat, SourceKind};

impl Builder {
    pub(super) fn source(&mut self, i: usize, s: &crate::spec::SourceSpec) {
        let path = format!("sources[{i}]");
        let (kind, schema, parallelism) = match s.kind() {
            Some(SourceKind::File(f)) => {
                (
                    VertexKind::File {
                        path: f.path.clone(),
                        format: f.format,
                        batch_rows: f.batch_rows.map_or(source::BATCH_ROWS, |b| b as usize),
                    },
                    source::schema(&s.schema),
                    // Parquet row groups are split between subtasks; a CSV or JSON file is read
                    // by one, in order (its arrival order decides which records are late).
                    if f.format == FileFormat::Parquet {
                        self.parallelism
                    } else {
                        1
                    },
                )
            }
            Some(SourceKind::Datagen(g)) => {
                let generator = self.generator(&format!("{path}.datagen"), g);
                let names: Vec<String> = g.columns.iter().map(|c| c.name.clone()).collect();
                let schema = generator.schema(&names);
                (
                    VertexKind::Datagen {
                        generator: Arc::new(generator),
                        seed: g.seed.unwrap_or(0),
                        count: g.count,
                        rate: rate_phases(g),
                    },
                    schema,
                    self.source_parallelism
                        .get(&s.name)
                        .copied()
                        .unwrap_or(self.parallelism),
                )
            }
            Some(SourceKind::Kafka(k)) => (
                VertexKind::Kafka {
                    spec: Arc::new(k.clone()),
                    name: s.name.clone(),
                    metadata: s.schema.iter().map(|f| f.metadata.clone()).collect(),
                },
                source::schema(&s.schema),
                // Partitions are spread over the subtasks.
                self.source_parallelism
                    .get(&s.name)
                    .copied()
                    .unwrap_or(self.parallelism),
            ),
            None => return,
        };
        let watermark = match &s.watermark {
            Some(w) => match schema.fields().iter().position(|f| f.name() == &w.field) {
                Some(col) if schema.field(col).data_type() == &expr::arrow_type(Ty::Int) => {
                    Some((col, w.max_out_of_orderness.millis().unwrap_or(0)))
                }
                Some(_) => {
                    self.problems.push(problem(
                        format!("{path}.watermark.field"),
                        format!("{:?} must be a BIGINT of epoch milliseconds", w.field),
                    ));
                    None
                }
                None => {
                    self.problems.push(problem(
                        format!("{path}.watermark.field"),
                        format!("{:?} is not a column of this source", w.field),
                    ));
                    None
                }
            },
            None => None,
        };
        self.vertices.push(Vertex {
            name: format!("source:{}", s.name),
            parallelism,
            kind,
            inputs: vec![],
            chain: vec![],
            uids: vec![],
            uid: format!("source:{}", s.name),
            schema: schema.clone(),
            watermark,
            idle_timeout: s
                .watermark
                .as_ref()
                .and_then(|w| w.idle_timeout.as_ref()?.millis().ok())
                .map(|ms| std::time::Duration::from_millis(ms.max(0) as u64)),
            source_schema: schema.clone(),
            scalable: false,
        });
        self.outputs
            .insert(s.name.clone(), (self.vertices.len() - 1, schema));
    }

    /// What a generated source produces; problems are recorded by path.
    fn generator(&mut self, path: &str, g: &crate::spec::DatagenSource) -> generate::Generator {
        use generate::{Column, Distribution};
        if let Some(n) = &g.nexmark {
            return generate::Generator::Nexmark {
                table: n.table,
                events_per_second: n.events_per_second.unwrap_or(10_000),
            };
        }
        let scope = Scope::new(strom_jobspec::typing::generator_input());
        let mut columns = Vec::new();
        for (j, c) in g.columns.iter().enumerate() {
            let at = format!("{path}.columns[{j}]");
            let column = if let Some(r) = &c.random {
                let dist = if let Some(u) = &r.uniform {
                    Ok(Distribution::Uniform(u.min, u.max))
                } else if let Some(u) = &r.uniform_int {
                    Ok(Distribution::UniformInt(u.min as i64, u.max as i64))
                } else if let Some(n) = &r.normal {
                    rand_distr::Normal::new(n.mean, n.stddev)
                        .map(Distribution::Normal)
                        .map_err(|e| (format!("{at}.random.normal"), e.to_string()))
                } else if let Some(z) = &r.zipf {
                    rand_distr::Zipf::new(z.max as f64, z.exponent)
                        .map(Distribution::Zipf)
                        .map_err(|e| (format!("{at}.random.zipf"), e.to_string()))
                } else if let Some(t) = &r.text {
                    Ok(Distribution::Text(t.min as usize, t.max as usize))
                } else {
                    Ok(Distribution::OneOf(r.one_of.clone().into()))
                };
                match dist {
                    Ok(d) => Column::Random(d, j as u64),
                    Err((p, e)) => {
                        self.problems.push(problem(p, e));
                        continue;
                    }
                }
            } else {
                let text = c.expr.as_deref().unwrap_or("NULL");
                match expr::parse_sql(text).and_then(|e| scope.compile(&e)) {
                    Ok(e) => Column::Expr(e),
                    Err(e) => {
                        self.problems.push(problem(format!("{at}.expr"), e));
                        continue;
                    }
                }
            };
            columns.push(column);
        }
        generate::Generator::Columns(columns)
    }
}

fn rate_phases(g: &crate::spec::DatagenSource) -> Vec<(f64, f64)> {
    match g.rate {
        Some(r) => vec![(r as f64, f64::INFINITY)],
        None => g
            .rate_schedule
            .iter()
            .map(|p| (p.rate as f64, p.for_.millis().unwrap_or(0) as f64 / 1000.0))
            .collect(),
    }
}

/// When, after the start, record number `records` (counting from 0) is due under `phases`
/// (rates in records per second, durations in seconds; the last rate holds after its phase;
/// a rate of 0 is a pause). None: no limit. `Duration::MAX`: never (paused for good).
pub fn due_after(phases: &[(f64, f64)], records: f64) -> Option<std::time::Duration> {
    let (mut left, mut at) = (records, 0.0f64);
    for (i, (rate, secs)) in phases.iter().enumerate() {
        let last = i + 1 == phases.len();
        if left <= 0.0 && *rate > 0.0 {
            return Some(std::time::Duration::from_secs_f64(at));
        }
        if last {
            return Some(if *rate > 0.0 {
                std::time::Duration::from_secs_f64(at + left / rate)
            } else {
                std::time::Duration::MAX
            });
        }
        let capacity = rate * secs;
        if left < capacity {
            return Some(std::time::Duration::from_secs_f64(at + left / rate));
        }
        left -= capacity;
        at += secs;
    }
    None
}

/// How many records are due `secs` seconds after the start under `phases` (see
/// [`due_after`]); infinite without phases.
pub fn due_by(phases: &[(f64, f64)], secs: f64) -> f64 {
    let (mut total, mut t) = (0.0, secs);
    for (i, (rate, len)) in phases.iter().enumerate() {
        if i + 1 == phases.len() || t <= *len {
            return total + rate * t;
        }
        total += rate * len;
        t -= len;
    }
    f64::INFINITY
}
