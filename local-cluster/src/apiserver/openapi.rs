//! `/openapi/v3`: the index and one document per group/version. kubectl reads the PATCH
//! operations (their `x-kubernetes-group-version-kind` and `fieldValidation` parameter) to
//! know it may ask the server to validate fields, and the schemas for `kubectl explain`.
//! Built-in schemas come from the Kubernetes types (k8s-openapi); CRD schemas from the CRDs.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::OnceLock;

use schemars::JsonSchema;
use serde_json::{Map, Value, json};

use super::ApiServer;
use super::registry::ResourceType;

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// `/openapi/v3`: each group/version's document, with a hash that changes with its content.
pub fn index(server: &ApiServer) -> Value {
    let mut paths = Map::new();
    let mut seen = BTreeMap::new();
    for t in server.registry.all() {
        seen.entry((t.group.clone(), t.version.clone()))
            .or_insert(());
    }
    for (group, version) in seen.keys() {
        let doc = document(server, group, version).unwrap_or(Value::Null);
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        doc.to_string().hash(&mut hasher);
        let path = gv_path(group, version);
        paths.insert(path.clone(), json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={:016X}", hasher.finish())}));
    }
    json!({"paths": paths})
}

/// A root schema's name and every definition it uses.
type Schemas = (String, Map<String, Value>);
type SchemaFn = fn() -> Schemas;
type Cache = std::sync::Mutex<BTreeMap<(String, String), &'static Schemas>>;

fn schemas_of<T: JsonSchema>() -> (String, Map<String, Value>) {
    let mut generator = schemars::generate::SchemaSettings::openapi3().into_generator();
    let root = generator.subschema_for::<T>();
    let defs = generator.take_definitions(true);
    let name = root
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.rsplit('/').next())
        .unwrap_or_default()
        .to_owned();
    (name, defs.into_iter().collect())
}

fn builtin_schema(group: &str, kind: &str) -> Option<SchemaFn> {
    use k8s_openapi::api::{
        apps::v1 as apps, coordination::v1 as coord, core::v1 as core, events::v1 as events,
        policy::v1 as policy, rbac::v1 as rbac,
    };
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as ext;
    Some(match (group, kind) {
        ("", "Pod") => schemas_of::<core::Pod>,
        ("", "Service") => schemas_of::<core::Service>,
        ("", "ConfigMap") => schemas_of::<core::ConfigMap>,
        ("", "Secret") => schemas_of::<core::Secret>,
        ("", "Namespace") => schemas_of::<core::Namespace>,
        ("", "ServiceAccount") => schemas_of::<core::ServiceAccount>,
        ("", "Event") => schemas_of::<core::Event>,
        ("", "Endpoints") => schemas_of::<core::Endpoints>,
        ("", "Node") => schemas_of::<core::Node>,
        ("apps", "Deployment") => schemas_of::<apps::Deployment>,
        ("apps", "StatefulSet") => schemas_of::<apps::StatefulSet>,
        ("apps", "ReplicaSet") => schemas_of::<apps::ReplicaSet>,
        ("coordination.k8s.io", "Lease") => schemas_of::<coord::Lease>,
        ("", "PersistentVolumeClaim") => schemas_of::<core::PersistentVolumeClaim>,
        ("rbac.authorization.k8s.io", "ClusterRole") => schemas_of::<rbac::ClusterRole>,
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => {
            schemas_of::<rbac::ClusterRoleBinding>
        }
        ("rbac.authorization.k8s.io", "Role") => schemas_of::<rbac::Role>,
        ("rbac.authorization.k8s.io", "RoleBinding") => schemas_of::<rbac::RoleBinding>,
        ("policy", "PodDisruptionBudget") => schemas_of::<policy::PodDisruptionBudget>,
        ("events.k8s.io", "Event") => schemas_of::<events::Event>,
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            schemas_of::<ext::CustomResourceDefinition>
        }
        _ => return None,
    })
}

fn builtin_cached(group: &str, kind: &str) -> Option<&'static (String, Map<String, Value>)> {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let f = builtin_schema(group, kind)?;
    let cache = CACHE.get_or_init(Default::default);
    let mut cache = cache.lock().expect("openapi cache");
    Some(
        *cache
            .entry((group.to_owned(), kind.to_owned()))
            .or_insert_with(|| Box::leak(Box::new(f()))),
    )
}

fn gvk(t: &ResourceType) -> Value {
    json!({"group": t.group, "version": t.version, "kind": t.kind})
}

