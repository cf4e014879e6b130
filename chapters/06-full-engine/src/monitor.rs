//! The monitor: one small process per running container, started by the
//! daemon (`mini-dockerd monitor`), parent of the container's PID 1.
//!
//! It exists so that a container does not depend on the daemon staying up:
//! the monitor holds the container's stdio (pipes, or a pseudo-terminal's
//! master for `-t`), writes every line to the json-file log, serves attach
//! and resize requests on its own unix socket, and when PID 1 ends it
//! records the exit status, removes the cgroup and unmounts the overlay.
//! A restarted daemon reconnects to the monitors it finds.
//!
//! Its life, and the daemon's part in it:
//!
//! 1. mount the rootfs (chapter 03), create the cgroup (chapter 02), clone
//!    PID 1 paused (chapter 01) and move it into the cgroup;
//! 2. listen on `<root>/sock/<short id>`; tell the daemon `ready`;
//! 3. the daemon connects its pending attach streams, then says `go`
//!    (so a fast `echo hi` cannot finish before anyone listens);
//! 4. record `running` and let PID 1 run; report `started` or why not;
//! 5. pump output until PID 1 exits; clean up; record `exited`; answer
//!    every `wait` connection; close every attach stream.

use crate::jsonlog;
use crate::state::{read_json, write_json, Container, MountKind, MountPoint, Paths, State, Status};
use crate::stdcopy::{frame, Stream};
use anyhow::{anyhow, Context, Result};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// The first line a client sends on the monitor's socket.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub enum Hello {
    /// Stream output (raw with a TTY, multiplexed without) and optionally
    /// feed stdin. Shutting down the writing half closes the container's
    /// stdin when the container was created with `StdinOnce`.
    Attach {
        stdin: bool,
        stdout: bool,
        stderr: bool,
    },
    /// Set the pseudo-terminal's size; answered with `ok`.
    Resize { height: u16, width: u16 },
    /// Answered with one [`Exit`] line when PID 1 has ended.
    Wait,
}

/// How the container ended, as sent to `wait` connections.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Exit {
    pub exit_code: i32,
    pub oom_killed: bool,
}

struct Attacher {
    conn: UnixStream,
    stdout: bool,
    stderr: bool,
}

/// What the monitor shares between its threads.
struct Shared {
    tty: bool,
    stdin_once: bool,
    attachers: Mutex<Vec<Attacher>>,
    waiters: Mutex<Vec<UnixStream>>,
    stdin: Mutex<Option<File>>,
    /// With a TTY: stdin that arrived before the container's terminal did.
    early_stdin: Mutex<Vec<u8>>,
    /// The pseudo-terminal master, for resizes (set once the container
    /// sent it).
    master: Mutex<Option<RawFd>>,
    log: Mutex<Option<jsonlog::Writer>>,
    /// The line every `wait` gets, once PID 1 has ended (for one that
    /// connects later).
    exited: Mutex<Option<String>>,
}

/// Entry point of `mini-dockerd monitor`: fd 0 carries the daemon's `go`,
/// fd 1 takes our reports, fd 2 is the monitor's own log.
pub fn main(paths: &Paths, id: &str) -> Result<()> {
    let go = dup_high(0)?;
    let report = dup_high(1)?;
    let log_fd = dup_high(2)?;
    // Our own session: a Ctrl-C in the daemon's terminal is not ours.
    let _ = nix::unistd::setsid();
    let mut report = File::from(report);
    let result = run(paths, id, File::from(go), &mut report, &log_fd);
    if let Err(e) = &result {
        // Tell the daemon, if it still listens, then record it.
        let _ = writeln!(report, "error 125 {}", one_line(&format!("{e:#}")));
    }
    result
}

fn one_line(text: &str) -> String {
    text.replace('\n', " ")
}

fn dup_high(fd: RawFd) -> Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC returns a new descriptor that we then own.
    let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 10) };
    if new < 0 {
        return Err(std::io::Error::last_os_error()).context("duplicating a descriptor");
    }
    // SAFETY: `new` is a fresh descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

fn dup2(from: RawFd, to: RawFd) -> Result<()> {
    // SAFETY: plain dup2 on descriptors this process holds.
    if unsafe { libc::dup2(from, to) } < 0 {
        return Err(std::io::Error::last_os_error()).context("dup2");
    }
    Ok(())
}

/// The container's three stdio descriptors and the monitor's ends.
struct Stdio {
    /// Emptied once the container holds them.
    child: Vec<OwnedFd>,
    /// Readers of container output: (stream, fd).
    outputs: Vec<(Stream, File)>,
    stdin: Option<File>,
    master: Option<OwnedFd>,
    /// With `-t`: the monitor's and the container's ends of the socket the
    /// terminal's master comes over.
    console: Option<(OwnedFd, OwnedFd)>,
}

fn make_stdio(c: &Container) -> Result<Stdio> {
    if c.config.tty {
        // The terminal is made inside the container, from its own devpts
        // (chapter_01::console); until then the child's stdio is /dev/null.
        let null = || -> Result<OwnedFd> { Ok(File::open("/dev/null")?.into()) };
        let (ours, theirs) = nix::sys::socket::socketpair(
            nix::sys::socket::AddressFamily::Unix,
            nix::sys::socket::SockType::Stream,
            None,
            nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        )
        .context("creating the console socket")?;
        return Ok(Stdio {
            child: vec![null()?, null()?, null()?],
            outputs: Vec::new(),
            stdin: None,
            master: None,
            console: Some((ours, theirs)),
        });
    }
    let pipe = || nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("creating a pipe");
    let (stdin_r, stdin_w) = if c.config.open_stdin {
        let (r, w) = pipe()?;
        (r, Some(File::from(w)))
    } else {
        (File::open("/dev/null")?.into(), None)
    };
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    Ok(Stdio {
        child: vec![stdin_r, out_w, err_w],
        outputs: vec![
            (Stream::Stdout, File::from(out_r)),
            (Stream::Stderr, File::from(err_r)),
        ],
        stdin: stdin_w,
        master: None,
        console: None,
    })
}

