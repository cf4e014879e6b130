//! The API surface other clients rely on (issue 16, first part): list
//! filters, labels, rename, restart, and the answers of a Docker that is
//! not in a swarm. Driven with our CLI and both docker CLIs.

mod common;
use common::Engine;
use testkit::privileged;

/// The names `ps` prints (the last column), sorted.
fn names(ps: &str) -> Vec<String> {
    let mut v: Vec<String> = ps
        .lines()
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    v.sort();
    v
}

#[test]
fn list_filters_labels_rename_and_restart_work_as_dockers() {
    if !privileged("list_filters_labels_rename_and_restart_work_as_dockers") {
        return;
    }
    let mut engine = Engine::start();
    engine.ok(&[
        "run",
        "-d",
        "--name",
        "web-1",
        "--label",
        "app=web",
        "--label",
        "tier=front",
        "--network",
        "none",
        "fixture",
        "sleep",
        "60",
    ]);
    let job = engine.run(&[
        "run",
        "--name",
        "job-1",
        "--label",
        "app=job",
        "--network",
        "none",
        "fixture",
        "sh",
        "-c",
        "exit 3",
    ]);
    assert_eq!(job.status.code(), Some(3));
    engine.ok(&[
        "create",
        "--name",
        "idle",
        "--network",
        "none",
        "fixture",
        "true",
    ]);
    for cli in common::docker_clis() {
        let ps = |filters: &[&str]| {
            let mut args = vec!["ps", "-a", "--format", "{{.Names}}"];
            for f in filters {
                args.extend(["--filter", f]);
            }
            names(&engine.docker_ok(&cli, &args))
        };
        assert_eq!(ps(&["label=app"]), ["job-1", "web-1"], "{}", cli.display());
        assert_eq!(ps(&["label=app=web"]), ["web-1"]);
        assert_eq!(
            ps(&["label=app=web", "label=tier=back"]),
            Vec::<String>::new(),
            "every label must match"
        );
        assert_eq!(ps(&["status=exited"]), ["job-1"]);
        assert_eq!(ps(&["status=created"]), ["idle"]);
        assert_eq!(ps(&["exited=3"]), ["job-1"]);
        assert_eq!(ps(&["name=web"]), ["web-1"]);
        assert_eq!(ps(&["ancestor=fixture"]).len(), 3);
        assert_eq!(
            ps(&["status=exited", "status=created"]),
            ["idle", "job-1"],
            "alternatives of one name"
        );
        // Labels come back in inspect and in the list.
        let labels = engine.docker_ok(&cli, &["inspect", "-f", "{{json .Config.Labels}}", "web-1"]);
        assert_eq!(labels.trim(), r#"{"app":"web","tier":"front"}"#);
        // A bad filter is refused as Docker refuses it.
        let bad = engine
            .docker_at(&cli, &["ps", "--filter", "colour=red"])
            .output()
            .unwrap();
        assert!(!bad.status.success());
        assert!(
            String::from_utf8_lossy(&bad.stderr).contains("invalid filter 'colour'"),
            "{}",
            String::from_utf8_lossy(&bad.stderr)
        );
        // Not in a swarm: the message clients look for.
        let swarm = engine.docker_at(&cli, &["service", "ls"]).output().unwrap();
        assert!(!swarm.status.success());
        assert!(
            String::from_utf8_lossy(&swarm.stderr).contains("This node is not a swarm manager"),
            "{}",
            String::from_utf8_lossy(&swarm.stderr)
        );
    }
    // Our CLI's filters, images filters.
    assert_eq!(
        names(&engine.ok(&["ps", "-a", "-q", "--filter", "label=app=job"])).len(),
        1
    );
    engine.ok(&["commit", "idle"]);
    let dangling = engine.ok(&["images", "-q", "--filter", "dangling=true"]);
    assert_eq!(dangling.lines().count(), 1, "{dangling}");
    assert!(!engine
        .ok(&["images", "-q", "--filter", "dangling=false"])
        .contains(dangling.trim()));
    assert_eq!(
        engine
            .ok(&["images", "-q", "--filter", "reference=fix*"])
            .lines()
            .count(),
        1
    );

    // rename: the new name finds it, the old does not, a taken one is refused.
    engine.ok(&["rename", "web-1", "web-renamed"]);
    assert_eq!(engine.inspect("web-renamed")["Name"], "/web-renamed");
    assert!(!engine.run(&["inspect", "web-1"]).status.success());
    let taken = engine.run(&["rename", "web-renamed", "job-1"]);
    assert!(
        String::from_utf8_lossy(&taken.stderr).contains("is already in use"),
        "{}",
        String::from_utf8_lossy(&taken.stderr)
    );
    // The name survives a daemon restart (it is in config.json).
    engine.kill_daemon();
    engine.start_daemon();
    assert_eq!(engine.inspect("web-renamed")["Name"], "/web-renamed");
    // restart: a new process, the same container.
    let before = engine.inspect("web-renamed")["State"]["Pid"]
        .as_i64()
        .unwrap();
    engine.ok(&["restart", "-t", "1", "web-renamed"]);
    let after = engine.inspect("web-renamed");
    assert_eq!(after["State"]["Status"], "running");
    assert_ne!(after["State"]["Pid"].as_i64().unwrap(), before);
    for cli in common::docker_clis() {
        engine.docker_ok(&cli, &["rename", "web-renamed", "web-again"]);
        engine.docker_ok(&cli, &["restart", "-t", "1", "web-again"]);
        engine.docker_ok(&cli, &["rename", "web-again", "web-renamed"]);
    }
    // A container without a network of its own (--network none) cannot
    // join one (tests/networks.rs joins more networks from a bridge one).
    engine.ok(&["network", "create", "second-net"]);
    if let Some(cli) = common::docker_clis().first() {
        let out = engine
            .docker_at(cli, &["network", "connect", "second-net", "web-renamed"])
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("has network mode none: it cannot be connected to another network"),
            "{err}"
        );
    }
    engine.ok(&["network", "rm", "second-net"]);
    // An exited container restarts too.
    engine.ok(&["restart", "job-1"]);
    engine.ok(&["rm", "-f", "web-renamed", "job-1", "idle"]);
    assert!(engine.leftovers().is_empty(), "{:?}", engine.leftovers());
}

