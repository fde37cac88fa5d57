//! A fake of Google Cloud Storage's XML API — exactly the surface `object_store`'s GCS
//! client uses, and nothing more. No emulator in the package registries speaks it
//! (`gcp-storage-emulator` and `fake-gcs-server` fail on XML multipart uploads and
//! preconditions), so tests of `gs://` run against this. It is a **fake**, not GCS: see
//! `docs/storage.md` for what it covers.
//!
//! Covered, with GCS's semantics:
//! - objects: `PUT` (with `x-goog-if-generation-match`: `0` = only if absent, `N` = only if
//!   the live generation is N), `GET`/`HEAD` (ranges incl. suffix and open ranges,
//!   `?generation=` for earlier generations, `If-Match`, `If-None-Match`,
//!   `If-Modified-Since`, `If-Unmodified-Since`), `DELETE`;
//! - `x-goog-generation` and `ETag` on every object response; `Content-Type`,
//!   `Cache-Control`, `Content-Disposition`, `Content-Encoding`, `Content-Language`,
//!   `x-goog-storage-class` and `x-goog-meta-*` stored and returned;
//! - copies (`x-goog-copy-source`, with `x-goog-if-generation-match: 0`);
//! - XML multipart uploads (`POST ?uploads`, `PUT ?partNumber&uploadId`,
//!   `POST ?uploadId` with the part list, `DELETE ?uploadId`);
//! - listing (`GET /bucket?list-type=2` with `prefix`, `delimiter`, `max-keys`,
//!   `continuation-token`, `start-after`), the S3-style XML GCS returns.
//!
//! Not covered: authentication (requests carry no token: the client runs with
//! `disable_oauth`), signed URLs, buckets' own API (buckets are made with
//! [`FakeGcs::create_bucket`]), object ACLs, composition, the JSON API.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

mod list;
mod read;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

#[derive(Clone)]
struct Object {
    data: Bytes,
    generation: u64,
    modified: jiff::Timestamp,
    headers: Vec<(String, String)>,
}

impl Object {
    fn etag(&self) -> String {
        format!("\"{:08x}-{}\"", crc(&self.data), self.generation)
    }
}

fn crc(data: &[u8]) -> u32 {
    // FNV-1a: enough to tell contents apart in ETags.
    let mut h: u32 = 0x811c_9dc5;
    for b in data {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

struct Upload {
    bucket: String,
    key: String,
    headers: Vec<(String, String)>,
    parts: BTreeMap<u32, Bytes>,
}

#[derive(Default)]
struct Store {
    /// bucket → key → generations (the last is live unless `deleted`).
    buckets: BTreeMap<String, BTreeMap<String, Vec<Object>>>,
    uploads: HashMap<String, Upload>,
    next_generation: u64,
    next_upload: u64,
}

impl Store {
    fn live(&self, bucket: &str, key: &str) -> Option<&Object> {
        self.buckets
            .get(bucket)?
            .get(key)?
            .last()
            .filter(|o| o.generation != 0)
    }

    fn generation(&mut self) -> u64 {
        // Microsecond timestamps, like GCS, kept strictly increasing.
        let now = jiff::Timestamp::now().as_microsecond() as u64;
        self.next_generation = now.max(self.next_generation + 1);
        self.next_generation
    }

    fn insert(
        &mut self,
        bucket: &str,
        key: &str,
        data: Bytes,
        headers: Vec<(String, String)>,
    ) -> Object {
        let generation = self.generation();
        let object = Object {
            data,
            generation,
            modified: jiff::Timestamp::now(),
            headers,
        };
        let versions = self
            .buckets
            .entry(bucket.to_owned())
            .or_default()
            .entry(key.to_owned())
            .or_default();
        versions.push(object.clone());
        // Keep a bounded history of earlier generations.
        let excess = versions.len().saturating_sub(8);
        versions.drain(..excess);
        object
    }
}

/// A running fake; stops when dropped.
pub struct FakeGcs {
    addr: SocketAddr,
    store: Arc<Mutex<Store>>,
    server: Mutex<
        Option<(
            tokio::sync::oneshot::Sender<()>,
            std::thread::JoinHandle<()>,
        )>,
    >,
}

impl FakeGcs {
    /// Starts the fake on a free port of 127.0.0.1.
    pub fn start() -> std::io::Result<FakeGcs> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let fake = FakeGcs {
            addr,
            store: Arc::new(Mutex::new(Store::default())),
            server: Mutex::new(None),
        };
        fake.serve(listener)?;
        Ok(fake)
    }

    /// The base URL to give the client (`endpoint` storage option).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Makes a bucket.
    pub fn create_bucket(&self, name: &str) {
        self.store
            .lock()
            .expect("store")
            .buckets
            .entry(name.to_owned())
            .or_default();
    }

    /// Stops answering (connections are refused) but keeps every object.
    pub fn stop(&self) {
        if let Some((tx, thread)) = self.server.lock().expect("server").take() {
            let _ = tx.send(());
            let _ = thread.join();
        }
    }

    /// Starts answering again on the same port, with the same objects.
    pub fn restart(&self) -> std::io::Result<()> {
        self.stop();
        let listener = std::net::TcpListener::bind(self.addr)?;
        self.serve(listener)
    }

    fn serve(&self, listener: std::net::TcpListener) -> std::io::Result<()> {
        listener.set_nonblocking(true)?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let store = self.store.clone();
        let thread = std::thread::Builder::new()
            .name("fake-gcs".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("runtime");
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                    let app = Router::new()
                        .fallback(handle)
                        .layer(DefaultBodyLimit::disable())
                        .with_state(store);
                    let _ = axum::serve(listener, app)
                        .with_graceful_shutdown(async move {
                            let _ = rx.await;
                        })
                        .await;
                });
                // Dropping the runtime cancels connections still open: a stopped server.
                runtime.shutdown_background();
            })?;
        *self.server.lock().expect("server") = Some((tx, thread));
        Ok(())
    }
}

