//! HTTP plumbing for the daemon: bodies, JSON replies, Docker's error
//! shape, query strings, and the route table.

use super::Daemon;
use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde::Serialize;
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

pub type Body = BoxBody<Bytes, Infallible>;

pub use crate::api::ApiError;

pub type ApiResult = Result<Response<Body>, ApiError>;

pub fn full(status: StatusCode, bytes: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(Full::new(bytes.into()).boxed());
    *r.status_mut() = status;
    r
}

pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    let mut r = full(
        status,
        serde_json::to_vec(value).expect("API values serialise"),
    );
    r.headers_mut()
        .insert("Content-Type", "application/json".parse().unwrap());
    r
}

pub fn empty(status: StatusCode) -> Response<Body> {
    full(status, Bytes::new())
}

fn error_response(e: ApiError) -> Response<Body> {
    json(
        e.status,
        &crate::api::ErrorBody {
            message: e.message,
            kind: e.kind,
        },
    )
}

/// The query string as a map (`a=1&b=x%20y`).
pub fn query(req: &Request<Incoming>) -> HashMap<String, String> {
    req.uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

/// Every value of a repeated query parameter (`t=a&t=b`), in order.
pub fn query_all(req: &Request<Incoming>, key: &str) -> Vec<String> {
    req.uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|p| p.split_once('='))
        .filter(|(k, _)| decode(k) == key)
        .map(|(_, v)| decode(v))
        .collect()
}

/// A query flag as Docker reads it: `1`, `true`, `True` are true.
pub fn flag(q: &HashMap<String, String>, key: &str) -> bool {
    q.get(key)
        .is_some_and(|v| matches!(v.as_str(), "1" | "true" | "True"))
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Writes a request body (an archive, a build context) to `file` as it
/// arrives; `what` names it in the error.
pub async fn spool(
    req: Request<Incoming>,
    file: &mut impl std::io::Write,
    what: &str,
) -> Result<(), ApiError> {
    let mut body = req.into_body();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ApiError::bad_request(format!("reading the {what}: {e}")))?;
        if let Some(data) = frame.data_ref() {
            file.write_all(data)?;
        }
    }
    Ok(())
}

/// Reads a JSON request body (at most 4 MiB); an empty body is `T::default()`.
pub async fn body_json<T>(req: Request<Incoming>) -> Result<T, ApiError>
where
    T: for<'de> serde::Deserialize<'de> + Default,
{
    let bytes = Limited::new(req.into_body(), 4 << 20)
        .collect()
        .await
        .map_err(|e| ApiError::bad_request(format!("reading the request body: {e}")))?
        .to_bytes();
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON in the request body: {e}")))
}

// ANCHOR: strip_version
// exercise 6.1: remove the API version prefix from a request path
// hint: Docker clients call /v1.41/containers/json, or /containers/json when
//   they do not pin a version: the router sees the path after the prefix, so
//   one table of routes serves every version the engine speaks.
// hint: The prefix is "/v" and a version made of dot-separated numbers, up to
//   the next '/'. Anything else is a path of its own and stays as it is:
//   "/volumes/x", "/vx/y", "/v1.41" (no '/' after it).
// hint: The Docker Engine API reference, "Versioning" ("/v1.41/info").
/// `/v1.41/containers/json` → `/containers/json`: clients may name the API
/// version they speak; we answer every version from MIN_API_VERSION up.
pub fn strip_version(path: &str) -> &str {
    match path.strip_prefix("/v") {
        Some(rest) => match rest.find('/') {
            Some(i) if rest[..i].split('.').all(|p| p.parse::<u32>().is_ok()) => &rest[i..],
            _ => path,
        },
        None => path,
    }
}
// ANCHOR_END: strip_version

