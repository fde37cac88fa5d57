//! The API's request and response bodies.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Role;

/// `POST /v1/tenants`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TenantRequest {
    /// Lower-case DNS label, at most 40 characters; its jobs run in namespace
    /// `strom-<name>`.
    pub name: String,
    /// The most subtasks all its running applications may use together (each counts with
    /// its highest possible parallelism, autoscaler bounds included).
    pub max_parallelism: i64,
    /// The most applications it may run at once.
    pub max_jobs: i64,
    /// The most CPU its running applications may request together, e.g. `16` or `"1500m"`
    /// (each engine requests `spec.resources.cpu` per worker, workers at its highest
    /// possible parallelism); default 64.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub max_cpu: Option<strom_crds::spec::Quantity>,
    /// The most memory its running applications may request together, e.g. `"64Gi"`;
    /// default `256Gi`.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub max_memory: Option<strom_crds::spec::Quantity>,
    /// The most applications it may have, running or not; default 100.
    #[serde(default)]
    pub max_applications: Option<i64>,
    /// The most versions one application may have; default 1000.
    #[serde(default)]
    pub max_versions: Option<i64>,
}

/// A tenant.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Tenant {
    /// Name.
    pub name: String,
    /// Its Kubernetes namespace.
    pub namespace: String,
    /// Quota: subtasks.
    pub max_parallelism: i64,
    /// Quota: running applications.
    pub max_jobs: i64,
    /// Quota: CPU of its running applications (`16`, `1500m`).
    pub max_cpu: String,
    /// Quota: memory of its running applications (`64Gi`).
    pub max_memory: String,
    /// Limit: applications, running or not.
    pub max_applications: i64,
    /// Limit: versions of one application.
    pub max_versions: i64,
    /// Created (RFC 3339).
    pub created_at: String,
}

/// `POST /v1/tenants/{tenant}/tokens`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TokenRequest {
    /// What it may do.
    pub role: Role,
    /// What it is for (shown in listings).
    #[serde(default)]
    pub description: String,
    /// Lifetime, e.g. `720h`, `30m` (units ms, s, m, h); unset: no expiry.
    #[serde(default)]
    pub expires_in: Option<String>,
}

/// `POST /v1/tokens`: a platform admin token.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlatformTokenRequest {
    /// What it is for (shown in listings).
    #[serde(default)]
    pub description: String,
    /// Lifetime, e.g. `720h` (units ms, s, m, h); default `2160h` (90 days), at most
    /// `8760h` (a year).
    #[serde(default)]
    pub expires_in: Option<String>,
}

/// A token as created: the secret is shown this once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedToken {
    /// Its id (for revocation).
    pub id: String,
    /// The token: send it as `Authorization: Bearer <token>`. Not retrievable later.
    pub token: String,
    /// Role.
    pub role: Role,
    /// Expiry (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

/// A token as listed (never its secret).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenInfo {
    /// Id.
    pub id: String,
    /// Role.
    pub role: Role,
    /// What it is for.
    pub description: String,
    /// Created (RFC 3339).
    pub created_at: String,
    /// Expiry (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// Revoked (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
}

/// `POST /v1/tenants/{tenant}/applications`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApplicationRequest {
    /// Lower-case DNS label, at most 45 characters (the FlinkJob's name).
    pub name: String,
    /// The FlinkJob spec (`image`, `job`, `parallelism`, `autoscaler`, …), validated with
    /// the CRD's rules. `state` is set by start and stop; savepoint and checkpoint storage
    /// default to the service's; upgrades always go through savepoints.
    #[schema(value_type = Object)]
    pub spec: serde_json::Value,
    /// What this version changes.
    #[serde(default)]
    pub note: String,
}

/// `PUT /v1/tenants/{tenant}/applications/{app}`: a new version.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateRequest {
    /// The new spec (whole).
    #[schema(value_type = Object)]
    pub spec: serde_json::Value,
    /// What this version changes.
    #[serde(default)]
    pub note: String,
}

/// An application.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Application {
    /// Name.
    pub name: String,
    /// Current version (send it in `If-Match` with every change).
    pub version: i64,
    /// `running` or `stopped`: what it was last told.
    pub desired: String,
    /// The current version's spec.
    #[schema(value_type = Object)]
    pub spec: serde_json::Value,
    /// Created (RFC 3339).
    pub created_at: String,
    /// Last changed (RFC 3339).
    pub updated_at: String,
}

/// One immutable version.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Version {
    /// Number, from 1.
    pub version: i64,
    /// Its spec.
    #[schema(value_type = Object)]
    pub spec: serde_json::Value,
    /// What it changed.
    pub note: String,
    /// Created (RFC 3339).
    pub created_at: String,
    /// The token that created it.
    pub created_by: String,
}

