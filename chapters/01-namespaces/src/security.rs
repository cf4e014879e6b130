//! What Docker adds around a container beyond namespaces, so that root
//! inside is a weaker root than root outside. Chapter 01's experiments run
//! without it (to show the bare mechanism); chapter 06's engine turns it on
//! with [`Security::docker_default`].
//!
//! Each measure answers a known escape:
//! - **capabilities** (capabilities(7)): root's power split into ~41 bits.
//!   Docker keeps 14; `CAP_SYS_ADMIN` (mount, and so much more),
//!   `CAP_SYS_MODULE`, `CAP_SYS_PTRACE`, `CAP_DAC_READ_SEARCH` (the 2014
//!   "shocker" `open_by_handle_at` escape) are gone from every set, the
//!   bounding set included, so nothing executed later can regain them.
//! - **no_new_privs** (`PR_SET_NO_NEW_PRIVS`): a setuid binary or file
//!   capability cannot raise privileges across `execve`.
//! - **masked and read-only `/proc` paths**: `/proc/kcore` (kernel memory),
//!   `/proc/keys`, `/proc/timer_list`, `/proc/sched_debug` leak host state;
//!   `/proc/sys`, `/proc/sysrq-trigger` would change the host kernel.
//! - **closing inherited descriptors**: a descriptor of a host directory that
//!   survives into the container is a path out of it (runc's CVE-2024-21626
//!   leaked one and a `WORKDIR /proc/self/fd/N` walked through it).

use crate::sys::Sys;
use nix::errno::Errno;
use std::ffi::CString;

/// Docker's default capabilities, by number (see capabilities(7)).
pub const DOCKER_DEFAULT_CAPS: [(u32, &str); 14] = [
    (0, "CAP_CHOWN"),
    (1, "CAP_DAC_OVERRIDE"),
    (3, "CAP_FOWNER"),
    (4, "CAP_FSETID"),
    (5, "CAP_KILL"),
    (6, "CAP_SETGID"),
    (7, "CAP_SETUID"),
    (8, "CAP_SETPCAP"),
    (10, "CAP_NET_BIND_SERVICE"),
    (13, "CAP_NET_RAW"),
    (18, "CAP_SYS_CHROOT"),
    (27, "CAP_MKNOD"),
    (29, "CAP_AUDIT_WRITE"),
    (31, "CAP_SETFCAP"),
];

/// Paths hidden from the container (`/dev/null` over files, an empty
/// read-only tmpfs over directories), as Docker's default spec lists them.
pub const MASKED_PATHS: [&str; 12] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths left visible but read-only.
pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The user the command runs as (after all setup, which needs root).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
}

/// The hardening a container gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Security {
    /// Capabilities kept (a bit per capability number) in the bounding set;
    /// root also keeps them permitted and effective. Inheritable and
    /// ambient are always emptied.
    pub capabilities: u64,
    pub no_new_privs: bool,
    pub masked_paths: Vec<String>,
    pub readonly_paths: Vec<String>,
    /// `None` runs the command as root (uid 0 of the container).
    pub user: Option<User>,
}

impl Security {
    /// Docker's defaults (`docker run` without `--privileged` or `--cap-*`).
    pub fn docker_default() -> Security {
        Security {
            capabilities: caps_mask(DOCKER_DEFAULT_CAPS.iter().map(|(n, _)| *n)),
            no_new_privs: true,
            masked_paths: MASKED_PATHS.iter().map(|p| p.to_string()).collect(),
            readonly_paths: READONLY_PATHS.iter().map(|p| p.to_string()).collect(),
            user: None,
        }
    }
}

impl Security {
    /// Runs the command as `uid:gid` (with `gid` as its only group); root
    /// stays root, with Docker's capabilities.
    pub fn run_as(&mut self, uid: u32, gid: u32) {
        self.user = (uid != 0 || gid != 0).then(|| User {
            uid,
            gid,
            groups: vec![gid],
        });
    }
}

/// A capability set as the kernel shows it in `/proc/PID/status`.
pub fn caps_mask(caps: impl IntoIterator<Item = u32>) -> u64 {
    caps.into_iter().fold(0, |mask, cap| mask | (1u64 << cap))
}

/// The highest capability number this kernel knows.
pub fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// [`Security`] with its strings made and the kernel's last capability
/// read, before the clone (the child may not allocate or read files).
#[derive(Clone, Debug)]
pub struct Prepared {
    masked_paths: Vec<CString>,
    readonly_paths: Vec<CString>,
    no_new_privs: bool,
    keep_bounding: u64,
    last_cap: u32,
    user: Option<User>,
    /// Permitted and effective capabilities after the user switch.
    keep: u64,
}

impl Prepared {
    pub fn new(security: &Security) -> Prepared {
        let c = |p: &String| CString::new(p.as_str()).expect("validated: no NUL in paths");
        // A process that is not root holds no capabilities (as Docker since
        // 20.10): the bounding set stays, the rest is empty.
        let keep = match &security.user {
            Some(user) if user.uid != 0 => 0,
            _ => security.capabilities,
        };
        Prepared {
            masked_paths: security.masked_paths.iter().map(c).collect(),
            readonly_paths: security.readonly_paths.iter().map(c).collect(),
            no_new_privs: security.no_new_privs,
            keep_bounding: security.capabilities,
            last_cap: last_cap(),
            user: security.user.clone(),
            keep,
        }
    }
}

// ANCHOR: apply
/// The hardening, run inside the new root after everything that needs full
/// root is done, in this order: hide paths, then lock privileges down
/// (bounding set first: dropping needs CAP_SETPCAP; the user switch next;
/// the capability sets last), then mark every inherited descriptor
/// close-on-exec.
pub fn apply(sys: &mut impl Sys, p: &Prepared) -> Result<(), Errno> {
    for path in &p.masked_paths {
        sys.mask_path(path)?;
    }
    for path in &p.readonly_paths {
        sys.readonly_path(path)?;
    }
    if p.no_new_privs {
        sys.no_new_privs()?;
    }
    sys.drop_bounding_caps(p.keep_bounding, p.last_cap)?;
    if let Some(user) = &p.user {
        sys.setgroups(&user.groups)?;
        sys.setresgid(user.gid)?;
        sys.setresuid(user.uid)?;
    }
    sys.set_caps(p.keep)?;
    sys.close_inherited_fds()
}
// ANCHOR_END: apply
