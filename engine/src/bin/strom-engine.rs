//! `strom-engine run JOB.yaml [--parallelism N]`: runs a job on this machine. On a terminal
//! it shows live progress (records per second in and out, the watermark, late records); a
//! bounded job exits 0 when it finishes. A bad spec exits 2 with every problem listed by path.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Duration;

use clap::{Parser, Subcommand};
use strom_engine::runtime::summary;
use strom_engine::spec::JobSpec;

#[derive(Parser)]
#[command(version, about = "The Strom streaming engine")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a job spec (YAML or JSON) until it finishes (bounded sources) or Ctrl-C.
    Run {
        /// The job spec.
        job: PathBuf,
        /// Default parallelism of keyed and generated steps.
        #[arg(long, short, default_value_t = 1)]
        parallelism: usize,
        /// The parallelism of one scalable vertex, `ID=N` (ids as `/v1/job` reports them:
        /// `source:<name>` or the name of a window, deduplicate, top-N, interval-join or
        /// throttle step); repeat for several. The operator's autoscaler sets these.
        #[arg(long = "vertex-parallelism", value_name = "ID=N")]
        vertex_parallelism: Vec<String>,
        /// Only check the spec and print the dataflow it becomes.
        #[arg(long)]
        dry_run: bool,
        /// Serve the control endpoint (/v1/job, /metrics, /healthz, /readyz) here, e.g.
        /// `127.0.0.1:8081`.
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Take checkpoints into this directory: `s3://bucket/path`, `gs://…`, `az://…`,
        /// `abfss://…`, `file:///path` or a local path. Credentials come from the cloud's
        /// standard environment (IRSA, workload identity, managed identity, keys in env).
        #[arg(long)]
        checkpoint_dir: Option<String>,
        /// A storage option, `key=value`, for checkpoints, restores and savepoints; repeat
        /// for several: endpoint, region, path_style, allow_http, retry_timeout,
        /// max_retries, request_timeout, connect_timeout, or any object_store key.
        #[arg(long = "storage-option", value_name = "KEY=VALUE")]
        storage_options: Vec<String>,
        /// Time between checkpoints, e.g. `10s`, `500ms`.
        #[arg(long, default_value = "10s")]
        checkpoint_interval: String,
        /// How many completed checkpoints to keep.
        #[arg(long, default_value_t = 3)]
        retain_checkpoints: usize,
        /// Start from this snapshot: a savepoint or checkpoint directory, or a checkpoint
        /// directory's root (its newest complete checkpoint is used).
        #[arg(long)]
        restore: Option<String>,
        /// Start even if the snapshot holds state that no operator of this job takes (that
        /// state is dropped, and listed).
        #[arg(long)]
        allow_non_restored_state: bool,
        /// The deployment this run belongs to (set by the operator, the same for every
        /// restart of one deployment). When the checkpoint directory holds a complete
        /// checkpoint of this deployment, the run resumes from it rather than from
        /// `--restore`: a restarted engine continues where it failed.
        #[arg(long, requires = "checkpoint_dir")]
        deployment: Option<String>,
    },
    /// Take a savepoint of a running job through its control endpoint and print where it
    /// went (with --stop, the job stops once it is written).
    Savepoint {
        /// The job's control endpoint, e.g. `http://127.0.0.1:8081`.
        endpoint: String,
        /// Directory to write the savepoint to (`s3://…`, `gs://…`, `az://…`, `file:///…` or
        /// a local path); the job opens it with its own storage options.
        #[arg(long)]
        target: String,
        /// Stop the job after the savepoint.
        #[arg(long)]
        stop: bool,
    },
    /// Print the JSON schema of job specs (committed as crds/job-schema.json).
    Schema,
}

/// Snapshot options of `run`.
struct Snapshots {
    checkpoint_dir: Option<String>,
    checkpoint_interval: String,
    retain_checkpoints: usize,
    restore: Option<String>,
    allow_non_restored_state: bool,
    storage_options: Vec<String>,
    deployment: Option<String>,
}

