//! A container's environment and volumes: env from values, field refs, ConfigMaps and
//! Secrets; ConfigMap, Secret and emptyDir volumes as files; mount paths rewritten to them.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use base64::Engine;
use serde_json::Value;

use crate::apiserver::{ApiServer, meta};

fn object(server: &ApiServer, plural: &str, ns: &str, name: &str) -> Option<Value> {
    let rt = server.registry.find("", "v1", plural)?;
    server.get(&rt, Some(ns), name).ok().map(|o| (*o).clone())
}

fn secret_value(v: &Value) -> String {
    let text = v.as_str().unwrap_or_default();
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_default()
}

/// The container's environment, in order, or why it cannot be built (a missing ConfigMap,
/// Secret or key that is not optional).
pub fn resolve(
    server: &ApiServer,
    pod: &Value,
    spec: &Value,
    ip: Ipv4Addr,
    kubeconfig: &Path,
) -> Result<Vec<(String, String)>, String> {
    let ns = meta::meta_str(pod, "namespace").unwrap_or("default");
    let name = meta::name_of(pod);
    let mut env: Vec<(String, String)> = vec![
        (
            "PATH".into(),
            std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into()),
        ),
        ("HOSTNAME".into(), name.to_owned()),
        (
            "HOME".into(),
            std::env::var("HOME").unwrap_or_else(|_| "/root".into()),
        ),
        ("KUBECONFIG".into(), kubeconfig.display().to_string()),
    ];
    let mut set = |k: String, v: String| {
        env.retain(|(name, _)| *name != k);
        env.push((k, v));
    };
    for from in spec["envFrom"].as_array().into_iter().flatten() {
        let prefix = from["prefix"].as_str().unwrap_or_default();
        let (plural, source) = if let Some(s) = from.get("configMapRef") {
            ("configmaps", s)
        } else if let Some(s) = from.get("secretRef") {
            ("secrets", s)
        } else {
            continue;
        };
        let source_name = source["name"].as_str().unwrap_or_default();
        match object(server, plural, ns, source_name) {
            Some(o) => {
                for (k, v) in o["data"].as_object().into_iter().flatten() {
                    let value = if plural == "secrets" {
                        secret_value(v)
                    } else {
                        v.as_str().unwrap_or_default().to_owned()
                    };
                    set(format!("{prefix}{k}"), value);
                }
            }
            None if source["optional"] == true => {}
            None => {
                return Err(format!(
                    "{} \"{source_name}\" not found",
                    if plural == "secrets" {
                        "secret"
                    } else {
                        "configmap"
                    }
                ));
            }
        }
    }
    for e in spec["env"].as_array().into_iter().flatten() {
        let key = e["name"].as_str().unwrap_or_default().to_owned();
        if let Some(v) = e.get("value") {
            set(key, v.as_str().unwrap_or_default().to_owned());
            continue;
        }
        let Some(from) = e.get("valueFrom") else {
            set(key, String::new());
            continue;
        };
        if let Some(field) = from.pointer("/fieldRef/fieldPath").and_then(Value::as_str) {
            let value = match field {
                "metadata.name" => name.to_owned(),
                "metadata.namespace" => ns.to_owned(),
                "metadata.uid" => meta::meta_str(pod, "uid").unwrap_or_default().to_owned(),
                "status.podIP" => ip.to_string(),
                "status.hostIP" => super::HOST_IP.to_string(),
                "spec.nodeName" => pod
                    .pointer("/spec/nodeName")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                "spec.serviceAccountName" => pod
                    .pointer("/spec/serviceAccountName")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                other => {
                    let label = other
                        .strip_prefix("metadata.labels['")
                        .or_else(|| other.strip_prefix("metadata.annotations['"))
                        .and_then(|r| r.strip_suffix("']"));
                    let map = if other.starts_with("metadata.labels") {
                        "labels"
                    } else {
                        "annotations"
                    };
                    match label {
                        Some(l) => pod["metadata"][map][l]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned(),
                        None => return Err(format!("env {key}: unsupported fieldRef {other:?}")),
                    }
                }
            };
            set(key, value);
        } else if let Some(r) = from
            .get("configMapKeyRef")
            .or_else(|| from.get("secretKeyRef"))
        {
            let secret = from.get("secretKeyRef").is_some();
            let source = r["name"].as_str().unwrap_or_default();
            let k = r["key"].as_str().unwrap_or_default();
            let o = object(
                server,
                if secret { "secrets" } else { "configmaps" },
                ns,
                source,
            );
            match o.as_ref().and_then(|o| o["data"].get(k)) {
                Some(v) => set(
                    key,
                    if secret {
                        secret_value(v)
                    } else {
                        v.as_str().unwrap_or_default().to_owned()
                    },
                ),
                None if r["optional"] == true => {}
                None if o.is_none() => {
                    return Err(format!(
                        "{} \"{source}\" not found",
                        if secret { "secret" } else { "configmap" }
                    ));
                }
                None => {
                    return Err(format!(
                        "couldn't find key {k} in {} {ns}/{source}",
                        if secret { "Secret" } else { "ConfigMap" }
                    ));
                }
            }
        } else if from.get("resourceFieldRef").is_some() {
            set(key, "0".into());
        }
    }
    Ok(env)
}

