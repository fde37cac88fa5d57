//! Server-side apply: field ownership, conflicts, and `force`.

use serde_json::{Value, json};

use super::*;
use crate::apiserver::ApiServer;
use crate::apiserver::apply::{self, FieldSet};
use crate::apiserver::meta::{self, metadata_mut};
use crate::apiserver::registry::ResourceType;
use crate::apiserver::status::ApiError;
use crate::apiserver::store::Write;

impl ApiServer {
    /// Server-side apply: creates when absent; otherwise merges the configuration, moving
    /// ownership of its fields to the manager, and refuses (409) to change fields another
    /// manager owns unless forced.
    pub(super) fn server_side_apply(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
        config: Value,
        sub: Option<&str>,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        let manager = opts
            .field_manager
            .clone()
            .filter(|m| !m.is_empty())
            .ok_or_else(|| ApiError::bad_request("PATCH with application/apply-patch+yaml requires the fieldManager query parameter"))?;
        check_type_meta(rt, &config)?;
        if config.get("apiVersion").is_none() || config.get("kind").is_none() {
            return Err(ApiError::bad_request(
                "apply configurations must name apiVersion and kind",
            ));
        }
        let namespace = ns_of(rt, ns);
        if self
            .store
            .get(&rt.storage_key(), &namespace, name)
            .is_none()
        {
            if sub.is_some() {
                return Err(ApiError::not_found(rt, name));
            }
            let mut body = config.clone();
            metadata_mut(&mut body).insert("name".into(), json!(name));
            let mut written = self.create(rt, ns, body, opts)?;
            // The creator owns what it applied, as an Apply.
            let keys = self.list_keys(rt);
            let fields = FieldSet::of(&config, &keys);
            let api_version = rt.api_version();
            let updated =
                self.store
                    .write::<ApiError>(&rt.storage_key(), &namespace, name, |old| {
                        let Some(old) = old else {
                            return Ok(Write::Keep);
                        };
                        let mut new = old.clone();
                        metadata_mut(&mut new).insert(
                            "managedFields".into(),
                            json!([apply::managed_entry(
                                &manager,
                                "Apply",
                                &api_version,
                                &fields,
                                None,
                                &meta::now()
                            )]),
                        );
                        Ok(Write::Put(new))
                    })?;
            if let Some(o) = updated {
                written.object = o;
            }
            return Ok(written);
        }
        let keys = self.list_keys(rt);
        let scoped = match sub {
            Some("status") => {
                json!({"apiVersion": config["apiVersion"], "kind": config["kind"], "status": config.get("status").cloned().unwrap_or(json!({}))})
            }
            _ => {
                let mut c = config.clone();
                if rt.status
                    && let Some(m) = c.as_object_mut()
                {
                    m.remove("status");
                }
                c
            }
        };
        let applied = FieldSet::of(&scoped, &keys);
        let api_version = rt.api_version();
        let force = opts.force;
        self.modify(rt, ns, name, sub, opts, |old| {
            let managed: Vec<Value> = old.pointer("/metadata/managedFields").and_then(Value::as_array).cloned().unwrap_or_default();
            // Conflicts: fields others own whose value this apply would change.
            let mut conflicts = Vec::new();
            for entry in &managed {
                let other = entry["manager"].as_str().unwrap_or_default();
                let same = other == manager && entry["operation"] == "Apply";
                if same || entry.get("subresource").and_then(Value::as_str) != sub {
                    continue;
                }
                let owned = FieldSet::from_json(&entry["fieldsV1"]);
                for leaf in applied.leaves() {
                    // A map the configuration names only asserts that it exists.
                    if apply::value_at(&scoped, &leaf).is_some_and(Value::is_object) {
                        continue;
                    }
                    if owned.overlaps(&leaf) && apply::value_at(old, &leaf) != apply::value_at(&scoped, &leaf) {
                        conflicts.push((other.to_owned(), leaf));
                    }
                }
            }
            if !conflicts.is_empty() && !force {
                let causes: Vec<Value> = conflicts
                    .iter()
                    .map(|(m, p)| json!({"reason": "FieldManagerConflict", "message": format!("conflict with \"{m}\""), "field": display_path(p)}))
                    .collect();
                let lines: Vec<String> = conflicts.iter().map(|(m, p)| format!("conflict with \"{m}\": {}", display_path(p))).collect();
                return Err(ApiError {
                    code: 409,
                    reason: "Conflict",
                    message: format!("Apply failed with {} conflict{}: {}", conflicts.len(), if conflicts.len() == 1 { "" } else { "s" }, lines.join("\n")),
                    details: json!({"name": name, "group": rt.group, "kind": rt.plural, "causes": causes}),
                });
            }
            // Fields this manager applied before and no longer applies are removed, unless
            // another manager owns them too.
            let mut new = old.clone();
            let previous = managed
                .iter()
                .find(|e| e["manager"] == manager.as_str() && e["operation"] == "Apply" && e.get("subresource").and_then(Value::as_str) == sub)
                .map(|e| FieldSet::from_json(&e["fieldsV1"]))
                .unwrap_or_default();
            let others: Vec<FieldSet> = managed
                .iter()
                .filter(|e| !(e["manager"] == manager.as_str() && e["operation"] == "Apply"))
                .map(|e| FieldSet::from_json(&e["fieldsV1"]))
                .collect();
            apply::prune(&mut new, &previous, &applied, &others);
            let mut new = apply::merge_config(&new, &scoped, &[], &keys);
            // Ownership: this manager's Apply entry becomes exactly the applied set; forced
            // conflicts move to it.
            let mut entries: Vec<Value> = managed
                .into_iter()
                .filter(|e| !(e["manager"] == manager.as_str() && e["operation"] == "Apply" && e.get("subresource").and_then(Value::as_str) == sub))
                .filter_map(|mut e| {
                    let mut owned = FieldSet::from_json(&e["fieldsV1"]);
                    for (_, leaf) in conflicts.iter() {
                        owned.remove(leaf);
                    }
                    if owned.is_empty() {
                        return None;
                    }
                    e["fieldsV1"] = owned.to_json();
                    Some(e)
                })
                .collect();
            entries.push(apply::managed_entry(&manager, "Apply", &api_version, &applied, sub, &meta::now()));
            metadata_mut(&mut new).insert("managedFields".into(), json!(entries));
            Ok(new)
        })
    }
}

pub(super) fn set_managed(
    object: &mut Value,
    manager: &str,
    operation: &str,
    api_version: &str,
    fields: &FieldSet,
    sub: Option<&str>,
) {
    metadata_mut(object).insert(
        "managedFields".into(),
        json!([apply::managed_entry(
            manager,
            operation,
            api_version,
            fields,
            sub,
            &meta::now()
        )]),
    );
}
pub(super) fn display_path(path: &[String]) -> String {
    path.iter()
        .map(|p| match p.strip_prefix("f:") {
            Some(f) => format!(".{f}"),
            None => format!("[{}]", p.trim_start_matches("k:")),
        })
        .collect()
}
