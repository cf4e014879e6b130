//! The isolation a default container gets beyond namespaces and limits:
//! a terminal of its own, probed from inside the container only.

mod common;
use common::{docker_clis, Engine};
use std::time::Duration;
use testkit::privileged;
use testkit::pty::run_on_terminal;

#[test]
fn a_tty_container_holds_a_terminal_of_its_own_devpts() {
    if !privileged("a_tty_container_holds_a_terminal_of_its_own_devpts") {
        return;
    }
    let engine = Engine::start();
    let script =
        "tty; ls -1 /dev/pts; stty size; readlink /proc/self/fd/0; readlink /proc/self/fd/1";
    let (status, text) = run_on_terminal(
        engine.cli(&[
            "run",
            "-it",
            "--rm",
            "--network",
            "none",
            "fixture",
            "sh",
            "-c",
            script,
        ]),
        b"",
        Duration::from_secs(30),
    );
    assert!(status.success(), "{text}");
    let lines: Vec<&str> = text.lines().map(|l| l.trim_end_matches('\r')).collect();
    assert_eq!(lines[0], "/dev/pts/0", "ttyname inside: {text}");
    assert!(
        lines.contains(&"0") && lines.contains(&"ptmx") && !text.contains("not a tty"),
        "the container's devpts holds its own terminal only: {text}"
    );
    assert!(
        lines.contains(&"24 80"),
        "the terminal has the client's size: {text}"
    );
    assert_eq!(
        lines.iter().filter(|l| **l == "/dev/pts/0").count(),
        3,
        "tty, stdin and stdout: that terminal: {text}"
    );
}

#[test]
fn what_a_tty_container_writes_is_exactly_what_the_client_receives() {
    if !privileged("what_a_tty_container_writes_is_exactly_what_the_client_receives") {
        return;
    }
    let engine = Engine::start();
    // Control bytes pass a terminal's output untouched; no newline, so no
    // output processing either. No -i: nothing is sent the other way.
    let args = [
        "run",
        "-t",
        "--rm",
        "--network",
        "none",
        "fixture",
        "printf",
        "A\\001B\\033[0m",
    ];
    let (status, text) = run_on_terminal(engine.cli(&args), b"", Duration::from_secs(30));
    assert!(status.success(), "{text:?}");
    assert_eq!(text, "A\u{1}B\u{1b}[0m", "ours, byte for byte");
    for cli in docker_clis() {
        let (status, text) =
            run_on_terminal(engine.docker_at(&cli, &args), b"", Duration::from_secs(30));
        assert!(status.success(), "{}: {text:?}", cli.display());
        assert_eq!(text, "A\u{1}B\u{1b}[0m", "{}, byte for byte", cli.display());
    }
}

#[test]
fn exec_with_a_tty_gets_a_terminal_from_the_containers_devpts() {
    if !privileged("exec_with_a_tty_gets_a_terminal_from_the_containers_devpts") {
        return;
    }
    let engine = Engine::start();
    engine.ok(&[
        "run",
        "-d",
        "--name",
        "ttyexec",
        "--network",
        "none",
        "fixture",
        "sleep",
        "60",
    ]);
    let (status, text) = run_on_terminal(
        engine.cli(&["exec", "-it", "ttyexec", "sh", "-c", "tty; ls -1 /dev/pts"]),
        b"",
        Duration::from_secs(30),
    );
    assert!(status.success(), "{text}");
    let lines: Vec<&str> = text.lines().map(|l| l.trim_end_matches('\r')).collect();
    assert_eq!(lines.first(), Some(&"/dev/pts/0"), "{text}");
    assert!(lines.contains(&"ptmx"), "{text}");
    for cli in docker_clis() {
        let (status, text) = run_on_terminal(
            engine.docker_at(&cli, &["exec", "-t", "ttyexec", "tty"]),
            b"",
            Duration::from_secs(30),
        );
        assert!(status.success(), "{}: {text}", cli.display());
        assert!(text.starts_with("/dev/pts/"), "{}: {text:?}", cli.display());
    }
    engine.ok(&["rm", "-f", "ttyexec"]);
}

