//! The Kubernetes objects the operator creates for a FlinkJob, as pure functions of the job
//! and the spec being deployed: a ConfigMap with the pipeline, a Service for the engine's
//! control endpoint, and a StatefulSet of one engine pod (a StatefulSet so that at most one
//! pod of an ordinal ever runs: two engines of one job never race on its checkpoints, and
//! worker pods added later become ordinals of a second StatefulSet). All carry an owner
//! reference to the FlinkJob and the common labels.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EnvVar, EnvVarSource,
    HTTPGetAction, ObjectFieldSelector, PodSpec, PodTemplateSpec, Probe, ResourceRequirements,
    Secret, SecretVolumeSource, Service, ServicePort, ServiceSpec, Volume, VolumeMount,
};
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, LabelSelectorRequirement, ObjectMeta, OwnerReference,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use strom_crds::{FlinkJob, FlinkJobSpec};

use strom_crds::ObjectNames;
pub use strom_crds::objects::RESTORED_FROM;

use crate::launch::EngineLaunch;
use crate::pod_security;

/// The engine's control port.
pub const CONTROL_PORT: i32 = strom_protocol::routes::CONTROL_PORT as i32;
/// The annotation carrying the hash of the deployed spec.
pub const SPEC_HASH: &str = "strom.dev/spec-hash";
/// Where the pipeline is mounted in the engine container.
const JOB_DIR: &str = "/etc/strom";
/// Where the control Secret is mounted in the engine container.
pub const CONTROL_DIR: &str = "/etc/strom-control";

/// The names of `job`'s objects.
pub fn names(job: &FlinkJob) -> ObjectNames {
    job.object_names()
}

/// The labels on everything the operator creates for `job`; `strom.dev/job` selects its
/// pods (and is the scale subresource's selector).
pub fn labels(job: &FlinkJob) -> BTreeMap<String, String> {
    let name = job.metadata.name.clone().unwrap_or_default();
    BTreeMap::from([
        ("app.kubernetes.io/name".into(), "strom-engine".into()),
        ("app.kubernetes.io/instance".into(), name.clone()),
        ("app.kubernetes.io/component".into(), "engine".into()),
        (
            "app.kubernetes.io/managed-by".into(),
            "strom-operator".into(),
        ),
        ("strom.dev/job".into(), name),
    ])
}

fn owner(job: &FlinkJob) -> OwnerReference {
    OwnerReference {
        api_version: "strom.dev/v1alpha1".into(),
        kind: "FlinkJob".into(),
        name: job.metadata.name.clone().unwrap_or_default(),
        uid: job.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

fn meta(job: &FlinkJob, name: String) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: job.metadata.namespace.clone(),
        labels: Some(labels(job)),
        owner_references: Some(vec![owner(job)]),
        ..ObjectMeta::default()
    }
}

/// The ConfigMap holding the autoscaler's history (`history.json`), owned by the job so
/// that it goes with it.
pub fn autoscaler_config_map(job: &FlinkJob, history: String) -> ConfigMap {
    ConfigMap {
        metadata: meta(job, names(job).autoscaler),
        data: Some(BTreeMap::from([("history.json".into(), history)])),
        ..ConfigMap::default()
    }
}

/// Why the objects cannot be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BuildError {
    /// The pipeline is given by URL, which the engine cannot fetch yet.
    #[error("spec.jobUri: pipelines by URL are not supported yet; put the pipeline in spec.job")]
    JobUri,
}

/// The Secret holding the token the engine's control endpoint requires for changes
/// (savepoints, stops): created once per job with a fresh random token, owned by the job.
pub fn control_secret(job: &FlinkJob, token: &str) -> Secret {
    Secret {
        metadata: meta(job, names(job).control),
        string_data: Some(BTreeMap::from([(
            strom_crds::objects::CONTROL_TOKEN_KEY.to_owned(),
            token.to_owned(),
        )])),
        ..Secret::default()
    }
}

