//! `FlinkJob.spec`: what the user asks for.

mod autoscaler;
mod pod;
mod snapshots;

use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use schemars::{Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

pub use autoscaler::{AutoscalerMode, AutoscalerSpec};
pub use pod::{PodTemplate, Quantity, WorkerResources};
pub use snapshots::{
    CheckpointSpec, ObjectStorageSpec, RestoreSpec, SavepointHistory, SavepointSpec,
};

use crate::status::FlinkJobStatus;

/// The longest `metadata.name` a FlinkJob may have: names of the Services, pods and
/// ConfigMaps derived from it (`<name>-engine-<n>`, …) must stay valid DNS labels.
pub const MAX_NAME_LEN: usize = 45;

/// The desired state of the job, written by the user: the pipeline, its parallelism, where
/// its checkpoints and savepoints live, and how upgrades, failures and scaling are handled.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "strom.dev",
    version = "v1alpha1",
    kind = "FlinkJob",
    plural = "flinkjobs",
    singular = "flinkjob",
    shortname = "fj",
    namespaced,
    status = "FlinkJobStatus",
    derive = "PartialEq",
    doc = "A streaming job that Strom runs on Kubernetes: the pipeline, its parallelism, where its checkpoints and savepoints live, and how upgrades, failures and scaling are handled.",
    scale(
        spec_replicas_path = ".spec.parallelism",
        status_replicas_path = ".status.parallelism",
        label_selector_path = ".status.selector"
    ),
    printcolumn(name = "State", type_ = "string", json_path = ".status.lifecycleState", description = "Where the job is in its lifecycle"),
    printcolumn(name = "Job", type_ = "string", json_path = ".status.jobState", description = "State reported by the engine"),
    printcolumn(name = "Parallelism", type_ = "integer", json_path = ".status.parallelism", description = "Parallelism the job runs at now"),
    printcolumn(name = "Checkpoint", type_ = "date", json_path = ".status.lastCheckpoint.time", description = "Age of the latest completed checkpoint"),
    printcolumn(name = "Savepoint", type_ = "date", json_path = ".status.lastSavepoint.time", description = "Age of the latest completed savepoint"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new(
        "self.metadata.name.size() <= 45 && self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')"
    ).message("metadata.name: must be a lower-case DNS label (letters, digits, '-'; starting with a letter) of at most 45 characters, so that the names of the job's pods and Services stay valid"),
)]
#[x_kube(
    validation = Rule::new("has(self.job) != has(self.jobUri)")
        .message("exactly one of spec.job (the pipeline inline) and spec.jobUri (a pipeline file in object storage) must be set")
        .field_path(".job"),
    validation = Rule::new("!has(self.maxParallelism) || self.parallelism <= self.maxParallelism")
        .message("must not exceed spec.maxParallelism")
        .field_path(".parallelism"),
    validation = Rule::new("self.upgradeMode != 'savepoint' || (has(self.savepoints) && has(self.savepoints.storage))")
        .message("is required when spec.upgradeMode is savepoint: upgrades stop the job with a savepoint written there")
        .field_path(".savepoints.storage"),
    validation = Rule::new("self.upgradeMode != 'last-state' || has(self.checkpoints)")
        .message("is required when spec.upgradeMode is last-state: upgrades restore the latest checkpoint kept there")
        .field_path(".checkpoints"),
    validation = Rule::new("!has(self.autoscaler) || self.autoscaler.mode != 'active' || (has(self.savepoints) && has(self.savepoints.storage))")
        .message("is required when spec.autoscaler.mode is active: every rescale restores from a savepoint written there")
        .field_path(".savepoints.storage"),
    validation = Rule::new("!has(self.rollback) || !self.rollback.enabled || (has(self.savepoints) && has(self.savepoints.storage))")
        .message("is required when spec.rollback.enabled is true: a rollback restores the savepoint taken before the upgrade")
        .field_path(".savepoints.storage"),
    validation = Rule::new("!has(self.autoscaler) || !has(self.autoscaler.maxParallelism) || !has(self.maxParallelism) || self.autoscaler.maxParallelism <= self.maxParallelism")
        .message("must not exceed spec.maxParallelism")
        .field_path(".autoscaler.maxParallelism"),
    validation = Rule::new("!has(self.restore) || !has(self.restore.redeployNonce) || has(self.restore.initialSavepoint)")
        .message("is required with spec.restore.redeployNonce: a redeploy starts from it")
        .field_path(".restore.initialSavepoint"),
)]
#[serde(rename_all = "camelCase")]
pub struct FlinkJobSpec {
    /// Container image of the Strom engine that runs this job, e.g. `strom/engine:0.1.0`.
    /// Changing it upgrades the job according to `upgradeMode`.
    #[schemars(length(min = 1))]
    pub image: String,

