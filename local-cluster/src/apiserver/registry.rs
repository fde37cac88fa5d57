//! The resource types the API server serves: the built-in kinds a job needs, and the kinds
//! that CustomResourceDefinitions add while it runs.

use std::sync::{Arc, RwLock};

use serde_json::Value;

use crate::admission::SchemaValidator;

/// Where the scale subresource reads and writes replica counts.
#[derive(Debug, Clone)]
pub struct ScalePaths {
    /// JSON path of the desired replica count, e.g. `.spec.replicas`.
    pub spec_replicas: String,
    /// JSON path of the observed replica count, e.g. `.status.replicas`.
    pub status_replicas: String,
    /// JSON path of the label selector string, if any.
    pub label_selector: Option<String>,
}

/// A printer column of a CRD (`additionalPrinterColumns`).
#[derive(Debug, Clone)]
pub struct PrinterColumn {
    /// Column header.
    pub name: String,
    /// `string`, `integer`, `number`, `boolean` or `date`.
    pub type_: String,
    /// Simple JSON path into the object.
    pub json_path: String,
    /// Shown by `kubectl explain`-like tools.
    pub description: String,
    /// Columns with priority > 0 show only with `-o wide`.
    pub priority: i64,
}

/// One kind of object at one group/version.
#[derive(Debug)]
pub struct ResourceType {
    /// API group; empty for the core group.
    pub group: String,
    /// Version, e.g. `v1`.
    pub version: String,
    /// Kind, e.g. `Pod`.
    pub kind: String,
    /// Plural resource name used in paths.
    pub plural: String,
    /// Singular name.
    pub singular: String,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// Short names such as `po`.
    pub short_names: Vec<String>,
    /// Categories such as `all`.
    pub categories: Vec<String>,
    /// Whether `/status` is a subresource (main writes then ignore `.status`).
    pub status: bool,
    /// The scale subresource, if any.
    pub scale: Option<ScalePaths>,
    /// Whether `/log` is served (pods).
    pub log: bool,
    /// Validation from a CRD's schema.
    pub validator: Option<Arc<SchemaValidator>>,
    /// The CRD's OpenAPI schema (for pruning, defaulting and `/openapi/v3`).
    pub schema: Option<Value>,
    /// A CRD's printer columns.
    pub printer_columns: Vec<PrinterColumn>,
    /// The CRD that defines this type, if any.
    pub crd: Option<String>,
}

impl ResourceType {
    /// `v1` for the core group, `group/version` otherwise.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The key objects are stored under: the group and the plural (not the version).
    pub fn storage_key(&self) -> String {
        if self.is_events_v1() {
            // events.k8s.io/v1 Events are core Events seen another way (as in Kubernetes).
            return "/events".into();
        }
        format!("{}/{}", self.group, self.plural)
    }

    /// Whether this is `events.k8s.io/v1` Event, stored as core/v1 Event.
    pub fn is_events_v1(&self) -> bool {
        self.group == "events.k8s.io" && self.plural == "events"
    }

    fn builtin(group: &str, version: &str, kind: &str, plural: &str, namespaced: bool) -> Self {
        ResourceType {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
            plural: plural.into(),
            singular: kind.to_lowercase(),
            namespaced,
            short_names: vec![],
            categories: vec![],
            status: false,
            scale: None,
            log: false,
            validator: None,
            schema: None,
            printer_columns: vec![],
            crd: None,
        }
    }

    fn short(mut self, names: &[&str]) -> Self {
        self.short_names = names.iter().map(|s| s.to_string()).collect();
        self
    }

    fn all(mut self) -> Self {
        self.categories = vec!["all".into()];
        self
    }

    fn with_status(mut self) -> Self {
        self.status = true;
        self
    }

    fn with_scale(mut self) -> Self {
        self.scale = Some(ScalePaths {
            spec_replicas: ".spec.replicas".into(),
            status_replicas: ".status.replicas".into(),
            label_selector: Some(".status.selector".into()),
        });
        self
    }
}

