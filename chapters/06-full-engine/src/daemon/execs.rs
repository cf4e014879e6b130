//! Exec instances: `POST /containers/{id}/exec` records what to run,
//! `POST /exec/{id}/start` runs it (through the exec helper, see
//! [`crate::exec`]) on a hijacked connection, `GET /exec/{id}/json` tells
//! its exit code. Exec processes are children of the daemon.

use super::http::{self, json, ApiError, ApiResult};
use super::Daemon;
use crate::api::{ExecConfig, ExecStart};
use crate::exec::ExecSpec;
use crate::state::Status;
use crate::stdcopy::{frame, Stream};
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json as j;
use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub struct Exec {
    pub container: String,
    pub config: ExecConfig,
    pub spec: ExecSpec,
    pub running: bool,
    pub exit_code: Option<i32>,
    pub pid: i32,
    /// The pseudo-terminal master of a `-t` exec, for resizes.
    pub master: Option<Arc<OwnedFd>>,
}

impl Daemon {
    /// `POST /containers/{id}/exec`
    pub async fn exec_create(self: &Arc<Self>, query: &str, req: Request<Incoming>) -> ApiResult {
        let id = self.find(query)?;
        let config: ExecConfig = http::body_json(req).await?;
        super::containers::detach_keys(&config.detach_keys).map_err(ApiError::bad_request)?;
        if config.cmd.is_empty() {
            return Err(ApiError::bad_request("No exec command specified"));
        }
        let (c, state) = self
            .containers
            .lock()
            .unwrap()
            .get(&id)
            .map(|e| (e.c.clone(), e.state.clone()))
            .ok_or_else(|| ApiError::not_found(format!("No such container: {query}")))?;
        if state.status != Status::Running {
            return Err(ApiError::conflict(format!("Container {id} is not running")));
        }
        if super::containers::is_frozen(&state.cgroup_dirs) {
            return Err(ApiError::conflict(format!(
                "Container {id} is paused, unpause the container before exec"
            )));
        }
        let (uid, gid) = if config.user.is_empty() {
            (c.uid, c.gid)
        } else {
            // The running container's own files, seen through /proc.
            let root = std::path::PathBuf::from(format!("/proc/{}/root", state.pid));
            chapter_04::runconfig::resolve_user(&config.user, &root)
                .map_err(ApiError::bad_request)?
        };
        let mut env = c.env.clone();
        for var in config.env.clone().unwrap_or_default() {
            let key = var.split('=').next().unwrap_or("").to_string();
            env.retain(|e| e.split('=').next() != Some(key.as_str()));
            env.push(var);
        }
        let mut spec = self.exec_spec(&c, &state, config.cmd.clone());
        spec.env = env;
        if !config.working_dir.is_empty() {
            spec.workdir = config.working_dir.clone();
        }
        (spec.uid, spec.gid) = (uid, gid);
        spec.tty = config.tty;
        spec.privileged = config.privileged;
        let exec_id = crate::ids::new_id();
        self.execs.lock().unwrap().insert(
            exec_id.clone(),
            Exec {
                container: id,
                config,
                spec,
                running: false,
                exit_code: None,
                pid: 0,
                master: None,
            },
        );
        Ok(json(StatusCode::CREATED, &j!({"Id": exec_id})))
    }

    /// What an exec of `args` in the running container gets by default:
    /// the container's user, environment, working directory, hardening.
    pub(crate) fn exec_spec(
        &self,
        c: &crate::state::Container,
        state: &crate::state::State,
        args: Vec<String>,
    ) -> ExecSpec {
        ExecSpec {
            pid: state.pid,
            cgroup_dirs: state.cgroup_dirs.clone(),
            args,
            env: c.env.clone(),
            workdir: c.workdir.clone(),
            uid: c.uid,
            gid: c.gid,
            tty: false,
            console_size: None,
            host_config: c.host_config.clone(),
            confinement: c.confinement.clone(),
            privileged: false,
            userns: c.userns.is_some(),
            seccomp_cache: Some(self.paths.seccomp_cache()),
            groups: c.groups.clone(),
        }
    }

