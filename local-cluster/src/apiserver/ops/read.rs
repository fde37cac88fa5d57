//! Reads, and what every write shares on the server: namespaces, list keys, the
//! placeholder of a deleted object, and what follows a write.

use std::sync::Arc;

use serde_json::{Value, json};

use super::*;
use crate::apiserver::ApiServer;
use crate::apiserver::apply::{self};
use crate::apiserver::registry::ResourceType;
use crate::apiserver::status::ApiError;

impl ApiServer {
    /// Reads one object.
    pub fn get(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Arc<Value>, ApiError> {
        self.store
            .get(&rt.storage_key(), &ns_of(rt, ns), name)
            .ok_or_else(|| ApiError::not_found(rt, name))
    }
    pub(super) fn list_keys<'a>(
        &self,
        rt: &'a ResourceType,
    ) -> impl Fn(&[String], &str, &[Value]) -> Option<Vec<String>> + 'a {
        move |path: &[String], field: &str, items: &[Value]| match &rt.schema {
            Some(schema) => crd_list_keys(schema, path),
            None => apply::builtin_list_keys(path, field, items),
        }
    }
    pub(super) fn require_namespace(&self, namespace: &str) -> Result<(), ApiError> {
        let ns_type = self
            .registry
            .find("", "v1", "namespaces")
            .expect("built in");
        match self.store.get(&ns_type.storage_key(), "", namespace) {
            None => Err(ApiError::not_found(&ns_type, namespace)),
            Some(ns) if ns.pointer("/metadata/deletionTimestamp").is_some() => Err(ApiError {
                code: 403,
                reason: "Forbidden",
                message: format!(
                    "unable to create new content in namespace {namespace} because it is being terminated"
                ),
                details: Value::Null,
            }),
            Some(_) => Ok(()),
        }
    }
    pub(super) fn deleted_placeholder(
        &self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
    ) -> Arc<Value> {
        Arc::new(
            json!({"apiVersion": rt.api_version(), "kind": rt.kind, "metadata": {"name": name, "namespace": namespace}}),
        )
    }
    /// Runs what follows a stored write: CRDs (un)register their kinds.
    pub(super) fn after_write(&self, rt: &ResourceType, object: &Value) {
        if rt.plural == "customresourcedefinitions" {
            crate::apiserver::crd::register_crd(self, object);
        }
    }
}
