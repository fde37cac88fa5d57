//! The verbs, implemented once: create, update, patch (all four kinds), delete. Each runs
//! under the store's lock from read to write, so concurrent writers see conflicts, never
//! lost updates.

mod create;
mod delete;
mod read;
mod scale;
mod server_side_apply;
mod update;

use std::sync::Arc;

use serde_json::Value;

use serde_json::json;

use super::meta;
use super::registry::ResourceType;
use super::status::ApiError;
use super::store::Write;

/// `fieldValidation`: what to do with fields the schema does not know.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FieldValidation {
    /// Reject the request (kubectl's default).
    Strict,
    /// Drop them and warn (the API default).
    #[default]
    Warn,
    /// Drop them silently.
    Ignore,
}

/// Options common to writes.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// `dryRun=All`: validate and answer, store nothing.
    pub dry_run: bool,
    /// `fieldManager`.
    pub field_manager: Option<String>,
    /// `fieldValidation`.
    pub field_validation: FieldValidation,
    /// `force` (server-side apply).
    pub force: bool,
}

/// The result of a write.
#[derive(Debug)]
pub struct Written {
    /// The object as stored (or as it would be, for a dry run).
    pub object: Arc<Value>,
    /// Whether it was created.
    pub created: bool,
    /// Warnings for the `Warning` header.
    pub warnings: Vec<String>,
}

/// PATCH body types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// `application/json-patch+json`
    Json,
    /// `application/merge-patch+json`
    Merge,
    /// `application/strategic-merge-patch+json`
    Strategic,
    /// `application/apply-patch+yaml`
    Apply,
}

/// DELETE options.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    /// `Background` (default), `Foreground` or `Orphan`.
    pub propagation: Option<String>,
    /// Seconds to wait before killing a pod's processes; 0 deletes at once.
    pub grace_period: Option<i64>,
    /// Precondition on the uid.
    pub uid: Option<String>,
    /// Precondition on the resourceVersion.
    pub resource_version: Option<String>,
    /// `dryRun=All`.
    pub dry_run: bool,
}

fn ns_of(rt: &ResourceType, ns: Option<&str>) -> String {
    if rt.namespaced {
        ns.unwrap_or("default").to_owned()
    } else {
        String::new()
    }
}
/// Keeps `old` when nothing changed; deletes an object whose last finalizer is gone.
fn decide(old: &Value, new: Value) -> Result<Write, ApiError> {
    let finalizers_left = new
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| !f.is_empty());
    let marked = new.pointer("/metadata/deletionTimestamp").is_some();
    let graceful_pod = new.get("kind") == Some(&json!("Pod"))
        && new
            .pointer("/metadata/deletionGracePeriodSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            > 0;
    if marked && !finalizers_left && !graceful_pod && new.get("kind") != Some(&json!("Namespace")) {
        return Ok(Write::Delete);
    }
    if meta::same_content(old, &new) {
        return Ok(Write::Keep);
    }
    Ok(Write::Put(new))
}
fn check_type_meta(rt: &ResourceType, body: &Value) -> Result<(), ApiError> {
    if !body.is_object() {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object",
        ));
    }
    if let Some(kind) = body.get("kind").and_then(Value::as_str)
        && kind != rt.kind
        && kind != "Scale"
    {
        return Err(ApiError::bad_request(format!(
            "the kind of the object ({kind}) does not match the resource ({}, kind {})",
            rt.plural, rt.kind
        )));
    }
    if let Some(av) = body.get("apiVersion").and_then(Value::as_str)
        && av != rt.api_version()
    {
        return Err(ApiError::bad_request(format!(
            "the API version of the object ({av}) does not match the request ({})",
            rt.api_version()
        )));
    }
    Ok(())
}
/// A CRD schema's list keys at a FieldsV1 path (`x-kubernetes-list-type: map`).
fn crd_list_keys(schema: &Value, path: &[String]) -> Option<Vec<String>> {
    let mut node = schema;
    for p in path {
        let field = p.strip_prefix("f:")?;
        node = match node.get("properties").and_then(|props| props.get(field)) {
            Some(n) => n,
            None => node.get("items")?.get("properties")?.get(field)?,
        };
    }
    if node.get("x-kubernetes-list-type").and_then(Value::as_str) != Some("map") {
        return None;
    }
    node.get("x-kubernetes-list-map-keys")?
        .as_array()
        .map(|keys| {
            keys.iter()
                .filter_map(|k| k.as_str().map(str::to_owned))
                .collect()
        })
}
