//! What the control plane does in Kubernetes: a namespace per tenant, a FlinkJob per
//! application (server-side apply, field manager `strom-control-plane`), and reading back
//! its status, its engine's metrics and its events.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{
    LimitRange, LimitRangeItem, LimitRangeSpec, Namespace, Pod, ResourceQuota, ResourceQuotaSpec,
    ServiceAccount,
};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, Patch, PatchParams};
use strom_crds::{FlinkJob, FlinkJobSpec, ObjectNames};

use crate::model::{JobEvent, Tenant};

/// The field manager of what the control plane writes.
pub const MANAGER: &str = "strom-control-plane";

/// The namespace of `tenant`'s jobs.
pub fn namespace_of(tenant: &str) -> String {
    format!("strom-{tenant}")
}

/// The service account every engine of a tenant runs as, made in the tenant's namespace (a
/// tenant's own identity: the platform binds it to a cloud identity for the tenant's storage
/// prefix through its annotations).
pub const ENGINE_SERVICE_ACCOUNT: &str = "strom-engine";

/// The label naming the tenant a namespace belongs to.
pub const TENANT_LABEL: &str = "strom.dev/tenant";

/// The labels of a tenant's namespace: whose it is, and the Pod Security Standards'
/// `restricted` profile enforced on every pod in it (the engine pods meet it; anything
/// else a tenant might get created there is held to it too).
pub fn namespace_labels(tenant: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "app.kubernetes.io/managed-by".to_owned(),
            MANAGER.to_owned(),
        ),
        (TENANT_LABEL.to_owned(), tenant.to_owned()),
        (
            "pod-security.kubernetes.io/enforce".to_owned(),
            "restricted".to_owned(),
        ),
        (
            "pod-security.kubernetes.io/enforce-version".to_owned(),
            "latest".to_owned(),
        ),
        (
            "pod-security.kubernetes.io/warn".to_owned(),
            "restricted".to_owned(),
        ),
        (
            "pod-security.kubernetes.io/audit".to_owned(),
            "restricted".to_owned(),
        ),
    ])
}

/// Creates `tenant`'s namespace and its engines' service account, or brings existing ones of
/// its own up to date (labels and annotations included); refuses a namespace that exists and
/// is not the tenant's, so a tenant named `system` cannot land in the platform's
/// `strom-system`.
pub async fn ensure_namespace(
    client: &Client,
    quota: &Tenant,
    account_annotations: &BTreeMap<String, String>,
) -> crate::error::Result<()> {
    let tenant = quota.name.as_str();
    let ns = namespace_of(tenant);
    let namespaces: Api<Namespace> = Api::all(client.clone());
    if let Some(existing) = namespaces.get_opt(&ns).await? {
        let labels = existing.metadata.labels.unwrap_or_default();
        let ours = match labels.get(TENANT_LABEL) {
            Some(t) => t == tenant,
            // Made by an earlier control plane, before namespaces carried their tenant.
            None => {
                labels
                    .get("app.kubernetes.io/managed-by")
                    .map(String::as_str)
                    == Some(MANAGER)
            }
        };
        if !ours {
            return Err(crate::error::ApiError::new(
                axum::http::StatusCode::CONFLICT,
                "namespace_taken",
                format!(
                    "namespace {ns:?} already exists and does not belong to tenant {tenant:?}; \
                     choose another tenant name"
                ),
            ));
        }
    }
    let object = Namespace {
        metadata: ObjectMeta {
            name: Some(ns.clone()),
            labels: Some(namespace_labels(tenant)),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    namespaces
        .patch(
            &ns,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&object),
        )
        .await?;
    let account = ServiceAccount {
        metadata: ObjectMeta {
            name: Some(ENGINE_SERVICE_ACCOUNT.to_owned()),
            namespace: Some(ns.clone()),
            labels: Some(BTreeMap::from([(
                TENANT_LABEL.to_owned(),
                tenant.to_owned(),
            )])),
            annotations: Some(
                account_annotations
                    .iter()
                    .map(|(k, v)| (k.clone(), v.replace("{tenant}", tenant)))
                    .collect(),
            ),
            ..ObjectMeta::default()
        },
        automount_service_account_token: Some(false),
        ..ServiceAccount::default()
    };
    Api::<ServiceAccount>::namespaced(client.clone(), &ns)
        .patch(
            ENGINE_SERVICE_ACCOUNT,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&account),
        )
        .await?;
    let (resource_quota, limit_range) = namespace_limits(quota)?;
    Api::<ResourceQuota>::namespaced(client.clone(), &ns)
        .patch(
            QUOTA_NAME,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&resource_quota),
        )
        .await?;
    Api::<LimitRange>::namespaced(client.clone(), &ns)
        .patch(
            QUOTA_NAME,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&limit_range),
        )
        .await?;
    Ok(())
}

