//! The decision: samples + state + config + now → what each vertex's parallelism should be.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::metrics::{Sample, VertexRates, rates};

/// What the autoscaler remembers between decisions (the operator keeps it with the samples,
/// so that it survives operator restarts).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    /// Scale-downs being recommended, per vertex: since when, and the highest parallelism
    /// recommended in that time.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub scale_down: BTreeMap<String, PendingScaleDown>,
    /// Scale-ups made and not yet judged for effectiveness, per vertex.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub scale_ups: BTreeMap<String, ScaleUp>,
    /// Vertices whose last scale-up did not raise their throughput: not scaled up again.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub ineffective: BTreeSet<String>,
}

/// A scale-down recommended continuously since `since_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingScaleDown {
    /// First recommended (epoch ms).
    pub since_ms: i64,
    /// The highest parallelism recommended since.
    pub highest: u32,
}

/// A scale-up made, to be judged once the new parallelism has been measured.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScaleUp {
    /// Decided at (epoch ms).
    pub at_ms: i64,
    /// Parallelism before.
    pub from: u32,
    /// Parallelism after.
    pub to: u32,
    /// The vertex's true processing rate before (records/s, all subtasks).
    pub true_rate: f64,
}

/// What a decision came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// No metrics yet.
    NoMetrics,
    /// The job (re)started recently; metrics are ignored until `until_ms`.
    Stabilizing {
        /// End of stabilization (epoch ms).
        until_ms: i64,
    },
    /// Not yet a full metrics window since stabilization; the first decision comes at
    /// `until_ms`.
    CollectingMetrics {
        /// When the window is full (epoch ms).
        until_ms: i64,
    },
    /// The sources' input rate changed within the window and is still changing: the
    /// decision waits (at the latest until `until_ms`) rather than act on a mix of old and
    /// new load.
    LoadChanging {
        /// When to look again (epoch ms).
        until_ms: i64,
    },
    /// Every vertex is within its utilization band: nothing to do.
    InBand,
    /// Some vertex is outside its band, but no parallelism can change (bounds, a blocked
    /// scale-up, a vertex the engine fixes, or the recommendation equals the current one).
    Hold,
    /// A scale-down is recommended and waits for the scale-down delay, until `at_ms`.
    ScaleDownPending {
        /// When the earliest pending scale-down becomes due (epoch ms).
        at_ms: i64,
    },
    /// Rescale to [`Decision::parallelism`].
    Scale,
}

impl Outcome {
    /// A short CamelCase name (for metrics labels and status).
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::NoMetrics => "NoMetrics",
            Outcome::Stabilizing { .. } => "Stabilizing",
            Outcome::CollectingMetrics { .. } => "CollectingMetrics",
            Outcome::LoadChanging { .. } => "LoadChanging",
            Outcome::InBand => "InBand",
            Outcome::Hold => "Hold",
            Outcome::ScaleDownPending { .. } => "ScaleDownPending",
            Outcome::Scale => "Scale",
        }
    }
}

/// One vertex in a decision: what was measured and what is recommended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VertexReport {
    /// The vertex id.
    pub id: String,
    /// Parallelism now.
    pub parallelism: u32,
    /// Parallelism the formulas recommend (after bounds, factors and alignment).
    pub recommended: u32,
    /// Parallelism this decision sets (`parallelism` unless the outcome is `Scale`).
    pub new_parallelism: u32,
    /// Records in per second.
    pub input_rate: f64,
    /// Busy fraction (0..=1).
    pub busy: f64,
    /// Records per second at 100% busy, all subtasks (`None`: not measurable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub true_rate: Option<f64>,
    /// Records per second the vertex must sustain (input and backlog growth at the sources,
    /// carried along the graph).
    pub target_rate: f64,
    /// Extra records per second to work off the backlog within the catch-up duration.
    pub catch_up_rate: f64,
    /// A source's backlog (records).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backlog: Option<f64>,
    /// (target + catch-up) ÷ true rate: the busy fraction the vertex would need now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utilization: Option<f64>,
    /// Records per second of capacity the recommendation provides for.
    pub required_capacity: f64,
    /// Why the parallelism does not simply follow the formulas, if it does not (alignment
    /// to partitions, a blocked scale-up, a pending scale-down, a fixed vertex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// A source's partition count, when the recommendation was moved to fit it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aligned_to_partitions: Option<u32>,
}