/// The kinds served, built-in and from CRDs.
#[derive(Debug)]
pub struct Registry {
    types: RwLock<Vec<Arc<ResourceType>>>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl Registry {
    /// The built-in kinds: what kubectl users and a Strom job need.
    pub fn new() -> Self {
        let mut pod = ResourceType::builtin("", "v1", "Pod", "pods", true)
            .short(&["po"])
            .all()
            .with_status();
        pod.log = true;
        let types = vec![
            ResourceType::builtin("", "v1", "Namespace", "namespaces", false)
                .short(&["ns"])
                .with_status(),
            pod,
            ResourceType::builtin("", "v1", "Service", "services", true)
                .short(&["svc"])
                .all()
                .with_status(),
            ResourceType::builtin("", "v1", "Endpoints", "endpoints", true).short(&["ep"]),
            ResourceType::builtin("", "v1", "ConfigMap", "configmaps", true).short(&["cm"]),
            ResourceType::builtin("", "v1", "Secret", "secrets", true),
            ResourceType::builtin("", "v1", "ServiceAccount", "serviceaccounts", true)
                .short(&["sa"]),
            ResourceType::builtin("", "v1", "Event", "events", true).short(&["ev"]),
            // Stored and served so that a tenant's quota can be set; not enforced here (the
            // control plane checks the same numbers before it applies anything).
            ResourceType::builtin("", "v1", "ResourceQuota", "resourcequotas", true)
                .short(&["quota"])
                .with_status(),
            ResourceType::builtin("", "v1", "LimitRange", "limitranges", true).short(&["limits"]),
            ResourceType::builtin("", "v1", "Node", "nodes", false)
                .short(&["no"])
                .with_status(),
            ResourceType::builtin("apps", "v1", "Deployment", "deployments", true)
                .short(&["deploy"])
                .all()
                .with_status()
                .with_scale(),
            ResourceType::builtin("apps", "v1", "StatefulSet", "statefulsets", true)
                .short(&["sts"])
                .all()
                .with_status()
                .with_scale(),
            ResourceType::builtin("apps", "v1", "ReplicaSet", "replicasets", true)
                .short(&["rs"])
                .all()
                .with_status()
                .with_scale(),
            ResourceType::builtin("coordination.k8s.io", "v1", "Lease", "leases", true),
            ResourceType::builtin("events.k8s.io", "v1", "Event", "events", true).short(&["ev"]),
            ResourceType::builtin(
                "apiextensions.k8s.io",
                "v1",
                "CustomResourceDefinition",
                "customresourcedefinitions",
                false,
            )
            .short(&["crd", "crds"])
            .with_status(),
            // Stored and served so that charts and manifests apply; this stand-in authorizes
            // every request, so RBAC objects grant nothing here.
            ResourceType::builtin(
                "rbac.authorization.k8s.io",
                "v1",
                "ClusterRole",
                "clusterroles",
                false,
            ),
            ResourceType::builtin(
                "rbac.authorization.k8s.io",
                "v1",
                "ClusterRoleBinding",
                "clusterrolebindings",
                false,
            ),
            ResourceType::builtin("rbac.authorization.k8s.io", "v1", "Role", "roles", true),
            ResourceType::builtin(
                "rbac.authorization.k8s.io",
                "v1",
                "RoleBinding",
                "rolebindings",
                true,
            ),
            // Stored and served so that operators and charts can make them; not enforced:
            // every pod here is a process on this machine's loopback.
            ResourceType::builtin(
                "networking.k8s.io",
                "v1",
                "NetworkPolicy",
                "networkpolicies",
                true,
            )
            .short(&["netpol"]),
            ResourceType::builtin(
                "policy",
                "v1",
                "PodDisruptionBudget",
                "poddisruptionbudgets",
                true,
            )
            .short(&["pdb"])
            .with_status(),
            ResourceType::builtin(
                "",
                "v1",
                "PersistentVolumeClaim",
                "persistentvolumeclaims",
                true,
            )
            .short(&["pvc"])
            .with_status(),
        ];
        Registry {
            types: RwLock::new(types.into_iter().map(Arc::new).collect()),
        }
    }

    /// Every type served now.
    pub fn all(&self) -> Vec<Arc<ResourceType>> {
        self.types.read().expect("registry lock").clone()
    }

    /// The type served at `group/version` under `plural`.
    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceType>> {
        self.types
            .read()
            .expect("registry lock")
            .iter()
            .find(|t| t.group == group && t.version == version && t.plural == plural)
            .cloned()
    }

    /// Whether some version of `group` serves `plural`.
    pub fn has_group_resource(&self, group: &str, plural: &str) -> bool {
        self.types
            .read()
            .expect("registry lock")
            .iter()
            .any(|t| t.group == group && t.plural == plural)
    }

    /// Replaces every type defined by the CRD `crd` with `types` (empty to remove them).
    pub fn set_crd_types(&self, crd: &str, types: Vec<ResourceType>) {
        let mut all = self.types.write().expect("registry lock");
        all.retain(|t| t.crd.as_deref() != Some(crd));
        all.extend(types.into_iter().map(Arc::new));
    }
}
