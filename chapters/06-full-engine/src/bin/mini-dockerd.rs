//! `mini-dockerd`: the engine's daemon. Owns an engine root, serves the
//! Docker Engine API on a unix socket. Also the program behind each
//! container's monitor and each exec (hidden subcommands), so one binary
//! is all an install needs.

use anyhow::{anyhow, Context, Result};
use chapter_06::daemon::{self, Daemon};
use chapter_06::state::Paths;
use clap::{Parser, Subcommand};
use std::os::fd::AsRawFd;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "mini-dockerd",
    about = "The mini-docker engine: the Docker Engine API on a unix socket",
    version
)]
struct Cli {
    /// Where images, containers and logs live [default: /var/lib/mini-docker;
    /// rootless: $XDG_DATA_HOME/mini-docker]
    #[arg(long)]
    root: Option<PathBuf>,
    /// The socket to serve the API on [default: unix:///run/mini-docker.sock;
    /// rootless: unix://$XDG_RUNTIME_DIR/mini-docker.sock]
    #[arg(short = 'H', long)]
    host: Option<String>,
    /// Write the daemon's log here instead of stderr
    #[arg(long)]
    log_file: Option<PathBuf>,
    /// Log every API request and its status
    #[arg(long)]
    debug: bool,
    /// The cgroup namespace of containers that ask for none: private or
    /// host [default: private on cgroup v2, host on v1]
    #[arg(long, value_name = "MODE")]
    default_cgroupns_mode: Option<String>,
    /// The seccomp profile of containers that ask for none: a file in
    /// Docker's JSON format, or unconfined [default: Docker's]
    #[arg(long, value_name = "PATH")]
    seccomp_profile: Option<PathBuf>,
    /// Set no_new_privs in every container
    #[arg(long)]
    no_new_privileges: bool,
    /// Give every container a user namespace whose root is an unprivileged
    /// host user: `default` (the dockremap user, created if missing) or
    /// USER[:GROUP], with its ranges in /etc/subuid and /etc/subgid
    #[arg(long, value_name = "USER")]
    userns_remap: Option<String>,
    #[command(subcommand)]
    internal: Option<Internal>,
}

#[derive(Subcommand)]
enum Internal {
    /// A container's monitor (started by the daemon)
    #[command(hide = true)]
    Monitor {
        #[arg(long = "root")]
        engine_root: PathBuf,
        id: String,
    },
    /// Runs an exec inside a container (started by the daemon)
    #[command(hide = true)]
    ExecHelper { spec: String },
    /// Reads or writes a path inside a container (`docker cp`)
    #[command(hide = true)]
    ArchiveHelper { spec: String },
}

fn main() -> std::process::ExitCode {
    chapter_01::course::install_hook();
    let cli = Cli::parse();
    match cli.internal {
        Some(Internal::Monitor { engine_root, id }) => {
            match chapter_06::monitor::main(&Paths::new(engine_root), &id) {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("monitor {id}: {e:#}");
                    std::process::ExitCode::FAILURE
                }
            }
        }
        Some(Internal::ExecHelper { spec }) => {
            let result = serde_json::from_str(&spec)
                .map_err(|e| anyhow!("invalid exec spec: {e}"))
                .and_then(|spec| chapter_06::exec::helper_main(&spec));
            match result {
                Ok(code) => std::process::ExitCode::from(code.clamp(0, 255) as u8),
                Err(e) => {
                    eprintln!("exec failed: {e:#}");
                    std::process::ExitCode::from(126)
                }
            }
        }
        Some(Internal::ArchiveHelper { spec }) => {
            let result = serde_json::from_str(&spec)
                .map_err(|e| anyhow!("invalid archive spec: {e}"))
                .and_then(|spec| chapter_06::archive::helper_main(&spec));
            match result {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("archive helper: {e:#}");
                    std::process::ExitCode::FAILURE
                }
            }
        }
        None => match serve(
            cli.root,
            cli.host,
            cli.log_file,
            cli.debug,
            daemon::Options {
                default_cgroupns_mode: cli.default_cgroupns_mode,
                security: chapter_06::security::Defaults {
                    seccomp: match seccomp_default(cli.seccomp_profile) {
                        Ok(s) => s,
                        Err(e) => {
                            eprintln!("mini-dockerd: {e:#}");
                            return std::process::ExitCode::FAILURE;
                        }
                    },
                    no_new_privileges: cli.no_new_privileges,
                },
                userns_remap: cli.userns_remap,
                rootless: false,
                cgroups: chapter_06::cgroups::Placement::Own,
            },
        ) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("mini-dockerd: {e:#}");
                std::process::ExitCode::FAILURE
            }
        },
    }
}

