//! Graded tests for chapter 01. Each name starts with its exercise id
//! (`ex1_4_…` grades exercise 1.4). Two kinds:
//!
//! - unit tests run a step against the [`Recorder`] and check the calls it
//!   makes, in order: no root, no namespace, any machine;
//! - kernel tests drive the `chapter-01` binary as a learner would and look
//!   from both sides: from inside through the fixture's `facts` helper, from
//!   the host through /proc. As root they use the namespaces asked for; as
//!   an ordinary user they add a user namespace (`with_userns`), so the
//!   whole chapter grades without root where the kernel allows it.
//!
//! A test only needs its own exercise and those before it.

use chapter_01::ipc::HostQueue;
use chapter_01::sys::{Call, Recorder};
use chapter_01::{clone_flags, Namespace, Namespaces, Spec};
use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use testkit::{fixture, kernel, parse_facts, with_userns};

const BIN: &str = env!("CARGO_BIN_EXE_chapter-01");

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// `chapter-01 run --rootfs FIXTURE --ns NS ARGS…` (user added when not root).
fn run_cmd(ns: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("run")
        .arg("--rootfs")
        .arg(fixture::rootfs())
        .args(["--ns", &with_userns(ns)])
        .args(args);
    cmd
}

/// `chapter-01 run --no-rootfs --ns NS ARGS…`: the host's files stay.
fn host_cmd(ns: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(["run", "--no-rootfs", "--ns", &with_userns(ns)])
        .args(args);
    cmd
}

fn output(mut cmd: Command) -> Output {
    let out = cmd.output().expect("running chapter-01");
    eprintln!("stderr: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// Runs `facts` inside a container over the fixture rootfs.
fn facts(ns: &str, extra: &[&str]) -> Value {
    let mut args = extra.to_vec();
    args.extend_from_slice(&["--", "/bin/facts"]);
    let out = output(run_cmd(ns, &args));
    assert!(out.status.success(), "container failed: {:?}", out.status);
    parse_facts(&out.stdout)
}

/// The fixture's `facts` as a host path (for runs that keep the host's files).
fn host_facts() -> String {
    fixture::rootfs().join("bin/facts").display().to_string()
}

/// Runs `facts` with the host's files (no rootfs).
fn facts_on_host(ns: &str, extra: &[&str]) -> Value {
    let facts = host_facts();
    let mut args = extra.to_vec();
    args.extend_from_slice(&["--", &facts]);
    let out = output(host_cmd(ns, &args));
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

fn finish(mut cli: Child) {
    cli.stdin.take().unwrap().write_all(b"done\n").unwrap();
    assert!(cli.wait().unwrap().success());
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

fn spec_without_rootfs(command: &[&str], namespaces: &str) -> Spec {
    let mut spec = Spec::new("/", command.iter().map(|s| s.to_string()).collect());
    spec.rootfs = None;
    spec.hostname = None;
    spec.namespaces = namespaces.parse().unwrap();
    spec
}

fn plan_for(command: &str, path: &str) -> chapter_01::plan::Plan {
    let mut spec = spec_without_rootfs(&[command], "none");
    spec.env = vec![format!("PATH={path}")];
    chapter_01::plan::build(&spec)
}

/// A mount's (source, target, fstype, flags, data).
type MountArgs<'a> = (
    Option<&'a str>,
    &'a str,
    Option<&'a str>,
    MsFlags,
    Option<&'a str>,
);

fn mount_call(call: &Call) -> Option<MountArgs<'_>> {
    match call {
        Call::Mount {
            source,
            target,
            fstype,
            flags,
            data,
        } => Some((
            source.as_deref(),
            target.as_str(),
            fstype.as_deref(),
            *flags,
            data.as_deref(),
        )),
        _ => None,
    }
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
    let all: Namespaces = "uts,pid,net".parse().unwrap();
    assert_eq!(
        clone_flags(&all),
        CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNET
    );
}

// ---- 1.2 the clone(2) call ---------------------------------------------------

#[test]
fn ex1_2_the_child_runs_in_new_namespaces_and_its_end_is_seen_by_waitpid() {
    if !kernel("ex1_2_the_child_runs_in_new_namespaces_and_its_end_is_seen_by_waitpid") {
        return;
    }
    let mut flags = CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWIPC;
    if !is_root() {
        flags |= CloneFlags::CLONE_NEWUSER;
    }
    let (hold_r, hold_w) = nix::unistd::pipe().unwrap();
    let hold = hold_r.as_raw_fd();
    let entry = Box::new(move || {
        // Wait until the parent has looked and says so.
        let mut byte = 0u8;
        // SAFETY: read(2) into a local byte; _exit(2).
        unsafe {
            libc::read(hold, (&raw mut byte).cast(), 1);
            libc::_exit(7)
        }
    });
    let pid = chapter_01::parent::clone_child(flags, entry).expect("clone");
    let ns = |pid: &str, kind: &str| std::fs::read_link(format!("/proc/{pid}/ns/{kind}")).unwrap();
    for kind in ["uts", "ipc"] {
        assert_ne!(
            ns(&pid.to_string(), kind),
            ns("self", kind),
            "the child's {kind} namespace is the parent's"
        );
    }
    assert_eq!(
        ns(&pid.to_string(), "net"),
        ns("self", "net"),
        "a namespace that was not asked for is new"
    );
    nix::unistd::write(&hold_w, &[1]).unwrap();
    drop((hold_r, hold_w));
    // Only a child that signals SIGCHLD at its end is seen by a plain waitpid.
    assert_eq!(waitpid(pid, None).unwrap(), WaitStatus::Exited(pid, 7));
}

// ---- 1.3 waiting for go ------------------------------------------------------

#[test]
fn ex1_3_the_child_goes_on_a_byte_and_gives_up_on_eof() {
    let (r, w) = nix::unistd::pipe().unwrap();
    nix::unistd::write(&w, &[1]).unwrap();
    assert!(chapter_01::child::wait_for_go(r.as_raw_fd()));
    drop(w);
    assert!(
        !chapter_01::child::wait_for_go(r.as_raw_fd()),
        "EOF (the parent gave up) must not read as go"
    );
    // A byte that comes later is waited for.
    let (r, w) = nix::unistd::pipe().unwrap();
    let writer = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(100));
        nix::unistd::write(&w, &[1]).unwrap();
    });
    assert!(chapter_01::child::wait_for_go(r.as_raw_fd()));
    writer.join().unwrap();
}

