//! What the API server knows about particular kinds: names, defaults and checks of the
//! built-in kinds, and unknown-field detection. CRDs become served kinds in `crd.rs`.

use std::sync::atomic::Ordering;

use base64::Engine;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::ApiServer;
use super::meta::{self, metadata_mut};
use super::registry::ResourceType;
use super::selector::LabelSelector;
use super::status::{ApiError, Cause};

/// Names must be DNS subdomains (namespaces and Services: DNS labels).
pub fn validate_name(rt: &ResourceType, name: &str) -> Result<(), ApiError> {
    let label = matches!(rt.plural.as_str(), "namespaces" | "services") && rt.group.is_empty();
    let ok = if label {
        meta::is_dns_subdomain(name) && !name.contains('.') && name.len() <= 63
    } else {
        meta::is_dns_subdomain(name)
    };
    if ok || (rt.plural == "customresourcedefinitions") {
        return Ok(());
    }
    let what = if label {
        "a lowercase RFC 1123 label"
    } else {
        "a lowercase RFC 1123 subdomain"
    };
    Err(ApiError::invalid(
        rt,
        name,
        vec![Cause {
            field: "metadata.name".into(),
            kind: "FieldValueInvalid",
            message: format!(
                "Invalid value: \"{name}\": must be {what}: lower-case alphanumeric characters, '-' or '.', starting and ending with an alphanumeric character"
            ),
        }],
    ))
}

/// Removes fields a CRD schema does not declare (as the API server prunes), returning their
/// paths.
pub fn prune_unknown(schema: &Value, object: &mut Value) -> Vec<String> {
    let mut found = Vec::new();
    if let Value::Object(fields) = object {
        let keys: Vec<String> = fields.keys().cloned().collect();
        for key in keys {
            if matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
                continue;
            }
            match schema.get("properties").and_then(|p| p.get(&key)) {
                Some(sub) => prune(
                    sub,
                    fields.get_mut(&key).expect("present"),
                    &key,
                    &mut found,
                ),
                None => {
                    fields.remove(&key);
                    found.push(key);
                }
            }
        }
    }
    found
}

fn prune(schema: &Value, value: &mut Value, path: &str, found: &mut Vec<String>) {
    if schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)) {
        return;
    }
    match value {
        Value::Object(fields) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            if props.is_none() && additional.is_none() {
                return;
            }
            let keys: Vec<String> = fields.keys().cloned().collect();
            for key in keys {
                let child = format!("{path}.{key}");
                match (props.and_then(|p| p.get(&key)), additional) {
                    (Some(sub), _) | (None, Some(sub)) => {
                        prune(sub, fields.get_mut(&key).expect("present"), &child, found)
                    }
                    (None, None) => {
                        fields.remove(&key);
                        found.push(child);
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    prune(item_schema, item, &format!("{path}[{i}]"), found);
                }
            }
        }
        _ => {}
    }
}

fn unknown_in<T: DeserializeOwned>(object: &Value) -> Vec<String> {
    let mut found = Vec::new();
    let mut record = |path: serde_ignored::Path<'_>| {
        let p = path.to_string();
        if p != "apiVersion" && p != "kind" {
            found.push(p);
        }
    };
    let _ = serde_ignored::deserialize::<_, _, T>(object, &mut record);
    found
}