fn operations(t: &ResourceType, schema_ref: &str) -> Vec<(String, Value)> {
    let prefix = format!("/{}", gv_path(&t.group, &t.version));
    let (collection, item) = if t.namespaced {
        (
            format!("{prefix}/namespaces/{{namespace}}/{}", t.plural),
            format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", t.plural),
        )
    } else {
        (
            format!("{prefix}/{}", t.plural),
            format!("{prefix}/{}/{{name}}", t.plural),
        )
    };
    let body = json!({"content": {"application/json": {"schema": {"$ref": schema_ref}}}});
    let ok = json!({"200": {"description": "OK", "content": {"application/json": {"schema": {"$ref": schema_ref}}}}});
    let param = |name: &str, description: &str| json!({"name": name, "in": "query", "description": description, "schema": {"type": "string", "uniqueItems": true}});
    let write_params = json!([
        param(
            "dryRun",
            "When present, indicates that modifications should not be persisted."
        ),
        param(
            "fieldManager",
            "fieldManager is a name associated with the actor or entity that is making these changes."
        ),
        param(
            "fieldValidation",
            "fieldValidation instructs the server on how to handle objects in the request containing unknown or duplicate fields: Ignore, Warn (default) or Strict."
        ),
    ]);
    let op = |action: &str| {
        json!({
            "operationId": format!("{action}{}", t.kind),
            "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": gvk(t),
            "responses": ok,
        })
    };
    let mut create = op("post");
    create["parameters"] = write_params.clone();
    create["requestBody"] = body.clone();
    let mut update = op("put");
    update["parameters"] = write_params.clone();
    update["requestBody"] = body;
    let mut patch = op("patch");
    let mut patch_params = write_params.as_array().cloned().unwrap_or_default();
    patch_params.push(param(
        "force",
        "Force is going to \"force\" Apply requests.",
    ));
    patch["parameters"] = json!(patch_params);
    // Custom resources take no strategic merge patch; kubectl reads this list to choose.
    let mut content = json!({
        "application/json-patch+json": {"schema": {"type": "object"}},
        "application/merge-patch+json": {"schema": {"type": "object"}},
        "application/apply-patch+yaml": {"schema": {"type": "object"}},
    });
    if t.crd.is_none() {
        content["application/strategic-merge-patch+json"] = json!({"schema": {"type": "object"}});
    }
    patch["requestBody"] = json!({ "content": content });
    vec![
        (collection, json!({"get": op("list"), "post": create})),
        (
            item,
            json!({"get": op("get"), "put": update, "patch": patch, "delete": op("delete")}),
        ),
    ]
}

fn object_meta_schema() -> (String, Map<String, Value>) {
    schemas_of::<k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>()
}

/// The document of one group/version, if served.
pub fn document(server: &ApiServer, group: &str, version: &str) -> Option<Value> {
    let types: Vec<_> = server
        .registry
        .all()
        .into_iter()
        .filter(|t| t.group == group && t.version == version)
        .collect();
    if types.is_empty() {
        return None;
    }
    let mut paths = Map::new();
    let mut schemas = Map::new();
    for t in &types {
        let schema_name = if let Some(schema) = &t.schema {
            let reversed: Vec<&str> = t.group.split('.').rev().collect();
            let name = format!("{}.{}.{}", reversed.join("."), t.version, t.kind);
            let (meta_name, meta_defs) = object_meta_schema();
            schemas.extend(meta_defs);
            let mut s = schema.clone();
            let props = s.as_object_mut().and_then(|m| {
                m.entry("properties").or_insert(json!({}));
                m.get_mut("properties").and_then(Value::as_object_mut)
            });
            if let Some(props) = props {
                props.insert("apiVersion".into(), json!({"type": "string", "description": "APIVersion defines the versioned schema of this representation of an object."}));
                props.insert("kind".into(), json!({"type": "string", "description": "Kind is a string value representing the REST resource this object represents."}));
                props.insert("metadata".into(), json!({"allOf": [{"$ref": format!("#/components/schemas/{meta_name}")}], "description": "Standard object's metadata."}));
            }
            s["x-kubernetes-group-version-kind"] = json!([gvk(t)]);
            schemas.insert(name.clone(), s);
            name
        } else if let Some((name, defs)) = builtin_cached(&t.group, &t.kind) {
            schemas.extend(defs.clone());
            if let Some(s) = schemas.get_mut(name) {
                s["x-kubernetes-group-version-kind"] = json!([gvk(t)]);
            }
            name.clone()
        } else {
            continue;
        };
        for (path, item) in operations(t, &format!("#/components/schemas/{schema_name}")) {
            paths.insert(path, item);
        }
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}