/// Writes the pod's volumes under `dir/volumes/<name>` (claims under `claims/<ns>/<claim>`);
/// returns each volume's directory.
pub fn materialize_volumes(
    server: &ApiServer,
    pod: &Value,
    dir: &Path,
    claims: &Path,
) -> Result<Vec<(String, PathBuf)>, String> {
    let ns = meta::meta_str(pod, "namespace").unwrap_or("default");
    let mut out = Vec::new();
    for v in pod
        .pointer("/spec/volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = v["name"].as_str().unwrap_or_default().to_owned();
        let path = dir.join("volumes").join(&name);
        if let Some(host) = v.pointer("/hostPath/path").and_then(Value::as_str) {
            out.push((name, PathBuf::from(host)));
            continue;
        }
        // A claim is a directory of the cluster's that outlives pods, as a bound volume does.
        if let Some(claim) = v
            .pointer("/persistentVolumeClaim/claimName")
            .and_then(Value::as_str)
        {
            if object(server, "persistentvolumeclaims", ns, claim).is_none() {
                return Err(format!("persistentvolumeclaim \"{claim}\" not found"));
            }
            let path = claims.join(ns).join(claim);
            std::fs::create_dir_all(&path).map_err(|e| format!("volume {name}: {e}"))?;
            out.push((name, path));
            continue;
        }
        std::fs::create_dir_all(&path).map_err(|e| format!("volume {name}: {e}"))?;
        let (plural, source_name, optional) = if let Some(c) = v.get("configMap") {
            (
                "configmaps",
                c["name"].as_str().unwrap_or_default(),
                c["optional"] == true,
            )
        } else if let Some(s) = v.get("secret") {
            (
                "secrets",
                s["secretName"].as_str().unwrap_or_default(),
                s["optional"] == true,
            )
        } else {
            out.push((name, path));
            continue;
        };
        let source = v
            .get("configMap")
            .or_else(|| v.get("secret"))
            .cloned()
            .unwrap_or_default();
        match object(server, plural, ns, source_name) {
            Some(o) => {
                let data = o["data"].as_object().cloned().unwrap_or_default();
                let items: Vec<(String, String)> = match source["items"].as_array() {
                    Some(items) => items
                        .iter()
                        .map(|i| {
                            (
                                i["key"].as_str().unwrap_or_default().to_owned(),
                                i["path"].as_str().unwrap_or_default().to_owned(),
                            )
                        })
                        .collect(),
                    None => data.keys().map(|k| (k.clone(), k.clone())).collect(),
                };
                for (key, file) in items {
                    let Some(value) = data.get(&key) else {
                        continue;
                    };
                    let content = if plural == "secrets" {
                        base64::engine::general_purpose::STANDARD
                            .decode(value.as_str().unwrap_or_default())
                            .unwrap_or_default()
                    } else {
                        value.as_str().unwrap_or_default().as_bytes().to_vec()
                    };
                    let target = path.join(&file);
                    if let Some(parent) = target.parent() {
                        let _ = std::fs::create_dir_all(parent);
                    }
                    std::fs::write(&target, content).map_err(|e| format!("volume {name}: {e}"))?;
                }
            }
            None if optional => {}
            None => {
                return Err(format!(
                    "MountVolume.SetUp failed for volume \"{name}\": {} \"{source_name}\" not found",
                    if plural == "secrets" {
                        "secret"
                    } else {
                        "configmap"
                    }
                ));
            }
        }
        out.push((name, path));
    }
    Ok(out)
}

/// Each of the container's mount paths and the directory it maps to.
pub fn mounts(spec: &Value, volumes: &[(String, PathBuf)]) -> Vec<(String, PathBuf)> {
    let mut out: Vec<(String, PathBuf)> = spec["volumeMounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| {
            let volume = m["name"].as_str()?;
            let (_, dir) = volumes.iter().find(|(n, _)| n == volume)?;
            let dir = match m["subPath"].as_str().filter(|s| !s.is_empty()) {
                Some(sub) => dir.join(sub),
                None => dir.clone(),
            };
            Some((
                m["mountPath"].as_str()?.trim_end_matches('/').to_owned(),
                dir,
            ))
        })
        .collect();
    // Longest first, so nested mounts win.
    out.sort_by_key(|(m, _)| std::cmp::Reverse(m.len()));
    out
}

/// Replaces every mount path in `text` (where it stands as a whole path or a path prefix)
/// with the directory it maps to.
pub fn rewrite_paths(text: &str, mounts: &[(String, PathBuf)]) -> String {
    let mut out = text.to_owned();
    for (mount, dir) in mounts {
        if mount.is_empty() {
            continue;
        }
        let mut result = String::new();
        let mut rest = out.as_str();
        while let Some(i) = rest.find(mount.as_str()) {
            let before_ok = i == 0 || !is_path_char(rest.as_bytes()[i - 1]);
            let after = rest.as_bytes().get(i + mount.len()).copied();
            let after_ok = after.is_none_or(|c| c == b'/' || !is_path_char(c));
            result.push_str(&rest[..i]);
            if before_ok && after_ok {
                result.push_str(&dir.display().to_string());
            } else {
                result.push_str(mount);
            }
            rest = &rest[i + mount.len()..];
        }
        result.push_str(rest);
        out = result;
    }
    out
}

fn is_path_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'/' | b'.' | b'-' | b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_paths_are_rewritten_only_where_they_stand_as_paths() {
        let mounts = vec![(
            "/etc/config".to_owned(),
            PathBuf::from("/tmp/pod/volumes/cfg"),
        )];
        assert_eq!(
            rewrite_paths("/etc/config/app.yaml", &mounts),
            "/tmp/pod/volumes/cfg/app.yaml"
        );
        assert_eq!(
            rewrite_paths("cat /etc/config/a && ls /etc/config", &mounts),
            "cat /tmp/pod/volumes/cfg/a && ls /tmp/pod/volumes/cfg"
        );
        assert_eq!(
            rewrite_paths("/etc/configuration", &mounts),
            "/etc/configuration"
        );
        assert_eq!(rewrite_paths("/x/etc/config", &mounts), "/x/etc/config");
    }
}
