//! Rootless: the whole engine inside a user namespace of an ordinary user.
//!
//! Nobody but root may mount, make network devices or clone most
//! namespaces on the host; but anyone may make a user namespace and be root
//! in it, over what that namespace owns. So the daemon of an ordinary user
//! enters one first, and everything it does happens inside: pulls and
//! unpacks (files owned by the mapped IDs), overlay mounts, networks,
//! containers.
//!
//! Its map: 0 inside is the user outside, and 1..=N inside are the user's
//! subordinate IDs (`/etc/subuid`, `/etc/subgid`), so an image's files can
//! belong to many owners. An unprivileged process may write only a
//! one-line map of its own ID; the rest is written by `newuidmap` and
//! `newgidmap`, setuid-root helpers that check the subordinate files first.
//!
//! The namespaces (user, mount, and a network namespace for the engine's
//! bridges) are held by a small process, the holder (podman calls its own
//! the pause process): a daemon that stops and starts again joins the
//! holder's user and mount namespaces with setns(2), and finds its
//! containers' mounts and monitors as it left them.
//!
//! The daemon itself stays in the host's network namespace (as podman's
//! does): a pull reaches what the user reaches, and `--network host` is the
//! host's network. Bridges, veths and NAT live in the holder's network
//! namespace instead (the daemon's network code enters it per thread), and
//! slirp4netns connects that namespace to the host's without root: a
//! TCP/IP stack in a user process behind a tap device, which opens ordinary
//! sockets for what goes out, and listens on the host for published ports.

use anyhow::{anyhow, bail, Context, Result};
use chapter_01::IdRange;
use nix::sched::CloneFlags;
use nix::unistd::{ForkResult, Pid};
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

/// Set (to the user's uid on the host) in a daemon that entered its user
/// namespace; its monitors and helpers inherit it.
pub const ENV: &str = "MINI_DOCKER_ROOTLESS";

/// True in a rootless daemon and in everything it starts.
pub fn active() -> bool {
    std::env::var_os(ENV).is_some()
}

/// Where a rootless daemon keeps things: its engine root, its socket, and
/// its run directory (the holder's PID).
#[derive(Clone, Debug)]
pub struct Layout {
    pub root: PathBuf,
    pub socket: PathBuf,
    pub run: PathBuf,
}

/// `$XDG_DATA_HOME/mini-docker` (else `~/.local/share/mini-docker`) and
/// `$XDG_RUNTIME_DIR/mini-docker.sock`, as rootless Docker and podman.
pub fn layout() -> Result<Layout> {
    let data = match std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => {
            let home = std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .ok_or_else(|| anyhow!("neither XDG_DATA_HOME nor HOME is set: pass --root DIR"))?;
            PathBuf::from(home).join(".local/share")
        }
    };
    let runtime = runtime_dir()?;
    Ok(Layout {
        root: data.join("mini-docker"),
        socket: runtime.join("mini-docker.sock"),
        run: runtime.join("mini-docker"),
    })
}

/// `$XDG_RUNTIME_DIR`, or `/run/user/UID` where it exists.
pub fn runtime_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    let fallback = PathBuf::from(format!("/run/user/{}", nix::unistd::geteuid()));
    if fallback.is_dir() {
        return Ok(fallback);
    }
    bail!(
        "XDG_RUNTIME_DIR is not set and {} does not exist: a login session sets it \
         (or export XDG_RUNTIME_DIR=DIR, a directory of yours, 0700)",
        fallback.display()
    )
}

/// The map of a rootless daemon's user namespace: 0 is the user, then the
/// user's subordinate ranges from 1 up.
pub fn id_map(uid: u32, gid: u32) -> Result<chapter_01::IdMap> {
    let user = nix::unistd::User::from_uid(uid.into())
        .ok()
        .flatten()
        .ok_or_else(|| anyhow!("uid {uid} has no entry in /etc/passwd"))?;
    let sub = chapter_01::user::remap_for(&format!("{}:{gid}", user.name)).map_err(|e| {
        anyhow!(
            "rootless needs subordinate IDs for {}: {e} \
             (as root: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {})",
            user.name,
            user.name
        )
    })?;
    Ok(above_own(uid, gid, sub))
}

