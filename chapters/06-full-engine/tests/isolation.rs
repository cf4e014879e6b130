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
        "run",
        "-d",
        "--name",
        "ns",
        "--cgroupns",
        "private",
        "--network",
        "none",
        "fixture",
        "sleep",
        "60",
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

/// `facts probe` in a new container with `options`: each try's outcome.
fn probe(engine: &Engine, options: &[&str]) -> serde_json::Value {
    let mut args = vec!["run", "--rm", "--network", "none"];
    args.extend(options);
    args.extend(["fixture", "facts", "probe"]);
    serde_json::from_str(&engine.ok(&args)).unwrap()
}

/// Refused by Docker's default seccomp profile (and, for mount and
/// clone_newns, by the missing CAP_SYS_ADMIN too).
const REFUSED: [&str; 8] = [
    "unshare_user",
    "keyctl",
    "add_key",
    "kcmp",
    "mount",
    "clone_newns",
    "personality_bad",
    "vsock_socket",
];

fn assert_outcomes(p: &serde_json::Value, want: &[(&str, &str)], context: &str) {
    for (name, outcome) in want {
        let got = p[name].as_str().unwrap_or("missing");
        let ok = match outcome.strip_prefix('!') {
            Some(not) => got != not,
            None => got == *outcome,
        };
        assert!(ok, "{context}: {name} is {got}, wanted {outcome}: {p}");
    }
}

#[test]
fn a_default_container_is_refused_what_dockers_seccomp_profile_refuses() {
    if !privileged("a_default_container_is_refused_what_dockers_seccomp_profile_refuses") {
        return;
    }
    let engine = Engine::start();
    let mut want: Vec<(&str, &str)> = REFUSED.iter().map(|n| (*n, "EPERM")).collect();
    // ptrace of one's own processes is allowed since kernel 4.8 (the
    // profile's minKernel rule); chroot comes with CAP_SYS_CHROOT.
    want.extend([("ptrace", "ok"), ("chroot", "ok")]);
    assert_outcomes(&probe(&engine, &[]), &want, "ours");
    for cli in docker_clis() {
        let text = engine.docker_ok(
            &cli,
            &[
                "run",
                "--rm",
                "--network",
                "none",
                "fixture",
                "facts",
                "probe",
            ],
        );
        let p: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_outcomes(&p, &want, &cli.display().to_string());
    }
    // An exec gets the same filter.
    engine.ok(&[
        "run",
        "-d",
        "--name",
        "probed",
        "--network",
        "none",
        "fixture",
        "sleep",
        "60",
    ]);
    let p: serde_json::Value =
        serde_json::from_str(&engine.ok(&["exec", "probed", "facts", "probe"])).unwrap();
    assert_outcomes(&p, &want, "exec");
    // exec --privileged: every capability, the container's filter still.
    let p: serde_json::Value =
        serde_json::from_str(&engine.ok(&["exec", "--privileged", "probed", "facts", "probe"]))
            .unwrap();
    assert_outcomes(
        &p,
        &[("keyctl", "EPERM"), ("mount", "EPERM")],
        "exec --privileged",
    );
    engine.ok(&["rm", "-f", "probed"]);
}

