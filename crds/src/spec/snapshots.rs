//! Checkpoints, savepoints and the initial restore.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use crate::{Duration, StorageUrl};

/// Periodic checkpoints.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CheckpointSpec {
    /// Time between the start of two checkpoints, e.g. `"30s"`.
    #[serde(default = "default_interval")]
    #[x_kube(validation = Rule::new("duration(self) > duration('0s')").message("must be greater than zero"))]
    pub interval: Duration,

    /// Where checkpoints are written: `s3://`, `gs://`, `az://`, `abfs[s]://` or `file://`.
    /// Strom adds `<namespace>/<job>/checkpoints/` below it.
    pub storage: StorageUrl,

    /// How many completed checkpoints to keep; older ones are deleted.
    #[serde(default = "default_retained")]
    #[schemars(range(min = 1, max = 100))]
    pub retained: i32,

    /// A checkpoint that has not completed after this long is abandoned (and counted as
    /// failed), e.g. `"10m"`.
    #[serde(default = "default_timeout")]
    #[x_kube(validation = Rule::new("duration(self) > duration('0s')").message("must be greater than zero"))]
    pub timeout: Duration,
}

fn default_interval() -> Duration {
    "30s".into()
}

fn default_retained() -> i32 {
    3
}

fn default_timeout() -> Duration {
    "10m".into()
}

/// Savepoints: self-contained snapshots kept until their retention policy disposes of them.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct SavepointSpec {
    /// Where savepoints are written: `s3://`, `gs://`, `az://`, `abfs[s]://` or `file://`.
    /// Strom adds `<namespace>/<job>/savepoints/` below it. Required for
    /// `upgradeMode: savepoint`, for an active autoscaler and for rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageUrl>,

    /// Take a savepoint this often, e.g. `"6h"`. Unset: no periodic savepoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("duration(self) > duration('0s')").message("must be greater than zero"))]
    pub periodic_interval: Option<Duration>,

    /// Which savepoints are kept. Savepoints the job restored from, or that a rollback may
    /// need, are always kept.
    #[serde(default)]
    pub history: SavepointHistory,

    /// Change this number (to any other value) to take a savepoint now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_nonce: Option<i64>,
}

/// Retention of completed savepoints.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SavepointHistory {
    /// Keep at most this many savepoints; older ones are disposed of.
    #[serde(default = "default_max_count")]
    #[schemars(range(min = 1, max = 1000))]
    pub max_count: i32,

    /// Dispose of savepoints older than this, e.g. `"168h"`. Unset: no age limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("duration(self) > duration('0s')").message("must be greater than zero"))]
    pub max_age: Option<Duration>,
}

impl Default for SavepointHistory {
    fn default() -> Self {
        SavepointHistory {
            max_count: default_max_count(),
            max_age: None,
        }
    }
}

fn default_max_count() -> i32 {
    10
}

/// What the job starts from when it is first deployed.
#[derive(Serialize, Deserialize, schemars::JsonSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct RestoreSpec {
    /// A savepoint or checkpoint to start from on first deployment, e.g.
    /// `s3://my-bucket/strom/prod/fraud/savepoints/sp-12`. Ignored once the job has run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_savepoint: Option<StorageUrl>,

    /// Start even when some state in the snapshot belongs to no operator of the new job
    /// (that state is dropped and reported). Off by default: such a restore fails.
    #[serde(default)]
    pub allow_non_restored_state: bool,

    /// Change this number (to any other value) to restart a running job from
    /// `initialSavepoint`, stopping it without a savepoint: a return to an earlier state,
    /// e.g. a rollback to the savepoint taken at the end of an earlier version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redeploy_nonce: Option<i64>,
}

/// How engines reach the object store, beyond what the URL and the cloud's credential chain
/// say: for S3-compatible stores (MinIO, Ceph) and local emulators. Credentials never go
/// here: they come from the engine pods' identity (IRSA, GKE or Azure workload identity) or
/// from environment variables set through `podTemplate.env` (e.g. from a Secret).
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!has(self.endpoint) || !self.endpoint.startsWith('http://') || self.allowHttp")
        .message("is plain http://: set objectStorage.allowHttp to true to allow it")
        .field_path(".endpoint"),
)]
pub struct ObjectStorageSpec {
    /// The store's endpoint, e.g. `https://minio.storage.svc:9000` (S3-compatible stores,
    /// Azure sovereign clouds, emulators). Unset: the cloud's own endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^https?://[^\s/]+(/\S*)?$"))]
    pub endpoint: Option<String>,

    /// AWS region of the bucket (s3:// only). Unset: `AWS_REGION` of the pods, or the
    /// default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,

    /// Address buckets in the path (`https://host/bucket/key`), as most S3-compatible
    /// stores need (s3:// only).
    #[serde(default)]
    pub path_style: bool,

    /// Allow a plain-http endpoint (in-cluster emulators and test stores only).
    #[serde(default)]
    pub allow_http: bool,
}
