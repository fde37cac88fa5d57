//! The managed-service REST API over FlinkJobs: tenants (each a namespace with a quota),
//! API tokens (hashed, scoped, expiring, revocable), applications with immutable versions
//! (start, stop, update as a savepoint upgrade, scale, rollback, delete), snapshots,
//! status, events, operations and an audit log; SQLite or PostgreSQL. See
//! `docs/control-plane.md`.

pub mod auth;
mod body;
pub mod db;
pub mod error;
pub mod k8s;
pub mod metrics;
mod middleware;
pub mod model;
pub mod policy;
pub mod quota;
pub mod rate_limit;
pub mod routes;
pub mod spec;
pub mod store;
pub mod sync;
pub mod tenant_storage;

pub use body::{Body, OptBody};

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use utoipa::OpenApi;

use crate::auth::VerifiedCache;
use crate::db::Db;
use crate::error::ApiError;
use crate::routes::{applications, lifecycle, observe, snapshots, tenants, tokens, versions};
use crate::tenant_storage::TenantStorage;

/// What every request shares.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub db: Db,
    /// The Kubernetes client.
    pub kube: kube::Client,
    /// The platform's checkpoint and savepoint storage; each tenant's state stays in its
    /// prefix (`tenant_storage`).
    pub storage: String,
    /// What tenants' engine pods may be.
    pub policy: policy::Policy,
    /// Prometheus metrics.
    pub metrics: metrics::SharedMetrics,
    /// Secrets verified in this process.
    pub verified: VerifiedCache,
    /// Requests per token, failed authentications per client address.
    pub limits: rate_limit::RateLimits,
    /// One Kubernetes sync per application at a time.
    pub sync_locks: sync::SyncLocks,
}

impl AppState {
    /// Where tenant `tenant` may keep state.
    pub fn tenant_storage(&self, tenant: &str) -> TenantStorage {
        TenantStorage::new(&self.storage, &k8s::namespace_of(tenant))
    }
}

/// The OpenAPI document of the API.
#[derive(OpenApi)]
#[openapi(
    info(title = "Strom control plane", description = "Applications on Strom, a managed streaming service: tenants, tokens, applications and their versions, snapshots, status, events, operations and audit.", version = "v1"),
    paths(
        tenants::create_tenant, tenants::list_tenants, tenants::get_tenant,
        tokens::create_token, tokens::list_tokens, tokens::revoke_token,
        tokens::create_platform_token, tokens::list_platform_tokens, tokens::revoke_platform_token,
        applications::create_application, applications::list_applications,
        applications::get_application, applications::update_application,
        applications::delete_application, lifecycle::start_application,
        lifecycle::stop_application, applications::scale_application,
        applications::rollback_application,
        versions::list_versions, versions::list_operations, snapshots::list_snapshots,
        snapshots::create_snapshot, snapshots::delete_snapshot,
        observe::application_status, observe::application_events, observe::audit_log,
    ),
    modifiers(&Security),
)]
pub struct ApiDoc;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        doc.components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "token",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
    }
}

/// The OpenAPI document as pretty JSON (what `/openapi.json` serves and
/// `control-plane/openapi.json` holds).
pub fn openapi_json() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .expect("the document serializes")
}

/// The API's routes.
pub fn router(state: AppState) -> Router {
    let app = "/v1/tenants/{tenant}/applications/{app}";
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/metrics",
            get(|State(s): State<AppState>| async move {
                (
                    [("content-type", "text/plain; version=0.0.4")],
                    s.metrics.render(),
                )
            }),
        )
        .route(
            "/openapi.json",
            get(|| async { ([("content-type", "application/json")], openapi_json()) }),
        )
        .route(
            "/v1/tenants",
            post(tenants::create_tenant).get(tenants::list_tenants),
        )
        .route("/v1/tenants/{tenant}", get(tenants::get_tenant))
        .route(
            "/v1/tokens",
            post(tokens::create_platform_token).get(tokens::list_platform_tokens),
        )
        .route(
            "/v1/tokens/{id}",
            axum::routing::delete(tokens::revoke_platform_token),
        )
        .route(
            "/v1/tenants/{tenant}/tokens",
            post(tokens::create_token).get(tokens::list_tokens),
        )
        .route(
            "/v1/tenants/{tenant}/tokens/{id}",
            axum::routing::delete(tokens::revoke_token),
        )
        .route(
            "/v1/tenants/{tenant}/applications",
            post(applications::create_application).get(applications::list_applications),
        )
        .route(
            app,
            get(applications::get_application)
                .put(applications::update_application)
                .delete(applications::delete_application),
        )
        .route(&format!("{app}/start"), post(lifecycle::start_application))
        .route(&format!("{app}/stop"), post(lifecycle::stop_application))
        .route(
            &format!("{app}/scale"),
            post(applications::scale_application),
        )
        .route(
            &format!("{app}/rollback"),
            post(applications::rollback_application),
        )
        .route(&format!("{app}/versions"), get(versions::list_versions))
        .route(&format!("{app}/operations"), get(versions::list_operations))
        .route(
            &format!("{app}/snapshots"),
            get(snapshots::list_snapshots).post(snapshots::create_snapshot),
        )
        .route(
            &format!("{app}/snapshots/{{id}}"),
            axum::routing::delete(snapshots::delete_snapshot),
        )
        .route(&format!("{app}/status"), get(observe::application_status))
        .route(&format!("{app}/events"), get(observe::application_events))
        .route("/v1/tenants/{tenant}/audit", get(observe::audit_log))
        .fallback(|| async {
            ApiError::not_found("no such route; the routes are in /openapi.json")
        })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::idempotency,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::audit,
        ))
        .with_state(state)
}
