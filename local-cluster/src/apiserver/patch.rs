//! The PATCH bodies Kubernetes accepts: JSON patch (RFC 6902, with `test`), JSON merge patch
//! (RFC 7386) and strategic merge patch for built-in kinds (lists merged by key, `$patch`,
//! `$setElementOrder`, `$deleteFromPrimitiveList`, `$retainKeys`).

use serde_json::{Map, Value};

/// Applies an RFC 6902 JSON patch. A failed `test` or a missing path is an error.
pub fn json_patch(target: &Value, patch: &Value) -> Result<Value, String> {
    let patch: json_patch::Patch =
        serde_json::from_value(patch.clone()).map_err(|e| format!("invalid JSON patch: {e}"))?;
    let mut out = target.clone();
    json_patch::patch(&mut out, &patch).map_err(|e| e.to_string())?;
    Ok(out)
}

/// Applies an RFC 7386 JSON merge patch.
pub fn merge_patch(target: &Value, patch: &Value) -> Value {
    let mut out = target.clone();
    json_patch::merge(&mut out, patch);
    out
}

/// The merge key of a list field in the built-in kinds, by field name. `ports` depends on
/// what the items hold (container ports merge on `containerPort`, Service ports on `port`).
pub(crate) fn merge_key(field: &str, items: &[Value]) -> Option<&'static str> {
    Some(match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "readinessGates" => {
            if field == "readinessGates" {
                "conditionType"
            } else {
                "name"
            }
        }
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "hostAliases" => "ip",
        "conditions" => "type",
        "ownerReferences" => "uid",
        "topologySpreadConstraints" => "topologyKey",
        "ports" => {
            if items.iter().any(|i| i.get("containerPort").is_some()) {
                "containerPort"
            } else {
                "port"
            }
        }
        _ => return None,
    })
}

/// Applies a strategic merge patch to an object of a built-in kind.
pub fn strategic_merge_patch(target: &Value, patch: &Value) -> Result<Value, String> {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => Ok(Value::Object(merge_map(t, p)?)),
        (_, p) => Ok(p.clone()),
    }
}

fn merge_map(
    target: &Map<String, Value>,
    patch: &Map<String, Value>,
) -> Result<Map<String, Value>, String> {
    match patch.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            let mut out = patch.clone();
            out.remove("$patch");
            return Ok(out);
        }
        Some("delete") => return Ok(Map::new()),
        Some(other) => return Err(format!("unknown $patch directive {other:?}")),
        None => {}
    }
    let mut out = target.clone();
    if let Some(keep) = patch.get("$retainKeys").and_then(Value::as_array) {
        let keep: Vec<&str> = keep.iter().filter_map(Value::as_str).collect();
        out.retain(|k, _| keep.contains(&k.as_str()));
    }
    for (key, value) in patch {
        if key.starts_with('$') {
            continue;
        }
        match value {
            Value::Null => {
                out.remove(key);
            }
            Value::Object(p) => {
                let merged = match out.get(key) {
                    Some(Value::Object(t)) => merge_map(t, p)?,
                    _ => merge_map(&Map::new(), p)?,
                };
                out.insert(key.clone(), Value::Object(merged));
            }
            Value::Array(p) => {
                let existing = out
                    .get(key)
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let order = patch
                    .get(&format!("$setElementOrder/{key}"))
                    .and_then(Value::as_array);
                let merged = merge_list(key, &existing, p, order)?;
                out.insert(key.clone(), Value::Array(merged));
            }
            other => {
                out.insert(key.clone(), other.clone());
            }
        }
    }
    // Deletions from primitive lists, and element orders for lists the patch left alone.
    for (key, value) in patch {
        if let Some(field) = key.strip_prefix("$deleteFromPrimitiveList/") {
            let remove: Vec<&Value> = value
                .as_array()
                .map(|a| a.iter().collect())
                .unwrap_or_default();
            if let Some(Value::Array(list)) = out.get_mut(field) {
                list.retain(|v| !remove.contains(&v));
            }
        }
        if let Some(field) = key.strip_prefix("$setElementOrder/")
            && !patch.contains_key(field)
            && let (Some(Value::Array(list)), Some(order)) =
                (out.get(field).cloned(), value.as_array())
        {
            let ordered = reorder(field, list, order);
            out.insert(field.to_owned(), Value::Array(ordered));
        }
    }
    Ok(out)
}

