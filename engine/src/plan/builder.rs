//! The graph under construction: vertices so far, each step's output, and the helpers
//! every step uses (edges, fusing a step into its input's vertex, compiling `where` and
//! `select`, key columns). Each kind of step is built in its own file; [`Builder::transform`]
//! picks the file with one `match`.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{Edge, OpFactory, Partition, Vertex, VertexKind, problem};
use crate::batch::SchemaRef;
use strom_jobspec::typing;

use crate::expr::{self, Expr, Scope};
use crate::ops::{self, Operator};
use crate::spec::{TransformKind, TransformSpec};

pub(super) struct Builder {
    pub(super) parallelism: usize,
    /// Parallelism of single generated sources, by name (from `--vertex-parallelism`).
    pub(super) source_parallelism: BTreeMap<String, usize>,
    pub(super) vertices: Vec<Vertex>,
    /// Step name → (vertex, schema of that step's output).
    pub(super) outputs: BTreeMap<String, (usize, SchemaRef)>,
    /// Step name → output port of its vertex, for side outputs (absent: 0).
    pub(super) ports: BTreeMap<String, usize>,
    pub(super) consumers: BTreeMap<String, usize>,
    pub(super) problems: Vec<crate::spec::Violation>,
}

/// A transform as its builder sees it.
#[derive(Clone)]
pub(super) struct Step<'a> {
    /// Its path in the spec (`transforms[3]`), for problems.
    pub path: String,
    /// The step.
    pub t: &'a TransformSpec,
    /// Its parallelism (its own, else the job's).
    pub parallelism: usize,
    /// Its input's name.
    pub input: Option<String>,
    /// Its input's schema.
    pub input_schema: Option<SchemaRef>,
}

impl Builder {
    /// Adds transform `i`: one `match` on its kind, one file per kind.
    pub(super) fn transform(&mut self, i: usize, t: &TransformSpec) {
        let step = Step {
            path: format!("transforms[{i}]"),
            t,
            parallelism: t.parallelism.map_or(self.parallelism, |p| p as usize),
            input: t.input.clone(),
            input_schema: t.input.as_ref().map(|n| self.outputs[n].1.clone()),
        };
        match t.kind() {
            TransformKind::Window(w) => self.window(&step, w),
            TransformKind::Deduplicate(d) => self.deduplicate(&step, d),
            TransformKind::TopN(n) => self.top_n(&step, n),
            TransformKind::IntervalJoin(j) => self.interval_join(&step, j),
            TransformKind::Union(_) => self.union(&step),
            TransformKind::Throttle(rate) => self.throttle(&step, rate),
            TransformKind::Calc => self.calc_step(&step),
        }
    }

    /// An edge from step `name`'s output.
    pub(super) fn edge(&self, name: &str, partition: Partition) -> Edge {
        Edge {
            from: self.outputs[name].0,
            port: self.ports.get(name).copied().unwrap_or(0),
            partition,
        }
    }
    /// A vertex for `name` fed by `inputs`, or (for a single forward input with no other
    /// consumer) the input's own vertex, extended.
    pub(super) fn attach(
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
    /// A scope over `schema`, or None with the engine defect recorded at `path`.
    pub(super) fn scope(&mut self, path: &str, schema: &SchemaRef) -> Option<Scope> {
        match expr::scope(schema) {
            Ok(s) => Some(s),
            Err(e) => {
                self.problems.push(problem(path.to_owned(), e.to_string()));
                None
            }
        }
    }

    /// A `where`/`select` step (at `path`) over `input_schema`: its operator and output
    /// schema, typed by the spec's rules ([`typing::calc`]).
    pub(super) fn calc(
        &mut self,
        path: &str,
        input_schema: &SchemaRef,
        where_: Option<&String>,
        select: &[String],
    ) -> Option<(OpFactory, SchemaRef)> {
        let scope = self.scope(path, input_schema)?;
        let typing::Calc {
            predicate,
            projection,
            ..
        } = typing::calc(&scope, path, where_, select, &mut self.problems)?;
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
    /// Key columns by name (at `path[j]`) over `schema`.
    pub(super) fn keys(
        &mut self,
        path: &str,
        schema: &SchemaRef,
        names: &[String],
    ) -> Option<(Vec<Expr>, Vec<usize>)> {
        let scope = self.scope(path, schema)?;
        typing::keys(&scope, path, names, &mut self.problems)
    }
    /// A `select` (and `where`) after a stateful step, fused into its vertex.
    pub(super) fn post_select(&mut self, path: &str, t: &TransformSpec, schema: &SchemaRef) {
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
}
