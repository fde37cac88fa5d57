//! The `Table` form kubectl asks for (`Accept: application/json;as=Table;g=meta.k8s.io;v=v1`):
//! the columns `kubectl get` prints, computed on the server as Kubernetes does.

use serde_json::{Value, json};

use super::meta;
use super::registry::ResourceType;

fn column(name: &str, type_: &str, description: &str, priority: i64) -> Value {
    let format = if name == "Name" { "name" } else { "" };
    json!({"name": name, "type": type_, "format": format, "description": description, "priority": priority})
}

fn age_of(object: &Value) -> Value {
    json!(
        meta::meta_str(object, "creationTimestamp")
            .map(meta::age)
            .unwrap_or_else(|| "<unknown>".into())
    )
}

fn s(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn pod_row(pod: &Value) -> Vec<Value> {
    let statuses = pod
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let total = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let ready = statuses.iter().filter(|c| c["ready"] == true).count();
    let restarts: i64 = statuses
        .iter()
        .filter_map(|c| c["restartCount"].as_i64())
        .sum();
    let mut status = s(pod.pointer("/status/phase"));
    for c in &statuses {
        if let Some(reason) = c.pointer("/state/waiting/reason").and_then(Value::as_str) {
            status = reason.to_owned();
        } else if let Some(reason) = c
            .pointer("/state/terminated/reason")
            .and_then(Value::as_str)
            && status == "Running"
        {
            status = reason.to_owned();
        }
    }
    if pod.pointer("/metadata/deletionTimestamp").is_some() {
        status = "Terminating".into();
    }
    vec![
        json!(meta::name_of(pod)),
        json!(format!("{ready}/{total}")),
        json!(status),
        json!(restarts),
        age_of(pod),
        json!(
            pod.pointer("/status/podIP")
                .and_then(Value::as_str)
                .unwrap_or("<none>")
        ),
        json!(
            pod.pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .unwrap_or("<none>")
        ),
    ]
}

/// Column definitions and a row builder for a kind.
type RowFn<'a> = Box<dyn Fn(&Value) -> Vec<Value> + 'a>;

fn layout(rt: &ResourceType) -> (Vec<Value>, RowFn<'_>) {
    let name = column(
        "Name",
        "string",
        "Name must be unique within a namespace.",
        0,
    );
    let age = column(
        "Age",
        "string",
        "CreationTimestamp is a timestamp representing the server time when this object was created.",
        0,
    );
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "Pod") => (
            vec![
                name,
                column(
                    "Ready",
                    "string",
                    "The aggregate readiness state of this pod for accepting traffic.",
                    0,
                ),
                column(
                    "Status",
                    "string",
                    "The aggregate status of the containers in this pod.",
                    0,
                ),
                column(
                    "Restarts",
                    "string",
                    "The number of times the containers in this pod have been restarted.",
                    0,
                ),
                age,
                column("IP", "string", "IP address allocated to the pod.", 1),
                column("Node", "string", "Name of the Node this pod runs on.", 1),
            ],
            Box::new(pod_row),
        ),
        ("apps", "Deployment") => (
            vec![
                name,
                column("Ready", "string", "Number of the pod with ready state", 0),
                column(
                    "Up-to-date",
                    "string",
                    "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
                    0,
                ),
                column(
                    "Available",
                    "string",
                    "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
                    0,
                ),
                age,
            ],
            Box::new(|o| {
                let st = |p: &str| o.pointer(p).and_then(Value::as_i64).unwrap_or(0);
                vec![
                    json!(meta::name_of(o)),
                    json!(format!(
                        "{}/{}",
                        st("/status/readyReplicas"),
                        st("/spec/replicas")
                    )),
                    json!(st("/status/updatedReplicas")),
                    json!(st("/status/availableReplicas")),
                    age_of(o),
                ]
            }),
        ),
        ("apps", "StatefulSet") | ("apps", "ReplicaSet") => (
            vec![
                name,
                column("Ready", "string", "Number of the pod with ready state", 0),
                age,
            ],
            Box::new(|o| {
                let st = |p: &str| o.pointer(p).and_then(Value::as_i64).unwrap_or(0);
                vec![
                    json!(meta::name_of(o)),
                    json!(format!(
                        "{}/{}",
                        st("/status/readyReplicas"),
                        st("/spec/replicas")
                    )),
                    age_of(o),
                ]
            }),
        ),
        ("", "Node") => (
            vec![
                name,
                column("Status", "string", "The status of the node", 0),
                column("Roles", "string", "The roles of the node", 0),
                age,
                column(
                    "Version",
                    "string",
                    "Kubelet Version reported by the node.",
                    0,
                ),
            ],
            Box::new(|o| {
                let ready = o
                    .pointer("/status/conditions")
                    .and_then(Value::as_array)
                    .is_some_and(|c| {
                        c.iter()
                            .any(|c| c["type"] == "Ready" && c["status"] == "True")
                    });
                let mut status = if ready {
                    "Ready".to_owned()
                } else {
                    "NotReady".to_owned()
                };
                if o.pointer("/spec/unschedulable") == Some(&json!(true)) {
                    status.push_str(",SchedulingDisabled");
                }
                vec![
                    json!(meta::name_of(o)),
                    json!(status),
                    json!("<none>"),
                    age_of(o),
                    json!(s(o.pointer("/status/nodeInfo/kubeletVersion"))),
                ]
            }),
        ),
        ("", "Event") => (
            vec![
                column(
                    "Last Seen",
                    "string",
                    "Time since the event was last seen",
                    0,
                ),
                column("Type", "string", "Normal or Warning", 0),
                column("Reason", "string", "Why the event happened", 0),
                column("Object", "string", "The object it is about", 0),
                column("Message", "string", "What happened", 0),
            ],
            Box::new(|o| {
                let when = o
                    .get("lastTimestamp")
                    .or_else(|| o.get("eventTime"))
                    .and_then(Value::as_str)
                    .map(meta::age)
                    .unwrap_or_else(|| "<unknown>".into());
                let object = format!(
                    "{}/{}",
                    s(o.pointer("/involvedObject/kind")).to_lowercase(),
                    s(o.pointer("/involvedObject/name"))
                );
                vec![
                    json!(when),
                    json!(s(o.get("type"))),
                    json!(s(o.get("reason"))),
                    json!(object),
                    json!(s(o.get("message"))),
                ]
            }),
        ),
        ("", "Namespace") => (
            vec![
                name,
                column("Status", "string", "The status of the namespace", 0),
                age,
            ],
            Box::new(|o| {
                vec![
                    json!(meta::name_of(o)),
                    json!(s(o.pointer("/status/phase"))),
                    age_of(o),
                ]
            }),
        ),
        ("", "ConfigMap") | ("", "Secret") => {
            let secret = rt.kind == "Secret";
            let mut cols = vec![name];
            if secret {
                cols.push(column("Type", "string", "The type of the secret", 0));
            }
            cols.push(column("Data", "string", "Number of data entries", 0));
            cols.push(age);
            (
                cols,
                Box::new(move |o| {
                    let data = o
                        .get("data")
                        .and_then(Value::as_object)
                        .map_or(0, |d| d.len())
                        + o.get("binaryData")
                            .and_then(Value::as_object)
                            .map_or(0, |d| d.len());
                    let mut row = vec![json!(meta::name_of(o))];
                    if secret {
                        row.push(json!(s(o.get("type"))));
                    }
                    row.push(json!(data));
                    row.push(age_of(o));
                    row
                }),
            )
        }
        ("", "Service") => (
            vec![
                name,
                column("Type", "string", "The type of the service", 0),
                column("Cluster-IP", "string", "The cluster IP", 0),
                column("External-IP", "string", "External IPs", 0),
                column("Port(s)", "string", "The ports", 0),
                age,
            ],
            Box::new(|o| {
                let ports: Vec<String> = o
                    .pointer("/spec/ports")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(|p| format!("{}/{}", s(p.get("port")), s(p.get("protocol"))))
                    .collect();
                vec![
                    json!(meta::name_of(o)),
                    json!(s(o.pointer("/spec/type"))),
                    json!(s(o.pointer("/spec/clusterIP"))),
                    json!("<none>"),
                    json!(if ports.is_empty() {
                        "<none>".to_owned()
                    } else {
                        ports.join(",")
                    }),
                    age_of(o),
                ]
            }),
        ),
        ("apiextensions.k8s.io", _) => (
            vec![name, column("Created At", "date", "", 0)],
            Box::new(|o| {
                vec![
                    json!(meta::name_of(o)),
                    json!(s(o.pointer("/metadata/creationTimestamp"))),
                ]
            }),
        ),
        _ if !rt.printer_columns.is_empty() => {
            let mut cols = vec![name];
            for c in &rt.printer_columns {
                let type_ = if c.type_ == "date" {
                    "date"
                } else {
                    c.type_.as_str()
                };
                cols.push(column(&c.name, type_, &c.description, c.priority));
            }
            (
                cols,
                Box::new(move |o| {
                    let mut row = vec![json!(meta::name_of(o))];
                    for c in &rt.printer_columns {
                        let value = meta::json_path(o, &c.json_path).cloned();
                        row.push(match (c.type_.as_str(), value) {
                            (_, None) | (_, Some(Value::Null)) => Value::Null,
                            ("date", Some(Value::String(ts))) => json!(meta::age(&ts)),
                            (_, Some(v)) => v,
                        });
                    }
                    row
                }),
            )
        }
        _ => (
            vec![name, age],
            Box::new(|o| vec![json!(meta::name_of(o)), age_of(o)]),
        ),
    }
}

/// A Table of `objects`; each row carries the object's metadata (or the whole object when
/// `include_object` is `Object`).
pub fn table(
    rt: &ResourceType,
    objects: &[&Value],
    resource_version: u64,
    include_object: &str,
) -> Value {
    let (columns, row) = layout(rt);
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let object = match include_object {
                "Object" => (*o).clone(),
                "None" => Value::Null,
                _ => json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]}),
            };
            json!({"cells": row(o), "object": object})
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version.to_string()},
        "columnDefinitions": columns,
        "rows": rows,
    })
}
