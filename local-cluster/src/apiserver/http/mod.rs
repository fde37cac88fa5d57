//! The HTTP face of the API server: paths, query parameters, content negotiation (JSON,
//! Table, PartialObjectMetadata), and the mapping of verbs to [`super::ops`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::ops::{DeleteOptions, FieldValidation, PatchType, WriteOptions, Written};
use super::registry::ResourceType;
use super::selector::{FieldSelector, LabelSelector};
use super::status::ApiError;
use super::watch::{self, Format, WatchParams};
use super::{ApiServer, discovery, meta, openapi, table};

mod events_v1;
mod log;

/// The router for the whole API.
pub fn router(server: Arc<ApiServer>) -> Router {
    Router::new().fallback(handle).with_state(server)
}

/// Serves the API on `listener` until `shutdown` completes.
pub async fn serve(
    server: Arc<ApiServer>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(server))
        .with_graceful_shutdown(shutdown)
        .await
}

fn json_response(code: StatusCode, value: &Value, warnings: &[String]) -> Response {
    let mut response = (
        code,
        [("content-type", "application/json")],
        value.to_string(),
    )
        .into_response();
    for w in warnings {
        if let Ok(h) = format!("299 - \"{}\"", w.replace('"', "\\\"")).parse() {
            response.headers_mut().append("warning", h);
        }
    }
    response
}

type Query = HashMap<String, String>;

fn parse_query(uri: &Uri) -> Query {
    form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

fn flag(q: &Query, key: &str) -> bool {
    matches!(q.get(key).map(String::as_str), Some("true" | "1"))
}

/// A request for objects of one kind.
struct Target {
    rt: Arc<ResourceType>,
    namespace: Option<String>,
    name: Option<String>,
    sub: Option<String>,
}

async fn handle(
    State(server): State<Arc<ApiServer>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let segments: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let query = parse_query(&uri);
    let ok = |v: Value| json_response(StatusCode::OK, &v, &[]);
    match segments.as_slice() {
        ["version"] => return ok(discovery::version()),
        ["healthz" | "readyz" | "livez", ..] => return (StatusCode::OK, "ok").into_response(),
        ["api"] => return ok(discovery::core_versions()),
        ["apis"] => return ok(discovery::group_list(&server)),
        ["openapi", "v3"] => return ok(openapi::index(&server)),
        ["openapi", "v3", "api", v] => {
            return openapi::document(&server, "", v)
                .map(ok)
                .unwrap_or_else(|| ApiError::no_route(&path).into_response());
        }
        ["openapi", "v3", "apis", g, v] => {
            return openapi::document(&server, g, v)
                .map(ok)
                .unwrap_or_else(|| ApiError::no_route(&path).into_response());
        }
        ["apis", g] => {
            return discovery::group(&server, g)
                .map(ok)
                .unwrap_or_else(|| ApiError::no_route(&path).into_response());
        }
        ["api", v] => {
            return discovery::resource_list(&server, "", v)
                .map(ok)
                .unwrap_or_else(|| ApiError::no_route(&path).into_response());
        }
        ["apis", g, v] => {
            return discovery::resource_list(&server, g, v)
                .map(ok)
                .unwrap_or_else(|| ApiError::no_route(&path).into_response());
        }
        _ => {}
    }
    let (group, version, rest) = match segments.as_slice() {
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return ApiError::no_route(&path).into_response(),
    };
    let Some(target) = resolve(&server, group, version, rest) else {
        return ApiError::no_route(&path).into_response();
    };
    match dispatch(&server, &method, &headers, &query, target, body).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

fn resolve(server: &ApiServer, group: &str, version: &str, rest: &[&str]) -> Option<Target> {
    let owned = |s: &&str| (*s).to_owned();
    if let ["namespaces", ns, plural, tail @ ..] = rest
        && let Some(rt) = server
            .registry
            .find(group, version, plural)
            .filter(|t| t.namespaced)
    {
        return Some(Target {
            rt,
            namespace: Some((*ns).to_owned()),
            name: tail.first().map(owned),
            sub: tail.get(1).map(owned),
        });
    }
    let [plural, tail @ ..] = rest else {
        return None;
    };
    let rt = server.registry.find(group, version, plural)?;
    if tail.len() > 2 {
        return None;
    }
    Some(Target {
        rt,
        namespace: None,
        name: tail.first().map(owned),
        sub: tail.get(1).map(owned),
    })
}

fn write_options(q: &Query) -> Result<WriteOptions, ApiError> {
    let field_validation = match q.get("fieldValidation").map(String::as_str) {
        None | Some("") | Some("Warn") => FieldValidation::Warn,
        Some("Strict") => FieldValidation::Strict,
        Some("Ignore") => FieldValidation::Ignore,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "fieldValidation: unsupported value {other:?} (Ignore, Warn, Strict)"
            )));
        }
    };
    Ok(WriteOptions {
        dry_run: q.get("dryRun").is_some_and(|v| v == "All"),
        field_manager: q.get("fieldManager").cloned(),
        field_validation,
        force: flag(q, "force"),
    })
}

