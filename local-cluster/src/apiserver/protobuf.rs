//! Request bodies in Kubernetes' protobuf encoding, for the few kinds clients send that way:
//! client-go's typed clients (kubectl's `create`, Helm's release storage) write Secrets,
//! ConfigMaps and Namespaces, and delete with DeleteOptions, as protobuf. The envelope is the
//! 4-byte magic `k8s\0` and a `runtime.Unknown` message holding the object's type and its
//! bytes; the messages below declare only the fields this server keeps (prost skips the
//! rest). Anything else is refused as an unsupported media type, naming the kind.

use std::collections::BTreeMap;

use base64::Engine;
use prost::Message;
use serde_json::{Map, Value, json};

const MAGIC: &[u8] = b"k8s\0";

#[derive(Clone, PartialEq, Message)]
struct Unknown {
    #[prost(message, optional, tag = "1")]
    type_meta: Option<TypeMeta>,
    #[prost(bytes = "vec", tag = "2")]
    raw: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
struct TypeMeta {
    #[prost(string, tag = "1")]
    api_version: String,
    #[prost(string, tag = "2")]
    kind: String,
}

#[derive(Clone, PartialEq, Message)]
struct ObjectMeta {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(string, tag = "2")]
    generate_name: String,
    #[prost(string, tag = "3")]
    namespace: String,
    #[prost(string, tag = "5")]
    uid: String,
    #[prost(string, tag = "6")]
    resource_version: String,
    #[prost(btree_map = "string, string", tag = "11")]
    labels: BTreeMap<String, String>,
    #[prost(btree_map = "string, string", tag = "12")]
    annotations: BTreeMap<String, String>,
    #[prost(string, repeated, tag = "14")]
    finalizers: Vec<String>,
}

#[derive(Clone, PartialEq, Message)]
struct Secret {
    #[prost(message, optional, tag = "1")]
    metadata: Option<ObjectMeta>,
    #[prost(btree_map = "string, bytes", tag = "2")]
    data: BTreeMap<String, Vec<u8>>,
    #[prost(string, tag = "3")]
    r#type: String,
    #[prost(btree_map = "string, string", tag = "4")]
    string_data: BTreeMap<String, String>,
    #[prost(bool, optional, tag = "5")]
    immutable: Option<bool>,
}

#[derive(Clone, PartialEq, Message)]
struct ConfigMap {
    #[prost(message, optional, tag = "1")]
    metadata: Option<ObjectMeta>,
    #[prost(btree_map = "string, string", tag = "2")]
    data: BTreeMap<String, String>,
    #[prost(btree_map = "string, bytes", tag = "3")]
    binary_data: BTreeMap<String, Vec<u8>>,
    #[prost(bool, optional, tag = "4")]
    immutable: Option<bool>,
}

#[derive(Clone, PartialEq, Message)]
struct Namespace {
    #[prost(message, optional, tag = "1")]
    metadata: Option<ObjectMeta>,
}

#[derive(Clone, PartialEq, Message)]
struct DeleteOptions {
    #[prost(int64, optional, tag = "1")]
    grace_period_seconds: Option<i64>,
    #[prost(string, optional, tag = "4")]
    propagation_policy: Option<String>,
}

/// Whether `content_type` is Kubernetes' protobuf encoding.
pub fn is_protobuf(content_type: &str) -> bool {
    content_type.contains("application/vnd.kubernetes.protobuf")
}