#[test]
fn pause_freezes_a_container_top_lists_its_processes() {
    if !privileged("pause_freezes_a_container_top_lists_its_processes") {
        return;
    }
    let engine = Engine::start();
    // A counter that writes every 50 ms: frozen, it stops counting.
    engine.ok(&[
        "run",
        "-d",
        "--name",
        "ticker",
        "--network",
        "none",
        "fixture",
        "sh",
        "-c",
        "i=0; while true; do i=$((i+1)); echo $i > /tmp/n; sleep 0.05; done",
    ]);
    // The shell truncates /tmp/n before it writes the next number: an empty
    // read is that moment (seen once in a full run), so read again.
    let count = || -> u64 {
        (0..50)
            .find_map(|_| {
                engine
                    .ok(&["exec", "ticker", "cat", "/tmp/n"])
                    .trim()
                    .parse()
                    .ok()
            })
            .expect("the ticker never wrote a number")
    };
    std::thread::sleep(std::time::Duration::from_millis(300));
    let top = engine.ok(&["top", "ticker"]);
    assert!(top.starts_with("UID\tPID\tPPID"), "{top}");
    assert!(top.contains("sh -c i=0"), "{top}");
    engine.ok(&["pause", "ticker"]);
    let paused = engine.inspect("ticker");
    assert_eq!(paused["State"]["Status"], "paused");
    assert_eq!(paused["State"]["Paused"], true);
    let exec = engine.run(&["exec", "ticker", "true"]);
    assert!(String::from_utf8_lossy(&exec.stderr)
        .contains("is paused, unpause the container before exec"));
    let again = engine.run(&["pause", "ticker"]);
    assert!(String::from_utf8_lossy(&again.stderr).contains("is already paused"));
    // Frozen: the file on disk does not change while paused.
    let upper = engine
        .root
        .join("containers")
        .join(paused["Id"].as_str().unwrap())
        .join("upper/tmp/n");
    let frozen = std::fs::read_to_string(&upper).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(
        std::fs::read_to_string(&upper).unwrap(),
        frozen,
        "it counted while paused"
    );
    engine.ok(&["unpause", "ticker"]);
    let before = count();
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(count() > before, "it does not count after unpause");
    for cli in common::docker_clis() {
        engine.docker_ok(&cli, &["pause", "ticker"]);
        let ps = engine.docker_ok(&cli, &["ps", "--format", "{{.Status}}"]);
        assert!(ps.contains("(Paused)"), "{}: {ps}", cli.display());
        engine.docker_ok(&cli, &["unpause", "ticker"]);
        let top = engine.docker_ok(&cli, &["top", "ticker"]);
        assert!(
            top.contains("PID") && top.contains("sh -c i=0"),
            "{}: {top}",
            cli.display()
        );
    }
    // A paused container still stops.
    engine.ok(&["pause", "ticker"]);
    engine.ok(&["stop", "-t", "1", "ticker"]);
    assert_eq!(engine.inspect("ticker")["State"]["Status"], "exited");
    engine.ok(&["rm", "ticker"]);
    assert!(engine.leftovers().is_empty(), "{:?}", engine.leftovers());
}

