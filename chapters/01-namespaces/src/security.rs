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
//! - **seccomp** (seccomp(2)): a BPF program the kernel runs at every
//!   system call, allowing a list and refusing the rest with EPERM
//!   (`keyctl`, `unshare`, `mount` without CAP_SYS_ADMIN, …). Chapter 06
//!   compiles Docker's profile into it; here it is only installed.
//! - **no_new_privs** (`PR_SET_NO_NEW_PRIVS`, `--security-opt
//!   no-new-privileges`; off by default in Docker): a setuid binary or
//!   file capability cannot raise privileges across `execve`.
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

/// Every capability by number, as capabilities(7) names them (Linux 5.9+).
pub const CAPABILITY_NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The number of a capability named as Docker accepts it: any case, with
/// or without `CAP_`.
pub fn capability_number(name: &str) -> Option<u32> {
    let upper = name.trim().to_ascii_uppercase();
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    CAPABILITY_NAMES
        .iter()
        .position(|n| *n == full)
        .map(|i| i as u32)
}

/// One instruction of a classic BPF program (`struct sock_filter`, see
/// bpf(4)): what seccomp(2) runs at every system call.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BpfInstruction {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// Installs `program` as this thread's seccomp filter
/// (`SECCOMP_SET_MODE_FILTER`). Needs no_new_privs or CAP_SYS_ADMIN.
/// Async-signal-safe: one system call on memory the caller holds.
pub fn install_filter(program: &[BpfInstruction]) -> Result<(), Errno> {
    #[repr(C)]
    struct SockFprog {
        len: u16,
        filter: *const BpfInstruction,
    }
    let Ok(len) = u16::try_from(program.len()) else {
        return Err(Errno::E2BIG);
    };
    let prog = SockFprog {
        len,
        filter: program.as_ptr(),
    };
    const SECCOMP_SET_MODE_FILTER: libc::c_ulong = 1;
    // SAFETY: `prog` points at `program`, alive for the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            0,
            &raw const prog,
        )
    };
    if rc < 0 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

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
    /// The seccomp filter, compiled (chapter 06 makes it from a profile);
    /// `None` is `seccomp=unconfined`.
    pub seccomp: Option<Vec<BpfInstruction>>,
}

impl Security {
    /// Docker's defaults (`docker run` without `--privileged` or `--cap-*`).
    pub fn docker_default() -> Security {
        Security {
            capabilities: caps_mask(DOCKER_DEFAULT_CAPS.iter().map(|(n, _)| *n)),
            no_new_privs: false,
            masked_paths: MASKED_PATHS.iter().map(|p| p.to_string()).collect(),
            readonly_paths: READONLY_PATHS.iter().map(|p| p.to_string()).collect(),
            user: None,
            seccomp: None,
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
    seccomp: Option<Vec<BpfInstruction>>,
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
            seccomp: security.seccomp.clone(),
        }
    }
}

// ANCHOR: apply
/// The hardening, run inside the new root after everything that needs full
/// root is done, in this order: hide paths, then lock privileges down
/// (bounding set first: dropping needs CAP_SETPCAP; the user switch next;
/// the capability sets last), then mark every inherited descriptor
/// close-on-exec. The seccomp filter goes in here only without
/// no_new_privs: installing it then needs CAP_SYS_ADMIN, so before the
/// capabilities go (as runc does; the filter allows the calls that follow).
/// With no_new_privs it is the very last step: see [`filter_last`].
pub fn apply(sys: &mut impl Sys, p: &Prepared) -> Result<(), Errno> {
    for path in &p.masked_paths {
        sys.mask_path(path)?;
    }
    for path in &p.readonly_paths {
        sys.readonly_path(path)?;
    }
    if p.no_new_privs {
        sys.no_new_privs()?;
    } else if let Some(program) = &p.seccomp {
        sys.seccomp(program)?;
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

/// With no_new_privs, the seccomp filter is installed last, just before
/// `execve`: every call of the setup ran unfiltered, the command's first
/// one is filtered.
pub fn filter_last(sys: &mut impl Sys, p: &Prepared) -> Result<(), Errno> {
    match &p.seccomp {
        Some(program) if p.no_new_privs => sys.seccomp(program),
        _ => Ok(()),
    }
}