fn merge_list(
    field: &str,
    target: &[Value],
    patch: &[Value],
    order: Option<&Vec<Value>>,
) -> Result<Vec<Value>, String> {
    if patch
        .iter()
        .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        return Ok(patch
            .iter()
            .filter(|i| i.get("$patch").is_none())
            .cloned()
            .collect());
    }
    let all: Vec<Value> = target.iter().chain(patch.iter()).cloned().collect();
    let Some(key) = merge_key(field, &all) else {
        // Lists without a merge key are replaced whole.
        return Ok(patch.to_vec());
    };
    let mut out: Vec<Value> = target.to_vec();
    for item in patch {
        let id = item.get(key);
        let position = out.iter().position(|t| t.get(key) == id && id.is_some());
        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match (position, delete) {
            (Some(i), true) => {
                out.remove(i);
            }
            (None, true) => {}
            (Some(i), false) => {
                let merged = match (&out[i], item) {
                    (Value::Object(t), Value::Object(p)) => Value::Object(merge_map(t, p)?),
                    (_, p) => p.clone(),
                };
                out[i] = merged;
            }
            (None, false) => {
                let mut item = item.clone();
                if let Some(m) = item.as_object_mut() {
                    m.remove("$patch");
                }
                out.push(item);
            }
        }
    }
    Ok(match order {
        Some(order) => reorder(field, out, order),
        None => out,
    })
}

/// Orders `list` as `order` names its items (by merge key); unnamed items keep their place
/// after the named ones.
fn reorder(field: &str, list: Vec<Value>, order: &[Value]) -> Vec<Value> {
    let Some(key) = merge_key(field, &list) else {
        return list;
    };
    let mut rest = list;
    let mut out = Vec::with_capacity(rest.len());
    for want in order {
        if let Some(i) = rest.iter().position(|item| item.get(key) == want.get(key)) {
            out.push(rest.remove(i));
        }
    }
    out.extend(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn containers_and_env_merge_by_name() {
        let target = json!({"spec": {"containers": [
            {"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]},
            {"name": "b", "image": "b:1"}
        ]}});
        let patch = json!({"spec": {
            "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
            "containers": [{"name": "a", "image": "a:2", "env": [{"name": "Y", "value": "3"}, {"name": "X", "$patch": "delete"}]}]
        }});
        let out = strategic_merge_patch(&target, &patch).unwrap();
        assert_eq!(out["spec"]["containers"][0]["image"], "a:2");
        assert_eq!(
            out["spec"]["containers"][0]["env"],
            json!([{"name": "Y", "value": "3"}])
        );
        assert_eq!(out["spec"]["containers"][1]["name"], "b");
    }

    #[test]
    fn set_element_order_reorders_and_null_deletes() {
        let target = json!({"spec": {"replicas": 1, "paused": true, "volumes": [{"name": "a"}, {"name": "b"}]}});
        let patch = json!({"spec": {"paused": null, "$setElementOrder/volumes": [{"name": "b"}, {"name": "a"}]}});
        let out = strategic_merge_patch(&target, &patch).unwrap();
        assert_eq!(out["spec"].get("paused"), None);
        assert_eq!(
            out["spec"]["volumes"],
            json!([{"name": "b"}, {"name": "a"}])
        );
    }

    #[test]
    fn lists_without_merge_keys_are_replaced_and_primitive_deletes_apply() {
        let target = json!({"spec": {"args": ["a", "b"]}, "metadata": {"finalizers": ["x", "y"]}});
        let patch = json!({"spec": {"args": ["c"]}, "metadata": {"$deleteFromPrimitiveList/finalizers": ["x"]}});
        let out = strategic_merge_patch(&target, &patch).unwrap();
        assert_eq!(out["spec"]["args"], json!(["c"]));
        assert_eq!(out["metadata"]["finalizers"], json!(["y"]));
    }

    #[test]
    fn service_ports_merge_on_port_and_container_ports_on_container_port() {
        let svc = json!({"spec": {"ports": [{"port": 80, "name": "http"}]}});
        let out = strategic_merge_patch(
            &svc,
            &json!({"spec": {"ports": [{"port": 443, "name": "https"}]}}),
        )
        .unwrap();
        assert_eq!(out["spec"]["ports"].as_array().unwrap().len(), 2);
        let c = json!({"ports": [{"containerPort": 80}]});
        let out = strategic_merge_patch(
            &c,
            &json!({"ports": [{"containerPort": 80, "name": "web"}]}),
        )
        .unwrap();
        assert_eq!(out["ports"], json!([{"containerPort": 80, "name": "web"}]));
    }

    #[test]
    fn json_patch_test_operations_guard_the_patch() {
        let target = json!({"metadata": {"finalizers": ["a"]}});
        let ok = json!([{"op": "test", "path": "/metadata/finalizers", "value": ["a"]}, {"op": "remove", "path": "/metadata/finalizers/0"}]);
        assert_eq!(
            json_patch(&target, &ok).unwrap()["metadata"]["finalizers"],
            json!([])
        );
        let stale = json!([{"op": "test", "path": "/metadata/finalizers", "value": ["b"]}, {"op": "remove", "path": "/metadata/finalizers/0"}]);
        assert!(json_patch(&target, &stale).is_err());
    }
}