fn storage_options(pairs: &[String]) -> Result<strom_storage::StorageOptions, String> {
    pairs
        .iter()
        .try_fold(strom_storage::StorageOptions::new(), |o, p| o.parse_pair(p))
        .map_err(|e| format!("--storage-option: {e}"))
}

fn main() -> ExitCode {
    // Warnings (a failed checkpoint, old checkpoints not deleted) go to stderr; STROM_LOG
    // (e.g. `info`, `strom_storage=debug`) shows more.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("STROM_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        // Colour only on a terminal: pod logs and files get plain text.
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
    let (job, parallelism, vertex_parallelism, dry_run, listen, snapshots) = match Cli::parse()
        .command
    {
        Command::Run {
            job,
            parallelism,
            vertex_parallelism,
            dry_run,
            listen,
            checkpoint_dir,
            checkpoint_interval,
            retain_checkpoints,
            restore,
            allow_non_restored_state,
            storage_options,
            deployment,
        } => (
            job,
            parallelism,
            vertex_parallelism,
            dry_run,
            listen,
            Snapshots {
                checkpoint_dir,
                checkpoint_interval,
                retain_checkpoints,
                restore,
                allow_non_restored_state,
                storage_options,
                deployment,
            },
        ),
        Command::Savepoint {
            endpoint,
            target,
            stop,
        } => return savepoint(&endpoint, &target, stop),
        Command::Schema => {
            println!(
                "{}",
                serde_json::to_string_pretty(&JobSpec::json_schema()).expect("a schema serializes")
            );
            return ExitCode::SUCCESS;
        }
    };
    let text = match std::fs::read_to_string(&job) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", job.display());
            return ExitCode::from(2);
        }
    };
    let spec = match JobSpec::parse(&text) {
        Ok(s) => s,
        Err(problems) => {
            eprintln!("error: {} is not a valid job:", job.display());
            for p in &problems.0 {
                eprintln!("  {p}");
            }
            return ExitCode::from(2);
        }
    };
    let mut overrides = std::collections::BTreeMap::new();
    for pair in &vertex_parallelism {
        match pair.rsplit_once('=').map(|(id, n)| (id, n.parse::<u32>())) {
            Some((id, Ok(n))) if !id.is_empty() => {
                overrides.insert(id.to_owned(), n);
            }
            _ => {
                eprintln!("error: --vertex-parallelism {pair}: expected ID=N with N a number");
                return ExitCode::from(2);
            }
        }
    }
    let plan = match strom_engine::plan::Plan::build_with(&spec, parallelism, &overrides) {
        Ok(p) => p,
        Err(problems) if problems.0.iter().all(|p| p.path.starts_with("--")) => {
            for p in &problems.0 {
                eprintln!("error: {p}");
            }
            return ExitCode::from(2);
        }
        Err(problems) => {
            eprintln!("error: {} is not a valid job:", job.display());
            for p in &problems.0 {
                eprintln!("  {p}");
            }
            return ExitCode::from(2);
        }
    };
    if dry_run {
        for v in &plan.vertices {
            let inputs: Vec<String> = v
                .inputs
                .iter()
                .map(|e| {
                    let late = if e.port == 1 { " late output" } else { "" };
                    format!("{}{late} ({:?})", plan.vertices[e.from].name, e.partition)
                })
                .collect();
            println!(
                "{} ×{}{}",
                v.name,
                v.parallelism,
                if inputs.is_empty() {
                    String::new()
                } else {
                    format!(" <- {}", inputs.join(", "))
                }
            );
        }
        return ExitCode::SUCCESS;
    }
    let options = match run_options(&snapshots) {
        Ok(o) => o,
        Err(e) if e.starts_with(STOPPED) => {
            // A container restarted after a stop-with-savepoint (Kubernetes restarts exited
            // containers of a StatefulSet): stay idle until the pod is removed rather than
            // exit and be restarted again.
            eprintln!("{}; idle until removed", &e[STOPPED.len() + 2..]);
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let running = match strom_engine::runtime::Running::start_with(plan, options) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the job: {e}");
            return ExitCode::from(2);
        }
    };
    for d in &running.dropped {
        eprintln!("warning: state dropped (non-restored state allowed):{d}");
    }
    let view = strom_engine::control::JobView::with_checkpoints(
        running.metrics.clone(),
        parallelism as u32,
        running.started,
        strom_engine::control::Checkpoints {
            shared: running.checkpoints.clone(),
            enabled: snapshots.checkpoint_dir.is_some(),
            requests: running.savepoint_requests(),
            storage_options: storage_options(&snapshots.storage_options).unwrap_or_default(),
        },
    );
    if let Some(addr) = listen {
        match strom_engine::control::serve(view.clone(), addr) {
            Ok(bound) => eprintln!("control endpoint on http://{bound} (/v1/job, /metrics)"),
            Err(e) => {
                eprintln!("error: cannot listen on {addr}: {e}");
                running.cancel();
                return ExitCode::from(2);
            }
        }
    }
    let live = std::io::stderr().is_terminal();
    let mut last = (0u64, 0u64);
    while !running.is_finished() {
        std::thread::sleep(Duration::from_millis(if live { 1000 } else { 100 }));
        if live && !running.is_finished() {
            let s = summary(&running.metrics, running.started.elapsed());
            let watermark = running
                .metrics
                .iter()
                .filter(|m| !m.vertex.starts_with("source:"))
                .map(|m| m.watermark.load(Ordering::Relaxed))
                .min()
                .unwrap_or(i64::MIN);
            let wm = if watermark == i64::MIN {
                "-".to_owned()
            } else if watermark == i64::MAX {
                "end".to_owned()
            } else {
                watermark.to_string()
            };
            let checkpoint = match running.checkpoints.completed.load(Ordering::Relaxed) {
                0 => String::new(),
                n => format!("  checkpoint {n}"),
            };
            eprint!(
                "\r{:>6.1}s  in {:>12} ({:>10}/s)  out {:>12} ({:>10}/s)  late {:>8}  watermark {wm}{checkpoint}   ",
                s.elapsed.as_secs_f64(),
                s.records_in,
                s.records_in - last.0,
                s.records_out,
                s.records_out - last.1,
                s.late_records
            );
            last = (s.records_in, s.records_out);
        }
    }
    if live {
        eprintln!();
    }
    let result = running.wait();
    *view.outcome.lock().expect("outcome") = Some(match &result {
        Ok(s) if s.stopped => (strom_protocol::JobState::Canceled, None),
        Ok(_) => (strom_protocol::JobState::Finished, None),
        Err(e) => (strom_protocol::JobState::Failed, Some(e.to_string())),
    });
    match result {
        Ok(s) if s.stopped => {
            let last = running_history_last(&view);
            eprintln!(
                "stopped with a savepoint after {:.2} s: {} records in, {} out{last}",
                s.elapsed.as_secs_f64(),
                s.records_in,
                s.records_out
            );
            ExitCode::SUCCESS
        }
        Ok(s) => {
            eprintln!(
                "finished in {:.2} s: {} records in, {} out, {} late",
                s.elapsed.as_secs_f64(),
                s.records_in,
                s.records_out,
                s.late_records
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: the job failed: {e}");
            ExitCode::from(1)
        }
    }
}