// ---- 1.4 execve, as execvp searches ------------------------------------------

#[test]
fn ex1_4_every_candidate_is_tried_in_order_and_the_code_says_why_none_ran() {
    let plan = plan_for("prog", "/a:/b:/c");
    let mut rec = Recorder::new();
    let (errno, code) = chapter_01::child::exec_command(&mut rec, &plan);
    assert_eq!((errno, code), (Errno::ENOENT, 127));
    assert_eq!(
        rec.calls,
        ["/a/prog", "/b/prog", "/c/prog"].map(|p| Call::Execve(p.into()))
    );
    // Found but not executable: the search goes on, and says so at the end.
    let mut rec = Recorder::new().fail(0, Errno::EACCES);
    let result = chapter_01::child::exec_command(&mut rec, &plan);
    assert_eq!(result, (Errno::EACCES, 126));
    assert_eq!(rec.calls.len(), 3);
    // Not a directory along the way: keep looking.
    let mut rec = Recorder::new().fail(0, Errno::ENOTDIR);
    assert_eq!(
        chapter_01::child::exec_command(&mut rec, &plan),
        (Errno::ENOENT, 127)
    );
    // Any other failure is final.
    let mut rec = Recorder::new().fail(1, Errno::ENOEXEC);
    let result = chapter_01::child::exec_command(&mut rec, &plan);
    assert_eq!(result, (Errno::ENOEXEC, 126));
    assert_eq!(rec.calls.len(), 2, "the search stops at a final failure");
}

// ---- 1.5 signal forwarding -------------------------------------------------

