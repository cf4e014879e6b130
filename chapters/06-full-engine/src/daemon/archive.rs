//! `HEAD`, `GET`, `PUT /containers/{id}/archive?path=…`: `docker cp`. The
//! work is done by the archive helper inside the container's root (see
//! [`crate::archive`]); this side spools an upload, starts the helper,
//! turns its reply into Docker's status and `X-Docker-Container-Path-Stat`
//! header, and streams the tar it writes.

use super::http::{self, ApiError, ApiResult};
use super::Daemon;
use crate::archive::{ArchiveSpec, Op, PathStat, Reply, Root};
use crate::state::Status;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncReadExt};

/// A stopped container's root is mounted by the helper: no start may
/// mount it meanwhile. Cleared when dropped.
struct Claim {
    d: Arc<Daemon>,
    id: String,
}

impl Drop for Claim {
    fn drop(&mut self) {
        let _ = self.d.entry(&self.id, |e| e.busy = false);
    }
}

impl Daemon {
    pub async fn archive(self: &Arc<Self>, query: &str, req: Request<Incoming>) -> ApiResult {
        let q = http::query(&req);
        let op = match req.method().as_str() {
            "HEAD" => Op::Stat,
            "GET" => Op::Get,
            _ => Op::Put {
                no_overwrite_dir_non_dir: http::flag(&q, "noOverwriteDirNonDir"),
                copy_uid_gid: http::flag(&q, "copyUIDGID"),
            },
        };
        let path = q
            .get("path")
            .filter(|p| !p.is_empty())
            .cloned()
            .ok_or_else(|| {
                ApiError::bad_request("a path is required: ?path=/a/path/in/the/container")
            })?;
        let id = self.find(query)?;
        // The upload first, spooled: the helper reads it twice (names
        // checked before anything is written).
        let upload = if matches!(op, Op::Put { .. }) {
            let mut file = tempfile::tempfile_in(self.store.root().join("ingest"))?;
            http::spool(req, &mut file, "archive").await?;
            use std::io::Seek;
            file.seek(std::io::SeekFrom::Start(0))?;
            Some(file)
        } else {
            None
        };
        let claimed = self.entry(&id, |e| {
            if e.state.status == Status::Running {
                Ok(None)
            } else if e.busy {
                Err(ApiError::conflict(format!(
                    "container {query} is being started or removed: try the copy again"
                )))
            } else {
                e.busy = true;
                Ok(Some(()))
            }
        })??;
        let (pid, userns) = self.entry(&id, |e| (e.state.pid, e.c.userns.is_some()))?;
        let claim = claimed.map(|()| Claim {
            d: self.clone(),
            id: id.clone(),
        });
        let root = match claim {
            None => Root::Running { pid, userns },
            Some(_) => Root::Stopped {
                engine_root: self.paths.root.clone(),
                id: id.clone(),
            },
        };
        let spec = ArchiveSpec {
            op: op.clone(),
            path: path.clone(),
            root,
        };
        let mut command = super::self_exe();
        command
            .arg("archive-helper")
            .arg(serde_json::to_string(&spec).expect("specs serialise"))
            .stdin(match upload {
                Some(file) => std::process::Stdio::from(file),
                None => std::process::Stdio::null(),
            })
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .map_err(|e| ApiError::internal(format!("starting the archive helper: {e}")))?;
        let mut stdout = tokio::io::BufReader::new(child.stdout.take().expect("piped"));
        let mut stderr = child.stderr.take().expect("piped");
        let mut line = String::new();
        stdout.read_line(&mut line).await?;
        if line.is_empty() {
            let mut why = String::new();
            let _ = stderr.read_to_string(&mut why).await;
            let _ = child.wait().await;
            let message = format!("copying {path} of container {query}: {}", why.trim());
            // A HEAD's reply has no body: the daemon's log says why.
            eprintln!("mini-dockerd: {message}");
            return Err(ApiError::internal(message));
        }
        let stat = match crate::archive::parse_reply(&line)
            .map_err(|e| ApiError::internal(e.to_string()))?
        {
            Reply::Ok(stat) => stat,
            Reply::Err { status: 404, .. } => {
                let _ = child.wait().await;
                return Err(ApiError::not_found(format!(
                    "Could not find the file {path} in container {query}"
                )));
            }
            Reply::Err { status, message } => {
                let _ = child.wait().await;
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
                return Err(ApiError::new(status, message));
            }
        };
        match op {
            Op::Stat => {
                let _ = child.wait().await;
                Ok(with_stat(http::empty(StatusCode::OK), &stat))
            }
            Op::Put { .. } => {
                let _ = child.wait().await;
                Ok(http::empty(StatusCode::OK))
            }
            Op::Get => {
                let (mut tx, response) = http::streaming(StatusCode::OK, "application/x-tar");
                tokio::spawn(async move {
                    let _claim = claim;
                    let mut buf = vec![0u8; 256 * 1024];
                    loop {
                        match stdout.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                if tx
                                    .send_data(Bytes::copy_from_slice(&buf[..n]))
                                    .await
                                    .is_err()
                                {
                                    let _ = child.kill().await;
                                    break;
                                }
                            }
                        }
                    }
                    let status = child.wait().await;
                    if !status.is_ok_and(|s| s.success()) {
                        let mut why = String::new();
                        let _ = stderr.read_to_string(&mut why).await;
                        if !why.is_empty() {
                            eprintln!("mini-dockerd: copying {path} out of {id}: {}", why.trim());
                        }
                        // The body ends short: the client's tar reader
                        // stops at a truncated archive.
                        drop(tx);
                    }
                });
                Ok(with_stat(response, &stat))
            }
        }
    }
}

fn with_stat(mut r: Response<http::Body>, stat: &PathStat) -> Response<http::Body> {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD
        .encode(serde_json::to_vec(stat).expect("stats serialise"));
    r.headers_mut().insert(
        "X-Docker-Container-Path-Stat",
        encoded.parse().expect("base64 is a header value"),
    );
    r
}