    /// The pipeline, inline: sources, transforms and sinks wired by name. Set exactly one of
    /// `job` and `jobUri`. Changing it upgrades the job according to `upgradeMode`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "job_schema")]
    pub job: Option<strom_jobspec::JobSpec>,

    /// The pipeline as a YAML or JSON file in object storage, e.g.
    /// `s3://my-bucket/jobs/fraud.yaml`. Set exactly one of `job` and `jobUri`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_uri: Option<crate::StorageUrl>,

    /// How many parallel subtasks each operator of the job runs. `kubectl scale
    /// flinkjob/<name> --replicas=N` sets this field. Changing it rescales the job through a
    /// savepoint (or the latest checkpoint with `upgradeMode: last-state`).
    #[serde(default = "one")]
    #[schemars(range(min = 1, max = 10000))]
    pub parallelism: i32,

    /// The highest parallelism that `kubectl scale` or the autoscaler may set. Strom's state
    /// is split by key-hash ranges, so this is a budget, not a limit baked into the state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10000))]
    pub max_parallelism: Option<i32>,

    /// Parallelism of single vertices, by the id the engine reports (`source:<name>` of a
    /// generated source, or the name of a window, deduplicate, top-N, interval-join or
    /// throttle step), over `parallelism`. An active autoscaler sets its own on top.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[x_kube(validation = Rule::new("self.all(k, self[k] >= 1 && self[k] <= 10000)").message("each value must be between 1 and 10000"))]
    pub vertex_parallelism: BTreeMap<String, i32>,

    /// How many subtasks one engine worker pod runs. Together with `parallelism` it decides
    /// how many worker pods the job gets (`ceil(parallelism / slotsPerWorker)`).
    #[serde(default = "one")]
    #[schemars(range(min = 1, max = 256))]
    pub slots_per_worker: i32,

    /// CPU and memory of each engine worker pod.
    #[serde(default)]
    pub resources: WorkerResources,

    /// How a change to the spec reaches the running job: `stateless` starts the new version
    /// with empty state; `savepoint` stops the job with a savepoint and restores the new
    /// version from exactly that savepoint (needs `savepoints.storage`); `last-state`
    /// restores the latest completed checkpoint, also when the job is unhealthy (needs
    /// `checkpoints`).
    #[serde(default)]
    pub upgrade_mode: UpgradeMode,

    /// The state the job should be in: `running`, or `suspended` (a savepoint is taken when
    /// `savepoints.storage` is set, then the pods are removed; `running` again restores it).
    #[serde(default)]
    pub state: DesiredState,

    /// Periodic checkpoints: how often, where, how many to keep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoints: Option<CheckpointSpec>,

    /// Savepoints: where they are written, periodic savepoints, history retention, and a
    /// nonce that takes one on demand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub savepoints: Option<SavepointSpec>,

    /// What the job starts from when it is first deployed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<RestoreSpec>,

    /// How engines reach the object store of `checkpoints.storage` and
    /// `savepoints.storage`: endpoint, region, path-style addressing, plain http.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_storage: Option<ObjectStorageSpec>,

