//! Server-side apply: field ownership per manager (`managedFields`, FieldsV1), conflicts
//! between managers, and the merge of an applied configuration into the live object.
//!
//! Lists merge by key where the kind declares one (the built-in merge keys, or a CRD's
//! `x-kubernetes-list-map-keys`); other lists are atomic. Updates (PUT and the other PATCH
//! types) take ownership of the fields they change, as in Kubernetes.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::patch::merge_key;

/// A set of fields in FieldsV1 form: `f:<field>`, `k:<key json>` for keyed list items,
/// `.` for the node itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet(BTreeMap<String, FieldSet>);

/// A path to one field: FieldsV1 path elements.
pub type FieldPath = Vec<String>;

/// How list keys are found for a list field at a path.
pub type ListKeys<'a> = &'a dyn Fn(&[String], &str, &[Value]) -> Option<Vec<String>>;

/// The built-in merge keys (single-key lists).
pub fn builtin_list_keys(_: &[String], field: &str, items: &[Value]) -> Option<Vec<String>> {
    merge_key(field, items).map(|k| vec![k.to_owned()])
}

impl FieldSet {
    /// The fields an applied configuration sets (its metadata limited to labels,
    /// annotations and finalizers; never type or identity fields).
    pub fn of(config: &Value, keys: ListKeys<'_>) -> FieldSet {
        let mut set = FieldSet::default();
        if let Value::Object(map) = config {
            for (k, v) in map {
                match k.as_str() {
                    "apiVersion" | "kind" => {}
                    "metadata" => {
                        let mut meta = FieldSet::default();
                        for field in ["labels", "annotations", "finalizers"] {
                            if let Some(v) = v.get(field) {
                                meta.0.insert(
                                    format!("f:{field}"),
                                    walk(&["f:metadata".into()], field, v, keys),
                                );
                            }
                        }
                        if !meta.0.is_empty() {
                            set.0.insert("f:metadata".into(), meta);
                        }
                    }
                    _ => {
                        set.0.insert(format!("f:{k}"), walk(&[], k, v, keys));
                    }
                }
            }
        }
        set
    }

    /// Parses `fieldsV1`.
    pub fn from_json(v: &Value) -> FieldSet {
        FieldSet(
            v.as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), FieldSet::from_json(v)))
                        .collect()
                })
                .unwrap_or_default(),
        )
    }

    /// As `fieldsV1`.
    pub fn to_json(&self) -> Value {
        Value::Object(
            self.0
                .iter()
                .map(|(k, v)| (k.clone(), v.to_json()))
                .collect(),
        )
    }

    /// Every leaf (a field owned as a whole).
    pub fn leaves(&self) -> Vec<FieldPath> {
        let mut out = Vec::new();
        fn go(set: &FieldSet, prefix: &mut FieldPath, out: &mut Vec<FieldPath>) {
            for (k, child) in &set.0 {
                if k == "." {
                    continue;
                }
                prefix.push(k.clone());
                if child.0.keys().all(|c| c == ".") {
                    out.push(prefix.clone());
                } else {
                    go(child, prefix, out);
                }
                prefix.pop();
            }
        }
        go(self, &mut Vec::new(), &mut out);
        out
    }

    /// Whether the set holds `path` or a prefix or extension of it.
    pub fn overlaps(&self, path: &[String]) -> bool {
        let mut node = self;
        for (i, p) in path.iter().enumerate() {
            match node.0.get(p) {
                Some(child) => {
                    if child.0.is_empty() && i + 1 < path.len() {
                        return true; // owns an ancestor as a whole (an atomic value)
                    }
                    node = child;
                }
                None => return false,
            }
        }
        true
    }

    /// Adds a leaf path.
    pub fn insert(&mut self, path: &[String]) {
        let mut node = self;
        for p in path {
            node = node.0.entry(p.clone()).or_default();
        }
    }

    /// Removes a leaf path (and parents left empty).
    pub fn remove(&mut self, path: &[String]) {
        fn go(node: &mut FieldSet, path: &[String]) -> bool {
            let Some((first, rest)) = path.split_first() else {
                return true;
            };
            if rest.is_empty() {
                node.0.remove(first);
            } else if let Some(child) = node.0.get_mut(first)
                && go(child, rest)
                && child.0.keys().all(|k| k == ".")
            {
                node.0.remove(first);
            }
            true
        }
        go(self, path);
    }

    /// Whether no field is held.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn walk(parent: &[String], field: &str, value: &Value, keys: ListKeys<'_>) -> FieldSet {
    let mut here: Vec<String> = parent.to_vec();
    here.push(format!("f:{field}"));
    match value {
        Value::Object(map) => {
            let mut set = FieldSet::default();
            set.0.insert(".".into(), FieldSet::default());
            for (k, v) in map {
                set.0.insert(format!("f:{k}"), walk(&here, k, v, keys));
            }
            set
        }
        Value::Array(items) => match keys(&here, field, items) {
            Some(key_fields) if items.iter().all(Value::is_object) => {
                let mut set = FieldSet::default();
                set.0.insert(".".into(), FieldSet::default());
                for item in items {
                    let mut item_set = FieldSet::default();
                    item_set.0.insert(".".into(), FieldSet::default());
                    if let Value::Object(m) = item {
                        for (k, v) in m {
                            item_set.0.insert(format!("f:{k}"), walk(&here, k, v, keys));
                        }
                    }
                    set.0.insert(item_key(item, &key_fields), item_set);
                }
                set
            }
            _ => FieldSet::default(),
        },
        _ => FieldSet::default(),
    }
}

