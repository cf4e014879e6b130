//! A container's standard streams: attach, logs, exec, the terminal's raw mode, and the multiplexed stream Docker sends without a TTY.

use super::*;

/// Docker's order for a foreground run: attach, ask for the exit (so it
/// cannot be missed), start, stream, then read the exit code.
pub(super) async fn attach_and_start(
    client: &Client,
    id: &str,
    tty: bool,
    interactive: bool,
) -> Result<i32> {
    let io = client
        .hijack(
            &format!(
                "/containers/{id}/attach?stream=1&stdin={}&stdout=1&stderr=1",
                interactive as u8
            ),
            None,
        )
        .await?;
    let info = client.container(id).await?;
    let condition = if info.host_config.auto_remove {
        "removed"
    } else {
        "next-exit"
    };
    let wait = client
        .stream(
            "POST",
            &format!("/containers/{id}/wait?condition={condition}"),
            None,
        )
        .await?;
    client
        .call("POST", &format!("/containers/{id}/start"), None)
        .await?;
    pump(
        client,
        io,
        tty,
        interactive,
        &format!("/containers/{id}/resize"),
    )
    .await?;
    Ok(wait_body(wait).await?.status_code as i32)
}

pub(super) async fn wait_body(
    body: hyper::body::Incoming,
) -> Result<chapter_06::api::WaitResponse> {
    let mut all = Vec::new();
    each_chunk(body, |c| all.extend_from_slice(c)).await?;
    Ok(serde_json::from_slice(&all)?)
}

/// Splits multiplexed output onto stdout and stderr (or copies raw bytes).
pub(super) struct Demux {
    pub(super) tty: bool,
    pub(super) buf: Vec<u8>,
}

impl Demux {
    fn new(tty: bool) -> Demux {
        Demux {
            tty,
            buf: Vec::new(),
        }
    }
    fn feed(&mut self, chunk: &[u8]) {
        if self.tty {
            let mut out = std::io::stdout();
            let _ = out.write_all(chunk);
            let _ = out.flush();
            return;
        }
        self.buf.extend_from_slice(chunk);
        while let Some((stream, payload)) = next_frame(&mut self.buf) {
            if stream == 2 {
                let _ = std::io::stderr().write_all(&payload);
            } else {
                let mut out = std::io::stdout();
                let _ = out.write_all(&payload);
                let _ = out.flush();
            }
        }
    }
}

/// Raw mode on our terminal for `-t`, restored when dropped.
pub(super) struct RawMode(Option<nix::sys::termios::Termios>);

impl RawMode {
    fn enter() -> RawMode {
        use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return RawMode(None);
        }
        let Ok(saved) = tcgetattr(&stdin) else {
            return RawMode(None);
        };
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        let _ = tcsetattr(&stdin, SetArg::TCSANOW, &raw);
        RawMode(Some(saved))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(saved) = &self.0 {
            let _ = nix::sys::termios::tcsetattr(
                std::io::stdin(),
                nix::sys::termios::SetArg::TCSANOW,
                saved,
            );
        }
    }
}

pub(super) fn terminal_size() -> Option<(u16, u16)> {
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes a winsize into valid memory.
    let rc = unsafe { libc::ioctl(1, libc::TIOCGWINSZ, &mut size) };
    (rc == 0 && size.ws_row > 0).then_some((size.ws_row, size.ws_col))
}

/// Moves bytes between our stdio and a hijacked connection until the
/// container side closes it.
pub(super) async fn pump(
    client: &Client,
    io: hyper_util::rt::TokioIo<hyper::upgrade::Upgraded>,
    tty: bool,
    interactive: bool,
    resize: &str,
) -> Result<()> {
    let _raw = if tty { Some(RawMode::enter()) } else { None };
    if tty {
        if let Some((h, w)) = terminal_size() {
            let _ = client
                .call("POST", &format!("{resize}?h={h}&w={w}"), None)
                .await;
        }
        let client_socket = client.socket.clone();
        let resize = resize.to_string();
        tokio::spawn(async move {
            let Ok(mut winch) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())
            else {
                return;
            };
            let client = Client::new(client_socket);
            while winch.recv().await.is_some() {
                if let Some((h, w)) = terminal_size() {
                    let _ = client
                        .call("POST", &format!("{resize}?h={h}&w={w}"), None)
                        .await;
                }
            }
        });
    }
    let (mut rd, mut wr) = tokio::io::split(io);
    if interactive {
        tokio::spawn(async move {
            let mut stdin = tokio::io::stdin();
            let mut buf = vec![0u8; 4096];
            loop {
                match stdin.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if wr.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                }
            }
            // Our stdin ended: close our writing half; the container's
            // stdin closes (StdinOnce).
            let _ = wr.shutdown().await;
        });
    }
    let mut demux = Demux::new(tty);
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match rd.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => demux.feed(&buf[..n]),
        }
    }
    Ok(())
}