/// The chapter 01 spec of this container: namespaces, rootfs, command,
/// and Docker's hardening.
pub fn spec_for(c: &Container, rootfs: &Path, paths: &Paths) -> Result<chapter_01::Spec> {
    let mut spec = chapter_01::Spec::new(rootfs, c.args.clone());
    // The host's namespaces where the container asks for them (Docker's
    // --network, --pid, --uts, --ipc host).
    let h = &c.host_config;
    for (host, ns) in [
        (h.network_mode == "host", chapter_01::Namespace::Net),
        (h.pid_mode == "host", chapter_01::Namespace::Pid),
        (h.uts_mode == "host", chapter_01::Namespace::Uts),
        (h.ipc_mode == "host", chapter_01::Namespace::Ipc),
        // Another container's: joined before the clone (join_namespaces).
        (
            h.pid_mode.starts_with("container:"),
            chapter_01::Namespace::Pid,
        ),
        (
            h.ipc_mode.starts_with("container:"),
            chapter_01::Namespace::Ipc,
        ),
    ] {
        if host {
            spec.namespaces.remove(ns);
        }
    }
    spec.hostname = (h.uts_mode != "host").then(|| c.hostname.clone());
    spec.env = c.env.clone();
    spec.workdir = c.workdir.clone();
    spec.console = c.config.tty;
    spec.init = h.init.unwrap_or(false);
    spec.readonly_rootfs = c.host_config.readonly_rootfs;
    let capabilities =
        crate::security::container_capabilities(&c.host_config).map_err(|e| anyhow!(e))?;
    spec.security = Some(crate::security::hardening(
        &c.host_config,
        &c.confinement,
        capabilities,
        (c.uid, c.gid),
        &c.groups,
        Some(&paths.seccomp_cache()),
    )?);
    Ok(spec)
}

/// All the container's limits: [`limits_for`]'s, and the rest of Docker's
/// (reservation, swappiness, the OOM killer, memory nodes, IO weight and
/// throttles, whose devices are read now).
pub fn container_limits(c: &Container) -> Result<chapter_02::Limits, String> {
    let h = &c.host_config;
    let mut limits = limits_for(c);
    limits.memory_reservation = (h.memory_reservation > 0).then_some(h.memory_reservation as u64);
    limits.memory_swappiness = h.memory_swappiness.filter(|s| *s >= 0).map(|s| s as u64);
    limits.oom_kill_disable = h.oom_kill_disable.unwrap_or(false);
    limits.cpuset_mems = (!h.cpuset_mems.is_empty()).then(|| h.cpuset_mems.clone());
    if h.blkio_weight > 0 {
        limits.blkio_weight = Some(u64::from(h.blkio_weight));
    }
    let rates = |list: &Option<Vec<crate::api::ThrottleDevice>>, iops: bool| {
        list.iter()
            .flatten()
            .map(|t| chapter_02::limits::parse_device_rate(&format!("{}:{}", t.path, t.rate), iops))
            .collect::<Result<Vec<_>, String>>()
    };
    limits.read_bps = rates(&h.blkio_device_read_bps, false)?;
    limits.write_bps = rates(&h.blkio_device_write_bps, false)?;
    limits.read_iops = rates(&h.blkio_device_read_iops, true)?;
    limits.write_iops = rates(&h.blkio_device_write_iops, true)?;
    // Docker's device rules: the defaults, each --device, each
    // --device-cgroup-rule; a privileged container keeps every device.
    // Rootless, none: on v2 they are a BPF program only the host's root may
    // load, and a user namespace's root cannot make device nodes anyway.
    if !h.privileged && !crate::rootless::active() {
        let mut rules: Vec<String> = chapter_02::limits::DEFAULT_DEVICE_RULES
            .iter()
            .map(|r| r.to_string())
            .collect();
        for d in &h.devices {
            for node in gather_devices(d)? {
                rules.push(node.rule.clone());
            }
        }
        for rule in h.device_cgroup_rules.iter().flatten() {
            rules.push(chapter_02::limits::parse_device_rule(rule)?);
        }
        limits.devices = Some(rules);
    }
    Ok(limits)
}

/// `--pid container:ID` and `--ipc container:ID`: this thread enters the
/// other container's namespaces, so the clone that follows (without
/// CLONE_NEWPID and CLONE_NEWIPC) puts PID 1 in them: setns(2) on a PID
/// namespace moves the caller's future children, on an IPC one the caller.
/// Returns this process's own PID namespace when it joined another's.
fn join_namespaces(paths: &Paths, h: &crate::api::HostConfig) -> Result<Option<File>> {
    let own = h
        .pid_mode
        .starts_with("container:")
        .then(|| File::open("/proc/self/ns/pid"))
        .transpose()?;
    for (mode, kind, flag) in [
        (&h.pid_mode, "pid", nix::sched::CloneFlags::CLONE_NEWPID),
        (&h.ipc_mode, "ipc", nix::sched::CloneFlags::CLONE_NEWIPC),
    ] {
        let Some(other) = mode.strip_prefix("container:") else {
            continue;
        };
        let state: crate::state::State = read_json(&paths.state(other))?;
        if state.pid <= 0 {
            anyhow::bail!("cannot join {kind} of a non running container: {other}");
        }
        let ns = File::open(format!("/proc/{}/ns/{kind}", state.pid))
            .with_context(|| format!("the {kind} namespace of container {other}"))?;
        nix::sched::setns(ns, flag)
            .with_context(|| format!("joining the {kind} namespace of container {other}"))?;
    }
    Ok(own)
}