/// `sub` (the subordinate ranges from 0 up) moved up by one, below them
/// the user's own IDs at 0.
fn above_own(uid: u32, gid: u32, sub: chapter_01::IdMap) -> chapter_01::IdMap {
    let shift = |own: u32, ranges: Vec<IdRange>| -> Vec<IdRange> {
        let mut out = vec![IdRange {
            inside: 0,
            outside: own,
            count: 1,
        }];
        out.extend(ranges.into_iter().map(|r| IdRange {
            inside: r.inside + 1,
            ..r
        }));
        out
    };
    chapter_01::IdMap {
        uids: shift(uid, sub.uids),
        gids: shift(gid, sub.gids),
        deny_setgroups: false,
    }
}

/// `newuidmap PID 0 UID 1 1 START COUNT …`: the helper writes the map the
/// subordinate files allow, which this process may not.
fn write_map(helper: &str, pid: Pid, ranges: &[IdRange]) -> Result<()> {
    let mut cmd = std::process::Command::new(helper);
    cmd.arg(pid.to_string());
    for r in ranges {
        cmd.args([r.inside, r.outside, r.count].map(|v| v.to_string()));
    }
    let out = cmd.output().map_err(|e| {
        anyhow!("running {helper}: {e}: rootless needs it, setuid root (apt-get install uidmap)")
    })?;
    if !out.status.success() {
        bail!(
            "{helper} refused the map {:?}: {}",
            ranges,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// The holder's PID, if it still runs and holds a user namespace of ours.
fn live_holder(run: &Path) -> Option<Pid> {
    use std::os::unix::fs::MetadataExt;
    let pid = live_pid(&run.join("holder.pid"), HOLDER_NAME)?;
    let ours =
        std::fs::metadata(format!("/proc/{pid}")).ok()?.uid() == nix::unistd::geteuid().as_raw();
    ours.then_some(pid)
}

/// The holder's name in ps.
pub const HOLDER_NAME: &str = "mini-docker-ns";

/// Enters the user and mount namespaces of the rootless engine:
/// the holder's that runs, or a new holder's. Must be called while this
/// process has one thread (setns(2) into a user namespace requires it).
pub fn enter(run: &Path) -> Result<Pid> {
    std::fs::create_dir_all(run).with_context(|| format!("creating {}", run.display()))?;
    let holder = match live_holder(run) {
        Some(pid) => pid,
        None => {
            let pid = start_holder()?;
            std::fs::write(run.join("holder.pid"), format!("{pid}\n"))?;
            pid
        }
    };
    join(holder)?;
    let _ = HOLDER.set(holder);
    let _ = RUN.set(run.to_path_buf());
    Ok(holder)
}

/// Joins `holder`'s namespaces: the user namespace first (it owns the
/// others, and joining it gives this process every capability in it).
fn join(holder: Pid) -> Result<()> {
    for (ns, flag) in [
        ("user", CloneFlags::CLONE_NEWUSER),
        ("mnt", CloneFlags::CLONE_NEWNS),
    ] {
        let path = format!("/proc/{holder}/ns/{ns}");
        let file = std::fs::File::open(&path).with_context(|| format!("opening {path}"))?;
        nix::sched::setns(file.as_fd(), flag)
            .with_context(|| format!("joining the rootless {ns} namespace ({path})"))?;
    }
    Ok(())
}

/// Forks the holder: it makes a user namespace, waits for its map, makes a
/// mount and a network namespace owned by it, and then only waits for a
/// signal (SIGTERM ends it). Returns its PID once all are made.
fn start_holder() -> Result<Pid> {
    let map = id_map(
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
    )?;
    let (mut from_holder, to_parent) = std::io::pipe()?;
    let (from_parent, mut to_holder) = std::io::pipe()?;
    // SAFETY: this process has one thread; the child only makes system
    // calls and leaves with _exit.
    match unsafe { nix::unistd::fork() }.context("forking the namespace holder")? {
        ForkResult::Child => {
            drop((from_holder, to_holder));
            let code = match holder_main(to_parent, from_parent) {
                Ok(()) => 0,
                Err(_) => 1,
            };
            // SAFETY: leaving the forked child without running the parent's
            // atexit handlers or destructors.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            drop((to_parent, from_parent));
            let step = |from: &mut std::io::PipeReader, what: &str| -> Result<()> {
                let mut said = [0u8; 1];
                match from.read(&mut said) {
                    Ok(1) if said[0] == b'+' => Ok(()),
                    _ => Err(anyhow!("the namespace holder failed to {what}")),
                }
            };
            let made = step(
                &mut from_holder,
                "make its user namespace (are user namespaces enabled? see `cargo xtask doctor`)",
            )
            .and_then(|()| write_map("newuidmap", child, &map.uids))
            .and_then(|()| write_map("newgidmap", child, &map.gids))
            .and_then(|()| to_holder.write_all(b"+").map_err(Into::into))
            .and_then(|()| step(&mut from_holder, "make its mount and network namespaces"));
            if let Err(e) = made {
                let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
                let _ = nix::sys::wait::waitpid(child, None);
                return Err(e);
            }
            Ok(child)
        }
    }
}

/// The holder's side (in the forked child): '+' after each step on
/// `to_parent`; waits for the parent's '+' (the maps are written).
fn holder_main(
    mut to_parent: std::io::PipeWriter,
    mut from_parent: std::io::PipeReader,
) -> Result<()> {
    nix::sched::unshare(CloneFlags::CLONE_NEWUSER)?;
    to_parent.write_all(b"+")?;
    let mut said = [0u8; 1];
    if from_parent.read(&mut said)? != 1 {
        bail!("the daemon went away before the maps were written");
    }
    // Root of the new namespace (its 0 is our own ID outside).
    nix::unistd::setresgid(0.into(), 0.into(), 0.into())?;
    nix::unistd::setresuid(0.into(), 0.into(), 0.into())?;
    nix::sched::unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWNET)?;
    // Mounts made in here stay in here.
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE,
        None::<&str>,
    )?;
    chapter_01::net::loopback_up()?;
    nix::unistd::setsid()?;
    let _ = nix::sys::prctl::set_name(c"mini-docker-ns");
    to_parent.write_all(b"+")?;
    drop((to_parent, from_parent));
    // Off the daemon's files: stdin, stdout and stderr to /dev/null.
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        use std::os::fd::AsRawFd;
        for fd in 0..3 {
            // SAFETY: dup2 of a descriptor we hold onto the standard ones.
            unsafe { libc::dup2(null.as_raw_fd(), fd) };
        }
    }
    loop {
        nix::unistd::pause();
    }
}

