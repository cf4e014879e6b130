//! The experiments of `cargo run -p chapter-02 -- …` run and show what they
//! promise. Not graded.

use std::process::Command;
use testkit::{fixture, privileged};

const BIN: &str = env!("CARGO_BIN_EXE_chapter-02");

#[test]
fn experiments_show_each_limit_enforced() {
    if !privileged("experiments_show_each_limit_enforced") {
        return;
    }
    fixture::rootfs();
    let expect: [(&[&str], &str); 6] = [
        (&["info"], "layout: "),
        (&["oom"], "killed by the OOM killer"),
        (&["cpu", "--seconds", "1"], "measured share"),
        (&["forkbomb"], "\"error\":\"EAGAIN\""),
        (
            &["io", "--mib", "4", "--rate", "4m"],
            "the limit slowed the writes",
        ),
        (&["stats", "--seconds", "1"], "memory"),
    ];
    testkit::assert_experiments_show(BIN, &expect);
}

#[test]
fn bad_limits_are_refused_with_the_reason() {
    let cases: [(&[&str], &str); 5] = [
        (&["run", "--memory", "10ZB", "--", "true"], "unknown unit"),
        (
            &["run", "--memory", "1.5.3", "--", "true"],
            "more than one decimal point",
        ),
        (&["run", "--memory=-1", "--", "true"], "cannot be negative"),
        (
            &[
                "run",
                "--device-write-bps",
                "/etc/hostname:1m",
                "--",
                "true",
            ],
            "not a block device",
        ),
        (&["run", "--memory-swap", "x", "--", "true"], "invalid size"),
    ];
    for (args, says) in cases {
        let out = Command::new(BIN).args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?} should say {says:?}: {err}");
    }
    if nix::unistd::geteuid().is_root() {
        let out = Command::new(BIN)
            .args(["run", "--cpus", "4096", "--", "true"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(125), "{err}");
        assert!(err.contains("CPUs this host has"), "{err}");
    }
}
