//! A simulated job to exercise [`decide`](crate::decide) over hours or days in
//! milliseconds: a source reading from a queue that a load profile fills, a `work` vertex
//! whose subtasks each process at most `per_subtask_rate` records per second, and a sink.
//! The source reads only what `work` can take (backpressure); what it cannot read waits in
//! the queue as backlog (the source's `pending` records). Every `sample_secs` the counters
//! are sampled and a decision made, exactly as the operator does; a `Scale` decision takes
//! the job down for `restart_secs` (the queue keeps filling) and restarts it with fresh
//! counters at the new parallelism.

use crate::{Config, Decision, Outcome, Sample, State, VertexSample, decide};

/// The simulated job and how it is observed.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    /// Records per second one `work` subtask processes at 100% busy.
    pub per_subtask_rate: f64,
    /// Records per second one source subtask could read at 100% busy.
    pub source_rate: f64,
    /// How long a rescale keeps the job down.
    pub restart_secs: i64,
    /// How often the counters are sampled and a decision made.
    pub sample_secs: i64,
    /// `work`'s parallelism at the start.
    pub start_parallelism: u32,
    /// `work`'s capacity stops growing beyond this many subtasks (an external limit), to
    /// model a scale-up that cannot help; `None`: it scales linearly.
    pub saturates_at: Option<u32>,
}

/// One rescale.
#[derive(Debug, Clone, PartialEq)]
pub struct Rescale {
    /// When it was decided (seconds since the start).
    pub at_secs: i64,
    /// `work`'s parallelism before.
    pub from: u32,
    /// And after.
    pub to: u32,
    /// The decision's summary.
    pub summary: String,
    /// The backlog then (records).
    pub backlog: f64,
}

/// What a simulation did.
#[derive(Debug, Clone, PartialEq)]
pub struct Simulated {
    /// Every rescale, in order.
    pub rescales: Vec<Rescale>,
    /// Each second: (load, `work` parallelism, backlog).
    pub trace: Vec<(f64, u32, f64)>,
    /// Notices the decisions raised (ineffective scale-ups).
    pub notices: Vec<String>,
    /// The last decision.
    pub last: Option<Decision>,
}

/// Runs `model` under `load` (records/s arriving at second t) for `secs` seconds.
pub fn simulate(model: &Model, config: &Config, load: &dyn Fn(f64) -> f64, secs: i64) -> Simulated {
    let mut p = model.start_parallelism;
    let (mut backlog, mut down_until) = (0.0f64, -1i64);
    let mut counters = [(0.0f64, 0.0f64); 3]; // (records, busy ms) per vertex
    let mut run_started = 0i64;
    let mut samples: Vec<Sample> = Vec::new();
    let mut state = State::default();
    let mut out = Simulated {
        rescales: Vec::new(),
        trace: Vec::with_capacity(secs as usize),
        notices: Vec::new(),
        last: None,
    };
    for t in 0..secs {
        let arriving = load(t as f64).max(0.0);
        backlog += arriving;
        if t >= down_until {
            let effective = model.saturates_at.map_or(p, |s| p.min(s));
            let capacity = model.per_subtask_rate * f64::from(effective);
            let processed = backlog.min(capacity);
            backlog -= processed;
            counters[0].0 += processed;
            counters[0].1 += processed / model.source_rate * 1000.0;
            counters[1].0 += processed;
            // Busy in proportion to the work done; the capacity is shared by p subtasks.
            counters[1].1 += processed / capacity * 1000.0 * f64::from(p);
            counters[2].0 += processed;
            counters[2].1 += processed / 1e7 * 1000.0;
        }
        out.trace.push((arriving, p, backlog));
        let now_ms = (t + 1) * 1000;
        if (t + 1) % model.sample_secs != 0 || t < down_until {
            continue;
        }
        let vertex =
            |id: &str, parallelism: u32, inputs: &[&str], c: (f64, f64), pending| VertexSample {
                id: id.into(),
                parallelism,
                inputs: inputs.iter().map(|s| (*s).to_owned()).collect(),
                scalable: id != "sink:out",
                partitions: None,
                records_in: c.0 as u64,
                records_out: c.0 as u64,
                busy_ms: c.1 as u64,
                pending,
            };
        samples.push(Sample {
            at_ms: now_ms,
            run_started_ms: run_started,
            vertices: vec![
                vertex("source:queue", 1, &[], counters[0], Some(backlog as u64)),
                vertex("work", p, &["source:queue"], counters[1], None),
                vertex("sink:out", 1, &["work"], counters[2], None),
            ],
        });
        // Keep what a decision can use: the window plus a little.
        let keep_from = now_ms - config.metrics_window_ms - 2 * model.sample_secs * 1000;
        samples.retain(|s| s.at_ms >= keep_from);
        let d = decide(&samples, &state, config, now_ms);
        state = d.state.clone();
        out.notices.extend(d.notices.iter().cloned());
        if d.outcome == Outcome::Scale
            && let Some(&to) = d.parallelism.get("work")
            && to != p
        {
            out.rescales.push(Rescale {
                at_secs: t + 1,
                from: p,
                to,
                summary: d.summary.clone(),
                backlog,
            });
            p = to;
            down_until = t + 1 + model.restart_secs;
            run_started = down_until * 1000;
            counters = [(0.0, 0.0); 3];
        }
        out.last = Some(d);
    }
    out
}

