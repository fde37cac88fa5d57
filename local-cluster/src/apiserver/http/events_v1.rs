//! `events.k8s.io/v1` Events: the verbs over the core Events they are stored as.

use std::sync::Arc;

use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::*;
use crate::apiserver::events::{to_core, to_events_v1};

/// The verbs of `events.k8s.io/v1` Event over the core Events they are stored as.
pub(super) fn serve(
    server: &Arc<ApiServer>,
    method: &Method,
    q: &Query,
    core: &ResourceType,
    t: &Target,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let ns = t.namespace.as_deref();
    let one = |code: StatusCode, o: &Value| Ok(json_response(code, &to_events_v1(o), &[]));
    let written = |w: Written| {
        one(
            if w.created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            },
            &w.object,
        )
    };
    match (method.clone(), t.name.as_deref(), t.sub.as_deref()) {
        (Method::GET, Some(name), None) => one(StatusCode::OK, &*server.get(core, ns, name)?),
        (Method::GET, None, None) if flag(q, "watch") => {
            start_watch(server, t.rt.clone(), ns, q, format_of(headers))
        }
        (Method::GET, None, None) => {
            let labels = label_selector(q)?;
            let fields = field_selector(q)?;
            let (items, rv) = server.store.list(&core.storage_key(), ns);
            let items: Vec<Value> = items
                .iter()
                .map(|o| to_events_v1(o))
                .filter(|o| labels.matches(o) && fields.matches(o))
                .collect();
            let list = json!({"kind": "EventList", "apiVersion": "events.k8s.io/v1", "metadata": {"resourceVersion": rv.to_string()}, "items": items});
            Ok(json_response(StatusCode::OK, &list, &[]))
        }
        (Method::POST, None, None) if ns.is_some() => written(server.create(
            core,
            ns,
            to_core(&parse_body(headers, body)?),
            &write_options(q)?,
        )?),
        (Method::PUT, Some(name), None) => written(server.update(
            core,
            ns,
            name,
            to_core(&parse_body(headers, body)?),
            None,
            &write_options(q)?,
        )?),
        (Method::PATCH, Some(name), None) => {
            let content_type = headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let patch = parse_body(headers, body)?;
            let json_patch = content_type.starts_with("application/json-patch+json");
            let w = server.modify(core, ns, name, None, &write_options(q)?, |old| {
                let view = to_events_v1(old);
                let patched = if json_patch {
                    crate::apiserver::patch::json_patch(&view, &patch).map_err(|e| {
                        ApiError::bad_request(format!("the JSON patch could not be applied: {e}"))
                    })?
                } else {
                    crate::apiserver::patch::merge_patch(&view, &patch)
                };
                Ok(to_core(&patched))
            })?;
            written(w)
        }
        (Method::DELETE, Some(name), None) => one(
            StatusCode::OK,
            &*server.delete(core, ns, name, &delete_options(q, headers, body)?)?,
        ),
        (m, _, _) => Err(ApiError::method_not_allowed(format!(
            "{m} is not supported on events.events.k8s.io"
        ))),
    }
}