/// One device node of a `--device`: the host's node, where it goes in the
/// container, and its cgroup rule (`c 10:229 rwm`).
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceNode {
    pub host: std::path::PathBuf,
    pub container: String,
    pub rule: String,
}

/// The nodes a `--device` names: the node itself, or for a directory every
/// node below it (at the same place below the container path), as Docker.
/// The error says what was wrong, in Docker's words.
pub fn gather_devices(d: &crate::api::DeviceMapping) -> Result<Vec<DeviceNode>, String> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let host = d.path_on_host.as_str();
    let inside = if d.path_in_container.is_empty() {
        host
    } else {
        d.path_in_container.as_str()
    };
    let error = |why: &str| {
        format!("error gathering device information while adding custom device {host:?}: {why}")
    };
    if !host.starts_with('/') || !inside.starts_with('/') {
        return Err(error("both paths must be absolute"));
    }
    let permissions = if d.cgroup_permissions.is_empty() {
        "rwm"
    } else {
        d.cgroup_permissions.as_str()
    };
    if !chapter_02::limits::is_device_access(permissions) {
        return Err(error(&format!(
            "invalid permissions {permissions:?}: use some of r, w, m"
        )));
    }
    let node = |path: &Path, container: String| -> Result<Option<DeviceNode>, String> {
        let meta = std::fs::metadata(path).map_err(|e| error(&e.to_string()))?;
        let kind = if meta.file_type().is_char_device() {
            'c'
        } else if meta.file_type().is_block_device() {
            'b'
        } else {
            return Ok(None);
        };
        let rdev = meta.rdev();
        let (major, minor) = (libc::major(rdev), libc::minor(rdev));
        Ok(Some(DeviceNode {
            host: path.to_path_buf(),
            container,
            rule: format!("{kind} {major}:{minor} {permissions}"),
        }))
    };
    let meta = std::fs::metadata(host).map_err(|e| {
        error(&match e.kind() {
            std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
            _ => e.to_string(),
        })
    })?;
    if !meta.is_dir() {
        return node(Path::new(host), inside.to_string())?
            .map(|n| vec![n])
            .ok_or_else(|| error("not a device node"));
    }
    let mut found = Vec::new();
    let mut stack = vec![std::path::PathBuf::from(host)];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| error(&e.to_string()))?;
        for entry in entries {
            let path = entry.map_err(|e| error(&e.to_string()))?.path();
            let file_type = std::fs::symlink_metadata(&path).map_err(|e| error(&e.to_string()))?;
            if file_type.is_dir() {
                stack.push(path);
                continue;
            }
            if file_type.file_type().is_symlink() {
                continue;
            }
            let below = path.strip_prefix(host).unwrap_or(&path);
            let container = format!("{}/{}", inside.trim_end_matches('/'), below.display());
            found.extend(node(&path, container)?);
        }
    }
    found.sort_by(|a, b| a.container.cmp(&b.container));
    Ok(found)
}

/// The mount that puts `node` in the container: inside /dev (a tmpfs the
/// child makes) its directories are made there too; elsewhere the empty file
/// is made in the container's own layer, resolved inside its root.
fn device_mount(merged: &Path, node: &DeviceNode, owner: Owner) -> Result<chapter_01::ExtraMount> {
    let relative = node.container.trim_start_matches('/');
    let under_dev = relative.starts_with("dev/")
        && !relative.split('/').any(|part| part == ".." || part == ".");
    if !under_dev {
        let target = resolve_target(merged, &node.container, true, owner)?;
        return Ok(chapter_01::ExtraMount::Bind {
            source: node.host.clone(),
            target,
            readonly: false,
        });
    }
    let target = merged.join(relative);
    let dev = merged.join("dev");
    let mut parents: Vec<std::path::PathBuf> = target
        .ancestors()
        .skip(1)
        .take_while(|p| *p != dev)
        .map(Path::to_path_buf)
        .collect();
    parents.reverse();
    Ok(chapter_01::ExtraMount::Device {
        source: node.host.clone(),
        target,
        parents,
    })
}

// ANCHOR: limits_for
/// The cgroup limits of this container, in chapter 02's terms.
pub fn limits_for(c: &Container) -> chapter_02::Limits {
    let h = &c.host_config;
    let positive = |v: i64| (v > 0).then_some(v as u64);
    chapter_02::Limits {
        memory: positive(h.memory),
        memory_swap: match h.memory_swap {
            -1 => Some(chapter_02::limits::Swap::Unlimited),
            v if v > 0 => Some(chapter_02::limits::Swap::Total(v as u64)),
            _ => None,
        },
        cpus: (h.nano_cpus > 0).then(|| h.nano_cpus as f64 / 1e9),
        cpu_shares: positive(h.cpu_shares),
        cpuset_cpus: (!h.cpuset_cpus.is_empty()).then(|| h.cpuset_cpus.clone()),
        pids: h.pids_limit.and_then(positive),
        ..Default::default()
    }
}
// ANCHOR_END: limits_for

/// The files the daemon binds over the image's: (its file in the container
/// directory, where it goes), those that exist and that no mount of the
/// user's replaces (`--network host` has none).
pub(crate) fn daemon_files<'a>(dir: &Path, c: &Container) -> Vec<(std::path::PathBuf, &'a str)> {
    crate::net::files::FILES
        .iter()
        .map(|(file, destination)| (dir.join(file), *destination))
        .filter(|(source, destination)| {
            source.exists() && !c.mounts.iter().any(|m| m.destination == *destination)
        })
        .collect()
}

