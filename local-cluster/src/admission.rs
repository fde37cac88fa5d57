//! Validation of custom resources against their CRD, as a Kubernetes API server applies it
//! on create and update: the structural OpenAPI schema (types, enums, ranges, patterns,
//! required fields), unknown fields (as with `fieldValidation=Strict`, kubectl's default),
//! and the `x-kubernetes-validations` CEL rules.
//!
//! Schema checks run on a maintained JSON-Schema validator (`jsonschema`) after the
//! OpenAPI-only keywords are translated (`nullable`, `x-kubernetes-int-or-string`); CEL rules
//! run on kube's evaluator of the Kubernetes CEL environment. Defaults from the schema are
//! applied before the CEL rules, as the API server does.

use std::fmt;

use jsonschema::error::ValidationErrorKind;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::core::cel::{CompiledSchema, Validator as CelValidator, compile_schema};
use serde_json::{Map, Value, json};
/// A field that breaks the schema: where, and why (`strom_crds::Violation`, the one
/// violation type). Paths read like the API server's: `spec.autoscaler.minParallelism`,
/// `spec.podTemplate.env[0].name`.
pub use strom_crds::Violation;

/// Why a CRD could not be turned into a validator.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// The CRD does not serve the version asked for, or has no schema for it.
    #[error("CRD {crd} has no schema for version {version:?}")]
    NoSchema {
        /// The CRD's name.
        crd: String,
        /// The version asked for.
        version: String,
    },
    /// The schema is not a valid JSON schema after translation.
    #[error("CRD {crd} version {version}: the schema is invalid: {reason}")]
    Invalid {
        /// The CRD's name.
        crd: String,
        /// The version.
        version: String,
        /// What the JSON-schema compiler said.
        reason: String,
    },
    /// A CEL rule does not compile.
    #[error("CRD {crd} version {version}: a CEL rule does not compile: {reason}")]
    Cel {
        /// The CRD's name.
        crd: String,
        /// The version.
        version: String,
        /// What the CEL compiler said.
        reason: String,
    },
}

/// The schema of one version of a CRD, ready to validate objects against.
pub struct SchemaValidator {
    schema: Value,
    structural: jsonschema::Validator,
    cel_rules: CompiledSchema,
    cel: CelValidator,
}

impl fmt::Debug for SchemaValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SchemaValidator").finish_non_exhaustive()
    }
}

impl SchemaValidator {
    /// Builds the validator for `version` of `crd`.
    pub fn new(crd: &CustomResourceDefinition, version: &str) -> Result<Self, SchemaError> {
        let name = crd.metadata.name.clone().unwrap_or_default();
        let schema = crd
            .spec
            .versions
            .iter()
            .find(|v| v.name == version)
            .and_then(|v| v.schema.as_ref())
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .ok_or_else(|| SchemaError::NoSchema {
                crd: name.clone(),
                version: version.into(),
            })?;
        let schema = serde_json::to_value(schema).expect("a schema serializes");
        let structural = jsonschema::validator_for(&to_json_schema(&schema)).map_err(|e| {
            SchemaError::Invalid {
                crd: name.clone(),
                version: version.into(),
                reason: e.to_string(),
            }
        })?;
        let cel_rules = compile_schema(&schema);
        if let Some(err) = cel_rules.compilation_errors().first() {
            return Err(SchemaError::Cel {
                crd: name,
                version: version.into(),
                reason: err.to_string(),
            });
        }
        Ok(SchemaValidator {
            schema,
            structural,
            cel_rules,
            cel: CelValidator::new(),
        })
    }

    /// Every problem with `object`: schema violations and unknown fields; when there are
    /// none, failed CEL rules. Empty when the API server would accept it.
    pub fn validate(&self, object: &Value) -> Vec<Violation> {
        let mut errors: Vec<Violation> = self
            .structural
            .iter_errors(object)
            .map(|e| {
                let path = pointer_to_path(&e.instance_path().to_string());
                match e.kind() {
                    // Name the missing field itself, as the API server does.
                    ValidationErrorKind::Required {
                        property: Value::String(field),
                    } => Violation {
                        path: join(&path, field),
                        reason: "is required".into(),
                    },
                    _ => Violation {
                        path,
                        reason: e.to_string(),
                    },
                }
            })
            .collect();
        unknown_fields(&self.schema, object, "", &mut errors);
        // CEL rules over ill-typed data only repeat the schema errors in a worse form.
        if !errors.is_empty() {
            return errors;
        }
        if let Err(failed) = self.cel.validate_compiled(&self.cel_rules, object, None) {
            errors.extend(failed.iter().map(|e| Violation {
                path: e.field_path.clone(),
                reason: e.message.clone(),
            }));
        }
        errors
    }
}