/// The name of the ResourceQuota and the LimitRange of a tenant's namespace.
pub const QUOTA_NAME: &str = "strom-tenant";

/// The tenant's quota as Kubernetes enforces it in its namespace: a ResourceQuota of the
/// CPU and memory its pods may request and limit themselves to, and of its FlinkJobs; a
/// LimitRange that gives containers without resources a modest default (a quota on CPU
/// and memory refuses a pod that names none) and caps any one container at the quota.
pub fn namespace_limits(tenant: &Tenant) -> crate::error::Result<(ResourceQuota, LimitRange)> {
    let q = crate::quota::Quota::of(tenant)?;
    let cpu = Quantity(crate::quota::cpu_text(q.total.cpu_milli));
    let memory = Quantity(crate::quota::memory_text(q.total.memory_bytes));
    let meta = || ObjectMeta {
        name: Some(QUOTA_NAME.to_owned()),
        namespace: Some(namespace_of(&tenant.name)),
        labels: Some(BTreeMap::from([(
            TENANT_LABEL.to_owned(),
            tenant.name.clone(),
        )])),
        ..ObjectMeta::default()
    };
    let resource_quota = ResourceQuota {
        metadata: meta(),
        spec: Some(ResourceQuotaSpec {
            hard: Some(BTreeMap::from([
                ("requests.cpu".to_owned(), cpu.clone()),
                ("limits.cpu".to_owned(), cpu.clone()),
                ("requests.memory".to_owned(), memory.clone()),
                ("limits.memory".to_owned(), memory.clone()),
                (
                    "count/flinkjobs.strom.dev".to_owned(),
                    Quantity(tenant.max_applications.to_string()),
                ),
            ])),
            ..ResourceQuotaSpec::default()
        }),
        ..ResourceQuota::default()
    };
    let modest = BTreeMap::from([
        ("cpu".to_owned(), Quantity("500m".to_owned())),
        ("memory".to_owned(), Quantity("512Mi".to_owned())),
    ]);
    let limit_range = LimitRange {
        metadata: meta(),
        spec: Some(LimitRangeSpec {
            limits: vec![LimitRangeItem {
                type_: "Container".to_owned(),
                default: Some(modest.clone()),
                default_request: Some(modest),
                max: Some(BTreeMap::from([
                    ("cpu".to_owned(), cpu),
                    ("memory".to_owned(), memory),
                ])),
                ..LimitRangeItem::default()
            }],
        }),
    };
    Ok((resource_quota, limit_range))
}

