//! `…/applications/{app}/snapshots`: the application's savepoints — list, take, delete.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use strom_crds::status::SavepointState;

use super::request::if_match;
use super::{Outcome, load_app, load_at, noted, record};
use crate::auth::{Principal, Role};
use crate::db::now_ms;
use crate::error::{ApiError, Result};
use crate::model::{Operation, Snapshot};
use crate::store::applications::Desired;
use crate::sync::{Applied, after_commit, apply};
use crate::{AppState, k8s, store};

/// The application's snapshots (savepoints), oldest first.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/applications/{app}/snapshots",
    params(("tenant" = String, Path), ("app" = String, Path)),
    responses((status = 200, body = [Snapshot])), security(("token" = [])), tag = "snapshots")]
pub async fn list_snapshots(
    State(state): State<AppState>,
    who: Principal,
    Path((tenant, app)): Path<(String, String)>,
) -> Result<Json<Vec<Snapshot>>> {
    who.check(&tenant, Role::Viewer)?;
    load_app(&state, &tenant, &app).await?;
    let Some(job) = k8s::get_job(&state.kube, &tenant, &app).await? else {
        return Ok(Json(Vec::new()));
    };
    let disposed = store::snapshots::disposed(&state.db.pool, &tenant, &app).await?;
    let out = job
        .status
        .map(|s| s.savepoints)
        .unwrap_or_default()
        .into_iter()
        .map(|s| Snapshot {
            state: if s.location.as_ref().is_some_and(|l| disposed.contains(l)) {
                "Disposed".into()
            } else {
                format!("{:?}", s.state)
            },
            id: s.id,
            location: s.location,
            trigger: format!("{:?}", s.trigger),
            time: s.time.0.to_string(),
        })
        .collect();
    Ok(Json(out))
}

/// Take a snapshot (savepoint) of the running job now.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/applications/{app}/snapshots",
    params(("tenant" = String, Path), ("app" = String, Path), ("If-Match" = String, Header, description = "current version")),
    responses((status = 202, body = Operation)), security(("token" = [])), tag = "snapshots")]
pub async fn create_snapshot(
    State(state): State<AppState>,
    who: Principal,
    Path((tenant, app)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response> {
    who.check(&tenant, Role::Editor)?;
    let expected = if_match(&headers)?;
    let current = load_at(&state, &tenant, &app, expected).await?;
    if current.desired != Desired::Running {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_running",
            "a snapshot needs a running job",
        ));
    }
    let nonce = now_ms().max(current.nonce + 1);
    let spec = current.typed_spec()?;
    let job = Applied {
        version: current.version,
        spec: &spec,
        running: true,
        nonce,
        at_checkpoint: current.at_checkpoint,
    };
    apply(&state, &tenant, &app, job, true).await?;
    let mut tx = state.db.pool.begin().await?;
    store::applications::set_nonce(&mut *tx, &tenant, &app, nonce).await?;
    store::intents::record(&mut *tx, &tenant, &app, now_ms(), None).await?;
    tx.commit().await?;
    after_commit(&state, &tenant, &app).await;
    let op = record(
        &state,
        &tenant,
        &app,
        "snapshot",
        current.version,
        Outcome::Accepted,
        "savepoint requested".into(),
    )
    .await?;
    Ok(noted(
        (StatusCode::ACCEPTED, Json(op)),
        format!("snapshot of {app}"),
    ))
}

/// Delete a snapshot from storage, through the same crash-safe disposal the operator's
/// retention uses. The savepoint the running job restored from, the one its next start
/// restores (a rollback or an upgrade under way), and the newest savepoint of a stopped
/// application (it resumes from it), are refused.
#[utoipa::path(delete, path = "/v1/tenants/{tenant}/applications/{app}/snapshots/{id}",
    params(("tenant" = String, Path), ("app" = String, Path), ("id" = String, Path), ("If-Match" = String, Header, description = "current version")),
    responses((status = 200, body = Operation), (status = 409, body = crate::error::ErrorBody)),
    security(("token" = [])), tag = "snapshots")]
