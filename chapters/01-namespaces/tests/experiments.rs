//! The experiments of `cargo run -p chapter-01 -- …` run and show what they
//! promise. Not graded: the isolation itself is graded in graded.rs.

use std::process::Command;
use testkit::{fixture, privileged};

const BIN: &str = env!("CARGO_BIN_EXE_chapter-01");

/// Every experiment of `cargo run -p chapter-01 -- …` runs and shows what it
/// promises. Not graded (named without an exercise id).
#[test]
fn experiments_run_and_show_both_sides() {
    if !privileged("experiments_run_and_show_both_sides") {
        return;
    }
    let rootfs = fixture::rootfs();
    let expect = [
        ("uts", "renamed"),
        ("pid", "my pid is 1"),
        ("mnt", "scratch is absent in the host's mount table"),
        ("ipc", "key      msqid"),
        ("net", "lo: <LOOPBACK,UP"),
        ("veth", "1 packets transmitted, 1 packets received"),
        ("user", "/status: Uid:\t100000"),
        ("escape", "contained: `/` is still the container's root"),
    ];
    for (experiment, shows) in expect {
        let out = Command::new(BIN)
            .arg(experiment)
            .arg("--rootfs")
            .arg(&rootfs)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{experiment}: {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains(shows),
            "{experiment} should show {shows:?}:\n{text}"
        );
    }
    let out = Command::new(BIN)
        .args(["escape", "--rootfs"])
        .arg(&rootfs)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("ESCAPED"),
        "the chroot half of the demo must escape"
    );
}

/// `run --init`: PID 1 is the init, the command PID 2, its status the run's;
/// without it the command is PID 1.
#[test]
fn run_with_init_puts_a_tiny_init_in_front_of_the_command() {
    if !privileged("run_with_init_puts_a_tiny_init_in_front_of_the_command") {
        return;
    }
    let run = |init: bool| {
        let mut cmd = Command::new(BIN);
        cmd.arg("run").arg("--rootfs").arg(fixture::rootfs());
        if init {
            cmd.arg("--init");
        }
        cmd.args(["--", "sh", "-c", "cat /proc/1/comm; echo $$; exit 4"]);
        cmd.output().unwrap()
    };
    let with = run(true);
    assert_eq!(with.status.code(), Some(4), "{with:?}");
    assert_eq!(String::from_utf8_lossy(&with.stdout), "init\n2\n");
    let without = run(false);
    assert_eq!(without.status.code(), Some(4), "{without:?}");
    assert_eq!(String::from_utf8_lossy(&without.stdout), "sh\n1\n");
}