fn parse_body(headers: &HeaderMap, body: &[u8]) -> Result<Value, ApiError> {
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    if body.is_empty() {
        return Ok(Value::Null);
    }
    if super::protobuf::is_protobuf(content_type) {
        // Secrets, ConfigMaps, Namespaces and DeleteOptions, as client-go's typed clients send
        // them; other kinds are refused by name.
        return super::protobuf::decode(body).map_err(ApiError::unsupported_body);
    }
    if content_type.contains("protobuf") || content_type.contains("cbor") {
        return Err(ApiError::unsupported_media(content_type));
    }
    if content_type.contains("yaml") {
        return serde_yaml_ng::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("the body is not valid YAML: {e}")));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))
}

/// What the Accept header asks for.
fn format_of(headers: &HeaderMap) -> Format {
    let accept = headers
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let first = accept.split(',').next().unwrap_or_default();
    if first.contains("as=Table") {
        Format::Table
    } else if first.contains("as=PartialObjectMetadata") {
        Format::Metadata
    } else {
        Format::Full
    }
}

async fn dispatch(
    server: &Arc<ApiServer>,
    method: &Method,
    headers: &HeaderMap,
    q: &Query,
    t: Target,
    body: Bytes,
) -> Result<Response, ApiError> {
    // events.k8s.io/v1 Events are stored as core Events: the verbs run on the core kind,
    // and bodies convert at the edges.
    let view_events_v1 = t.rt.is_events_v1();
    let rt = if view_events_v1 {
        server.registry.find("", "v1", "events").expect("built in")
    } else {
        t.rt.clone()
    };
    if view_events_v1 {
        return events_v1::serve(server, method, q, &rt, &t, headers, &body);
    }
    let ns = t.namespace.as_deref();
    let format = format_of(headers);
    let render = |o: &Value| -> Value {
        match format {
            Format::Full => o.clone(),
            Format::Metadata => {
                json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]})
            }
            Format::Table => table::table(
                &rt,
                &[o],
                meta::rv_of(o),
                q.get("includeObject").map_or("Metadata", String::as_str),
            ),
        }
    };
    let written = |w: Written| {
        let code = if w.created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        json_response(code, &render(&w.object), &w.warnings)
    };
    match (method.clone(), t.name.as_deref(), t.sub.as_deref()) {
        (Method::GET, Some(name), Some("log")) if rt.log => {
            log::pod_log(server, &rt, ns, name, q).await
        }
        (Method::GET, Some(name), Some("scale")) => Ok(json_response(
            StatusCode::OK,
            &server.scale_of(&rt, ns, name)?,
            &[],
        )),
        (Method::GET, Some(name), None | Some("status")) => Ok(json_response(
            StatusCode::OK,
            &render(&*server.get(&rt, ns, name)?),
            &[],
        )),
        (Method::GET, None, None) if flag(q, "watch") => {
            Ok(start_watch(server, rt.clone(), ns, q, format)?)
        }
        (Method::GET, None, None) => list(server, &rt, ns, q, format),
        (Method::POST, None, None) => {
            if rt.namespaced && ns.is_none() {
                return Err(ApiError::method_not_allowed(format!(
                    "create {} requires a namespace in the path",
                    rt.plural
                )));
            }
            Ok(written(server.create(
                &rt,
                ns,
                parse_body(headers, &body)?,
                &write_options(q)?,
            )?))
        }
        (Method::PUT, Some(name), sub @ (None | Some("status") | Some("scale"))) => {
            let w = server.update(
                &rt,
                ns,
                name,
                parse_body(headers, &body)?,
                sub,
                &write_options(q)?,
            )?;
            Ok(written(w))
        }
        (Method::PATCH, Some(name), sub @ (None | Some("status") | Some("scale"))) => {
            let content_type = headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let kind = match content_type.split(';').next().unwrap_or_default().trim() {
                "application/json-patch+json" => PatchType::Json,
                "application/merge-patch+json" => PatchType::Merge,
                "application/strategic-merge-patch+json" if rt.crd.is_none() => {
                    PatchType::Strategic
                }
                "application/strategic-merge-patch+json" => {
                    return Err(ApiError::unsupported_media(
                        "application/strategic-merge-patch+json is not supported for custom resources; use a JSON merge patch",
                    ));
                }
                "application/apply-patch+yaml" | "application/apply-patch+json" => PatchType::Apply,
                other => return Err(ApiError::unsupported_media(other)),
            };
            let w = server.patch(
                &rt,
                ns,
                name,
                (kind, parse_body(headers, &body)?),
                sub,
                &write_options(q)?,
            )?;
            Ok(written(w))
        }
        (Method::DELETE, Some(name), None) => {
            let opts = delete_options(q, headers, &body)?;
            let last = server.delete(&rt, ns, name, &opts)?;
            Ok(json_response(StatusCode::OK, &render(&last), &[]))
        }
        (Method::DELETE, None, None) => {
            let opts = delete_options(q, headers, &body)?;
            let (items, _) = server.store.list(&rt.storage_key(), ns);
            let labels = label_selector(q)?;
            let fields = field_selector(q)?;
            let mut deleted = Vec::new();
            for item in items
                .iter()
                .filter(|o| labels.matches(o) && fields.matches(o))
            {
                match server.delete(
                    &rt,
                    meta::meta_str(item, "namespace"),
                    meta::name_of(item),
                    &opts,
                ) {
                    Ok(o) => deleted.push((*o).clone()),
                    Err(e) if e.code == 404 => {}
                    Err(e) => return Err(e),
                }
            }
            let list = json!({"kind": format!("{}List", rt.kind), "apiVersion": rt.api_version(), "metadata": {"resourceVersion": server.store.current_rv().to_string()}, "items": deleted});
            Ok(json_response(StatusCode::OK, &list, &[]))
        }
        (m, _, sub) => Err(ApiError::method_not_allowed(format!(
            "{m} is not supported on {}{}",
            rt.plural,
            sub.map(|s| format!("/{s}")).unwrap_or_default()
        ))),
    }
}