/// The defaults, a 10-s sampling interval, a 1-minute real restart (the config's estimate
/// stays at its default of 5 minutes), and `work` subtasks of 1000 records/s.
fn model(start_parallelism: u32) -> Model {
    Model {
        per_subtask_rate: 1000.0,
        source_rate: 1_000_000.0,
        restart_secs: 60,
        sample_secs: 10,
        start_parallelism,
        saturates_at: None,
    }
}

/// The step scenario's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct StepFigures {
    /// Load before the step (records/s).
    pub load: f64,
    /// Rescales after the step.
    pub rescales: Vec<Rescale>,
    /// The smallest parallelism that runs 3L at the target utilization and drains the
    /// backlog of the moment of the decision (plus what arrives during the restart) within
    /// the catch-up duration.
    pub minimal_sufficient: u32,
    /// Seconds from the step to the decision.
    pub reaction_secs: i64,
    /// Seconds from the restart to an empty backlog (`None`: never drained).
    pub drained_secs: Option<i64>,
    /// The catch-up duration, seconds.
    pub catch_up_secs: i64,
}

/// Load L = 1000/s on 2 subtasks (utilization 0.5) for 2 hours, then 3L for 4 hours.
pub fn step() -> StepFigures {
    let config = Config::default();
    let m = model(2);
    let (load, step_at) = (1000.0, 2 * 3600);
    let f = move |t: f64| if t < step_at as f64 { load } else { 3.0 * load };
    let run = simulate(&m, &config, &f, 6 * 3600);
    let rescales: Vec<Rescale> = run
        .rescales
        .iter()
        .filter(|r| r.at_secs >= step_at)
        .cloned()
        .collect();
    let first = rescales.first();
    let (decided, restarted) = first.map_or((0, 0), |r| (r.at_secs, r.at_secs + m.restart_secs));
    // Backlog to catch up: at the decision, plus 3L for the restart.
    let backlog = first.map_or(0.0, |r| r.backlog) + 3.0 * load * m.restart_secs as f64;
    let catch_up_secs = config.catch_up_ms / 1000;
    let needed = (3.0 * load / (m.per_subtask_rate * config.target_utilization))
        .max((3.0 * load + backlog / catch_up_secs as f64) / m.per_subtask_rate);
    let drained_secs = run.trace[restarted as usize..]
        .iter()
        .position(|(_, _, b)| *b < 1.0)
        .map(|s| s as i64);
    StepFigures {
        load,
        rescales,
        minimal_sufficient: needed.ceil() as u32,
        reaction_secs: decided - step_at,
        drained_secs,
        catch_up_secs,
    }
}

/// The daily scenario's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct DailyFigures {
    /// Every rescale.
    pub rescales: Vec<Rescale>,
    /// Times a rescale went back to the parallelism the previous one came from (a → b → a).
    pub reversals: usize,
    /// Shortest time between a rescale and the next that reverses it (seconds).
    pub shortest_reversal_secs: Option<i64>,
    /// Largest backlog seen (records) and how long (seconds) any backlog lasted in total.
    pub max_backlog: f64,
    /// Seconds with a backlog of more than one minute of input.
    pub lagging_secs: i64,
    /// The parallelism after each (simulated) hour.
    pub hourly: Vec<u32>,
}

/// A slow sinusoid over a day: 2500 ± 1500 records/s, peak at 6 h, trough at 18 h.
pub fn daily() -> DailyFigures {
    let config = Config::default();
    let m = model(4);
    let day = 86_400.0;
    let f = move |t: f64| 2500.0 + 1500.0 * (2.0 * std::f64::consts::PI * t / day).sin();
    let run = simulate(&m, &config, &f, 86_400);
    let mut reversals = 0;
    let mut shortest: Option<i64> = None;
    for w in run.rescales.windows(2) {
        if w[1].to == w[0].from && w[1].from == w[0].to {
            reversals += 1;
            let gap = w[1].at_secs - w[0].at_secs;
            shortest = Some(shortest.map_or(gap, |s| s.min(gap)));
        }
    }
    DailyFigures {
        reversals,
        shortest_reversal_secs: shortest,
        max_backlog: run.trace.iter().map(|(_, _, b)| *b).fold(0.0, f64::max),
        lagging_secs: run.trace.iter().filter(|(l, _, b)| *b > 60.0 * l).count() as i64,
        hourly: run.trace.iter().step_by(3600).map(|(_, p, _)| *p).collect(),
        rescales: run.rescales,
    }
}

/// A `work` vertex that cannot go faster than 2 subtasks' worth (an external limit), under
/// a load it cannot keep up with: the scale-up beyond 2 is detected as ineffective.
pub fn ineffective() -> Simulated {
    let config = Config::default();
    let m = Model {
        saturates_at: Some(2),
        ..model(2)
    };
    simulate(&m, &config, &|_| 3000.0, 4 * 3600)
}
