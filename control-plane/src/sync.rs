//! Kubernetes follows the database. A change commits to the database together with an
//! intent row (no database lock is held across a Kubernetes call); then `sync` applies what
//! the database says to the application's FlinkJob, records its generation and removes the
//! intent. A request that dies between its commit and that last step (a crash, a killed
//! pod, Kubernetes not answering) leaves its intent behind, and the reconciler (`run`)
//! finishes it: the database is the record, the FlinkJob is brought to it. What Kubernetes
//! would refuse is asked first with a dry run, before anything is committed.

use std::time::Duration;

use strom_crds::FlinkJobSpec;
use strom_crds::spec::{DesiredState, RestoreSpec, UpgradeMode};

use crate::db::now_ms;
use crate::error::{ApiError, Result};
use crate::store::applications::Desired;
use crate::{AppState, k8s, store};

/// The FlinkJob the application runs as.
pub struct Applied<'a> {
    /// Its application's version.
    pub version: i64,
    /// The spec.
    pub spec: &'a FlinkJobSpec,
    /// Running, or suspended.
    pub running: bool,
    /// The snapshot nonce (0: none requested).
    pub nonce: i64,
    /// Stop and resume at the latest checkpoint instead of through a savepoint.
    pub at_checkpoint: bool,
}

/// Set in the environment, the process aborts right after a FlinkJob is applied and before
/// the database records it: how the crash test stops the control plane exactly there.
pub const ABORT_AFTER_APPLY: &str = "STROM_CONTROL_PLANE_TEST_ABORT_AFTER_APPLY";

/// Applies the application's FlinkJob (`dry_run`: asks whether Kubernetes would take it);
/// returns its generation.
pub async fn apply(
    state: &AppState,
    tenant: &str,
    app: &str,
    job: Applied<'_>,
    dry_run: bool,
) -> Result<i64> {
    let mut spec = job.spec.clone();
    spec.state = if job.running {
        DesiredState::Running
    } else {
        DesiredState::Suspended
    };
    if job.nonce > 0
        && let Some(sp) = spec.savepoints.as_mut()
    {
        sp.trigger_nonce = Some(job.nonce);
    }
    spec.upgrade_mode = if job.at_checkpoint {
        UpgradeMode::LastState
    } else {
        UpgradeMode::Savepoint
    };
    // Engines run as the tenant's own service account unless the platform lets tenants
    // choose one.
    spec.pod_template
        .get_or_insert_with(Default::default)
        .service_account_name
        .get_or_insert_with(|| k8s::ENGINE_SERVICE_ACCOUNT.to_owned());
    let quota = store::tenants::get(&state.db.pool, tenant)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no tenant {tenant:?}")))?;
    k8s::ensure_namespace(
        &state.kube,
        &quota,
        &state.policy.engine_account_annotations,
    )
    .await?;
    Ok(k8s::apply_job(&state.kube, tenant, app, job.version, spec, dry_run).await?)
}

/// Brings the application's FlinkJob to what the database says, if an intent asks for it:
/// applies it (or deletes it, for an application that is gone), records the generation
/// and removes the intent. One sync per application at a time in this process, so the
/// last to run applies the latest committed state.
pub async fn sync(state: &AppState, tenant: &str, app: &str) -> Result<()> {
    let _turn = state.sync_locks.of(tenant, app).lock().await;
    let Some(intent) = store::intents::get(&state.db.pool, tenant, app).await? else {
        return Ok(());
    };
    let applied = match store::applications::get(&state.db.pool, tenant, app).await? {
        None => {
            k8s::delete_job(&state.kube, tenant, app).await?;
            None
        }
        // A stopped application that never ran has no FlinkJob, and gets none.
        Some(a)
            if a.desired == Desired::Stopped
                && k8s::get_job(&state.kube, tenant, app).await?.is_none() =>
        {
            None
        }
        Some(a) => {
            let mut spec = a.typed_spec()?;
            if let Some(from) = &intent.restore_from {
                spec.restore = Some(RestoreSpec {
                    initial_savepoint: Some(from.as_str().into()),
                    ..Default::default()
                });
            }
            let job = Applied {
                version: a.version,
                spec: &spec,
                running: a.desired == Desired::Running,
                nonce: a.nonce,
                at_checkpoint: a.at_checkpoint,
            };
            Some((a.version, apply(state, tenant, app, job, false).await?))
        }
    };
    if std::env::var_os(ABORT_AFTER_APPLY).is_some() {
        tracing::error!("{ABORT_AFTER_APPLY} is set: aborting after the apply");
        std::process::abort();
    }
    let mut tx = state.db.pool.begin().await?;
    if let Some((version, generation)) = applied {
        store::versions::set_generation(&mut *tx, tenant, app, version, generation).await?;
    }
    // A newer intent recorded meanwhile stays: its own sync (waiting for this one) applies it.
    store::intents::finish(&mut *tx, tenant, app, &intent.id).await?;
    tx.commit().await?;
    Ok(())
}

/// After a change is committed: its sync, whose failure does not undo the change (the
/// intent stays and the reconciler finishes it), so it is logged, not answered.
pub async fn after_commit(state: &AppState, tenant: &str, app: &str) {
    if let Err(e) = sync(state, tenant, app).await {
        tracing::warn!(
            tenant, app, error = %e.body.message,
            "the change is recorded but its FlinkJob is not updated yet; the reconciler retries"
        );
    }
}

/// Finishes every intent older than `grace` (its request died or is stuck); returns how
/// many it finished.
pub async fn reconcile(state: &AppState, grace: Duration) -> Result<usize> {
    let grace = i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);
    let stale = store::intents::older_than(&state.db.pool, now_ms().saturating_sub(grace)).await?;
    let mut finished = 0;
    for intent in stale {
        match sync(state, &intent.tenant, &intent.application).await {
            Ok(()) => {
                tracing::info!(tenant = %intent.tenant, app = %intent.application, "a change left unfinished is applied to its FlinkJob");
                finished += 1;
            }
            Err(e) => tracing::warn!(
                tenant = %intent.tenant, app = %intent.application, error = %e.body.message,
                "cannot apply a change left unfinished yet; retrying later"
            ),
        }
    }
    Ok(finished)
}

/// The reconciler: every `every`, finishes intents older than `grace`.
pub async fn run(state: AppState, grace: Duration, every: Duration) {
    loop {
        if let Err(e) = reconcile(&state, grace).await {
            tracing::warn!(error = %e.body.message, "the reconciler cannot read the intents");
        }
        tokio::time::sleep(every).await;
    }
}

/// One lock per application (striped: 64 locks shared by hash), so that syncs of one
/// application in this process run one after the other.
#[derive(Clone)]
pub struct SyncLocks(std::sync::Arc<[tokio::sync::Mutex<()>; 64]>);

impl Default for SyncLocks {
    fn default() -> Self {
        SyncLocks(std::sync::Arc::new(std::array::from_fn(|_| {
            tokio::sync::Mutex::new(())
        })))
    }
}

impl SyncLocks {
    fn of(&self, tenant: &str, app: &str) -> &tokio::sync::Mutex<()> {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (tenant, app).hash(&mut h);
        &self.0[(h.finish() % 64) as usize]
    }
}