/// `containers/ID/init`, Docker's init layer: empty mount points for
/// /proc, /dev, /sys and the daemon's /etc files, made afresh at each start.
/// It lies between the image and the container's upper directory, so that
/// what the engine needs to mount on is not part of the container's changes.
fn init_layer(dir: &Path, c: &Container) -> Result<std::path::PathBuf> {
    let init = dir.join("init");
    if init.exists() {
        std::fs::remove_dir_all(&init)?;
    }
    for d in ["proc", "dev", "sys"] {
        std::fs::create_dir_all(init.join(d))?;
    }
    for (_, destination) in daemon_files(dir, c) {
        let path = init.join(destination.trim_start_matches('/'));
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        File::create(&path)?;
    }
    Ok(init)
}

/// No cgroup at all: a rootless container on a host that delegates none.
/// Nothing to write, join or count; the container's processes end with its
/// PID 1 (the kernel kills the rest of its PID namespace).
struct NoCgroup;

impl chapter_02::Cgroup for NoCgroup {
    fn apply(&self, _: &chapter_02::Limits) -> Result<Vec<String>, String> {
        Ok(vec![])
    }
    fn add(&self, _: nix::unistd::Pid) -> Result<(), String> {
        Ok(())
    }
    fn stats(&self) -> Result<chapter_02::cgroup::Stats, String> {
        Ok(Default::default())
    }
    fn pids(&self) -> Vec<nix::unistd::Pid> {
        vec![]
    }
    fn kill_all(&self) -> Result<(), String> {
        Ok(())
    }
    fn remove(&self) -> Result<(), String> {
        Ok(())
    }
    fn dirs(&self) -> Vec<std::path::PathBuf> {
        vec![]
    }
}

/// The cgroup name of a container: `mini-docker-<id>`, or with the prefix
/// in `MINI_DOCKER_CGROUP_PREFIX` (tests give each engine its own, so a
/// janitor can find exactly theirs).
pub fn cgroup_name(id: &str) -> String {
    let prefix =
        std::env::var("MINI_DOCKER_CGROUP_PREFIX").unwrap_or_else(|_| "mini-docker-".into());
    format!("{prefix}{id}")
}

/// The container's root filesystem at `containers/ID/merged`: the image's
/// layers, its init layer, its own upper directory (every layer remapped
/// under a user namespace), and who owns what the engine creates in it.
/// The monitor's, and `docker cp`'s for a stopped container (in a mount
/// namespace of its own).
pub(crate) fn mount_rootfs(paths: &Paths, c: &Container) -> Result<(chapter_03::Mounted, Owner)> {
    let dir = paths.container(&c.id);
    let driver = chapter_03::Driver::detect(&dir);
    let id_map = c.userns.as_ref().map(crate::state::UsernsMap::to_id_map);
    let owner: Owner = id_map
        .as_ref()
        .and_then(|m| Some((m.root_uid()?, m.root_gid()?)));
    // The image's layers, and on top the init layer: the mount points the
    // engine needs, so they are not the container's changes (diff, commit,
    // a build's RUN).
    let mut lowers = c.layers.clone();
    lowers.push(init_layer(&dir, c)?);
    let mounted = match &id_map {
        None => driver.mount(&lowers, &dir),
        Some(map) => {
            let cache = paths.remapped_layers(map);
            driver
                .mount_remapped(
                    &lowers,
                    &dir,
                    &chapter_03::driver::Remap { map, cache: &cache },
                )
                .map(|(mounted, _method)| mounted)
        }
    }
    .map_err(|e| anyhow!("mounting the container's root filesystem: {e}"))?;
    Ok((mounted, owner))
}

