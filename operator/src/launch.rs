//! How the operator starts an engine: every argument of `strom-engine run` in one typed
//! value, built from the FlinkJob and the deployment, and written out as arguments in one
//! place.

use strom_crds::{FlinkJob, FlinkJobSpec};

use crate::reconcile::checkpoint_dir;
use crate::resources::{CONTROL_PORT, storage_options};

/// Periodic checkpointing of a deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpointing {
    /// The job's checkpoint directory.
    pub dir: String,
    /// How often (a duration such as `10s`).
    pub interval: String,
    /// How many completed checkpoints to keep.
    pub retained: i32,
    /// The deployment's identity: a restarted container resumes its own latest checkpoint.
    pub deployment: String,
}

/// What an engine starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restore {
    /// The snapshot (a URL).
    pub from: String,
    /// Drop state that belongs to no operator of this job instead of refusing to start.
    pub allow_non_restored_state: bool,
}

/// `strom-engine run`, as the operator launches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineLaunch {
    /// The pipeline file in the container.
    pub job_file: String,
    /// Default parallelism.
    pub parallelism: i32,
    /// Where the control endpoint listens (Kubernetes expands `$(POD_IP)`).
    pub listen: String,
    /// Parallelism of single vertices, by id.
    pub vertex_parallelism: Vec<(String, i32)>,
    /// Checkpointing, when the spec has checkpoint storage.
    pub checkpoints: Option<Checkpointing>,
    /// Options of the state storage (endpoint, region, …), never credentials.
    pub storage_options: Vec<(&'static str, String)>,
    /// The snapshot to start from.
    pub restore: Option<Restore>,
    /// The file in the container holding the job's control token.
    pub control_token_file: String,
    /// The job's savepoint directory: the only place the engine writes savepoints to.
    pub savepoint_dir: Option<String>,
}

impl EngineLaunch {
    /// The launch of deployment `deployment` of `job` at `spec`, restoring `restore_from`.
    pub fn of(
        job: &FlinkJob,
        spec: &FlinkJobSpec,
        job_file: &str,
        restore_from: Option<&str>,
        deployment: &str,
    ) -> EngineLaunch {
        EngineLaunch {
            job_file: job_file.to_owned(),
            parallelism: spec.parallelism,
            listen: format!("$(POD_IP):{CONTROL_PORT}"),
            vertex_parallelism: spec
                .vertex_parallelism
                .iter()
                .map(|(id, n)| (id.clone(), *n))
                .collect(),
            checkpoints: spec.checkpoints.as_ref().and_then(|cp| {
                Some(Checkpointing {
                    dir: checkpoint_dir(job, spec)?,
                    interval: cp.interval.0.clone(),
                    retained: cp.retained,
                    deployment: deployment.to_owned(),
                })
            }),
            storage_options: storage_options(spec),
            restore: restore_from.map(|from| Restore {
                from: from.to_owned(),
                allow_non_restored_state: spec
                    .restore
                    .as_ref()
                    .is_some_and(|r| r.allow_non_restored_state),
            }),
            control_token_file: format!(
                "{}/{}",
                crate::resources::CONTROL_DIR,
                strom_crds::objects::CONTROL_TOKEN_KEY
            ),
            savepoint_dir: spec
                .savepoints
                .as_ref()
                .and_then(|sp| sp.storage.as_ref())
                .map(|storage| crate::reconcile::job_dirs(job, storage).savepoints()),
        }
    }

    /// The container's arguments.
    pub fn args(&self) -> Vec<String> {
        let mut args = vec![
            "run".to_owned(),
            self.job_file.clone(),
            "--parallelism".into(),
            self.parallelism.to_string(),
            "--listen".into(),
            self.listen.clone(),
            // A bounded job that finishes keeps its endpoint up to say so: an exited
            // container would be restarted and counted as a failure.
            "--stay-up-when-finished".into(),
        ];
        for (id, n) in &self.vertex_parallelism {
            args.extend(["--vertex-parallelism".into(), format!("{id}={n}")]);
        }
        if let Some(cp) = &self.checkpoints {
            args.extend([
                "--checkpoint-dir".into(),
                cp.dir.clone(),
                "--checkpoint-interval".into(),
                cp.interval.clone(),
                "--retain-checkpoints".into(),
                cp.retained.to_string(),
                "--deployment".into(),
                cp.deployment.clone(),
            ]);
        }
        for (k, v) in &self.storage_options {
            args.extend(["--storage-option".into(), format!("{k}={v}")]);
        }
        if let Some(r) = &self.restore {
            args.extend(["--restore".into(), r.from.clone()]);
            if r.allow_non_restored_state {
                args.push("--allow-non-restored-state".into());
            }
        }
        args.extend([
            "--control-token-file".into(),
            self.control_token_file.clone(),
        ]);
        if let Some(dir) = &self.savepoint_dir {
            args.extend(["--savepoint-dir".into(), dir.clone()]);
        }
        args
    }
}
