//! The system-call seam. Every call the child makes to set a container up
//! goes through the [`Sys`] trait (as youki's `Syscall` trait does):
//!
//! - [`Kernel`] makes the real system calls. It runs in the cloned child,
//!   so each method is async-signal-safe: raw calls on memory prepared
//!   before `clone(2)`, no allocation, no locks.
//! - [`Recorder`] writes the calls down instead of making them. The parent
//!   runs a container's whole setup against it before cloning: that gives
//!   the list of steps (`--dry-run`, error messages name the step that
//!   failed), and it is how the order of the setup is graded by plain unit
//!   tests, as any user, without a single namespace.
//!
//! One method is one system call (or, for the hardening steps chapter 06
//! turns on, one small fixed sequence), named after the call.

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;
use std::ffi::{c_char, CStr, CString};
use std::fmt;
use std::os::fd::RawFd;

/// The most arguments (and, separately, environment variables) passed on:
/// the child builds their pointer arrays on its stack.
pub const MAX_ARGS: usize = 256;

/// The calls a container's setup makes.
pub trait Sys {
    /// `mount(2)`.
    fn mount(
        &mut self,
        source: Option<&CStr>,
        target: &CStr,
        fstype: Option<&CStr>,
        flags: MsFlags,
        data: Option<&CStr>,
    ) -> Result<(), Errno>;
    /// `umount2(2)`.
    fn umount2(&mut self, target: &CStr, flags: MntFlags) -> Result<(), Errno>;
    /// `mkdir(2)`; a directory that exists already is fine. A new one gets
    /// exactly `mode` (mkdir alone would filter it through the umask).
    fn mkdir(&mut self, path: &CStr, mode: u32) -> Result<(), Errno>;
    /// `open(2)` with `O_CREAT`, then `close(2)`: an empty file (to bind a
    /// device node onto).
    fn create_file(&mut self, path: &CStr) -> Result<(), Errno>;
    /// `symlink(2)`: `link` will point at `target`.
    fn symlink(&mut self, target: &CStr, link: &CStr) -> Result<(), Errno>;
    /// `chdir(2)`.
    fn chdir(&mut self, path: &CStr) -> Result<(), Errno>;
    /// `pivot_root(2)`.
    fn pivot_root(&mut self, new_root: &CStr, put_old: &CStr) -> Result<(), Errno>;
    /// `chroot(2)`.
    fn chroot(&mut self, path: &CStr) -> Result<(), Errno>;
    /// `unshare(2)`: new namespaces of the kinds in `flags` for this
    /// process (the cgroup namespace, made after the cgroup is joined).
    fn unshare(&mut self, flags: CloneFlags) -> Result<(), Errno>;
    /// `sethostname(2)`.
    fn sethostname(&mut self, name: &CStr) -> Result<(), Errno>;
    /// `setgroups(2)`: the supplementary groups (empty: none).
    fn setgroups(&mut self, groups: &[u32]) -> Result<(), Errno>;
    /// `setresgid(2)` with real, effective and saved set to `gid`.
    fn setresgid(&mut self, gid: u32) -> Result<(), Errno>;
    /// `setresuid(2)` with real, effective and saved set to `uid`.
    fn setresuid(&mut self, uid: u32) -> Result<(), Errno>;
    /// Sets `IFF_UP` on `lo` (a socket and two `ioctl(2)`s: see [`crate::net`]).
    fn loopback_up(&mut self) -> Result<(), Errno>;
    /// Hides a path: `/dev/null` bound over a file, an empty read-only tmpfs
    /// over a directory. A path that does not exist is skipped.
    fn mask_path(&mut self, path: &CStr) -> Result<(), Errno>;
    /// Binds a path onto itself and remounts the bind read-only. A path
    /// that does not exist is skipped.
    fn readonly_path(&mut self, path: &CStr) -> Result<(), Errno>;
    /// `prctl(PR_SET_NO_NEW_PRIVS)`.
    fn no_new_privs(&mut self) -> Result<(), Errno>;
    /// `prctl(PR_CAPBSET_DROP)` for every capability up to `last` not in
    /// `keep`; then the ambient set is cleared.
    fn drop_bounding_caps(&mut self, keep: u64, last: u32) -> Result<(), Errno>;
    /// `capset(2)`: permitted and effective become `keep`, inheritable empty.
    fn set_caps(&mut self, keep: u64) -> Result<(), Errno>;
    /// A pseudo-terminal from this mount namespace's `/dev/ptmx`, its
    /// master sent over `socket`, its slave made stdin, stdout and stderr
    /// (see [`crate::console`]).
    fn new_console(&mut self, socket: RawFd, rows: u16, cols: u16) -> Result<(), Errno>;
    /// `setsid(2)` and `ioctl(0, TIOCSCTTY)`.
    fn controlling_terminal(&mut self) -> Result<(), Errno>;
    /// `close_range(3, ~0, CLOSE_RANGE_CLOEXEC)`.
    fn close_inherited_fds(&mut self) -> Result<(), Errno>;
    /// `seccomp(SECCOMP_SET_MODE_FILTER)`: from here on the kernel runs
    /// `program` at every system call of this process and its children.
    fn seccomp(&mut self, program: &[crate::security::BpfInstruction]) -> Result<(), Errno>;
    /// `execve(2)`. Returns only when it failed, with the reason. At most
    /// [`MAX_ARGS`] of each list are passed (the spec refuses more).
    fn execve(&mut self, path: &CStr, argv: &[CString], envp: &[CString]) -> Errno;
}