/// A fresh control token: 256 random bits from the operating system, as hex.
pub fn new_control_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system gives random bytes");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The NetworkPolicy of the job's engine pods: nothing reaches them but pods of
/// `namespaces` (the operator's, the control plane's, Prometheus'), and those only on the
/// control port. Without it, any pod in the cluster could read the job's status and metrics
/// and try its control endpoint.
pub fn network_policy(job: &FlinkJob, namespaces: &[String]) -> NetworkPolicy {
    NetworkPolicy {
        metadata: meta(job, names(job).engine),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector {
                match_labels: Some(BTreeMap::from([(
                    "strom.dev/job".into(),
                    job.metadata.name.clone().unwrap_or_default(),
                )])),
                ..LabelSelector::default()
            }),
            policy_types: Some(vec!["Ingress".into()]),
            ingress: Some(vec![NetworkPolicyIngressRule {
                from: Some(vec![NetworkPolicyPeer {
                    namespace_selector: Some(LabelSelector {
                        match_expressions: Some(vec![LabelSelectorRequirement {
                            key: "kubernetes.io/metadata.name".into(),
                            operator: "In".into(),
                            values: Some(namespaces.to_vec()),
                        }]),
                        ..LabelSelector::default()
                    }),
                    ..NetworkPolicyPeer::default()
                }]),
                ports: Some(vec![NetworkPolicyPort {
                    port: Some(IntOrString::Int(CONTROL_PORT)),
                    protocol: Some("TCP".into()),
                    ..NetworkPolicyPort::default()
                }]),
            }]),
            ..NetworkPolicySpec::default()
        }),
    }
}

/// The ConfigMap holding the pipeline (`job.yaml`).
pub fn config_map(job: &FlinkJob, spec: &FlinkJobSpec) -> Result<ConfigMap, BuildError> {
    let Some(pipeline) = &spec.job else {
        return Err(BuildError::JobUri);
    };
    let text = serde_json::to_string_pretty(pipeline).expect("JSON serializes");
    Ok(ConfigMap {
        metadata: meta(job, names(job).config),
        data: Some(BTreeMap::from([("job.yaml".into(), text)])),
        ..ConfigMap::default()
    })
}