fn run(paths: &Paths, id: &str, go: File, report: &mut File, log_fd: &OwnedFd) -> Result<()> {
    let c: Container = read_json(&paths.config(id))?;
    let dir = paths.container(id);
    let id_map = c.userns.as_ref().map(crate::state::UsernsMap::to_id_map);
    let (mounted, owner) = mount_rootfs(paths, &c)?;
    // The working directory (and any mount point the init layer lacks) is
    // created when the image lacks it, in the container's own layer.
    for dir in ["/proc", "/dev", "/sys", &c.workdir] {
        ensure_dir(mounted.merged(), dir, owner)?;
    }
    // A read-only /sys first, as Docker gives one (its masked paths hide
    // parts of it), then the user's mounts.
    let sys = resolve_target(mounted.merged(), "/sys", false, owner)?;
    let host_network = c.host_config.network_mode == "host";
    let mut extra_mounts = vec![if crate::rootless::active() && host_network {
        // Rootless on the host's network: a sysfs shows the mounter's
        // network namespace, and the host's is not the engine's to mount
        // for. The host's /sys, bound whole, shows the same; its files stay
        // the host root's, so writes fail as they would for the user.
        chapter_01::ExtraMount::Bind {
            source: "/sys".into(),
            target: sys.clone(),
            readonly: false,
        }
    } else {
        chapter_01::ExtraMount::Sysfs {
            target: sys.clone(),
            readonly: !c.host_config.privileged,
        }
    }];
    for m in &c.mounts {
        extra_mounts.push(prepare_mount(mounted.merged(), m, owner)?);
    }
    for d in &c.host_config.devices {
        for node in gather_devices(d).map_err(|e| anyhow!(e))? {
            extra_mounts.push(device_mount(mounted.merged(), &node, owner)?);
        }
    }
    // The daemon's /etc/hostname, /etc/hosts, /etc/resolv.conf (not for
    // --network host, and not where the user mounted their own).
    for (source, destination) in daemon_files(&dir, &c) {
        let target = resolve_target(mounted.merged(), destination, true, owner)?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&source, Some(uid), Some(gid))?;
        }
        extra_mounts.push(chapter_01::ExtraMount::Bind {
            source,
            target,
            readonly: false,
        });
    }
    // Where the daemon said (crate::cgroups); rootless on a host that
    // delegates no cgroup, none (the daemon refused every limit before the
    // container was made).
    let placement = crate::cgroups::inherited();
    let (cgroup, warnings) = match &placement {
        crate::cgroups::Placement::Unavailable(_) => (
            chapter_02::container::CgroupGuard(Box::new(NoCgroup)),
            vec![],
        ),
        crate::cgroups::Placement::V2(parent) | crate::cgroups::Placement::Delegated(parent) => {
            chapter_02::container::create_limited_in(
                parent,
                &cgroup_name(id),
                &container_limits(&c).map_err(|e| anyhow!(e))?,
            )?
        }
        crate::cgroups::Placement::Own => chapter_02::container::create_limited(
            &cgroup_name(id),
            &container_limits(&c).map_err(|e| anyhow!(e))?,
        )?,
    };
    // A limit this host's cgroups cannot apply is said, never dropped: the
    // monitor's stderr is containers/ID/monitor.log.
    for warning in warnings {
        eprintln!("container {id}: {warning}");
    }

    let mut stdio = make_stdio(&c)?;
    let mut spec = spec_for(&c, mounted.merged(), paths)?;
    if let Some(map) = id_map {
        spec.namespaces.insert(chapter_01::Namespace::User);
        spec.id_map = Some(map);
    }
    spec.mounts = extra_mounts;
    // Its own cgroup at /sys/fs/cgroup, under a cgroup namespace or not.
    let private_cgroupns = c.host_config.cgroupns_mode == "private";
    if private_cgroupns {
        spec.namespaces.insert(chapter_01::Namespace::Cgroup);
    }
    if !matches!(placement, crate::cgroups::Placement::Unavailable(_)) {
        spec.cgroupfs = Some(
            chapter_02::view::for_container(
                &*cgroup.0,
                private_cgroupns,
                sys.join("fs/cgroup"),
                !c.host_config.privileged,
            )
            .map_err(|e| anyhow!("the container's /sys/fs/cgroup: {e}"))?,
        );
    }
    if let Some((_, theirs)) = &stdio.console {
        spec.console_socket = Some(theirs.as_raw_fd());
        spec.console_size = c
            .host_config
            .console_size
            .filter(|[h, w]| *h > 0 && *w > 0)
            .map(|[h, w]| (h, w));
    }
    let own_pid_ns = join_namespaces(paths, &c.host_config)?;
    let spawned = spawn_paused(&spec, &mut stdio, &*cgroup.0, log_fd);
    // Back to our own PID namespace for children: a thread cannot be made
    // while the caller's children would go to another (clone(2), EINVAL).
    if let Some(ns) = own_pid_ns {
        nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWPID)
            .context("returning to the monitor's PID namespace")?;
    }
    let mut child = spawned?;
    // --ulimit: set on PID 1 while it waits for go, kept across its exec.
    for u in c.host_config.ulimits.iter().flatten() {
        let (resource, limit) = u.resource().map_err(|e| anyhow!(e))?;
        // SAFETY: prlimit(2) on our paused child with a valid rlimit.
        let rc =
            unsafe { libc::prlimit(child.pid().as_raw(), resource, &limit, std::ptr::null_mut()) };
        if rc < 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("--ulimit {}", u.name));
        }
    }

    let shared = Arc::new(Shared {
        tty: c.config.tty,
        stdin_once: c.config.stdin_once,
        attachers: Mutex::new(Vec::new()),
        waiters: Mutex::new(Vec::new()),
        stdin: Mutex::new(stdio.stdin.take()),
        early_stdin: Mutex::new(Vec::new()),
        master: Mutex::new(None),
        exited: Mutex::new(None),
        log: Mutex::new(log_writer(paths, &c)?),
    });
    let socket = paths.socket(id);
    let _ = std::fs::remove_file(&socket);
    let listener = UnixListener::bind(&socket)
        .with_context(|| format!("listening on {}", socket.display()))?;
    {
        let shared = shared.clone();
        std::thread::spawn(move || serve(listener, shared));
    }
    writeln!(report, "ready {}", child.pid())?;

    // Wait for the daemon's go (after it attached what it must).
    let mut line = String::new();
    BufReader::new(go).read_line(&mut line)?;
    if line.trim() != "go" {
        return Err(anyhow!(
            "the daemon went away before starting the container"
        ));
    }
    let mut state = State {
        status: Status::Running,
        pid: child.pid().as_raw(),
        monitor_pid: std::process::id() as i32,
        started_at: jsonlog::now(),
        cgroup_dirs: cgroup.0.dirs(),
        ..State::default()
    };
    write_json(&paths.state(id), &state)?;
    if let Err(e) = child.start() {
        let code = e.exit_code();
        let message = start_error(&e, &c.args[0]);
        state = State {
            status: Status::Created,
            exit_code: code,
            error: message.clone(),
            ..State::default()
        };
        drop((cgroup, mounted));
        write_json(&paths.state(id), &state)?;
        let _ = std::fs::remove_file(&socket);
        writeln!(report, "error {code} {}", one_line(&message))?;
        return Ok(());
    }
    if let Some((ours, theirs)) = stdio.console.take() {
        drop(theirs);
        let master = chapter_01::console::receive_console(ours.as_raw_fd())
            .context("receiving the container's terminal")?;
        stdio
            .outputs
            .push((Stream::Stdout, File::from(master.try_clone()?)));
        if c.config.open_stdin {
            let mut writer = File::from(master.try_clone()?);
            let mut stdin = shared.stdin.lock().unwrap();
            let early = std::mem::take(&mut *shared.early_stdin.lock().unwrap());
            let _ = writer.write_all(&early);
            *stdin = Some(writer);
        }
        *shared.master.lock().unwrap() = Some(master.as_raw_fd());
        stdio.master = Some(master);
    }
    writeln!(report, "started {}", state.pid)?;
    drop(std::mem::replace(report, File::open("/dev/null")?));

    let pumps: Vec<_> = stdio
        .outputs
        .into_iter()
        .map(|(stream, reader)| {
            let shared = shared.clone();
            std::thread::spawn(move || pump(stream, reader, &shared))
        })
        .collect();
    let exit_code = child.wait()?;
    let stats = cgroup.0.stats().unwrap_or_default();
    // Whatever PID 1 left behind dies with it (a PID namespace ends with
    // its init); the cgroup makes sure, and then the pipes reach EOF.
    let _ = cgroup.0.kill_all();
    for p in pumps {
        let _ = p.join();
    }
    drop(cgroup);
    drop(mounted);
    drop(stdio.master);
    let _ = std::fs::remove_file(&socket);
    record_exit(
        &paths.state(id),
        &mut state,
        exit_code,
        stats.oom_kills,
        &shared,
    )?;
    // A wait or attach that connected while record_exit answered the others
    // (or any later one, until the socket is gone) gets the end at once.
    let exit = Exit {
        exit_code: state.exit_code,
        oom_killed: state.oom_killed,
    };
    let line = serde_json::to_string(&exit)? + "\n";
    let mut waiters = shared.waiters.lock().unwrap();
    *shared.exited.lock().unwrap() = Some(line.clone());
    for mut w in waiters.drain(..) {
        let _ = w.write_all(line.as_bytes());
    }
    for a in shared.attachers.lock().unwrap().drain(..) {
        let _ = a.conn.shutdown(std::net::Shutdown::Both);
    }
    Ok(())
}