/// Fields a built-in kind does not have, found by reading the object into its Kubernetes type.
pub fn unknown_builtin_fields(rt: &ResourceType, object: &Value) -> Vec<String> {
    use k8s_openapi::api::{
        apps::v1 as apps, coordination::v1 as coord, core::v1 as core, policy::v1 as policy,
        rbac::v1 as rbac,
    };
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "Pod") => unknown_in::<core::Pod>(object),
        ("", "Service") => unknown_in::<core::Service>(object),
        ("", "ConfigMap") => unknown_in::<core::ConfigMap>(object),
        ("", "Secret") => unknown_in::<core::Secret>(object),
        ("", "Namespace") => unknown_in::<core::Namespace>(object),
        ("", "ServiceAccount") => unknown_in::<core::ServiceAccount>(object),
        ("apps", "Deployment") => unknown_in::<apps::Deployment>(object),
        ("apps", "StatefulSet") => unknown_in::<apps::StatefulSet>(object),
        ("apps", "ReplicaSet") => unknown_in::<apps::ReplicaSet>(object),
        ("coordination.k8s.io", "Lease") => unknown_in::<coord::Lease>(object),
        ("", "PersistentVolumeClaim") => unknown_in::<core::PersistentVolumeClaim>(object),
        ("rbac.authorization.k8s.io", "ClusterRole") => unknown_in::<rbac::ClusterRole>(object),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => {
            unknown_in::<rbac::ClusterRoleBinding>(object)
        }
        ("rbac.authorization.k8s.io", "Role") => unknown_in::<rbac::Role>(object),
        ("rbac.authorization.k8s.io", "RoleBinding") => unknown_in::<rbac::RoleBinding>(object),
        ("policy", "PodDisruptionBudget") => unknown_in::<policy::PodDisruptionBudget>(object),
        _ => vec![],
    }
}

fn invalid(
    rt: &ResourceType,
    object: &Value,
    field: &str,
    kind: &'static str,
    message: String,
) -> ApiError {
    ApiError::invalid(
        rt,
        meta::name_of(object),
        vec![Cause {
            field: field.into(),
            kind,
            message,
        }],
    )
}

fn default(object: &mut Value, pointer: &str, value: Value) {
    if object.pointer(pointer).is_none() {
        let path = pointer.replace('/', ".");
        meta::set_json_path(object, &path, value);
    }
}

fn check_selector(rt: &ResourceType, object: &Value) -> Result<(), ApiError> {
    let Some(selector) = object.pointer("/spec/selector") else {
        return Err(invalid(
            rt,
            object,
            "spec.selector",
            "FieldValueRequired",
            "Required value".into(),
        ));
    };
    let selector = LabelSelector::from_object(selector).map_err(|e| {
        invalid(
            rt,
            object,
            "spec.selector",
            "FieldValueInvalid",
            format!("Invalid value: {e}"),
        )
    })?;
    let template = json!({"metadata": {"labels": object.pointer("/spec/template/metadata/labels").cloned().unwrap_or(json!({}))}});
    if selector.is_empty() || !selector.matches(&template) {
        return Err(invalid(
            rt,
            object,
            "spec.template.metadata.labels",
            "FieldValueInvalid",
            "Invalid value: `selector` does not match template `labels`".into(),
        ));
    }
    Ok(())
}

fn default_pod_spec(spec: &mut Value) {
    for (k, v) in [
        ("restartPolicy", json!("Always")),
        ("terminationGracePeriodSeconds", json!(30)),
        ("dnsPolicy", json!("ClusterFirst")),
        ("schedulerName", json!("default-scheduler")),
        ("securityContext", json!({})),
        ("enableServiceLinks", json!(true)),
    ] {
        if spec.get(k).is_none() {
            spec[k] = v;
        }
    }
    for list in ["containers", "initContainers"] {
        if let Some(Value::Array(containers)) = spec.get_mut(list) {
            for c in containers {
                let image = c
                    .get("image")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let latest = !image.contains(':') || image.ends_with(":latest");
                for (k, v) in [
                    (
                        "imagePullPolicy",
                        json!(if latest { "Always" } else { "IfNotPresent" }),
                    ),
                    ("terminationMessagePath", json!("/dev/termination-log")),
                    ("terminationMessagePolicy", json!("File")),
                    ("resources", json!({})),
                ] {
                    if c.get(k).is_none() {
                        c[k] = v;
                    }
                }
                if let Some(Value::Array(ports)) = c.get_mut("ports") {
                    for p in ports {
                        if p.get("protocol").is_none() {
                            p["protocol"] = json!("TCP");
                        }
                    }
                }
            }
        }
    }
}

