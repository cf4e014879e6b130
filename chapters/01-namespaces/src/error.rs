//! What can go wrong in a container run, and the usual reason. A raw errno
//! ("EINVAL") is the kernel's whole answer; the hint table below turns the
//! classic failures into the sentence a learner needs.

use crate::sys::Kind;
use nix::errno::Errno;
use std::fmt;
use std::io;

#[derive(Debug)]
pub enum Error {
    /// The spec itself is wrong; nothing was created.
    InvalidSpec(String),
    /// `clone(2)` refused to create the namespaces.
    Clone { namespaces: String, errno: Errno },
    /// Writing the user namespace's ID maps failed.
    IdMap(io::Error),
    /// A setup step in the child failed; `step` describes it.
    Setup {
        step: String,
        kind: Kind,
        errno: Errno,
    },
    /// The command could not be executed inside the container.
    Exec { command: String, errno: Errno },
    /// Plumbing between parent and child (pipes, waitpid) failed.
    Io { what: &'static str, errno: Errno },
}

impl Error {
    /// The exit code a shell-like caller should use, as Docker does: 127 for
    /// a command that does not exist, 126 for one that cannot be executed,
    /// 125 when the container itself could not be set up.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Exec {
                errno: Errno::ENOENT,
                ..
            } => 127,
            Error::Exec { .. } => 126,
            _ => 125,
        }
    }
}

/// The classic failures and what they usually mean.
pub fn hint(call: Kind, errno: Errno) -> Option<&'static str> {
    use Errno::*;
    use Kind::*;
    Some(match (call, errno) {
        (Clone, EPERM) => {
            "creating namespaces needs CAP_SYS_ADMIN: run as root, or add the user \
             namespace (--ns user,...) so an unprivileged user may create the others"
        }
        (Clone, ENOSPC) | (Clone, EUSERS) => {
            "the user namespace limit is reached or zero: see /proc/sys/user/max_user_namespaces"
        }
        (Clone, EINVAL) => "the kernel rejected this combination of clone flags",
        (PivotRoot, EINVAL) => {
            "pivot_root needs the new root to be a mount point whose parent mount is not \
             shared: make mounts private (MS_REC|MS_PRIVATE on /) and bind-mount the rootfs \
             onto itself first"
        }
        (PivotRoot, EPERM) => "pivot_root needs CAP_SYS_ADMIN in the mount namespace's owner",
        (MountProc, EPERM) => {
            "mounting proc needs a new PID namespace owned by your user namespace, and a \
             mount namespace of your own"
        }
        (MountProc, EBUSY) | (Mount, EBUSY) => "something is already mounted there and busy",
        (Mount, EPERM) | (MountDevpts, EPERM) => {
            "mounting needs CAP_SYS_ADMIN in the user namespace that owns this mount namespace"
        }
        (Mount, ENOENT) | (MountProc, ENOENT) | (MountDevpts, ENOENT) => {
            "the mount point does not exist in the rootfs (is it a complete root filesystem?)"
        }
        (MountDevpts, EINVAL) => "this kernel's devpts does not accept these options",
        (Unshare, EPERM) => {
            "a new cgroup namespace needs CAP_SYS_ADMIN in the current user namespace"
        }
        (Unshare, EINVAL) => "this kernel has no cgroup namespaces (CONFIG_CGROUPS, 4.6+)",
        (Seccomp, EACCES) => {
            "installing a seccomp filter needs no_new_privs or CAP_SYS_ADMIN at that point"
        }
        (Seccomp, EINVAL) => "the kernel refused the BPF program (too long, or malformed)",
        (Seccomp, EPERM) | (SetIds, EPERM) | (Capset, EPERM) | (Prctl, EPERM) | (Chdir, EPERM) => {
            "refused, perhaps by the seccomp profile installed before this step"
        }
        (SetIds, EINVAL) => "uid/gid 0 is not in the user namespace's ID map",
        (SetHostname, EPERM) => "setting the hostname needs a UTS namespace of your own",
        (Mkdir, EROFS) | (Open, EROFS) | (Symlink, EROFS) => "the rootfs is read-only here",
        (Chdir, ENOENT) => "that directory does not exist inside the container",
        (Execve, ENOENT) => "no such program in the container's root filesystem (or its PATH)",
        (Execve, EACCES) => "the file is not executable (mode bits, or a noexec mount)",
        (Execve, ENOEXEC) => {
            "not a binary this kernel can run (wrong architecture, or a script without #!)"
        }
        _ => return None,
    })
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let with_hint = |f: &mut fmt::Formatter<'_>, call, errno| match hint(call, errno) {
            Some(h) => write!(f, " ({h})"),
            None => Ok(()),
        };
        match self {
            Error::InvalidSpec(msg) => write!(f, "{msg}"),
            Error::Clone { namespaces, errno } => {
                write!(f, "clone(2) with new namespaces [{namespaces}]: {errno}")?;
                with_hint(f, Kind::Clone, *errno)
            }
            Error::IdMap(e) => write!(
                f,
                "user namespace ID map: {e} (a map file accepts one write; without \
                 CAP_SETUID a process may map only its own ID)"
            ),
            Error::Setup { step, kind, errno } => {
                write!(f, "container setup failed: {step}: {errno}")?;
                with_hint(f, *kind, *errno)
            }
            Error::Exec { command, errno } => {
                write!(f, "cannot run {command:?} in the container: {errno}")?;
                with_hint(f, Kind::Execve, *errno)
            }
            Error::Io { what, errno } => write!(f, "{what}: {errno}"),
        }
    }
}

impl std::error::Error for Error {}
