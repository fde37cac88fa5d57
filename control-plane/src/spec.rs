//! The spec as the service runs it: the managed defaults and rules over a tenant's
//! FlinkJob spec (what it costs is `quota`).

use strom_crds::FlinkJobSpec;

use crate::error::{ApiError, Result};
use crate::policy::Policy;
use crate::tenant_storage::TenantStorage;

/// The spec as the service runs it: validated with the CRD's rules, storage defaulted to the
/// platform's and kept in the tenant's prefix, upgrades through savepoints. Errors name the
/// field in the request body (`spec.…`).
pub fn managed(
    storage: &TenantStorage,
    policy: &Policy,
    name: &str,
    spec: &serde_json::Value,
) -> Result<FlinkJobSpec> {
    let mut spec = spec.clone();
    let Some(map) = spec.as_object_mut() else {
        return Err(ApiError::field(
            "spec",
            "must be an object (a FlinkJob spec)",
        ));
    };
    if map.contains_key("state") {
        return Err(ApiError::field(
            "spec.state",
            "is set by the start and stop calls, not in the spec",
        ));
    }
    if let Some(mode) = map.get("upgradeMode")
        && mode != "savepoint"
    {
        return Err(ApiError::field(
            "spec.upgradeMode",
            "the service upgrades through savepoints only: leave it out or set \"savepoint\"",
        ));
    }
    map.insert("upgradeMode".into(), "savepoint".into());
    let local = policy.check_storage(&spec);
    if !local.is_empty() {
        return Err(ApiError::fields(local));
    }
    let map = spec.as_object_mut().expect("checked above");
    let base = storage.base();
    if !map.contains_key("checkpoints") {
        map.insert("checkpoints".into(), serde_json::json!({"storage": base}));
    }
    let sp = map
        .entry("savepoints")
        .or_insert_with(|| serde_json::json!({}));
    if let Some(sp) = sp.as_object_mut()
        && !sp.contains_key("storage")
    {
        sp.insert("storage".into(), base.into());
    }
    let manifest = serde_json::json!({
        "apiVersion": "strom.dev/v1alpha1",
        "kind": "FlinkJob",
        "metadata": {"name": name},
        "spec": spec,
    });
    let job = strom_crds::validate::from_value(manifest).map_err(|v| ApiError::fields(v.0))?;
    let mut refused = policy.check(&job.spec);
    refused.extend(storage.check(&job.spec));
    if !refused.is_empty() {
        return Err(ApiError::fields(refused));
    }
    Ok(job.spec)
}

/// A spec as versions keep it: without `state`, which start and stop set.
pub fn stored(spec: &FlinkJobSpec) -> Result<String> {
    let mut v = serde_json::to_value(spec).map_err(ApiError::internal)?;
    if let Some(m) = v.as_object_mut() {
        m.remove("state");
    }
    serde_json::to_string(&v).map_err(ApiError::internal)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acme() -> TenantStorage {
        TenantStorage::new("s3://bucket/app", "strom-acme")
    }

    fn spec(json: serde_json::Value) -> FlinkJobSpec {
        managed(&acme(), &Policy::default(), "app", &json).expect("a valid spec")
    }

    fn base() -> serde_json::Value {
        serde_json::json!({
            "image": "strom/engine:0.1.0",
            "parallelism": 2,
            "job": {
                "sources": [{"name": "clicks", "datagen": {"rate": 10, "columns": [{"name": "v", "expr": "id"}]}}],
                "sinks": [{"name": "out", "input": "clicks", "blackhole": {}}]
            }
        })
    }

    fn field_of(e: &ApiError) -> Vec<&str> {
        e.body.errors.iter().map(|f| f.field.as_str()).collect()
    }

    #[test]
    fn the_service_defaults_storage_and_upgrades_through_savepoints() {
        let s = spec(base());
        assert_eq!(s.upgrade_mode, strom_crds::spec::UpgradeMode::Savepoint);
        let sp = s
            .savepoints
            .and_then(|s| s.storage)
            .expect("savepoint storage");
        assert_eq!(sp.0, "s3://bucket/app");
        assert!(s.checkpoints.is_some());
    }

    #[test]
    fn state_another_upgrade_mode_and_missing_storage_are_refused_by_field() {
        let mut with_state = base();
        with_state["state"] = "running".into();
        let e = managed(&acme(), &Policy::default(), "app", &with_state).unwrap_err();
        assert_eq!(field_of(&e), ["spec.state"]);

        let mut stateless = base();
        stateless["upgradeMode"] = "stateless".into();
        let e = managed(&acme(), &Policy::default(), "app", &stateless).unwrap_err();
        assert_eq!(field_of(&e), ["spec.upgradeMode"]);

        let mut elsewhere = base();
        elsewhere["savepoints"] = serde_json::json!({"storage": "s3://other/place"});
        let e = managed(&acme(), &Policy::default(), "app", &elsewhere).unwrap_err();
        assert_eq!(field_of(&e), ["spec.savepoints.storage"]);

        let e = managed(&acme(), &Policy::default(), "app", &serde_json::json!([1])).unwrap_err();
        assert_eq!(field_of(&e), ["spec"]);
    }

    #[test]
    fn the_crd_rules_name_the_field() {
        let mut bad = base();
        bad["parallelism"] = 0.into();
        let e = managed(&acme(), &Policy::default(), "app", &bad).unwrap_err();
        assert_eq!(e.status, axum::http::StatusCode::UNPROCESSABLE_ENTITY);
        assert!(field_of(&e).contains(&"spec.parallelism"), "{e:?}");
    }

    #[test]
    fn a_stored_spec_has_no_state_and_reads_back() {
        let s = spec(base());
        let text = stored(&s).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert!(v.get("state").is_none());
        let back = managed(&acme(), &Policy::default(), "app", &v).unwrap();
        assert_eq!(stored(&back).unwrap(), text);
    }
}