impl Drop for FakeGcs {
    fn drop(&mut self) {
        self.stop();
    }
}

type Shared = Arc<Mutex<Store>>;

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = format!(
        "<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code><Message>{}</Message></Error>",
        xml_escape(message)
    );
    (status, [("content-type", "application/xml")], body).into_response()
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

fn decode(s: &str) -> String {
    form_urlencoded::parse(format!("k={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The headers GCS keeps with an object.
fn kept_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (name, value) in headers {
        let n = name.as_str();
        let keep = matches!(
            n,
            "content-type"
                | "cache-control"
                | "content-disposition"
                | "content-encoding"
                | "content-language"
                | "x-goog-storage-class"
        ) || n.starts_with("x-goog-meta-");
        if keep && let Ok(v) = value.to_str() {
            out.push((n.to_owned(), v.to_owned()));
        }
    }
    if !out.iter().any(|(n, _)| n == "content-type") {
        out.push(("content-type".into(), "application/octet-stream".into()));
    }
    out
}

fn object_headers(o: &Object, response: &mut Response) {
    let h = response.headers_mut();
    for (n, v) in &o.headers {
        if let (Ok(n), Ok(v)) = (
            axum::http::HeaderName::try_from(n.as_str()),
            HeaderValue::from_str(v),
        ) {
            h.insert(n, v);
        }
    }
    let put = |h: &mut HeaderMap, n: &'static str, v: String| {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(n, v);
        }
    };
    put(h, "etag", o.etag());
    put(h, "x-goog-generation", o.generation.to_string());
    put(
        h,
        "last-modified",
        jiff::fmt::rfc2822::DateTimePrinter::new()
            .timestamp_to_rfc9110_string(&o.modified)
            .unwrap_or_default(),
    );
    put(h, "accept-ranges", "bytes".into());
}

fn parse_date(s: &str) -> Option<jiff::Timestamp> {
    jiff::fmt::rfc2822::DateTimeParser::new()
        .parse_timestamp(s)
        .ok()
}