#[test]
fn security_options_loosen_and_tighten_as_dockers_do() {
    if !privileged("security_options_loosen_and_tighten_as_dockers_do") {
        return;
    }
    let engine = Engine::start();
    // No filter: what only seccomp refused works; the capability checks stay.
    let p = probe(&engine, &["--security-opt", "seccomp=unconfined"]);
    let unfiltered = [
        ("unshare_user", "ok"),
        ("keyctl", "!EPERM"),
        ("add_key", "!EPERM"),
        ("kcmp", "ok"),
        ("personality_bad", "ok"),
        ("vsock_socket", "!EPERM"),
        ("mount", "EPERM"),
        ("clone_newns", "EPERM"),
    ];
    assert_outcomes(&p, &unfiltered, "seccomp=unconfined");
    // CAP_SYS_ADMIN opens the profile's CAP_SYS_ADMIN rules too.
    let p = probe(&engine, &["--cap-add", "SYS_ADMIN"]);
    let admin = [
        ("mount", "ok"),
        ("unshare_user", "ok"),
        ("clone_newns", "ok"),
        ("keyctl", "EPERM"),
    ];
    assert_outcomes(&p, &admin, "--cap-add SYS_ADMIN");
    let p = probe(&engine, &["--cap-add", "sys_ptrace"]);
    assert_outcomes(
        &p,
        &[("kcmp", "ok"), ("keyctl", "EPERM")],
        "--cap-add sys_ptrace",
    );
    // Privileged: no filter, every capability.
    let p = probe(&engine, &["--privileged"]);
    let all: Vec<(&str, &str)> = REFUSED
        .iter()
        .filter(|n| **n != "vsock_socket")
        .map(|n| (*n, "ok"))
        .chain([("vsock_socket", "!EPERM")])
        .collect();
    assert_outcomes(&p, &all, "--privileged");
    // The docker CLIs send the same options.
    for cli in docker_clis() {
        let docker_probe = |options: &[&str]| {
            let mut args = vec!["run", "--rm", "--network", "none"];
            args.extend(options);
            args.extend(["fixture", "facts", "probe"]);
            let text = engine.docker_ok(&cli, &args);
            serde_json::from_str::<serde_json::Value>(&text).unwrap()
        };
        let name = cli.display().to_string();
        let p = docker_probe(&["--security-opt", "seccomp=unconfined"]);
        assert_outcomes(&p, &unfiltered, &format!("{name} seccomp=unconfined"));
        let p = docker_probe(&["--cap-add", "SYS_ADMIN"]);
        assert_outcomes(&p, &admin, &format!("{name} --cap-add SYS_ADMIN"));
        let p = docker_probe(&["--privileged"]);
        assert_outcomes(&p, &all, &format!("{name} --privileged"));
    }
    // Without CAP_SYS_CHROOT the profile refuses chroot as well.
    let p = probe(&engine, &["--cap-drop", "ALL", "--cap-add", "CHOWN"]);
    assert_outcomes(&p, &[("chroot", "EPERM")], "--cap-drop ALL --cap-add CHOWN");
    let facts = |options: &[&str]| {
        let mut args = vec!["run", "--rm", "--network", "none"];
        args.extend(options);
        args.extend(["fixture", "facts"]);
        testkit::parse_facts(engine.ok(&args).as_bytes())
    };
    let f = facts(&["--cap-drop", "ALL", "--cap-add", "CHOWN"]);
    assert_eq!(f["capabilities"]["effective"], "0000000000000001");
    let f = facts(&["--security-opt", "no-new-privileges"]);
    assert_eq!(f["no_new_privs"], "1");
    assert_eq!(facts(&[])["no_new_privs"], "0");

    // A profile of one's own, in Docker's format, read by the client.
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("profile.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}"#,
    )
    .unwrap();
    let opt = format!("seccomp={}", profile.display());
    let script =
        "mkdir /tmp/x 2>&1; echo keyctl $(facts probe | grep -o '\"keyctl\":\"[A-Za-z]*\"')";
    let mut clis: Vec<Option<std::path::PathBuf>> = vec![None];
    clis.extend(docker_clis().into_iter().map(Some));
    for cli in clis {
        let args = [
            "run",
            "--rm",
            "--network",
            "none",
            "--security-opt",
            &opt,
            "fixture",
            "sh",
            "-c",
            script,
        ];
        let text = match &cli {
            None => engine.ok(&args),
            Some(cli) => engine.docker_ok(cli, &args),
        };
        assert!(text.contains("Permission denied"), "{cli:?}: {text}");
        assert!(!text.contains("\"keyctl\":\"EPERM\""), "{cli:?}: {text}");
    }

    // Bad input says what is wrong.
    let err = |args: &[&str]| {
        let out = engine.run(args);
        assert!(!out.status.success(), "{args:?} succeeded");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let e = err(&["run", "--rm", "--cap-add", "FLY", "fixture", "true"]);
    assert!(e.contains("unknown capability: \"FLY\""), "{e}");
    let e = err(&[
        "run",
        "--rm",
        "--security-opt",
        "seccomp=/no/such.json",
        "fixture",
        "true",
    ]);
    assert!(e.contains("opening seccomp profile"), "{e}");
    std::fs::write(&profile, r#"{"defaultAction": "SCMP_ACT_SOMETIMES"}"#).unwrap();
    let e = err(&["run", "--rm", "--security-opt", &opt, "fixture", "true"]);
    assert!(e.contains("unsupported seccomp action"), "{e}");
    let e = err(&[
        "run",
        "--rm",
        "--security-opt",
        "shields=up",
        "fixture",
        "true",
    ]);
    assert!(e.contains("invalid --security-opt"), "{e}");
}