#[test]
fn update_changes_a_running_containers_limits_at_once() {
    if !privileged("update_changes_a_running_containers_limits_at_once") {
        return;
    }
    let engine = Engine::start();
    engine.ok(&[
        "run",
        "-d",
        "--name",
        "limited",
        "-m",
        "64m",
        "--pids-limit",
        "50",
        "--network",
        "none",
        "fixture",
        "sleep",
        "60",
    ]);
    // What the container itself reads in its cgroup files.
    let read = |file: &str| {
        let v1 = format!("/sys/fs/cgroup/{file}");
        engine
            .ok(&["exec", "limited", "cat", &v1])
            .trim()
            .to_string()
    };
    let v2 = engine
        .run(&["exec", "limited", "test", "-e", "/sys/fs/cgroup/memory.max"])
        .status
        .success();
    let (memory, pids) = if v2 {
        ("memory.max", "pids.max")
    } else {
        ("memory/memory.limit_in_bytes", "pids/pids.max")
    };
    assert_eq!(read(memory), (64u64 << 20).to_string());
    engine.ok(&[
        "update",
        "-m",
        "32m",
        "--memory-swap",
        "64m",
        "--pids-limit",
        "20",
        "limited",
    ]);
    assert_eq!(read(memory), (32u64 << 20).to_string());
    assert_eq!(read(pids), "20");
    assert_eq!(
        engine.inspect("limited")["HostConfig"]["Memory"],
        32u64 << 20
    );
    for cli in common::docker_clis() {
        engine.docker_ok(
            &cli,
            &[
                "update",
                "--memory",
                "48m",
                "--memory-swap",
                "96m",
                "limited",
            ],
        );
        assert_eq!(read(memory), (48u64 << 20).to_string(), "{}", cli.display());
    }
    // A bad value is refused, the limits unchanged.
    let bad = engine.run(&["update", "--cpuset-cpus", "not-a-list", "limited"]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("cpuset") || err.contains("not-a-list"),
        "{err}"
    );
    assert_eq!(read(memory), (48u64 << 20).to_string());
    // Kept for the next start.
    engine.ok(&["restart", "-t", "0", "limited"]);
    assert_eq!(read(memory), (48u64 << 20).to_string());
    engine.ok(&["rm", "-f", "limited"]);
    assert!(engine.leftovers().is_empty(), "{:?}", engine.leftovers());
}