    /// `POST /exec/{id}/start`: detached, or on a hijacked connection.
    pub async fn exec_start(
        self: Arc<Self>,
        exec_id: &str,
        mut req: Request<Incoming>,
    ) -> ApiResult {
        let (spec, config) = {
            let mut execs = self.execs.lock().unwrap();
            let e = execs
                .get_mut(exec_id)
                .ok_or_else(|| ApiError::not_found(format!("No such exec instance: {exec_id}")))?;
            if e.running || e.exit_code.is_some() {
                return Err(ApiError::conflict(format!(
                    "exec {exec_id} has already run"
                )));
            }
            e.running = true;
            (e.spec.clone(), e.config.clone())
        };
        let on_upgrade = hyper::upgrade::on(&mut req);
        let start: ExecStart = http::body_json(req).await?;
        let tty = spec.tty;
        let mut spec = spec;
        spec.console_size = start
            .console_size
            .filter(|[h, w]| *h > 0 && *w > 0)
            .map(|[h, w]| (h, w));
        // With a TTY the helper makes the terminal inside the container and
        // sends its master back over this socket (on its CONSOLE_FD).
        let console = if tty {
            let (ours, theirs) = std::os::unix::net::UnixStream::pair()
                .map_err(|e| ApiError::internal(format!("creating the console socket: {e}")))?;
            Some((ours, theirs))
        } else {
            None
        };
        let mut command = super::self_exe();
        command
            .arg("exec-helper")
            .arg(serde_json::to_string(&spec).unwrap());
        match &console {
            Some((_, theirs)) => {
                let fd = theirs.as_raw_fd();
                command
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null());
                // SAFETY: dup2 is async-signal-safe; it runs between fork and exec.
                unsafe {
                    command.pre_exec(move || {
                        if libc::dup2(fd, crate::exec::CONSOLE_FD) < 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                        Ok(())
                    });
                }
            }
            None if start.detach => {
                command
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null());
            }
            None => {
                let piped = std::process::Stdio::piped;
                command
                    .stdin(if config.attach_stdin {
                        piped()
                    } else {
                        std::process::Stdio::null()
                    })
                    .stdout(piped())
                    .stderr(piped());
            }
        }
        let mut child = command
            .spawn()
            .map_err(|e| ApiError::internal(format!("starting the exec helper: {e}")))?;
        let master = match console {
            Some((ours, theirs)) => {
                drop(theirs);
                let received = tokio::task::spawn_blocking(move || {
                    chapter_01::console::receive_console(std::os::fd::AsRawFd::as_raw_fd(&ours))
                })
                .await
                .map_err(|e| ApiError::internal(e.to_string()))?;
                match received {
                    Ok(m) => Some(Arc::new(m)),
                    Err(e) => {
                        let _ = child.kill().await;
                        return Err(ApiError::internal(format!(
                            "the exec's terminal did not arrive: {e}"
                        )));
                    }
                }
            }
            None => None,
        };
        {
            let mut execs = self.execs.lock().unwrap();
            if let Some(e) = execs.get_mut(exec_id) {
                e.pid = child.id().unwrap_or(0) as i32;
                e.master = master.clone();
            }
        }
        let d = self.clone();
        let exec_id = exec_id.to_string();
        // Records the exit code; called before the stream is closed, so a
        // client that inspects the exec at end of stream finds it.
        let finish: Finish = Box::new(move |code: i32| {
            if let Some(e) = d.execs.lock().unwrap().get_mut(&exec_id) {
                e.running = false;
                e.exit_code = Some(code);
                e.master = None;
            }
        });
        if start.detach {
            tokio::spawn(async move {
                let status = child.wait().await;
                finish(exit_code(status));
            });
            return Ok(http::empty(StatusCode::OK));
        }
        // Only a client that sends stdin can send the detach keys.
        let keys = config
            .attach_stdin
            .then(|| super::containers::detach_keys(&config.detach_keys).unwrap_or_default());
        tokio::spawn(async move {
            let Ok(io) = on_upgrade.await else {
                let _ = child.kill().await;
                finish(137);
                return;
            };
            let io = TokioIo::new(io);
            match master {
                Some(m) => relay_tty(io, &mut child, m, keys, finish).await,
                None => relay_pipes(io, &mut child, keys, finish).await,
            }
        });
        Ok(http::upgraded(tty))
    }

    /// `GET /exec/{id}/json`
    pub fn exec_inspect(&self, exec_id: &str) -> ApiResult {
        let execs = self.execs.lock().unwrap();
        let e = execs
            .get(exec_id)
            .ok_or_else(|| ApiError::not_found(format!("No such exec instance: {exec_id}")))?;
        Ok(json(
            StatusCode::OK,
            &j!({
                "ID": exec_id,
                "ContainerID": e.container,
                "Running": e.running,
                "ExitCode": e.exit_code,
                "Pid": e.pid,
                "OpenStdin": e.config.attach_stdin,
                "OpenStdout": e.config.attach_stdout,
                "OpenStderr": e.config.attach_stderr,
                "ProcessConfig": {
                    "tty": e.config.tty,
                    "entrypoint": e.config.cmd[0],
                    "arguments": e.config.cmd[1..],
                    "privileged": e.config.privileged,
                    "user": e.config.user,
                },
            }),
        ))
    }

    /// `POST /exec/{id}/resize?h=…&w=…`
    pub fn exec_resize(&self, exec_id: &str, q: &HashMap<String, String>) -> ApiResult {
        let execs = self.execs.lock().unwrap();
        let e = execs
            .get(exec_id)
            .ok_or_else(|| ApiError::not_found(format!("No such exec instance: {exec_id}")))?;
        let get = |k: &str| q.get(k).and_then(|v| v.parse::<u16>().ok()).unwrap_or(0);
        if let Some(m) = &e.master {
            let size = libc::winsize {
                ws_row: get("h"),
                ws_col: get("w"),
                ws_xpixel: 0,
                ws_ypixel: 0,
            };
            // SAFETY: TIOCSWINSZ reads a winsize from a valid pointer.
            unsafe { libc::ioctl(m.as_raw_fd(), libc::TIOCSWINSZ, &size) };
        }
        Ok(http::empty(StatusCode::OK))
    }
}