/// Prints, from inside, what the container's cgroup files say and whether
/// they can be changed: on v2 the unified tree, on v1 one per controller.
const READ_OWN_LIMITS: &str = r#"
if [ -e /sys/fs/cgroup/cgroup.controllers ]; then
  echo "memory $(cat /sys/fs/cgroup/memory.max)"
  echo "cpu $(cat /sys/fs/cgroup/cpu.max)"
  echo "pids $(cat /sys/fs/cgroup/pids.max)"
  file=/sys/fs/cgroup/pids.max
else
  echo "memory $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes)"
  echo "cpu $(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us) $(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us)"
  echo "pids $(cat /sys/fs/cgroup/pids/pids.max)"
  file=/sys/fs/cgroup/pids/pids.max
fi
if (echo 1000 > $file) 2>/dev/null; then echo "write allowed"; else echo "write refused"; fi
sed 's/^/cgroup /' /proc/self/cgroup
"#;

fn own_limits(text: &str) -> Vec<&str> {
    text.lines().filter(|l| !l.starts_with("cgroup ")).collect()
}

#[test]
fn a_container_reads_its_own_limits_at_sys_fs_cgroup() {
    if !privileged("a_container_reads_its_own_limits_at_sys_fs_cgroup") {
        return;
    }
    let engine = Engine::start();
    let v2 = chapter_02::Layout::detect().unwrap().mode == chapter_02::Mode::V2;
    let limits = [
        "-m",
        "32m",
        "--cpus",
        "0.5",
        "--pids-limit",
        "50",
        "--network",
        "none",
    ];
    // The script prints v1's two cpu files on one line, as v2's cpu.max.
    let expected = [
        "memory 33554432",
        "cpu 50000 100000",
        "pids 50",
        "write refused",
    ];
    for mode in ["private", "host"] {
        let mut args = vec!["run", "--rm", "--cgroupns", mode];
        args.extend(limits);
        args.extend(["fixture", "sh", "-c", READ_OWN_LIMITS]);
        let text = engine.ok(&args);
        assert_eq!(own_limits(&text), expected, "--cgroupns {mode}: {text}");
        let paths: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("cgroup "))
            .map(|l| l.splitn(3, ':').nth(2).unwrap_or(""))
            .collect();
        assert!(!paths.is_empty(), "{text}");
        if mode == "private" {
            // The namespace's root is the container's cgroup.
            assert!(paths.iter().all(|p| *p == "/"), "{text}");
        } else {
            // The host's path, with the container's cgroup name in it.
            assert!(
                paths.iter().any(|p| p.contains(&engine.cgroup_prefix)),
                "{text}"
            );
        }
    }
    // An exec joins the container's cgroup namespace too.
    engine.ok(&[
        "run", "-d", "--name", "ns", "--cgroupns", "private", "--network", "none", "fixture",
        "sleep", "60",
    ]);
    let text = engine.ok(&["exec", "ns", "cat", "/proc/self/cgroup"]);
    assert!(text.lines().all(|l| l.ends_with(":/")), "exec: {text}");
    engine.ok(&["rm", "-f", "ns"]);
    // Docker's default: private on v2, host on v1; inspect says which.
    engine.ok(&["create", "--name", "dflt", "fixture", "true"]);
    let default = if v2 { "private" } else { "host" };
    assert_eq!(
        engine.inspect("dflt")["HostConfig"]["CgroupnsMode"],
        default
    );
    let bad = engine.run(&["run", "--rm", "--cgroupns", "shared", "fixture", "true"]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("invalid cgroup namespace mode"),
        "{bad:?}"
    );
    // The same through the docker CLIs.
    for cli in docker_clis() {
        let mut args = vec!["run", "--rm", "--cgroupns", "private"];
        args.extend(limits);
        args.extend(["fixture", "sh", "-c", READ_OWN_LIMITS]);
        let text = engine.docker_ok(&cli, &args);
        assert_eq!(own_limits(&text), expected, "{}: {text}", cli.display());
    }
    engine.ok(&["rm", "dflt"]);
}
