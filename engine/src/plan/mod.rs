//! From a checked [`JobSpec`] to a dataflow graph: vertices (sources, operator chains,
//! sinks) with their parallelism and schemas, and edges that say how rows move between
//! subtasks. Every expression is compiled against its input's columns here, so an unknown
//! column or a type error is reported by path before anything runs.
//!
//! `builder.rs` holds the graph under construction; sources, sinks and each kind of
//! transform are built in their own file.

mod builder;
mod calc;
mod deduplicate;
mod interval_join;
mod sinks;
mod sources;
mod throttle;
mod top_n;
mod union;
mod window;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use sources::{due_after, due_by};

use crate::batch::SchemaRef;
use crate::io::generate;
use crate::ops::Operator;
use crate::spec::{FileFormat, JobSpec, Violations};
use builder::Builder;

/// How rows of an edge find their subtask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Partition {
    /// Subtask i sends to subtask i (same parallelism).
    Forward,
    /// By the hash of these columns (keyed state's hash ranges).
    Hash(Vec<usize>),
    /// Everything to subtask 0.
    Single,
}

/// An input of a vertex.
#[derive(Debug, Clone)]
pub struct Edge {
    /// The producing vertex.
    pub from: usize,
    /// Which of its outputs: 0 the main one, 1 the late-data side output of a window.
    pub port: usize,
    /// How rows are routed.
    pub partition: Partition,
}

/// Makes one operator per subtask.
pub type OpFactory = Arc<dyn Fn() -> Box<dyn Operator> + Send + Sync>;

/// What a vertex is.
#[derive(Clone)]
pub enum VertexKind {
    /// A file read by one subtask.
    File {
        /// Path.
        path: String,
        /// Format.
        format: FileFormat,
        /// Rows per batch.
        batch_rows: usize,
    },
    /// Generated records.
    Datagen {
        /// What it generates.
        generator: Arc<generate::Generator>,
        /// Seed of random values.
        seed: u64,
        /// How many.
        count: Option<u64>,
        /// Rate phases `(records per second, for how long in seconds)`, all subtasks
        /// together; the last rate holds afterwards. Empty: as fast as possible.
        rate: Vec<(f64, f64)>,
    },
    /// Kafka topics.
    Kafka {
        /// The source's spec.
        spec: Arc<crate::spec::KafkaSource>,
        /// The source's name.
        name: String,
        /// Per declared column: the record metadata it reads (`None`: the value).
        metadata: Arc<[Option<crate::spec::KafkaMetadata>]>,
    },
    /// Operators only.
    Ops,
    /// A sink.
    Sink(SinkKind),
}

/// Called with every batch a [`SinkKind::Collect`] sink receives.
pub type Collector = Arc<dyn Fn(&arrow::record_batch::RecordBatch) + Send + Sync>;

/// Sink kinds.
#[derive(Clone)]
pub enum SinkKind {
    /// A file.
    File(String, FileFormat),
    /// A Kafka topic.
    Kafka {
        /// The sink's spec.
        spec: Arc<crate::spec::KafkaSink>,
        /// The sink's name.
        name: String,
        /// The key column.
        key: Option<usize>,
    },
    /// Standard output.
    Stdout,
    /// Counted and dropped.
    Blackhole,
    /// Handed to a function (for programs embedding the engine: tests, benchmarks).
    Collect(Collector),
}

impl std::fmt::Debug for SinkKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SinkKind::File(p, fmt) => write!(f, "File({p}, {fmt:?})"),
            SinkKind::Kafka { spec, .. } => write!(f, "Kafka({})", spec.topic),
            SinkKind::Stdout => f.write_str("Stdout"),
            SinkKind::Blackhole => f.write_str("Blackhole"),
            SinkKind::Collect(_) => f.write_str("Collect"),
        }
    }
}

impl Plan {
    /// Hands every sink's rows to `collector` instead of writing them, keeping the sinks'
    /// parallelism and partitioning: the same topology runs (the benchmark verifies what it
    /// times). `collector` is called from every sink subtask.
    pub fn tap_sinks(&mut self, collector: Collector) {
        for v in &mut self.vertices {
            if let VertexKind::Sink(kind) = &mut v.kind {
                *kind = SinkKind::Collect(collector.clone());
            }
        }
    }