#[test]
fn restart_policies_restart_as_dockers_and_survive_a_daemon_restart() {
    if !privileged("restart_policies_restart_as_dockers_and_survive_a_daemon_restart") {
        return;
    }
    let mut engine = Engine::start();
    // on-failure:2 — two restarts, then it stays exited; each run appends.
    engine.ok(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        "--network",
        "none",
        "fixture",
        "sh",
        "-c",
        "echo run; exit 4",
    ]);
    assert!(common::eventually(|| engine.inspect("flaky")
        ["RestartCount"]
        == 2
        && engine.inspect("flaky")["State"]["Status"] == "exited"));
    std::thread::sleep(std::time::Duration::from_millis(800));
    let v = engine.inspect("flaky");
    assert_eq!(
        (v["RestartCount"].as_i64(), v["State"]["ExitCode"].as_i64()),
        (Some(2), Some(4))
    );
    assert_eq!(
        engine.ok(&["logs", "flaky"]),
        "run\nrun\nrun\n",
        "three runs: the first and two restarts"
    );
    assert_eq!(
        v["HostConfig"]["RestartPolicy"],
        serde_json::json!({"Name": "on-failure", "MaximumRetryCount": 2})
    );
    // on-failure does not restart a success.
    engine.ok(&[
        "run",
        "-d",
        "--name",
        "fine",
        "--restart",
        "on-failure",
        "--network",
        "none",
        "fixture",
        "true",
    ]);
    std::thread::sleep(std::time::Duration::from_millis(800));
    assert_eq!(engine.inspect("fine")["RestartCount"], 0);
    // always: restarts after an exit of its own, not after a stop by hand.
    engine.ok(&[
        "run",
        "-d",
        "--name",
        "always",
        "--restart",
        "always",
        "--network",
        "none",
        "fixture",
        "sh",
        "-c",
        "sleep 0.3",
    ]);
    assert!(common::eventually(|| engine.inspect("always")
        ["RestartCount"]
        .as_i64()
        >= Some(2)));
    engine.ok(&["stop", "-t", "0", "always"]);
    let count = engine.inspect("always")["RestartCount"].clone();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(engine.inspect("always")["State"]["Status"], "exited");
    assert_eq!(
        engine.inspect("always")["RestartCount"],
        count,
        "restarted after a stop by hand"
    );
    // unless-stopped and always come back with the daemon; a stopped
    // unless-stopped one does not.
    engine.ok(&[
        "run",
        "-d",
        "--name",
        "keeper",
        "--restart",
        "unless-stopped",
        "--network",
        "none",
        "fixture",
        "sleep",
        "60",
    ]);
    engine.ok(&[
        "run",
        "-d",
        "--name",
        "stopped",
        "--restart",
        "unless-stopped",
        "--network",
        "none",
        "fixture",
        "sleep",
        "60",
    ]);
    engine.ok(&["stop", "-t", "0", "stopped"]);
    engine.ok(&["kill", "keeper"]);
    assert!(common::eventually(|| engine.inspect("keeper")["State"]
        ["Status"]
        == "exited"));
    engine.ok(&["start", "keeper"]);
    assert!(common::eventually(|| engine.inspect("keeper")["State"]
        ["Pid"]
        .as_i64()
        > Some(1)));
    let pid = engine.inspect("keeper")["State"]["Pid"].as_i64().unwrap() as i32;
    // Never kill(0) or kill(-1): only the container's own process.
    assert!(pid > 1, "keeper has no pid: {pid}");
    engine.kill_daemon();
    // The daemon's death does not stop containers; end keeper behind its back.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    engine.start_daemon();
    assert!(
        common::eventually(|| engine.inspect("keeper")["State"]["Status"] == "running"),
        "unless-stopped came back"
    );
    assert!(
        common::eventually(|| engine.inspect("always")["State"]["Status"] == "running"),
        "always came back"
    );
    assert_eq!(engine.inspect("stopped")["State"]["Status"], "exited");
    // Bad policies are refused as Docker refuses them.
    for (flags, said) in [
        (
            &["--restart", "sometimes"][..],
            "invalid restart policy 'sometimes'",
        ),
        (
            &["--restart", "always:3"][..],
            "maximum retry count can only be used with 'on-failure'",
        ),
        (
            &["--rm", "--restart", "always"][..],
            "can't create 'AutoRemove' container with restart policy",
        ),
    ] {
        let mut args = vec!["create"];
        args.extend_from_slice(flags);
        args.push("fixture");
        let out = engine.run(&args);
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(said),
            "{flags:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for cli in common::docker_clis() {
        engine.docker_ok(
            &cli,
            &[
                "run",
                "-d",
                "--name",
                "cli-flaky",
                "--restart",
                "on-failure:1",
                "--network",
                "none",
                "fixture",
                "false",
            ],
        );
        assert!(
            common::eventually(|| engine.inspect("cli-flaky")["RestartCount"] == 1),
            "{}",
            cli.display()
        );
        engine.docker_ok(&cli, &["rm", "-f", "cli-flaky"]);
    }
    engine.ok(&["rm", "-f", "flaky", "fine", "always", "keeper", "stopped"]);
    assert!(engine.leftovers().is_empty(), "{:?}", engine.leftovers());
}

