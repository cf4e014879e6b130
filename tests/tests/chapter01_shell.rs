//! End to end: `chapter-01 all`, the README's main job, driven as a user
//! drives it: commands piped in, and an interactive shell on a terminal.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use testkit::{bin, fixture, privileged};

#[test]
fn all_prints_what_the_container_sees_then_runs_piped_commands() {
    if !privileged("all_prints_what_the_container_sees_then_runs_piped_commands") {
        return;
    }
    fixture::rootfs();
    let mut child = Command::new(bin("chapter-01"))
        .arg("all")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"echo shell-pid=$$; hostname; exit 5\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(5),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("hostname:    mini-docker"), "{text}");
    assert!(
        text.contains("processes:   1 2"),
        "the summary should see only itself and PID 1: {text}"
    );
    assert!(text.contains("interfaces:  lo(up)"), "{text}");
    assert!(
        text.contains("shell-pid=1"),
        "the shell should be PID 1: {text}"
    );
}

#[test]
fn all_gives_an_interactive_shell_on_a_terminal() {
    if !privileged("all_gives_an_interactive_shell_on_a_terminal") {
        return;
    }
    fixture::rootfs();
    let pty = nix::pty::openpty(None, None).unwrap();
    let (master, slave): (OwnedFd, OwnedFd) = (pty.master, pty.slave);
    let slave_fd = slave.as_raw_fd();
    let mut cmd = Command::new(bin("chapter-01"));
    cmd.arg("all")
        .stdin(slave.try_clone().unwrap())
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
    let mut child = cmd.spawn().unwrap();
    // Every copy of the terminal's slave side must be closed here, or reading
    // the master never ends: the Command holds three.
    drop(cmd);
    drop(slave);
    let mut master = std::fs::File::from(master);
    master
        .write_all(b"[ -t 0 ] && echo on-a-tty-$((6*7)); echo pid-$$-$(hostname)\nexit 3\n")
        .unwrap();

    // Read until the shell exits (EIO on the master once the slave is closed);
    // a watchdog kills the run if it hangs, so the read cannot block forever.
    let pid = child.id() as i32;
    let done = Arc::new(AtomicBool::new(false));
    let watchdog_done = done.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(20));
        // Only while the child is unreaped is its PID still ours.
        if !watchdog_done.load(Ordering::SeqCst) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match master.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    let status = child.wait().unwrap();
    done.store(true, Ordering::SeqCst);
    let text = String::from_utf8_lossy(&seen);
    assert_eq!(status.code(), Some(3), "{text}");
    assert!(
        text.contains("on-a-tty-42"),
        "stdin is not a terminal inside: {text}"
    );
    assert!(text.contains("pid-1-mini-docker"), "{text}");
}