#[test]
fn ex1_5_a_signal_the_runtime_gets_goes_to_the_container_and_the_old_action_comes_back() {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet};
    let sleeper = testkit::Sleeper::start(600);
    let ignore = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
    // SAFETY: ignoring a signal no other test uses.
    let before = unsafe { sigaction(Signal::SIGUSR2, &ignore) }.unwrap();
    let mut saved = chapter_01::parent::forward_signals(sleeper.pid());
    assert!(
        saved.iter().any(|(sig, _)| *sig == Signal::SIGTERM) && saved.len() >= 6,
        "the actions replaced are returned: {} of them",
        saved.len()
    );
    // SIGUSR2 to ourselves: the handler passes it on, the sleeper dies of it.
    nix::sys::signal::raise(Signal::SIGUSR2).unwrap();
    let pid = sleeper.pid();
    let status = waitpid(pid, None).unwrap();
    std::mem::forget(sleeper); // reaped here
    chapter_01::parent::stop_forwarding(&mut saved);
    // SAFETY: puts back the action this test found.
    let restored = unsafe { sigaction(Signal::SIGUSR2, &before) }.unwrap();
    assert_eq!(status, WaitStatus::Signaled(pid, Signal::SIGUSR2, false));
    assert!(
        matches!(restored.handler(), SigHandler::SigIgn),
        "the action before forwarding comes back"
    );
}

// ---- 1.6 the handshake -------------------------------------------------------