    /// Replaces every sink with `collector` (one subtask receiving all rows).
    pub fn collect_sinks(&mut self, collector: Collector) {
        for v in &mut self.vertices {
            if let VertexKind::Sink(kind) = &mut v.kind {
                *kind = SinkKind::Collect(collector.clone());
                v.parallelism = 1;
                for e in &mut v.inputs {
                    e.partition = Partition::Single;
                }
            }
        }
    }
}

/// A vertex: a source, an operator chain or a sink, run as `parallelism` subtasks.
#[derive(Clone)]
pub struct Vertex {
    /// Name (the spec step's, or joined names of fused steps).
    pub name: String,
    /// Subtasks.
    pub parallelism: usize,
    /// Kind.
    pub kind: VertexKind,
    /// Inputs, in the operators' input order.
    pub inputs: Vec<Edge>,
    /// The operators run on each subtask, in order (after reading, for sources).
    pub chain: Vec<OpFactory>,
    /// Each operator's identity in snapshots (its step name), parallel to `chain`.
    pub uids: Vec<String>,
    /// The identity of the source or sink itself in snapshots (`source:x`, `sink:y`).
    pub uid: String,
    /// Schema of what the vertex emits.
    pub schema: SchemaRef,
    /// Source event time: column and out-of-orderness.
    pub watermark: Option<(usize, i64)>,
    /// For sources: after this long without records a subtask declares itself idle, so it
    /// no longer holds back the watermark downstream.
    pub idle_timeout: Option<std::time::Duration>,
    /// For sources: the declared columns, as read (before any fused operator).
    pub source_schema: SchemaRef,
    /// Whether `--vertex-parallelism` may set its parallelism: generated sources and the
    /// vertices headed by a keyed or rate-bound step (window, deduplicate, top-N, interval
    /// join, throttle). Others are fixed by their kind (a file or stdout sink, a CSV source
    /// or a union runs as one subtask; a filter or blackhole follows its input).
    pub scalable: bool,
}

/// The dataflow graph.
pub struct Plan {
    /// Vertices in topological order.
    pub vertices: Vec<Vertex>,
    /// Each step's output schema, by step name (a window's late output and the filter
    /// before a window's exchange, `<step>.where`, included).
    pub outputs: BTreeMap<String, SchemaRef>,
}

fn problem(path: String, reason: impl Into<String>) -> crate::spec::Violation {
    crate::spec::Violation {
        path,
        reason: reason.into(),
    }
}

impl Plan {
    /// Builds the graph of `spec` with `parallelism` as the default.
    pub fn build(spec: &JobSpec, parallelism: usize) -> Result<Plan, Violations> {
        Plan::build_with(spec, parallelism, &BTreeMap::new())
    }

