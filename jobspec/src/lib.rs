//! The Strom job spec: a declarative pipeline of named sources, transforms and sinks wired by
//! name, read from YAML or JSON. Expressions are SQL, parsed with `sqlparser`.
//!
//! One crate for everyone who reads a spec: the engine runs it, the FlinkJob API
//! (`strom-crds`) embeds it as `spec.job` and validates it before any pod starts, and the
//! control plane checks it on every version. [`JobSpec::parse`] reads and checks a spec and
//! lists every problem by path (`transforms[2].window.tumble: "1x" is not a duration`),
//! unknown fields included.

mod check;
mod duration;
mod kafka;
mod kind;
mod sink;
mod source;
pub mod sql;
pub mod strict;
mod transform;
pub mod typing;
mod violation;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use duration::{DURATION_PATTERN, Duration, DurationError};
pub use kafka::{
    BadRecords, Delivery, KafkaFormat, KafkaMetadata, KafkaPartitioner, KafkaSink, KafkaSource,
    KafkaStart, RESERVED_PROPERTIES, TopicFilter,
};
pub use kind::{SinkKind, SourceKind, TransformKind, WindowKind};
pub use sink::{FileSink, SinkSpec};
pub use source::{
    DatagenSource, FieldSpec, FieldType, FileFormat, FileSource, GeneratedColumn, NexmarkSpec,
    NexmarkTable, NormalSpec, RandomSpec, RangeSpec, RatePhase, SourceSpec, WatermarkSpec,
    ZipfSpec,
};
pub use transform::{
    DeduplicateSpec, HopSpec, IntervalJoinSpec, TopNSpec, TransformSpec, WindowSpec,
};
pub use violation::{Violation, Violations};

/// A whole job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct JobSpec {
    /// Where records come from.
    pub sources: Vec<SourceSpec>,
    /// What is done to them, in any order (inputs are named).
    #[serde(default)]
    pub transforms: Vec<TransformSpec>,
    /// Where results go.
    pub sinks: Vec<SinkSpec>,
}

impl JobSpec {
    /// Reads a YAML or JSON spec and checks it; every problem is listed with its path.
    pub fn parse(text: &str) -> Result<JobSpec, Violations> {
        let value: serde_json::Value = serde_yaml_ng::from_str(text)
            .map_err(|e| Violations::one("<spec>", format!("is not valid YAML or JSON: {e}")))?;
        JobSpec::from_value(&value)
    }

    /// Reads a spec from a JSON value and checks it; see [`JobSpec::parse`].
    pub fn from_value(value: &serde_json::Value) -> Result<JobSpec, Violations> {
        let (spec, mut problems) = strict::read::<JobSpec>(value)?;
        check::check(&spec, &mut problems);
        Violations::check(problems)?;
        spec.columns()?;
        Ok(spec)
    }

    /// Checks a spec already read: its structure (inputs exist, one kind per step, durations
    /// and SQL parse, …) and then its types (every column an expression names exists, every
    /// operator gets the types it needs); every problem is listed with its path from the
    /// spec's root.
    pub fn check(&self) -> Result<(), Violations> {
        let mut problems = Vec::new();
        check::check(self, &mut problems);
        Violations::check(problems)?;
        self.columns().map(|_| ())
    }

    /// Each step's output columns, when the spec's structure is sound (see
    /// [`JobSpec::check`]); else every type problem by path.
    pub fn columns(&self) -> Result<typing::Columns, Violations> {
        typing::columns(self).map_err(Violations)
    }

    /// The JSON schema of the spec (embedded in the FlinkJob CRD as `spec.job`).
    pub fn json_schema() -> serde_json::Value {
        serde_json::to_value(schemars::schema_for!(JobSpec)).expect("a schema serializes")
    }
}