// ANCHOR: spawn_paused
// exercise 6.4: clone the container paused, with its stdio, and put it in its cgroup
// builds on: 6.3
// hint: Chapters 01 and 02 meet here. chapter_01::spawn clones PID 1 into
//   its namespaces and leaves it waiting for go; in that gap it joins its
//   cgroup (cgroup.add), so not one instruction of the command runs
//   unlimited. The daemon says go later, after it attached its streams.
// hint: The child gets a copy of our descriptor table at clone(2): put its
//   stdio (stdio.child: pipes, or a terminal's slave) on 0, 1, 2 just for that
//   moment (dup2), then take ours back at once, whatever spawn returned: 0
//   and 1 from /dev/null, 2 the monitor's own log (log_fd). Then close
//   stdio.child: the container holds the only copies now, so the pipes reach
//   EOF when it exits.
// hint: clone(2) ("CLONE_FILES not set": the child gets a copy of the
//   descriptor table); dup2(2); cgroups(7) on joining. dup2 is a helper here.
/// Clones the container's PID 1 (waiting for go) with its stdio, and puts
/// it in its cgroup.
fn spawn_paused(
    spec: &chapter_01::Spec,
    stdio: &mut Stdio,
    cgroup: &dyn chapter_02::Cgroup,
    log_fd: &OwnedFd,
) -> Result<chapter_01::Child> {
    for (i, fd) in stdio.child.iter().enumerate() {
        dup2(fd.as_raw_fd(), i as RawFd)?;
    }
    let spawned = chapter_01::spawn(spec);
    let null = File::open("/dev/null")?;
    dup2(null.as_raw_fd(), 0)?;
    dup2(null.as_raw_fd(), 1)?;
    dup2(log_fd.as_raw_fd(), 2)?;
    stdio.child.clear();
    let child = spawned?;
    cgroup
        .add(child.pid())
        .map_err(|e| anyhow!(e))
        .context("moving the container into its cgroup")?;
    Ok(child)
}
// ANCHOR_END: spawn_paused

// ANCHOR: record_exit
// exercise 6.5: record the exit: the state file, then everyone waiting
// builds on: 6.4
// hint: The last transition of the state machine (created → running →
//   exited), written by the monitor because the daemon may be gone: status
//   Exited, no PID, the exit code, whether the OOM killer did it (137, and
//   the cgroup counted an OOM kill), the time (jsonlog::now), no cgroup
//   directories any more. write_json replaces state.json atomically: a
//   crash leaves the old state or the new one.
// hint: Only after the file is written, tell the others: each `wait`
//   connection gets one JSON line of Exit, and every attach stream is shut
//   down (both directions), which ends the client's output. A write to a
//   client that went away is not an error.
// hint: Docker's container states (`docker inspect` State.Status,
//   ExitCode, OOMKilled, FinishedAt); rename(2) for the atomic write.
fn record_exit(
    state_file: &Path,
    state: &mut State,
    exit_code: i32,
    oom_kills: u64,
    shared: &Shared,
) -> Result<()> {
    let exit = Exit {
        exit_code,
        oom_killed: exit_code == 137 && oom_kills > 0,
    };
    state.status = Status::Exited;
    state.pid = 0;
    state.exit_code = exit.exit_code;
    state.oom_killed = exit.oom_killed;
    state.finished_at = jsonlog::now();
    state.cgroup_dirs.clear();
    write_json(state_file, state)?;
    let line = serde_json::to_string(&exit)? + "\n";
    for mut w in shared.waiters.lock().unwrap().drain(..) {
        let _ = w.write_all(line.as_bytes());
    }
    for a in shared.attachers.lock().unwrap().drain(..) {
        let _ = a.conn.shutdown(std::net::Shutdown::Both);
    }
    Ok(())
}
// ANCHOR_END: record_exit

/// A start failure in Docker's words; the `docker` CLI looks for
/// "executable file not found" (exit 127) and "permission denied" (126).
fn start_error(e: &chapter_01::Error, program: &str) -> String {
    match e {
        chapter_01::Error::Exec { errno, .. } if *errno == nix::errno::Errno::ENOENT => {
            format!("exec: \"{program}\": executable file not found in $PATH")
        }
        chapter_01::Error::Exec { errno, .. } if *errno == nix::errno::Errno::EACCES => {
            format!("exec: \"{program}\": permission denied")
        }
        other => other.to_string(),
    }
}

