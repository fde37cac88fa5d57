//! CustomResourceDefinitions as served kinds: registering a CRD's versions (schema,
//! validator, printer columns, subresources) and removing them with it.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde_json::Value;

use super::ApiServer;
use super::meta;
use super::registry::{PrinterColumn, ResourceType, ScalePaths};
use crate::admission::SchemaValidator;

/// Serves the kinds a stored CRD defines (replacing what it defined before).
pub fn register_crd(server: &ApiServer, crd: &Value) {
    let name = meta::name_of(crd).to_owned();
    let typed: Result<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition, _> =
        serde_path_to_error::deserialize(crd);
    let typed = match typed {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(crd = %name, error = %e, "CRD does not parse; its kinds are not served");
            return;
        }
    };
    let spec = &crd["spec"];
    let mut types = Vec::new();
    for version in spec["versions"].as_array().into_iter().flatten() {
        if version["served"] == false {
            continue;
        }
        let version_name = version["name"].as_str().unwrap_or_default();
        let schema = version.pointer("/schema/openAPIV3Schema").cloned();
        let validator = match SchemaValidator::new(&typed, version_name) {
            Ok(v) => Some(Arc::new(v)),
            Err(e) => {
                tracing::warn!(crd = %name, error = %e, "CRD schema cannot validate; objects are accepted unchecked");
                None
            }
        };
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        };
        let scale = version.pointer("/subresources/scale").map(|s| ScalePaths {
            spec_replicas: s["specReplicasPath"]
                .as_str()
                .unwrap_or(".spec.replicas")
                .to_owned(),
            status_replicas: s["statusReplicasPath"]
                .as_str()
                .unwrap_or(".status.replicas")
                .to_owned(),
            label_selector: s["labelSelectorPath"].as_str().map(str::to_owned),
        });
        let printer_columns = version["additionalPrinterColumns"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| PrinterColumn {
                name: c["name"].as_str().unwrap_or_default().to_owned(),
                type_: c["type"].as_str().unwrap_or("string").to_owned(),
                json_path: c["jsonPath"].as_str().unwrap_or_default().to_owned(),
                description: c["description"].as_str().unwrap_or_default().to_owned(),
                priority: c["priority"].as_i64().unwrap_or(0),
            })
            .collect();
        types.push(ResourceType {
            group: spec["group"].as_str().unwrap_or_default().to_owned(),
            version: version_name.to_owned(),
            kind: spec
                .pointer("/names/kind")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            plural: spec
                .pointer("/names/plural")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            singular: spec
                .pointer("/names/singular")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| {
                    spec.pointer("/names/kind")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_lowercase()
                }),
            namespaced: spec["scope"] != "Cluster",
            short_names: strings(&spec["names"]["shortNames"]),
            categories: strings(&spec["names"]["categories"]),
            status: version.pointer("/subresources/status").is_some(),
            scale,
            log: false,
            validator,
            schema,
            printer_columns,
            crd: Some(name.clone()),
        });
    }
    server.registry.set_crd_types(&name, types);
    server.discovery_generation.fetch_add(1, Ordering::Relaxed);
}

/// Stops serving a deleted CRD's kinds and removes their objects.
pub fn unregister_crd(server: &ApiServer, crd: &Value) {
    let name = meta::name_of(crd).to_owned();
    let group = crd
        .pointer("/spec/group")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let plural = crd
        .pointer("/spec/names/plural")
        .and_then(Value::as_str)
        .unwrap_or_default();
    server.registry.set_crd_types(&name, vec![]);
    server.discovery_generation.fetch_add(1, Ordering::Relaxed);
    let key = format!("{group}/{plural}");
    let (items, _) = server.store.list(&key, None);
    for item in items {
        let ns = meta::meta_str(&item, "namespace")
            .unwrap_or_default()
            .to_owned();
        let _ = server
            .store
            .write::<()>(&key, &ns, meta::name_of(&item), |_| {
                Ok(super::store::Write::Delete)
            });
    }
}
