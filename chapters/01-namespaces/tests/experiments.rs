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