fn check_pod_spec(
    rt: &ResourceType,
    object: &Value,
    spec: &Value,
    at: &str,
) -> Result<(), ApiError> {
    let containers = spec.get("containers").and_then(Value::as_array);
    if containers.is_none_or(|c| c.is_empty()) {
        return Err(invalid(
            rt,
            object,
            &format!("{at}.containers"),
            "FieldValueRequired",
            "Required value".into(),
        ));
    }
    for (i, c) in containers.into_iter().flatten().enumerate() {
        if c.get("name")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(invalid(
                rt,
                object,
                &format!("{at}.containers[{i}].name"),
                "FieldValueRequired",
                "Required value".into(),
            ));
        }
        if c.get("image")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(invalid(
                rt,
                object,
                &format!("{at}.containers[{i}].image"),
                "FieldValueRequired",
                "Required value".into(),
            ));
        }
    }
    Ok(())
}

/// The value of `label` on `namespace`, if it has one.
fn namespace_label(server: &ApiServer, namespace: &str, label: &str) -> Option<String> {
    let ns_type = server.registry.find("", "v1", "namespaces")?;
    let ns = server.store.get(&ns_type.storage_key(), "", namespace)?;
    ns.pointer("/metadata/labels")?
        .get(label)?
        .as_str()
        .map(str::to_owned)
}

