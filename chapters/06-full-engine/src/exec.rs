//! `docker exec`: a new process inside a running container. There is no
//! "container" object in the kernel to enter, only the namespaces and the
//! cgroup of its PID 1, so that is what the exec helper joins:
//!
//! 1. write its own PID into the container's `cgroup.procs` (host paths,
//!    so before entering the mount namespace);
//! 2. `setns(2)` into the IPC, UTS, network, PID and mount namespaces of
//!    PID 1 (opened first: after the mount namespace switch, `/proc` is the
//!    container's). `setns` of a mount namespace needs a single-threaded
//!    caller, which is why the helper is a fresh process (`mini-dockerd
//!    exec-helper`), not a thread of the daemon;
//! 3. fork (a PID namespace applies to children only) and, in the child,
//!    take the same hardening as the container (capabilities, no_new_privs,
//!    the user), then `execve`. The helper waits and passes the exit code on.

use anyhow::{anyhow, Context, Result};
use serde::{Deserialize, Serialize};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;

/// What to run, passed to the helper as JSON.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct ExecSpec {
    /// The container's PID 1, as the host sees it.
    pub pid: i32,
    pub cgroup_dirs: Vec<PathBuf>,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub workdir: String,
    pub uid: u32,
    pub gid: u32,
    pub tty: bool,
    /// With `tty`: the terminal's rows and columns.
    #[serde(default)]
    pub console_size: Option<(u16, u16)>,
    /// The container's capabilities and privileged flag come from here.
    #[serde(default)]
    pub host_config: crate::api::HostConfig,
    #[serde(default)]
    pub confinement: crate::security::Confinement,
    /// `exec --privileged`: every capability for this process.
    #[serde(default)]
    pub privileged: bool,
    /// The container has a user namespace of its own (`--userns-remap`).
    #[serde(default)]
    pub userns: bool,
    /// Where compiled seccomp programs are kept (the engine's root).
    #[serde(default)]
    pub seccomp_cache: Option<PathBuf>,
    /// The container's extra groups (`--group-add`).
    #[serde(default)]
    pub groups: Vec<u32>,
}

impl ExecSpec {
    /// The namespaces to join, in order: the user namespace first where the
    /// container has one (it owns all the others: joining it gives the
    /// capabilities the other joins need), then [`NAMESPACES`]; those PID 1
    /// shares with us are left out (a container under `--cgroupns host`
    /// has the host's cgroup namespace, which a process in the container's
    /// user namespace may not join, and needs not).
    pub fn namespaces(&self) -> Vec<&'static str> {
        use std::os::unix::fs::MetadataExt;
        let id = |pid: &str, ns: &str| {
            std::fs::metadata(format!("/proc/{pid}/ns/{ns}")).map(|m| (m.dev(), m.ino()))
        };
        let user = self.userns.then_some("user");
        user.into_iter()
            .chain(NAMESPACES)
            .filter(|ns| match (id("self", ns), id(&self.pid.to_string(), ns)) {
                (Ok(ours), Ok(theirs)) => ours != theirs,
                _ => true,
            })
            .collect()
    }
}

/// With a TTY, the descriptor the helper sends the terminal's master over
/// (the daemon's socket, given to it as this descriptor).
pub const CONSOLE_FD: i32 = 3;

/// The namespaces joined, in order; the mount namespace last. The cgroup
/// namespace after the cgroup: joining one does not move us, and our
/// cgroup must already be the container's for its paths to make sense.
const NAMESPACES: [&str; 6] = ["ipc", "uts", "net", "pid", "cgroup", "mnt"];

// ANCHOR: enter
// exercise 6.13: enter a running container: its cgroup, then its namespaces
// builds on: 6.10
// hint: There is no container object in the kernel to enter, only what its
//   PID 1 (spec.pid) belongs to. Join the cgroup first (write our PID into
//   each of spec.cgroup_dirs' cgroup.procs: host paths, so while our /proc and
//   / are still the host's), then setns(2) into each of spec.namespaces() of
//   PID 1 (NAMESPACES, after "user" when the container has its own).
// hint: Open every /proc/PID/ns/NAME first, then enter them: after the mount
//   namespace switch the paths mean the container's files. That is why "mnt"
//   is last in NAMESPACES. The PID namespace applies to the children of the
//   caller, not the caller: helper_main forks after this. Errors name the
//   namespace or the cgroup and the PID.
// hint: setns(2) (the notes on CLONE_NEWNS needing a single-threaded caller,
//   and on CLONE_NEWPID); nsenter(1); cgroups(7) "cgroup.procs".
/// Joins the cgroup and the namespaces of the container's PID 1.
pub fn enter(spec: &ExecSpec) -> Result<()> {
    let me = std::process::id().to_string();
    for dir in &spec.cgroup_dirs {
        std::fs::write(dir.join("cgroup.procs"), &me)
            .with_context(|| format!("joining cgroup {}", dir.display()))?;
    }
    let names = spec.namespaces();
    let fds = names
        .iter()
        .map(|ns| {
            std::fs::File::open(format!("/proc/{}/ns/{ns}", spec.pid))
                .with_context(|| format!("opening the {ns} namespace of PID {}", spec.pid))
        })
        .collect::<Result<Vec<_>>>()?;
    for (fd, ns) in fds.iter().zip(names) {
        nix::sched::setns(fd, nix::sched::CloneFlags::empty())
            .with_context(|| format!("entering the container's {ns} namespace"))?;
    }
    Ok(())
}
// ANCHOR_END: enter

