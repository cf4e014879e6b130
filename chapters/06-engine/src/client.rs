//! The client side of the Engine API, for `mini-docker`: HTTP/1.1 over
//! the daemon's unix socket (hyper's client), plain requests, streamed
//! responses, and hijacked connections for attach and exec.

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

/// An API error reply: status and Docker's message.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.message)
    }
}

impl std::error::Error for ApiError {}

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

impl Client {
    pub fn new(socket: PathBuf) -> Client {
        Client { socket }
    }

    async fn send(
        &self,
        req: Request<Full<Bytes>>,
    ) -> Result<(Response<Incoming>, Option<tokio::task::JoinHandle<()>>)> {
        let stream = tokio::net::UnixStream::connect(&self.socket).await.map_err(|e| {
            anyhow!(
                "cannot connect to mini-dockerd at unix://{} ({e}). Is the daemon running? Start it with `sudo mini-dockerd` (or `cargo run -p chapter-06 --bin mini-dockerd`), or point -H / MINI_DOCKER_HOST at its socket",
                self.socket.display()
            )
        })?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        let task = tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        let response = sender
            .send_request(req)
            .await
            .context("talking to mini-dockerd")?;
        Ok((response, Some(task)))
    }

    fn build(method: &str, path: &str, body: Option<&Value>) -> Request<Full<Bytes>> {
        let bytes = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        Request::builder()
            .method(method)
            .uri(format!(
                "http://mini-docker/v{}{path}",
                crate::api::API_VERSION
            ))
            .header("Host", "mini-docker")
            .header("Content-Type", "application/json")
            .body(Full::new(bytes))
            .expect("a valid request")
    }

    /// A request whose whole reply is read; an error status becomes an
    /// [`ApiError`] with the daemon's message.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Bytes)> {
        let (response, _) = self.send(Self::build(method, path, body)).await?;
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        if status.is_client_error() || status.is_server_error() {
            let message = serde_json::from_slice::<Value>(&bytes)
                .ok()
                .and_then(|v| v["message"].as_str().map(String::from))
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
            return Err(ApiError { status, message }.into());
        }
        Ok((status, bytes))
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
        let (response, _) = self.send(Self::build(method, path, body)).await?;
        let status = response.status();
        if status.is_client_error() || status.is_server_error() {
            let bytes = response.into_body().collect().await?.to_bytes();
            let message = serde_json::from_slice::<Value>(&bytes)
                .ok()
                .and_then(|v| v["message"].as_str().map(String::from))
                .unwrap_or_default();
            return Err(ApiError { status, message }.into());
        }
        Ok(response.into_body())
    }

    /// A hijacked connection (attach, exec start): after `101`, the socket
    /// is a raw byte stream both ways.
    pub async fn hijack(
        &self,
        path: &str,
        body: Option<&Value>,
    ) -> Result<TokioIo<hyper::upgrade::Upgraded>> {
        let mut req = Self::build("POST", path, body);
        req.headers_mut().insert("Connection", "Upgrade".parse()?);
        req.headers_mut().insert("Upgrade", "tcp".parse()?);
        let (mut response, _) = self.send(req).await?;
        if response.status() != StatusCode::SWITCHING_PROTOCOLS {
            let status = response.status();
            let bytes = response.into_body().collect().await?.to_bytes();
            let message = serde_json::from_slice::<Value>(&bytes)
                .ok()
                .and_then(|v| v["message"].as_str().map(String::from))
                .unwrap_or_else(|| format!("the daemon did not upgrade the connection ({status})"));
            return Err(ApiError { status, message }.into());
        }
        let upgraded = hyper::upgrade::on(&mut response).await?;
        Ok(TokioIo::new(upgraded))
    }
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
