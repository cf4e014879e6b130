//! Runs a program on a pseudo-terminal, as a terminal emulator would: the
//! terminal is its stdin, stdout and stderr and its controlling terminal.
//! Used for `-it` runs and interactive shells.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The size of the terminal [`run_on_terminal`] opens.
pub const ROWS: u16 = 24;
pub const COLUMNS: u16 = 80;

/// Starts `cmd` on a new 24×80 terminal, types `input` into it, and reads
/// everything it shows until it exits. A watchdog kills it after `limit`.
pub fn run_on_terminal(mut cmd: Command, input: &[u8], limit: Duration) -> (ExitStatus, String) {
    let size = nix::pty::Winsize {
        ws_row: ROWS,
        ws_col: COLUMNS,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = nix::pty::openpty(Some(&size), None).expect("openpty");
    let (master, slave): (OwnedFd, OwnedFd) = (pty.master, pty.slave);
    let slave_fd = slave.as_raw_fd();
    cmd.stdin(slave.try_clone().unwrap())
        .stdout(slave.try_clone().unwrap())
        .stderr(slave.try_clone().unwrap());
    // SAFETY: setsid and ioctl are async-signal-safe; they make the pty the
    // controlling terminal of a new session, as a terminal emulator does.
    unsafe {
        cmd.pre_exec(move || {
            nix::unistd::setsid()?;
            if libc::ioctl(slave_fd, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("spawning the program on the terminal");
    // Every copy of the slave side must be closed here, or reading the
    // master never ends: the Command holds three.
    drop(cmd);
    drop(slave);
    let mut master = std::fs::File::from(master);
    master.write_all(input).unwrap();

    let pid = child.id() as i32;
    let done = Arc::new(AtomicBool::new(false));
    let watchdog_done = done.clone();
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        // Only while the child is unreaped is its PID still ours.
        if !watchdog_done.load(Ordering::SeqCst) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    });
    let deadline = Instant::now() + limit;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    // Read until EIO (the slave is closed once the program exits).
    while Instant::now() < deadline {
        match master.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    let status = child.wait().unwrap();
    done.store(true, Ordering::SeqCst);
    (status, String::from_utf8_lossy(&seen).into_owned())
}
