//! The steps a child performs between `clone(2)` and `execve(2)`.
//!
//! The parent builds every path and option string here, before the clone,
//! because the child may not allocate (see [`crate::child`]). Each op also
//! knows how to describe itself, so a failure reported by the child as
//! "op 7 failed with EINVAL" becomes a sentence in the parent.

use nix::mount::MsFlags;
use std::ffi::CString;
use std::fmt;

/// One step of container setup, performed by the child.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// `mount(NULL, "/", NULL, MS_REC|MS_PRIVATE)`: stop mount events from
    /// travelling between this namespace and the host (in both directions).
    MakeMountsPrivate,
    /// Become uid 0 and gid 0 of the new user namespace (`setresgid`,
    /// `setresuid`), dropping supplementary groups first when allowed.
    BecomeRoot { drop_groups: bool },
    /// `sethostname(2)` inside the new UTS namespace.
    SetHostname(CString),
    /// Bring the loopback interface up in the new network namespace.
    LoopbackUp,
    /// `mount(2)` with everything spelled out.
    Mount {
        source: CString,
        target: CString,
        fstype: Option<CString>,
        flags: MsFlags,
        data: Option<CString>,
    },
    /// `mkdir(2)`; an existing directory is fine.
    MakeDir { path: CString, mode: u32 },
    /// Create an empty file to bind a device node onto.
    MakeFile(CString),
    /// `symlink(2)`: `link` will point at `target`.
    Symlink { target: CString, link: CString },
    /// `chdir(2)`.
    Chdir(CString),
    /// `pivot_root(".", ".")`: the current directory becomes `/`, and the old
    /// root is stacked on top of it until [`Op::DetachOldRoot`].
    PivotRoot,
    /// `umount2(".", MNT_DETACH)`: drop the old root that pivot_root left at
    /// `/`; from here no path leads to the host's files.
    DetachOldRoot,
    /// `chroot(2)`, for the insecure escape demonstration only.
    Chroot(CString),
    /// Hide a path: bind `/dev/null` over a file, mount an empty read-only
    /// tmpfs over a directory. A path that does not exist is skipped.
    MaskPath(CString),
    /// Make a path read-only: bind it onto itself, then remount the bind
    /// read-only. A path that does not exist is skipped.
    ReadOnlyPath(CString),
    /// `prctl(PR_SET_NO_NEW_PRIVS)`: `execve` can never raise privileges.
    NoNewPrivs,
    /// `prctl(PR_CAPBSET_DROP)` for every capability up to `last` not in
    /// `keep`, and clear the ambient set.
    DropBoundingCaps { keep: u64, last: u32 },
    /// `setgroups`, `setresgid`, `setresuid`: become the image's user.
    SetUser {
        uid: u32,
        gid: u32,
        groups: Vec<u32>,
    },
    /// `capset(2)`: permitted and effective become `keep`, inheritable empty.
    SetCaps { keep: u64 },
    /// `setsid(2)` and `ioctl(0, TIOCSCTTY)`: standard input (a terminal)
    /// becomes the controlling terminal of a new session.
    ControllingTerminal,
    /// `close_range(3, ~0, CLOSE_RANGE_CLOEXEC)`: no descriptor but stdio
    /// survives `execve`.
    CloseInheritedFds,
}

/// The system call an op makes, for the hint table in [`crate::error`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    Clone,
    Mount,
    MountProc,
    MountDevpts,
    SetIds,
    SetHostname,
    Ioctl,
    Mkdir,
    Open,
    Symlink,
    Chdir,
    PivotRoot,
    Umount,
    Chroot,
    Prctl,
    Capset,
    CloseRange,
    Execve,
}

impl Op {
    /// A bind mount of `source` onto `target`.
    pub fn bind(source: CString, target: CString, flags: MsFlags) -> Op {
        Op::Mount {
            source,
            target,
            fstype: None,
            flags: MsFlags::MS_BIND | flags,
            data: None,
        }
    }

    /// A mount of a filesystem type (`proc`, `tmpfs`, `devpts`, ...).
    pub fn fs(fstype: &str, target: CString, flags: MsFlags, data: &str) -> Op {
        Op::Mount {
            source: cstr(fstype),
            target,
            fstype: Some(cstr(fstype)),
            flags,
            data: (!data.is_empty()).then(|| cstr(data)),
        }
    }