/// Where the newest savepoint went, for the last line of a stopped job.
fn running_history_last(view: &strom_engine::control::JobView) -> String {
    view.checkpoints()
        .history
        .iter()
        .rev()
        .find(|h| h.kind == "savepoint")
        .map(|h| format!("; savepoint {}", h.location))
        .unwrap_or_default()
}

/// `strom-engine savepoint`: requests one and waits for it.
fn savepoint(endpoint: &str, target: &str, stop: bool) -> ExitCode {
    let base = endpoint.trim_end_matches('/');
    // A relative local path means the same directory to the job as to us.
    let target = match std::path::absolute(target) {
        Ok(p) if !target.contains("://") => p.display().to_string(),
        _ => target.to_owned(),
    };
    let request = strom_protocol::SavepointRequest { target, stop };
    let started: strom_protocol::SavepointStatus = match ureq::post(format!("{base}/v1/savepoints"))
        .send_json(&request)
        .and_then(|mut r| r.body_mut().read_json())
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {base} did not take the savepoint request: {e}");
            return ExitCode::from(1);
        }
    };
    eprintln!("savepoint {} requested", started.id);
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let status: strom_protocol::SavepointStatus =
            match ureq::get(format!("{base}/v1/savepoints/{}", started.id))
                .call()
                .and_then(|mut r| r.body_mut().read_json())
            {
                Ok(s) => s,
                Err(e) if stop => {
                    // The job stopped (and took its endpoint with it) after writing it.
                    eprintln!("the job stopped ({e}); see its log for the savepoint's location");
                    return ExitCode::SUCCESS;
                }
                Err(e) => {
                    eprintln!("error: cannot poll the savepoint: {e}");
                    return ExitCode::from(1);
                }
            };
        match status.status.as_str() {
            "completed" => {
                println!("{}", status.location.unwrap_or_default());
                return ExitCode::SUCCESS;
            }
            "failed" => {
                eprintln!(
                    "error: the savepoint failed: {}",
                    status.error.unwrap_or_default()
                );
                return ExitCode::from(1);
            }
            _ => {}
        }
    }
}

