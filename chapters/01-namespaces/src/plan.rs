//! From a [`Spec`] to everything the child needs, made before `clone(2)`:
//! the flags, every string as a C string, the `PATH` search done ahead.
//! The child may not allocate (see [`crate::child`]), so it only reads this.

use crate::mount::Prepared;
use crate::namespaces::{clone_flags, Namespace};
use crate::spec::{RootMode, Spec, DEFAULT_PATH};
use crate::user::IdMap;
use nix::sched::CloneFlags;
use std::ffi::CString;

/// The root filesystem part of a plan.
#[derive(Debug)]
pub struct Root {
    pub dir: CString,
    pub mode: RootMode,
    pub readonly: bool,
}

/// Everything the child needs, prepared before `clone(2)`.
#[derive(Debug)]
pub struct Plan {
    pub flags: CloneFlags,
    /// In a new user namespace: become its root; `Some(true)` also drops
    /// the supplementary groups (only allowed where setgroups is not denied).
    pub become_root: Option<bool>,
    /// A cgroup namespace, unshared after the go (not a clone flag).
    pub new_cgroup_ns: bool,
    /// A new mount namespace: make its mounts private first.
    pub private_mounts: bool,
    pub hostname: Option<CString>,
    pub loopback: bool,
    pub root: Option<Root>,
    /// No rootfs, but new PID and mount namespaces: mount a /proc of its
    /// own over the host's (like `unshare --pid --mount-proc`).
    pub own_proc: bool,
    pub mounts: Vec<Prepared>,
    /// The container's /sys/fs/cgroup.
    pub cgroupfs: Option<crate::cgroupfs::Prepared>,
    /// A terminal made inside, its master sent over the socket (rows, cols).
    pub new_console: Option<(std::os::fd::RawFd, u16, u16)>,
    pub console: bool,
    pub security: Option<crate::security::Prepared>,
    pub workdir: Option<CString>,
    /// Paths to try with `execve(2)`, in order (the `PATH` search, done ahead).
    pub candidates: Vec<CString>,
    pub argv: Vec<CString>,
    pub envp: Vec<CString>,
    /// Fork after the setup and stay as the command's init.
    pub init: Option<crate::init::Init>,
}

/// Builds a C string from text the spec has checked (no NUL bytes).
pub fn cstr(s: &str) -> CString {
    CString::new(s).expect("validated: no NUL in the spec's strings")
}

/// Builds the plan for a validated spec.
pub fn build(spec: &Spec) -> Plan {
    let ns = &spec.namespaces;
    let become_root = ns.contains(Namespace::User).then(|| {
        let map = spec
            .id_map
            .clone()
            .unwrap_or_else(IdMap::for_current_process);
        !map.deny_setgroups
    });
    let root = spec.rootfs.as_ref().map(|rootfs| Root {
        dir: cstr(rootfs.to_string_lossy().trim_end_matches('/')),
        mode: spec.root_mode,
        readonly: spec.readonly_rootfs,
    });
    Plan {
        // The cgroup namespace comes after the go: see crate::cgroupfs.
        flags: clone_flags(ns) - CloneFlags::CLONE_NEWCGROUP,
        become_root,
        new_cgroup_ns: ns.contains(Namespace::Cgroup),
        private_mounts: ns.contains(Namespace::Mount),
        hostname: spec
            .hostname
            .as_deref()
            .filter(|_| ns.contains(Namespace::Uts))
            .map(cstr),
        loopback: ns.contains(Namespace::Net),
        own_proc: root.is_none() && ns.contains(Namespace::Mount) && ns.contains(Namespace::Pid),
        root,
        mounts: crate::mount::prepare(&spec.mounts),
        cgroupfs: spec
            .cgroupfs
            .as_ref()
            .filter(|_| spec.rootfs.is_some())
            .map(crate::cgroupfs::Prepared::new),
        new_console: spec.console_socket.filter(|_| spec.console).map(|socket| {
            let (rows, cols) = spec.console_size.unwrap_or((0, 0));
            (socket, rows, cols)
        }),
        console: spec.console,
        security: spec.security.as_ref().map(crate::security::Prepared::new),
        workdir: (spec.workdir != "/" || spec.rootfs.is_none()).then(|| cstr(&spec.workdir)),
        candidates: exec_candidates(&spec.command[0], &spec.env),
        argv: spec.command.iter().map(|a| cstr(a)).collect(),
        envp: spec.env.iter().map(|e| cstr(e)).collect(),
        init: spec.init.then(|| crate::init::Init::new(&spec.command)),
    }
}

/// The `PATH` search, done by the parent: a name with a `/` is used as is;
/// otherwise each directory of the container's `PATH` is tried in order.
fn exec_candidates(program: &str, env: &[String]) -> Vec<CString> {
    if program.contains('/') {
        return vec![cstr(program)];
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    path.split(':')
        .filter(|dir| !dir.is_empty())
        .map(|dir| cstr(&format!("{}/{program}", dir.trim_end_matches('/'))))
        .collect()
}
