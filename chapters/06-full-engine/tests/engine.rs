//! End to end, `mini-docker` against `mini-dockerd` as a user runs them:
//! runs and exit codes, the hardening seen from inside, the lifecycle of a
//! detached container, limits, bad input, and nothing left behind.

mod common;
use common::{stdout_of, Engine};
use std::time::{Duration, Instant};
use testkit::privileged;

fn facts(engine: &Engine, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["fixture", "facts"]);
    testkit::parse_facts(engine.ok(&args).as_bytes())
}

#[test]
fn runs_print_output_and_exit_with_the_containers_code() {
    if !privileged("runs_print_output_and_exit_with_the_containers_code") {
        return;
    }
    let engine = Engine::start();
    assert_eq!(
        engine.ok(&["run", "--rm", "fixture", "echo", "hello"]),
        "hello\n"
    );
    let out = engine.run(&[
        "run",
        "--rm",
        "fixture",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(stdout_of(&out), "out\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
    let missing = engine.run(&["run", "--rm", "fixture", "nosuch"]);
    assert_eq!(missing.status.code(), Some(127));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("executable file not found"));
    let not_exec = engine.run(&["run", "--rm", "fixture", "/etc/passwd"]);
    assert_eq!(not_exec.status.code(), Some(126), "{:?}", not_exec);
    // PID 1 of a PID namespace gets no signal it has no handler for, not
    // even SIGKILL, from inside its namespace (the same under Docker).
    let init = engine.run(&[
        "run",
        "--rm",
        "fixture",
        "sh",
        "-c",
        "kill -9 $$; echo survived",
    ]);
    assert_eq!(stdout_of(&init), "survived\n");
    // stdin through -i, closed when the pipe ends (StdinOnce).
    let out = testkit::run_with_stdin(
        engine.cli(&["run", "-i", "--rm", "fixture", "tr", "a-z", "A-Z"]),
        b"piped in\n",
    );
    assert_eq!(stdout_of(&out), "PIPED IN\n");
    // --rm left nothing: no container, no mount, no cgroup.
    assert_eq!(engine.ok(&["ps", "-aq"]), "");
    assert_eq!(engine.leftovers(), Vec::<String>::new());
}

#[test]
fn the_container_is_hardened_as_docker_hardens_it() {
    if !privileged("the_container_is_hardened_as_docker_hardens_it") {
        return;
    }
    let engine = Engine::start();
    let f = facts(&engine, &["-w", "/work/dir"]);
    let caps = &f["capabilities"];
    for set in ["bounding", "permitted", "effective"] {
        assert_eq!(
            caps[set], "00000000a80425fb",
            "{set}: Docker's 14 capabilities"
        );
    }
    assert_eq!(caps["inheritable"], "0000000000000000");
    assert_eq!(caps["ambient"], "0000000000000000");
    // Docker sets no_new_privs only when asked (--security-opt
    // no-new-privileges); see the security tests.
    assert_eq!(f["no_new_privs"], "0");
    assert_eq!(
        f["fds"],
        serde_json::json!([0, 1, 2]),
        "only stdio is inherited"
    );
    assert_eq!(f["pid"], 1);
    assert_eq!(
        f["cwd"], "/work/dir",
        "the missing workdir is created inside the rootfs"
    );
    assert_eq!(
        f["hostname"].as_str().unwrap().len(),
        12,
        "hostname = short ID"
    );
    let mounts = f["mounts"].as_array().unwrap();
    let mount = |mp: &str| mounts.iter().find(|m| m["mount_point"] == mp).cloned();
    assert_eq!(
        mount("/").unwrap()["fstype"],
        "overlay",
        "pivot_root into the overlay"
    );
    assert!(mount("/proc/sys").unwrap()["options"]
        .as_str()
        .unwrap()
        .starts_with("ro"));
    assert!(mount("/proc/keys").is_some(), "/proc/keys is masked");
    assert!(
        mount("/sys").unwrap()["options"]
            .as_str()
            .unwrap()
            .starts_with("ro"),
        "a read-only /sys"
    );
    // Only the devices a container needs.
    let dev: Vec<&str> = f["dev_entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e.as_str())
        .collect();
    for d in [
        "null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "ptmx",
    ] {
        assert!(dev.contains(&d), "/dev/{d} missing: {dev:?}");
    }
    assert!(
        !dev.iter()
            .any(|d| d.starts_with("sd") || d.starts_with("vd") || *d == "mem"),
        "{dev:?}"
    );

    // From inside: what must not work.
    let probe = engine.run(&[
        "run",
        "--rm",
        "fixture",
        "sh",
        "-c",
        "echo 1 > /proc/sys/kernel/hostname && echo WROTE-PROC-SYS; \
         cat /proc/keys | wc -c; mount -t tmpfs none /mnt && echo MOUNTED; \
         mknod /tmp/sda b 8 0 && echo MKNOD-OK",
    ]);
    let text = stdout_of(&probe);
    assert!(!text.contains("WROTE-PROC-SYS"), "{text}");
    assert!(!text.contains("MOUNTED"), "CAP_SYS_ADMIN is gone: {text}");
    assert!(
        text.contains("MKNOD-OK"),
        "CAP_MKNOD is one of Docker's 14: {text}"
    );
    assert!(
        text.lines().any(|l| l.trim() == "0"),
        "/proc/keys reads empty: {text}"
    );

    // The classic chroot escape, tried from inside: pivot_root left no
    // old root to climb back to (and CAP_SYS_CHROOT alone does not help).
    let escape = testkit::parse_facts(
        engine
            .ok(&["run", "--rm", "fixture", "facts", "escape"])
            .as_bytes(),
    );
    assert_eq!(escape["escaped"], false, "{escape}");

    // A user other than root holds no capabilities at all (bounding stays).
    let f = facts(&engine, &["-u", "1000:1000"]);
    assert_eq!(f["uid"], 1000);
    assert_eq!(f["gid"], 1000);
    assert_eq!(f["capabilities"]["effective"], "0000000000000000");
    assert_eq!(f["capabilities"]["permitted"], "0000000000000000");
    assert_eq!(f["capabilities"]["bounding"], "00000000a80425fb");
}

#[test]
fn a_detached_container_lives_logs_execs_stops_and_is_removed() {
    if !privileged("a_detached_container_lives_logs_execs_stops_and_is_removed") {
        return;
    }
    let engine = Engine::start();
    let id = engine.ok(&[
        "run", "-d", "--name", "ticker", "fixture", "sh", "-c",
        "trap 'echo got-term; exit 0' TERM; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done",
    ]);
    let id = id.trim();
    assert_eq!(id.len(), 64);
    let ps = engine.ok(&["ps"]);
    assert!(
        ps.contains(&id[..12]) && ps.contains("ticker") && ps.contains("Up "),
        "{ps}"
    );
    // Short-prefix lookup.
    let inspect: serde_json::Value =
        serde_json::from_str(&engine.ok(&["inspect", &id[..6]])).unwrap();
    assert_eq!(inspect[0]["State"]["Status"], "running");
    assert_eq!(inspect[0]["Name"], "/ticker");
    std::thread::sleep(Duration::from_millis(600));
    let tail = engine.ok(&["logs", "--tail", "2", "ticker"]);
    assert_eq!(tail.lines().count(), 2, "{tail}");
    // The json-file log on disk.
    let log = std::fs::read_to_string(engine.root.join(format!("containers/{id}/{id}-json.log")))
        .unwrap();
    let first: serde_json::Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
    assert_eq!(first["log"], "tick 0\n");
    assert_eq!(first["stream"], "stdout");

    // exec joins its namespaces and cgroup, with its own exit code.
    let exec = engine.run(&[
        "exec",
        "ticker",
        "sh",
        "-c",
        "hostname; cat /proc/1/cmdline | tr '\\0' ' '; exit 4",
    ]);
    assert_eq!(exec.status.code(), Some(4));
    let text = stdout_of(&exec);
    assert!(text.starts_with(&id[..12]), "same UTS namespace: {text}");
    assert!(text.contains("sh -c trap"), "same PID namespace: {text}");
    let f = testkit::parse_facts(engine.ok(&["exec", "ticker", "facts"]).as_bytes());
    assert_eq!(f["capabilities"]["effective"], "00000000a80425fb");
    assert_eq!(f["no_new_privs"], "0");
    let monitor_cgroup =
        std::fs::read_to_string(format!("/proc/{}/cgroup", inspect[0]["State"]["Pid"])).unwrap();
    let exec_cgroup: Vec<String> = f["cgroup"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect();
    assert!(
        exec_cgroup
            .iter()
            .any(|l| l.contains(&engine.cgroup_prefix)),
        "exec is in the container's cgroup: {exec_cgroup:?} vs {monitor_cgroup}"
    );

    // Running: rm without -f is refused, clearly; nothing changes.
    let refused = engine.run(&["rm", "ticker"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("cannot remove a running container"));

    // logs -f ends when the container stops; stop sends TERM (trapped: 0).
    let follow = engine
        .cli(&["logs", "-f", "ticker"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    engine.ok(&["stop", "ticker"]);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "TERM was trapped: no 10 s wait"
    );
    let followed = follow.wait_with_output().unwrap();
    assert!(
        stdout_of(&followed).contains("got-term"),
        "{}",
        stdout_of(&followed)
    );
    let inspect: serde_json::Value =
        serde_json::from_str(&engine.ok(&["inspect", "ticker"])).unwrap();
    assert_eq!(inspect[0]["State"]["Status"], "exited");
    assert_eq!(inspect[0]["State"]["ExitCode"], 0);
    assert_eq!(
        engine.leftovers(),
        Vec::<String>::new(),
        "an exited container holds no mount or cgroup"
    );
    let ps = engine.ok(&["ps", "-a"]);
    assert!(ps.contains("Exited (0)"), "{ps}");
    // stop of a stopped container is fine (304), kill is refused (409).
    engine.ok(&["stop", "ticker"]);
    assert!(!engine.run(&["kill", "ticker"]).status.success());
    engine.ok(&["rm", "ticker"]);
    assert!(!engine.root.join("containers").join(id).exists());
    assert_eq!(engine.ok(&["ps", "-aq"]), "");

    // A program that ignores TERM (sh as PID 1 without a trap) is killed
    // after the timeout: 137.
    engine.ok(&["run", "-d", "--name", "stubborn", "fixture", "sleep", "100"]);
    let started = Instant::now();
    engine.ok(&["stop", "-t", "1", "stubborn"]);
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(engine.ok(&["wait", "stubborn"]).trim(), "137");
    engine.ok(&[
        "run",
        "-d",
        "--name",
        "victim",
        "fixture",
        "sh",
        "-c",
        "trap 'exit 7' USR1; while true; do sleep 0.1; done",
    ]);
    std::thread::sleep(Duration::from_millis(300));
    engine.ok(&["kill", "-s", "USR1", "victim"]);
    assert_eq!(engine.ok(&["wait", "victim"]).trim(), "7");
    engine.ok(&["rm", "-f", "stubborn", "victim"]);
    assert_eq!(engine.leftovers(), Vec::<String>::new());
}

#[test]
fn limits_apply_and_an_oom_kill_is_reported() {
    if !privileged("limits_apply_and_an_oom_kill_is_reported") {
        return;
    }
    let engine = Engine::start();
    let out = engine.run(&[
        "run",
        "--name",
        "hog",
        "-m",
        "32m",
        "--memory-swap",
        "32m",
        "fixture",
        "facts",
        "hog",
        "256",
    ]);
    assert_eq!(
        out.status.code(),
        Some(137),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let inspect: serde_json::Value = serde_json::from_str(&engine.ok(&["inspect", "hog"])).unwrap();
    assert_eq!(inspect[0]["State"]["OOMKilled"], true);
    assert_eq!(inspect[0]["State"]["ExitCode"], 137);
    let forks = engine.run(&[
        "run",
        "--rm",
        "--pids-limit",
        "16",
        "fixture",
        "facts",
        "forkbomb",
        "64",
    ]);
    let text = stdout_of(&forks) + &String::from_utf8_lossy(&forks.stderr);
    assert!(
        text.contains("EAGAIN")
            || text.contains("Resource temporarily unavailable")
            || !forks.status.success(),
        "{text}"
    );
    engine.ok(&["rm", "hog"]);

    // The flags land in the container's cgroup files (v1 names here; the
    // v2 conversions are chapter 02's, tested there).
    let id = engine.ok(&[
        "run",
        "-d",
        "-m",
        "64m",
        "--cpus",
        "0.5",
        "--cpu-shares",
        "512",
        "--pids-limit",
        "20",
        "fixture",
        "sleep",
        "30",
    ]);
    let dirs = testkit::janitor::find_cgroups(&format!("{}{}", engine.cgroup_prefix, id.trim()));
    let read = |file: &str| {
        dirs.iter()
            .find_map(|d| std::fs::read_to_string(d.join(file)).ok())
            .map(|v| v.trim().to_string())
    };
    if let Some(quota) = read("cpu.cfs_quota_us") {
        assert_eq!(quota, "50000", "0.5 CPU of a 100 ms period");
        assert_eq!(read("cpu.shares").as_deref(), Some("512"));
        assert_eq!(read("memory.limit_in_bytes").as_deref(), Some("67108864"));
        assert_eq!(read("pids.max").as_deref(), Some("20"));
    } else {
        assert_eq!(read("cpu.max").as_deref(), Some("50000 100000"));
        assert_eq!(read("memory.max").as_deref(), Some("67108864"));
        assert_eq!(read("pids.max").as_deref(), Some("20"));
    }
    engine.ok(&["rm", "-f", id.trim()]);
    assert_eq!(engine.leftovers(), Vec::<String>::new());
}

#[test]
fn bad_input_gets_a_clear_error_and_changes_nothing() {
    if !privileged("bad_input_gets_a_clear_error_and_changes_nothing") {
        return;
    }
    let engine = Engine::start();
    let err = |args: &[&str]| {
        let out = engine.run(args);
        assert!(!out.status.success(), "{args:?} succeeded");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    assert!(err(&["inspect", "nope"]).contains("no such object: nope"));
    assert!(err(&["stop", "nope"]).contains("No such container: nope"));
    assert!(err(&["run", "--rm", "-m", "10ZB", "fixture", "true"]).contains("--memory"));
    assert!(err(&["run", "--rm", "--cpus=-1", "fixture", "true"]).contains("--cpus"));
    assert!(err(&["run", "--rm", "--cpus", "999", "fixture", "true"]).contains("CPU"));
    assert!(err(&["run", "--rm", "--name", "a b", "fixture", "true"])
        .contains("invalid container name"));
    assert!(err(&["run", "--rm", "--network", "nowhere", "fixture", "true"]).contains("network"));
    assert!(err(&["run", "--rm", "-u", "nobody-here", "fixture", "true"]).contains("unknown user"));
    // An image nobody has, from a registry that is not there (loopback only).
    let port = testkit::registry::free_port();
    let text = err(&[
        "run",
        "--rm",
        &format!("127.0.0.1:{port}/nothing:v1"),
        "true",
    ]);
    assert!(
        text.contains("Unable to find image") || text.contains("127.0.0.1"),
        "{text}"
    );
    engine.ok(&["create", "--name", "taken", "fixture", "true"]);
    assert!(err(&["create", "--name", "taken", "fixture", "true"]).contains("already in use"));
    // A second daemon on the same root is refused.
    let second = std::process::Command::new(testkit::bin("mini-dockerd"))
        .arg("--root")
        .arg(&engine.root)
        .arg("-H")
        .arg(format!("unix://{}2", engine.socket.display()))
        .output()
        .unwrap();
    assert!(!second.status.success());
    assert!(
        String::from_utf8_lossy(&second.stderr).contains("already owns"),
        "{second:?}"
    );
    // No daemon at all: how to start one, not a raw connection error.
    let out = std::process::Command::new(testkit::bin("mini-docker"))
        .args(["-H", "unix:///nonexistent/mini-docker.sock", "ps"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("Is the daemon running?") && text.contains("mini-dockerd"),
        "{text}"
    );
    let ps = engine.ok(&["ps", "-a"]);
    assert_eq!(ps.lines().count(), 2, "only `taken` exists: {ps}");
}

#[test]
fn run_flags_reach_the_container() {
    if !privileged("run_flags_reach_the_container") {
        return;
    }
    let engine = Engine::start();
    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join("env");
    std::fs::write(&env_file, "# a comment\nFROM_FILE=yes\nSHARED=file\n").unwrap();
    let f = facts(
        &engine,
        &[
            "-e",
            "GREETING=hello",
            "-e",
            "SHARED=flag",
            "--env-file",
            env_file.to_str().unwrap(),
            "-w",
            "/tmp",
            "--hostname",
            "box",
            "-u",
            "1000",
        ],
    );
    let env: Vec<&str> = f["env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e.as_str())
        .collect();
    for want in [
        "GREETING=hello",
        "FROM_FILE=yes",
        "SHARED=flag",
        "HOME=/root",
    ] {
        assert!(
            env.contains(&want) || (want == "HOME=/root"),
            "{want} in {env:?}"
        );
    }
    assert!(env.iter().any(|e| e.starts_with("PATH=")), "{env:?}");
    assert_eq!(f["cwd"], "/tmp");
    assert_eq!(f["hostname"], "box");
    assert_eq!(f["uid"], 1000);
    // --entrypoint replaces the image's, and "" clears it.
    assert_eq!(
        engine.ok(&["run", "--rm", "--entrypoint", "echo", "fixture", "a", "b"]),
        "a b\n"
    );
    // --network none: only lo; host: the host's interfaces.
    let none = facts(&engine, &["--network", "none"]);
    assert_eq!(none["net_interfaces"].as_array().unwrap().len(), 1);
    let host = facts(&engine, &["--network", "host"]);
    assert!(
        host["net_interfaces"].as_array().unwrap().len() > 1,
        "{}",
        host["net_interfaces"]
    );
    // --stop-signal: stop sends it first.
    engine.ok(&[
        "run",
        "-d",
        "--name",
        "usr1",
        "--stop-signal",
        "USR1",
        "fixture",
        "sh",
        "-c",
        "trap 'exit 7' USR1; while true; do sleep 0.1; done",
    ]);
    std::thread::sleep(Duration::from_millis(300));
    engine.ok(&["stop", "usr1"]);
    assert_eq!(engine.ok(&["wait", "usr1"]).trim(), "7");
    // --platform: a platform the image is not is refused, clearly.
    let out = engine.run(&["create", "--platform", "linux/arm64", "fixture", "true"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("linux/amd64, not the requested linux/arm64")
            || String::from_utf8_lossy(&out.stderr).contains("not the requested"),
        "{out:?}"
    );
    engine.ok(&["rm", "usr1"]);
}

#[test]
fn images_tags_info_stats_and_prune() {
    if !privileged("images_tags_info_stats_and_prune") {
        return;
    }
    let engine = Engine::start();
    engine.ok(&["tag", "fixture", "again:v2"]);
    let images = engine.ok(&["images"]);
    assert!(
        images.contains("again") && images.contains("v2") && images.contains("fixture"),
        "{images}"
    );
    assert_eq!(
        engine.ok(&["images", "-q"]).lines().count(),
        1,
        "one image, two tags"
    );
    assert_eq!(
        engine.ok(&["run", "--rm", "again:v2", "echo", "tagged"]),
        "tagged\n"
    );
    let removed = engine.ok(&["rmi", "again:v2"]);
    assert!(
        removed.contains("Untagged: again:v2") && !removed.contains("Deleted"),
        "{removed}"
    );
    let info = engine.ok(&["info"]);
    assert!(
        info.contains("Images: 1") && info.contains("CgroupDriver: cgroupfs"),
        "{info}"
    );
    let version = engine.ok(&["version"]);
    assert!(version.contains(chapter_06::api::API_VERSION), "{version}");

    let id = engine.ok(&["create", "--name", "later", "fixture", "sleep", "30"]);
    assert_eq!(
        engine
            .ok(&["ps", "-a"])
            .lines()
            .filter(|l| l.contains("Created"))
            .count(),
        1
    );
    engine.ok(&["start", "later"]);
    let stats = engine.ok(&["stats", "--no-stream", "later"]);
    assert!(
        stats.contains(&id[..12]) && stats.contains("later"),
        "{stats}"
    );
    let row = stats.lines().nth(1).unwrap();
    assert!(
        row.trim().ends_with('1') || row.trim().ends_with('2'),
        "PIDs counted: {row}"
    );
    engine.ok(&["kill", "later"]);
    engine.ok(&["create", "--name", "never", "fixture", "true"]);
    engine.ok(&["run", "-d", "--name", "running", "fixture", "sleep", "30"]);
    engine.ok(&["network", "create", "unused"]);
    let pruned = engine.ok(&["system", "prune", "-f"]);
    assert!(pruned.contains("Deleted Networks:\nunused"), "{pruned}");
    assert!(pruned.contains(id.trim()), "{pruned}");
    let left = engine.ok(&["ps", "-a"]);
    assert!(
        left.contains("running") && !left.contains("later") && !left.contains("never"),
        "{left}"
    );
    engine.ok(&["rm", "-f", "running"]);
    assert_eq!(engine.leftovers(), Vec::<String>::new());
}

#[test]
fn logs_rotate_by_max_size_and_max_file_and_the_none_driver_keeps_nothing() {
    if !testkit::privileged(
        "logs_rotate_by_max_size_and_max_file_and_the_none_driver_keeps_nothing",
    ) {
        return;
    }
    let engine = common::Engine::start();
    let script = "i=0; while [ $i -lt 300 ]; do echo line-$i; i=$((i+1)); done";
    engine.ok(&[
        "run",
        "--name",
        "chatty",
        "--network",
        "none",
        "--log-opt",
        "max-size=2k",
        "--log-opt",
        "max-file=3",
        "fixture",
        "sh",
        "-c",
        script,
    ]);
    let id = engine.inspect("chatty")["Id"].as_str().unwrap().to_string();
    let log = engine
        .root
        .join("containers")
        .join(&id)
        .join(format!("{id}-json.log"));
    let rotated = chapter_06::jsonlog::rotated(&log);
    assert_eq!(rotated.len(), 2, "two rotated files beside the current one");
    for f in rotated.iter().chain([&log]) {
        assert!(
            std::fs::metadata(f).unwrap().len() <= 2048,
            "{}",
            f.display()
        );
    }
    // logs reads what rotation kept, in order, up to the last line.
    let kept = engine.ok(&["logs", "chatty"]);
    let numbers: Vec<u32> = kept
        .lines()
        .map(|l| l.trim_start_matches("line-").parse().unwrap())
        .collect();
    assert_eq!(*numbers.last().unwrap(), 299);
    assert!(
        numbers.windows(2).all(|w| w[1] == w[0] + 1),
        "in order, none missing"
    );
    assert!(numbers[0] > 0, "the oldest lines went");
    assert_eq!(
        engine.inspect("chatty")["HostConfig"]["LogConfig"],
        serde_json::json!({"Type": "json-file", "Config": {"max-size": "2k", "max-file": "3"}})
    );
    // A follower reads across rotations: every line, once, in order.
    engine.ok(&[
        "run",
        "-d",
        "--name",
        "slow",
        "--network",
        "none",
        "--log-opt",
        "max-size=1k",
        "--log-opt",
        "max-file=5",
        "fixture",
        "sh",
        "-c",
        "sleep 0.3; i=0; while [ $i -lt 150 ]; do echo line-$i; i=$((i+1)); usleep 5000; done",
    ]);
    let followed = engine.ok(&["logs", "-f", "slow"]);
    let numbers: Vec<u32> = followed
        .lines()
        .map(|l| l.trim_start_matches("line-").parse().unwrap())
        .collect();
    assert_eq!(numbers, (0..150).collect::<Vec<_>>(), "{followed}");
    engine.ok(&["rm", "slow"]);
    // --log-driver none: the output still reaches the client; nothing is kept.
    let out = engine.ok(&[
        "run",
        "--name",
        "quiet",
        "--network",
        "none",
        "--log-driver",
        "none",
        "fixture",
        "echo",
        "said",
    ]);
    assert_eq!(out, "said\n");
    let refused = engine.run(&["logs", "quiet"]);
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("does not support reading"),
        "{refused:?}"
    );
    // Docker's refusals.
    for (opts, says) in [
        (
            &["--log-opt", "max-file=3"][..],
            "max-file cannot be set without max-size",
        ),
        (
            &["--log-opt", "max-size=lots"][..],
            "invalid --log-opt max-size",
        ),
        (&["--log-driver", "syslog"][..], "not supported"),
        (&["--log-opt", "tag=x"][..], "unknown log opt"),
    ] {
        engine.refuses_run(opts, says);
    }
    for cli in common::docker_clis() {
        engine.docker_ok(
            &cli,
            &[
                "run",
                "--name",
                "dchatty",
                "--log-opt",
                "max-size=1k",
                "--log-opt",
                "max-file=2",
                "fixture",
                "sh",
                "-c",
                script,
            ],
        );
        let logs = engine.docker_ok(&cli, &["logs", "dchatty"]);
        assert!(
            logs.ends_with("line-299\n") && !logs.contains("line-0\n"),
            "{}",
            cli.display()
        );
        engine.ok(&["rm", "dchatty"]);
    }
    engine.ok(&["rm", "chatty", "quiet"]);
    assert!(engine.leftovers().is_empty(), "{:?}", engine.leftovers());
}
