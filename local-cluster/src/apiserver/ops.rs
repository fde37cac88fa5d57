//! The verbs, implemented once: create, update, patch (all four kinds), delete. Each runs
//! under the store's lock from read to write, so concurrent writers see conflicts, never
//! lost updates.

use std::sync::Arc;

use serde_json::{Value, json};

use super::apply::{self, FieldSet};
use super::meta::{self, metadata_mut};
use super::registry::ResourceType;
use super::status::ApiError;
use super::store::Write;
use super::{ApiServer, builtin, patch};

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

    fn list_keys<'a>(
        &self,
        rt: &'a ResourceType,
    ) -> impl Fn(&[String], &str, &[Value]) -> Option<Vec<String>> + 'a {
        move |path: &[String], field: &str, items: &[Value]| match &rt.schema {
            Some(schema) => crd_list_keys(schema, path),
            None => apply::builtin_list_keys(path, field, items),
        }
    }

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
                        vec![super::status::Cause {
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

    fn require_namespace(&self, namespace: &str) -> Result<(), ApiError> {
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

    fn deleted_placeholder(&self, rt: &ResourceType, namespace: &str, name: &str) -> Arc<Value> {
        Arc::new(
            json!({"apiVersion": rt.api_version(), "kind": rt.kind, "metadata": {"name": name, "namespace": namespace}}),
        )
    }

    /// Applies the rules every update follows to a requested object.
    fn finish_update(
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
    fn admit(
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
                    .map(|e| super::status::Cause {
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

    /// Runs what follows a stored write: CRDs (un)register their kinds.
    fn after_write(&self, rt: &ResourceType, object: &Value) {
        if rt.plural == "customresourcedefinitions" {
            builtin::register_crd(self, object);
        }
    }

    /// Deletes an object (DELETE): at once, or by marking it when finalizers, graceful pod
    /// termination or namespace cleanup must run first. Returns the object as last stored.
    pub fn delete(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Arc<Value>, ApiError> {
        let namespace = ns_of(rt, ns);
        let mut last = None;
        let result = self.store.write(&rt.storage_key(), &namespace, name, |old| {
            let old = old.ok_or_else(|| ApiError::not_found(rt, name))?;
            if let Some(uid) = &opts.uid
                && Some(uid.as_str()) != meta::meta_str(old, "uid")
            {
                return Err(ApiError::conflict(rt, name, &format!("Precondition failed: UID in precondition: {uid}, UID in object meta: {}", meta::meta_str(old, "uid").unwrap_or_default())));
            }
            if let Some(rv) = &opts.resource_version
                && Some(rv.as_str()) != meta::meta_str(old, "resourceVersion")
            {
                return Err(ApiError::conflict(rt, name, ApiError::MODIFIED));
            }
            let mut obj = old.clone();
            let marked = old.pointer("/metadata/deletionTimestamp").is_some();
            let mut finalizers: Vec<String> = old
                .pointer("/metadata/finalizers")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|f| f.as_str().map(str::to_owned)).collect())
                .unwrap_or_default();
            match opts.propagation.as_deref() {
                Some("Foreground") if !finalizers.iter().any(|f| f == "foregroundDeletion") => finalizers.push("foregroundDeletion".into()),
                Some("Orphan") if !finalizers.iter().any(|f| f == "orphan") => finalizers.push("orphan".into()),
                _ => {}
            }
            let graceful_pod = rt.plural == "pods"
                && rt.group.is_empty()
                && old.pointer("/spec/nodeName").and_then(Value::as_str).is_some_and(|n| !n.is_empty())
                && old.pointer("/status/phase").and_then(Value::as_str).is_none_or(|p| p != "Succeeded" && p != "Failed")
                && opts.grace_period != Some(0);
            let namespace_cleanup = rt.plural == "namespaces" && rt.group.is_empty();
            if finalizers.is_empty() && !graceful_pod && !namespace_cleanup {
                last = Some(old.clone());
                return Ok(if opts.dry_run { Write::Keep } else { Write::Delete });
            }
            let unchanged_finalizers: Vec<String> = old
                .pointer("/metadata/finalizers")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|f| f.as_str().map(str::to_owned)).collect())
                .unwrap_or_default();
            if marked && graceful_pod_confirmed(rt, old, opts) {
                // The kubelet confirms a pod's end while finalizers still hold it: the
                // last finalizer's removal then deletes it at once.
                let mut obj = old.clone();
                metadata_mut(&mut obj).insert("deletionGracePeriodSeconds".into(), json!(0));
                last = Some(obj.clone());
                return Ok(if opts.dry_run { Write::Keep } else { Write::Put(obj) });
            }
            if marked && finalizers == unchanged_finalizers {
                // Already being deleted; a second DELETE changes nothing.
                last = Some(old.clone());
                return Ok(Write::Keep);
            }
            let m = metadata_mut(&mut obj);
            if !marked {
                let grace = if graceful_pod {
                    opts.grace_period
                        .or_else(|| old.pointer("/spec/terminationGracePeriodSeconds").and_then(Value::as_i64))
                        .unwrap_or(30)
                } else {
                    0
                };
                m.insert("deletionTimestamp".into(), json!(meta::now()));
                m.insert("deletionGracePeriodSeconds".into(), json!(grace));
            }
            if !finalizers.is_empty() {
                m.insert("finalizers".into(), json!(finalizers));
            }
            if namespace_cleanup {
                obj["status"]["phase"] = json!("Terminating");
            }
            last = Some(obj.clone());
            Ok(if opts.dry_run { Write::Keep } else { Write::Put(obj) })
        })?;
        Ok(result
            .or(last.map(Arc::new))
            .unwrap_or_else(|| self.deleted_placeholder(rt, &namespace, name)))
    }

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

    fn write_scale(
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
                vec![super::status::Cause {
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

    /// Server-side apply: creates when absent; otherwise merges the configuration, moving
    /// ownership of its fields to the manager, and refuses (409) to change fields another
    /// manager owns unless forced.
    fn server_side_apply(
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
            for leaf in previous.leaves() {
                let kept_by_other = managed.iter().any(|e| {
                    !(e["manager"] == manager.as_str() && e["operation"] == "Apply")
                        && FieldSet::from_json(&e["fieldsV1"]).overlaps(&leaf)
                });
                if !applied.overlaps(&leaf) && !kept_by_other {
                    apply::remove_at(&mut new, &leaf);
                }
            }
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

fn graceful_pod_confirmed(rt: &ResourceType, old: &Value, opts: &DeleteOptions) -> bool {
    rt.plural == "pods"
        && rt.group.is_empty()
        && opts.grace_period == Some(0)
        && old
            .pointer("/metadata/deletionGracePeriodSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            > 0
}

fn display_path(path: &[String]) -> String {
    path.iter()
        .map(|p| match p.strip_prefix("f:") {
            Some(f) => format!(".{f}"),
            None => format!("[{}]", p.trim_start_matches("k:")),
        })
        .collect()
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

fn apply_patch(kind: PatchType, current: &Value, body: &Value) -> Result<Value, ApiError> {
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

fn set_managed(
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

/// Attributes changed fields to an Update by `manager`, taking them from other managers.
fn record_update(
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
