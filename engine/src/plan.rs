//! From a checked [`JobSpec`] to a dataflow graph: vertices (sources, operator chains,
//! sinks) with their parallelism and schemas, and edges that say how rows move between
//! subtasks. Every expression is compiled against its input's columns here, so an unknown
//! column or a type error is reported by path before anything runs.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::expr::{self, Expr, Scope, Ty};
use crate::io::{generate, source};
use crate::ops::window::OutItem;
use crate::ops::{self, AggKind, Aggregates, Operator};
use crate::runtime::SchemaRef;
use crate::spec::{FileFormat, JobSpec, TransformSpec, Violations};

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
            SinkKind::Stdout => f.write_str("Stdout"),
            SinkKind::Blackhole => f.write_str("Blackhole"),
            SinkKind::Collect(_) => f.write_str("Collect"),
        }
    }
}

impl Plan {
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
}

struct Builder {
    parallelism: usize,
    /// Parallelism of single generated sources, by name (from `--vertex-parallelism`).
    source_parallelism: BTreeMap<String, usize>,
    vertices: Vec<Vertex>,
    /// Step name → (vertex, schema of that step's output).
    outputs: BTreeMap<String, (usize, SchemaRef)>,
    /// Step name → output port of its vertex, for side outputs (absent: 0).
    ports: BTreeMap<String, usize>,
    consumers: BTreeMap<String, usize>,
    problems: Vec<crate::spec::Violation>,
}

/// Steps whose vertex parallelism can be set: keyed and rate-bound ones.
fn scalable_step(t: &TransformSpec) -> bool {
    t.window.is_some()
        || t.deduplicate.is_some()
        || t.top_n.is_some()
        || t.interval_join.is_some()
        || t.throttle.is_some()
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
                    .find(|s| s.name == name && s.datagen.is_some())
            });
            if let Some(s) = source {
                source_parallelism.insert(s.name.clone(), *n as usize);
            } else if let Some(t) = spec
                .transforms
                .iter_mut()
                .find(|t| &t.name == id && scalable_step(t))
            {
                t.parallelism = Some(*n);
            } else {
                let scalable: Vec<String> = spec
                    .sources
                    .iter()
                    .filter(|s| s.datagen.is_some())
                    .map(|s| format!("source:{}", s.name))
                    .chain(
                        spec.transforms
                            .iter()
                            .filter(|t| scalable_step(t))
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
            for i in t
                .input
                .iter()
                .chain(t.union.iter())
                .chain(t.interval_join.iter().map(|j| &j.right))
            {
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
                let needs: Vec<&String> = t
                    .input
                    .iter()
                    .chain(t.union.iter())
                    .chain(t.interval_join.iter().map(|j| &j.right))
                    .collect();
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
                VertexKind::Datagen { .. } => true,
                VertexKind::Ops => spec
                    .transforms
                    .iter()
                    .any(|t| t.name == v.uid && scalable_step(t)),
                _ => false,
            };
        }
        if b.problems.is_empty() {
            Ok(Plan {
                vertices: b.vertices,
            })
        } else {
            Err(Violations(b.problems))
        }
    }
}