/// Translates the OpenAPI v3 dialect of CRD schemas into plain JSON Schema.
fn to_json_schema(schema: &Value) -> Value {
    match schema {
        Value::Object(map) => {
            let mut out: Map<String, Value> = map
                .iter()
                .map(|(k, v)| (k.clone(), to_json_schema_keyword(k, v)))
                .collect();
            let nullable = out.remove("nullable") == Some(Value::Bool(true));
            if out.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
                let mut types = vec![json!({"type": "integer"}), json!({"type": "string"})];
                if nullable {
                    types.push(json!({"type": "null"}));
                }
                out.insert("anyOf".into(), Value::Array(types));
            } else if nullable && let Some(Value::String(t)) = out.get("type").cloned() {
                out.insert("type".into(), json!([t, "null"]));
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

fn to_json_schema_keyword(key: &str, value: &Value) -> Value {
    match (key, value) {
        // Maps of sub-schemas.
        ("properties" | "patternProperties" | "definitions", Value::Object(m)) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), to_json_schema(v)))
                .collect(),
        ),
        // Lists of sub-schemas.
        ("allOf" | "anyOf" | "oneOf", Value::Array(items)) => {
            Value::Array(items.iter().map(to_json_schema).collect())
        }
        // Single sub-schemas.
        ("items" | "additionalProperties" | "not", v @ Value::Object(_)) => to_json_schema(v),
        // Values (enum members, defaults, examples) are data, not schemas.
        (_, v) => v.clone(),
    }
}

/// Reports fields the schema does not declare, where it does not preserve unknown fields.
fn unknown_fields(schema: &Value, value: &Value, path: &str, out: &mut Vec<Violation>) {
    if path.is_empty() {
        // The API server checks the type and object metadata itself; CRD schemas leave them out.
        if let Value::Object(fields) = value {
            for (key, field) in fields {
                if !matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
                    let sub = schema.get("properties").and_then(|p| p.get(key));
                    match sub {
                        Some(sub) => unknown_fields(sub, field, key, out),
                        None => out.push(Violation {
                            path: key.clone(),
                            reason: UNKNOWN.into(),
                        }),
                    }
                }
            }
        }
        return;
    }
    if schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)) {
        return;
    }
    match value {
        Value::Object(fields) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            for (key, field) in fields {
                let child = join(path, key);
                match (properties.and_then(|p| p.get(key)), additional) {
                    (Some(sub), _) | (None, Some(sub)) => unknown_fields(sub, field, &child, out),
                    // An object schema without properties (e.g. `metadata`) is checked elsewhere.
                    (None, None) if properties.is_none() => {}
                    (None, None) => out.push(Violation {
                        path: child,
                        reason: UNKNOWN.into(),
                    }),
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    unknown_fields(item_schema, item, &format!("{path}[{i}]"), out);
                }
            }
        }
        _ => {}
    }
}

const UNKNOWN: &str = "unknown field (check its spelling and indentation)";

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// `/spec/env/0/name` → `spec.env[0].name`.
fn pointer_to_path(pointer: &str) -> String {
    let mut path = String::new();
    for segment in pointer.split('/').skip(1) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        if !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) {
            path.push_str(&format!("[{segment}]"));
        } else {
            path = join(&path, &segment);
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_pointers_become_field_paths() {
        assert_eq!(pointer_to_path(""), "");
        assert_eq!(pointer_to_path("/spec/parallelism"), "spec.parallelism");
        assert_eq!(
            pointer_to_path("/spec/podTemplate/env/0/name"),
            "spec.podTemplate.env[0].name"
        );
        assert_eq!(
            pointer_to_path("/metadata/labels/a~1b"),
            "metadata.labels.a/b"
        );
    }

    #[test]
    fn nullable_and_int_or_string_are_translated() {
        let schema = json!({
            "type": "object",
            "properties": {
                "a": {"type": "string", "nullable": true},
                "q": {"x-kubernetes-int-or-string": true, "nullable": true, "pattern": "^[0-9]+m?$"},
                "e": {"type": "string", "enum": ["x", "y"]},
            }
        });
        let v = jsonschema::validator_for(&to_json_schema(&schema)).unwrap();
        assert!(v.is_valid(&json!({"a": null, "q": 2, "e": "x"})));
        assert!(v.is_valid(&json!({"q": "500m"})));
        assert!(v.is_valid(&json!({"q": null})));
        assert!(!v.is_valid(&json!({"q": "lots"})));
        assert!(!v.is_valid(&json!({"q": true})));
        assert!(!v.is_valid(&json!({"e": "z"})));
        assert!(!v.is_valid(&json!({"a": 1})));
    }

    #[test]
    fn unknown_fields_are_found_except_where_preserved() {
        let schema = json!({
            "type": "object",
            "properties": {
                "spec": {"type": "object", "properties": {
                    "known": {"type": "string"},
                    "open": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "list": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}}}},
                }},
                "metadata": {"type": "object"},
            }
        });
        let object = json!({
            "metadata": {"name": "x", "labels": {"a": "b"}},
            "spec": {
                "known": "k", "typo": 1,
                "open": {"anything": {"goes": true}},
                "labels": {"any": "key"},
                "list": [{"name": "a"}, {"nmae": "b"}],
            }
        });
        let mut errors = Vec::new();
        unknown_fields(&schema, &object, "", &mut errors);
        let paths: Vec<_> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["spec.list[1].nmae", "spec.typo"]);
    }
}