    /// Builds the graph of `spec` with `parallelism` as the default and the parallelism of
    /// single scalable vertices set by id (`source:<name>` or the heading step's name), as
    /// the autoscaler asks. An id that names no scalable vertex is a problem.
    pub fn build_with(
        spec: &JobSpec,
        parallelism: usize,
        vertex_parallelism: &BTreeMap<String, u32>,
    ) -> Result<Plan, Violations> {
        let mut spec = spec.clone();
        let mut source_parallelism = BTreeMap::new();
        let mut bad = Vec::new();
        for (id, n) in vertex_parallelism {
            let path = format!("--vertex-parallelism {id}");
            if *n == 0 {
                bad.push(problem(path, "must be at least 1"));
                continue;
            }
            let source = id.strip_prefix("source:").and_then(|name| {
                spec.sources
                    .iter()
                    .find(|s| s.name == name && s.is_scalable())
            });
            if let Some(s) = source {
                source_parallelism.insert(s.name.clone(), *n as usize);
            } else if let Some(t) = spec
                .transforms
                .iter_mut()
                .find(|t| &t.name == id && t.is_scalable())
            {
                t.parallelism = Some(*n);
            } else {
                let scalable: Vec<String> = spec
                    .sources
                    .iter()
                    .filter(|s| s.is_scalable())
                    .map(|s| format!("source:{}", s.name))
                    .chain(
                        spec.transforms
                            .iter()
                            .filter(|t| t.is_scalable())
                            .map(|t| t.name.clone()),
                    )
                    .collect();
                bad.push(problem(
                    path,
                    format!(
                        "no vertex with this id can be scaled (scalable: {})",
                        if scalable.is_empty() {
                            "none".into()
                        } else {
                            scalable.join(", ")
                        }
                    ),
                ));
            }
        }
        if !bad.is_empty() {
            return Err(Violations(bad));
        }
        let spec = &spec;
        let mut consumers: BTreeMap<String, usize> = BTreeMap::new();
        for t in &spec.transforms {
            for i in t.inputs() {
                *consumers.entry(i.clone()).or_default() += 1;
            }
        }
        for s in &spec.sinks {
            *consumers.entry(s.input.clone()).or_default() += 1;
        }
        let mut b = Builder {
            parallelism: parallelism.max(1),
            source_parallelism,
            vertices: Vec::new(),
            outputs: BTreeMap::new(),
            ports: BTreeMap::new(),
            consumers,
            problems: Vec::new(),
        };
        for (i, s) in spec.sources.iter().enumerate() {
            b.source(i, s);
        }
        // Transforms in dependency order.
        let mut done = vec![false; spec.transforms.len()];
        loop {
            let mut progressed = false;
            for (i, t) in spec.transforms.iter().enumerate() {
                if done[i] {
                    continue;
                }
                let needs: Vec<&String> = t.inputs().collect();
                if needs.iter().all(|n| b.outputs.contains_key(*n)) {
                    b.transform(i, t);
                    done[i] = true;
                    progressed = true;
                }
            }
            if !progressed {
                break;
            }
        }
        for (i, t) in spec.transforms.iter().enumerate() {
            if !done[i] && b.problems.is_empty() {
                b.problems.push(problem(
                    format!("transforms[{i}]"),
                    format!(
                        "{:?} is part of a cycle or depends on a step that failed",
                        t.name
                    ),
                ));
            }
        }
        for (i, s) in spec.sinks.iter().enumerate() {
            b.sink(i, s);
        }
        for v in &mut b.vertices {
            v.scalable = match &v.kind {
                VertexKind::Datagen { .. } | VertexKind::Kafka { .. } => spec
                    .sources
                    .iter()
                    .any(|s| format!("source:{}", s.name) == v.uid && s.is_scalable()),
                VertexKind::Ops => spec
                    .transforms
                    .iter()
                    .any(|t| t.name == v.uid && t.is_scalable()),
                _ => false,
            };
        }
        if b.problems.is_empty() {
            Ok(Plan {
                vertices: b.vertices,
                outputs: b
                    .outputs
                    .into_iter()
                    .map(|(name, (_, schema))| (name, schema))
                    .collect(),
            })
        } else {
            Err(Violations(b.problems))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Plan, due_after, due_by};
    use std::collections::BTreeMap;
    use std::time::Duration;

    #[test]
    fn vertex_parallelism_sets_scalable_vertices_and_refuses_others() {
        let spec = crate::spec::JobSpec::parse(
            "sources: [{name: gen, datagen: {rate: 10, columns: [{name: v, expr: id}]}}]
transforms: [{name: slow, input: gen, throttle: 5}, {name: kept, input: slow, where: 'v > 0'}]
sinks: [{name: out, input: kept, file: {path: /tmp/x, format: csv}}]",
        )
        .expect("a valid spec");
        let shape = |overrides: &[(&str, u32)]| {
            let o: BTreeMap<String, u32> = overrides
                .iter()
                .map(|(k, v)| ((*k).to_owned(), *v))
                .collect();
            Plan::build_with(&spec, 2, &o).map(|p| {
                p.vertices
                    .iter()
                    .map(|v| (v.uid.clone(), v.parallelism, v.scalable))
                    .collect::<Vec<_>>()
            })
        };
        assert_eq!(
            shape(&[]).expect("plans"),
            vec![
                ("source:gen".into(), 2, true),
                ("slow".into(), 2, true),
                ("sink:out".into(), 1, false),
            ]
        );
        // The filter fuses into the throttle's vertex and follows its parallelism.
        assert_eq!(
            shape(&[("slow", 3), ("source:gen", 1)]).expect("plans"),
            vec![
                ("source:gen".into(), 1, true),
                ("slow".into(), 3, true),
                ("sink:out".into(), 1, false),
            ]
        );
        for bad in [("sink:out", 2), ("kept", 2), ("nope", 2), ("slow", 0)] {
            let problems = shape(&[bad]).expect_err("refused").0;
            assert_eq!(problems[0].path, format!("--vertex-parallelism {}", bad.0));
        }
    }

    /// What `/v1/job` reports as scalable (the autoscaler acts on it) is what
    /// `--vertex-parallelism` accepts, for every kind of source and step.
    #[test]
    fn every_vertex_reported_scalable_takes_vertex_parallelism_and_no_other() {
        let spec = crate::spec::JobSpec::parse(
            r#"sources:
  - {name: gen, datagen: {rate: 10, columns: [{name: v, expr: id}]}}
  - name: topic
    kafka: {bootstrap_servers: "localhost:9092", topics: [t], format: json}
    schema: [{name: v, type: BIGINT}]
  - name: file
    file: {path: /tmp/x.csv, format: csv}
    schema: [{name: v, type: BIGINT}]
transforms:
  - {name: all, union: [gen, topic, file]}
  - {name: slow, input: all, throttle: 5}
sinks: [{name: out, input: slow, kafka: {bootstrap_servers: "localhost:9092", topic: o, format: json}}]"#,
        )
        .expect("a valid spec");
        let plan = Plan::build(&spec, 2).expect("plans");
        let scalable: Vec<&str> = plan
            .vertices
            .iter()
            .filter(|v| v.scalable)
            .map(|v| v.uid.as_str())
            .collect();
        assert_eq!(scalable, ["source:gen", "source:topic", "slow"]);
        for v in &plan.vertices {
            let set = BTreeMap::from([(v.uid.clone(), 3)]);
            match Plan::build_with(&spec, 2, &set) {
                Ok(p) => {
                    assert!(v.scalable, "{} is not reported scalable but was set", v.uid);
                    let got = p.vertices.iter().find(|x| x.uid == v.uid).unwrap();
                    assert_eq!(got.parallelism, 3, "{}", v.uid);
                }
                Err(e) => assert!(!v.scalable, "{} is reported scalable but: {e}", v.uid),
            }
        }
    }

    #[test]
    fn a_rate_schedule_spaces_records_phase_by_phase() {
        let phases = [(1000.0, 60.0), (5000.0, f64::INFINITY)];
        assert_eq!(due_after(&phases, 500.0), Some(Duration::from_millis(500)));
        assert_eq!(due_after(&phases, 60_000.0), Some(Duration::from_secs(60)));
        assert_eq!(due_after(&phases, 65_000.0), Some(Duration::from_secs(61)));
        // After the last phase its rate holds.
        assert_eq!(
            due_after(&[(10.0, 1.0)], 30.0),
            Some(Duration::from_secs(3))
        );
        assert_eq!(due_after(&[], 30.0), None);
        // A pause: nothing more is due until it ends; a final pause never ends.
        let paused = [(10.0, 1.0), (0.0, 5.0), (10.0, 1.0)];
        assert_eq!(due_after(&paused, 10.0), Some(Duration::from_secs(6)));
        assert_eq!(due_by(&paused, 3.0), 10.0);
        assert_eq!(due_by(&paused, 6.5), 15.0);
        assert_eq!(
            due_after(&[(10.0, 1.0), (0.0, 1.0)], 10.0),
            Some(Duration::MAX)
        );
        assert_eq!(due_by(&[], 1.0), f64::INFINITY);
    }
}
