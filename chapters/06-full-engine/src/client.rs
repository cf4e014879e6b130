//! The client side of the Engine API, for `mini-docker`: HTTP/1.1 over
//! the daemon's unix socket (hyper's client), plain requests, streamed
//! responses, and hijacked connections for attach and exec.

use crate::api;
use anyhow::{anyhow, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::path::PathBuf;

pub struct Client {
    pub socket: PathBuf,
}

pub use crate::api::ApiError;

/// `unix:///run/mini-docker.sock` or a plain path → the socket path.
pub fn socket_path(host: &str) -> Result<PathBuf> {
    match host.strip_prefix("unix://") {
        Some(p) => Ok(PathBuf::from(p)),
        None if host.starts_with('/') => Ok(PathBuf::from(host)),
        None => Err(anyhow!(
            "unsupported host {host:?}: this engine listens on a unix socket, e.g. unix:///run/mini-docker.sock"
        )),
    }
}

impl ApiError {
    /// An error reply: Docker's `{"message": …}`, else the body as text,
    /// else `fallback`.
    fn from_reply(status: StatusCode, bytes: &[u8], fallback: impl FnOnce() -> String) -> ApiError {
        let body = serde_json::from_slice::<crate::api::ErrorBody>(bytes).ok();
        let kind = body.as_ref().and_then(|b| b.kind);
        let message = body
            .map(|b| b.message)
            .or_else(|| (!bytes.is_empty()).then(|| String::from_utf8_lossy(bytes).into_owned()))
            .unwrap_or_else(fallback);
        ApiError {
            status,
            message,
            kind,
        }
    }
}

impl Client {
    pub fn new(socket: PathBuf) -> Client {
        Client { socket }
    }

    async fn send(&self, req: Request<Full<Bytes>>) -> Result<Response<Incoming>> {
        let stream = tokio::net::UnixStream::connect(&self.socket).await.map_err(|e| {
            anyhow!(
                "cannot connect to mini-dockerd at unix://{} ({e}). Is the daemon running? Start it with `sudo mini-dockerd`, or as yourself (rootless) with `mini-dockerd` (or `cargo run -p chapter-06 --bin mini-dockerd`), or point -H / MINI_DOCKER_HOST at its socket",
                self.socket.display()
            )
        })?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        sender
            .send_request(req)
            .await
            .context("talking to mini-dockerd")
    }

    fn build(method: &str, path: &str, body: Bytes, content_type: &str) -> Request<Full<Bytes>> {
        Request::builder()
            .method(method)
            .uri(format!(
                "http://mini-docker/v{}{path}",
                crate::api::API_VERSION
            ))
            .header("Host", "mini-docker")
            .header("Content-Type", content_type)
            .body(Full::new(body))
            .expect("a valid request")
    }

    fn build_json(method: &str, path: &str, body: Option<&Value>) -> Request<Full<Bytes>> {
        let bytes = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        Self::build(method, path, bytes, "application/json")
    }

    /// Sends a request and reads the whole reply; an error status becomes
    /// an [`ApiError`] with the daemon's message.
    async fn exchange(&self, req: Request<Full<Bytes>>) -> Result<(StatusCode, Bytes)> {
        let response = self.send(req).await?;
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        if status.is_client_error() || status.is_server_error() {
            return Err(ApiError::from_reply(status, &bytes, || status.to_string()).into());
        }
        Ok((status, bytes))
    }

    /// A JSON request whose whole reply is read.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Bytes)> {
        self.exchange(Self::build_json(method, path, body)).await
    }

    /// A POST whose body is not JSON (an image archive for `load`).
    pub async fn post_bytes(&self, path: &str, body: Vec<u8>, content_type: &str) -> Result<Bytes> {
        let (_, reply) = self
            .exchange(Self::build("POST", path, Bytes::from(body), content_type))
            .await?;
        Ok(reply)
    }

    pub async fn json(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value> {
        let (_, bytes) = self.call(method, path, body).await?;
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        Ok(serde_json::from_slice(&bytes)?)
    }

    /// A request whose reply body arrives over time (pull, logs, wait).
    pub async fn stream(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Incoming> {
        let response = self.send(Self::build_json(method, path, body)).await?;
        let status = response.status();
        if status.is_client_error() || status.is_server_error() {
            let bytes = response.into_body().collect().await?.to_bytes();
            return Err(ApiError::from_reply(status, &bytes, || status.to_string()).into());
        }
        Ok(response.into_body())
    }

    /// A streamed reply to a request with any body and extra headers
    /// (build sends a tar, push its registry credentials).
    pub async fn stream_with(
        &self,
        path: &str,
        body: Vec<u8>,
        content_type: &str,
        headers: &[(&str, String)],
    ) -> Result<Incoming> {
        let mut req = Self::build("POST", path, Bytes::from(body), content_type);
        for (name, value) in headers {
            req.headers_mut().insert(
                hyper::header::HeaderName::from_bytes(name.as_bytes())?,
                value.parse()?,
            );
        }
        let response = self.send(req).await?;
        let status = response.status();
        if status.is_client_error() || status.is_server_error() {
            let bytes = response.into_body().collect().await?.to_bytes();
            return Err(ApiError::from_reply(status, &bytes, || status.to_string()).into());
        }
        Ok(response.into_body())
    }

    /// Any request with a raw body; the reply's headers and body (an error
    /// status becomes an [`ApiError`]). `docker cp` reads a header.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<Response<Incoming>> {
        let response = self
            .send(Self::build(method, path, Bytes::from(body), content_type))
            .await?;
        let status = response.status();
        if status.is_client_error() || status.is_server_error() {
            let bytes = response.into_body().collect().await?.to_bytes();
            return Err(ApiError::from_reply(status, &bytes, || status.to_string()).into());
        }
        Ok(response)
    }

    /// A hijacked connection (attach, exec start): after `101`, the socket
    /// is a raw byte stream both ways.
    pub async fn hijack(
        &self,
        path: &str,
        body: Option<&Value>,
    ) -> Result<TokioIo<hyper::upgrade::Upgraded>> {
        let mut req = Self::build_json("POST", path, body);
        req.headers_mut().insert("Connection", "Upgrade".parse()?);
        req.headers_mut().insert("Upgrade", "tcp".parse()?);
        let mut response = self.send(req).await?;
        if response.status() != StatusCode::SWITCHING_PROTOCOLS {
            let status = response.status();
            let bytes = response.into_body().collect().await?.to_bytes();
            return Err(ApiError::from_reply(status, &bytes, || {
                format!("the daemon did not upgrade the connection ({status})")
            })
            .into());
        }
        let upgraded = hyper::upgrade::on(&mut response).await?;
        Ok(TokioIo::new(upgraded))
    }
}

/// The typed calls: each takes and returns the API's structs
/// ([`crate::api`]), so a field the daemon renames is a compile error here,
/// not an empty column in `ps`.
impl Client {
    /// A JSON request with a typed body (or none) and a typed reply; an
    /// empty reply reads as `T`'s default.
    pub async fn typed<B: serde::Serialize, T: serde::de::DeserializeOwned + Default>(
        &self,
        method: &str,
        path: &str,
        body: Option<&B>,
    ) -> Result<T> {
        let body = body.map(serde_json::to_value).transpose()?;
        let (_, bytes) = self.call(method, path, body.as_ref()).await?;
        if bytes.is_empty() {
            return Ok(T::default());
        }
        serde_json::from_slice(&bytes)
            .with_context(|| format!("reading the daemon's reply to {method} {path}"))
    }

    pub async fn version(&self) -> Result<api::VersionInfo> {
        self.typed::<(), _>("GET", "/version", None).await
    }

    /// `query` is the list's query string (`all=1&filters=…`).
    pub async fn containers(&self, query: &str) -> Result<Vec<api::ContainerSummary>> {
        self.typed::<(), _>("GET", &format!("/containers/json?{query}"), None)
            .await
    }

    pub async fn create_container(
        &self,
        query: &str,
        request: &api::CreateRequest,
    ) -> Result<api::CreateResponse> {
        self.typed(
            "POST",
            &format!("/containers/create?{query}"),
            Some(request),
        )
        .await
    }

    pub async fn top(&self, container: &str) -> Result<api::TopResponse> {
        self.typed::<(), _>("GET", &format!("/containers/{}/top", enc(container)), None)
            .await
    }

    pub async fn create_exec(
        &self,
        container: &str,
        config: &api::ExecConfig,
    ) -> Result<api::IdResponse> {
        self.typed(
            "POST",
            &format!("/containers/{}/exec", enc(container)),
            Some(config),
        )
        .await
    }

    pub async fn container(&self, name: &str) -> Result<api::ContainerView> {
        self.typed::<(), _>("GET", &format!("/containers/{}/json", enc(name)), None)
            .await
    }

    pub async fn networks(&self) -> Result<Vec<api::NetworkSummary>> {
        self.typed::<(), _>("GET", "/networks", None).await
    }

    pub async fn volumes(&self) -> Result<api::VolumeList> {
        self.typed::<(), _>("GET", "/volumes", None).await
    }

    /// `POST {what}/prune{query}` (`/containers`, `/networks`, `/images`).
    pub async fn prune(&self, what: &str, query: &str) -> Result<api::PruneReport> {
        self.typed::<(), _>("POST", &format!("{what}/prune{query}"), None)
            .await
    }

    pub async fn exec_inspect(&self, exec: &str) -> Result<api::ExecInspect> {
        self.typed::<(), _>("GET", &format!("/exec/{}/json", enc(exec)), None)
            .await
    }

    /// `query` is the list's query string (`filters=…`).
    pub async fn images(&self, query: &str) -> Result<Vec<api::ImageSummary>> {
        self.typed::<(), _>("GET", &format!("/images/json?{query}"), None)
            .await
    }

    pub async fn history(&self, image: &str) -> Result<Vec<api::HistoryEntry>> {
        self.typed::<(), _>("GET", &format!("/images/{}/history", enc(image)), None)
            .await
    }

    pub async fn connect(&self, network: &str, request: &api::NetworkConnect) -> Result<()> {
        let path = format!("/networks/{}/connect", enc(network));
        self.call("POST", &path, Some(&serde_json::to_value(request)?))
            .await
            .map(|_| ())
    }
}

/// A path segment or query value, percent-encoded (RFC 3986 unreserved
/// characters stay).
pub fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Reads a whole streamed body as chunks, calling `f` for each.
pub async fn each_chunk(mut body: Incoming, mut f: impl FnMut(&[u8])) -> Result<()> {
    while let Some(frame) = body.frame().await {
        if let Some(data) = frame?.data_ref() {
            f(data);
        }
    }
    Ok(())
}
