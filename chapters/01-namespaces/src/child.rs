//! The cloned child: everything it does between `clone(2)` and `execve(2)`.
//!
//! The child is a copy of a possibly multi-threaded parent, made while
//! another thread may have held a lock (the allocator's, stdout's). Only
//! async-signal-safe work is allowed here (see signal-safety(7)): no
//! allocation, no formatting, no locks. So the child only reads the
//! [`Plan`] the parent prepared and makes system calls through
//! [`Kernel`]. A failure is reported as two integers (which call, which
//! errno) on a pipe; the parent turns them into a sentence. A successful
//! `execve` closes that pipe (it is close-on-exec), which is how the parent
//! learns the command started.

use crate::plan::Plan;
use crate::sys::{Kernel, Sys};
use nix::errno::Errno;
use std::os::fd::RawFd;

/// The call number reported when `execve` failed for every candidate path.
pub const STEP_EXEC: u32 = u32::MAX;
/// The call number reported when the fork for `--init` failed.
pub const STEP_INIT: u32 = u32::MAX - 1;

/// The record the child writes on failure: call number and errno.
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

// ANCHOR: wait_for_go
// exercise 1.3: wait for the parent's go
// hint: The child must not start before the parent has done its part from
//   outside (the ID maps; in chapter 02 the cgroup). The signal is one byte on
//   the pipe `go`: block reading it. Return true when it came, false when the
//   parent gave up (it closed its end: read returns 0).
// hint: A read can be interrupted by a signal before any byte arrived: that
//   is EINTR, and it means "try again", not "give up". Use libc::read on a
//   one-byte buffer: this runs in the cloned child, nothing may allocate.
// hint: read(2) RETURN VALUE and ERRORS (EINTR); pipe(7) "I/O on pipes".
pub fn wait_for_go(go: RawFd) -> bool {
    let mut byte = 0u8;
    loop {
        // SAFETY: read(2) into a one-byte buffer we own.
        let n = unsafe { libc::read(go, (&raw mut byte).cast(), 1) };
        if n == 1 {
            return true;
        }
        if n < 0 && Errno::last() == Errno::EINTR {
            continue;
        }
        return false;
    }
}
// ANCHOR_END: wait_for_go

// ANCHOR: exec_command
// exercise 1.4: become the command: try each candidate path with execve
// hint: The parent did the PATH search ahead (plan.candidates, in order);
//   the child tries them the way execvp(3) does. A successful execve never
//   returns: the process is the command now. So whatever comes after the
//   loop is failure: return the errno to report and the exit code for it.
// hint: ENOENT and ENOTDIR mean "not here": try the next path. EACCES
//   means "here, but not runnable": remember it, keep looking. Any other
//   errno is final (report it at once, code 126). At the end, still ENOENT
//   means nothing was found: 127 (as a shell says); else 126.
// hint: execve(2) ERRORS; execvp(3) DESCRIPTION for the search rules. The
//   arguments and environment are plan.argv and plan.envp.
pub fn exec_command(sys: &mut impl Sys, plan: &Plan) -> (Errno, i32) {
    let mut worst = Errno::ENOENT;
    for path in &plan.candidates {
        match sys.execve(path, &plan.argv, &plan.envp) {
            Errno::ENOENT | Errno::ENOTDIR => {}
            Errno::EACCES => worst = Errno::EACCES,
            other => return (other, 126),
        }
    }
    let code = if worst == Errno::ENOENT { 127 } else { 126 };
    (worst, code)
}
// ANCHOR_END: exec_command

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
    }
    // EOF instead of go means the parent gave up: leave quietly.
    if !wait_for_go(go) {
        // SAFETY: _exit(2) ends this process without running Rust code.
        unsafe { libc::_exit(125) };
    }
    // SAFETY: closing our end of the go pipe.
    unsafe { libc::close(go) };

    let mut kernel = Kernel::default();
    if let Err(errno) = crate::setup::setup(&mut kernel, plan) {
        fail(report, kernel.calls - 1, errno, 125);
    }
    if let Some(init) = &plan.init {
        // Only the command's process comes back from here.
        if let Err(errno) = crate::init::become_init(init, report, plan.console) {
            fail(report, STEP_INIT, errno, 125);
        }
    }
    let (errno, code) = exec_command(&mut kernel, plan);
    fail(report, STEP_EXEC, errno, code)
}
// ANCHOR_END: child_main

/// Writes the failure record and exits.
fn fail(report: RawFd, step: u32, errno: Errno, code: i32) -> ! {
    let buf = encode_failure(step, errno as i32);
    // SAFETY: write(2) of a stack buffer, then _exit(2).
    unsafe {
        libc::write(report, buf.as_ptr().cast(), buf.len());
        libc::_exit(code)
    }
}
