//! What the platform lets a tenant's engine pods be: the image repositories engines may come
//! from and the pod-template fields a tenant may set (the chart's
//! `controlPlane.allowedImageRepositories` and `controlPlane.allowedPodTemplateFields`).
//! Everything else that could reach the node or the cluster — host paths, tolerations of the
//! platform's taints, node selection, priority, another service account — is refused with the
//! field's path. How the pod itself runs (non-root, read-only, no capabilities, no API token)
//! is the operator's, in every mode, and no pod-template field reaches it.

use std::collections::BTreeSet;

use strom_crds::{FlinkJobSpec, Violation};

/// Every pod-template field, by its name in the API.
pub const POD_TEMPLATE_FIELDS: &[&str] = &[
    "labels",
    "annotations",
    "env",
    "envFrom",
    "volumes",
    "volumeMounts",
    "imagePullSecrets",
    "nodeSelector",
    "tolerations",
    "affinity",
    "serviceAccountName",
    "priorityClassName",
];

/// The fields a tenant may set unless the platform says otherwise: what the job itself
/// needs (its labels, settings, secrets, scratch and configuration volumes), nothing that
/// chooses nodes, priorities or identities.
pub const DEFAULT_POD_TEMPLATE_FIELDS: &[&str] = &[
    "labels",
    "annotations",
    "env",
    "envFrom",
    "volumes",
    "volumeMounts",
    "imagePullSecrets",
];

/// The engine image repository tenants may use unless the platform says otherwise.
pub const DEFAULT_IMAGE_REPOSITORY: &str = "strom/engine";

/// Volume sources that hold only what the tenant's own namespace holds. A `projected`
/// volume is allowed with these sources only (no service-account token).
const SAFE_VOLUMES: &[&str] = &[
    "configMap",
    "secret",
    "emptyDir",
    "persistentVolumeClaim",
    "downwardAPI",
    "projected",
];
const SAFE_PROJECTIONS: &[&str] = &["configMap", "secret", "downwardAPI"];

/// The platform's rules for tenants' engine pods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Repositories engine images may come from (`registry/path`, without tag or digest).
    pub image_repositories: Vec<String>,
    /// Pod-template fields tenants may set.
    pub pod_template_fields: BTreeSet<String>,
    /// Whether tenants may name `file://` storage. Only where every "pod" is a process of
    /// one machine (the local cluster): in a real cluster a `file://` path is the disk of
    /// whoever opens it — the control plane's own, with its database, when it deletes a
    /// snapshot.
    pub allow_local_storage: bool,
    /// Object-storage endpoints tenants may name (`spec.objectStorage.endpoint`); without
    /// one, the clouds' own. The control plane deletes snapshots with its own credentials
    /// at that endpoint, and the operator with its own, so an address of the tenant's choice
    /// would receive them.
    pub storage_endpoints: Vec<String>,
    /// Annotations of each tenant's engine service account (`strom-engine` in its
    /// namespace), `{tenant}` replaced by the tenant's name: how the platform binds a cloud
    /// identity per tenant, e.g. `eks.amazonaws.com/role-arn=arn:aws:iam::1:role/strom-{tenant}`.
    pub engine_account_annotations: std::collections::BTreeMap<String, String>,
}

/// The storage fields a tenant writes, by their path in a FlinkJob spec.
const STORAGE_FIELDS: &[&str] = &[
    "/checkpoints/storage",
    "/savepoints/storage",
    "/restore/initialSavepoint",
    "/jobUri",
];

impl Default for Policy {
    fn default() -> Self {
        Policy {
            image_repositories: vec![DEFAULT_IMAGE_REPOSITORY.into()],
            pod_template_fields: DEFAULT_POD_TEMPLATE_FIELDS
                .iter()
                .map(|f| (*f).to_owned())
                .collect(),
            allow_local_storage: false,
            storage_endpoints: Vec::new(),
            engine_account_annotations: Default::default(),
        }
    }
}

impl Policy {
    /// A policy; an unknown pod-template field is an error naming it.
    pub fn new(image_repositories: Vec<String>, fields: Vec<String>) -> Result<Self, String> {
        if let Some(f) = fields
            .iter()
            .find(|f| !POD_TEMPLATE_FIELDS.contains(&f.as_str()))
        {
            return Err(format!(
                "{f:?} is not a pod-template field (they are {})",
                POD_TEMPLATE_FIELDS.join(", ")
            ));
        }
        Ok(Policy {
            image_repositories,
            pod_template_fields: fields.into_iter().collect(),
            allow_local_storage: false,
            storage_endpoints: Vec::new(),
            engine_account_annotations: Default::default(),
        })
    }

    /// Every storage field of the spec as the tenant wrote it (before the platform's defaults)
    /// that names local storage the policy does not allow, by path under `spec.`.
    pub fn check_storage(&self, written: &serde_json::Value) -> Vec<Violation> {
        if self.allow_local_storage {
            return Vec::new();
        }
        STORAGE_FIELDS
            .iter()
            .filter_map(|pointer| {
                let url = written.pointer(pointer)?.as_str()?;
                let local = url
                    .split_once("://")
                    .is_none_or(|(s, _)| s.eq_ignore_ascii_case("file"));
                local.then(|| {
                    Violation::new(
                        format!("spec{}", pointer.replace('/', ".")),
                        "local storage (file://) is not available on this service: name object \
                         storage (s3://, gs://, az://, abfss://)",
                    )
                })
            })
            .collect()
    }

