//! Faults and load: the daemon killed while containers run and during a
//! pull, a monitor killed, fifty runs at once.

mod common;
use common::Engine;
use std::time::{Duration, Instant};
use testkit::privileged;

fn status(engine: &Engine, name: &str) -> (String, i64) {
    let v: serde_json::Value = serde_json::from_str(&engine.ok(&["inspect", name])).unwrap();
    (
        v[0]["State"]["Status"].as_str().unwrap().to_string(),
        v[0]["State"]["ExitCode"].as_i64().unwrap(),
    )
}

#[test]
fn containers_outlive_a_killed_daemon_and_a_new_one_sees_them() {
    if !privileged("containers_outlive_a_killed_daemon_and_a_new_one_sees_them") {
        return;
    }
    let mut engine = Engine::start();
    engine.ok(&[
        "run",
        "-d",
        "--name",
        "long",
        "fixture",
        "sh",
        "-c",
        "trap 'exit 0' TERM; while true; do echo alive; sleep 0.2; done",
    ]);
    engine.ok(&[
        "run",
        "-d",
        "--name",
        "short",
        "fixture",
        "sh",
        "-c",
        "sleep 0.5; exit 3",
    ]);
    engine.ok(&["create", "--name", "never", "fixture", "true"]);
    engine.kill_daemon();
    // While no daemon runs, `short` exits: its monitor records it.
    std::thread::sleep(Duration::from_secs(1));
    engine.start_daemon();
    assert_eq!(status(&engine, "long"), ("running".into(), 0));
    assert_eq!(status(&engine, "short"), ("exited".into(), 3));
    assert_eq!(status(&engine, "never"), ("created".into(), 0));
    let logs = engine.ok(&["logs", "long"]);
    assert!(
        logs.lines().count() >= 4,
        "logged while the daemon was away: {logs}"
    );
    // The new daemon controls the old container: exec, stop, wait.
    assert_eq!(engine.ok(&["exec", "long", "echo", "reached"]), "reached\n");
    engine.ok(&["stop", "long"]);
    assert_eq!(status(&engine, "long"), ("exited".into(), 0));
    engine.ok(&["rm", "long", "short", "never"]);
    assert_eq!(engine.leftovers(), Vec::<String>::new());
}