/// One call, as the [`Recorder`] keeps it: with its arguments, as text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    Mount {
        source: Option<String>,
        target: String,
        fstype: Option<String>,
        flags: MsFlags,
        data: Option<String>,
    },
    Umount2 {
        target: String,
        flags: MntFlags,
    },
    Mkdir {
        path: String,
        mode: u32,
    },
    CreateFile(String),
    Symlink {
        target: String,
        link: String,
    },
    Chdir(String),
    PivotRoot {
        new_root: String,
        put_old: String,
    },
    Chroot(String),
    Unshare(CloneFlags),
    SetHostname(String),
    SetGroups(Vec<u32>),
    SetResGid(u32),
    SetResUid(u32),
    LoopbackUp,
    MaskPath(String),
    ReadOnlyPath(String),
    NoNewPrivs,
    DropBoundingCaps {
        keep: u64,
        last: u32,
    },
    SetCaps(u64),
    NewConsole {
        rows: u16,
        cols: u16,
    },
    ControllingTerminal,
    CloseInheritedFds,
    Seccomp(usize),
    Execve(String),
}

/// Which system call, for the table of usual reasons in [`crate::error`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
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
    Unshare,
    Seccomp,
    Prctl,
    Capset,
    CloseRange,
    Execve,
}

impl Call {
    pub fn kind(&self) -> Kind {
        match self {
            Call::Mount { fstype, .. } => match fstype.as_deref() {
                Some("proc") => Kind::MountProc,
                Some("devpts") => Kind::MountDevpts,
                _ => Kind::Mount,
            },
            Call::Umount2 { .. } => Kind::Umount,
            Call::Mkdir { .. } => Kind::Mkdir,
            Call::CreateFile(_) => Kind::Open,
            Call::Symlink { .. } => Kind::Symlink,
            Call::Chdir(_) => Kind::Chdir,
            Call::PivotRoot { .. } => Kind::PivotRoot,
            Call::Chroot(_) => Kind::Chroot,
            Call::Unshare(_) => Kind::Unshare,
            Call::Seccomp(_) => Kind::Seccomp,
            Call::SetHostname(_) => Kind::SetHostname,
            Call::SetGroups(_) | Call::SetResGid(_) | Call::SetResUid(_) => Kind::SetIds,
            Call::LoopbackUp | Call::ControllingTerminal | Call::NewConsole { .. } => Kind::Ioctl,
            Call::MaskPath(_) | Call::ReadOnlyPath(_) => Kind::Mount,
            Call::NoNewPrivs | Call::DropBoundingCaps { .. } => Kind::Prctl,
            Call::SetCaps(_) => Kind::Capset,
            Call::CloseInheritedFds => Kind::CloseRange,
            Call::Execve(_) => Kind::Execve,
        }
    }
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Call::Mount {
                source,
                target,
                fstype,
                flags,
                data,
            } => {
                match (fstype, flags.contains(MsFlags::MS_BIND)) {
                    (_, true) if flags.contains(MsFlags::MS_REMOUNT) => {
                        write!(f, "remount the bind mount on {target}")?
                    }
                    (_, true) => write!(
                        f,
                        "bind-mount {} on {target}",
                        source.as_deref().unwrap_or("?")
                    )?,
                    (Some(t), false) if flags.contains(MsFlags::MS_REMOUNT) => {
                        write!(f, "remount the {t} on {target}")?
                    }
                    (Some(t), false) => write!(f, "mount {t} on {target}")?,
                    (None, false) if source.is_none() => {
                        write!(f, "change the propagation of {target} and below")?
                    }
                    (None, false) => write!(f, "mount on {target}")?,
                }
                let rest = *flags & !(MsFlags::MS_BIND | MsFlags::MS_REMOUNT);
                if !rest.is_empty() {
                    write!(f, " {rest:?}")?;
                }
                if let Some(d) = data {
                    write!(f, " ({d})")?;
                }
                Ok(())
            }
            Call::Umount2 { target, flags } => write!(f, "umount2 {target:?} {flags:?}"),
            Call::Mkdir { path, mode } => write!(f, "create directory {path} (mode {mode:o})"),
            Call::CreateFile(p) => write!(f, "create file {p}"),
            Call::Symlink { target, link } => write!(f, "symlink {link} -> {target}"),
            Call::Chdir(p) => write!(f, "change directory to {p}"),
            Call::PivotRoot { new_root, put_old } => {
                write!(f, "pivot_root({new_root:?}, {put_old:?})")
            }
            Call::Chroot(p) => write!(f, "chroot into {p} (insecure)"),
            Call::Unshare(flags) => write!(f, "unshare {flags:?}"),
            Call::SetHostname(h) => write!(f, "set hostname to {h}"),
            Call::SetGroups(g) if g.is_empty() => write!(f, "drop supplementary groups"),
            Call::SetGroups(g) => write!(f, "set supplementary groups {g:?}"),
            Call::SetResGid(g) => write!(f, "become gid {g}"),
            Call::SetResUid(u) => write!(f, "become uid {u}"),
            Call::LoopbackUp => write!(f, "bring up the loopback interface lo"),
            Call::MaskPath(p) => write!(f, "mask {p}"),
            Call::ReadOnlyPath(p) => write!(f, "make {p} read-only"),
            Call::NoNewPrivs => write!(f, "set no_new_privs"),
            Call::DropBoundingCaps { keep, last } => write!(
                f,
                "drop capabilities 0..={last} not in {keep:#x} from the bounding set, clear ambient"
            ),
            Call::SetCaps(keep) => write!(
                f,
                "set permitted and effective capabilities to {keep:#x}, inheritable empty"
            ),
            Call::NewConsole { rows, cols } => write!(
                f,
                "a pseudo-terminal from the container's /dev/ptmx ({rows}x{cols}), its master sent out, its slave as stdio"
            ),
            Call::ControllingTerminal => {
                write!(f, "new session with stdin as the controlling terminal")
            }
            Call::CloseInheritedFds => write!(f, "mark every descriptor above 2 close-on-exec"),
            Call::Seccomp(n) => write!(f, "install the seccomp filter ({n} BPF instructions)"),
            Call::Execve(p) => write!(f, "execve {p}"),
        }
    }
}