#[derive(Args)]
pub(super) struct AttachArgs {
    /// The keys that detach, leaving it running [default: ctrl-p,ctrl-q]
    #[arg(long)]
    pub(super) detach_keys: Option<String>,
    /// Do not send our standard input
    #[arg(long)]
    pub(super) no_stdin: bool,
    pub(super) container: String,
}

#[derive(Args)]
pub(super) struct LogsArgs {
    #[arg(short, long)]
    pub(super) follow: bool,
    #[arg(long, default_value = "all")]
    pub(super) tail: String,
    #[arg(short, long)]
    pub(super) timestamps: bool,
    /// Only output since this time: 10m, 1h30m, an RFC 3339 time, or unix seconds
    #[arg(long)]
    pub(super) since: Option<String>,
    /// Only output until this time (same forms)
    #[arg(long)]
    pub(super) until: Option<String>,
    pub(super) container: String,
}

#[derive(Args)]
pub(super) struct ExecArgs {
    #[arg(short, long)]
    pub(super) interactive: bool,
    #[arg(short, long)]
    pub(super) tty: bool,
    #[arg(short, long)]
    pub(super) detach: bool,
    #[arg(short, long)]
    pub(super) user: Option<String>,
    #[arg(short, long)]
    pub(super) workdir: Option<String>,
    #[arg(short, long)]
    pub(super) env: Vec<String>,
    /// Every capability for this process
    #[arg(long)]
    pub(super) privileged: bool,
    /// Keys that leave the exec running and end this command [default: ctrl-p,ctrl-q]
    #[arg(long)]
    pub(super) detach_keys: Option<String>,
    pub(super) container: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub(super) command: Vec<String>,
}

pub(super) async fn attach(client: &Client, args: AttachArgs) -> Result<i32> {
    let AttachArgs {
        detach_keys,
        no_stdin,
        container,
    } = args;
    let info = client.container(&container).await?;
    if !info.state.running {
        return Err(anyhow!(
            "You cannot attach to a stopped container, start it first"
        ));
    }
    let id = info.id;
    let tty = info.config.tty;
    let stdin = !no_stdin && info.config.open_stdin;
    let keys = detach_keys
        .map(|k| format!("&detachKeys={}", enc(&k)))
        .unwrap_or_default();
    let io = client
        .hijack(
            &format!(
                "/containers/{id}/attach?stream=1&stdin={}&stdout=1&stderr=1{keys}",
                stdin as u8
            ),
            None,
        )
        .await?;
    pump(client, io, tty, stdin, &format!("/containers/{id}/resize")).await?;
    // Detached: it runs on (exit 0); else its exit code.
    let after = client.container(&id).await?;
    if after.state.running {
        return Ok(0);
    }
    Ok(after.state.exit_code as i32)
}

pub(super) async fn logs(client: &Client, args: LogsArgs) -> Result<i32> {
    let LogsArgs {
        follow,
        tail,
        timestamps,
        since,
        until,
        container,
    } = args;
    let mut bounds = String::new();
    for (key, v) in [("since", &since), ("until", &until)] {
        if let Some(v) = v {
            bounds += &format!("&{key}={}", unix_time(v)?);
        }
    }
    let tty = client.container(&container).await?.config.tty;
    let body = client
        .stream(
            "GET",
            &format!(
                "/containers/{}/logs?stdout=1&stderr=1&follow={}&tail={}&timestamps={}{bounds}",
                enc(&container),
                follow as u8,
                enc(&tail),
                timestamps as u8
            ),
            None,
        )
        .await?;
    let mut demux = Demux::new(tty);
    each_chunk(body, |chunk| demux.feed(chunk)).await?;
    Ok(0)
}

pub(super) async fn exec(client: &Client, args: ExecArgs) -> Result<i32> {
    let ExecArgs {
        interactive,
        tty,
        detach,
        user,
        workdir,
        env,
        privileged,
        detach_keys,
        container,
        command,
    } = args;
    let config = chapter_06::api::ExecConfig {
        privileged,
        attach_stdin: interactive && !detach,
        attach_stdout: !detach,
        attach_stderr: !detach,
        tty,
        cmd: command,
        env: Some(env),
        user: user.unwrap_or_default(),
        working_dir: workdir.unwrap_or_default(),
        detach_keys: detach_keys.unwrap_or_default(),
    };
    let exec_id = client.create_exec(&container, &config).await?.id;
    let start = serde_json::to_value(chapter_06::api::ExecStart {
        detach,
        tty,
        console_size: None,
    })?;
    if detach {
        client
            .call("POST", &format!("/exec/{exec_id}/start"), Some(&start))
            .await?;
        return Ok(0);
    }
    let io = client
        .hijack(&format!("/exec/{exec_id}/start"), Some(&start))
        .await?;
    let resize = format!("/exec/{exec_id}/resize");
    pump(client, io, tty, interactive, &resize).await?;
    let info = client.exec_inspect(&exec_id).await?;
    Ok(info.exit_code.unwrap_or(0) as i32)
}