/// The result of [`decide`].
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// What it came to.
    pub outcome: Outcome,
    /// Every vertex, in graph order (empty until there is a full window).
    pub vertices: Vec<VertexReport>,
    /// With `Scale`: the new parallelism of every scalable vertex.
    pub parallelism: BTreeMap<String, u32>,
    /// The state to keep for the next decision.
    pub state: State,
    /// Things to tell people once (e.g. an ineffective scale-up was detected).
    pub notices: Vec<String>,
    /// One line for people: what was decided and why.
    pub summary: String,
}

fn fmt_rate(r: f64) -> String {
    if r >= 100.0 {
        format!("{r:.0}/s")
    } else {
        format!("{r:.1}/s")
    }
}

fn minutes(ms: i64) -> String {
    let s = (ms.max(0) + 999) / 1000;
    if s >= 120 {
        format!("{}m", (s + 59) / 60)
    } else {
        format!("{s}s")
    }
}

/// The newest samples of one engine run, oldest first.
fn current_run(samples: &[Sample]) -> &[Sample] {
    let mut start = samples.len().saturating_sub(1);
    while start > 0 && samples[start].same_run(&samples[start - 1]) {
        start -= 1;
    }
    &samples[start..]
}

/// Decides from `samples` (oldest first, as collected), the `state` the previous decision
/// returned, the `config` and the time `now_ms`. Pure: the same inputs give the same
/// decision.
pub fn decide(samples: &[Sample], state: &State, config: &Config, now_ms: i64) -> Decision {
    let mut state = state.clone();
    let hold = |outcome: Outcome, state: State, summary: String| Decision {
        outcome,
        vertices: Vec::new(),
        parallelism: BTreeMap::new(),
        state,
        notices: Vec::new(),
        summary,
    };
    let run = current_run(samples);
    let Some(last) = run.last() else {
        return hold(
            Outcome::NoMetrics,
            state,
            "no metrics from the job yet".into(),
        );
    };
    let stable_from = last.run_started_ms + config.stabilization_ms;
    if now_ms < stable_from {
        return hold(
            Outcome::Stabilizing {
                until_ms: stable_from,
            },
            state,
            format!(
                "the job (re)started recently: metrics count from {} on",
                minutes(stable_from - now_ms)
            ),
        );
    }
    let usable: Vec<&Sample> = run.iter().filter(|s| s.at_ms >= stable_from).collect();
    let window_start = last.at_ms - config.metrics_window_ms;
    let Some(first) = usable.iter().rev().find(|s| s.at_ms <= window_start) else {
        let since = usable.first().map_or(now_ms, |s| s.at_ms);
        let until_ms = since + config.metrics_window_ms;
        return hold(
            Outcome::CollectingMetrics { until_ms },
            state,
            format!(
                "collecting a full metrics window: first decision in {}",
                minutes(until_ms - now_ms)
            ),
        );
    };
    // A load that changed inside the window would make its averages mislead: decide on the
    // window's recent stationary part, or wait until there is one.
    let recent = |from_ms: i64| usable.iter().rev().find(|s| s.at_ms <= from_ms).copied();
    let quarter =
        recent(last.at_ms - config.metrics_window_ms / 4).filter(|q| q.at_ms < last.at_ms);
    let mut first: &Sample = first;
    let mut window_note = String::new();
    if let Some(q) = quarter
        && differ(arrival(first, last), arrival(q, last))
    {
        let mid = recent(last.at_ms - config.metrics_window_ms / 8)
            .filter(|m| m.at_ms > q.at_ms && m.at_ms < last.at_ms);
        if let Some(m) = mid
            && differ(arrival(q, m), arrival(m, last))
        {
            let until_ms = now_ms + config.metrics_window_ms / 8;
            return hold(
                Outcome::LoadChanging { until_ms },
                state,
                format!(
                    "the input rate is changing ({} then {}); deciding once it settles",
                    fmt_rate(arrival(q, m)),
                    fmt_rate(arrival(m, last))
                ),
            );
        }
        window_note = format!(
            " over the last {} (the input rate moved from {} over the window)",
            minutes(last.at_ms - q.at_ms),
            fmt_rate(arrival(first, last))
        );
        first = q;
    }
    let measured = rates(first, last);
    let mut notices = Vec::new();
    let targets = targets(&measured, config);

    // Judge the scale-ups made before: did throughput follow?
    let judged: Vec<String> = state.scale_ups.keys().cloned().collect();
    for id in judged {
        let su = state.scale_ups[&id];
        match measured.iter().find(|v| v.id == id) {
            Some(v) if v.parallelism == su.to => {
                let Some(now_rate) = v.true_rate else {
                    continue;
                };
                let expected = su.true_rate * (f64::from(su.to) / f64::from(su.from) - 1.0);
                let gained = now_rate - su.true_rate;
                if gained < config.effectiveness_threshold * expected {
                    state.ineffective.insert(id.clone());
                    notices.push(format!(
                        "the scale-up of {id} from {} to {} was ineffective: its capacity went \
                         from {} to {} where about {} was expected; {id} is not scaled up \
                         again until it is scaled down or the job changes",
                        su.from,
                        su.to,
                        fmt_rate(su.true_rate),
                        fmt_rate(now_rate),
                        fmt_rate(su.true_rate + expected),
                    ));
                }
                state.scale_ups.remove(&id);
            }
            _ => {
                state.scale_ups.remove(&id);
            }
        }
    }

    let (low, high) = (
        config.target_utilization - config.utilization_band,
        config.target_utilization + config.utilization_band,
    );
    let mut reports = Vec::with_capacity(measured.len());
    let mut outside = Vec::new();
    for (v, (target, catch_up)) in measured.iter().zip(&targets) {
        let capacity = catch_up
            + target * config.restart_ms as f64 / config.catch_up_ms as f64
            + target / config.target_utilization;
        let utilization = match v.true_rate {
            Some(t) => Some((target + catch_up) / t),
            None if v.input_rate > 0.0 => Some(0.0),
            None => None,
        };
        let (recommended, unaligned) = if !v.scalable {
            (v.parallelism, v.parallelism)
        } else {
            match (v.true_rate, utilization) {
                (Some(t), _) => recommend(v, capacity, t, config),
                // Input, but too little busy time to measure: as few subtasks as allowed.
                (None, Some(_)) => recommend(v, 0.0, 1.0, config),
                (None, None) => (v.parallelism, v.parallelism),
            }
        };
        let aligned_to_partitions = v.partitions.filter(|_| recommended != unaligned);
        // Outside the band and able to move: only such vertices change.
        if let Some(u) = utilization
            && (u > high || u < low)
            && recommended != v.parallelism
        {
            outside.push(v.id.clone());
        }
        reports.push(VertexReport {
            id: v.id.clone(),
            parallelism: v.parallelism,
            recommended,
            new_parallelism: v.parallelism,
            input_rate: v.input_rate,
            busy: v.busy,
            true_rate: v.true_rate,
            target_rate: *target,
            catch_up_rate: *catch_up,
            backlog: v.backlog,
            utilization,
            required_capacity: capacity,
            note: match aligned_to_partitions {
                _ if !v.scalable => Some("its parallelism is fixed by the engine".into()),
                Some(parts) => Some(format!(
                    "the formulas give {unaligned}; {recommended} splits its {parts} partitions evenly"
                )),
                None => None,
            },
            aligned_to_partitions,
        });
    }
    // A vertex back in its band (or whose recommendation is its parallelism) ends its
    // pending scale-down: the recommendation was not continuous.
    state.scale_down.retain(|id, _| outside.contains(id));

    if outside.is_empty() {
        return Decision {
            outcome: Outcome::InBand,
            vertices: reports,
            parallelism: BTreeMap::new(),
            state,
            notices,
            summary: format!(
                "every vertex is within its utilization band ({low:.2}–{high:.2}) or at its bound{window_note}"
            ),
        };
    }

    let mut changes = Vec::new();
    let mut pending_until: Option<i64> = None;
    for r in reports.iter_mut().filter(|r| outside.contains(&r.id)) {
        if r.recommended > r.parallelism {
            state.scale_down.remove(&r.id);
            if state.ineffective.contains(&r.id) {
                r.note = Some(format!(
                    "a scale-up to {} is recommended but blocked: the last scale-up of this \
                     vertex did not raise its throughput",
                    r.recommended
                ));
                continue;
            }
            r.new_parallelism = r.recommended;
        } else {
            let p = state
                .scale_down
                .entry(r.id.clone())
                .or_insert(PendingScaleDown {
                    since_ms: now_ms,
                    highest: r.recommended,
                });
            p.highest = p.highest.max(r.recommended);
            let due = p.since_ms + config.scale_down_delay_ms;
            if now_ms < due {
                r.note = Some(format!(
                    "scale-down to {} recommended since {} ago; due in {}",
                    p.highest,
                    minutes(now_ms - p.since_ms),
                    minutes(due - now_ms)
                ));
                pending_until = Some(pending_until.map_or(due, |u: i64| u.min(due)));
                continue;
            }
            r.new_parallelism = p.highest;
        }
        if r.new_parallelism != r.parallelism {
            changes.push(r.id.clone());
        }
    }
    let out_of_band: Vec<String> = reports
        .iter()
        .filter(|r| outside.contains(&r.id))
        .map(|r| format!("{} at {:.2}", r.id, r.utilization.unwrap_or(0.0)))
        .collect();

    let band = format!("outside {low:.2}–{high:.2}: {}", out_of_band.join(", "));
    if changes.is_empty() {
        let outcome = match pending_until {
            Some(at_ms) => Outcome::ScaleDownPending { at_ms },
            None => Outcome::Hold,
        };
        let summary = match outcome {
            Outcome::ScaleDownPending { at_ms } => format!(
                "scale-down recommended ({band}); waiting for the scale-down delay, due in {}",
                minutes(at_ms - now_ms)
            ),
            _ => format!("no parallelism can change ({band}){window_note}"),
        };
        return Decision {
            outcome,
            vertices: reports,
            parallelism: BTreeMap::new(),
            state,
            notices,
            summary,
        };
    }

    let mut parts = Vec::new();
    for r in reports.iter().filter(|r| changes.contains(&r.id)) {
        state.scale_down.remove(&r.id);
        if r.new_parallelism > r.parallelism {
            if let Some(t) = r.true_rate {
                state.scale_ups.insert(
                    r.id.clone(),
                    ScaleUp {
                        at_ms: now_ms,
                        from: r.parallelism,
                        to: r.new_parallelism,
                        true_rate: t,
                    },
                );
            }
        } else {
            state.ineffective.remove(&r.id);
        }
        parts.push(format!(
            "{} {} → {} (utilization {}, target {}{}, true rate {}{})",
            r.id,
            r.parallelism,
            r.new_parallelism,
            r.utilization.map_or("n/a".into(), |u| format!("{u:.2}")),
            fmt_rate(r.target_rate),
            if r.catch_up_rate > 0.0 {
                format!(" + catch-up {}", fmt_rate(r.catch_up_rate))
            } else {
                String::new()
            },
            r.true_rate.map_or("n/a".into(), fmt_rate),
            r.aligned_to_partitions
                .map_or(String::new(), |n| format!(", aligned to {n} partitions")),
        ));
    }
    let parallelism = reports
        .iter()
        .filter(|r| measured.iter().any(|v| v.id == r.id && v.scalable))
        .map(|r| (r.id.clone(), r.new_parallelism))
        .collect();
    Decision {
        outcome: Outcome::Scale,
        vertices: reports,
        parallelism,
        state,
        notices,
        summary: format!("rescale {} ({band}){window_note}", parts.join("; ")),
    }
}