/// `--seccomp-profile`: a file is read and checked now.
fn seccomp_default(path: Option<PathBuf>) -> Result<chapter_06::seccomp::Seccomp> {
    use chapter_06::seccomp::Seccomp;
    let Some(path) = path else {
        return Ok(Seccomp::Builtin);
    };
    if path.as_os_str() == "unconfined" {
        return Ok(Seccomp::Unconfined);
    }
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("--seccomp-profile: reading {}", path.display()))?;
    let profile = Seccomp::Custom(text);
    profile
        .program(chapter_06::security::default_capabilities())
        .with_context(|| format!("--seccomp-profile {}", path.display()))?;
    Ok(profile)
}

fn serve(
    root: Option<PathBuf>,
    host: Option<String>,
    log_file: Option<PathBuf>,
    debug: bool,
    mut options: daemon::Options,
) -> Result<()> {
    daemon::http::DEBUG.store(debug, std::sync::atomic::Ordering::Relaxed);
    if let Some(path) = log_file {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("opening log file {}", path.display()))?;
        // SAFETY: dup2 onto stderr of a descriptor we hold.
        if unsafe { libc::dup2(log.as_raw_fd(), 2) } < 0 {
            return Err(std::io::Error::last_os_error().into());
        }
    }
    // An ordinary user's daemon runs rootless: in a user namespace of its
    // own, entered now, while this process has one thread. Before that,
    // where containers' cgroups go (a rootless daemon in a delegated
    // cgroup moves itself into a leaf of it, and the namespace holder it
    // forks follows).
    let rootless = !nix::unistd::geteuid().is_root();
    options.cgroups = chapter_06::cgroups::prepare(rootless)?;
    let (root, host, holder) = if rootless {
        let layout = chapter_06::rootless::layout()?;
        let root = std::path::absolute(root.unwrap_or(layout.root))?;
        let host = host.unwrap_or_else(|| format!("unix://{}", layout.socket.display()));
        let uid = nix::unistd::geteuid();
        let socket = std::path::absolute(chapter_06::client::socket_path(&host)?)?;
        let holder = chapter_06::rootless::enter(&layout.run)?;
        // SAFETY: one thread still; the monitors and helpers inherit it.
        unsafe { std::env::set_var(chapter_06::rootless::ENV, uid.to_string()) };
        options.rootless = true;
        (
            root,
            format!("unix://{}", socket.display()),
            Some((holder, layout.run)),
        )
    } else {
        (
            root.unwrap_or_else(|| "/var/lib/mini-docker".into()),
            host.unwrap_or_else(|| "unix:///run/mini-docker.sock".into()),
            None,
        )
    };
    let socket = chapter_06::client::socket_path(&host)?;
    let daemon = Daemon::open(&root, options)?;
    if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
        return Err(anyhow!(
            "{} already answers: another daemon serves it; stop that one or pass another -H",
            socket.display()
        ));
    }
    let _ = std::fs::remove_file(&socket);
    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::UnixListener::bind(&socket)
            .with_context(|| format!("listening on {}", socket.display()))?;
        eprintln!(
            "mini-dockerd: API {} on unix://{}, root {}{}",
            chapter_06::api::API_VERSION,
            socket.display(),
            root.display(),
            match &holder {
                Some((pid, _)) => format!(", rootless (namespaces held by pid {pid})"),
                None => String::new(),
            }
        );
        daemon.reconnect().await;
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = daemon::serve(daemon.clone(), listener) => {}
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        // Containers keep running under their monitors; a new daemon
        // reconnects to them. Rootless with none running, the namespaces
        // go too.
        let _ = std::fs::remove_file(&socket);
        match &holder {
            Some((_, run)) if daemon.running_ids().is_empty() => {
                chapter_06::rootless::stop_holder(run);
                eprintln!(
                    "mini-dockerd: stopped (no container ran: the rootless namespaces are gone)"
                );
            }
            _ => eprintln!("mini-dockerd: stopped (containers keep running)"),
        }
        Ok::<(), anyhow::Error>(())
    })?;
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    Ok(())
}