async fn handle(
    State(store): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().trim_start_matches('/');
    let (bucket, key) = match path.split_once('/') {
        Some((b, k)) => (decode(b), decode(k)),
        None => (decode(path), String::new()),
    };
    let query: HashMap<String, String> = uri
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let mut s = store.lock().expect("store");
    if !s.buckets.contains_key(&bucket) {
        return error(
            StatusCode::NOT_FOUND,
            "NoSuchBucket",
            "The specified bucket does not exist.",
        );
    }
    if key.is_empty() {
        return match method {
            Method::GET => list::list(&s, &bucket, &query),
            _ => error(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                "bucket operations are not faked",
            ),
        };
    }
    match method {
        Method::GET | Method::HEAD => {
            read::get(&s, &bucket, &key, &query, &headers, method == Method::HEAD)
        }
        Method::PUT if query.contains_key("uploadId") => {
            let Some(upload) = s.uploads.get_mut(&query["uploadId"]) else {
                return error(StatusCode::NOT_FOUND, "NoSuchUpload", "no such upload");
            };
            let Ok(n) = query
                .get("partNumber")
                .map_or("", String::as_str)
                .parse::<u32>()
            else {
                return error(StatusCode::BAD_REQUEST, "InvalidArgument", "bad partNumber");
            };
            let etag = format!("\"{:08x}-{n}\"", crc(&body));
            upload.parts.insert(n, body);
            let mut r = StatusCode::OK.into_response();
            if let Ok(v) = HeaderValue::from_str(&etag) {
                r.headers_mut().insert("etag", v);
            }
            r
        }
        Method::PUT => {
            let live = s.live(&bucket, &key).map(|o| o.generation);
            if let Some(m) = header(&headers, "x-goog-if-generation-match") {
                let ok = match m.parse::<u64>() {
                    Ok(0) => live.is_none(),
                    Ok(g) => live == Some(g),
                    Err(_) => false,
                };
                if !ok {
                    return error(
                        StatusCode::PRECONDITION_FAILED,
                        "PreconditionFailed",
                        "At least one of the pre-conditions you specified did not hold.",
                    );
                }
            }
            let (data, kept) = if let Some(source) = header(&headers, "x-goog-copy-source") {
                let (b, k) = source.split_once('/').unwrap_or((source, ""));
                let Some(src) = s.live(&decode(b), &decode(k)) else {
                    return error(
                        StatusCode::NOT_FOUND,
                        "NoSuchKey",
                        "The specified key does not exist.",
                    );
                };
                (src.data.clone(), src.headers.clone())
            } else {
                (body, kept_headers(&headers))
            };
            let o = s.insert(&bucket, &key, data, kept);
            let mut r = StatusCode::OK.into_response();
            object_headers(&o, &mut r);
            r
        }
        Method::POST if query.contains_key("uploads") => {
            s.next_upload += 1;
            let n = s.next_upload;
            let id = format!("upload-{n}-{}", s.generation());
            s.uploads.insert(
                id.clone(),
                Upload {
                    bucket: bucket.clone(),
                    key: key.clone(),
                    headers: kept_headers(&headers),
                    parts: BTreeMap::new(),
                },
            );
            let body = format!(
                "<?xml version='1.0' encoding='UTF-8'?><InitiateMultipartUploadResult xmlns='http://s3.amazonaws.com/doc/2006-03-01/'><Bucket>{}</Bucket><Key>{}</Key><UploadId>{id}</UploadId></InitiateMultipartUploadResult>",
                xml_escape(&bucket),
                xml_escape(&key)
            );
            (StatusCode::OK, [("content-type", "application/xml")], body).into_response()
        }
        Method::POST if query.contains_key("uploadId") => {
            let id = &query["uploadId"];
            let Some(upload) = s.uploads.get(id) else {
                return error(StatusCode::NOT_FOUND, "NoSuchUpload", "no such upload");
            };
            if upload.bucket != bucket || upload.key != key {
                return error(
                    StatusCode::BAD_REQUEST,
                    "InvalidArgument",
                    "upload is for another object",
                );
            }
            let text = String::from_utf8_lossy(&body);
            let mut data = Vec::new();
            for part in text.split("<Part>").skip(1) {
                let field = |name: &str| {
                    part.split(&format!("<{name}>"))
                        .nth(1)
                        .and_then(|r| r.split(&format!("</{name}>")).next())
                        .map(|v| v.replace("&quot;", "\""))
                };
                let n: Option<u32> = field("PartNumber").and_then(|n| n.parse().ok());
                let (Some(n), Some(etag)) = (n, field("ETag")) else {
                    return error(StatusCode::BAD_REQUEST, "MalformedXML", "bad part list");
                };
                let Some(bytes) = upload.parts.get(&n) else {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "InvalidPart",
                        "a listed part was never uploaded",
                    );
                };
                if etag != format!("\"{:08x}-{n}\"", crc(bytes)) {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "InvalidPart",
                        "a part's ETag does not match",
                    );
                }
                data.extend_from_slice(bytes);
            }
            let headers = upload.headers.clone();
            s.uploads.remove(id);
            let o = s.insert(&bucket, &key, Bytes::from(data), headers);
            let body = format!(
                "<?xml version='1.0' encoding='UTF-8'?><CompleteMultipartUploadResult xmlns='http://s3.amazonaws.com/doc/2006-03-01/'><Bucket>{}</Bucket><Key>{}</Key><ETag>{}</ETag></CompleteMultipartUploadResult>",
                xml_escape(&bucket),
                xml_escape(&key),
                xml_escape(&o.etag())
            );
            let mut r =
                (StatusCode::OK, [("content-type", "application/xml")], body).into_response();
            if let Ok(v) = HeaderValue::from_str(&o.generation.to_string()) {
                r.headers_mut().insert("x-goog-generation", v);
            }
            r
        }
        Method::DELETE if query.contains_key("uploadId") => {
            s.uploads.remove(&query["uploadId"]);
            StatusCode::NO_CONTENT.into_response()
        }
        Method::DELETE => {
            if s.live(&bucket, &key).is_none() {
                return error(
                    StatusCode::NOT_FOUND,
                    "NoSuchKey",
                    "The specified key does not exist.",
                );
            }
            // A tombstone generation 0 ends the live object; earlier generations stay.
            if let Some(versions) = s.buckets.get_mut(&bucket).and_then(|b| b.get_mut(&key)) {
                versions.push(Object {
                    data: Bytes::new(),
                    generation: 0,
                    modified: jiff::Timestamp::now(),
                    headers: Vec::new(),
                });
            }
            StatusCode::NO_CONTENT.into_response()
        }
        _ => error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "not faked",
        ),
    }
}