/// Log every request and its status (`mini-dockerd --debug`).
pub static DEBUG: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Dispatches one request. A handler that panics (in a learner workspace:
/// an exercise not solved yet) answers 500 with the panic's message, one line
/// the client prints, instead of dropping the connection.
pub async fn route(d: Arc<Daemon>, req: Request<Incoming>) -> Response<Body> {
    use futures::FutureExt;
    match std::panic::AssertUnwindSafe(dispatch(d, req))
        .catch_unwind()
        .await
    {
        Ok(response) => response,
        Err(panic) => {
            let text = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("the handler panicked");
            let message = match chapter_01::course::unsolved(text) {
                Some(id) => chapter_01::course::unsolved_line(id),
                None => format!("internal error: {text}"),
            };
            error_response(ApiError::internal(message))
        }
    }
}

async fn dispatch(d: Arc<Daemon>, req: Request<Incoming>) -> Response<Body> {
    let method = req.method().clone();
    let shown = req.uri().to_string();
    let path = strip_version(req.uri().path()).to_string();
    // Names in paths may be percent-encoded (`fixture%3Av2`).
    let decoded: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .map(|p| decode(&p.replace('+', "%2B")))
        .collect();
    let parts: Vec<&str> = decoded.iter().map(String::as_str).collect();
    let m = method.as_str();
    let result = match (m, parts.as_slice()) {
        ("GET" | "HEAD", ["_ping"]) => Ok(ping(m == "HEAD")),
        ("GET", ["system", "df"]) => d.system_df(),
        ("GET", ["events"]) => d.events(&query(&req)),
        ("GET", ["version"]) => Ok(json(StatusCode::OK, &d.version())),
        ("GET", ["info"]) => d.info().map(|v| json(StatusCode::OK, &v)),
        ("POST", ["images", "create"]) => d.pull(req).await,
        ("POST", ["images", "load"]) => d.load(req).await,
        ("GET", ["images", "json"]) => d.images(&query(&req)).map(|v| json(StatusCode::OK, &v)),
        ("GET", ["images", "get"]) => {
            d.save(
                query_all(&req, "names"),
                query(&req).get("format").is_some_and(|f| f == "oci"),
            )
            .await
        }
        ("GET", ["images", name @ .., "json"]) => d.image_inspect(&name.join("/")),
        ("GET", ["images", name @ .., "history"]) => d.history(&name.join("/")),
        ("GET", ["images", name @ .., "get"]) => {
            let oci = query(&req).get("format").is_some_and(|f| f == "oci");
            d.save(vec![name.join("/")], oci).await
        }
        ("POST", ["images", name @ .., "push"]) => d.push(&name.join("/"), req).await,
        ("POST", ["images", name @ .., "tag"]) => d.tag(&name.join("/"), &query(&req)),
        ("DELETE", ["images", name @ ..]) if !name.is_empty() => {
            d.rmi(&name.join("/"), &query(&req)).await
        }
        ("POST", ["images", "prune"]) => d.image_prune(&query(&req)).await,
        ("POST", ["containers", "create"]) => d.create(req).await,
        ("GET", ["containers", "json"]) => d.list(&query(&req)),
        ("POST", ["containers", "prune"]) => d.container_prune().await,
        ("GET", ["containers", id, "json"]) => d.inspect(id),
        ("POST", ["containers", id, "start"]) => d.clone().start(id).await,
        ("POST", ["containers", id, "attach"]) => d.attach(id, req),
        ("POST", ["containers", id, "wait"]) => d.wait(id, &query(&req)).await,
        ("POST", ["containers", id, "stop"]) => d.stop(id, &query(&req)).await,
        ("POST", ["containers", id, "restart"]) => d.clone().restart(id, &query(&req)).await,
        ("POST", ["containers", id, "rename"]) => d.rename(id, &query(&req)),
        ("POST", ["containers", id, "pause"]) => d.pause(id, true),
        ("POST", ["containers", id, "unpause"]) => d.pause(id, false),
        ("GET", ["containers", id, "top"]) => d.top(id),
        ("POST", ["containers", id, "update"]) => d.update(id, req).await,
        // Not in a swarm: Docker's answer, which clients take as "no swarm".
        (_, ["swarm" | "services" | "nodes" | "secrets" | "configs" | "tasks", ..]) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again.",
        )),
        ("GET", ["plugins"]) => Ok(json(StatusCode::OK, &serde_json::json!([]))),
        ("POST", ["containers", id, "kill"]) => d.kill(id, &query(&req)).await,
        ("POST", ["containers", id, "resize"]) => d.resize(id, &query(&req)).await,
        ("GET", ["containers", id, "logs"]) => d.logs(id, &query(&req)),
        ("GET", ["containers", id, "stats"]) => d.stats(id),
        ("GET", ["containers", id, "changes"]) => d.changes(id),
        ("GET", ["containers", id, "export"]) => d.export(id).await,
        ("HEAD" | "GET" | "PUT", ["containers", id, "archive"]) => d.archive(id, req).await,
        ("POST", ["commit"]) => d.commit(req).await,
        ("POST", ["build"]) => d.build(req).await,
        ("DELETE", ["containers", id]) => d.remove(id, &query(&req)).await,
        ("POST", ["containers", id, "exec"]) => d.exec_create(id, req).await,
        ("POST", ["exec", id, "start"]) => d.clone().exec_start(id, req).await,
        ("POST", ["exec", id, "resize"]) => d.exec_resize(id, &query(&req)),
        ("GET", ["exec", id, "json"]) => d.exec_inspect(id),
        ("GET", ["networks"]) => d.network_list(&query(&req)),
        ("GET", ["networks", id]) => d.network_inspect(id),
        ("POST", ["networks", "create"]) => d.network_create(req).await,
        ("POST", ["networks", "prune"]) => d.network_prune().await,
        ("DELETE", ["networks", id]) => d.network_remove(id).await,
        ("POST", ["networks", id, "connect"]) => d.network_connect(id, req, true).await,
        ("POST", ["networks", id, "disconnect"]) => d.network_connect(id, req, false).await,
        ("POST", ["volumes", "create"]) => d.volume_create(req).await,
        ("POST", ["volumes", "prune"]) => d.volume_prune(),
        ("GET", ["volumes"]) => d.volume_list(&query(&req)),
        ("GET", ["volumes", name]) => d.volume_inspect(name),
        ("DELETE", ["volumes", name]) => d.volume_remove(name, &query(&req)),
        _ => Err(ApiError::not_found(format!(
            "page not found: {m} {path} is not part of this engine's API"
        ))),
    };
    let mut response = result.unwrap_or_else(error_response);
    let headers = response.headers_mut();
    headers.insert("Api-Version", crate::api::API_VERSION.parse().unwrap());
    headers.insert("Server", "mini-docker/0.1.0 (linux)".parse().unwrap());
    headers.insert("Ostype", "linux".parse().unwrap());
    if DEBUG.load(std::sync::atomic::Ordering::Relaxed) {
        eprintln!("{method} {shown} -> {}", response.status().as_u16());
    }
    response
}