/// The container's json-file log with its rotation; none for `--log-driver none`.
fn log_writer(paths: &Paths, c: &Container) -> Result<Option<jsonlog::Writer>> {
    let config = c.host_config.log_config.clone().unwrap_or_default();
    if !config.keeps() {
        return Ok(None);
    }
    let (size, files) = config.rotation().map_err(|e| anyhow!(e))?;
    Ok(Some(jsonlog::Writer::open(&paths.log(&c.id), size, files)?))
}

/// Copies one output stream to the log and every attached client.
fn pump(stream: Stream, mut reader: File, shared: &Shared) {
    let name = match stream {
        Stream::Stderr => "stderr",
        _ => "stdout",
    };
    let mut pending = Vec::new();
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) | Err(_) => break, // EOF, or EIO from a PTY whose slave is gone
            Ok(n) => n,
        };
        let now = jsonlog::now();
        if let Some(log) = shared.log.lock().unwrap().as_mut() {
            for line in jsonlog::split_lines(&mut pending, &buf[..n]) {
                let _ = log.write_line(&jsonlog::log_line(name, &line, &now));
            }
        }
        let wire = if shared.tty {
            buf[..n].to_vec()
        } else {
            frame(stream, &buf[..n])
        };
        shared.attachers.lock().unwrap().retain_mut(|a| {
            let wanted = match stream {
                Stream::Stderr => a.stderr,
                _ => a.stdout,
            };
            !wanted || a.conn.write_all(&wire).is_ok()
        });
    }
    if !pending.is_empty() {
        let line = jsonlog::log_line(name, &pending, &jsonlog::now());
        if let Some(log) = shared.log.lock().unwrap().as_mut() {
            let _ = log.write_line(&line);
        }
    }
}

fn serve(listener: UnixListener, shared: Arc<Shared>) {
    for conn in listener.incoming().flatten() {
        let shared = shared.clone();
        std::thread::spawn(move || {
            let _ = handle(conn, &shared);
        });
    }
}

fn handle(conn: UnixStream, shared: &Shared) -> Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    // Wait and Attach are acknowledged ("ok") once registered, under the
    // lock the exit and the output take: the daemon says go only after the
    // ok, so no output and no exit can pass a client by.
    match serde_json::from_str::<Hello>(&line)? {
        Hello::Wait => {
            let mut waiters = shared.waiters.lock().unwrap();
            (&conn).write_all(b"ok\n")?;
            match shared.exited.lock().unwrap().as_deref() {
                Some(exit) => (&conn).write_all(exit.as_bytes())?,
                None => waiters.push(conn),
            }
        }
        Hello::Resize { height, width } => {
            if let Some(master) = *shared.master.lock().unwrap() {
                let size = libc::winsize {
                    ws_row: height,
                    ws_col: width,
                    ws_xpixel: 0,
                    ws_ypixel: 0,
                };
                // SAFETY: TIOCSWINSZ reads a winsize from a valid pointer.
                unsafe { libc::ioctl(master, libc::TIOCSWINSZ, &size) };
            }
            (&conn).write_all(b"ok\n")?;
        }
        Hello::Attach {
            stdin,
            stdout,
            stderr,
        } => {
            {
                let mut attachers = shared.attachers.lock().unwrap();
                (&conn).write_all(b"ok\n")?;
                if shared.exited.lock().unwrap().is_some() {
                    let _ = conn.shutdown(std::net::Shutdown::Both);
                    return Ok(());
                }
                attachers.push(Attacher {
                    conn: conn.try_clone()?,
                    stdout,
                    stderr,
                });
            }
            if stdin {
                let mut buf = vec![0u8; 32 * 1024];
                // Bytes the hello's reader already buffered belong to stdin.
                let early = reader.buffer().to_vec();
                feed_stdin(shared, &early);
                let mut conn = reader.into_inner();
                loop {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => feed_stdin(shared, &buf[..n]),
                    }
                }
                // The client closed its writing half: with StdinOnce the
                // container's stdin closes too (`echo hi | docker run -i`).
                if shared.stdin_once && !shared.tty {
                    shared.stdin.lock().unwrap().take();
                }
            }
        }
    }
    Ok(())
}

fn feed_stdin(shared: &Shared, bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    match shared.stdin.lock().unwrap().as_mut() {
        Some(w) => {
            let _ = w.write_all(bytes);
        }
        // The terminal is still being made inside the container: what a
        // client types meanwhile goes in once it is there.
        None if shared.tty => shared.early_stdin.lock().unwrap().extend_from_slice(bytes),
        None => {}
    }
}

/// Where a volume, bind or tmpfs goes: its destination resolved inside the
/// root (created as a directory, or as a file for a file bind), as the real
/// host path the mount(2) call will use. Nothing runs in the container yet,
/// so no one can swap a component between this and the mount.
fn prepare_mount(root: &Path, m: &MountPoint, owner: Owner) -> Result<chapter_01::ExtraMount> {
    let source_is_file = m.kind == MountKind::Bind && m.source.is_file();
    let target = resolve_target(root, &m.destination, source_is_file, owner)?;
    if target == root.canonicalize()? {
        return Err(anyhow!(
            "mount destination {} resolves to the container's root (a symlink in the image?)",
            m.destination
        ));
    }
    Ok(match m.kind {
        MountKind::Tmpfs => chapter_01::ExtraMount::Tmpfs {
            target,
            options: if m.options.is_empty() {
                "mode=1777".into()
            } else {
                m.options.clone()
            },
        },
        MountKind::Volume => {
            // A new, empty volume starts with what the image has at its
            // destination (Docker's copy on first mount).
            let empty = std::fs::read_dir(&m.source)
                .map(|mut d| d.next().is_none())
                .unwrap_or(false);
            let has_content = std::fs::read_dir(&target)
                .map(|mut d| d.next().is_some())
                .unwrap_or(false);
            if empty && has_content && !m.readonly {
                chapter_03::copy::materialize(std::slice::from_ref(&target), &m.source)
                    .with_context(|| {
                        format!("copying the image's {} into the volume", m.destination)
                    })?;
            }
            // A volume the daemon made (root's) is the container's root's
            // to write, under a user namespace.
            if let Some((uid, gid)) = owner {
                use std::os::unix::fs::MetadataExt;
                let meta = std::fs::metadata(&m.source)?;
                if (meta.uid(), meta.gid()) == (0, 0) {
                    std::os::unix::fs::chown(&m.source, Some(uid), Some(gid))?;
                }
            }
            chapter_01::ExtraMount::Bind {
                source: m.source.clone(),
                target,
                readonly: m.readonly,
            }
        }
        MountKind::Bind => chapter_01::ExtraMount::Bind {
            source: m.source.clone(),
            target,
            readonly: m.readonly,
        },
    })
}