impl Builder {
    fn source(&mut self, i: usize, s: &crate::spec::SourceSpec) {
        let path = format!("sources[{i}]");
        let (kind, schema, parallelism) = if let Some(f) = &s.file {
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
        } else if let Some(g) = &s.datagen {
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
        } else {
            return;
        };
        let watermark = match &s.watermark {
            Some(w) => match schema.fields().iter().position(|f| f.name() == &w.field) {
                Some(col) if schema.field(col).data_type() == &Ty::Int.arrow() => {
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
        use crate::spec::NexmarkTable;
        use generate::{Column, Distribution};
        if let Some(n) = &g.nexmark {
            return generate::Generator::Nexmark {
                table: match n.table {
                    NexmarkTable::Person => generate::Table::Person,
                    NexmarkTable::Auction => generate::Table::Auction,
                    NexmarkTable::Bid => generate::Table::Bid,
                },
                events_per_second: n.events_per_second.unwrap_or(10_000),
            };
        }
        let id_schema = source::Datagen::id_schema();
        let scope = Scope::new(&id_schema);
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

    /// An edge from step `name`'s output.
    fn edge(&self, name: &str, partition: Partition) -> Edge {
        Edge {
            from: self.outputs[name].0,
            port: self.ports.get(name).copied().unwrap_or(0),
            partition,
        }
    }

    /// A vertex for `name` fed by `inputs`, or (for a single forward input with no other
    /// consumer) the input's own vertex, extended.
    fn attach(
        &mut self,
        name: &str,
        input: Option<&str>,
        parallelism: usize,
        factory: OpFactory,
        schema: SchemaRef,
        edges: Vec<Edge>,
    ) {
        if let Some(input) = input {
            let (v, _) = self.outputs[input].clone();
            let fusable = edges.len() == 1
                && edges[0].partition == Partition::Forward
                && edges[0].port == 0
                && self.vertices[v].parallelism == parallelism
                && self.consumers.get(input).copied().unwrap_or(0) == 1
                && !matches!(self.vertices[v].kind, VertexKind::Sink(_));
            if fusable {
                let vertex = &mut self.vertices[v];
                vertex.chain.push(factory);
                vertex.uids.push(name.to_owned());
                vertex.name = format!("{} -> {name}", vertex.name);
                vertex.schema = schema.clone();
                self.outputs.insert(name.to_owned(), (v, schema));
                return;
            }
        }
        self.vertices.push(Vertex {
            name: name.to_owned(),
            parallelism,
            kind: VertexKind::Ops,
            inputs: edges,
            chain: vec![factory],
            uids: vec![name.to_owned()],
            uid: name.to_owned(),
            schema: schema.clone(),
            watermark: None,
            idle_timeout: None,
            source_schema: schema.clone(),
            scalable: false,
        });
        self.outputs
            .insert(name.to_owned(), (self.vertices.len() - 1, schema));
    }

    fn calc(
        &mut self,
        path: &str,
        input_schema: &SchemaRef,
        where_: Option<&String>,
        select: &[String],
    ) -> Option<(OpFactory, SchemaRef)> {
        let scope = Scope::new(input_schema);
        let predicate = match where_.map(|w| expr::parse_sql(w).and_then(|e| scope.compile(&e))) {
            Some(Ok(p)) if p.ty() == Ty::Bool => Some(p),
            Some(Ok(_)) => {
                self.problems.push(problem(
                    format!("{path}.where"),
                    "must be a condition (true or false)",
                ));
                return None;
            }
            Some(Err(e)) => {
                self.problems.push(problem(format!("{path}.where"), e));
                return None;
            }
            None => None,
        };
        let projection = if select.is_empty() {
            None
        } else {
            let mut items = Vec::new();
            for (j, s) in select.iter().enumerate() {
                match expr::parse_select_item(s).and_then(|(e, alias)| {
                    Ok((
                        alias.unwrap_or_else(|| expr::default_name(&e)),
                        scope.compile(&e)?,
                    ))
                }) {
                    Ok(item) => items.push(item),
                    Err(e) => self
                        .problems
                        .push(problem(format!("{path}.select[{j}]"), e)),
                }
            }
            Some(items)
        };
        let proto = ops::Calc::new(predicate.clone(), projection.clone(), input_schema.clone());
        let schema = proto.schema();
        let input = input_schema.clone();
        Some((
            Arc::new(move || {
                Box::new(ops::Calc::new(
                    predicate.clone(),
                    projection.clone(),
                    input.clone(),
                )) as Box<dyn Operator>
            }),
            schema,
        ))
    }

    fn keys(
        &mut self,
        path: &str,
        schema: &SchemaRef,
        names: &[String],
    ) -> Option<(Vec<Expr>, Vec<usize>)> {
        let scope = Scope::new(schema);
        let mut exprs = Vec::new();
        let mut idx = Vec::new();
        for (j, k) in names.iter().enumerate() {
            match scope.column(k) {
                Ok((i, t)) => {
                    exprs.push(Expr::Column(i, t));
                    idx.push(i);
                }
                Err(e) => self.problems.push(problem(format!("{path}[{j}]"), e)),
            }
        }
        (exprs.len() == names.len()).then_some((exprs, idx))
    }

    fn transform(&mut self, i: usize, t: &TransformSpec) {
        let path = format!("transforms[{i}]");
        let p = t.parallelism.map_or(self.parallelism, |p| p as usize);
        let input = t.input.clone();
        let input_schema = input.as_ref().map(|n| self.outputs[n].1.clone());

        if let Some(w) = &t.window {
            let Some(mut schema) = input_schema else {
                return;
            };
            let mut input_name = input.clone().unwrap_or_default();
            if t.where_.is_some() {
                // The filter runs before the exchange, fused with its input when it can be.
                let Some((f, s)) = self.calc(&path, &schema, t.where_.as_ref(), &[]) else {
                    return;
                };
                let pre = format!("{}.where", t.name);
                self.consumers.insert(pre.clone(), 1);
                let from_p = self.vertices[self.outputs[&input_name].0].parallelism;
                let edge = self.edge(&input_name, Partition::Forward);
                self.attach(&pre, Some(&input_name), from_p, f, s.clone(), vec![edge]);
                input_name = pre;
                schema = s;
            }
            let Some((key_exprs, key_idx)) =
                self.keys(&format!("{path}.key_by"), &schema, &t.key_by)
            else {
                return;
            };
            let kind = match (&w.tumble, &w.hop, &w.session) {
                (Some(d), _, _) => ops::WindowKind::Tumble {
                    size: d.millis().unwrap_or(1),
                },
                (_, Some(h), _) => ops::WindowKind::Hop {
                    size: h.size.millis().unwrap_or(1),
                    slide: h.slide.millis().unwrap_or(1),
                },
                (_, _, Some(g)) => ops::WindowKind::Session {
                    gap: g.millis().unwrap_or(1),
                },
                _ => return,
            };
            let scope = Scope::new(&schema);
            let mut calls = Vec::new();
            let mut items = Vec::new();
            for (j, s) in t.select.iter().enumerate() {
                let item_path = format!("{path}.select[{j}]");
                let parsed = match expr::parse_select_item(s) {
                    Ok(x) => x,
                    Err(e) => {
                        self.problems.push(problem(item_path, e));
                        continue;
                    }
                };
                let name = parsed
                    .1
                    .clone()
                    .unwrap_or_else(|| expr::default_name(&parsed.0));
                match compile_aggregate(&scope, &parsed.0) {
                    Ok(Some(call)) => {
                        calls.push(call);
                        items.push((name, OutItem::Agg(calls.len() - 1)));
                    }
                    Ok(None) => {
                        let col = expr::default_name(&parsed.0).to_lowercase();
                        if col == "window_start" {
                            items.push((name, OutItem::Start));
                        } else if col == "window_end" {
                            items.push((name, OutItem::End));
                        } else if let Some(k) =
                            t.key_by.iter().position(|k| k.eq_ignore_ascii_case(&col))
                        {
                            items.push((name, OutItem::Key(k)));
                        } else {
                            self.problems.push(problem(item_path, format!("{s:?} must be a key_by column, window_start, window_end or an aggregate such as COUNT(*)")));
                        }
                    }
                    Err(e) => self.problems.push(problem(item_path, e)),
                }
            }
            let aggs = Aggregates(calls);
            let lateness = ops::window::Lateness {
                allowed: w
                    .allowed_lateness
                    .as_ref()
                    .and_then(|d| d.millis().ok())
                    .unwrap_or(0),
                side_output: w
                    .late_output
                    .as_ref()
                    .is_some_and(|l| self.consumers.contains_key(l)),
            };
            let proto = ops::WindowAggregate::new(
                kind,
                lateness,
                key_exprs.clone(),
                aggs.clone(),
                items.clone(),
            );
            let out_schema = proto.schema();
            let factory: OpFactory = Arc::new(move || {
                Box::new(ops::WindowAggregate::new(
                    kind,
                    lateness,
                    key_exprs.clone(),
                    aggs.clone(),
                    items.clone(),
                )) as Box<dyn Operator>
            });
            let edge = self.edge(&input_name, Partition::Hash(key_idx));
            self.attach(&t.name, None, p, factory, out_schema, vec![edge]);
            if let Some(late) = &w.late_output {
                let v = self.outputs[&t.name].0;
                self.outputs.insert(late.clone(), (v, schema.clone()));
                self.ports.insert(late.clone(), 1);
            }
            return;
        }

        if let Some(d) = &t.deduplicate {
            let Some(schema) = input_schema else { return };
            let Some((key_exprs, key_idx)) =
                self.keys(&format!("{path}.deduplicate.key"), &schema, &d.key)
            else {
                return;
            };
            let s2 = schema.clone();
            let ttl = d.ttl.as_ref().and_then(|t| t.millis().ok());
            let factory: OpFactory = Arc::new(move || {
                Box::new(ops::Deduplicate::new(key_exprs.clone(), s2.clone(), ttl))
                    as Box<dyn Operator>
            });
            let edge = self.edge(
                input.as_deref().unwrap_or_default(),
                Partition::Hash(key_idx),
            );
            self.attach(&t.name, None, p, factory, schema.clone(), vec![edge]);
            self.post_select(&path, t, &schema);
            return;
        }

        if let Some(n) = &t.top_n {
            let Some(schema) = input_schema else { return };
            let scope = Scope::new(&schema);
            let (start, end) = match (scope.column("window_start"), scope.column("window_end")) {
                (Ok((s, _)), Ok((e, _))) => (s, e),
                _ => {
                    self.problems.push(problem(format!("{path}.input"), "top_n needs an input with window_start and window_end columns (a windowed aggregation)"));
                    return;
                }
            };
            let order = match expr::parse_order_by(&n.order_by).and_then(|items| {
                items
                    .into_iter()
                    .map(|(e, asc)| Ok((scope.compile(&e)?, asc)))
                    .collect::<Result<Vec<_>, String>>()
            }) {
                Ok(o) => o,
                Err(e) => {
                    self.problems
                        .push(problem(format!("{path}.top_n.order_by"), e));
                    return;
                }
            };
            let (count, ties, number) = (n.limit as usize, n.with_ties, n.number_as.clone());
            let s2 = schema.clone();
            let proto = ops::TopN::new(
                count,
                ties,
                order.clone(),
                start,
                end,
                s2.clone(),
                number.clone(),
            );
            let out_schema = proto.schema();
            let factory: OpFactory = Arc::new(move || {
                Box::new(ops::TopN::new(
                    count,
                    ties,
                    order.clone(),
                    start,
                    end,
                    s2.clone(),
                    number.clone(),
                )) as Box<dyn Operator>
            });
            let edge = self.edge(
                input.as_deref().unwrap_or_default(),
                Partition::Hash(vec![start, end]),
            );
            self.attach(&t.name, None, p, factory, out_schema.clone(), vec![edge]);
            self.post_select(&path, t, &out_schema);
            return;
        }

        if let Some(j) = &t.interval_join {
            let Some(left_schema) = input_schema else {
                return;
            };
            let right_schema = self.outputs[&j.right].1.clone();
            let left_name = input.clone().unwrap_or_default();
            let (mut lk, mut rk, mut li, mut ri) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for (k, cond) in j.keys.iter().enumerate() {
                let parts: Vec<&str> = cond.split('=').map(str::trim).collect();
                let resolved = match parts.as_slice() {
                    [l, r] => Scope::new(&left_schema)
                        .column(l.rsplit('.').next().unwrap_or(l))
                        .and_then(|a| {
                            Ok((
                                a,
                                Scope::new(&right_schema)
                                    .column(r.rsplit('.').next().unwrap_or(r))?,
                            ))
                        }),
                    _ => Err("write the condition as left_column = right_column".into()),
                };
                match resolved {
                    Ok(((a, at), (b, bt))) if at == bt => {
                        lk.push(Expr::Column(a, at));
                        rk.push(Expr::Column(b, bt));
                        li.push(a);
                        ri.push(b);
                    }
                    Ok(_) => self.problems.push(problem(
                        format!("{path}.interval_join.keys[{k}]"),
                        "the two columns have different types",
                    )),
                    Err(e) => self
                        .problems
                        .push(problem(format!("{path}.interval_join.keys[{k}]"), e)),
                }
            }
            let bound = |s: &str| -> Result<i64, String> {
                match s.strip_prefix('-') {
                    Some(rest) => crate::spec::Duration(rest.into())
                        .millis()
                        .map(|v| -v)
                        .map_err(|e| e.to_string()),
                    None => crate::spec::Duration(s.into())
                        .millis()
                        .map_err(|e| e.to_string()),
                }
            };
            let (lower, upper) = match (bound(&j.lower), bound(&j.upper)) {
                (Ok(l), Ok(u)) if l <= u => (l, u),
                (Ok(_), Ok(_)) => {
                    self.problems.push(problem(
                        format!("{path}.interval_join"),
                        "lower must not exceed upper",
                    ));
                    return;
                }
                (Err(e), _) => {
                    self.problems
                        .push(problem(format!("{path}.interval_join.lower"), e));
                    return;
                }
                (_, Err(e)) => {
                    self.problems
                        .push(problem(format!("{path}.interval_join.upper"), e));
                    return;
                }
            };
            let (right_name, ls, rs) = (j.right.clone(), left_schema.clone(), right_schema.clone());
            let ln = left_name.clone();
            let proto = ops::IntervalJoin::new(
                lk.clone(),
                rk.clone(),
                lower,
                upper,
                (&ln, ls.clone()),
                (&right_name, rs.clone()),
            );
            let out_schema = proto.schema();
            let factory: OpFactory = Arc::new(move || {
                Box::new(ops::IntervalJoin::new(
                    lk.clone(),
                    rk.clone(),
                    lower,
                    upper,
                    (&ln, ls.clone()),
                    (&right_name, rs.clone()),
                )) as Box<dyn Operator>
            });
            let edges = vec![
                self.edge(&left_name, Partition::Hash(li)),
                self.edge(&j.right, Partition::Hash(ri)),
            ];
            self.attach(&t.name, None, p, factory, out_schema.clone(), edges);
            self.post_select(&path, t, &out_schema);
            return;
        }

        if !t.union.is_empty() {
            let schemas: Vec<SchemaRef> =
                t.union.iter().map(|n| self.outputs[n].1.clone()).collect();
            for (j, s) in schemas.iter().enumerate().skip(1) {
                let same = s.fields().len() == schemas[0].fields().len()
                    && s.fields()
                        .iter()
                        .zip(schemas[0].fields())
                        .all(|(a, b)| a.data_type() == b.data_type());
                if !same {
                    self.problems.push(problem(
                        format!("{path}.union[{j}]"),
                        "has different columns than the first input",
                    ));
                    return;
                }
            }
            let schema = schemas[0].clone();
            let s2 = schema.clone();
            let factory: OpFactory =
                Arc::new(move || Box::new(ops::Union::new(s2.clone())) as Box<dyn Operator>);
            let edges = t
                .union
                .iter()
                .map(|n| self.edge(n, Partition::Single))
                .collect();
            self.attach(&t.name, None, 1, factory, schema.clone(), edges);
            self.post_select(&path, t, &schema);
            return;
        }

        if let Some(rate) = t.throttle {
            let Some(schema) = input_schema else { return };
            let input_name = input.unwrap_or_default();
            let from = self.outputs[&input_name].0;
            let p = t
                .parallelism
                .map_or(self.vertices[from].parallelism, |p| p as usize);
            let partition = if p == self.vertices[from].parallelism {
                Partition::Forward
            } else {
                Partition::Hash((0..schema.fields().len()).collect())
            };
            let s2 = schema.clone();
            let factory: OpFactory = Arc::new(move || {
                Box::new(ops::Throttle::new(rate, s2.clone())) as Box<dyn Operator>
            });
            // Never fused: a throttle is its own task, so its slowness backpressures the input.
            self.attach(
                &t.name,
                None,
                p,
                factory,
                schema.clone(),
                vec![self.edge(&input_name, partition)],
            );
            self.post_select(&path, t, &schema);
            return;
        }

        // Filter and projection.
        let Some(schema) = input_schema else { return };
        let Some((factory, out_schema)) = self.calc(&path, &schema, t.where_.as_ref(), &t.select)
        else {
            return;
        };
        let input_name = input.unwrap_or_default();
        let from = self.outputs[&input_name].0;
        let from_p = self.vertices[from].parallelism;
        let (partition, p) = if t.parallelism.is_none() || p == from_p {
            (Partition::Forward, from_p)
        } else {
            (Partition::Single, 1)
        };
        self.attach(
            &t.name,
            Some(&input_name),
            p,
            factory,
            out_schema,
            vec![self.edge(&input_name, partition)],
        );
    }

    /// A `select` (and `where`) after a stateful step, fused into its vertex.
    fn post_select(&mut self, path: &str, t: &TransformSpec, schema: &SchemaRef) {
        if t.select.is_empty() && t.where_.is_none() {
            return;
        }
        let Some((factory, out_schema)) = self.calc(path, schema, t.where_.as_ref(), &t.select)
        else {
            return;
        };
        let (v, _) = self.outputs[&t.name].clone();
        self.vertices[v].chain.push(factory);
        self.vertices[v].uids.push(format!("{}.select", t.name));
        self.vertices[v].schema = out_schema.clone();
        self.outputs.insert(t.name.clone(), (v, out_schema));
    }

    fn sink(&mut self, i: usize, s: &crate::spec::SinkSpec) {
        let Some((from, schema)) = self.outputs.get(&s.input).cloned() else {
            return;
        };
        let kind = if let Some(f) = &s.file {
            SinkKind::File(f.path.clone(), f.format)
        } else if s.stdout.is_some() {
            SinkKind::Stdout
        } else {
            SinkKind::Blackhole
        };
        let _ = i;
        // Blackholes count in parallel; files and stdout are written by one subtask.
        let (parallelism, partition) = match kind {
            SinkKind::Blackhole if self.vertices[from].parallelism > 1 => {
                (self.vertices[from].parallelism, Partition::Forward)
            }
            _ => (1, Partition::Single),
        };
        self.vertices.push(Vertex {
            name: format!("sink:{}", s.name),
            parallelism,
            kind: VertexKind::Sink(kind),
            inputs: vec![self.edge(&s.input, partition)],
            chain: vec![],
            uids: vec![],
            uid: format!("sink:{}", s.name),
            schema: schema.clone(),
            watermark: None,
            idle_timeout: None,
            source_schema: schema,
            scalable: false,
        });
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

/// An aggregate call, if `e` is one (`COUNT(*)`, `SUM(v)`, …).
pub fn compile_aggregate(
    scope: &Scope,
    e: &sqlparser::ast::Expr,
) -> Result<Option<ops::aggregate::AggCall>, String> {
    use sqlparser::ast::{Expr as E, FunctionArg, FunctionArgExpr, FunctionArguments};
    let E::Function(f) = e else { return Ok(None) };
    let name = f.name.to_string();
    let FunctionArguments::List(list) = &f.args else {
        return Ok(None);
    };
    let distinct = matches!(
        list.duplicate_treatment,
        Some(sqlparser::ast::DuplicateTreatment::Distinct)
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
    Ok(Some(ops::aggregate::AggCall { kind, arg }))
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