#[test]
fn a_killed_monitor_is_noticed_and_cleaned_up() {
    if !privileged("a_killed_monitor_is_noticed_and_cleaned_up") {
        return;
    }
    let engine = Engine::start();
    engine.ok(&["run", "-d", "--name", "orphan", "fixture", "sleep", "60"]);
    let monitors = engine.monitors();
    assert_eq!(monitors.len(), 1, "one monitor per running container");
    // SAFETY: kill(2) of the monitor this test's engine started.
    unsafe { libc::kill(monitors[0], libc::SIGKILL) };
    let deadline = Instant::now() + Duration::from_secs(10);
    while status(&engine, "orphan").0 == "running" {
        assert!(Instant::now() < deadline, "the daemon did not notice");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(status(&engine, "orphan"), ("exited".into(), 255));
    assert_eq!(
        engine.leftovers(),
        Vec::<String>::new(),
        "mounts and cgroups are cleaned up"
    );
    engine.ok(&["rm", "orphan"]);
}

#[test]
fn fifty_parallel_runs_all_succeed_and_leave_nothing() {
    if !privileged("fifty_parallel_runs_all_succeed_and_leave_nothing") {
        return;
    }
    let engine = Engine::start();
    let children: Vec<_> = (0..50)
        .map(|i| {
            engine
                .cli(&[
                    "run",
                    "--rm",
                    "fixture",
                    "sh",
                    "-c",
                    &format!("echo run-{i}"),
                ])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (i, child) in children.into_iter().enumerate() {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "run {i}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), format!("run-{i}\n"));
    }
    // The docker CLIs attach, then start at once: not one line may be lost
    // between the attach being accepted and the container's first write.
    for cli in common::docker_clis() {
        let children: Vec<_> = (0..30)
            .map(|i| {
                let echo = format!("echo run-{i}");
                engine
                    .docker_at(
                        &cli,
                        &[
                            "run",
                            "--rm",
                            "--network",
                            "none",
                            "fixture",
                            "sh",
                            "-c",
                            &echo,
                        ],
                    )
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for (i, child) in children.into_iter().enumerate() {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "{} run {i}: {out:?}", cli.display());
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                format!("run-{i}\n"),
                "{} run {i}",
                cli.display()
            );
        }
    }
    assert_eq!(engine.ok(&["ps", "-aq"]), "");
    assert_eq!(engine.leftovers(), Vec::<String>::new());
    assert!(engine.monitors().is_empty());
}

#[test]
fn a_daemon_killed_during_a_pull_restarts_with_a_consistent_store() {
    if !privileged("a_daemon_killed_during_a_pull_restarts_with_a_consistent_store") {
        return;
    }
    let mut engine = Engine::start();
    // An image big enough that the pull is still going when the daemon dies.
    let registry = testkit::registry::Registry::start(testkit::registry::Auth::None);
    let scratch = tempfile::tempdir().unwrap();
    let store = chapter_04::Store::open(scratch.path().join("store")).unwrap();
    let rootfs = scratch.path().join("rootfs");
    std::fs::create_dir_all(&rootfs).unwrap();
    let mut noise = vec![0u8; 32 << 20];
    let mut x: u64 = 0x9e3779b97f4a7c15;
    for b in noise.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    std::fs::write(rootfs.join("noise"), &noise).unwrap();
    chapter_04::archive::import_rootfs_dir(
        &store,
        &testkit::fixture::rootfs(),
        "fixture:latest",
        Default::default(),
    )
    .unwrap();
    let layer = chapter_03::diff::write_layer(&rootfs, Vec::new()).unwrap();
    chapter_04::archive::add_layer(
        &store,
        "fixture:latest",
        layer.as_slice(),
        "big:v1",
        "noise",
    )
    .unwrap();
    let reference = chapter_05::Reference::parse(&format!("{}/big:v1", registry.addr)).unwrap();
    let client = chapter_05::client::Client::new(&reference, true).unwrap();
    chapter_05::push::push(
        &client,
        &store,
        "big:v1",
        &Default::default(),
        &chapter_05::progress::Progress::quiet(),
    )
    .unwrap();

    let image = format!("{}/big:v1", registry.addr);
    let pull = engine
        .cli(&["pull", &image])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(150));
    engine.kill_daemon();
    let _ = pull.wait_with_output();
    engine.start_daemon();
    // The store is whole: every blob matches its name; the pull can be
    // made again and the image runs.
    let store = chapter_04::Store::open(engine.root.join("images")).unwrap();
    assert_eq!(store.fsck().unwrap(), Vec::<String>::new());
    engine.ok(&["pull", &image]);
    assert_eq!(
        engine
            .ok(&["run", "--rm", &image, "wc", "-c", "/noise"])
            .trim(),
        "33554432 /noise"
    );
}

/// kill -9 of the daemon in the middle of a busy create/start/rm workload,
/// again and again: each restarted daemon must find what belongs to
/// containers it has no (complete) record of, and a final `rm -f` of
/// everything leaves no cgroup, mount, link, socket or monitor behind.
#[test]
fn a_daemon_killed_in_a_busy_workload_leaves_nothing_behind() {
    if !privileged("a_daemon_killed_in_a_busy_workload_leaves_nothing_behind") {
        return;
    }
    let mut engine = Engine::start();
    engine.ok(&["network", "create", "busy"]);
    // The first run fills the caches (the seccomp program, the layers).
    engine.ok(&["run", "--rm", "--network", "busy", "fixture", "true"]);
    // MINI_DOCKER_FAULT_ROUNDS=70 for a longer measurement.
    let rounds: u64 = std::env::var("MINI_DOCKER_FAULT_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(12);
    for round in 0..rounds {
        let previous: Vec<String> = engine
            .ok(&["ps", "-aq"])
            .split_whitespace()
            .map(String::from)
            .collect();
        let mut children = Vec::new();
        for i in 0..4 {
            let network = if i % 2 == 0 { "none" } else { "busy" };
            children.push(
                engine
                    .cli(&["run", "-d", "--network", network, "fixture", "sleep", "30"])
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap(),
            );
            children.push(
                engine
                    .cli(&["run", "--rm", "--network", network, "fixture", "true"])
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap(),
            );
        }
        for id in &previous {
            children.push(
                engine
                    .cli(&["rm", "-f", id])
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap(),
            );
        }
        // Kill at a different moment of the workload each round, from
        // before the first request is served to after the last.
        std::thread::sleep(Duration::from_millis(30 + 97 * round % 600));
        engine.kill_daemon();
        let mut failed = Vec::new();
        for child in children {
            let out = child.wait_with_output().unwrap();
            if !out.status.success() {
                failed.push(String::from_utf8_lossy(&out.stderr).trim().to_string());
            }
        }
        if std::env::var("MINI_DOCKER_FAULT_LOG").is_ok() {
            eprintln!(
                "round {round}: {} requests cut off: {:?}",
                failed.len(),
                failed.first()
            );
        }
        engine.start_daemon();
    }
    // A cgroup of a container the daemon has no record of (as a monitor
    // makes it), with a process inside: the next daemon takes it away.
    engine.kill_daemon();
    let orphan = "0123456789abcdef".repeat(4);
    let (guard, _) = chapter_02::container::create_limited(
        &format!("{}{orphan}", engine.cgroup_prefix),
        &Default::default(),
    )
    .unwrap();
    let dirs = chapter_02::cgroup::Cgroup::dirs(guard.0.as_ref());
    let mut sleeper = std::process::Command::new("sleep")
        .arg("600")
        .spawn()
        .unwrap();
    chapter_02::cgroup::join(&dirs, nix::unistd::Pid::from_raw(sleeper.id() as i32)).unwrap();
    std::mem::forget(guard);
    engine.start_daemon();
    engine.ok(&["version"]); // answered once recovery is done
    assert!(
        testkit::janitor::find_cgroups(&engine.cgroup_prefix)
            .iter()
            .all(|d| !d.display().to_string().contains(&orphan)),
        "the orphaned cgroup stayed"
    );
    assert!(
        sleeper.wait().is_ok_and(|s| !s.success()),
        "its process was killed"
    );
    // What the restarted daemons found (the figure for the record).
    let log = engine.daemon_log();
    let count = |what: &str| log.lines().filter(|l| l.contains(what)).count();
    eprintln!(
        "{rounds} kills: recovery found {} incomplete containers, {} monitors gone, {} reconnected, {} orphaned cgroups",
        count("removing the incomplete container"),
        count("monitor gone"),
        count("monitor alive"),
        count("orphaned cgroup"),
    );
    if std::env::var("MINI_DOCKER_FAULT_LOG").is_ok() {
        eprintln!("{log}");
    }
    for id in engine.ok(&["ps", "-aq"]).split_whitespace() {
        engine.ok(&["rm", "-f", id]);
    }
    engine.ok(&["network", "rm", "busy"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(engine.leftovers().is_empty() && engine.monitors().is_empty())
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        engine.leftovers(),
        Vec::<String>::new(),
        "{}",
        engine.daemon_log()
    );
    assert!(
        engine.monitors().is_empty(),
        "monitors left: {:?}",
        engine.monitors()
    );
    let containers: Vec<_> = std::fs::read_dir(engine.root.join("containers"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        containers.is_empty(),
        "container directories left: {containers:?}"
    );
}