/// The record of one change.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    /// Id.
    pub id: String,
    /// Application.
    pub application: String,
    /// `create`, `update`, `start`, `stop`, `scale`, `rollback`, `delete`, `snapshot`,
    /// `dispose-snapshot`.
    pub kind: String,
    /// The application's version after it.
    pub version: i64,
    /// `accepted` (handed to Kubernetes; the job's status shows its progress) or
    /// `succeeded`.
    pub outcome: String,
    /// What was done.
    pub message: String,
    /// When (RFC 3339).
    pub created_at: String,
}

/// The answer to every change of an application.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Changed {
    /// The application after the change.
    pub application: Application,
    /// The operation recorded.
    pub operation: Operation,
}

/// `POST …/start`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StartRequest {
    /// On the first start only: a snapshot location (`s3://…`, from another application's
    /// snapshots) to start from. Later starts resume the application's own last savepoint.
    #[serde(default)]
    pub restore_from: Option<String>,
}

/// `POST …/stop`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StopRequest {
    /// Take a savepoint first (the default). `false` stops at the latest checkpoint (the
    /// spec must have `checkpoints`), and the next start resumes from it.
    #[serde(default = "yes")]
    pub savepoint: bool,
}

fn yes() -> bool {
    true
}

impl Default for StopRequest {
    fn default() -> Self {
        StopRequest { savepoint: true }
    }
}

/// `POST …/scale`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScaleRequest {
    /// The new parallelism (a new version with only this changed).
    pub parallelism: i32,
}

/// `POST …/rollback`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RollbackRequest {
    /// The version to return to (default: the one before the current).
    #[serde(default)]
    pub version: Option<i64>,
}

/// A snapshot (savepoint) of an application's job.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    /// Id (`sp-<n>`).
    pub id: String,
    /// Where it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// `Manual`, `Periodic`, `Upgrade` or `Suspend`.
    pub trigger: String,
    /// `Pending`, `Completed`, `Failed` or `Disposed`.
    pub state: String,
    /// When (RFC 3339).
    pub time: String,
}

/// An application's job as Kubernetes and its engine report it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationStatus {
    /// `running` or `stopped`.
    pub desired: String,
    /// The FlinkJob's status (lifecycle, parallelism, checkpoints, savepoints, autoscaler,
    /// conditions); absent before the first start.
    #[schema(value_type = Object)]
    pub job: Option<serde_json::Value>,
    /// The engine's `/v1/job` (per-vertex rates and busy time), when it answers.
    #[schema(value_type = Object)]
    pub engine: Option<serde_json::Value>,
}

/// A Kubernetes event of an application's job.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobEvent {
    /// `Normal` or `Warning`.
    pub kind: String,
    /// CamelCase reason, e.g. `RescaleStarted`.
    pub reason: String,
    /// For people.
    pub message: String,
    /// When (RFC 3339).
    pub time: String,
}

/// One audited call.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    /// Id.
    pub id: String,
    /// The token used (`-` when none was valid).
    pub token_id: String,
    /// HTTP method.
    pub method: String,
    /// Path.
    pub path: String,
    /// HTTP status answered.
    pub status: i64,
    /// What happened.
    pub outcome: String,
    /// When (RFC 3339).
    pub at: String,
}

/// A page of a list.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// A page of `items`, read with one more than `limit` to learn whether another page
    /// follows; its cursor is the last item's `key`.
    pub fn of(mut items: Vec<T>, limit: i64, key: impl Fn(&T) -> String) -> Page<T> {
        let limit = usize::try_from(limit).unwrap_or(0);
        let next_cursor = if items.len() > limit {
            items.truncate(limit);
            items.last().map(key)
        } else {
            None
        };
        Page { items, next_cursor }
    }

    /// `Page::of` for items read with their page keys.
    pub fn keyed(rows: Vec<(String, T)>, limit: i64) -> Page<T> {
        let page = Page::of(rows, limit, |(k, _)| k.clone());
        Page {
            items: page.items.into_iter().map(|(_, t)| t).collect(),
            next_cursor: page.next_cursor,
        }
    }
}

/// `?limit=&cursor=`.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// At most this many (1–200, default 50).
    pub limit: Option<i64>,
    /// From a previous page's `nextCursor`.
    pub cursor: Option<String>,
}

impl PageQuery {
    /// The limit, checked.
    pub fn limit(&self) -> Result<i64, crate::error::ApiError> {
        match self.limit {
            None => Ok(50),
            Some(n) if (1..=200).contains(&n) => Ok(n),
            Some(_) => Err(crate::error::ApiError::field(
                "limit",
                "must be between 1 and 200",
            )),
        }
    }
}
