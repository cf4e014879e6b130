//! The cloned child: everything it does between `clone(2)` and `execve(2)`.
//!
//! The child is a copy of a possibly multi-threaded parent, made while
//! another thread may have held a lock (the allocator's, stdout's). Only
//! async-signal-safe work is allowed here (see signal-safety(7)): no
//! allocation, no formatting, no locks, no panics that unwind. So the child
//! only walks the [`Plan`] the parent prepared and makes system calls. A
//! failure is reported as two integers (which step, which errno) on a pipe;
//! the parent turns them into a sentence. A successful `execve` closes that
//! pipe (it is close-on-exec), which is how the parent learns the command
//! started.

use crate::ops::Op;
use crate::plan::Plan;
use nix::errno::Errno;
use std::os::fd::RawFd;

/// Step number reported when `execve` failed for every candidate path.
pub const STEP_EXEC: u32 = u32::MAX;

/// The record the child writes on failure: step index and errno.
pub fn encode_failure(step: u32, errno: i32) -> [u8; 8] {
    let mut buf = [0u8; 8];
    buf[..4].copy_from_slice(&step.to_ne_bytes());
    buf[4..].copy_from_slice(&errno.to_ne_bytes());
    buf
}

pub fn decode_failure(buf: [u8; 8]) -> (u32, i32) {
    let step = u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let errno = i32::from_ne_bytes([buf[4], buf[5], buf[6], buf[7]]);
    (step, errno)
}

// ANCHOR: child_main
/// The child's whole life. Never returns: it either becomes the command or
/// exits. `go` is read until the parent says start; `report` carries a
/// failure back. `unused` are the parent's pipe ends, closed first.
pub fn child_main(plan: &Plan, go: RawFd, report: RawFd, unused: [RawFd; 2]) -> ! {
    // SAFETY: every call below is async-signal-safe and only touches memory
    // the parent prepared before clone(2).
    unsafe {
        for fd in unused {
            libc::close(fd);
        }
        // Die with the parent, so a crashed parent leaves no container behind.
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        // The calling thread's signal mask is inherited, and survives execve.
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());

        // Wait for the parent's go (after it wrote the ID maps). EOF means
        // the parent gave up: leave quietly.
        let mut byte = 0u8;
        loop {
            let n = libc::read(go, (&raw mut byte).cast(), 1);
            if n == 1 {
                break;
            }
            if n < 0 && Errno::last() == Errno::EINTR {
                continue;
            }
            libc::_exit(125);
        }
        libc::close(go);

        for (i, op) in plan.ops.iter().enumerate() {
            if let Err(errno) = perform(op) {
                fail(report, i as u32, errno, 125);
            }
        }
        exec(plan, report)
    }
}
// ANCHOR_END: child_main

/// Writes the failure record and exits.
unsafe fn fail(report: RawFd, step: u32, errno: Errno, code: i32) -> ! {
    let buf = encode_failure(step, errno as i32);
    libc::write(report, buf.as_ptr().cast(), buf.len());
    libc::_exit(code)
}

/// Tries each candidate path in order, as execvp(3) would.
unsafe fn exec(plan: &Plan, report: RawFd) -> ! {
    // Pointer arrays live on this stack: the parent's Vec<CString> memory is
    // ours too, but a Vec of pointers would need the allocator. The limits are
    // generous for a teaching runtime; longer lists are cut by the parent.
    let mut argv = [std::ptr::null::<libc::c_char>(); MAX_ARGS + 1];
    let mut envp = [std::ptr::null::<libc::c_char>(); MAX_ARGS + 1];
    for (slot, arg) in argv.iter_mut().zip(plan.argv.iter().take(MAX_ARGS)) {
        *slot = arg.as_ptr();
    }
    for (slot, var) in envp.iter_mut().zip(plan.envp.iter().take(MAX_ARGS)) {
        *slot = var.as_ptr();
    }
    let mut worst = Errno::ENOENT;
    for path in &plan.candidates {
        libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr());
        match Errno::last() {
            // Not here: keep looking, as execvp does.
            Errno::ENOENT | Errno::ENOTDIR => {}
            Errno::EACCES => worst = Errno::EACCES,
            other => fail(report, STEP_EXEC, other, 126),
        }
    }
    let code = if worst == Errno::ENOENT { 127 } else { 126 };
    fail(report, STEP_EXEC, worst, code)
}

/// The most arguments (and, separately, environment variables) passed on.
pub const MAX_ARGS: usize = 256;

/// Performs `ops` in the calling process; for a process that joins an
/// existing container (chapter 06's `exec`) after its `fork`. Stops at the
/// first failure: (index, errno). Async-signal-safe like every op.
pub fn perform_all(ops: &[Op]) -> Result<(), (usize, Errno)> {
    for (i, op) in ops.iter().enumerate() {
        perform(op).map_err(|errno| (i, errno))?;
    }
    Ok(())
}

