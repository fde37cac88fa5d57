//! The autoscaler's settings, in milliseconds and fractions.

use serde::{Deserialize, Serialize};

/// How the autoscaler decides. [`Config::default`] gives the documented defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// No vertex goes below this parallelism.
    pub min_parallelism: u32,
    /// No vertex goes above this parallelism (`None`: no limit).
    pub max_parallelism: Option<u32>,
    /// The busy fraction each vertex should run at after scaling (0 < x ≤ 1).
    pub target_utilization: f64,
    /// Nothing happens while every vertex's utilization is within
    /// `target_utilization ± utilization_band`.
    pub utilization_band: f64,
    /// How much history one decision looks at.
    pub metrics_window_ms: i64,
    /// After a (re)start, metrics are ignored for this long.
    pub stabilization_ms: i64,
    /// A scale-down happens only once recommended continuously for this long.
    pub scale_down_delay_ms: i64,
    /// A backlog should be worked off within this long.
    pub catch_up_ms: i64,
    /// Expected time a rescale keeps the job down.
    pub restart_ms: i64,
    /// One decision multiplies a vertex's parallelism by at most this.
    pub max_scale_up_factor: f64,
    /// One decision divides a vertex's parallelism by at most this.
    pub max_scale_down_factor: f64,
    /// A scale-up counts as ineffective when the vertex's processing capacity grew by less
    /// than this fraction of what the added subtasks should have brought.
    pub effectiveness_threshold: f64,
}

impl Default for Config {
    fn default() -> Self {
        const MINUTE: i64 = 60_000;
        Config {
            min_parallelism: 1,
            max_parallelism: None,
            target_utilization: 0.7,
            utilization_band: 0.3,
            metrics_window_ms: 15 * MINUTE,
            stabilization_ms: 5 * MINUTE,
            scale_down_delay_ms: 60 * MINUTE,
            catch_up_ms: 30 * MINUTE,
            restart_ms: 5 * MINUTE,
            max_scale_up_factor: 10.0,
            max_scale_down_factor: 2.0,
            effectiveness_threshold: 0.1,
        }
    }
}