#[test]
fn ex1_6_start_returns_once_the_command_runs_or_says_which_step_failed() {
    let spec = spec_without_rootfs(&["/bin/true"], "none");
    let mut child = chapter_01::spawn(&spec).expect("spawn");
    child.start().expect("the command runs");
    drop(child);

    let spec = spec_without_rootfs(&["/no/such/program"], "none");
    let mut child = chapter_01::spawn(&spec).expect("spawn");
    let err = child.start().expect_err("a missing program is reported");
    assert!(
        matches!(
            err,
            chapter_01::Error::Exec {
                errno: Errno::ENOENT,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.exit_code(), 127);
    assert!(err.to_string().contains("/no/such/program"), "{err}");

    let mut spec = spec_without_rootfs(&["/bin/true"], "none");
    spec.workdir = "/no/such/dir".into();
    let mut child = chapter_01::spawn(&spec).expect("spawn");
    let err = child.start().expect_err("a failed step is reported");
    let text = err.to_string();
    assert!(
        text.contains("change directory to /no/such/dir") && text.contains("ENOENT"),
        "the error must name the step that failed: {text}"
    );
}

// ---- 1.7 waiting, and exit codes ---------------------------------------------

#[test]
fn ex1_7_exit_codes_and_deaths_by_signal_come_back_as_a_shell_reports_them() {
    let code = |script: &str| {
        output(host_cmd("none", &["--", "/bin/sh", "-c", script]))
            .status
            .code()
    };
    assert_eq!(code("exit 0"), Some(0));
    assert_eq!(code("exit 3"), Some(3));
    assert_eq!(code("kill -TERM $$"), Some(143));
    assert_eq!(code("kill -KILL $$"), Some(137));
    let missing = output(host_cmd("none", &["--", "/no/such/program"]));
    assert_eq!(missing.status.code(), Some(127));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/no/such/program"));
}

// ---- 1.8 ID maps -------------------------------------------------------------

fn written(map: &chapter_01::IdMap) -> Vec<(String, String)> {
    let mut files = Vec::new();
    chapter_01::user::write_id_maps(map, &mut |file, text| {
        files.push((file.to_string(), text.to_string()));
        Ok(())
    })
    .unwrap();
    files
}

#[test]
fn ex1_8_maps_are_written_once_each_with_setgroups_denied_first_where_needed() {
    let root = chapter_01::IdMap::for_caller(0, 0);
    assert_eq!(
        written(&root),
        [
            ("uid_map".into(), "0 100000 65536\n".into()),
            ("gid_map".into(), "0 100000 65536\n".into())
        ],
        "root maps a range, setgroups untouched"
    );
    let user = chapter_01::IdMap::for_caller(1000, 1001);
    assert_eq!(
        written(&user),
        [
            ("uid_map".into(), "0 1000 1\n".into()),
            ("setgroups".into(), "deny".into()),
            ("gid_map".into(), "0 1001 1\n".into())
        ],
        "an unprivileged writer denies setgroups before gid_map"
    );
    let mut two = root.clone();
    two.uids.push(chapter_01::IdRange {
        inside: 65536,
        outside: 300000,
        count: 10,
    });
    let files = written(&two);
    assert_eq!(
        files[0],
        ("uid_map".into(), "0 100000 65536\n65536 300000 10\n".into()),
        "every range of a map goes in its one write"
    );
    // A refused write stops the sequence and comes back.
    let mut calls = 0;
    let err = chapter_01::user::write_id_maps(&user, &mut |_, _| {
        calls += 1;
        Err(std::io::Error::from_raw_os_error(libc::EPERM))
    })
    .unwrap_err();
    assert_eq!((calls, err.raw_os_error()), (1, Some(libc::EPERM)));
}

// ---- 1.9 root of the user namespace -----------------------------------------

#[test]
fn ex1_9_groups_then_gid_then_uid_and_groups_only_where_allowed() {
    let mut rec = Recorder::new();
    chapter_01::user::become_root(&mut rec, true).unwrap();
    assert_eq!(
        rec.calls,
        [
            Call::SetGroups(vec![]),
            Call::SetResGid(0),
            Call::SetResUid(0)
        ]
    );
    let mut rec = Recorder::new();
    chapter_01::user::become_root(&mut rec, false).unwrap();
    assert_eq!(rec.calls, [Call::SetResGid(0), Call::SetResUid(0)]);
    let mut rec = Recorder::new().fail(0, Errno::EINVAL);
    assert_eq!(
        chapter_01::user::become_root(&mut rec, false),
        Err(Errno::EINVAL)
    );
    assert_eq!(rec.calls.len(), 1, "a failed step stops the sequence");
}

#[test]
fn ex1_9_root_inside_is_an_unprivileged_uid_outside() {
    if !kernel("ex1_9_root_inside_is_an_unprivileged_uid_outside") {
        return;
    }
    let inside = facts_on_host("user", &[]);
    assert_eq!(
        (inside["uid"].clone(), inside["gid"].clone()),
        (0.into(), 0.into())
    );
    let me = nix::unistd::geteuid().as_raw();
    let outside = if is_root() { 100000 } else { me };
    let expected_map = if is_root() {
        "0 100000 65536".to_string()
    } else {
        format!("0 {me} 1")
    };
    assert_eq!(inside["uid_map"], expected_map.as_str());
    let script = "echo ready; read x";
    let (cli, _out) = start_waiting(host_cmd("user", &["--", "/bin/sh", "-c", script]));
    let status = std::fs::read_to_string(format!("/proc/{}/status", container_pid(&cli))).unwrap();
    finish(cli);
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert_eq!(
        uid_line.split_whitespace().nth(1),
        Some(outside.to_string().as_str()),
        "host view: {uid_line}"
    );
}

#[test]
fn ex1_9_namespace_inodes_differ_from_the_hosts() {
    if !kernel("ex1_9_namespace_inodes_differ_from_the_hosts") {
        return;
    }
    // Through a user namespace, as root too: an ordinary user's way in.
    let inside = facts_on_host("user,uts,ipc,cgroup", &[]);
    for ns in ["user", "uts", "ipc", "cgroup"] {
        let host = std::fs::read_link(format!("/proc/self/ns/{ns}")).unwrap();
        assert_ne!(
            inside["namespaces"][ns],
            host.to_string_lossy().as_ref(),
            "{ns} was not new"
        );
    }
    for ns in ["mnt", "net"] {
        let host = std::fs::read_link(format!("/proc/self/ns/{ns}")).unwrap();
        assert_eq!(
            inside["namespaces"][ns],
            host.to_string_lossy().as_ref(),
            "{ns} was not asked for"
        );
    }
}

#[test]
fn ex1_9_host_message_queue_is_invisible_inside() {
    if !kernel("ex1_9_host_message_queue_is_invisible_inside") {
        return;
    }
    let key = 0x0e18_0000 | (std::process::id() as i32 & 0xffff);
    let queue = HostQueue::create(key).expect("creating a SysV queue on the host");
    let facts = host_facts();
    // Control: without an IPC namespace the queue is visible, so the check can see it.
    let out = output(host_cmd("none", &["--", &facts]));
    assert!(parse_facts(&out.stdout)["sysv_msg_queues"]
        .as_array()
        .unwrap()
        .contains(&queue.key().into()));
    let isolated = facts_on_host("user,ipc", &[]);
    assert_eq!(
        isolated["sysv_msg_queues"],
        serde_json::json!([]),
        "the host's queue leaked in"
    );
}

// ---- 1.10 UTS -----------------------------------------------------------------

#[test]
fn ex1_10_the_hostname_is_set_with_one_call() {
    let mut rec = Recorder::new();
    chapter_01::uts::set_hostname(&mut rec, c"ex19-box").unwrap();
    assert_eq!(rec.calls, [Call::SetHostname("ex19-box".into())]);
}

#[test]
fn ex1_10_hostname_is_set_inside_and_unchanged_on_host() {
    if !kernel("ex1_10_hostname_is_set_inside_and_unchanged_on_host") {
        return;
    }
    let before = nix::unistd::gethostname().unwrap();
    let inside = facts_on_host("uts", &["--hostname", "ex19-box"]);
    assert_eq!(inside["hostname"], "ex19-box");
    let out = output(host_cmd(
        "uts",
        &[
            "--hostname",
            "ex19-box",
            "--",
            "/bin/hostname",
            "renamed-inside",
        ],
    ));
    assert!(out.status.success());
    assert_eq!(
        nix::unistd::gethostname().unwrap(),
        before,
        "the host's hostname changed"
    );
}

// ---- 1.11 a private mount table ----------------------------------------------

#[test]
fn ex1_11_propagation_stops_first_then_the_rootfs_becomes_a_mount_point() {
    let mut rec = Recorder::new();
    chapter_01::mount::isolate_mounts(&mut rec, None).unwrap();
    assert_eq!(rec.calls.len(), 1, "without a rootfs: {:?}", rec.calls);
    let (source, target, fstype, flags, _) = mount_call(&rec.calls[0]).expect("a mount");
    assert_eq!((source, target, fstype), (None, "/", None));
    assert!(
        flags.contains(MsFlags::MS_REC | MsFlags::MS_PRIVATE) && !flags.contains(MsFlags::MS_BIND),
        "{flags:?}"
    );

    let mut rec = Recorder::new();
    chapter_01::mount::isolate_mounts(&mut rec, Some(c"/srv/root")).unwrap();
    assert_eq!(rec.calls.len(), 3, "{:?}", rec.calls);
    assert_eq!(rec.calls[0], {
        let mut first = Recorder::new();
        chapter_01::mount::isolate_mounts(&mut first, None).unwrap();
        first.calls[0].clone()
    });
    let (source, target, _, flags, _) = mount_call(&rec.calls[1]).expect("the bind");
    assert_eq!((source, target), (Some("/srv/root"), "/srv/root"));
    assert!(
        flags.contains(MsFlags::MS_BIND | MsFlags::MS_REC),
        "{flags:?}"
    );
    assert_eq!(rec.calls[2], Call::Chdir("/srv/root".into()));
}

#[test]
fn ex1_11_mount_made_inside_is_invisible_on_host() {
    if !kernel("ex1_11_mount_made_inside_is_invisible_on_host") {
        return;
    }
    let script = "mount -t tmpfs ex110-marker /mnt && grep -q ex110-marker /proc/self/mountinfo && echo ready && read x";
    let (cli, _out) = start_waiting(host_cmd("mnt", &["--", "/bin/sh", "-c", script]));
    let leaked = host_mountinfo().contains("ex110-marker");
    finish(cli);
    assert!(
        !leaked,
        "a mount made inside the container appeared on the host"
    );
}

// ---- 1.12 /proc ----------------------------------------------------------------

#[test]
fn ex1_12_proc_is_mounted_nosuid_nodev_noexec_on_a_directory_that_exists() {
    let mut rec = Recorder::new();
    chapter_01::pid::mount_proc(&mut rec, c"proc").unwrap();
    let mount = rec
        .calls
        .iter()
        .position(|c| mount_call(c).is_some())
        .expect("a mount");
    let (_, target, fstype, flags, _) = mount_call(&rec.calls[mount]).unwrap();
    assert_eq!((target, fstype), ("proc", Some("proc")));
    assert!(
        flags.contains(MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC),
        "{flags:?}"
    );
    assert!(
        rec.calls[..mount]
            .iter()
            .any(|c| matches!(c, Call::Mkdir { path, .. } if path == "proc")),
        "the mount point is made first (an image may lack it): {:?}",
        rec.calls
    );
}

#[test]
fn ex1_12_command_is_pid_1_and_host_processes_are_invisible() {
    if !kernel("ex1_12_command_is_pid_1_and_host_processes_are_invisible") {
        return;
    }
    let inside = facts_on_host("pid,mnt", &[]);
    assert_eq!(inside["pid"], 1);
    assert_eq!(inside["ppid"], 0, "PID 1's parent is outside the namespace");
    assert_eq!(
        inside["processes"],
        serde_json::json!([1]),
        "/proc shows other processes"
    );
    assert!(
        std::fs::read_dir("/proc").unwrap().count() > 10,
        "control: the host sees many"
    );
}

// ---- 1.13 /dev -------------------------------------------------------------------

#[test]
fn ex1_13_dev_is_a_tmpfs_with_the_devices_bound_devpts_links_and_shm() {
    let mut rec = Recorder::new();
    chapter_01::dev::build_dev(&mut rec).unwrap();
    let calls = &rec.calls;
    let (_, target, fstype, flags, data) = mount_call(&calls[0]).expect("dev is mounted first");
    assert_eq!((target, fstype), ("dev", Some("tmpfs")));
    assert!(flags.contains(MsFlags::MS_NOSUID), "{flags:?}");
    assert!(data.is_some_and(|d| d.contains("mode=755")), "{data:?}");
    for (host, inside) in chapter_01::dev::DEVICES {
        let (host, inside) = (host.to_str().unwrap(), inside.to_str().unwrap());
        let file = calls
            .iter()
            .position(|c| *c == Call::CreateFile(inside.into()))
            .unwrap_or_else(|| panic!("no mount point made for {inside}"));
        let bind = calls
            .iter()
            .position(|c| {
                mount_call(c).is_some_and(|(s, t, _, f, _)| {
                    s == Some(host) && t == inside && f.contains(MsFlags::MS_BIND)
                })
            })
            .unwrap_or_else(|| panic!("{host} is not bound onto {inside}"));
        assert!(file < bind, "{inside}: the file comes before the bind");
    }
    let pts = calls
        .iter()
        .position(|c| {
            mount_call(c).is_some_and(|(_, t, ty, _, d)| {
                t == "dev/pts"
                    && ty == Some("devpts")
                    && d.is_some_and(|d| d.contains("newinstance") && d.contains("ptmxmode=0666"))
            })
        })
        .expect("a new devpts instance at dev/pts");
    assert!(
        calls[..pts]
            .iter()
            .any(|c| matches!(c, Call::Mkdir { path, .. } if path == "dev/pts")),
        "dev/pts is made before its mount"
    );
    for (link, target) in chapter_01::dev::LINKS {
        assert!(
            calls.contains(&Call::Symlink {
                target: target.to_str().unwrap().into(),
                link: link.to_str().unwrap().into()
            }),
            "{link:?} -> {target:?} missing"
        );
    }
    let shm = calls
        .iter()
        .position(|c| {
            mount_call(c).is_some_and(|(_, t, ty, f, _)| {
                t == "dev/shm" && ty == Some("tmpfs") && f.contains(MsFlags::MS_NOEXEC)
            })
        })
        .expect("a noexec tmpfs at dev/shm");
    assert!(calls[..shm].contains(&Call::Mkdir {
        path: "dev/shm".into(),
        mode: 0o1777
    }));
    assert!(
        !calls.iter().any(|c| mount_call(c)
            .is_some_and(|(s, t, _, _, _)| s == Some("/dev") || t == "dev" && calls[0] != *c)),
        "the host's /dev must not be bound whole"
    );
}

// ---- 1.14 pivot_root -----------------------------------------------------------------

#[test]
fn ex1_14_pivot_root_then_the_old_root_detached_then_slash() {
    let mut rec = Recorder::new();
    chapter_01::mount::pivot_into(&mut rec).unwrap();
    assert!(
        matches!(&rec.calls[0], Call::PivotRoot { new_root, .. } if new_root == "."),
        "{:?}",
        rec.calls
    );
    let Call::PivotRoot { put_old, .. } = &rec.calls[0] else {
        unreachable!()
    };
    let put_old = put_old.clone();
    assert!(
        rec.calls
            .iter()
            .any(|c| matches!(c, Call::Umount2 { target, flags }
            if *target == put_old && flags.contains(MntFlags::MNT_DETACH))),
        "the old root must be detached (MNT_DETACH): {:?}",
        rec.calls
    );
    assert_eq!(rec.calls.last(), Some(&Call::Chdir("/".into())));
}

fn fixture_entries() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(fixture::rootfs())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn ex1_14_pivot_root_leaves_no_path_to_the_host_root() {
    if !kernel("ex1_14_pivot_root_leaves_no_path_to_the_host_root") {
        return;
    }
    let inside = facts("pid,mnt", &[]);
    assert_eq!(
        inside["root_entries"],
        serde_json::json!(fixture_entries()),
        "/ is not the rootfs"
    );
    for m in inside["mounts"].as_array().unwrap() {
        let point = m["mount_point"].as_str().unwrap();
        assert!(
            point == "/" || point.starts_with("/proc") || point.starts_with("/dev"),
            "old root still mounted: {point}"
        );
    }
    let out = output(run_cmd("pid,mnt", &["--", "/bin/facts", "escape"]));
    let escape = parse_facts(&out.stdout);
    assert_eq!(
        escape["escaped"], false,
        "the chroot escape reached the host: {escape}"
    );
    // Control: the same attempt from a chroot jail does escape.
    let out = output(run_cmd(
        "pid,mnt",
        &["--chroot-insecure", "--", "/bin/facts", "escape"],
    ));
    assert_eq!(
        parse_facts(&out.stdout)["escaped"],
        true,
        "control: chroot should be escapable"
    );
    assert!(
        !host_mountinfo().contains(fixture::rootfs().to_str().unwrap()),
        "the rootfs bind leaked to the host"
    );
}

#[test]
fn ex1_14_dev_holds_only_the_minimal_devices_and_they_work() {
    if !kernel("ex1_14_dev_holds_only_the_minimal_devices_and_they_work") {
        return;
    }
    let inside = facts("pid,mnt", &[]);
    let expected = [
        "fd", "full", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin", "stdout", "tty",
        "urandom", "zero",
    ];
    assert_eq!(inside["dev_entries"], serde_json::json!(expected));
    let proc_mount = inside["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mount_point"] == "/proc");
    assert_eq!(proc_mount.expect("a /proc mount inside")["fstype"], "proc");
    let out = output(run_cmd(
        "pid,mnt",
        &[
            "--",
            "/bin/sh",
            "-c",
            "echo x > /dev/null && head -c 5 /dev/zero | wc -c && head -c 5 /dev/urandom | wc -c && ls /dev/pts",
        ],
    ));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert_eq!(
        text.split_whitespace().collect::<Vec<_>>(),
        ["5", "5", "ptmx"],
        "devices or devpts misbehave"
    );
}

#[test]
fn ex1_15_an_unprivileged_user_runs_a_whole_container_through_a_user_namespace() {
    if !kernel("ex1_15_an_unprivileged_user_runs_a_whole_container_through_a_user_namespace") {
        return;
    }
    // As root: copies that `nobody` can reach, and the run as nobody. As an
    // ordinary user: the run as ourselves.
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
    let (uid, gid) = if is_root() {
        (65534, 65534)
    } else {
        (
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        )
    };
    let unprivileged = |args: &[&str]| {
        Command::new(&bin)
            .args(["run", "--rootfs"])
            .arg(&rootfs)
            .args(args)
            .uid(uid)
            .gid(gid)
            .output()
            .unwrap()
    };
    let out = unprivileged(&["--ns", "all", "--hostname", "mine", "--", "/bin/facts"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let inside = parse_facts(&out.stdout);
    assert_eq!(inside["uid"], 0);
    assert_eq!(inside["uid_map"], format!("0 {uid} 1").as_str());
    assert_eq!(inside["hostname"], "mine");
    assert_eq!(inside["pid"], 1);
    // Without a user namespace the same user is refused, with the reason.
    let out = unprivileged(&["--ns", "uts,mnt", "--", "/bin/true"]);
    assert_eq!(out.status.code(), Some(125));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("EPERM") && err.contains("user namespace"),
        "{err}"
    );
}

fn copy_tree(from: &Path, to: &PathBuf) {
    let out = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "copying {} failed: {}",
        from.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---- 1.15 NET -----------------------------------------------------------------------

#[test]
fn ex1_15_only_loopback_inside_and_it_is_up() {
    if !kernel("ex1_15_only_loopback_inside_and_it_is_up") {
        return;
    }
    // A proc of its own needs a PID namespace of its own (without root, the
    // host's PID namespace is not ours to mount a proc for).
    let inside = facts("net,mnt,pid", &[]);
    assert_eq!(
        inside["net_interfaces"],
        serde_json::json!([{"name": "lo", "up": true}])
    );
    let out = output(run_cmd(
        "net,mnt,pid",
        &["--", "/bin/ping", "-c", "1", "-W", "1", "127.0.0.1"],
    ));
    assert!(out.status.success(), "loopback does not answer inside");
    let host = std::fs::read_to_string("/proc/net/dev").unwrap();
    assert!(
        host.lines().count() > 3,
        "control: the host has more than lo"
    );
}

// ---- forwarding, through a whole run -----------------------------------------

#[test]
fn ex1_7_sigterm_to_the_runtime_reaches_the_containers_pid_1() {
    if !kernel("ex1_7_sigterm_to_the_runtime_reaches_the_containers_pid_1") {
        return;
    }
    // The shell traps TERM (as PID 1 it would get only the signals it handles).
    let script = "trap 'exit 42' TERM; echo ready; while :; do sleep 0.1; done";
    let (mut cli, _out) = start_waiting(host_cmd("none", &["--", "/bin/sh", "-c", script]));
    nix::sys::signal::kill(Pid::from_raw(cli.id() as i32), Signal::SIGTERM).unwrap();
    assert_eq!(
        cli.wait().unwrap().code(),
        Some(42),
        "SIGTERM was not forwarded to PID 1"
    );
}

// ---- 1.16 the remap's subordinate IDs -----------------------------------------

#[test]
fn ex1_16_a_users_subordinate_ranges_are_laid_end_to_end_from_zero() {
    use chapter_01::user::subordinate_ranges;
    use chapter_01::IdRange;
    let file = "# comment\n\nalice:100000:65536\ndockremap:165536:65536\n1001:300000:10\n\
                dockremap:400000:1000\n";
    let r = |inside, outside, count| IdRange {
        inside,
        outside,
        count,
    };
    assert_eq!(
        subordinate_ranges(file, "dockremap", 999).unwrap(),
        [r(0, 165536, 65536), r(65536, 400000, 1000)],
        "every line of the user, in file order, one after the other inside"
    );
    assert_eq!(
        subordinate_ranges(file, "bob", 1001).unwrap(),
        [r(0, 300000, 10)],
        "a line may name the user by number"
    );
    let missing = subordinate_ranges(file, "carol", 1002).unwrap_err();
    assert!(
        missing.contains("carol") && missing.contains("carol:"),
        "{missing}"
    );
    for (bad, line) in [
        ("alice:100000\n", "line 1"),
        ("alice:1:1\nalice:x:5\n", "line 2"),
        ("alice:100:0\n", "line 1"),
        ("alice:4294967295:2\n", "line 1"),
    ] {
        let err = subordinate_ranges(bad, "alice", 1000).unwrap_err();
        assert!(err.contains(line), "{bad:?}: {err}");
    }
    let many: String = (0..341)
        .map(|i| format!("alice:{}:1\n", 100000 + i * 2))
        .collect();
    assert!(
        subordinate_ranges(&many, "alice", 1000).is_err(),
        "over 340 lines"
    );
    let map = chapter_01::IdMap::remap(("alice", 1000), ("alice", 1000), file, file).unwrap();
    assert_eq!(map.root_uid(), Some(100000));
}
