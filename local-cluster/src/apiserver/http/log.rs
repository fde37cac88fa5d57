//! Pod logs.

use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use serde_json::Value;

use super::*;

/// `GET pods/{name}/log`: a container's log from the kubelet, followed if asked.
pub(super) async fn pod_log(
    server: &Arc<ApiServer>,
    rt: &ResourceType,
    ns: Option<&str>,
    name: &str,
    q: &Query,
) -> Result<Response, ApiError> {
    let pod = server.get(rt, ns, name)?;
    let containers: Vec<String> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str().map(str::to_owned))
        .collect();
    let container = match q.get("container") {
        Some(c) if containers.contains(c) => c.clone(),
        Some(c) => {
            return Err(ApiError::bad_request(format!(
                "container {c} is not valid for pod {name}"
            )));
        }
        None if containers.len() == 1 => containers[0].clone(),
        None => {
            return Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                containers.join(" ")
            )));
        }
    };
    let tail = q.get("tailLines").and_then(|t| t.parse().ok());
    let logs = server
        .logs
        .get()
        .ok_or_else(|| ApiError::bad_request("no kubelet is running, so there are no logs"))?;
    let namespace = ns.unwrap_or("default");
    let stream = logs
        .log(namespace, name, &container, flag(q, "follow"), tail)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "container \"{container}\" in pod \"{name}\" is waiting to start: ContainerCreating"
            ))
        })?;
    let body = Body::from_stream(futures::StreamExt::map(stream, Ok::<_, std::io::Error>));
    let mut response = Response::new(body);
    response
        .headers_mut()
        .insert("content-type", "text/plain".parse().expect("static"));
    Ok(response)
}