/// Defaults and checks of the built-in kinds, on create (`old` None) and update.
pub fn default_and_validate(
    server: &ApiServer,
    rt: &ResourceType,
    object: &mut Value,
    old: Option<&Value>,
) -> Result<(), ApiError> {
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "Pod") => {
            let mut spec = object.get("spec").cloned().unwrap_or(json!({}));
            check_pod_spec(rt, object, &spec, "spec")?;
            if old.is_none()
                && let Some(level) = namespace_label(
                    server,
                    meta::meta_str(object, "namespace").unwrap_or_default(),
                    super::pod_security::ENFORCE,
                )
            {
                super::pod_security::admit(
                    &level,
                    meta::meta_str(object, "name").unwrap_or_default(),
                    &spec,
                )?;
            }
            default_pod_spec(&mut spec);
            if spec.get("serviceAccountName").is_none() {
                spec["serviceAccountName"] = json!("default");
            }
            object["spec"] = spec;
            if old.is_none() {
                object["status"] = json!({"phase": "Pending", "qosClass": "BestEffort"});
            }
        }
        ("apps", "Deployment") | ("apps", "StatefulSet") | ("apps", "ReplicaSet") => {
            default(object, "/spec/replicas", json!(1));
            default(object, "/spec/revisionHistoryLimit", json!(10));
            check_selector(rt, object)?;
            let mut template = object
                .pointer("/spec/template/spec")
                .cloned()
                .unwrap_or(json!({}));
            check_pod_spec(rt, object, &template, "spec.template.spec")?;
            default_pod_spec(&mut template);
            object["spec"]["template"]["spec"] = template;
            if rt.kind == "Deployment" {
                default(
                    object,
                    "/spec/strategy",
                    json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}),
                );
                default(object, "/spec/progressDeadlineSeconds", json!(600));
            }
            if rt.kind == "StatefulSet" {
                default(object, "/spec/podManagementPolicy", json!("OrderedReady"));
                default(
                    object,
                    "/spec/updateStrategy",
                    json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
                );
            }
            if object
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .is_some_and(|r| r < 0)
            {
                return Err(invalid(
                    rt,
                    object,
                    "spec.replicas",
                    "FieldValueInvalid",
                    "Invalid value: must be greater than or equal to 0".into(),
                ));
            }
        }
        ("", "Service") => {
            default(object, "/spec/type", json!("ClusterIP"));
            default(object, "/spec/sessionAffinity", json!("None"));
            let ip = match old.and_then(|o| o.pointer("/spec/clusterIP")).cloned() {
                Some(ip) => ip,
                None => match object.pointer("/spec/clusterIP").cloned() {
                    Some(ip) => ip,
                    None => {
                        let n = server.next_cluster_ip.fetch_add(1, Ordering::Relaxed);
                        json!(format!("10.96.{}.{}", n / 250, n % 250 + 1))
                    }
                },
            };
            object["spec"]["clusterIP"] = ip.clone();
            object["spec"]["clusterIPs"] = json!([ip]);
            if let Some(Value::Array(ports)) = object.pointer_mut("/spec/ports") {
                for p in ports {
                    if p.get("protocol").is_none() {
                        p["protocol"] = json!("TCP");
                    }
                    if p.get("targetPort").is_none() {
                        p["targetPort"] = p["port"].clone();
                    }
                }
            }
        }
        // Bound at once, as by a default StorageClass with Immediate binding: the kubelet
        // keeps the claim's data in a directory of the cluster's.
        ("", "PersistentVolumeClaim") if old.is_none() => {
            default(object, "/spec/volumeMode", json!("Filesystem"));
            let modes = object
                .pointer("/spec/accessModes")
                .cloned()
                .unwrap_or(json!([]));
            let size = object
                .pointer("/spec/resources/requests/storage")
                .cloned()
                .unwrap_or(json!("1Gi"));
            object["status"] =
                json!({"phase": "Bound", "accessModes": modes, "capacity": {"storage": size}});
        }
        ("", "Namespace") => {
            let name = meta::name_of(object).to_owned();
            let labels = metadata_mut(object).entry("labels").or_insert(json!({}));
            labels["kubernetes.io/metadata.name"] = json!(name);
            default(object, "/spec/finalizers", json!(["kubernetes"]));
            if old.is_none() {
                object["status"] = json!({"phase": "Active"});
            }
        }
        ("", "Secret") => {
            default(object, "/type", json!("Opaque"));
            if let Some(Value::Object(strings)) =
                object.as_object_mut().and_then(|m| m.remove("stringData"))
            {
                let data = object
                    .as_object_mut()
                    .expect("object")
                    .entry("data")
                    .or_insert(json!({}));
                for (k, v) in strings {
                    let text = v.as_str().unwrap_or_default();
                    data[k] = json!(base64::engine::general_purpose::STANDARD.encode(text));
                }
            }
        }
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            let spec = object.get("spec").cloned().unwrap_or(json!({}));
            let group = spec["group"].as_str().unwrap_or_default();
            let plural = spec
                .pointer("/names/plural")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if meta::name_of(object) != format!("{plural}.{group}") {
                return Err(invalid(
                    rt,
                    object,
                    "metadata.name",
                    "FieldValueInvalid",
                    format!(
                        "Invalid value: \"{}\": must be spec.names.plural+\".\"+spec.group",
                        meta::name_of(object)
                    ),
                ));
            }
            let versions = spec["versions"].as_array().cloned().unwrap_or_default();
            if versions.is_empty() {
                return Err(invalid(
                    rt,
                    object,
                    "spec.versions",
                    "FieldValueRequired",
                    "Required value: must have exactly one version marked as storage version"
                        .into(),
                ));
            }
            for (i, v) in versions.iter().enumerate() {
                if v.pointer("/schema/openAPIV3Schema").is_none() {
                    return Err(invalid(
                        rt,
                        object,
                        &format!("spec.versions[{i}].schema.openAPIV3Schema"),
                        "FieldValueRequired",
                        "Required value: schemas are required".into(),
                    ));
                }
            }
            let mut names = spec["names"].clone();
            if names.get("singular").is_none() {
                names["singular"] =
                    json!(names["kind"].as_str().unwrap_or_default().to_lowercase());
            }
            if names.get("listKind").is_none() {
                names["listKind"] = json!(format!(
                    "{}List",
                    names["kind"].as_str().unwrap_or_default()
                ));
            }
            let storage: Vec<Value> = versions
                .iter()
                .filter(|v| v["storage"] == true)
                .map(|v| v["name"].clone())
                .collect();
            let now = meta::now();
            object["status"] = json!({
                "acceptedNames": names,
                "storedVersions": storage,
                "conditions": [
                    {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": now},
                    {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": now},
                ],
            });
        }
        _ => {}
    }
    Ok(())
}
