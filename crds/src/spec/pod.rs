//! Worker resources and the pod template merged into engine pods.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, EnvFromSource, EnvVar, LocalObjectReference, Toleration, Volume, VolumeMount,
};
use kube::KubeSchema;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

/// The pattern a [`Quantity`] written as a string must match: a decimal number with an
/// optional SI (`m`, `k`, `M`, `G`, `T`, `P`, `E`) or binary (`Ki` … `Ei`) suffix.
pub const QUANTITY_PATTERN: &str = r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$";

/// CPU and memory of each engine worker pod (requests and limits are set alike).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WorkerResources {
    /// CPU of each worker, e.g. `1`, `2` or `"500m"`.
    #[serde(default = "default_cpu")]
    pub cpu: Quantity,
    /// Memory of each worker, e.g. `"2Gi"`.
    #[serde(default = "default_memory")]
    pub memory: Quantity,
}

impl Default for WorkerResources {
    fn default() -> Self {
        WorkerResources {
            cpu: default_cpu(),
            memory: default_memory(),
        }
    }
}

fn default_cpu() -> Quantity {
    Quantity::Text("1".into())
}

fn default_memory() -> Quantity {
    Quantity::Text("1Gi".into())
}

/// A Kubernetes resource quantity, written as an integer (`2`) or a string (`"500m"`,
/// `"2Gi"`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(untagged)]
pub enum Quantity {
    /// A whole number of units.
    Number(i64),
    /// A decimal number with an optional suffix.
    Text(String),
}

impl Quantity {
    /// Checks the quantity's form; the error is a reason for the person who wrote it.
    pub fn check(&self) -> Result<(), String> {
        match self {
            Quantity::Number(n) if *n < 0 => Err(format!("{n} is negative")),
            Quantity::Number(_) => Ok(()),
            Quantity::Text(s) if quantity_pattern().is_match(s) => Ok(()),
            Quantity::Text(s) => Err(format!(
                "{s:?} is not a quantity (expected e.g. 2, \"500m\" or \"4Gi\")"
            )),
        }
    }
}

fn quantity_pattern() -> &'static regex::Regex {
    static PATTERN: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    PATTERN.get_or_init(|| regex::Regex::new(QUANTITY_PATTERN).expect("pattern compiles"))
}

impl JsonSchema for Quantity {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Quantity".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "x-kubernetes-int-or-string": true,
            "pattern": QUANTITY_PATTERN,
            "minimum": 0,
        })
    }
}

/// Settings merged into every engine pod.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct PodTemplate {
    /// Labels added to the engine pods.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,

    /// Annotations added to the engine pods (e.g. for a service mesh or a metrics scraper).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,

    /// Extra environment variables of the engine container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub env: Vec<EnvVar>,

    /// ConfigMaps and Secrets whose keys become environment variables of the engine
    /// container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_from: Vec<EnvFromSource>,

    /// Extra volumes of the engine pods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub volumes: Vec<Volume>,

    /// Where the extra volumes are mounted in the engine container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volume_mounts: Vec<VolumeMount>,

    /// Node labels the engine pods must be scheduled on.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,

    /// Taints the engine pods tolerate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,

    /// Affinity and anti-affinity rules of the engine pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,

    /// Service account the engine pods run as, e.g. one bound to a cloud identity (IRSA,
    /// GKE Workload Identity, Azure Workload Identity) that may write the checkpoint bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,

    /// Secrets used to pull the engine image.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<LocalObjectReference>,

    /// Priority class of the engine pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
}