/// Entry point of `mini-dockerd exec-helper`. Returns the exit code.
pub fn helper_main(spec: &ExecSpec) -> Result<i32> {
    // Not dumpable: between its fork and its execve, our child is a copy
    // of this host binary inside the container's PID namespace; a process
    // of the container must not ptrace it or open its /proc/PID/exe (runc's
    // CVE-2016-9962 and CVE-2019-5736). execve makes the command dumpable
    // again.
    // SAFETY: prctl with constant arguments.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    // The container's capabilities (all of them for --privileged), its
    // no_new_privs and its seccomp filter, as PID 1 got them; worked out
    // while /proc is still ours.
    let capabilities = if spec.privileged {
        crate::security::all_capabilities()
    } else {
        crate::security::container_capabilities(&spec.host_config).map_err(|e| anyhow!(e))?
    };
    let mut security = crate::security::hardening(
        &spec.host_config,
        &spec.confinement,
        capabilities,
        (spec.uid, spec.gid),
        &spec.groups,
        spec.seccomp_cache.as_deref(),
    )?;
    security.masked_paths.clear(); // the container's mounts already hide them
    security.readonly_paths.clear();
    let hardening = chapter_01::security::Prepared::new(&security);
    // The container's --ulimit, for what runs in it later too.
    for u in spec.host_config.ulimits.iter().flatten() {
        let (resource, limit) = u.resource().map_err(|e| anyhow!(e))?;
        // SAFETY: setrlimit(2) on ourselves with a valid rlimit.
        if unsafe { libc::setrlimit(resource, &limit) } < 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("--ulimit {}", u.name));
        }
    }
    enter(spec)?;
    // In the container's user namespace we are still host root, which it
    // does not map: become its root, as PID 1 did (chapter 01's become_root).
    if spec.userns {
        use nix::unistd::{setgroups, setresgid, setresuid, Gid, Uid};
        setgroups(&[])
            .and_then(|()| setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0)))
            .and_then(|()| setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0)))
            .context("becoming root of the container's user namespace")?;
    }
    // Now our root and working directory are the container's root. A
    // terminal comes from its own /dev/ptmx, as PID 1's did; its slave is
    // our stdio from here, and so the command's.
    if spec.tty {
        let (rows, cols) = spec.console_size.unwrap_or((0, 0));
        chapter_01::console::make_console(CONSOLE_FD, rows, cols)
            .map_err(|e| anyhow!("making the exec's terminal inside the container: {e}"))?;
        // SAFETY: closing our end of the console socket; the master is sent.
        unsafe { libc::close(CONSOLE_FD) };
    }
    let tty = spec.tty;
    let mut command = std::process::Command::new(&spec.args[0]);
    command
        .args(&spec.args[1..])
        .env_clear()
        .current_dir(&spec.workdir);
    for var in &spec.env {
        if let Some((k, v)) = var.split_once('=') {
            command.env(k, v);
        }
    }
    // SAFETY: the kernel calls are async-signal-safe system calls on
    // memory prepared before the fork.
    unsafe {
        command.pre_exec(move || {
            use chapter_01::sys::Sys;
            // The command dies with this helper: a health check's timeout
            // (or a client gone) kills the helper, and so what it ran.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let mut kernel = chapter_01::sys::Kernel::default();
            let result = if tty {
                kernel.controlling_terminal()
            } else {
                Ok(())
            };
            // The filter last: after this closure only execve follows.
            result
                .and_then(|()| chapter_01::security::apply(&mut kernel, &hardening))
                .and_then(|()| chapter_01::security::filter_last(&mut kernel, &hardening))
                .map_err(|errno| std::io::Error::from_raw_os_error(errno as i32))
        });
    }
    let program = &spec.args[0];
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("exec: \"{program}\": executable file not found in $PATH");
            return Ok(127);
        }
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            eprintln!("exec: \"{program}\": permission denied");
            return Ok(126);
        }
        Err(e) => return Err(anyhow!("starting {program:?} in the container: {e}")),
    };
    let status = child.wait()?;
    Ok(status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}