/// Ends the holder (and with it the namespaces, once nothing else is in
/// them): for a daemon that stops with no container running.
pub fn stop_holder(run: &Path) {
    if let Some(pid) = live_pid(&run.join("slirp4netns.pid"), "slirp4netns") {
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    }
    if let Some(pid) = live_holder(run) {
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    }
    for file in ["holder.pid", "slirp4netns.pid", "slirp4netns.sock"] {
        let _ = std::fs::remove_file(run.join(file));
    }
}

/// The engine's address in its network namespace, as slirp4netns
/// configures it (`tap0`, 10.0.2.100/24, routed through 10.0.2.2; DNS at
/// 10.0.2.3, which asks the host's resolvers).
pub const SLIRP_GUEST: &str = "10.0.2.100";
pub const SLIRP_DNS: &str = "10.0.2.3";

/// The PID in `file`, if that process runs `comm`.
fn live_pid(file: &Path, comm: &str) -> Option<Pid> {
    let pid: i32 = std::fs::read_to_string(file).ok()?.trim().parse().ok()?;
    let running = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    (running.trim() == comm).then(|| Pid::from_raw(pid))
}

/// slirp4netns for the holder's network namespace, started unless it
/// runs: its tap device, its address and route configured, its API on a
/// socket in `run` (for published ports). Detached, it outlives the daemon
/// as the holder does.
pub fn ensure_slirp(run: &Path) -> Result<()> {
    let pid_file = run.join("slirp4netns.pid");
    let api = run.join("slirp4netns.sock");
    if live_pid(&pid_file, "slirp4netns").is_some() {
        return Ok(());
    }
    let holder = holder().ok_or_else(|| anyhow!("no rootless namespaces entered"))?;
    let _ = std::fs::remove_file(&api);
    let log = std::fs::File::create(run.join("slirp4netns.log"))?;
    let child = {
        use std::os::unix::process::CommandExt;
        std::process::Command::new("slirp4netns")
            // As rootless Docker: the host's loopback is not the
            // containers' to reach (10.0.2.2 would be it).
            .args([
                "--configure",
                "--mtu=65520",
                "--disable-host-loopback",
                "--api-socket",
            ])
            .arg(&api)
            .arg("--netns-type=path")
            .arg(format!("/proc/{holder}/ns/net"))
            .arg("tap0")
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .map_err(|e| {
                anyhow!(
                    "starting slirp4netns: {e}: a rootless bridge network needs it \
                     (apt-get install slirp4netns); or use --network none or host"
                )
            })?
    };
    std::fs::write(&pid_file, format!("{}\n", child.id()))?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::os::unix::net::UnixStream::connect(&api).is_err() {
        if std::time::Instant::now() > deadline {
            bail!(
                "slirp4netns did not come up within 10 s: {}",
                std::fs::read_to_string(run.join("slirp4netns.log"))
                    .unwrap_or_default()
                    .trim()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Ok(())
}

/// One request to slirp4netns's API (a JSON object a connection); its
/// `return`, or its `error` as ours.
fn slirp_api(run: &Path, request: serde_json::Value) -> Result<serde_json::Value> {
    let mut conn = std::os::unix::net::UnixStream::connect(run.join("slirp4netns.sock"))
        .context("connecting to slirp4netns's API")?;
    conn.write_all(request.to_string().as_bytes())?;
    conn.shutdown(std::net::Shutdown::Write)?;
    let mut answer = String::new();
    conn.read_to_string(&mut answer)?;
    let answer: serde_json::Value = serde_json::from_str(&answer)
        .with_context(|| format!("slirp4netns answered {answer:?}"))?;
    if let Some(error) = answer.get("error") {
        bail!(
            "slirp4netns: {}",
            error["desc"]
                .as_str()
                .map_or_else(|| error.to_string(), String::from)
        );
    }
    Ok(answer["return"].clone())
}

/// Publishes `host_ip:host_port` on the host to the same port of the
/// engine's namespace (where the container's DNAT rule takes it on);
/// returns the forward's id.
pub fn forward_port(run: &Path, proto: &str, host_ip: &str, host_port: u16) -> Result<u64> {
    let answer = slirp_api(
        run,
        serde_json::json!({
            "execute": "add_hostfwd",
            "arguments": {
                "proto": proto,
                "host_addr": if host_ip.is_empty() { "0.0.0.0" } else { host_ip },
                "host_port": host_port,
                "guest_addr": SLIRP_GUEST,
                "guest_port": host_port,
            }
        }),
    )?;
    answer["id"]
        .as_u64()
        .ok_or_else(|| anyhow!("slirp4netns gave the forward no id: {answer}"))
}

/// Removes a forward [`forward_port`] made.
pub fn unforward_port(run: &Path, id: u64) -> Result<()> {
    slirp_api(
        run,
        serde_json::json!({"execute": "remove_hostfwd", "arguments": {"id": id}}),
    )
    .map(|_| ())
}

/// `resolv.conf` as a container on a rootless bridge can use it: a
/// nameserver on the host's loopback is slirp4netns's DNS forwarder.
pub fn resolv_through_slirp(host: &str) -> String {
    host.lines()
        .map(
            |line| match line.split_whitespace().collect::<Vec<_>>()[..] {
                ["nameserver", ip] if ip.starts_with("127.") || ip == "::1" => {
                    format!("nameserver {SLIRP_DNS}\n")
                }
                _ => format!("{line}\n"),
            },
        )
        .collect()
}

/// Where the forwards of container `id` are kept (their slirp4netns ids),
/// so a restarted daemon removes them too.
fn forwards_file(run: &Path, id: &str) -> PathBuf {
    run.join("ports").join(format!("{id}.json"))
}

/// Rootless: a forward on the host for each of `ports` (a no-op as root).
pub fn forward_ports(id: &str, ports: &[crate::net::PortMap]) -> Result<()> {
    let Some(run) = run_dir() else {
        return Ok(());
    };
    if ports.is_empty() {
        return Ok(());
    }
    let mut ids = Vec::new();
    for p in ports {
        match forward_port(run, &p.proto, &p.host_ip, p.host_port) {
            Ok(forward) => ids.push(forward),
            Err(e) => {
                for made in ids {
                    let _ = unforward_port(run, made);
                }
                return Err(e.context(format!(
                    "publishing {}:{} on the host",
                    if p.host_ip.is_empty() {
                        "0.0.0.0"
                    } else {
                        &p.host_ip
                    },
                    p.host_port
                )));
            }
        }
    }
    let file = forwards_file(run, id);
    std::fs::create_dir_all(file.parent().expect("in ports/"))?;
    std::fs::write(&file, serde_json::to_vec(&ids)?)?;
    Ok(())
}

/// Rootless: removes the forwards of container `id`, if it has any.
pub fn unforward_ports(id: &str) {
    let Some(run) = run_dir() else {
        return;
    };
    let file = forwards_file(run, id);
    let Ok(text) = std::fs::read(&file) else {
        return;
    };
    for forward in serde_json::from_slice::<Vec<u64>>(&text).unwrap_or_default() {
        if let Err(e) = unforward_port(run, forward) {
            eprintln!("rootless: container {id}: removing port forward {forward}: {e:#}");
        }
    }
    let _ = std::fs::remove_file(file);
}

/// The run directory of the rootless daemon (holder and slirp4netns).
static RUN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// `run` of [`enter`], in a rootless daemon.
pub fn run_dir() -> Option<&'static Path> {
    RUN.get().map(PathBuf::as_path)
}

/// The holder's PID, in a rootless daemon.
pub fn holder() -> Option<Pid> {
    HOLDER.get().copied()
}

/// The holder's PID, once [`enter`] found or started it.
static HOLDER: std::sync::OnceLock<Pid> = std::sync::OnceLock::new();

/// Runs `f` on a thread of its own inside the engine's network namespace
/// (the holder's) when rootless, else here. Network namespaces are per
/// thread: the netlink sockets, /proc/sys/net files and `nft` processes
/// made there belong to it.
pub fn in_engine_netns<T: Send>(f: impl FnOnce() -> T + Send) -> std::io::Result<T> {
    let Some(pid) = holder() else {
        return Ok(f());
    };
    std::thread::scope(|scope| {
        scope
            .spawn(move || {
                let ns = std::fs::File::open(format!("/proc/{pid}/ns/net"))?;
                nix::sched::setns(ns.as_fd(), CloneFlags::CLONE_NEWNET)?;
                Ok(f())
            })
            .join()
            .unwrap_or_else(|_| {
                Err(std::io::Error::other(
                    "a thread in the engine's network namespace panicked",
                ))
            })
    })
}

/// The networks a rootless container may have: its own with only a
/// loopback (`none`), the host's (`host`), another container's, and bridges
/// where slirp4netns is installed (they live in the engine's own network
/// namespace, and slirp4netns is their way out to the host's).
pub fn network_allowed(mode: &str) -> Result<(), String> {
    match mode {
        "none" | "host" => Ok(()),
        m if m.starts_with("container:") => Ok(()),
        other if !on_path("slirp4netns") => Err(format!(
            "network {:?}: a rootless daemon's bridge networks need user-mode networking, and \
             slirp4netns is not installed (apt-get install slirp4netns); or use --network none \
             or --network host",
            if other.is_empty() { "default" } else { other }
        )),
        _ => Ok(()),
    }
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loopback_resolver_becomes_slirps() {
        let text = resolv_through_slirp("search lan\nnameserver 127.0.0.53\nnameserver 10.1.1.1\n");
        assert_eq!(
            text,
            "search lan\nnameserver 10.0.2.3\nnameserver 10.1.1.1\n"
        );
    }

    #[test]
    fn the_map_puts_the_user_at_0_and_the_subordinate_ids_above() {
        let sub = chapter_01::IdMap::remap(
            ("ann", 1000),
            ("ann", 1000),
            "root:100000:65536\nann:200000:65536\n",
            "1000:300000:65536\n",
        )
        .unwrap();
        let map = above_own(1000, 1001, sub);
        assert_eq!(
            map.uids,
            [
                IdRange {
                    inside: 0,
                    outside: 1000,
                    count: 1
                },
                IdRange {
                    inside: 1,
                    outside: 200000,
                    count: 65536
                },
            ]
        );
        assert_eq!(
            map.gids,
            [
                IdRange {
                    inside: 0,
                    outside: 1001,
                    count: 1
                },
                IdRange {
                    inside: 1,
                    outside: 300000,
                    count: 65536
                },
            ]
        );
    }
}