fn item_key(item: &Value, key_fields: &[String]) -> String {
    let key: Map<String, Value> = key_fields
        .iter()
        .filter_map(|k| item.get(k).map(|v| (k.clone(), v.clone())))
        .collect();
    format!("k:{}", Value::Object(key))
}

/// The value at a FieldsV1 path, if present.
pub fn value_at<'a>(object: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut current = object;
    for p in path {
        if let Some(field) = p.strip_prefix("f:") {
            current = current.get(field)?;
        } else if let Some(key) = p.strip_prefix("k:") {
            let key: Map<String, Value> = serde_json::from_str(key).ok()?;
            current = current
                .as_array()?
                .iter()
                .find(|item| key.iter().all(|(k, v)| item.get(k) == Some(v)))?;
        } else {
            return None;
        }
    }
    Some(current)
}

/// Removes the field at a FieldsV1 path, if present.
pub fn remove_at(object: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut current = object;
    for p in parents {
        let next = if let Some(field) = p.strip_prefix("f:") {
            current.get_mut(field)
        } else if let Some(key) = p.strip_prefix("k:") {
            let Ok(key) = serde_json::from_str::<Map<String, Value>>(key) else {
                return;
            };
            current.as_array_mut().and_then(|a| {
                a.iter_mut()
                    .find(|item| key.iter().all(|(k, v)| item.get(k) == Some(v)))
            })
        } else {
            None
        };
        match next {
            Some(n) => current = n,
            None => return,
        }
    }
    if let Some(field) = last.strip_prefix("f:") {
        if let Some(m) = current.as_object_mut() {
            m.remove(field);
        }
    } else if let Some(key) = last.strip_prefix("k:")
        && let Ok(key) = serde_json::from_str::<Map<String, Value>>(key)
        && let Some(list) = current.as_array_mut()
    {
        list.retain(|item| !key.iter().all(|(k, v)| item.get(k) == Some(v)));
    }
}

/// Removes from `object` what a manager applied before (`previous`) and no longer applies
/// (`applied`), unless another manager (`others`) holds it too. What goes is the highest
/// field nobody holds any more, as in Kubernetes: an item of a keyed list or a map the
/// configuration dropped goes whole, not as an empty shell of its key fields.
pub fn prune(object: &mut Value, previous: &FieldSet, applied: &FieldSet, others: &[FieldSet]) {
    let held = |path: &[String]| applied.overlaps(path) || others.iter().any(|o| o.overlaps(path));
    for leaf in previous.leaves() {
        if held(&leaf) {
            continue;
        }
        let top = (1..=leaf.len())
            .find(|&i| !held(&leaf[..i]))
            .unwrap_or(leaf.len());
        remove_at(object, &leaf[..top]);
    }
}