#[test]
fn logs_since_and_until_cut_the_log_by_time() {
    if !privileged("logs_since_and_until_cut_the_log_by_time") {
        return;
    }
    let engine = Engine::start();
    engine.ok(&[
        "run",
        "--name",
        "talker",
        "--network",
        "none",
        "fixture",
        "sh",
        "-c",
        "echo early; sleep 1.5; echo late",
    ]);
    let ts = engine.ok(&["logs", "-t", "talker"]);
    let times: Vec<&str> = ts.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(times.len(), 2, "{ts}");
    // Half way between the two lines.
    let t = |s: &str| chapter_06::jsonlog::parse_time(s).unwrap();
    let middle = t(times[0]) + (t(times[1]) - t(times[0])) / 2;
    let middle = chapter_06::jsonlog::format_time(middle);
    assert_eq!(engine.ok(&["logs", "--since", &middle, "talker"]), "late\n");
    assert_eq!(
        engine.ok(&["logs", "--until", &middle, "talker"]),
        "early\n"
    );
    assert_eq!(
        engine.ok(&["logs", "--since", "1h", "talker"]),
        "early\nlate\n"
    );
    for cli in common::docker_clis() {
        assert_eq!(
            engine.docker_ok(&cli, &["logs", "--since", &middle, "talker"]),
            "late\n",
            "{}",
            cli.display()
        );
        assert_eq!(
            engine.docker_ok(&cli, &["logs", "--until", &middle, "talker"]),
            "early\n",
            "{}",
            cli.display()
        );
    }
    let bad = engine.run(&["logs", "--since", "yesterday", "talker"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid time \"yesterday\""));
    engine.ok(&["rm", "talker"]);
}

#[test]
fn export_writes_a_containers_whole_root_filesystem() {
    if !privileged("export_writes_a_containers_whole_root_filesystem") {
        return;
    }
    let engine = Engine::start();
    engine.ok(&[
        "run",
        "--name",
        "exported",
        "--network",
        "none",
        "fixture",
        "sh",
        "-c",
        "echo mine > /made && rm /bin/true",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let listing = |tar: &std::path::Path| -> Vec<String> {
        let out = std::process::Command::new("tar")
            .arg("-tf")
            .arg(tar)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(String::from)
            .collect()
    };
    let ours = dir.path().join("ours.tar");
    engine.ok(&["export", "-o", ours.to_str().unwrap(), "exported"]);
    let names = listing(&ours);
    assert!(names.iter().any(|n| n == "made"), "{names:?}");
    assert!(
        names.iter().any(|n| n == "bin/busybox"),
        "the image's files too"
    );
    assert!(
        !names.iter().any(|n| n == "bin/true"),
        "a deleted file is gone"
    );
    assert!(
        !names.iter().any(|n| n.contains(".wh.")),
        "no whiteouts in an export"
    );
    let out = std::process::Command::new("tar")
        .arg("-xOf")
        .arg(&ours)
        .arg("made")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "mine\n");
    for cli in common::docker_clis() {
        let theirs = dir.path().join("theirs.tar");
        engine.docker_ok(
            &cli,
            &["export", "-o", theirs.to_str().unwrap(), "exported"],
        );
        assert_eq!(listing(&theirs), names, "{}", cli.display());
    }
    let refused = engine.run(&["export", "nonesuch"]);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("No such container: nonesuch"));
    engine.ok(&["rm", "exported"]);
    assert!(engine.leftovers().is_empty(), "{:?}", engine.leftovers());
}

