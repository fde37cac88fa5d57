//! The schema of `spec.job`: the job-spec JSON schema of `strom-jobspec`'s types (also
//! committed as `crds/job-schema.json` for the docs, checked for drift by the engine's
//! tests), turned into the structural OpenAPI form a CRD needs: references inlined,
//! `null` alternatives turned into `nullable`, integer formats Kubernetes knows, and free-form
//! values marked `x-kubernetes-preserve-unknown-fields`.

use serde_json::{Map, Value, json};

/// The structural schema of `spec.job`.
pub fn structural() -> Value {
    let root = strom_jobspec::JobSpec::json_schema();
    let defs = root
        .get("$defs")
        .cloned()
        .unwrap_or(Value::Object(Map::new()));
    let mut out = convert(&root, &defs, 0);
    if let Some(m) = out.as_object_mut() {
        m.remove("title");
    }
    out
}

fn convert(schema: &Value, defs: &Value, depth: usize) -> Value {
    // A `true` schema (any value) or too deep a nesting: accept anything.
    let Some(map) = schema.as_object() else {
        return json!({"x-kubernetes-preserve-unknown-fields": true});
    };
    if depth > 32 {
        return json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true});
    }
    if let Some(reference) = map.get("$ref").and_then(Value::as_str) {
        let name = reference.trim_start_matches("#/$defs/");
        let mut inlined = convert(&defs[name], defs, depth + 1);
        if let (Some(desc), Some(m)) = (map.get("description"), inlined.as_object_mut()) {
            m.insert("description".into(), desc.clone());
        }
        return inlined;
    }
    // `anyOf: [X, {type: null}]` (an Option) becomes X with nullable.
    if let Some(Value::Array(alternatives)) = map.get("anyOf") {
        let non_null: Vec<&Value> = alternatives
            .iter()
            .filter(|a| a.get("type") != Some(&json!("null")))
            .collect();
        if non_null.len() == 1 {
            let mut inner = convert(non_null[0], defs, depth + 1);
            if let Some(m) = inner.as_object_mut() {
                m.insert("nullable".into(), json!(true));
                if let Some(desc) = map.get("description") {
                    m.insert("description".into(), desc.clone());
                }
                if let Some(default) = map.get("default") {
                    m.insert("default".into(), default.clone());
                }
            }
            return inner;
        }
    }
    let mut out = Map::new();
    // An enum of documented unit variants: `oneOf` of constants becomes `enum`.
    if let Some(Value::Array(alternatives)) = map.get("oneOf") {
        let constants: Option<Vec<Value>> = alternatives
            .iter()
            .map(|a| {
                a.get("const")
                    .cloned()
                    .or_else(|| a.get("enum").and_then(|e| e.get(0)).cloned())
            })
            .collect();
        if let Some(constants) = constants {
            out.insert("type".into(), json!("string"));
            out.insert("enum".into(), Value::Array(constants));
        }
    }
    for (key, value) in map {
        match key.as_str() {
            "$schema" | "$defs" | "title" | "anyOf" | "oneOf" => {}
            "type" => match value {
                Value::Array(types) => {
                    let real: Vec<&Value> = types.iter().filter(|t| *t != "null").collect();
                    if let Some(t) = real.first() {
                        out.insert("type".into(), (*t).clone());
                    }
                    if real.len() < types.len() {
                        out.insert("nullable".into(), json!(true));
                    }
                }
                other => {
                    out.insert("type".into(), other.clone());
                }
            },
            "format" => {
                // Kubernetes knows int32/int64 (and double, date-time, …); unsigned formats
                // become a minimum.
                match value.as_str() {
                    Some("uint" | "uint8" | "uint16" | "uint32" | "uint64") => {
                        out.insert("format".into(), json!("int64"));
                        out.entry("minimum").or_insert(json!(0));
                    }
                    _ => {
                        out.insert("format".into(), value.clone());
                    }
                }
            }
            "properties" => {
                let props: Map<String, Value> = value
                    .as_object()
                    .map(|p| {
                        p.iter()
                            .map(|(k, v)| (k.clone(), convert(v, defs, depth + 1)))
                            .collect()
                    })
                    .unwrap_or_default();
                out.insert("properties".into(), Value::Object(props));
            }
            "items" | "additionalProperties" => {
                out.insert(key.clone(), convert(value, defs, depth + 1));
            }
            _ => {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    // A string-valued enum keeps its type; an object without properties holds free-form data.
    if out.get("type").is_none() {
        if out.contains_key("properties") {
            out.insert("type".into(), json!("object"));
        } else if !out.contains_key("enum") {
            out.insert("x-kubernetes-preserve-unknown-fields".into(), json!(true));
        }
    }
    if out.get("type") == Some(&json!("object"))
        && !out.contains_key("properties")
        && !out.contains_key("additionalProperties")
    {
        out.insert("x-kubernetes-preserve-unknown-fields".into(), json!(true));
    }
    Value::Object(out)
}
