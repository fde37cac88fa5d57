//! Autoscaler settings.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use crate::Duration;

/// Automatic scaling of each vertex's parallelism from its busy time, input rates and
/// backlog (see docs/autoscaler.md). Defaults follow Apache Flink's autoscaler.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!has(self.maxParallelism) || self.minParallelism <= self.maxParallelism")
        .message("must not exceed autoscaler.maxParallelism")
        .field_path(".minParallelism"),
    validation = Rule::new("self.targetUtilization - self.utilizationBand > 0.0 && self.targetUtilization + self.utilizationBand <= 1.0")
        .message("targetUtilization ± utilizationBand must stay within (0, 1]")
        .field_path(".utilizationBand"),
)]
pub struct AutoscalerSpec {
    /// `disabled`: no scaling decisions. `recommend`: decide and report (events, status,
    /// metrics) without acting. `active`: apply decisions as savepoint-based rescales
    /// (needs `savepoints.storage`).
    #[serde(default)]
    pub mode: AutoscalerMode,

    /// The autoscaler never sets a parallelism below this.
    #[serde(default = "one")]
    #[schemars(range(min = 1, max = 10000))]
    pub min_parallelism: i32,

    /// The autoscaler never sets a parallelism above this. Unset: `spec.maxParallelism`, or
    /// no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10000))]
    pub max_parallelism: Option<i32>,

    /// The busy fraction each operator should run at after scaling (0 < x ≤ 1).
    #[serde(default = "default_target_utilization")]
    #[schemars(range(min = 0.01, max = 1.0))]
    pub target_utilization: f64,

    /// No decision is made while every operator's busy fraction is within
    /// `targetUtilization ± utilizationBand`.
    #[serde(default = "default_band")]
    #[schemars(range(min = 0.0, max = 0.99))]
    pub utilization_band: f64,

    /// How much metrics history one decision looks at, e.g. `"15m"`.
    #[serde(default = "default_metrics_window")]
    #[x_kube(validation = Rule::new("duration(self) > duration('0s')").message("must be greater than zero"))]
    pub metrics_window: Duration,

    /// After a (re)start, metrics are ignored for this long while the job warms up.
    #[serde(default = "default_stabilization")]
    pub stabilization_interval: Duration,

    /// A scale-down happens only after it has been recommended continuously for this long.
    #[serde(default = "default_scale_down_delay")]
    pub scale_down_delay: Duration,

    /// A backlog should be worked off within this time after a rescale, e.g. `"30m"`.
    #[serde(default = "default_catch_up")]
    #[x_kube(validation = Rule::new("duration(self) > duration('0s')").message("must be greater than zero"))]
    pub catch_up_duration: Duration,

    /// Expected time to restart the job during a rescale; input that piles up meanwhile is
    /// included in the capacity planned.
    #[serde(default = "default_restart_time")]
    pub restart_time: Duration,

    /// One decision multiplies a vertex's parallelism by at most this.
    #[serde(default = "default_up_factor")]
    #[schemars(range(min = 1.0, max = 1000.0))]
    pub max_scale_up_factor: f64,

    /// One decision divides a vertex's parallelism by at most this (2: at most halved).
    #[serde(default = "default_down_factor")]
    #[schemars(range(min = 1.0, max = 1000.0))]
    pub max_scale_down_factor: f64,
}

/// What the autoscaler may do.
#[derive(
    Serialize, Deserialize, schemars::JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq,
)]
#[serde(rename_all = "kebab-case")]
pub enum AutoscalerMode {
    /// No decisions.
    #[default]
    Disabled,
    /// Decide and report, do not act.
    Recommend,
    /// Decide and rescale.
    Active,
}

fn default_up_factor() -> f64 {
    10.0
}
fn default_down_factor() -> f64 {
    2.0
}
fn one() -> i32 {
    1
}
fn default_target_utilization() -> f64 {
    0.7
}
fn default_band() -> f64 {
    0.3
}
fn default_metrics_window() -> Duration {
    "15m".into()
}
fn default_stabilization() -> Duration {
    "5m".into()
}
fn default_scale_down_delay() -> Duration {
    "1h".into()
}
fn default_catch_up() -> Duration {
    "30m".into()
}
fn default_restart_time() -> Duration {
    "5m".into()
}