    pub fn call(&self) -> Call {
        match self {
            Op::MakeMountsPrivate => Call::Mount,
            Op::BecomeRoot { .. } => Call::SetIds,
            Op::SetHostname(_) => Call::SetHostname,
            Op::LoopbackUp => Call::Ioctl,
            Op::Mount { fstype, .. } => match fstype.as_ref().map(|t| t.to_bytes()) {
                Some(b"proc") => Call::MountProc,
                Some(b"devpts") => Call::MountDevpts,
                _ => Call::Mount,
            },
            Op::MakeDir { .. } => Call::Mkdir,
            Op::MakeFile(_) => Call::Open,
            Op::Symlink { .. } => Call::Symlink,
            Op::Chdir(_) => Call::Chdir,
            Op::PivotRoot => Call::PivotRoot,
            Op::DetachOldRoot => Call::Umount,
            Op::Chroot(_) => Call::Chroot,
            Op::MaskPath(_) | Op::ReadOnlyPath(_) => Call::Mount,
            Op::NoNewPrivs | Op::DropBoundingCaps { .. } => Call::Prctl,
            Op::SetUser { .. } => Call::SetIds,
            Op::SetCaps { .. } => Call::Capset,
            Op::ControllingTerminal => Call::Ioctl,
            Op::CloseInheritedFds => Call::CloseRange,
        }
    }
}

/// Builds a C string from text the parent controls (no NUL bytes).
pub fn cstr(s: &str) -> CString {
    CString::new(s).expect("paths and options built by the plan contain no NUL")
}

fn show(s: &CString) -> String {
    String::from_utf8_lossy(s.to_bytes()).into_owned()
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::MakeMountsPrivate => write!(f, "make all mounts private (MS_REC|MS_PRIVATE on /)"),
            Op::BecomeRoot { drop_groups } => write!(
                f,
                "become uid 0, gid 0 of the user namespace{}",
                if *drop_groups {
                    ", no supplementary groups"
                } else {
                    ""
                }
            ),
            Op::SetHostname(h) => write!(f, "set hostname to {}", show(h)),
            Op::LoopbackUp => write!(f, "bring up the loopback interface lo"),
            Op::Mount {
                source,
                target,
                fstype,
                flags,
                data,
            } => {
                match fstype {
                    Some(t) => write!(f, "mount {} on {}", show(t), show(target))?,
                    None => write!(f, "bind-mount {} on {}", show(source), show(target))?,
                }
                let rest = *flags & !MsFlags::MS_BIND;
                if !rest.is_empty() {
                    write!(f, " {rest:?}")?;
                }
                if let Some(d) = data {
                    write!(f, " ({})", show(d))?;
                }
                Ok(())
            }
            Op::MakeDir { path, mode } => {
                write!(f, "create directory {} (mode {mode:o})", show(path))
            }
            Op::MakeFile(p) => write!(f, "create file {}", show(p)),
            Op::Symlink { target, link } => write!(f, "symlink {} -> {}", show(link), show(target)),
            Op::Chdir(p) => write!(f, "change directory to {}", show(p)),
            Op::PivotRoot => write!(f, "pivot_root(\".\", \".\") into the current directory"),
            Op::DetachOldRoot => write!(f, "detach the old root (umount2 \".\", MNT_DETACH)"),
            Op::Chroot(p) => write!(f, "chroot into {} (insecure)", show(p)),
            Op::MaskPath(p) => write!(f, "mask {}", show(p)),
            Op::ReadOnlyPath(p) => write!(f, "make {} read-only", show(p)),
            Op::NoNewPrivs => write!(f, "set no_new_privs"),
            Op::DropBoundingCaps { keep, last } => write!(
                f,
                "drop capabilities 0..={last} not in {keep:#x} from the bounding set, clear ambient"
            ),
            Op::SetUser { uid, gid, groups } => {
                write!(f, "become uid {uid}, gid {gid}, groups {groups:?}")
            }
            Op::SetCaps { keep } => write!(
                f,
                "set permitted and effective capabilities to {keep:#x}, inheritable empty"
            ),
            Op::ControllingTerminal => {
                write!(f, "new session with stdin as the controlling terminal")
            }
            Op::CloseInheritedFds => write!(f, "mark every descriptor above 2 close-on-exec"),
        }
    }
}
