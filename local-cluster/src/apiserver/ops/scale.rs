//! The scale subresource.

use std::sync::Arc;

use serde_json::{Value, json};

use super::*;
use crate::apiserver::ApiServer;
use crate::apiserver::meta::{self};
use crate::apiserver::registry::ResourceType;
use crate::apiserver::status::ApiError;

impl ApiServer {
    /// The Scale object of a resource with the scale subresource.
    pub fn scale_of(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        let paths = rt
            .scale
            .as_ref()
            .ok_or_else(|| ApiError::no_route(&format!("{}/scale", rt.plural)))?;
        let object = self.get(rt, ns, name)?;
        let spec = meta::json_path(&object, &paths.spec_replicas)
            .cloned()
            .unwrap_or(json!(0));
        let status = meta::json_path(&object, &paths.status_replicas)
            .cloned()
            .unwrap_or(json!(0));
        let mut scale = json!({
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                "name": name,
                "namespace": object["metadata"]["namespace"],
                "uid": object["metadata"]["uid"],
                "resourceVersion": object["metadata"]["resourceVersion"],
                "creationTimestamp": object["metadata"]["creationTimestamp"],
            },
            "spec": {"replicas": spec},
            "status": {"replicas": status},
        });
        if let Some(sel) = paths
            .label_selector
            .as_ref()
            .and_then(|p| meta::json_path(&object, p))
        {
            scale["status"]["selector"] = sel.clone();
        }
        Ok(scale)
    }
    pub(super) fn write_scale(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
        scale: Value,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        let paths = rt
            .scale
            .clone()
            .ok_or_else(|| ApiError::no_route(&format!("{}/scale", rt.plural)))?;
        let replicas = scale
            .pointer("/spec/replicas")
            .cloned()
            .ok_or_else(|| ApiError::bad_request("Scale.spec.replicas is required"))?;
        if replicas.as_i64().is_none_or(|r| r < 0) {
            return Err(ApiError::invalid(
                rt,
                name,
                vec![crate::apiserver::status::Cause {
                    field: "spec.replicas".into(),
                    kind: "FieldValueInvalid",
                    message: format!(
                        "Invalid value: {replicas}: must be greater than or equal to 0"
                    ),
                }],
            ));
        }
        let precondition = meta::meta_str(&scale, "resourceVersion")
            .filter(|v| !v.is_empty())
            .map(str::to_owned);
        self.modify(rt, ns, name, None, opts, |old| {
            if let Some(rv) = &precondition
                && Some(rv.as_str()) != meta::meta_str(old, "resourceVersion")
            {
                return Err(ApiError::conflict(rt, name, ApiError::MODIFIED));
            }
            let mut new = old.clone();
            meta::set_json_path(&mut new, &paths.spec_replicas, replicas);
            Ok(new)
        })?;
        Ok(Written {
            object: Arc::new(self.scale_of(rt, ns, name)?),
            created: false,
            warnings: vec![],
        })
    }
}