fn text(s: &CStr) -> String {
    s.to_string_lossy().into_owned()
}

/// Writes the calls down instead of making them. Every call succeeds,
/// except those [`Recorder::fail`] names; `execve` fails with ENOENT
/// unless told otherwise (there are no files here to run).
#[derive(Debug, Default)]
pub struct Recorder {
    pub calls: Vec<Call>,
    failures: Vec<(usize, Errno)>,
}

impl Recorder {
    pub fn new() -> Recorder {
        Recorder::default()
    }

    /// Makes the `n`th call (0-based, counting every call) fail with `errno`.
    pub fn fail(mut self, n: usize, errno: Errno) -> Recorder {
        self.failures.push((n, errno));
        self
    }

    fn record(&mut self, call: Call) -> Result<(), Errno> {
        let n = self.calls.len();
        self.calls.push(call);
        match self.failures.iter().find(|(i, _)| *i == n) {
            Some((_, errno)) => Err(*errno),
            None => Ok(()),
        }
    }
}

impl Sys for Recorder {
    fn mount(
        &mut self,
        source: Option<&CStr>,
        target: &CStr,
        fstype: Option<&CStr>,
        flags: MsFlags,
        data: Option<&CStr>,
    ) -> Result<(), Errno> {
        self.record(Call::Mount {
            source: source.map(text),
            target: text(target),
            fstype: fstype.map(text),
            flags,
            data: data.map(text),
        })
    }
    fn umount2(&mut self, target: &CStr, flags: MntFlags) -> Result<(), Errno> {
        self.record(Call::Umount2 {
            target: text(target),
            flags,
        })
    }
    fn mkdir(&mut self, path: &CStr, mode: u32) -> Result<(), Errno> {
        self.record(Call::Mkdir {
            path: text(path),
            mode,
        })
    }
    fn create_file(&mut self, path: &CStr) -> Result<(), Errno> {
        self.record(Call::CreateFile(text(path)))
    }
    fn symlink(&mut self, target: &CStr, link: &CStr) -> Result<(), Errno> {
        self.record(Call::Symlink {
            target: text(target),
            link: text(link),
        })
    }
    fn chdir(&mut self, path: &CStr) -> Result<(), Errno> {
        self.record(Call::Chdir(text(path)))
    }
    fn pivot_root(&mut self, new_root: &CStr, put_old: &CStr) -> Result<(), Errno> {
        self.record(Call::PivotRoot {
            new_root: text(new_root),
            put_old: text(put_old),
        })
    }
    fn chroot(&mut self, path: &CStr) -> Result<(), Errno> {
        self.record(Call::Chroot(text(path)))
    }
    fn unshare(&mut self, flags: CloneFlags) -> Result<(), Errno> {
        self.record(Call::Unshare(flags))
    }
    fn sethostname(&mut self, name: &CStr) -> Result<(), Errno> {
        self.record(Call::SetHostname(text(name)))
    }
    fn setgroups(&mut self, groups: &[u32]) -> Result<(), Errno> {
        self.record(Call::SetGroups(groups.to_vec()))
    }
    fn setresgid(&mut self, gid: u32) -> Result<(), Errno> {
        self.record(Call::SetResGid(gid))
    }
    fn setresuid(&mut self, uid: u32) -> Result<(), Errno> {
        self.record(Call::SetResUid(uid))
    }
    fn loopback_up(&mut self) -> Result<(), Errno> {
        self.record(Call::LoopbackUp)
    }
    fn mask_path(&mut self, path: &CStr) -> Result<(), Errno> {
        self.record(Call::MaskPath(text(path)))
    }
    fn readonly_path(&mut self, path: &CStr) -> Result<(), Errno> {
        self.record(Call::ReadOnlyPath(text(path)))
    }
    fn no_new_privs(&mut self) -> Result<(), Errno> {
        self.record(Call::NoNewPrivs)
    }
    fn drop_bounding_caps(&mut self, keep: u64, last: u32) -> Result<(), Errno> {
        self.record(Call::DropBoundingCaps { keep, last })
    }
    fn set_caps(&mut self, keep: u64) -> Result<(), Errno> {
        self.record(Call::SetCaps(keep))
    }
    fn new_console(&mut self, _socket: RawFd, rows: u16, cols: u16) -> Result<(), Errno> {
        self.record(Call::NewConsole { rows, cols })
    }
    fn controlling_terminal(&mut self) -> Result<(), Errno> {
        self.record(Call::ControllingTerminal)
    }
    fn close_inherited_fds(&mut self) -> Result<(), Errno> {
        self.record(Call::CloseInheritedFds)
    }
    fn seccomp(&mut self, program: &[crate::security::BpfInstruction]) -> Result<(), Errno> {
        self.record(Call::Seccomp(program.len()))
    }
    fn execve(&mut self, path: &CStr, _argv: &[CString], _envp: &[CString]) -> Errno {
        match self.record(Call::Execve(text(path))) {
            Err(errno) => errno,
            Ok(()) => Errno::ENOENT,
        }
    }
}