/// `dest` inside `root`, created if missing, as a real path under `root`.
pub(crate) fn resolve_target(
    root: &Path,
    dest: &str,
    file: bool,
    owner: Owner,
) -> Result<std::path::PathBuf> {
    let root_fd = File::open(root)?;
    let parent = match dest.rsplit_once('/') {
        Some((p, _)) if !p.is_empty() => p,
        _ => "/",
    };
    ensure_dir(root, parent, owner)?;
    if file {
        if let Err(e) = open_in_root(&root_fd, dest, 0) {
            if e.raw_os_error() != Some(libc::ENOENT) {
                return Err(e).with_context(|| format!("mount destination {dest}"));
            }
            let dir = open_in_root(&root_fd, parent, libc::O_DIRECTORY)?;
            let name = std::ffi::CString::new(dest.rsplit('/').next().unwrap_or(""))?;
            // SAFETY: openat on a directory descriptor we hold; the new
            // descriptor is closed at once.
            let fd = unsafe {
                libc::openat(
                    dir.as_raw_fd(),
                    name.as_ptr(),
                    libc::O_CREAT
                        | libc::O_EXCL
                        | libc::O_WRONLY
                        | libc::O_CLOEXEC
                        | libc::O_NOFOLLOW,
                    0o644,
                )
            };
            if fd < 0 {
                return Err(std::io::Error::last_os_error())
                    .with_context(|| format!("creating mount point {dest}"));
            }
            unsafe { libc::close(fd) };
            give(dir.as_raw_fd(), &name, owner)
                .with_context(|| format!("giving {dest} to the container's root"))?;
        }
    } else {
        ensure_dir(root, dest, owner)?;
    }
    let handle = open_in_root(&root_fd, dest, if file { 0 } else { libc::O_DIRECTORY })
        .with_context(|| format!("mount destination {dest}"))?;
    let real = std::fs::read_link(format!("/proc/self/fd/{}", handle.as_raw_fd()))?;
    let root_real = root.canonicalize()?;
    if !real.starts_with(&root_real) {
        return Err(anyhow!(
            "mount destination {dest} resolves to {} outside the container",
            real.display()
        ));
    }
    Ok(real)
}

/// Creates a directory inside the container's root if it is missing (as
/// Docker does for the working directory), resolving every component
/// inside the root: a symlink in the image cannot point the creation
/// outside.
pub fn ensure_dir(root: &Path, workdir: &str, owner: Owner) -> Result<()> {
    let root_fd = File::open(root)?;
    let mut prefix = String::new();
    for part in workdir.split('/').filter(|p| !p.is_empty()) {
        let parent = prefix.clone();
        prefix = format!("{prefix}/{part}");
        match open_in_root(&root_fd, &prefix, libc::O_DIRECTORY) {
            Ok(_) => continue,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                let dir = if parent.is_empty() {
                    root_fd.try_clone()?
                } else {
                    open_in_root(&root_fd, &parent, libc::O_DIRECTORY)?
                };
                let name = std::ffi::CString::new(part)?;
                // SAFETY: mkdirat on a directory descriptor we hold.
                if unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), 0o755) } < 0 {
                    return Err(std::io::Error::last_os_error())
                        .with_context(|| format!("creating working directory {workdir}"));
                }
                give(dir.as_raw_fd(), &name, owner)
                    .with_context(|| format!("giving {prefix} to the container's root"))?;
            }
            Err(e) => {
                return Err(e).with_context(|| format!("working directory {workdir}"));
            }
        }
    }
    Ok(())
}

/// Who owns what the monitor creates in a container's root: with a user
/// namespace, the container's root (host ids), so that root inside owns
/// its mount points and working directory, as Docker makes them.
pub type Owner = Option<(u32, u32)>;

/// `fchownat` of `name` in `dir` to `owner`, if any (not following links).
fn give(dir: RawFd, name: &std::ffi::CStr, owner: Owner) -> std::io::Result<()> {
    let Some((uid, gid)) = owner else {
        return Ok(());
    };
    // SAFETY: fchownat on a directory descriptor we hold and a C string.
    let rc = unsafe { libc::fchownat(dir, name.as_ptr(), uid, gid, libc::AT_SYMLINK_NOFOLLOW) };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// `openat2(RESOLVE_IN_ROOT)`: `..` and absolute symlinks stop at `root`.
fn open_in_root(root: &File, path: &str, extra: i32) -> std::io::Result<File> {
    let relative = path.trim_start_matches('/');
    let path = std::ffi::CString::new(if relative.is_empty() { "." } else { relative })?;
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (libc::O_PATH | libc::O_CLOEXEC | extra) as u64;
    how.resolve = libc::RESOLVE_IN_ROOT;
    // SAFETY: openat2 with a valid dirfd, C string and open_how of the
    // right size; a returned descriptor is ours.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root.as_raw_fd(),
            path.as_ptr(),
            &raw const how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor from the kernel.
    Ok(unsafe { File::from_raw_fd(fd as RawFd) })
}
