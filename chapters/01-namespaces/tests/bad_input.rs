//! Bad input gets one clear line on stderr and Docker's exit codes (125 for
//! a container that could not be set up, 127 for a missing command), never
//! a panic. These checks fail before any namespace exists, so most need no
//! root.

use std::process::{Command, Output};
use testkit::{fixture, privileged};

const BIN: &str = env!("CARGO_BIN_EXE_chapter-01");

fn chapter01(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn assert_clear_error(out: &Output, code: i32, says: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "stderr: {err}");
    assert!(err.contains(says), "stderr should say {says:?}: {err}");
    assert!(
        !err.contains("panicked"),
        "a panic is never an error message: {err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one line, not a wall: {err}");
}

#[test]
fn a_missing_rootfs_is_named_with_how_to_build_one() {
    let out = chapter01(&["run", "--rootfs", "/no/such/rootfs", "--", "/bin/sh"]);
    assert_clear_error(&out, 125, "/no/such/rootfs");
    assert!(String::from_utf8_lossy(&out.stderr).contains("cargo xtask fixture"));
}

#[test]
fn a_file_is_not_a_rootfs() {
    let out = chapter01(&["run", "--rootfs", "/etc/hostname", "--", "/bin/sh"]);
    assert_clear_error(&out, 125, "not a directory");
}

#[test]
fn an_invalid_hostname_is_refused_before_anything_runs() {
    let rootfs = fixture::rootfs();
    let rootfs = rootfs.to_str().unwrap();
    for bad in ["bad_name", "-dash", "a..b", &"x".repeat(65)] {
        let flag = format!("--hostname={bad}");
        let out = chapter01(&["run", "--rootfs", rootfs, &flag, "--", "/bin/true"]);
        assert_clear_error(&out, 125, "invalid hostname");
    }
    let out = chapter01(&[
        "run",
        "--rootfs",
        rootfs,
        "--ns",
        "mnt",
        "--hostname",
        "ok",
        "--",
        "/bin/true",
    ]);
    assert_clear_error(&out, 125, "needs a UTS namespace");
}

#[test]
fn a_rootfs_without_a_mount_namespace_is_refused() {
    let rootfs = fixture::rootfs();
    let out = chapter01(&[
        "run",
        "--rootfs",
        rootfs.to_str().unwrap(),
        "--ns",
        "uts",
        "--",
        "/bin/true",
    ]);
    assert_clear_error(&out, 125, "needs a mount namespace");
}

#[test]
fn an_unknown_namespace_is_named() {
    let out = chapter01(&["run", "--ns", "uts,time", "--", "/bin/true"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("unknown namespace \"time\""), "{err}");
}

#[test]
fn a_missing_command_exits_127_and_says_which() {
    if !privileged("a_missing_command_exits_127_and_says_which") {
        return;
    }
    let rootfs = fixture::rootfs();
    let out = chapter01(&[
        "run",
        "--rootfs",
        rootfs.to_str().unwrap(),
        "--",
        "no-such-program",
    ]);
    assert_clear_error(&out, 127, "\"no-such-program\"");
    // Not executable: a directory.
    let out = chapter01(&["run", "--rootfs", rootfs.to_str().unwrap(), "--", "/etc"]);
    assert_clear_error(&out, 126, "EACCES");
}

#[test]
fn a_missing_working_directory_is_a_setup_error() {
    if !privileged("a_missing_working_directory_is_a_setup_error") {
        return;
    }
    let rootfs = fixture::rootfs();
    let out = chapter01(&[
        "run",
        "--rootfs",
        rootfs.to_str().unwrap(),
        "-w",
        "/nowhere",
        "--",
        "/bin/true",
    ]);
    assert_clear_error(&out, 125, "change directory to /nowhere");
}

#[test]
fn no_user_namespaces_left_is_named_with_the_sysctl() {
    if !privileged("no_user_namespaces_left_is_named_with_the_sysctl") {
        return;
    }
    // The limit is per user namespace: set it to 0 in a throwaway one (the
    // host's stays as it is), and ask for a user namespace in there.
    let rootfs = fixture::rootfs();
    let script = format!(
        "echo 0 > /proc/sys/user/max_user_namespaces && exec {BIN} run --rootfs {} --ns user,uts,mnt -- /bin/true",
        rootfs.display()
    );
    let host_limit = std::fs::read_to_string("/proc/sys/user/max_user_namespaces").unwrap();
    let out = Command::new("unshare")
        .args(["--user", "--map-root-user", "sh", "-c", &script])
        .output()
        .unwrap();
    assert_clear_error(&out, 125, "max_user_namespaces");
    assert_eq!(
        std::fs::read_to_string("/proc/sys/user/max_user_namespaces").unwrap(),
        host_limit
    );
}