#[test]
fn system_df_and_inspect_documents_are_complete() {
    if !privileged("system_df_and_inspect_documents_are_complete") {
        return;
    }
    let engine = Engine::start();
    engine.ok(&["volume", "create", "data"]);
    engine.ok(&[
        "run", "--name", "writer", "--network", "none", "-v", "data:/data", "fixture", "sh", "-c",
        "dd if=/dev/zero of=/big bs=1024 count=2048 2>/dev/null; dd if=/dev/zero of=/data/f bs=1024 count=512 2>/dev/null",
    ]);
    engine.ok(&[
        "run",
        "-d",
        "--name",
        "idle",
        "--network",
        "none",
        "fixture",
        "sleep",
        "600",
    ]);
    let df: serde_json::Value = serde_json::from_str(&engine.ok(&["inspect", "writer"])).unwrap();
    let writer = &df[0];
    // Keys Docker 1.41 has, with its values for unset ones.
    assert_eq!(writer["HostConfig"]["ShmSize"], 67108864);
    assert_eq!(writer["HostConfig"]["Runtime"], "runc");
    assert!(writer["HostConfig"].get("MemorySwappiness").is_some());
    assert_eq!(writer["Config"]["ArgsEscaped"], false);
    assert!(writer["HostsPath"].as_str().unwrap().ends_with("/hosts"));
    let df = common::api_get(&engine, "/system/df");
    let container = |name: &str| {
        df["Containers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["Names"][0] == format!("/{name}"))
            .unwrap_or_else(|| panic!("{name} not in {df}"))
            .clone()
    };
    let rw = container("writer")["SizeRw"].as_i64().unwrap();
    assert!(
        (2 << 20..3 << 20).contains(&rw),
        "writer's layer is its 2 MiB file: {rw}"
    );
    assert!(container("idle")["SizeRw"].as_i64().unwrap() < 64 << 10);
    let volume = &df["Volumes"][0];
    assert_eq!(
        (
            volume["Name"].as_str(),
            volume["UsageData"]["RefCount"].as_i64()
        ),
        (Some("data"), Some(1))
    );
    assert!(volume["UsageData"]["Size"].as_i64().unwrap() >= 512 << 10);
    assert_eq!(df["Images"][0]["Containers"], 2);
    let table = engine.ok(&["system", "df"]);
    assert!(table.starts_with("TYPE"), "{table}");
    assert!(
        table.contains("Containers      2         1         "),
        "{table}"
    );
    assert!(
        table.contains("Local Volumes   1         1         "),
        "{table}"
    );
    for cli in common::docker_clis() {
        let theirs = engine.docker_ok(&cli, &["system", "df"]);
        assert!(
            theirs
                .lines()
                .any(|l| l.starts_with("Containers") && l.split_whitespace().nth(1) == Some("2")),
            "{}: {theirs}",
            cli.display()
        );
        let verbose = engine.docker_ok(&cli, &["system", "df", "-v"]);
        assert!(
            verbose.contains("writer") && verbose.contains("data"),
            "{verbose}"
        );
    }
    engine.ok(&["rm", "-f", "writer", "idle"]);
    engine.ok(&["volume", "rm", "data"]);
    assert!(engine.leftovers().is_empty(), "{:?}", engine.leftovers());
}

/// Starts `cmd` with piped stdin and stdout; a thread collects stdout.
fn spawn_piped(
    mut cmd: std::process::Command,
) -> (std::process::Child, std::sync::mpsc::Receiver<u8>) {
    use std::io::Read;
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut b = [0u8; 1];
        while out.read(&mut b).is_ok_and(|n| n == 1) {
            if tx.send(b[0]).is_err() {
                return;
            }
        }
    });
    (child, rx)
}

/// Waits (at most 10 s) until the collected output holds `text`.
fn wait_output(rx: &std::sync::mpsc::Receiver<u8>, seen: &mut Vec<u8>, text: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !String::from_utf8_lossy(seen).contains(text) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(b) => seen.push(b),
            Err(_) => panic!("no {text:?} in {:?}", String::from_utf8_lossy(seen)),
        }
    }
}