/// Performs one op with direct system calls.
fn perform(op: &Op) -> Result<(), Errno> {
    use std::ptr::null;
    // SAFETY: all pointers come from CStrings owned by the plan, which
    // outlives the child's use of them; the calls are async-signal-safe.
    let rc = unsafe {
        match op {
            Op::MakeMountsPrivate => libc::mount(
                null(),
                c"/".as_ptr(),
                null(),
                libc::MS_REC | libc::MS_PRIVATE,
                null(),
            ),
            // Raw system calls, not glibc's setresuid: glibc would try to
            // change every thread of the (multi-threaded) parent it was
            // copied from, and those threads do not exist here.
            Op::BecomeRoot { drop_groups } => {
                let groups_ok = !*drop_groups
                    || libc::syscall(libc::SYS_setgroups, 0, null::<libc::gid_t>()) == 0;
                if groups_ok && libc::syscall(libc::SYS_setresgid, 0, 0, 0) == 0 {
                    libc::syscall(libc::SYS_setresuid, 0, 0, 0) as i32
                } else {
                    -1
                }
            }
            Op::SetHostname(name) => libc::sethostname(name.as_ptr(), name.as_bytes().len()),
            Op::LoopbackUp => return crate::net::loopback_up().map_err(|e| errno_of(&e)),
            Op::Mount {
                source,
                target,
                fstype,
                flags,
                data,
            } => libc::mount(
                source.as_ptr(),
                target.as_ptr(),
                fstype.as_ref().map_or(null(), |t| t.as_ptr()),
                flags.bits(),
                data.as_ref().map_or(null(), |d| d.as_ptr().cast()),
            ),
            Op::MakeDir { path, mode } => {
                if libc::mkdir(path.as_ptr(), *mode) < 0 && Errno::last() != Errno::EEXIST {
                    -1
                } else {
                    // mkdir's mode is filtered by the umask; set it exactly.
                    libc::chmod(path.as_ptr(), *mode)
                }
            }
            Op::MakeFile(path) => {
                let fd = libc::open(
                    path.as_ptr(),
                    libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
                    0o644,
                );
                if fd >= 0 {
                    libc::close(fd);
                }
                fd
            }
            Op::Symlink { target, link } => libc::symlink(target.as_ptr(), link.as_ptr()),
            Op::Chdir(path) => libc::chdir(path.as_ptr()),
            Op::PivotRoot => {
                libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) as i32
            }
            Op::DetachOldRoot => libc::umount2(c".".as_ptr(), libc::MNT_DETACH),
            Op::Chroot(path) => libc::chroot(path.as_ptr()),
            Op::MaskPath(path) => mask_path(path),
            Op::ReadOnlyPath(path) => readonly_path(path),
            Op::NoNewPrivs => libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0),
            Op::DropBoundingCaps { keep, last } => drop_bounding(*keep, *last),
            Op::SetUser { uid, gid, groups } => {
                let n = groups.len();
                if libc::syscall(libc::SYS_setgroups, n, groups.as_ptr()) == 0
                    && libc::syscall(libc::SYS_setresgid, *gid, *gid, *gid) == 0
                {
                    libc::syscall(libc::SYS_setresuid, *uid, *uid, *uid) as i32
                } else {
                    -1
                }
            }
            Op::SetCaps { keep } => set_caps(*keep),
            Op::ControllingTerminal => {
                if libc::setsid() < 0 {
                    -1
                } else {
                    libc::ioctl(0, libc::TIOCSCTTY, 0)
                }
            }
            Op::CloseInheritedFds => libc::syscall(
                libc::SYS_close_range,
                3u32,
                u32::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            ) as i32,
        }
    };
    if rc < 0 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

/// `/dev/null` over a file; an empty read-only tmpfs over a directory
/// (the bind of a file onto a directory fails with ENOTDIR).
unsafe fn mask_path(path: &std::ffi::CStr) -> i32 {
    use std::ptr::null;
    let rc = libc::mount(
        c"/dev/null".as_ptr(),
        path.as_ptr(),
        null(),
        libc::MS_BIND,
        null(),
    );
    if rc == 0 {
        return 0;
    }
    match Errno::last() {
        Errno::ENOENT => 0,
        Errno::ENOTDIR => libc::mount(
            c"tmpfs".as_ptr(),
            path.as_ptr(),
            c"tmpfs".as_ptr(),
            libc::MS_RDONLY,
            c"size=0".as_ptr().cast(),
        ),
        _ => -1,
    }
}

/// A bind of the path onto itself, remounted read-only (a bind mount takes
/// its flags only on the remount).
unsafe fn readonly_path(path: &std::ffi::CStr) -> i32 {
    use std::ptr::null;
    let p = path.as_ptr();
    if libc::mount(p, p, null(), libc::MS_BIND | libc::MS_REC, null()) < 0 {
        return if Errno::last() == Errno::ENOENT {
            0
        } else {
            -1
        };
    }
    let flags = libc::MS_BIND
        | libc::MS_REMOUNT
        | libc::MS_RDONLY
        | libc::MS_NOSUID
        | libc::MS_NODEV
        | libc::MS_NOEXEC;
    libc::mount(p, p, null(), flags, null())
}

/// Drops from the bounding set every capability not kept, and empties the
/// ambient set (see capabilities(7)).
unsafe fn drop_bounding(keep: u64, last: u32) -> i32 {
    for cap in 0..=last.min(63) {
        if keep & (1 << cap) == 0
            && libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) < 0
            && Errno::last() != Errno::EINVAL
        {
            return -1;
        }
    }
    let clear_all = 4; // PR_CAP_AMBIENT_CLEAR_ALL
    libc::prctl(libc::PR_CAP_AMBIENT, clear_all, 0, 0, 0)
}

/// `capset(2)` with the version 3 header (two 32-bit words per set).
unsafe fn set_caps(keep: u64) -> i32 {
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
    libc::syscall(libc::SYS_capset, &raw const header, data.as_ptr()) as i32
}

fn errno_of(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}