fn ping(head: bool) -> Response<Body> {
    let mut r = full(StatusCode::OK, if head { "" } else { "OK" });
    let h = r.headers_mut();
    h.insert("Docker-Experimental", "false".parse().unwrap());
    h.insert("Builder-Version", "1".parse().unwrap());
    h.insert(
        "Cache-Control",
        "no-cache, no-store, must-revalidate".parse().unwrap(),
    );
    r
}

/// A response that hands the connection over (`101 UPGRADED`), as
/// Docker's attach and exec do: after it, the socket carries raw
/// (TTY) or multiplexed (no TTY) stream bytes in both directions.
pub fn upgraded(tty: bool) -> Response<Body> {
    let mut r = empty(StatusCode::SWITCHING_PROTOCOLS);
    let h = r.headers_mut();
    h.insert("Connection", "Upgrade".parse().unwrap());
    h.insert("Upgrade", "tcp".parse().unwrap());
    let kind = if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    };
    h.insert("Content-Type", kind.parse().unwrap());
    r
}

/// A tar file (an anonymous temporary one, say) sent as the body.
pub fn stream_file(file: std::fs::File) -> Response<Body> {
    let (mut tx, response) = streaming(StatusCode::OK, "application/x-tar");
    tokio::spawn(async move {
        let mut file = tokio::fs::File::from_std(file);
        let mut buf = vec![0u8; 256 * 1024];
        use tokio::io::AsyncReadExt;
        while let Ok(n) = file.read(&mut buf).await {
            if n == 0
                || tx
                    .send_data(Bytes::copy_from_slice(&buf[..n]))
                    .await
                    .is_err()
            {
                break;
            }
        }
    });
    response
}

/// A streamed body: the returned sender writes chunks as they happen.
pub fn streaming(
    status: StatusCode,
    content_type: &str,
) -> (http_body_util::channel::Sender<Bytes>, Response<Body>) {
    let (tx, body) = http_body_util::channel::Channel::<Bytes>::new(32);
    let mut r = Response::new(body.boxed());
    *r.status_mut() = status;
    r.headers_mut()
        .insert("Content-Type", content_type.parse().unwrap());
    (tx, r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(decode("a%2Fb+c"), "a/b c");
        assert_eq!(decode("100%"), "100%");
    }
}