/// Records per second arriving at the sources between two samples: what they read plus
/// how much their backlog grew.
fn arrival(a: &Sample, b: &Sample) -> f64 {
    let secs = (b.at_ms - a.at_ms) as f64 / 1000.0;
    if secs <= 0.0 {
        return 0.0;
    }
    b.vertices
        .iter()
        .zip(&a.vertices)
        .filter(|(v, _)| v.inputs.is_empty())
        .map(|(y, x)| {
            let read = y.records_in.saturating_sub(x.records_in) as f64;
            let grew = match (x.pending, y.pending) {
                (Some(p), Some(q)) => q as f64 - p as f64,
                _ => 0.0,
            };
            (read + grew) / secs
        })
        .sum()
}

/// Whether two rates differ by more than 10% of the larger.
fn differ(a: f64, b: f64) -> bool {
    (a - b).abs() > 0.1 * a.abs().max(b.abs())
}

/// Each vertex's (target rate, catch-up rate): at sources, input plus backlog growth and
/// backlog ÷ catch-up duration; downstream, the sum over inputs of their rates times their
/// observed output/input ratio. Vertices come in graph order from the engine; any input not
/// yet seen (which the engine never produces) counts as zero.
fn targets(measured: &[VertexRates], config: &Config) -> Vec<(f64, f64)> {
    let mut out: Vec<(f64, f64)> = Vec::with_capacity(measured.len());
    for v in measured {
        if v.inputs.is_empty() {
            let target = (v.input_rate + v.backlog_growth.unwrap_or(0.0)).max(0.0);
            let catch_up = v.backlog.unwrap_or(0.0) / (config.catch_up_ms as f64 / 1000.0);
            out.push((target, catch_up));
            continue;
        }
        let (mut target, mut catch_up) = (0.0, 0.0);
        for input in &v.inputs {
            if let Some(i) = measured.iter().position(|u| &u.id == input)
                && i < out.len()
            {
                let u = &measured[i];
                let ratio = if u.input_rate > 0.0 {
                    u.output_rate / u.input_rate
                } else {
                    1.0
                };
                target += out[i].0 * ratio;
                catch_up += out[i].1 * ratio;
            }
        }
        out.push((target, catch_up));
    }
    out
}

/// `ceil(p × capacity ÷ true rate)`, within the bounds and factors, aligned to the
/// partitions; and what it was before the alignment.
fn recommend(v: &VertexRates, capacity: f64, true_rate: f64, config: &Config) -> (u32, u32) {
    let p = f64::from(v.parallelism.max(1));
    let raw = (p * capacity / true_rate)
        .ceil()
        .clamp(1.0, f64::from(u32::MAX)) as u32;
    let by_factor_up = (p * config.max_scale_up_factor).ceil() as u32;
    let by_factor_down = (p / config.max_scale_down_factor).ceil() as u32;
    let upper = config
        .max_parallelism
        .unwrap_or(u32::MAX)
        .min(by_factor_up)
        .max(config.min_parallelism);
    let lower = config.min_parallelism.max(by_factor_down).min(upper);
    let n = raw.clamp(lower, upper);
    let aligned = match v.partitions {
        // More subtasks than partitions would idle.
        Some(parts) if parts > 0 && n >= parts => parts.clamp(lower, upper),
        // The smallest divisor of the partition count at or above n, if within bounds.
        Some(parts) if parts > 0 => (n..=upper.min(parts)).find(|d| parts % d == 0).unwrap_or(n),
        _ => n,
    };
    (aligned, n)
}