    /// Change this number (to any other value) to restart the job from its latest checkpoint
    /// without changing anything else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_nonce: Option<i64>,

    /// Automatic scaling of each vertex's parallelism from busy time, input rates and
    /// backlog.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaler: Option<AutoscalerSpec>,

    /// Returning to the last stable spec when an upgraded job does not become healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<RollbackSpec>,

    /// Extra settings merged into every engine pod: environment, volumes, scheduling,
    /// service account, labels and annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_template: Option<PodTemplate>,

    /// Log level of the engine: `error`, `warn`, `info`, `debug` or `trace`. Changing it
    /// restarts the job from its latest checkpoint.
    #[serde(default)]
    pub log_level: LogLevel,
}

fn one() -> i32 {
    1
}

/// The job-spec schema, in structural form: the API server checks pipelines too.
fn job_schema(_: &mut SchemaGenerator) -> Schema {
    Schema::try_from(crate::job_schema::structural()).unwrap_or_else(
        |_| json_schema!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
    )
}

/// How a spec change reaches the running job.
#[derive(
    Serialize, Deserialize, schemars::JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq,
)]
#[serde(rename_all = "kebab-case")]
pub enum UpgradeMode {
    /// Stop the job and start the new version with empty state.
    #[default]
    Stateless,
    /// Stop with a savepoint and restore the new version from it.
    Savepoint,
    /// Restore the new version from the latest completed checkpoint.
    LastState,
}

impl std::fmt::Display for UpgradeMode {
    /// The name as written in manifests (`last-state`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            UpgradeMode::Stateless => "stateless",
            UpgradeMode::Savepoint => "savepoint",
            UpgradeMode::LastState => "last-state",
        })
    }
}

/// The state the user wants the job in.
#[derive(
    Serialize, Deserialize, schemars::JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq,
)]
#[serde(rename_all = "kebab-case")]
pub enum DesiredState {
    /// The job runs.
    #[default]
    Running,
    /// The job is stopped (with a savepoint where possible) and its pods removed.
    Suspended,
}

/// Log level of the engine.
#[derive(
    Serialize, Deserialize, schemars::JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq,
)]
#[serde(rename_all = "kebab-case")]
pub enum LogLevel {
    /// Errors only.
    Error,
    /// Errors and warnings.
    Warn,
    /// The default.
    #[default]
    Info,
    /// Verbose.
    Debug,
    /// Very verbose.
    Trace,
}

/// Returning to the last stable spec when an upgrade does not become healthy.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RollbackSpec {
    /// Roll back automatically when an upgraded job is not healthy (running and completing
    /// checkpoints) within `readinessTimeout`. Needs `savepoints.storage`.
    #[serde(default)]
    pub enabled: bool,

    /// How long an upgraded job has to become healthy before it is rolled back, e.g. `"5m"`.
    #[serde(default = "default_readiness_timeout")]
    #[x_kube(validation = Rule::new("duration(self) > duration('0s')").message("must be greater than zero"))]
    pub readiness_timeout: crate::Duration,
}

fn default_readiness_timeout() -> crate::Duration {
    "5m".into()
}

impl FlinkJobSpec {
    /// `objectStorage` as storage options (`endpoint`, `region`, `path_style`,
    /// `allow_http`): what the engine gets as `--storage-option` and the operator and
    /// control plane open storage with.
    pub fn storage_options(&self) -> Vec<(&'static str, String)> {
        let Some(os) = &self.object_storage else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if let Some(e) = &os.endpoint {
            out.push(("endpoint", e.clone()));
        }
        if let Some(r) = &os.region {
            out.push(("region", r.clone()));
        }
        if os.path_style {
            out.push(("path_style", "true".into()));
        }
        if os.allow_http {
            out.push(("allow_http", "true".into()));
        }
        out
    }
}