/// Marks the error of a deployment that was stopped with a savepoint.
const STOPPED: &str = "stopped";

/// Checkpointing and restore as the flags say.
fn run_options(s: &Snapshots) -> Result<strom_engine::runtime::RunOptions, String> {
    use strom_engine::snapshot::coordinator::CheckpointConfig;
    use strom_engine::snapshot::storage::Storage;
    let storage_options = storage_options(&s.storage_options)?;
    let mut options = strom_engine::runtime::RunOptions {
        allow_non_restored_state: s.allow_non_restored_state,
        ..Default::default()
    };
    if let Some(dir) = &s.checkpoint_dir {
        let interval = strom_engine::spec::Duration(s.checkpoint_interval.clone())
            .millis()
            .map_err(|e| format!("--checkpoint-interval: {e}"))?;
        if interval <= 0 {
            return Err("--checkpoint-interval: must be greater than zero".into());
        }
        options.checkpoints = Some(CheckpointConfig {
            storage: Storage::open_with(dir, &storage_options)
                .map_err(|e| format!("--checkpoint-dir: {e}"))?,
            interval: Duration::from_millis(interval as u64),
            retain: s.retain_checkpoints.max(1),
        });
    }
    options.deployment = s.deployment.clone();
    let mut restore = s.restore.clone();
    if let (Some(deployment), Some(c)) = (&s.deployment, &options.checkpoints)
        && let Some(own) = c
            .storage
            .latest_of_deployment(deployment)
            .map_err(|e| format!("--checkpoint-dir: {e}"))?
    {
        let latest = Storage::open_with(&own, &storage_options)
            .and_then(|st| st.latest())
            .map_err(|e| format!("--checkpoint-dir: {e}"))?;
        if latest.metadata.stopped {
            // Stopped with a savepoint: what follows belongs to whatever restores that
            // savepoint. Running again would repeat its output.
            return Err(format!(
                "{STOPPED}: deployment {deployment} was stopped with a savepoint at {own}; it does not run again"
            ));
        }
        eprintln!("deployment {deployment} restarted: resuming from its latest checkpoint {own}");
        restore = Some(own);
    }
    if let Some(url) = &restore {
        let latest = Storage::open_with(url, &storage_options)
            .and_then(|st| st.latest())
            .map_err(|e| format!("--restore: {e}"))?;
        for skipped in &latest.skipped {
            eprintln!("warning: not restoring from {skipped}");
        }
        eprintln!(
            "restoring from {} ({:?} {})",
            latest.url, latest.metadata.kind, latest.metadata.id
        );
        options.restore = Some((latest.metadata, latest.state));
        options.restored_from = Some(latest.url);
    }
    Ok(options)
}