/// The real calls. `calls` counts them, so a failure can be reported as
/// "call N" and the parent finds call N in its own recording of the setup.
#[derive(Debug, Default)]
pub struct Kernel {
    pub calls: u32,
}

fn check(rc: libc::c_long) -> Result<(), Errno> {
    if rc < 0 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

fn ptr(s: Option<&CStr>) -> *const c_char {
    s.map_or(std::ptr::null(), CStr::as_ptr)
}

// SAFETY (for every unsafe block below): the calls are async-signal-safe
// system calls whose pointer arguments are C strings or slices the caller
// owns for the duration of the call.
impl Sys for Kernel {
    fn mount(
        &mut self,
        source: Option<&CStr>,
        target: &CStr,
        fstype: Option<&CStr>,
        flags: MsFlags,
        data: Option<&CStr>,
    ) -> Result<(), Errno> {
        self.calls += 1;
        let rc = unsafe {
            libc::mount(
                ptr(source),
                target.as_ptr(),
                ptr(fstype),
                flags.bits(),
                ptr(data).cast(),
            )
        };
        check(rc.into())
    }
    fn umount2(&mut self, target: &CStr, flags: MntFlags) -> Result<(), Errno> {
        self.calls += 1;
        check(unsafe { libc::umount2(target.as_ptr(), flags.bits()) }.into())
    }
    fn mkdir(&mut self, path: &CStr, mode: u32) -> Result<(), Errno> {
        self.calls += 1;
        if unsafe { libc::mkdir(path.as_ptr(), mode) } < 0 {
            return match Errno::last() {
                Errno::EEXIST => Ok(()),
                other => Err(other),
            };
        }
        check(unsafe { libc::chmod(path.as_ptr(), mode) }.into())
    }
    fn create_file(&mut self, path: &CStr) -> Result<(), Errno> {
        self.calls += 1;
        let fd = unsafe {
            libc::open(
                path.as_ptr(),
                libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
                0o644,
            )
        };
        check(fd.into())?;
        unsafe { libc::close(fd) };
        Ok(())
    }
    fn symlink(&mut self, target: &CStr, link: &CStr) -> Result<(), Errno> {
        self.calls += 1;
        check(unsafe { libc::symlink(target.as_ptr(), link.as_ptr()) }.into())
    }
    fn chdir(&mut self, path: &CStr) -> Result<(), Errno> {
        self.calls += 1;
        check(unsafe { libc::chdir(path.as_ptr()) }.into())
    }
    fn pivot_root(&mut self, new_root: &CStr, put_old: &CStr) -> Result<(), Errno> {
        self.calls += 1;
        check(unsafe { libc::syscall(libc::SYS_pivot_root, new_root.as_ptr(), put_old.as_ptr()) })
    }
    fn chroot(&mut self, path: &CStr) -> Result<(), Errno> {
        self.calls += 1;
        check(unsafe { libc::chroot(path.as_ptr()) }.into())
    }
    fn unshare(&mut self, flags: CloneFlags) -> Result<(), Errno> {
        self.calls += 1;
        check(unsafe { libc::unshare(flags.bits()) }.into())
    }
    fn sethostname(&mut self, name: &CStr) -> Result<(), Errno> {
        self.calls += 1;
        check(unsafe { libc::sethostname(name.as_ptr(), name.to_bytes().len()) }.into())
    }
    // The three id calls are raw system calls, not glibc's wrappers: glibc
    // would try to change every thread of the (multi-threaded) parent the
    // child was copied from, and those threads do not exist here.
    fn setgroups(&mut self, groups: &[u32]) -> Result<(), Errno> {
        self.calls += 1;
        check(unsafe { libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) })
    }
    fn setresgid(&mut self, gid: u32) -> Result<(), Errno> {
        self.calls += 1;
        check(unsafe { libc::syscall(libc::SYS_setresgid, gid, gid, gid) })
    }
    fn setresuid(&mut self, uid: u32) -> Result<(), Errno> {
        self.calls += 1;
        check(unsafe { libc::syscall(libc::SYS_setresuid, uid, uid, uid) })
    }
    fn loopback_up(&mut self) -> Result<(), Errno> {
        self.calls += 1;
        crate::net::loopback_up().map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(0)))
    }
    fn mask_path(&mut self, path: &CStr) -> Result<(), Errno> {
        self.calls += 1;
        let null = std::ptr::null();
        let rc = unsafe {
            libc::mount(
                c"/dev/null".as_ptr(),
                path.as_ptr(),
                null,
                libc::MS_BIND,
                null.cast(),
            )
        };
        if rc == 0 {
            return Ok(());
        }
        match Errno::last() {
            Errno::ENOENT => Ok(()),
            // A directory: the bind of a file onto it fails with ENOTDIR.
            Errno::ENOTDIR => check(
                unsafe {
                    libc::mount(
                        c"tmpfs".as_ptr(),
                        path.as_ptr(),
                        c"tmpfs".as_ptr(),
                        libc::MS_RDONLY,
                        c"size=0".as_ptr().cast(),
                    )
                }
                .into(),
            ),
            other => Err(other),
        }
    }
    fn readonly_path(&mut self, path: &CStr) -> Result<(), Errno> {
        self.calls += 1;
        let (p, null) = (path.as_ptr(), std::ptr::null());
        if unsafe { libc::mount(p, p, null, libc::MS_BIND | libc::MS_REC, null.cast()) } < 0 {
            return match Errno::last() {
                Errno::ENOENT => Ok(()),
                other => Err(other),
            };
        }
        // A bind mount takes its flags only on a remount.
        let flags = libc::MS_BIND
            | libc::MS_REMOUNT
            | libc::MS_RDONLY
            | libc::MS_NOSUID
            | libc::MS_NODEV
            | libc::MS_NOEXEC;
        check(unsafe { libc::mount(p, p, null, flags, null.cast()) }.into())
    }
    fn no_new_privs(&mut self) -> Result<(), Errno> {
        self.calls += 1;
        check(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) }.into())
    }
    fn drop_bounding_caps(&mut self, keep: u64, last: u32) -> Result<(), Errno> {
        self.calls += 1;
        for cap in 0..=last.min(63) {
            if keep & (1 << cap) == 0
                && unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) } < 0
                && Errno::last() != Errno::EINVAL
            {
                return Err(Errno::last());
            }
        }
        let clear_all = 4; // PR_CAP_AMBIENT_CLEAR_ALL
        check(unsafe { libc::prctl(libc::PR_CAP_AMBIENT, clear_all, 0, 0, 0) }.into())
    }
    fn set_caps(&mut self, keep: u64) -> Result<(), Errno> {
        self.calls += 1;
        // capset(2) with the version 3 header: two 32-bit words per set.
        #[repr(C)]
        struct Header {
            version: u32,
            pid: i32,
        }
        #[repr(C)]
        #[derive(Clone, Copy)]
        struct Data {
            effective: u32,
            permitted: u32,
            inheritable: u32,
        }
        let header = Header {
            version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
            pid: 0,
        };
        let word = |i: u32| (keep >> (32 * i)) as u32;
        let data = [0, 1].map(|i| Data {
            effective: word(i),
            permitted: word(i),
            inheritable: 0,
        });
        check(unsafe { libc::syscall(libc::SYS_capset, &raw const header, data.as_ptr()) })
    }
    fn new_console(&mut self, socket: RawFd, rows: u16, cols: u16) -> Result<(), Errno> {
        self.calls += 1;
        crate::console::make_console(socket, rows, cols)
    }
    fn controlling_terminal(&mut self) -> Result<(), Errno> {
        self.calls += 1;
        check(unsafe { libc::setsid() }.into())?;
        check(unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) }.into())
    }
    fn close_inherited_fds(&mut self) -> Result<(), Errno> {
        self.calls += 1;
        check(unsafe {
            libc::syscall(
                libc::SYS_close_range,
                3u32,
                u32::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            )
        })
    }
    fn seccomp(&mut self, program: &[crate::security::BpfInstruction]) -> Result<(), Errno> {
        self.calls += 1;
        crate::security::install_filter(program)
    }
    fn execve(&mut self, path: &CStr, argv: &[CString], envp: &[CString]) -> Errno {
        self.calls += 1;
        // The pointer arrays live on this stack: a Vec of pointers would
        // need the allocator, which the child may not use.
        let mut args = [std::ptr::null::<c_char>(); MAX_ARGS + 1];
        let mut vars = [std::ptr::null::<c_char>(); MAX_ARGS + 1];
        for (slot, arg) in args.iter_mut().zip(argv.iter().take(MAX_ARGS)) {
            *slot = arg.as_ptr();
        }
        for (slot, var) in vars.iter_mut().zip(envp.iter().take(MAX_ARGS)) {
            *slot = var.as_ptr();
        }
        unsafe { libc::execve(path.as_ptr(), args.as_ptr(), vars.as_ptr()) };
        Errno::last()
    }
}