/// Waits (at most 10 s) for the child to exit; its code.
fn wait_exit(child: &mut std::process::Child) -> Option<i32> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn attach_to_a_running_container_and_detach_with_its_keys() {
    if !privileged("attach_to_a_running_container_and_detach_with_its_keys") {
        return;
    }
    use std::io::Write;
    let engine = Engine::start();
    engine.ok(&[
        "run",
        "-d",
        "-i",
        "--name",
        "echoer",
        "--network",
        "none",
        "fixture",
        "cat",
    ]);
    let running = |engine: &Engine| engine.inspect("echoer")["State"]["Running"] == true;
    // The default keys, ctrl-p ctrl-q; then keys of our own.
    for (keys, seq, word) in [
        (None, vec![16u8, 17], "hello"),
        (Some("ctrl-a,x"), vec![1, b'x'], "again"),
    ] {
        let mut args = vec!["attach"];
        if let Some(k) = keys {
            args.extend(["--detach-keys", k]);
        }
        args.push("echoer");
        let (mut child, rx) = spawn_piped(engine.cli(&args));
        let mut seen = Vec::new();
        let stdin = child.stdin.as_mut().unwrap();
        stdin.write_all(format!("{word}\n").as_bytes()).unwrap();
        wait_output(&rx, &mut seen, word);
        stdin.write_all(&seq).unwrap();
        assert_eq!(wait_exit(&mut child), Some(0), "detached with {keys:?}");
        assert!(running(&engine), "still running after the detach");
    }
    // Behind the docker CLIs, the daemon detaches them the same way: what
    // they send after the keys no longer reaches the container. (Without a
    // TTY the docker CLI itself then waits for the container's exit, as it
    // does against dockerd: only with -t does it end at once.)
    for cli in common::docker_clis() {
        let (mut child, rx) = spawn_piped(engine.docker_at(&cli, &["attach", "echoer"]));
        let mut seen = Vec::new();
        let stdin = child.stdin.as_mut().unwrap();
        stdin.write_all(b"from-docker\n").unwrap();
        wait_output(&rx, &mut seen, "from-docker");
        stdin.write_all(&[16, 17]).unwrap();
        stdin.write_all(b"after-detach\n").unwrap();
        std::thread::sleep(std::time::Duration::from_secs(1));
        while let Ok(b) = rx.try_recv() {
            seen.push(b);
        }
        assert!(
            !String::from_utf8_lossy(&seen).contains("after-detach"),
            "{}: input after the keys reached the container",
            cli.display()
        );
        assert!(running(&engine), "{}: still running", cli.display());
        let _ = child.kill();
        let _ = child.wait();
    }
    // Invalid keys are refused; a stopped container cannot be attached to.
    let bad = engine.run(&["attach", "--detach-keys", "ctrl-é", "echoer"]);
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("Invalid detach keys"),
        "{bad:?}"
    );
    engine.ok(&["rm", "-f", "echoer"]);
    assert!(engine.leftovers().is_empty(), "{:?}", engine.leftovers());
}

