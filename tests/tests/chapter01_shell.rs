//! End to end: `chapter-01 all`, the README's main job, driven as a user
//! drives it: commands piped in, and an interactive shell on a terminal.

use std::process::Command;
use std::time::Duration;
use testkit::{bin, fixture, privileged};

#[test]
fn all_prints_what_the_container_sees_then_runs_piped_commands() {
    if !privileged("all_prints_what_the_container_sees_then_runs_piped_commands") {
        return;
    }
    fixture::rootfs();
    let mut cmd = Command::new(bin("chapter-01"));
    cmd.arg("all");
    let out = testkit::run_with_stdin(cmd, b"echo shell-pid=$$; hostname; exit 5\n");
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
    let mut cmd = Command::new(bin("chapter-01"));
    cmd.arg("all");
    let (status, text) = testkit::pty::run_on_terminal(
        cmd,
        b"[ -t 0 ] && echo on-a-tty-$((6*7)); echo pid-$$-$(hostname)\nexit 3\n",
        Duration::from_secs(20),
    );
    assert_eq!(status.code(), Some(3), "{text}");
    assert!(
        text.contains("on-a-tty-42"),
        "stdin is not a terminal inside: {text}"
    );
    assert!(text.contains("pid-1-mini-docker"), "{text}");
}