pub async fn delete_snapshot(
    State(state): State<AppState>,
    who: Principal,
    Path((tenant, app, id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response> {
    who.check(&tenant, Role::Editor)?;
    let expected = if_match(&headers)?;
    let current = load_at(&state, &tenant, &app, expected).await?;
    let job = k8s::get_job(&state.kube, &tenant, &app)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no snapshot {id:?}")))?;
    let disposed = store::snapshots::disposed(&state.db.pool, &tenant, &app).await?;
    // Completed and still in storage: (id, location), oldest first.
    let completed: Vec<(String, String)> = job
        .status
        .iter()
        .flat_map(|s| &s.savepoints)
        .filter(|s| s.state == SavepointState::Completed)
        .filter_map(|s| Some((s.id.clone(), s.location.clone()?)))
        .filter(|(_, location)| !disposed.contains(location))
        .collect();
    let location = completed
        .iter()
        .find(|(sid, _)| *sid == id)
        .map(|(_, location)| location.clone())
        .ok_or_else(|| ApiError::not_found(format!("no completed snapshot {id:?}")))?;
    let in_use = |why: String| Err(ApiError::new(StatusCode::CONFLICT, "snapshot_in_use", why));
    if current.desired != Desired::Running && completed.last().is_some_and(|(sid, _)| *sid == id) {
        return in_use(format!(
            "{id} is the newest savepoint of the stopped application: it resumes from it"
        ));
    }
    if k8s::restored_from(&state.kube, &tenant, &app)
        .await?
        .as_deref()
        == Some(location.as_str())
    {
        return in_use(format!(
            "{id} is the savepoint the running job started from"
        ));
    }
    if job.savepoints_in_use().contains(&location) {
        return in_use(format!(
            "{id} is the savepoint the next start of the job restores (a rollback or an \
             upgrade under way)"
        ));
    }
    // Only what this application's own savepoint directory can hold is deleted: the status
    // is written by the operator, but a location in it is never trusted to name a place.
    let (parent, dir) = own_savepoint(&state, &tenant, &app, &location).await?;
    let options = job
        .spec
        .storage_options()
        .into_iter()
        .fold(strom_storage::StorageOptions::new(), |o, (k, v)| {
            o.with(k, &v)
        });
    let parent = strom_storage::Location::open(&parent, &options).map_err(ApiError::internal)?;
    strom_storage::layout::discard(&parent, &dir)
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                "storage_unavailable",
                format!("{id} could not be deleted: {e}"),
            )
        })?;
    store::snapshots::insert_disposed(&state.db.pool, &tenant, &app, &location, now_ms()).await?;
    let op = record(
        &state,
        &tenant,
        &app,
        "dispose-snapshot",
        current.version,
        Outcome::Succeeded,
        format!("{id} ({location}) deleted"),
    )
    .await?;
    Ok(noted(Json(op), format!("deleted snapshot {id}")))
}

/// The savepoint directory (its parent and its name `sp-N`) that `location` names, if it
/// is one of the application's own: directly under `<savepoints.storage>/<namespace>/<app>/
/// savepoints` for the savepoint storage of one of its versions (recomputed here, not read
/// from the status). Anything else is refused, and nothing is deleted.
async fn own_savepoint(
    state: &AppState,
    tenant: &str,
    app: &str,
    location: &str,
) -> Result<(String, String)> {
    let refuse = || {
        ApiError::new(
            StatusCode::CONFLICT,
            "foreign_location",
            format!(
                "the recorded location {location} is not in this application's savepoint \
                 directory; it is not deleted"
            ),
        )
    };
    let (parent, dir) = location
        .trim_end_matches('/')
        .rsplit_once('/')
        .ok_or_else(refuse)?;
    let numbered = dir
        .strip_prefix("sp-")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    if !numbered {
        return Err(refuse());
    }
    let ns = k8s::namespace_of(tenant);
    let versions = store::versions::list(&state.db.pool, tenant, app).await?;
    let own = versions.iter().any(|v| {
        v.spec
            .pointer("/savepoints/storage")
            .and_then(serde_json::Value::as_str)
            .is_some_and(|storage| {
                strom_storage::layout::JobDirs::new(storage, &ns, app).savepoints() == parent
            })
    });
    if own {
        Ok((parent.to_owned(), dir.to_owned()))
    } else {
        Err(refuse())
    }
}
