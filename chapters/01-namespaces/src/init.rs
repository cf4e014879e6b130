//! `--init`: a tiny init as the container's PID 1.
//!
//! PID 1 of a PID namespace has two jobs no ordinary program does. Orphans
//! are re-parented to it, so it must reap them, or they stay zombies for
//! the container's life. And the kernel delivers it only the signals it
//! has a handler for (pid_namespaces(7)): a program that never installed a
//! SIGTERM handler ignores `docker stop` as PID 1 and is killed ten seconds
//! later. Docker's `--init` puts tini in front of the command for this; ours
//! is this module, run by the cloned child after its setup, in memory
//! already, so nothing is added to the container's filesystem.
//!
//! The child forks: the new process becomes the command (its own process
//! group, the terminal's foreground when there is one); the child stays as
//! PID 1, blocks every signal, and loops on `sigtimedwait(2)`: SIGCHLD reaps
//! every exited child, any other signal is passed to the command. When the
//! command exits, init exits with its status (128 + the signal for one
//! killed), and the kernel ends whatever else is left in the namespace.
//!
//! Like the rest of the child, this runs between clone(2) and execve(2) in
//! a copy of a multi-threaded process: system calls only, nothing that
//! allocates or locks (signal-safety(7)).

use nix::errno::Errno;
use std::os::fd::RawFd;

/// What init needs, made before clone(2): the new text of its command line.
#[derive(Debug, Clone)]
pub struct Init {
    /// Where this process's argument strings live (`/proc/self/stat`'s
    /// arg_start and arg_end), and what to write there.
    title: Option<(usize, usize, Vec<u8>)>,
}

/// The name init shows in `ps` and `docker top`, before `--` and the command.
pub const NAME: &str = "mini-docker-init";

impl Init {
    /// Reads where this process's arguments are, so that init can replace
    /// them with `mini-docker-init -- COMMAND…` (its `/proc/1/cmdline`).
    pub fn new(command: &[String]) -> Init {
        let words: Vec<&str> = [NAME, "--"]
            .into_iter()
            .chain(command.iter().map(String::as_str))
            .collect();
        let text = words.join(" ").into_bytes();
        let title = arg_area().map(|(start, end)| (start, end, text));
        Init { title }
    }
}

/// `/proc/self/stat` fields 48 and 49: the range of this process's argv.
fn arg_area() -> Option<(usize, usize)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3.
    let start = fields.get(48 - 3)?.parse().ok()?;
    let end = fields.get(49 - 3)?.parse().ok()?;
    (end > start).then_some((start, end))
}

// ANCHOR: become_init
/// Forks. Returns `Ok` in the new process, which goes on to become the
/// command; the calling process stays as init and never returns. `report`
/// is the pipe to the parent: init closes its copy at once, so the parent
/// sees it close when the command's execve succeeds, and reads a failure
/// the command's process writes.
pub fn become_init(init: &Init, report: RawFd, console: bool) -> Result<(), Errno> {
    // SAFETY: signal masks, fork(2) and the calls in `child_side`/`serve`
    // are async-signal-safe; nothing here allocates.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::sigprocmask(libc::SIG_SETMASK, &all, std::ptr::null_mut());
        match libc::fork() {
            -1 => {
                let errno = Errno::last();
                let mut none: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut none);
                libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
                Err(errno)
            }
            0 => {
                child_side(console);
                Ok(())
            }
            command => {
                libc::close(report);
                retitle(init);
                serve(command, &all)
            }
        }
    }
}
// ANCHOR_END: become_init

/// In the command's process: a process group of its own, which owns the
/// terminal if there is one (so ^C reaches the command once, not through
/// init as well), then every signal unblocked for execve.
unsafe fn child_side(console: bool) {
    libc::setpgid(0, 0);
    if console {
        // SIGTTOU is blocked, so a background group may take the terminal.
        libc::tcsetpgrp(0, libc::getpid());
    }
    let mut none: libc::sigset_t = std::mem::zeroed();
    libc::sigemptyset(&mut none);
    libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
}

// ANCHOR: serve
/// Init's loop: wait for any signal (they are all blocked, so they queue),
/// pass on every one but SIGCHLD, reap whatever exited; leave with the
/// command's status when it is gone.
unsafe fn serve(command: libc::pid_t, all: &libc::sigset_t) -> ! {
    let tick = libc::timespec {
        tv_sec: 1,
        tv_nsec: 0,
    };
    loop {
        let sig = libc::sigtimedwait(all, std::ptr::null_mut(), &tick);
        if sig > 0 && sig != libc::SIGCHLD {
            libc::kill(command, sig);
        }
        loop {
            let mut status = 0;
            let pid = libc::waitpid(-1, &mut status, libc::WNOHANG);
            if pid <= 0 {
                break;
            }
            if pid == command {
                let code = if libc::WIFSIGNALED(status) {
                    128 + libc::WTERMSIG(status)
                } else {
                    libc::WEXITSTATUS(status)
                };
                libc::_exit(code);
            }
        }
    }
}
// ANCHOR_END: serve

/// Writes init's command line over the arguments it was cloned with (the
/// monitor's, which name the engine's directories), as setproctitle(3)
/// does: one string, and the area's last byte not NUL, which tells the
/// kernel to show the area up to its first NUL (proc(5), /proc/pid/cmdline).
unsafe fn retitle(init: &Init) {
    let Some((start, end, text)) = &init.title else {
        return;
    };
    let room = end - start;
    let n = text.len().min(room);
    let area = *start as *mut u8;
    std::ptr::copy_nonoverlapping(text.as_ptr(), area, n);
    std::ptr::write_bytes(area.add(n), 0, room - n);
    *area.add(room - 1) = b' ';
    let name = c"init";
    libc::prctl(libc::PR_SET_NAME, name.as_ptr());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_title_is_name_dashes_command() {
        let init = Init::new(&["sleep".into(), "100".into()]);
        let (start, end, text) = init.title.expect("this process has an argv area");
        assert!(end > start);
        assert_eq!(text, b"mini-docker-init -- sleep 100");
    }
}