fn label_selector(q: &Query) -> Result<LabelSelector, ApiError> {
    LabelSelector::parse(q.get("labelSelector").map_or("", String::as_str))
        .map_err(|e| ApiError::bad_request(format!("unable to parse labelSelector: {e}")))
}

fn field_selector(q: &Query) -> Result<FieldSelector, ApiError> {
    FieldSelector::parse(q.get("fieldSelector").map_or("", String::as_str))
        .map_err(|e| ApiError::bad_request(format!("unable to parse fieldSelector: {e}")))
}

fn delete_options(q: &Query, headers: &HeaderMap, body: &[u8]) -> Result<DeleteOptions, ApiError> {
    let body = parse_body(headers, body)?;
    let from_body = |k: &str| body.get(k).cloned();
    Ok(DeleteOptions {
        propagation: q
            .get("propagationPolicy")
            .cloned()
            .or_else(|| from_body("propagationPolicy").and_then(|v| v.as_str().map(str::to_owned))),
        grace_period: q
            .get("gracePeriodSeconds")
            .and_then(|v| v.parse().ok())
            .or_else(|| from_body("gracePeriodSeconds").and_then(|v| v.as_i64())),
        uid: body
            .pointer("/preconditions/uid")
            .and_then(Value::as_str)
            .map(str::to_owned),
        resource_version: body
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
            .map(str::to_owned),
        dry_run: q.get("dryRun").is_some_and(|v| v == "All")
            || body
                .get("dryRun")
                .is_some_and(|v| v.as_array().is_some_and(|a| a.iter().any(|d| d == "All"))),
    })
}

