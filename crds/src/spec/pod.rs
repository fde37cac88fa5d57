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

impl Quantity {
    /// The quantity in thousandths of its unit (`"500m"` → 500, `2` → 2000, `"1Ki"` →
    /// 1 024 000), rounded up; the error is a reason for the person who wrote it.
    pub fn milli(&self) -> Result<i128, String> {
        self.check()?;
        let text = match self {
            Quantity::Number(n) => return Ok(i128::from(*n) * 1000),
            Quantity::Text(t) => t.as_str(),
        };
        let split = text
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(text.len());
        let (number, suffix) = text.split_at(split);
        // Thousandths of the unit per one of the suffix's.
        let per: i128 = match suffix {
            "m" => 1,
            "" => 1000,
            "k" => 1000 * 1000,
            "M" => 1000 * 1000_i128.pow(2),
            "G" => 1000 * 1000_i128.pow(3),
            "T" => 1000 * 1000_i128.pow(4),
            "P" => 1000 * 1000_i128.pow(5),
            "E" => 1000 * 1000_i128.pow(6),
            "Ki" => 1000 << 10,
            "Mi" => 1000 << 20,
            "Gi" => 1000 << 30,
            "Ti" => 1000 << 40,
            "Pi" => 1000 << 50,
            "Ei" => 1000 << 60,
            _ => return Err(format!("{text:?} has an unknown suffix")),
        };
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if whole.len() + fraction.len() > 24 {
            return Err(format!("{text:?} is too large"));
        }
        let digits: i128 = format!("{whole}{fraction}")
            .parse()
            .map_err(|_| format!("{text:?} is not a quantity"))?;
        let scale = 10_i128.pow(u32::try_from(fraction.len()).unwrap_or(0));
        let total = digits
            .checked_mul(per)
            .ok_or_else(|| format!("{text:?} is too large"))?;
        Ok((total + scale - 1) / scale)
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

#[cfg(test)]
mod tests {
    use super::Quantity;

    #[test]
    fn quantities_read_in_thousandths_of_their_unit() {
        let milli = |t: &str| Quantity::Text(t.into()).milli();
        assert_eq!(milli("500m"), Ok(500));
        assert_eq!(milli("1.5"), Ok(1500));
        assert_eq!(milli("2"), Ok(2000));
        assert_eq!(Quantity::Number(3).milli(), Ok(3000));
        assert_eq!(milli("1Gi"), Ok(1000 << 30));
        assert_eq!(milli("1.5Gi"), Ok(1500 << 30));
        assert_eq!(milli("2k"), Ok(2_000_000));
        // Rounded up: a thousandth of a milli-CPU is a whole one.
        assert_eq!(milli("0.0001"), Ok(1));
        assert_eq!(milli("8Ei"), Ok(8000 << 60));
        assert!(milli("1x").is_err());
        assert!(milli("9999999999999999999999999E").is_err());
        assert!(Quantity::Number(-1).milli().is_err());
    }
}