type Finish = Box<dyn FnOnce(i32) + Send>;

pub(crate) fn exit_code(status: std::io::Result<std::process::ExitStatus>) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Ok(s) => s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0)),
        Err(_) => 255,
    }
}

/// The client's side of an exec's stream, shared by the tasks that relay
/// it: once the client detached (or went away) the output is still read,
/// so the process never blocks on a full pipe or terminal, and dropped.
struct ClientSide {
    wr: tokio::sync::Mutex<tokio::io::WriteHalf<TokioIo<hyper::upgrade::Upgraded>>>,
    gone: std::sync::atomic::AtomicBool,
}

impl ClientSide {
    async fn send(&self, bytes: &[u8]) {
        use std::sync::atomic::Ordering;
        if self.gone.load(Ordering::SeqCst) {
            return;
        }
        let mut wr = self.wr.lock().await;
        if wr.write_all(bytes).await.is_err() || wr.flush().await.is_err() {
            self.gone.store(true, Ordering::SeqCst);
        }
    }

    /// Ends the client's stream (its read sees EOF); the exec runs on.
    async fn detach(&self) {
        self.gone.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = self.wr.lock().await.shutdown().await;
    }
}

/// The client's bytes into the exec's input, until EOF, or until the
/// detach keys (then the client side ends, and `input` is returned so that
/// the process does not see EOF: it runs on, as after Docker's detach).
async fn relay_input<W: tokio::io::AsyncWrite + Unpin>(
    mut rd: tokio::io::ReadHalf<TokioIo<hyper::upgrade::Upgraded>>,
    mut input: W,
    keys: Option<Vec<u8>>,
    client: Arc<ClientSide>,
) -> Option<W> {
    let mut matcher = super::containers::DetachMatcher::new(keys.clone().unwrap_or_default());
    let mut buf = vec![0u8; 4096];
    loop {
        let n = match rd.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => n,
        };
        let (pass, detached) = match &keys {
            Some(k) if !k.is_empty() => matcher.feed(&buf[..n]),
            _ => (buf[..n].to_vec(), false),
        };
        if !pass.is_empty()
            && (input.write_all(&pass).await.is_err() || input.flush().await.is_err())
        {
            return None;
        }
        if detached {
            client.detach().await;
            return Some(input);
        }
    }
}

/// Without a TTY: stdout and stderr framed onto the connection, the
/// connection's bytes into stdin, its half-close as stdin's EOF.
async fn relay_pipes(
    io: TokioIo<hyper::upgrade::Upgraded>,
    child: &mut tokio::process::Child,
    keys: Option<Vec<u8>>,
    finish: Finish,
) {
    let (rd, wr) = tokio::io::split(io);
    let client = Arc::new(ClientSide {
        wr: tokio::sync::Mutex::new(wr),
        gone: false.into(),
    });
    let pump = |mut out: Box<dyn tokio::io::AsyncRead + Unpin + Send>, stream: Stream| {
        let client = client.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match out.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => client.send(&frame(stream, &buf[..n])).await,
                }
            }
        })
    };
    let out = pump(
        Box::new(child.stdout.take().expect("piped")),
        Stream::Stdout,
    );
    let err = pump(
        Box::new(child.stderr.take().expect("piped")),
        Stream::Stderr,
    );
    // Dropping stdin closes it: the process sees EOF (not after a detach).
    let input = child
        .stdin
        .take()
        .map(|stdin| tokio::spawn(relay_input(rd, stdin, keys, client.clone())));
    let code = exit_code(child.wait().await);
    let _ = out.await;
    let _ = err.await;
    finish(code);
    if let Some(input) = input {
        input.abort();
    }
    client.detach().await;
}

/// With a TTY: raw bytes both ways through the pseudo-terminal's master.
async fn relay_tty(
    io: TokioIo<hyper::upgrade::Upgraded>,
    child: &mut tokio::process::Child,
    master: Arc<OwnedFd>,
    keys: Option<Vec<u8>>,
    finish: Finish,
) {
    let (rd, wr) = tokio::io::split(io);
    let client = Arc::new(ClientSide {
        wr: tokio::sync::Mutex::new(wr),
        gone: false.into(),
    });
    let reader = std::fs::File::from(master.try_clone().expect("dup of the pty master"));
    let writer = tokio::fs::File::from_std(std::fs::File::from(
        master.try_clone().expect("dup of the pty master"),
    ));
    let mut reader = tokio::fs::File::from_std(reader);
    let out = client.clone();
    let output = tokio::spawn(async move {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => break, // EIO once the last slave is closed
                Ok(n) => out.send(&buf[..n]).await,
            }
        }
    });
    let input = tokio::spawn(relay_input(rd, writer, keys, client.clone()));
    let code = exit_code(child.wait().await);
    let _ = output.await;
    input.abort();
    finish(code);
    client.detach().await;
}
