//! What each step is: one `kind` per source, transform, sink and window, as an enum the
//! planner matches on once.
//!
//! The YAML keeps a field per kind (`window:`, `deduplicate:`, `file:` …) and the checks
//! refuse a step naming two. The kinds are views over those fields rather than a
//! `#[serde(flatten)]` enum, because serde's `flatten` buffers the step into a map first,
//! which loses the paths `serde_path_to_error` and the strict reader report (an unknown
//! field inside a window would no longer be named `transforms[0].window.tumbel`) and turns
//! the committed JSON schema and the CRD's structural schema into a `oneOf` that the API
//! server refuses. Both views are total once [`JobSpec::check`](crate::JobSpec::check)
//! passed.

use crate::{
    DatagenSource, DeduplicateSpec, Duration, FileSink, FileSource, HopSpec, IntervalJoinSpec,
    KafkaSink, KafkaSource, SinkSpec, SourceSpec, TopNSpec, TransformSpec, WindowSpec,
};

/// What a source is.
#[derive(Debug, Clone, Copy)]
pub enum SourceKind<'a> {
    /// A file.
    File(&'a FileSource),
    /// Generated records.
    Datagen(&'a DatagenSource),
    /// Kafka topics.
    Kafka(&'a KafkaSource),
}

/// What a transform does.
#[derive(Debug, Clone, Copy)]
pub enum TransformKind<'a> {
    /// An event-time window aggregation (keyed by `key_by`).
    Window(&'a WindowSpec),
    /// Deduplication by key.
    Deduplicate(&'a DeduplicateSpec),
    /// Top-N rows per window.
    TopN(&'a TopNSpec),
    /// An interval join of `input` with another step.
    IntervalJoin(&'a IntervalJoinSpec),
    /// The union of these steps.
    Union(&'a [String]),
    /// At most this many rows per second per subtask.
    Throttle(u64),
    /// A filter and projection (`where`, `select`) only.
    Calc,
}

/// What a sink is.
#[derive(Debug, Clone, Copy)]
pub enum SinkKind<'a> {
    /// A file.
    File(&'a FileSink),
    /// A Kafka topic.
    Kafka(&'a KafkaSink),
    /// Standard output.
    Stdout,
    /// Counted and dropped.
    Blackhole,
}

/// What a window is.
#[derive(Debug, Clone, Copy)]
pub enum WindowKind<'a> {
    /// Tumbling windows of this size.
    Tumble(&'a Duration),
    /// Sliding windows.
    Hop(&'a HopSpec),
    /// Session windows with this gap.
    Session(&'a Duration),
}

impl SourceSpec {
    /// What it is; `None` only for a spec that failed the checks (no kind named).
    pub fn kind(&self) -> Option<SourceKind<'_>> {
        match (&self.file, &self.datagen, &self.kafka) {
            (Some(f), _, _) => Some(SourceKind::File(f)),
            (None, Some(g), _) => Some(SourceKind::Datagen(g)),
            (None, None, Some(k)) => Some(SourceKind::Kafka(k)),
            (None, None, None) => None,
        }
    }

    /// Whether its vertex's parallelism can be set on its own: generated data and Kafka
    /// topics (whose partitions are spread over the subtasks); a file is read by one.
    pub fn is_scalable(&self) -> bool {
        matches!(
            self.kind(),
            Some(SourceKind::Datagen(_) | SourceKind::Kafka(_))
        )
    }
}

impl TransformSpec {
    /// What it does (the first kind named; the checks refuse a step naming two).
    pub fn kind(&self) -> TransformKind<'_> {
        if let Some(w) = &self.window {
            TransformKind::Window(w)
        } else if let Some(d) = &self.deduplicate {
            TransformKind::Deduplicate(d)
        } else if let Some(n) = &self.top_n {
            TransformKind::TopN(n)
        } else if let Some(j) = &self.interval_join {
            TransformKind::IntervalJoin(j)
        } else if !self.union.is_empty() {
            TransformKind::Union(&self.union)
        } else if let Some(rate) = self.throttle {
            TransformKind::Throttle(rate)
        } else {
            TransformKind::Calc
        }
    }

    /// Whether its vertex's parallelism can be set on its own: keyed and rate-bound steps.
    pub fn is_scalable(&self) -> bool {
        !matches!(self.kind(), TransformKind::Union(_) | TransformKind::Calc)
    }

    /// The steps it reads: its input, the union's inputs, the join's right side.
    pub fn inputs(&self) -> impl Iterator<Item = &String> {
        self.input
            .iter()
            .chain(self.union.iter())
            .chain(self.interval_join.iter().map(|j| &j.right))
    }
}

impl SinkSpec {
    /// What it is (a blackhole when nothing else is named).
    pub fn kind(&self) -> SinkKind<'_> {
        match (&self.file, &self.kafka, &self.stdout) {
            (Some(f), _, _) => SinkKind::File(f),
            (None, Some(k), _) => SinkKind::Kafka(k),
            (None, None, Some(_)) => SinkKind::Stdout,
            (None, None, None) => SinkKind::Blackhole,
        }
    }
}

impl WindowSpec {
    /// What it is; `None` only for a spec that failed the checks (no kind named).
    pub fn kind(&self) -> Option<WindowKind<'_>> {
        match (&self.tumble, &self.hop, &self.session) {
            (Some(d), _, _) => Some(WindowKind::Tumble(d)),
            (None, Some(h), _) => Some(WindowKind::Hop(h)),
            (None, None, Some(g)) => Some(WindowKind::Session(g)),
            (None, None, None) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{JobSpec, TransformKind};

    #[test]
    fn each_step_has_the_kind_its_field_names() {
        let spec = JobSpec::parse(
            r#"
sources:
  - {name: s, datagen: {columns: [{name: ts, expr: id}, {name: k, expr: "MOD(id, 2)"}]}, watermark: {field: ts, max_out_of_orderness: 0s}}
transforms:
  - {name: w, input: s, key_by: [k], window: {tumble: 1s}, select: ["k", "COUNT(*) AS n"]}
  - {name: f, input: s, where: "k = 1"}
  - {name: u, union: [s, f]}
  - {name: t, input: f, throttle: 10}
sinks:
  - {name: o, input: w, stdout: {}}
"#,
        )
        .expect("a valid spec");
        let kinds: Vec<_> = spec.transforms.iter().map(|t| t.kind()).collect();
        assert!(matches!(kinds[0], TransformKind::Window(_)));
        assert!(matches!(kinds[1], TransformKind::Calc));
        assert!(matches!(kinds[2], TransformKind::Union(u) if u.len() == 2));
        assert!(matches!(kinds[3], TransformKind::Throttle(10)));
        let scalable: Vec<bool> = spec.transforms.iter().map(|t| t.is_scalable()).collect();
        assert_eq!(scalable, [true, false, false, true]);
        let inputs: Vec<Vec<&String>> = spec
            .transforms
            .iter()
            .map(|t| t.inputs().collect())
            .collect();
        assert_eq!(inputs[2], ["s", "f"]);
        assert!(matches!(spec.sinks[0].kind(), crate::SinkKind::Stdout));
        assert!(matches!(
            spec.sources[0].kind(),
            Some(crate::SourceKind::Datagen(_))
        ));
    }
}