    /// Every way `spec` breaks the policy, by path under `spec.`.
    pub fn check(&self, spec: &FlinkJobSpec) -> Vec<Violation> {
        let mut out = Vec::new();
        let repository = image_repository(&spec.image);
        if !self.image_repositories.iter().any(|r| r == repository) {
            out.push(Violation::new(
                "spec.image",
                format!(
                    "images from {repository:?} are not allowed on this service (allowed: {})",
                    if self.image_repositories.is_empty() {
                        "none".to_owned()
                    } else {
                        self.image_repositories.join(", ")
                    }
                ),
            ));
        }
        if let Some(endpoint) = spec
            .object_storage
            .as_ref()
            .and_then(|o| o.endpoint.as_deref())
            && !crate::tenant_storage::endpoint_allowed(&self.storage_endpoints, endpoint)
        {
            out.push(Violation::new(
                "spec.objectStorage.endpoint",
                format!(
                    "{endpoint:?} is not a storage endpoint of this service (allowed: {}); the \
                     service's credentials go to no other address",
                    if self.storage_endpoints.is_empty() {
                        "the clouds' own only: leave it out".to_owned()
                    } else {
                        self.storage_endpoints.join(", ")
                    }
                ),
            ));
        }
        let Some(template) = &spec.pod_template else {
            return out;
        };
        let value = serde_json::to_value(template).unwrap_or_default();
        for (field, v) in value.as_object().into_iter().flatten() {
            let set = !(v.is_null()
                || v.as_array().is_some_and(Vec::is_empty)
                || v.as_object().is_some_and(serde_json::Map::is_empty));
            if set && !self.pod_template_fields.contains(field) {
                out.push(Violation::new(
                    format!("spec.podTemplate.{field}"),
                    "is set by the platform on this service, not by tenants",
                ));
            }
        }
        for (i, v) in value["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            for (source, s) in v.as_object().into_iter().flatten() {
                if source == "name" {
                    continue;
                }
                let at = format!("spec.podTemplate.volumes[{i}].{source}");
                if !SAFE_VOLUMES.contains(&source.as_str()) {
                    out.push(Violation::new(
                        at,
                        format!(
                            "{source} volumes are not allowed on this service (allowed: {})",
                            SAFE_VOLUMES.join(", ")
                        ),
                    ));
                    continue;
                }
                for (j, p) in s["sources"].as_array().into_iter().flatten().enumerate() {
                    for kind in p.as_object().into_iter().flatten().map(|(k, _)| k) {
                        if !SAFE_PROJECTIONS.contains(&kind.as_str()) {
                            out.push(Violation::new(
                                format!("{at}.sources[{j}].{kind}"),
                                format!(
                                    "projections of {kind} are not allowed on this service \
                                     (allowed: {})",
                                    SAFE_PROJECTIONS.join(", ")
                                ),
                            ));
                        }
                    }
                }
            }
        }
        out
    }
}

/// The repository of an image reference: without its digest (`@sha256:…`) and tag (`:1.0`,
/// after the last `/`, so a registry's port stays).
pub fn image_repository(image: &str) -> &str {
    let image = image.split('@').next().unwrap_or(image);
    match image.rfind(':') {
        Some(i) if !image[i..].contains('/') => &image[..i],
        _ => image,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories_lose_tags_and_digests_but_keep_ports() {
        assert_eq!(image_repository("strom/engine:0.1.0"), "strom/engine");
        assert_eq!(image_repository("strom/engine"), "strom/engine");
        assert_eq!(
            image_repository("registry:5000/strom/engine:1@sha256:ab"),
            "registry:5000/strom/engine"
        );
        assert_eq!(
            image_repository("registry:5000/strom/engine"),
            "registry:5000/strom/engine"
        );
    }

    #[test]
    fn tenants_name_object_storage_unless_the_cluster_is_local() {
        let written = serde_json::json!({
            "checkpoints": {"storage": "file:///data"},
            "savepoints": {"storage": "s3://b/sp"},
            "restore": {"initialSavepoint": "/var/lib/strom-control-plane"},
        });
        let paths: Vec<String> = Policy::default()
            .check_storage(&written)
            .into_iter()
            .map(|v| v.path)
            .collect();
        assert_eq!(
            paths,
            ["spec.checkpoints.storage", "spec.restore.initialSavepoint"]
        );
        let local = Policy {
            allow_local_storage: true,
            ..Policy::default()
        };
        assert!(local.check_storage(&written).is_empty());
    }

    #[test]
    fn unknown_fields_in_the_policy_are_named() {
        let e = Policy::new(vec![], vec!["hostNetwork".into()]).unwrap_err();
        assert!(
            e.contains("\"hostNetwork\" is not a pod-template field"),
            "{e}"
        );
    }
}
