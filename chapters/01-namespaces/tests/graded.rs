//! Graded tests for chapter 01. Each name starts with its exercise id
//! (`ex1_4_…` grades exercise 1.4) and proves isolation by looking from both
//! sides: from inside through the fixture's `facts` helper, from the host
//! through /proc. They drive the `chapter-01` binary as a learner would.

use chapter_01::ipc::HostQueue;
use chapter_01::{clone_flags, exit_code, Namespace, Namespaces};
use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use nix::sys::wait::WaitStatus;
use nix::unistd::Pid;
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use testkit::{fixture, parse_facts, privileged};

const BIN: &str = env!("CARGO_BIN_EXE_chapter-01");

/// `chapter-01 run --rootfs FIXTURE ARGS…`
fn run_cmd(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("run")
        .arg("--rootfs")
        .arg(fixture::rootfs())
        .args(args);
    cmd
}

fn run(args: &[&str]) -> Output {
    let out = run_cmd(args).output().expect("running chapter-01");
    eprintln!("stderr: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// Runs `facts` inside a container with these namespaces.
fn facts(ns: &str, extra: &[&str]) -> Value {
    let mut args = vec!["--ns", ns];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--", "/bin/facts"]);
    let out = run(&args);
    assert!(out.status.success(), "container failed: {:?}", out.status);
    parse_facts(&out.stdout)
}

/// Starts a container whose command prints `ready` and then waits for a line
/// on stdin; returns it once `ready` was read.
fn start_waiting(mut cmd: Command) -> (Child, BufReader<std::process::ChildStdout>) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("starting chapter-01");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready", "the container did not start");
    (child, out)
}

/// The container's PID 1 as the host sees it: the only child of the CLI.
fn container_pid(cli: &Child) -> u32 {
    let children =
        std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", cli.id())).unwrap();
    children
        .split_whitespace()
        .next()
        .expect("the CLI has a child")
        .parse()
        .unwrap()
}

fn host_mountinfo() -> String {
    std::fs::read_to_string("/proc/self/mountinfo").unwrap()
}

// ---- 1.1 clone flags -------------------------------------------------------

#[test]
fn ex1_1_each_namespace_has_its_clone_flag() {
    let cases = [
        (Namespace::Uts, CloneFlags::CLONE_NEWUTS),
        (Namespace::Ipc, CloneFlags::CLONE_NEWIPC),
        (Namespace::Pid, CloneFlags::CLONE_NEWPID),
        (Namespace::Net, CloneFlags::CLONE_NEWNET),
        (Namespace::Mount, CloneFlags::CLONE_NEWNS),
        (Namespace::User, CloneFlags::CLONE_NEWUSER),
        (Namespace::Cgroup, CloneFlags::CLONE_NEWCGROUP),
    ];
    for (ns, flag) in cases {
        assert_eq!(clone_flags(&Namespaces::from_iter([ns])), flag, "{ns}");
    }
    assert_eq!(clone_flags(&Namespaces::none()), CloneFlags::empty());
}

#[test]
fn ex1_1_namespace_inodes_differ_from_the_hosts() {
    if !privileged("ex1_1_namespace_inodes_differ_from_the_hosts") {
        return;
    }
    let inside = facts("uts,pid,mnt,ipc,net,cgroup", &["--hostname", "box"]);
    for ns in ["uts", "pid", "mnt", "ipc", "net", "cgroup"] {
        let host = std::fs::read_link(format!("/proc/self/ns/{ns}")).unwrap();
        assert_ne!(
            inside["namespaces"][ns],
            host.to_string_lossy().as_ref(),
            "{ns} was not new"
        );
    }
    let host_user = std::fs::read_link("/proc/self/ns/user").unwrap();
    assert_eq!(
        inside["namespaces"]["user"],
        host_user.to_string_lossy().as_ref(),
        "user was not asked for"
    );
}

#[test]
fn ex1_1_host_message_queue_is_invisible_inside() {
    if !privileged("ex1_1_host_message_queue_is_invisible_inside") {
        return;
    }
    let key = 0x0e11_0000 | (std::process::id() as i32 & 0xffff);
    let queue = HostQueue::create(key).expect("creating a SysV queue on the host");
    // Control: without an IPC namespace the queue is visible, so the check below can see it.
    let shared = facts("mnt", &[]);
    assert!(shared["sysv_msg_queues"]
        .as_array()
        .unwrap()
        .contains(&queue.key().into()));
    let isolated = facts("mnt,ipc", &[]);
    assert_eq!(
        isolated["sysv_msg_queues"],
        serde_json::json!([]),
        "the host's queue leaked in"
    );
}

// ---- 1.2 UTS ---------------------------------------------------------------

#[test]
fn ex1_2_hostname_is_set_inside_and_unchanged_on_host() {
    if !privileged("ex1_2_hostname_is_set_inside_and_unchanged_on_host") {
        return;
    }
    let before = nix::unistd::gethostname().unwrap();
    let inside = facts("uts,mnt", &["--hostname", "ex12-box"]);
    assert_eq!(inside["hostname"], "ex12-box");
    let out = run(&[
        "--ns",
        "uts,mnt",
        "--hostname",
        "ex12-box",
        "--",
        "/bin/hostname",
        "renamed-inside",
    ]);
    assert!(out.status.success());
    assert_eq!(
        nix::unistd::gethostname().unwrap(),
        before,
        "the host's hostname changed"
    );
}

// ---- 1.3 PID ---------------------------------------------------------------

#[test]
fn ex1_3_command_is_pid_1_and_host_processes_are_invisible() {
    if !privileged("ex1_3_command_is_pid_1_and_host_processes_are_invisible") {
        return;
    }
    let inside = facts("pid,mnt", &[]);
    assert_eq!(inside["pid"], 1);
    assert_eq!(inside["ppid"], 0, "PID 1's parent is outside the namespace");
    assert_eq!(
        inside["processes"],
        serde_json::json!([1]),
        "/proc shows other processes"
    );
    let proc_mount = inside["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mount_point"] == "/proc");
    assert_eq!(proc_mount.expect("a /proc mount inside")["fstype"], "proc");
    assert!(
        std::fs::read_dir("/proc").unwrap().count() > 10,
        "control: the host sees many"
    );
}

