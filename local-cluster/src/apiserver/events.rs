//! Events. `events.k8s.io/v1` and core/v1 Events are one store seen two ways, as in
//! Kubernetes: what kube-rs's recorder writes, `kubectl describe` shows. Also a helper for
//! the cluster's own components to record events.

use serde_json::{Map, Value, json};

use super::ops::WriteOptions;
use super::{ApiServer, meta};

const PAIRS: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("related", "related"),
    ("note", "message"),
    ("reason", "reason"),
    ("type", "type"),
    ("action", "action"),
    ("reportingController", "reportingComponent"),
    ("reportingInstance", "reportingInstance"),
    ("eventTime", "eventTime"),
    ("series", "series"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

fn rename(object: &Value, api_version: &str, to_core: bool) -> Value {
    let Some(map) = object.as_object() else {
        return object.clone();
    };
    let mut out = Map::new();
    for (k, v) in map {
        let key = PAIRS
            .iter()
            .find(|(new, core)| if to_core { new == k } else { core == k })
            .map(|(new, core)| if to_core { *core } else { *new })
            .unwrap_or(k.as_str());
        out.insert(key.to_owned(), v.clone());
    }
    out.insert("apiVersion".into(), json!(api_version));
    out.insert("kind".into(), json!("Event"));
    Value::Object(out)
}

/// An `events.k8s.io/v1` Event as stored (core/v1).
pub fn to_core(event: &Value) -> Value {
    rename(event, "v1", true)
}

/// A stored (core/v1) Event as `events.k8s.io/v1`.
pub fn to_events_v1(event: &Value) -> Value {
    rename(event, "events.k8s.io/v1", false)
}

/// Records a core/v1 Event about `object` from `component` (the kubelet, the scheduler, …).
pub fn record(
    server: &ApiServer,
    object: &Value,
    type_: &str,
    reason: &str,
    message: &str,
    component: &str,
) {
    let Some(rt) = server.registry.find("", "v1", "events") else {
        return;
    };
    let ns = meta::meta_str(object, "namespace")
        .unwrap_or("default")
        .to_owned();
    let now = meta::now();
    let event = json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": format!("{}.", meta::name_of(object)), "namespace": ns},
        "involvedObject": {
            "apiVersion": object["apiVersion"],
            "kind": object["kind"],
            "name": meta::name_of(object),
            "namespace": ns,
            "uid": object["metadata"]["uid"],
            "resourceVersion": object["metadata"]["resourceVersion"],
        },
        "type": type_,
        "reason": reason,
        "message": message,
        "source": {"component": component},
        "reportingComponent": component,
        "reportingInstance": component,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    });
    let opts = WriteOptions {
        field_manager: Some(component.into()),
        ..Default::default()
    };
    if let Err(e) = server.create(&rt, Some(&ns), event, &opts) {
        tracing::debug!(error = %e.message, "event not recorded");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_two_event_apis_convert_both_ways() {
        let v1 = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"},
            "regarding": {"kind": "FlinkJob", "name": "j"}, "note": "took a savepoint", "reason": "SavepointTriggered",
            "type": "Normal", "reportingController": "strom-operator", "eventTime": "2026-01-01T00:00:00.000000Z"});
        let core = to_core(&v1);
        assert_eq!(core["involvedObject"]["name"], "j");
        assert_eq!(core["message"], "took a savepoint");
        assert_eq!(core["reportingComponent"], "strom-operator");
        assert_eq!(core["apiVersion"], "v1");
        assert_eq!(to_events_v1(&core), v1);
    }
}
