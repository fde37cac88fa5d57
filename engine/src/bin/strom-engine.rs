//! `strom-engine run JOB.yaml [--parallelism N]`: runs a job on this machine. On a terminal
//! it shows live progress (records per second in and out, the watermark, late records); a
//! bounded job exits 0 when it finishes. A bad spec exits 2 with every problem listed by path.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use strom_engine::cli::{self, setup};
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
        /// A file holding the job's control token: `POST /v1/savepoints` then needs
        /// `Authorization: Bearer <token>` (the operator mounts one from a Secret).
        #[arg(long)]
        control_token_file: Option<PathBuf>,
        /// Write savepoints only directly under this directory (the operator passes the
        /// job's savepoint directory); requests for other targets are refused.
        #[arg(long)]
        savepoint_dir: Option<String>,
        /// When a bounded job finishes, keep serving the control endpoint (its state
        /// `Finished`) until the process is terminated, rather than exit: under Kubernetes
        /// an exited container is restarted, so the operator passes this and reads the
        /// finished state (as Flink's `execution.shutdown-on-application-finish: false`).
        #[arg(long, requires = "listen")]
        stay_up_when_finished: bool,
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
        /// A file holding the job's control token, when the job was started with one.
        #[arg(long)]
        token_file: Option<PathBuf>,
    },
    /// Print the JSON schema of job specs (committed as crds/job-schema.json).
    Schema,
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
    let (job, parallelism, vertex_parallelism, dry_run, listen, snapshots, control, stay_up) =
        match Cli::parse().command {
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
                control_token_file,
                savepoint_dir,
                stay_up_when_finished,
            } => (
                job,
                parallelism,
                vertex_parallelism,
                dry_run,
                listen,
                setup::Snapshots {
                    checkpoint_dir,
                    checkpoint_interval,
                    retain_checkpoints,
                    restore,
                    allow_non_restored_state,
                    storage_options,
                    deployment,
                },
                setup::Control {
                    token_file: control_token_file,
                    savepoint_dir,
                },
                stay_up_when_finished,
            ),
            Command::Savepoint {
                endpoint,
                target,
                stop,
                token_file,
            } => return cli::savepoint::run(&endpoint, &target, stop, token_file.as_deref()),
            Command::Schema => {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&JobSpec::json_schema())
                        .expect("a schema serializes")
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
    let overrides = match setup::vertex_parallelism(&vertex_parallelism) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
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
        for line in cli::topology::describe(&plan) {
            println!("{line}");
        }
        return ExitCode::SUCCESS;
    }
    let guard = match setup::guard(&control) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let setup::Setup {
        options,
        storage_options,
    } = match setup::setup(&snapshots) {
        Ok(s) => s,
        Err(e @ strom_engine::Error::Stopped { .. }) => {
            // Stay idle until the pod is removed rather than exit and be restarted again.
            eprintln!("{e}; idle until removed");
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
            storage_options,
            guard,
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
    cli::progress::follow(&running);
    let result = running.wait();
    *view.outcome.lock().expect("outcome") = Some(match &result {
        Ok(s) if s.stopped => (strom_protocol::JobState::Canceled, None),
        Ok(_) => (strom_protocol::JobState::Finished, None),
        Err(e) => (strom_protocol::JobState::Failed, Some(e.to_string())),
    });
    match result {
        Ok(s) if s.stopped => {
            let last = cli::progress::last_savepoint(&view);
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
            if stay_up {
                eprintln!(
                    "the job finished; the control endpoint stays up (--stay-up-when-finished) until the process is terminated"
                );
                loop {
                    std::thread::park();
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: the job failed: {e}");
            ExitCode::from(1)
        }
    }
}