// ---- 1.4 MNT and pivot_root -------------------------------------------------

#[test]
fn ex1_4_mount_made_inside_is_invisible_on_host() {
    if !privileged("ex1_4_mount_made_inside_is_invisible_on_host") {
        return;
    }
    let script = "mount -t tmpfs ex14-marker /mnt && grep -q ex14-marker /proc/self/mountinfo && echo ready && read x";
    let (mut cli, _out) =
        start_waiting(run_cmd(&["--ns", "mnt,pid", "--", "/bin/sh", "-c", script]));
    let leaked = host_mountinfo().contains("ex14-marker");
    cli.stdin.take().unwrap().write_all(b"done\n").unwrap();
    assert!(cli.wait().unwrap().success());
    assert!(
        !leaked,
        "a mount made inside the container appeared on the host"
    );
    let rootfs = fixture::rootfs();
    assert!(
        !host_mountinfo().contains(rootfs.to_str().unwrap()),
        "the rootfs bind leaked to the host"
    );
}

#[test]
fn ex1_4_pivot_root_leaves_no_path_to_the_host_root() {
    if !privileged("ex1_4_pivot_root_leaves_no_path_to_the_host_root") {
        return;
    }
    let fixture_entries: Vec<String> = {
        let mut v: Vec<String> = std::fs::read_dir(fixture::rootfs())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let inside = facts("pid,mnt", &[]);
    assert_eq!(
        inside["root_entries"],
        serde_json::json!(fixture_entries),
        "/ is not the rootfs"
    );
    for m in inside["mounts"].as_array().unwrap() {
        let point = m["mount_point"].as_str().unwrap();
        assert!(
            point == "/" || point.starts_with("/proc") || point.starts_with("/dev"),
            "old root still mounted: {point}"
        );
    }
    let out = run(&["--ns", "pid,mnt", "--", "/bin/facts", "escape"]);
    let escape = parse_facts(&out.stdout);
    assert_eq!(
        escape["escaped"], false,
        "the chroot escape reached the host: {escape}"
    );
    // Control: the same attempt from a chroot jail does escape.
    let out = run(&[
        "--ns",
        "pid,mnt",
        "--chroot-insecure",
        "--",
        "/bin/facts",
        "escape",
    ]);
    assert_eq!(
        parse_facts(&out.stdout)["escaped"],
        true,
        "control: chroot should be escapable"
    );
}

// ---- 1.5 /dev --------------------------------------------------------------

#[test]
fn ex1_5_dev_holds_only_the_minimal_devices_and_they_work() {
    if !privileged("ex1_5_dev_holds_only_the_minimal_devices_and_they_work") {
        return;
    }
    let inside = facts("pid,mnt", &[]);
    let expected = [
        "fd", "full", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin", "stdout", "tty",
        "urandom", "zero",
    ];
    assert_eq!(inside["dev_entries"], serde_json::json!(expected));
    let out = run(&[
        "--ns",
        "pid,mnt",
        "--",
        "/bin/sh",
        "-c",
        "echo x > /dev/null && head -c 5 /dev/zero | wc -c && head -c 5 /dev/urandom | wc -c && ls /dev/pts",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert_eq!(
        text.split_whitespace().collect::<Vec<_>>(),
        ["5", "5", "ptmx"],
        "devices or devpts misbehave"
    );
}

// ---- 1.6 NET ---------------------------------------------------------------

#[test]
fn ex1_6_only_loopback_inside_and_it_is_up() {
    if !privileged("ex1_6_only_loopback_inside_and_it_is_up") {
        return;
    }
    let inside = facts("net,mnt", &[]);
    assert_eq!(
        inside["net_interfaces"],
        serde_json::json!([{"name": "lo", "up": true}])
    );
    let out = run(&[
        "--ns",
        "net,mnt",
        "--",
        "/bin/ping",
        "-c",
        "1",
        "-W",
        "1",
        "127.0.0.1",
    ]);
    assert!(out.status.success(), "loopback does not answer inside");
    let host = std::fs::read_to_string("/proc/net/dev").unwrap();
    assert!(
        host.lines().count() > 3,
        "control: the host has more than lo"
    );
}

// ---- 1.7 USER --------------------------------------------------------------

#[test]
fn ex1_7_root_inside_is_an_unprivileged_uid_outside() {
    if !privileged("ex1_7_root_inside_is_an_unprivileged_uid_outside") {
        return;
    }
    let inside = facts("user,pid,mnt", &[]);
    assert_eq!(
        (inside["uid"].clone(), inside["gid"].clone()),
        (0.into(), 0.into())
    );
    assert_eq!(inside["uid_map"], "0 100000 65536");
    let (mut cli, _out) = start_waiting(run_cmd(&[
        "--ns",
        "user,pid,mnt",
        "--",
        "/bin/sh",
        "-c",
        "echo ready; read x",
    ]));
    let status = std::fs::read_to_string(format!("/proc/{}/status", container_pid(&cli))).unwrap();
    cli.stdin.take().unwrap().write_all(b"done\n").unwrap();
    assert!(cli.wait().unwrap().success());
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert_eq!(
        uid_line.split_whitespace().nth(1),
        Some("100000"),
        "host view: {uid_line}"
    );
}

#[test]
fn ex1_7_unprivileged_user_runs_a_container_through_a_user_namespace() {
    if !privileged("ex1_7_unprivileged_user_runs_a_container_through_a_user_namespace") {
        return;
    }
    // Copies that `nobody` can reach, wherever the checkout lives.
    let scratch = tempfile::Builder::new()
        .prefix("ch01-unpriv")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(
        scratch.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let bin = scratch.path().join("chapter-01");
    std::fs::copy(BIN, &bin).unwrap();
    let rootfs = scratch.path().join("rootfs");
    copy_tree(&fixture::rootfs(), &rootfs);
    let out = Command::new(&bin)
        .args(["run", "--rootfs"])
        .arg(&rootfs)
        .args(["--ns", "all", "--hostname", "mine", "--", "/bin/facts"])
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let inside = parse_facts(&out.stdout);
    assert_eq!(inside["uid"], 0);
    assert_eq!(inside["uid_map"], "0 65534 1");
    assert_eq!(inside["hostname"], "mine");
    assert_eq!(inside["pid"], 1);
    // Without a user namespace the same user is refused, with the reason.
    let out = Command::new(&bin)
        .args(["run", "--rootfs"])
        .arg(&rootfs)
        .args(["--ns", "uts,mnt", "--", "/bin/true"])
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("EPERM") && err.contains("user namespace"),
        "{err}"
    );
}

fn copy_tree(from: &Path, to: &Path) {
    let ok = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap()
        .success();
    assert!(ok, "copying {} failed", from.display());
}

// ---- 1.8 exit codes and signals ---------------------------------------------

#[test]
fn ex1_8_wait_status_maps_to_shell_exit_codes() {
    let pid = Pid::from_raw(1);
    assert_eq!(exit_code(WaitStatus::Exited(pid, 0)), 0);
    assert_eq!(exit_code(WaitStatus::Exited(pid, 42)), 42);
    assert_eq!(
        exit_code(WaitStatus::Signaled(pid, Signal::SIGKILL, false)),
        137
    );
    assert_eq!(
        exit_code(WaitStatus::Signaled(pid, Signal::SIGTERM, true)),
        143
    );
}

#[test]
fn ex1_8_exit_codes_and_signals_pass_through() {
    if !privileged("ex1_8_exit_codes_and_signals_pass_through") {
        return;
    }
    let code = |args: &[&str]| run(args).status.code();
    assert_eq!(
        code(&["--ns", "pid,mnt", "--", "/bin/sh", "-c", "exit 3"]),
        Some(3)
    );
    // Without a PID namespace the shell is not an init, so it can kill itself.
    assert_eq!(
        code(&["--ns", "mnt", "--", "/bin/sh", "-c", "kill -TERM $$"]),
        Some(143)
    );
    let missing = run(&["--ns", "pid,mnt", "--", "/no/such/program"]);
    assert_eq!(missing.status.code(), Some(127));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/no/such/program"));
}

#[test]
fn ex1_8_sigterm_to_the_runtime_reaches_the_containers_pid_1() {
    if !privileged("ex1_8_sigterm_to_the_runtime_reaches_the_containers_pid_1") {
        return;
    }
    // PID 1 gets only the signals it handles, so the shell traps TERM.
    let script = "trap 'exit 42' TERM; echo ready; while :; do sleep 0.1; done";
    let (mut cli, _out) =
        start_waiting(run_cmd(&["--ns", "pid,mnt", "--", "/bin/sh", "-c", script]));
    nix::sys::signal::kill(Pid::from_raw(cli.id() as i32), Signal::SIGTERM).unwrap();
    assert_eq!(
        cli.wait().unwrap().code(),
        Some(42),
        "SIGTERM was not forwarded to PID 1"
    );
}