/// Deep-merges an applied configuration into the live object: maps merge, keyed lists merge
/// by key, everything else is replaced.
pub fn merge_config(live: &Value, config: &Value, path: &[String], keys: ListKeys<'_>) -> Value {
    match (live, config) {
        (Value::Object(l), Value::Object(c)) => {
            let mut out = l.clone();
            for (k, v) in c {
                let mut child = path.to_vec();
                child.push(format!("f:{k}"));
                let merged = match (l.get(k), v) {
                    (Some(lv), Value::Array(items)) => match (lv, keys(&child, k, items)) {
                        (Value::Array(litems), Some(key_fields)) => {
                            let mut out_items = litems.clone();
                            for item in items {
                                let id: Vec<Option<&Value>> =
                                    key_fields.iter().map(|f| item.get(f)).collect();
                                match out_items.iter().position(|li| {
                                    key_fields.iter().map(|f| li.get(f)).collect::<Vec<_>>() == id
                                }) {
                                    Some(i) => {
                                        out_items[i] =
                                            merge_config(&out_items[i], item, &child, keys)
                                    }
                                    None => out_items.push(item.clone()),
                                }
                            }
                            Value::Array(out_items)
                        }
                        _ => v.clone(),
                    },
                    (Some(lv), _) => merge_config(lv, v, &child, keys),
                    (None, _) => v.clone(),
                };
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (_, c) => c.clone(),
    }
}

/// One entry of `metadata.managedFields`.
pub fn managed_entry(
    manager: &str,
    operation: &str,
    api_version: &str,
    fields: &FieldSet,
    subresource: Option<&str>,
    time: &str,
) -> Value {
    let mut entry = json!({
        "manager": manager,
        "operation": operation,
        "apiVersion": api_version,
        "time": time,
        "fieldsType": "FieldsV1",
        "fieldsV1": fields.to_json(),
    });
    if let Some(sub) = subresource {
        entry["subresource"] = json!(sub);
    }
    entry
}

/// Paths (FieldsV1) of every leaf that differs between `old` and `new`, for attributing an
/// update to its manager.
pub fn changed_leaves(old: &Value, new: &Value, keys: ListKeys<'_>) -> Vec<FieldPath> {
    let new_fields = FieldSet::of(new, keys);
    new_fields
        .leaves()
        .into_iter()
        .filter(|p| value_at(old, p) != value_at(new, p))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(p: &[String], f: &str, i: &[Value]) -> Option<Vec<String>> {
        builtin_list_keys(p, f, i)
    }

    #[test]
    fn field_sets_follow_fields_v1() {
        let config = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "x", "labels": {"app": "x"}},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}
        });
        let set = FieldSet::of(&config, &keys);
        let leaves = set.leaves();
        assert!(leaves.contains(&vec![
            "f:metadata".into(),
            "f:labels".into(),
            "f:app".into()
        ]));
        assert!(leaves.contains(&vec!["f:spec".into(), "f:replicas".into()]));
        assert!(leaves.contains(&vec![
            "f:spec".into(),
            "f:template".into(),
            "f:spec".into(),
            "f:containers".into(),
            "k:{\"name\":\"c\"}".into(),
            "f:image".into()
        ]));
        assert_eq!(FieldSet::from_json(&set.to_json()), set);
    }

    #[test]
    fn values_are_found_and_removed_by_path() {
        let mut obj = json!({"spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "2"}]}});
        let path: FieldPath = vec![
            "f:spec".into(),
            "f:containers".into(),
            "k:{\"name\":\"b\"}".into(),
            "f:image".into(),
        ];
        assert_eq!(value_at(&obj, &path), Some(&json!("2")));
        remove_at(&mut obj, &path[..3]);
        assert_eq!(obj["spec"]["containers"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn what_a_manager_no_longer_applies_goes_whole() {
        let before = json!({"spec": {"template": {
            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
            "volumes": [{"name": "v", "configMap": {"name": "c"}}],
        }}});
        let previous = FieldSet::of(&before, &keys);
        // The next configuration keeps B only and drops the volumes; another manager holds
        // a field of its own in the template.
        let now = json!({"spec": {"template": {"env": [{"name": "B", "value": "2"}]}}});
        let applied = FieldSet::of(&now, &keys);
        let mut live = before.clone();
        live["spec"]["template"]["serviceAccountName"] = json!("x");
        let other = FieldSet::of(
            &json!({"spec": {"template": {"serviceAccountName": "x"}}}),
            &keys,
        );
        prune(&mut live, &previous, &applied, &[other]);
        assert_eq!(
            live,
            json!({"spec": {"template": {
                "env": [{"name": "B", "value": "2"}],
                "serviceAccountName": "x",
            }}})
        );
    }

    #[test]
    fn configs_merge_keyed_lists_by_key() {
        let live = json!({"spec": {"containers": [{"name": "a", "image": "1"}], "replicas": 1}});
        let config = json!({"spec": {"containers": [{"name": "b", "image": "2"}]}});
        let out = merge_config(&live, &config, &[], &keys);
        assert_eq!(out["spec"]["containers"].as_array().unwrap().len(), 2);
        assert_eq!(out["spec"]["replicas"], 1);
    }
}