#[test]
fn an_exec_detaches_with_its_keys_and_runs_on() {
    if !privileged("an_exec_detaches_with_its_keys_and_runs_on") {
        return;
    }
    use std::io::Write;
    let engine = Engine::start();
    engine.ok(&[
        "run",
        "-d",
        "--name",
        "box",
        "--network",
        "none",
        "fixture",
        "sleep",
        "600",
    ]);
    let running = |engine: &Engine, pattern: &str| {
        engine
            .ok(&[
                "exec",
                "box",
                "sh",
                "-c",
                "cat /proc/[0-9]*/cmdline | tr '\\0' ' '",
            ])
            .contains(pattern)
    };
    // Without a TTY (the default keys) and with one (keys of our own): what
    // comes before the keys reaches the process, what comes after does not,
    // and the exec runs on, its input still open.
    for (tty, keys, seq, file) in [
        (false, None, vec![16u8, 17], "/tmp/plain"),
        (true, Some("ctrl-a,x"), vec![1, b'x'], "/tmp/tty"),
    ] {
        let mut args = vec!["exec", "-i"];
        if tty {
            args.push("-t");
        }
        if let Some(k) = keys {
            args.extend(["--detach-keys", k]);
        }
        // Not the last command, so sh stays (and its command line names it).
        let script = format!("cat > {file}; true");
        args.extend(["box", "sh", "-c", &script]);
        let (mut child, _rx) = spawn_piped(engine.cli(&args));
        let stdin = child.stdin.as_mut().unwrap();
        stdin.write_all(b"before\n").unwrap();
        stdin.write_all(&seq).unwrap();
        stdin.write_all(b"after\n").unwrap();
        assert_eq!(wait_exit(&mut child), Some(0), "detached (tty {tty})");
        let got = engine.ok(&["exec", "box", "cat", file]);
        assert!(
            got.contains("before") && !got.contains("after"),
            "tty {tty}: {got:?}"
        );
        assert!(
            running(&engine, &format!("cat > {file}")),
            "tty {tty}: the exec ran on"
        );
    }
    let bad = engine.run(&["exec", "-i", "--detach-keys", "ctrl-é", "box", "true"]);
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("Invalid detach keys"),
        "{bad:?}"
    );
    engine.ok(&["rm", "-f", "box"]);
    assert!(engine.leftovers().is_empty(), "{:?}", engine.leftovers());
}

#[test]
fn odd_labels_filter_and_a_restart_loop_does_not_starve_the_daemon() {
    if !privileged("odd_labels_filter_and_a_restart_loop_does_not_starve_the_daemon") {
        return;
    }
    let engine = Engine::start();
    // Labels with spaces, '=', quotes, ';', a comma and non-ASCII: kept
    // as given, found by a filter through the query's JSON and encoding.
    let odd = r#"wei rd.key=va=lue "quoted"; ünï,code 🐳"#;
    engine.ok(&["create", "--name", "odd", "-l", odd, "fixture", "true"]);
    engine.ok(&[
        "create",
        "--name",
        "plain",
        "-l",
        "wei rd.key=other",
        "fixture",
        "true",
    ]);
    let labels = &engine.inspect("odd")["Config"]["Labels"];
    assert_eq!(labels["wei rd.key"], r#"va=lue "quoted"; ünï,code 🐳"#);
    let filter = format!("label={odd}");
    let ours = engine.ok(&["ps", "-a", "--filter", &filter]);
    let rows: Vec<&str> = ours.lines().skip(1).collect();
    assert!(rows.len() == 1 && rows[0].ends_with(" odd"), "{ours}");
    for cli in common::docker_clis() {
        let seen = engine.docker_ok(
            &cli,
            &["ps", "-a", "--filter", &filter, "--format", "{{.Names}}"],
        );
        assert_eq!(names(&seen), ["odd"], "{}", cli.display());
    }
    let refused = engine.run(&["ps", "--filter", "no-such-filter=1"]);
    assert!(!refused.status.success());
    // A container that exits at once under --restart always: the backoff
    // spaces its restarts out, and the daemon goes on serving others.
    engine.ok(&[
        "run",
        "-d",
        "--name",
        "looper",
        "--network",
        "none",
        "--restart",
        "always",
        "fixture",
        "sh",
        "-c",
        "exit 1",
    ]);
    for i in 0..10 {
        assert_eq!(
            engine.ok(&[
                "run",
                "--rm",
                "--network",
                "none",
                "fixture",
                "echo",
                &format!("served-{i}")
            ]),
            format!("served-{i}\n")
        );
    }
    std::thread::sleep(std::time::Duration::from_secs(2));
    let count = engine.inspect("looper")["RestartCount"].as_i64().unwrap();
    assert!(
        (1..=12).contains(&count),
        "restarts are spaced out by the backoff (100 ms doubling): {count}"
    );
    engine.ok(&["rm", "-f", "looper", "odd", "plain"]);
    assert!(engine.leftovers().is_empty(), "{:?}", engine.leftovers());
}
