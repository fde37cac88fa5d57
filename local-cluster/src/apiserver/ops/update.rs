//! PUT and PATCH (JSON, merge, strategic merge): read-modify-write under the store's
//! lock, admission, and the managed-fields record of the change.

use std::sync::Arc;

use serde_json::{Value, json};

use super::*;
use crate::apiserver::apply::{self, FieldSet};
use crate::apiserver::meta::{self, metadata_mut};
use crate::apiserver::registry::ResourceType;
use crate::apiserver::status::ApiError;
use crate::apiserver::store::Write;
use crate::apiserver::{ApiServer, builtin, patch};

impl ApiServer {
    /// Replaces an object (PUT), or its status or scale.
    pub fn update(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
        body: Value,
        sub: Option<&str>,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        if sub == Some("scale") {
            return self.write_scale(rt, ns, name, body, opts);
        }
        check_type_meta(rt, &body)?;
        if let Some(body_name) = meta::meta_str(&body, "name")
            && body_name != name
        {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        let precondition = meta::meta_str(&body, "resourceVersion")
            .filter(|v| !v.is_empty())
            .map(str::to_owned);
        self.modify(rt, ns, name, sub, opts, move |old| {
            if let Some(rv) = &precondition
                && Some(rv.as_str()) != meta::meta_str(old, "resourceVersion")
            {
                return Err(ApiError::conflict(rt, name, ApiError::MODIFIED));
            }
            Ok(body)
        })
    }
    /// Patches an object (PATCH) with any of the four patch types.
    pub fn patch(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
        (kind, body): (PatchType, Value),
        sub: Option<&str>,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        if kind == PatchType::Apply {
            return self.server_side_apply(rt, ns, name, body, sub, opts);
        }
        if sub == Some("scale") {
            let current = self.scale_of(rt, ns, name)?;
            let patched = apply_patch(kind, &current, &body)?;
            return self.write_scale(rt, ns, name, patched, opts);
        }
        self.modify(rt, ns, name, sub, opts, move |old| {
            let patched = apply_patch(kind, old, &body)?;
            if let Some(rv) = meta::meta_str(&body, "resourceVersion").filter(|v| !v.is_empty())
                && Some(rv) != meta::meta_str(old, "resourceVersion")
            {
                return Err(ApiError::conflict(rt, name, ApiError::MODIFIED));
            }
            Ok(patched)
        })
    }
    /// Read-modify-write of one existing object through the common write path: `change`
    /// turns the stored object into the requested one, then system fields are restored,
    /// the status subresource rules applied, admission run, ownership recorded.
    pub fn modify(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
        sub: Option<&str>,
        opts: &WriteOptions,
        change: impl FnOnce(&Value) -> Result<Value, ApiError>,
    ) -> Result<Written, ApiError> {
        let namespace = ns_of(rt, ns);
        let mut warnings = Vec::new();
        let mut dry = None;
        let keys = self.list_keys(rt);
        let result = self
            .store
            .write(&rt.storage_key(), &namespace, name, |old| {
                let old = old.ok_or_else(|| ApiError::not_found(rt, name))?;
                let requested = change(old)?;
                let mut new = self.finish_update(rt, old, requested, sub, opts, &mut warnings)?;
                let manager = opts
                    .field_manager
                    .clone()
                    .unwrap_or_else(|| "unknown".into());
                let changed = apply::changed_leaves(old, &new, &keys);
                if !changed.is_empty() {
                    record_update(&mut new, &manager, &rt.api_version(), &changed, sub);
                }
                if opts.dry_run {
                    dry = Some(new);
                    return Ok(Write::Keep);
                }
                decide(old, new)
            })?;
        if let Some(object) = dry {
            return Ok(Written {
                object: Arc::new(object),
                created: false,
                warnings,
            });
        }
        let object = match result {
            Some(o) => {
                self.after_write(rt, &o);
                o
            }
            None => self.deleted_placeholder(rt, &namespace, name),
        };
        Ok(Written {
            object,
            created: false,
            warnings,
        })
    }
    /// Applies the rules every update follows to a requested object.
    pub(super) fn finish_update(
        &self,
        rt: &ResourceType,
        old: &Value,
        mut new: Value,
        sub: Option<&str>,
        opts: &WriteOptions,
        warnings: &mut Vec<String>,
    ) -> Result<Value, ApiError> {
        match sub {
            Some("status") => {
                let status = new.get("status").cloned();
                new = old.clone();
                match status {
                    Some(s) => new["status"] = s,
                    None => {
                        new.as_object_mut().expect("object").remove("status");
                    }
                }
            }
            Some(other) => return Err(ApiError::no_route(&format!("{}/{other}", rt.plural))),
            None => {
                if rt.status {
                    match old.get("status") {
                        Some(s) => new["status"] = s.clone(),
                        None => {
                            if let Some(m) = new.as_object_mut() {
                                m.remove("status");
                            }
                        }
                    }
                }
            }
        }
        new["apiVersion"] = json!(rt.api_version());
        new["kind"] = json!(rt.kind);
        {
            let old_meta = old
                .get("metadata")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            let m = metadata_mut(&mut new);
            for field in [
                "name",
                "namespace",
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
                "resourceVersion",
            ] {
                match old_meta.get(field) {
                    Some(v) => m.insert(field.into(), v.clone()),
                    None => m.remove(field),
                };
            }
            // managedFields are the server's to keep unless a client clears them on purpose.
            if !m.contains_key("managedFields")
                && let Some(mf) = old_meta.get("managedFields")
            {
                m.insert("managedFields".into(), mf.clone());
            }
        }
        self.admit(rt, &mut new, Some(old), opts, warnings)?;
        if meta::spec_content(&new) != meta::spec_content(old)
            && let Some(g) = old.pointer("/metadata/generation").and_then(Value::as_i64)
        {
            metadata_mut(&mut new).insert("generation".into(), json!(g + 1));
        }
        Ok(new)
    }
    /// Validation, defaulting and pruning before a write.
    pub(super) fn admit(
        &self,
        rt: &ResourceType,
        object: &mut Value,
        old: Option<&Value>,
        opts: &WriteOptions,
        warnings: &mut Vec<String>,
    ) -> Result<(), ApiError> {
        object["apiVersion"] = json!(rt.api_version());
        object["kind"] = json!(rt.kind);
        let name = meta::name_of(object).to_owned();
        if rt.crd.is_some()
            || rt.group.is_empty()
            || rt.group.contains('.')
            || matches!(rt.group.as_str(), "apps" | "policy")
        {
            builtin::validate_name(rt, &name)?;
        }
        let unknown = match (&rt.validator, &rt.schema) {
            (Some(_), Some(schema)) => builtin::prune_unknown(schema, object),
            _ => builtin::unknown_builtin_fields(rt, object),
        };
        if !unknown.is_empty() {
            match opts.field_validation {
                FieldValidation::Strict => {
                    let list: Vec<String> = unknown
                        .iter()
                        .map(|u| format!("unknown field \"{u}\""))
                        .collect();
                    return Err(ApiError::bad_request(format!(
                        "{} in {}: strict decoding error: {}",
                        rt.kind,
                        rt.api_version(),
                        list.join(", ")
                    )));
                }
                FieldValidation::Warn => {
                    warnings.extend(unknown.iter().map(|u| format!("unknown field \"{u}\"")))
                }
                FieldValidation::Ignore => {}
            }
        }
        if let (Some(validator), Some(schema)) = (&rt.validator, &rt.schema) {
            let defaulted = kube::core::cel::apply_defaults(schema, object);
            *object = defaulted;
            let errors = validator.validate(object);
            if !errors.is_empty() {
                let causes = errors
                    .into_iter()
                    .map(|e| crate::apiserver::status::Cause {
                        field: e.path.clone(),
                        kind: "FieldValueInvalid",
                        message: format!("Invalid value: {}", e.reason),
                    })
                    .collect();
                return Err(ApiError::invalid(rt, &name, causes));
            }
        }
        builtin::default_and_validate(self, rt, object, old)
    }
}

pub(super) fn apply_patch(
    kind: PatchType,
    current: &Value,
    body: &Value,
) -> Result<Value, ApiError> {
    match kind {
        PatchType::Json => patch::json_patch(current, body).map_err(|e| ApiError {
            code: 422,
            reason: "Invalid",
            message: format!("the JSON patch could not be applied: {e}"),
            details: Value::Null,
        }),
        PatchType::Merge => Ok(patch::merge_patch(current, body)),
        PatchType::Strategic => {
            patch::strategic_merge_patch(current, body).map_err(ApiError::bad_request)
        }
        PatchType::Apply => Err(ApiError::internal("apply is handled separately")),
    }
}
/// Attributes changed fields to an Update by `manager`, taking them from other managers.
pub(super) fn record_update(
    object: &mut Value,
    manager: &str,
    api_version: &str,
    changed: &[apply::FieldPath],
    sub: Option<&str>,
) {
    let managed: Vec<Value> = object
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut mine = FieldSet::default();
    let mut entries = Vec::new();
    for mut e in managed {
        let mut owned = FieldSet::from_json(&e["fieldsV1"]);
        let is_mine = e["manager"] == manager
            && e["operation"] == "Update"
            && e.get("subresource").and_then(Value::as_str) == sub;
        if is_mine {
            mine = owned;
            continue;
        }
        for leaf in changed {
            owned.remove(leaf);
        }
        if !owned.is_empty() {
            e["fieldsV1"] = owned.to_json();
            entries.push(e);
        }
    }
    for leaf in changed {
        if !leaf.first().is_some_and(|f| {
            f == "f:metadata"
                && leaf
                    .get(1)
                    .is_some_and(|g| g == "f:managedFields" || g == "f:resourceVersion")
        }) {
            mine.insert(leaf);
        }
    }
    entries.push(apply::managed_entry(
        manager,
        "Update",
        api_version,
        &mine,
        sub,
        &meta::now(),
    ));
    metadata_mut(object).insert("managedFields".into(), json!(entries));
}