/// Creates or updates the application's FlinkJob (or, with `dry_run`, only asks the API
/// server whether it would); returns its generation.
pub async fn apply_job(
    client: &Client,
    tenant: &str,
    name: &str,
    version: i64,
    spec: FlinkJobSpec,
    dry_run: bool,
) -> Result<i64, kube::Error> {
    let ns = namespace_of(tenant);
    let mut job = FlinkJob::new(name, spec);
    job.metadata.namespace = Some(ns.clone());
    job.metadata.labels = Some(BTreeMap::from([
        ("strom.dev/tenant".to_owned(), tenant.to_owned()),
        ("strom.dev/application".to_owned(), name.to_owned()),
        ("strom.dev/version".to_owned(), version.to_string()),
    ]));
    let mut params = PatchParams::apply(MANAGER).force();
    params.dry_run = dry_run;
    let applied = Api::<FlinkJob>::namespaced(client.clone(), &ns)
        .patch(name, &params, &Patch::Apply(&job))
        .await?;
    Ok(applied.metadata.generation.unwrap_or(0))
}

/// The application's FlinkJob, if there is one.
pub async fn get_job(
    client: &Client,
    tenant: &str,
    name: &str,
) -> Result<Option<FlinkJob>, kube::Error> {
    Api::<FlinkJob>::namespaced(client.clone(), &namespace_of(tenant))
        .get_opt(name)
        .await
}

/// Deletes the application's FlinkJob (the operator stops it with a savepoint first).
pub async fn delete_job(client: &Client, tenant: &str, name: &str) -> Result<(), kube::Error> {
    match Api::<FlinkJob>::namespaced(client.clone(), &namespace_of(tenant))
        .delete(name, &DeleteParams::default())
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

/// The snapshot the application's running engine started from (the StatefulSet's
/// `strom.dev/restored-from` annotation).
pub async fn restored_from(
    client: &Client,
    tenant: &str,
    name: &str,
) -> Result<Option<String>, kube::Error> {
    let sets: Api<k8s_openapi::api::apps::v1::StatefulSet> =
        Api::namespaced(client.clone(), &namespace_of(tenant));
    Ok(sets
        .get_opt(&ObjectNames::of(name).engine)
        .await?
        .and_then(|s| s.metadata.annotations)
        .and_then(|a| a.get(strom_crds::objects::RESTORED_FROM).cloned()))
}

/// The engine's `GET /v1/job`, through its pod's address; `None` while it has no pod or
/// does not answer (logged).
pub async fn engine_status(
    client: &Client,
    tenant: &str,
    name: &str,
) -> Option<strom_protocol::JobStatus> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace_of(tenant));
    let ip = pods
        .get_opt(&ObjectNames::of(name).pod)
        .await
        .ok()
        .flatten()?
        .status?
        .pod_ip?;
    let engine = strom_protocol::EngineClient::new(
        format!("http://{ip}:{}", strom_protocol::routes::CONTROL_PORT),
        Duration::from_secs(3),
    );
    let answer = tokio::task::spawn_blocking(move || engine.job())
        .await
        .ok()?;
    answer
        .inspect_err(|e| tracing::debug!(error = %e, "the engine did not answer"))
        .ok()
}

/// The events of the application's FlinkJob, oldest first.
pub async fn events(
    client: &Client,
    tenant: &str,
    name: &str,
) -> Result<Vec<JobEvent>, kube::Error> {
    let all = Api::<Event>::namespaced(client.clone(), &namespace_of(tenant))
        .list(&ListParams::default())
        .await?;
    let mut out: Vec<(String, JobEvent)> = all
        .items
        .into_iter()
        .filter(|e| {
            e.regarding.as_ref().is_some_and(|r| {
                r.kind.as_deref() == Some("FlinkJob") && r.name.as_deref() == Some(name)
            })
        })
        .map(|e| {
            let time = e
                .series
                .as_ref()
                .map(|s| s.last_observed_time.0.to_string())
                .or_else(|| e.event_time.as_ref().map(|t| t.0.to_string()))
                .unwrap_or_default();
            (
                time.clone(),
                JobEvent {
                    kind: e.type_.unwrap_or_default(),
                    reason: e.reason.unwrap_or_default(),
                    message: e.note.unwrap_or_default(),
                    time,
                },
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out.into_iter().map(|(_, e)| e).collect())
}