fn list(
    server: &ApiServer,
    rt: &ResourceType,
    ns: Option<&str>,
    q: &Query,
    format: Format,
) -> Result<Response, ApiError> {
    let labels = label_selector(q)?;
    let fields = field_selector(q)?;
    let (items, rv) = server.store.list(&rt.storage_key(), ns);
    let matching: Vec<&Value> = items
        .iter()
        .map(|o| o.as_ref())
        .filter(|o| labels.matches(o) && fields.matches(o))
        .collect();
    // Pages continue after the last (namespace, name) served.
    let start = match q.get("continue").filter(|c| !c.is_empty()) {
        Some(token) => {
            let (cns, cname) = token
                .split_once('/')
                .ok_or_else(|| ApiError::bad_request("invalid continue token"))?;
            matching
                .iter()
                .position(|o| {
                    (
                        meta::meta_str(o, "namespace").unwrap_or_default(),
                        meta::name_of(o),
                    ) > (cns, cname)
                })
                .unwrap_or(matching.len())
        }
        None => 0,
    };
    let limit = q
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0);
    let end = limit.map_or(matching.len(), |l| (start + l).min(matching.len()));
    let page = &matching[start..end];
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if end < matching.len()
        && let Some(last) = page.last()
    {
        metadata["continue"] = json!(format!(
            "{}/{}",
            meta::meta_str(last, "namespace").unwrap_or_default(),
            meta::name_of(last)
        ));
        metadata["remainingItemCount"] = json!(matching.len() - end);
    }
    let body = match format {
        Format::Table => {
            let mut t = table::table(
                rt,
                page,
                rv,
                q.get("includeObject").map_or("Metadata", String::as_str),
            );
            t["metadata"] = metadata;
            t
        }
        Format::Metadata => json!({
            "kind": "PartialObjectMetadataList",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": metadata,
            "items": page.iter().map(|o| json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]})).collect::<Vec<_>>(),
        }),
        Format::Full => json!({
            "kind": format!("{}List", rt.kind),
            "apiVersion": rt.api_version(),
            "metadata": metadata,
            "items": page,
        }),
    };
    Ok(json_response(StatusCode::OK, &body, &[]))
}

fn start_watch(
    server: &Arc<ApiServer>,
    rt: Arc<ResourceType>,
    ns: Option<&str>,
    q: &Query,
    format: Format,
) -> Result<Response, ApiError> {
    let from = q
        .get("resourceVersion")
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|v| *v > 0);
    let params = WatchParams {
        from,
        namespace: ns.map(str::to_owned),
        labels: label_selector(q)?,
        fields: field_selector(q)?,
        bookmarks: flag(q, "allowWatchBookmarks"),
        send_initial_events: flag(q, "sendInitialEvents"),
        timeout: q
            .get("timeoutSeconds")
            .and_then(|t| t.parse().ok())
            .map(Duration::from_secs),
        format,
    };
    let stream = watch::watch(server.clone(), rt, params);
    let mut response = Response::new(Body::from_stream(stream));
    response
        .headers_mut()
        .insert("content-type", "application/json".parse().expect("static"));
    response
        .headers_mut()
        .insert("transfer-encoding", "chunked".parse().expect("static"));
    Ok(response)
}
