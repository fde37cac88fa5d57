//! Pod Security admission, as the real API server's built-in plugin does it for a namespace
//! labelled `pod-security.kubernetes.io/enforce`: a pod that breaks the level's rules is
//! refused (403, `violates PodSecurity "restricted:latest": …`). The `baseline` rules
//! (host namespaces, privileged containers, host paths, added capabilities beyond the
//! default set, host ports) and the `restricted` ones on top (non-root, no privilege
//! escalation, all capabilities dropped, a RuntimeDefault or Localhost seccomp profile,
//! volume types limited to the safe ones) are checked. Workload objects are not refused, as
//! upstream: their pods are, when the controller creates them.

use serde_json::Value;

use super::status::ApiError;

/// The label naming the enforced level.
pub const ENFORCE: &str = "pod-security.kubernetes.io/enforce";

const RESTRICTED_VOLUMES: &[&str] = &[
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

/// Refuses `pod` (its name and spec) if it breaks `level` (`privileged`, `baseline` or
/// `restricted`); an unknown level is treated as `restricted`, as upstream does.
pub fn admit(level: &str, name: &str, spec: &Value) -> Result<(), ApiError> {
    if level == "privileged" {
        return Ok(());
    }
    let restricted = level != "baseline";
    let mut broken: Vec<String> = Vec::new();
    for key in ["hostNetwork", "hostPID", "hostIPC"] {
        if spec[key].as_bool() == Some(true) {
            broken.push(format!("host namespaces ({key}=true)"));
        }
    }
    let containers: Vec<&Value> = ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .flat_map(|k| spec[*k].as_array().into_iter().flatten())
        .collect();
    let pod_sc = &spec["securityContext"];
    for c in &containers {
        let cname = c["name"].as_str().unwrap_or_default();
        let sc = &c["securityContext"];
        if sc["privileged"].as_bool() == Some(true) {
            broken.push(format!(
                "privileged (container {cname:?} must not set securityContext.privileged=true)"
            ));
        }
        if c["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|p| p["hostPort"].as_i64().is_some_and(|h| h != 0))
        {
            broken.push(format!("hostPort (container {cname:?} uses hostPort)"));
        }
        if !restricted {
            continue;
        }
        if sc["allowPrivilegeEscalation"].as_bool() != Some(false) {
            broken.push(format!("allowPrivilegeEscalation != false (container {cname:?} must set securityContext.allowPrivilegeEscalation=false)"));
        }
        let drops_all = sc
            .pointer("/capabilities/drop")
            .and_then(Value::as_array)
            .is_some_and(|d| d.iter().any(|x| x == "ALL"));
        if !drops_all {
            broken.push(format!("unrestricted capabilities (container {cname:?} must set securityContext.capabilities.drop=[\"ALL\"])"));
        }
        if let Some(added) = sc.pointer("/capabilities/add").and_then(Value::as_array)
            && added.iter().any(|a| a != "NET_BIND_SERVICE")
        {
            broken.push(format!(
                "unrestricted capabilities (container {cname:?} may add only NET_BIND_SERVICE)"
            ));
        }
        let non_root = sc["runAsNonRoot"]
            .as_bool()
            .or(pod_sc["runAsNonRoot"].as_bool());
        if non_root != Some(true) {
            broken.push(format!("runAsNonRoot != true (pod or container {cname:?} must set securityContext.runAsNonRoot=true)"));
        }
        if sc["runAsUser"].as_i64().or(pod_sc["runAsUser"].as_i64()) == Some(0) {
            broken.push(format!(
                "runAsUser=0 (container {cname:?} must not run as root)"
            ));
        }
        let seccomp = sc
            .pointer("/seccompProfile/type")
            .or(pod_sc.pointer("/seccompProfile/type"))
            .and_then(Value::as_str);
        if !matches!(seccomp, Some("RuntimeDefault" | "Localhost")) {
            broken.push(format!("seccompProfile (pod or container {cname:?} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")"));
        }
    }
    for v in spec["volumes"].as_array().into_iter().flatten() {
        let vname = v["name"].as_str().unwrap_or_default();
        if v.get("hostPath").is_some() {
            broken.push(format!("hostPath volumes (volume {vname:?})"));
            continue;
        }
        if restricted
            && let Some(kind) = v
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, _)| k.as_str())
                .find(|k| *k != "name" && !RESTRICTED_VOLUMES.contains(k))
        {
            broken.push(format!(
                "restricted volume types (volume {vname:?} uses {kind})"
            ));
        }
    }
    if broken.is_empty() {
        return Ok(());
    }
    let version = if restricted { "restricted" } else { "baseline" };
    Err(ApiError {
        code: 403,
        reason: "Forbidden",
        message: format!(
            "pods \"{name}\" is forbidden: violates PodSecurity \"{version}:latest\": {}",
            broken.join(", ")
        ),
        details: Value::Null,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hardened() -> Value {
        json!({
            "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "c", "securityContext": {
                "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}],
            "volumes": [{"name": "tmp", "emptyDir": {}}]
        })
    }

    #[test]
    fn a_hardened_pod_passes_and_each_loosening_is_named() {
        admit("restricted", "p", &hardened()).unwrap();
        let refused = |edit: &dyn Fn(&mut Value)| {
            let mut spec = hardened();
            edit(&mut spec);
            admit("restricted", "p", &spec).unwrap_err().message
        };
        assert!(
            refused(
                &|s| s["containers"][0]["securityContext"]["allowPrivilegeEscalation"] =
                    json!(true)
            )
            .contains("allowPrivilegeEscalation != false")
        );
        assert!(
            refused(&|s| s["securityContext"]["runAsNonRoot"] = json!(false))
                .contains("runAsNonRoot != true")
        );
        assert!(
            refused(&|s| s["volumes"][0] = json!({"name": "h", "hostPath": {"path": "/"}}))
                .contains("hostPath volumes")
        );
        assert!(refused(&|s| s["hostNetwork"] = json!(true)).contains("host namespaces"));
        assert!(
            refused(&|s| s["securityContext"] = json!({"runAsNonRoot": true}))
                .contains("seccompProfile")
        );
        // Baseline lets the restricted-only rules go, not host access.
        admit("baseline", "p", &json!({"containers": [{"name": "c"}]})).unwrap();
        assert!(admit("baseline", "p", &json!({"hostPID": true, "containers": []})).is_err());
        admit("privileged", "p", &json!({"hostPID": true})).unwrap();
    }
}