/// The Service in front of the engine's control endpoint.
pub fn service(job: &FlinkJob) -> Service {
    Service {
        metadata: meta(job, names(job).service),
        spec: Some(ServiceSpec {
            selector: Some(BTreeMap::from([(
                "strom.dev/job".into(),
                job.metadata.name.clone().unwrap_or_default(),
            )])),
            ports: Some(vec![ServicePort {
                name: Some("control".into()),
                port: CONTROL_PORT,
                target_port: Some(IntOrString::Int(CONTROL_PORT)),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// `spec.objectStorage` as storage options (see [`FlinkJobSpec::storage_options`]).
pub fn storage_options(spec: &FlinkJobSpec) -> Vec<(&'static str, String)> {
    spec.storage_options()
}

fn quantity(q: &strom_crds::spec::Quantity) -> String {
    match q {
        strom_crds::spec::Quantity::Number(n) => n.to_string(),
        strom_crds::spec::Quantity::Text(t) => t.clone(),
    }
}

/// `workers` times the CPU quantity `cpu` (`"500m"` × 3 = `"1500m"`, `2` × 3 = `"6"`).
pub fn scale_cpu(cpu: &strom_crds::spec::Quantity, workers: i32) -> String {
    let text = quantity(cpu);
    let w = f64::from(workers.max(1));
    if let Some(milli) = text.strip_suffix('m')
        && let Ok(m) = milli.parse::<f64>()
    {
        return format!("{}m", (m * w).round());
    }
    match text.parse::<f64>() {
        Ok(v) => {
            let total = v * w;
            if total.fract() == 0.0 {
                format!("{total}")
            } else {
                format!("{}m", (total * 1000.0).round())
            }
        }
        Err(_) => text,
    }
}

/// The StatefulSet of the engine for `spec`, stamped with `hash` and restoring
/// `restore_from`. Until workers are separate pods, the one engine pod gets the CPU of the
/// workers the job would have (`resources.cpu` × ⌈parallelism / slotsPerWorker⌉), so adding
/// worker pods later divides the same request rather than changing it. Pods run as
/// `podTemplate.serviceAccountName`, else as `default_service_account` (the operator's
/// `--engine-service-account`), else as the namespace's default account.
pub fn stateful_set(
    job: &FlinkJob,
    spec: &FlinkJobSpec,
    hash: &str,
    restore_from: Option<&str>,
    deployment: &str,
    default_service_account: Option<&str>,
) -> StatefulSet {
    let n = names(job);
    let labels = labels(job);
    let mut annotations = BTreeMap::from([(SPEC_HASH.to_owned(), hash.to_owned())]);
    if let Some(from) = restore_from {
        annotations.insert(RESTORED_FROM.into(), from.to_owned());
    }
    let template = spec.pod_template.clone().unwrap_or_default();
    let mut env: Vec<EnvVar> = template.env.clone();
    env.push(EnvVar {
        name: "POD_IP".into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: "status.podIP".into(),
                ..ObjectFieldSelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    });
    env.push(EnvVar {
        name: "STROM_LOG".into(),
        value: Some(format!("{:?}", spec.log_level).to_lowercase()),
        ..EnvVar::default()
    });
    let widest = spec
        .vertex_parallelism
        .values()
        .copied()
        .fold(spec.parallelism, i32::max)
        .max(1);
    let workers = (widest + spec.slots_per_worker.max(1) - 1) / spec.slots_per_worker.max(1);
    let cpu = Quantity(scale_cpu(&spec.resources.cpu, workers));
    let memory = Quantity(quantity(&spec.resources.memory));
    let probe = |path: &str, period: i32| Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::Int(CONTROL_PORT),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        failure_threshold: Some(3),
        ..Probe::default()
    };
    let (tmp_volume, tmp_mount) = pod_security::tmp();
    let container = Container {
        name: "engine".into(),
        security_context: Some(pod_security::container()),
        image: Some(spec.image.clone()),
        args: Some(
            EngineLaunch::of(
                job,
                spec,
                &format!("{JOB_DIR}/job.yaml"),
                restore_from,
                deployment,
            )
            .args(),
        ),
        env: Some(env),
        env_from: Some(template.env_from.clone()),
        ports: Some(vec![ContainerPort {
            name: Some("control".into()),
            container_port: CONTROL_PORT,
            ..ContainerPort::default()
        }]),
        resources: Some(ResourceRequirements {
            requests: Some(BTreeMap::from([
                ("cpu".into(), cpu),
                ("memory".into(), memory.clone()),
            ])),
            limits: Some(BTreeMap::from([("memory".into(), memory)])),
            ..ResourceRequirements::default()
        }),
        readiness_probe: Some(probe("/readyz", 2)),
        liveness_probe: Some(probe("/healthz", 10)),
        volume_mounts: Some(
            [
                VolumeMount {
                    name: "job".into(),
                    mount_path: JOB_DIR.into(),
                    read_only: Some(true),
                    ..VolumeMount::default()
                },
                VolumeMount {
                    name: "control".into(),
                    mount_path: CONTROL_DIR.into(),
                    read_only: Some(true),
                    ..VolumeMount::default()
                },
                tmp_mount,
            ]
            .into_iter()
            .chain(template.volume_mounts.iter().cloned())
            .collect(),
        ),
        ..Container::default()
    };
    StatefulSet {
        metadata: ObjectMeta {
            annotations: Some(annotations.clone()),
            ..meta(job, n.engine.clone())
        },
        spec: Some(StatefulSetSpec {
            replicas: Some(1),
            service_name: Some(n.service.clone()),
            selector: LabelSelector {
                match_labels: Some(BTreeMap::from([(
                    "strom.dev/job".into(),
                    job.metadata.name.clone().unwrap_or_default(),
                )])),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    // The user's labels and annotations, then ours (ours win).
                    labels: Some(template.labels.clone().into_iter().chain(labels).collect()),
                    annotations: Some(
                        template
                            .annotations
                            .clone()
                            .into_iter()
                            .chain(annotations)
                            .collect(),
                    ),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![container],
                    security_context: Some(pod_security::pod()),
                    automount_service_account_token: Some(false),
                    service_account_name: template
                        .service_account_name
                        .clone()
                        .or_else(|| default_service_account.map(str::to_owned)),
                    node_selector: Some(template.node_selector.clone()),
                    tolerations: Some(template.tolerations.clone()),
                    affinity: template.affinity.clone(),
                    image_pull_secrets: Some(template.image_pull_secrets.clone()),
                    priority_class_name: template.priority_class_name.clone(),
                    termination_grace_period_seconds: Some(30),
                    volumes: Some(
                        [
                            Volume {
                                name: "job".into(),
                                config_map: Some(ConfigMapVolumeSource {
                                    name: n.config,
                                    ..ConfigMapVolumeSource::default()
                                }),
                                ..Volume::default()
                            },
                            Volume {
                                name: "control".into(),
                                secret: Some(SecretVolumeSource {
                                    secret_name: Some(n.control),
                                    default_mode: Some(0o440),
                                    ..SecretVolumeSource::default()
                                }),
                                ..Volume::default()
                            },
                            tmp_volume,
                        ]
                        .into_iter()
                        .chain(template.volumes.iter().cloned())
                        .collect(),
                    ),
                    ..PodSpec::default()
                }),
            },
            ..StatefulSetSpec::default()
        }),
        ..StatefulSet::default()
    }
}

#[cfg(test)]
mod tests;
