//! POST: create an object.

use std::sync::Arc;

use serde_json::{Value, json};

use super::server_side_apply::set_managed;
use super::*;
use crate::apiserver::ApiServer;
use crate::apiserver::apply::FieldSet;
use crate::apiserver::meta::{self, metadata_mut};
use crate::apiserver::registry::ResourceType;
use crate::apiserver::status::ApiError;
use crate::apiserver::store::Write;

impl ApiServer {
    /// Creates an object (POST).
    pub fn create(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        mut body: Value,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        let namespace = ns_of(rt, ns);
        check_type_meta(rt, &body)?;
        if let Some(body_ns) = meta::meta_str(&body, "namespace")
            && rt.namespaced
            && !body_ns.is_empty()
            && body_ns != namespace
        {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        let name = match meta::meta_str(&body, "name").filter(|n| !n.is_empty()) {
            Some(n) => n.to_owned(),
            None => match meta::meta_str(&body, "generateName").filter(|n| !n.is_empty()) {
                Some(prefix) => meta::generate_name(prefix),
                None => {
                    return Err(ApiError::invalid(
                        rt,
                        "",
                        vec![crate::apiserver::status::Cause {
                            field: "metadata.name".into(),
                            kind: "FieldValueRequired",
                            message: "Required value: name or generateName is required".into(),
                        }],
                    ));
                }
            },
        };
        if rt.namespaced {
            self.require_namespace(&namespace)?;
        }
        {
            let m = metadata_mut(&mut body);
            m.insert("name".into(), json!(name));
            if rt.namespaced {
                m.insert("namespace".into(), json!(namespace));
            } else {
                m.remove("namespace");
            }
            for f in meta::SYSTEM_FIELDS {
                m.remove(*f);
            }
            m.remove("resourceVersion");
            m.insert("uid".into(), json!(meta::uid()));
            m.insert("creationTimestamp".into(), json!(meta::now()));
        }
        if rt.status
            && let Some(map) = body.as_object_mut()
        {
            map.remove("status");
        }
        let mut warnings = Vec::new();
        self.admit(rt, &mut body, None, opts, &mut warnings)?;
        if body.get("spec").is_some() || rt.crd.is_some() {
            metadata_mut(&mut body).insert("generation".into(), json!(1));
        }
        let manager = opts
            .field_manager
            .clone()
            .unwrap_or_else(|| "unknown".into());
        let keys = self.list_keys(rt);
        let fields = FieldSet::of(&body, &keys);
        set_managed(
            &mut body,
            &manager,
            "Update",
            &rt.api_version(),
            &fields,
            None,
        );
        if opts.dry_run {
            if self
                .store
                .get(&rt.storage_key(), &namespace, &name)
                .is_some()
            {
                return Err(ApiError::already_exists(rt, &name));
            }
            return Ok(Written {
                object: Arc::new(body),
                created: true,
                warnings,
            });
        }
        let stored = self
            .store
            .write(&rt.storage_key(), &namespace, &name, |old| match old {
                Some(_) => Err(ApiError::already_exists(rt, &name)),
                None => Ok(Write::Put(body)),
            })?
            .expect("a put returns the object");
        self.after_write(rt, &stored);
        Ok(Written {
            object: stored,
            created: true,
            warnings,
        })
    }
}