/// The object in a protobuf request body, as the JSON a client would have sent.
pub fn decode(body: &[u8]) -> Result<Value, String> {
    let rest = body
        .strip_prefix(MAGIC)
        .ok_or("the protobuf body does not start with the Kubernetes magic number")?;
    let unknown = Unknown::decode(rest).map_err(|e| format!("bad protobuf envelope: {e}"))?;
    let meta = unknown.type_meta.unwrap_or_default();
    let raw = unknown.raw.as_slice();
    let bad = |e: prost::DecodeError| format!("bad protobuf {}: {e}", meta.kind);
    let b64 = |m: BTreeMap<String, Vec<u8>>| -> Map<String, Value> {
        m.into_iter()
            .map(|(k, v)| {
                (
                    k,
                    Value::String(base64::engine::general_purpose::STANDARD.encode(v)),
                )
            })
            .collect()
    };
    let mut object = match (meta.api_version.as_str(), meta.kind.as_str()) {
        ("v1", "Secret") => {
            let s = Secret::decode(raw).map_err(bad)?;
            let mut o = json!({"metadata": metadata(s.metadata)});
            if !s.data.is_empty() {
                o["data"] = Value::Object(b64(s.data));
            }
            if !s.string_data.is_empty() {
                o["stringData"] = json!(s.string_data);
            }
            if !s.r#type.is_empty() {
                o["type"] = json!(s.r#type);
            }
            if let Some(i) = s.immutable {
                o["immutable"] = json!(i);
            }
            o
        }
        ("v1", "ConfigMap") => {
            let c = ConfigMap::decode(raw).map_err(bad)?;
            let mut o = json!({"metadata": metadata(c.metadata)});
            if !c.data.is_empty() {
                o["data"] = json!(c.data);
            }
            if !c.binary_data.is_empty() {
                o["binaryData"] = Value::Object(b64(c.binary_data));
            }
            if let Some(i) = c.immutable {
                o["immutable"] = json!(i);
            }
            o
        }
        ("v1", "Namespace") => {
            let n = Namespace::decode(raw).map_err(bad)?;
            json!({"metadata": metadata(n.metadata)})
        }
        (_, "DeleteOptions") => {
            let d = DeleteOptions::decode(raw).map_err(bad)?;
            let mut o = json!({});
            if let Some(p) = d.propagation_policy {
                o["propagationPolicy"] = json!(p);
            }
            if let Some(g) = d.grace_period_seconds {
                o["gracePeriodSeconds"] = json!(g);
            }
            o
        }
        (api_version, kind) => {
            return Err(format!(
                "{kind} ({api_version}) in protobuf is not supported here; send JSON or YAML (with kubectl, use `kubectl apply -f`)"
            ));
        }
    };
    object["apiVersion"] = json!(meta.api_version);
    object["kind"] = json!(meta.kind);
    Ok(object)
}

fn metadata(meta: Option<ObjectMeta>) -> Value {
    let m = meta.unwrap_or_default();
    let mut o = Map::new();
    let mut put = |k: &str, v: String| {
        if !v.is_empty() {
            o.insert(k.to_owned(), Value::String(v));
        }
    };
    put("name", m.name);
    put("generateName", m.generate_name);
    put("namespace", m.namespace);
    put("uid", m.uid);
    put("resourceVersion", m.resource_version);
    if !m.labels.is_empty() {
        o.insert("labels".into(), json!(m.labels));
    }
    if !m.annotations.is_empty() {
        o.insert("annotations".into(), json!(m.annotations));
    }
    if !m.finalizers.is_empty() {
        o.insert("finalizers".into(), json!(m.finalizers));
    }
    Value::Object(o)
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    fn envelope(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
        let mut body = MAGIC.to_vec();
        Unknown {
            type_meta: Some(TypeMeta {
                api_version: api_version.into(),
                kind: kind.into(),
            }),
            raw,
        }
        .encode(&mut body)
        .unwrap();
        body
    }

    #[test]
    fn a_secret_reads_as_its_json() {
        let secret = Secret {
            metadata: Some(ObjectMeta {
                name: "sh.helm.release.v1.strom.v1".into(),
                labels: BTreeMap::from([("owner".into(), "helm".into())]),
                ..ObjectMeta::default()
            }),
            data: BTreeMap::from([("release".into(), b"H4sI".to_vec())]),
            r#type: "helm.sh/release.v1".into(),
            ..Secret::default()
        };
        let v = decode(&envelope("v1", "Secret", secret.encode_to_vec())).unwrap();
        assert_eq!(
            v,
            json!({"apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
                   "metadata": {"name": "sh.helm.release.v1.strom.v1", "labels": {"owner": "helm"}},
                   "data": {"release": "SDRzSQ=="}})
        );
    }

    #[test]
    fn other_kinds_and_bad_bodies_are_refused_by_name() {
        let err = decode(&envelope("apps/v1", "Deployment", vec![])).unwrap_err();
        assert!(
            err.contains("Deployment (apps/v1) in protobuf is not supported"),
            "{err}"
        );
        assert!(decode(b"{}").unwrap_err().contains("magic"));
    }
}
