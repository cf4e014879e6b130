//! Health checks (`--health-*`, the image's HEALTHCHECK, timeouts) and
//! `GET /events`, with our CLI and both docker CLIs.

mod common;
use common::Engine;
use std::process::Stdio;
use std::time::{Duration, Instant};
use testkit::privileged;

fn health(engine: &Engine, name: &str) -> serde_json::Value {
    engine.inspect(name)["State"]["Health"].clone()
}

/// Waits (at most 20 s) until the container's health status is `want`.
fn wait_health(engine: &Engine, name: &str, want: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let h = health(engine, name);
        if h["Status"] == want {
            return h;
        }
        assert!(Instant::now() < deadline, "{name} never became {want}: {h}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn health_checks_turn_healthy_and_unhealthy() {
    if !privileged("health_checks_turn_healthy_and_unhealthy") {
        return;
    }
    let engine = Engine::start();
    engine.ok(&[
        "run",
        "-d",
        "--name",
        "hc",
        "--network",
        "none",
        "--health-cmd",
        "test -f /tmp/ok && echo fine",
        "--health-interval",
        "200ms",
        "--health-retries",
        "2",
        "fixture",
        "sleep",
        "600",
    ]);
    assert_eq!(health(&engine, "hc")["Status"], "starting");
    let h = wait_health(&engine, "hc", "unhealthy");
    assert!(h["FailingStreak"].as_u64().unwrap() >= 2, "{h}");
    assert_eq!(h["Log"][0]["ExitCode"], 1, "{h}");
    assert!(engine.ok(&["ps"]).contains("(unhealthy)"));
    engine.ok(&["exec", "hc", "touch", "/tmp/ok"]);
    let h = wait_health(&engine, "hc", "healthy");
    let last = h["Log"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["ExitCode"].as_i64(), last["Output"].as_str()),
        (Some(0), Some("fine\n"))
    );
    assert_eq!(h["FailingStreak"], 0);
    assert!(engine.ok(&["ps"]).contains("(healthy)"));
    let healthy = engine.ok(&["ps", "-q", "--filter", "health=healthy"]);
    assert_eq!(healthy.lines().count(), 1, "{healthy}");
    assert_eq!(engine.ok(&["ps", "-q", "--filter", "health=unhealthy"]), "");
    let config = &engine.inspect("hc")["Config"]["Healthcheck"];
    assert_eq!(
        config["Test"],
        serde_json::json!(["CMD-SHELL", "test -f /tmp/ok && echo fine"])
    );
    assert_eq!(config["Interval"], 200_000_000);

    // A probe that outlives its timeout fails, and is killed.
    engine.ok(&[
        "run",
        "-d",
        "--name",
        "slow",
        "--network",
        "none",
        "--health-cmd",
        "sleep 30",
        "--health-timeout",
        "300ms",
        "--health-interval",
        "200ms",
        "--health-retries",
        "1",
        "fixture",
        "sleep",
        "600",
    ]);
    let h = wait_health(&engine, "slow", "unhealthy");
    assert!(
        h["Log"][0]["Output"]
            .as_str()
            .unwrap()
            .contains("exceeded timeout"),
        "{h}"
    );
    std::thread::sleep(Duration::from_millis(500));
    let procs = engine.ok(&["exec", "slow", "ps", "-o", "args"]);
    assert!(
        procs.lines().filter(|l| l.contains("sleep 30")).count() <= 1,
        "timed-out probes keep running:\n{procs}"
    );

    // The image's HEALTHCHECK, and --no-healthcheck.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM fixture\nHEALTHCHECK --interval=200ms --retries=1 CMD true\n",
    )
    .unwrap();
    engine.ok(&[
        "build",
        "-q",
        "-t",
        "checked",
        &dir.path().display().to_string(),
    ]);
    engine.ok(&[
        "run",
        "-d",
        "--name",
        "img",
        "--network",
        "none",
        "checked",
        "sleep",
        "600",
    ]);
    wait_health(&engine, "img", "healthy");
    engine.ok(&[
        "run",
        "-d",
        "--name",
        "off",
        "--network",
        "none",
        "--no-healthcheck",
        "checked",
        "sleep",
        "600",
    ]);
    std::thread::sleep(Duration::from_millis(600));
    assert!(health(&engine, "off").is_null());
    let none = engine.ok(&["ps", "--filter", "health=none"]);
    assert!(none.contains(" off") && !none.contains(" img"), "{none}");

    // Both docker CLIs set a check the same way.
    for (i, cli) in common::docker_clis().iter().enumerate() {
        let name = format!("d{i}");
        engine.docker_ok(
            cli,
            &[
                "run",
                "-d",
                "--name",
                &name,
                "--network",
                "none",
                "--health-cmd",
                "true",
                "--health-interval",
                "200ms",
                "fixture",
                "sleep",
                "600",
            ],
        );
        wait_health(&engine, &name, "healthy");
        let status = engine.docker_ok(
            cli,
            &["inspect", "--format", "{{.State.Health.Status}}", &name],
        );
        assert_eq!(status.trim(), "healthy");
    }
    engine.ok(&["rm", "-f", "hc", "slow", "img", "off"]);
    for i in 0..common::docker_clis().len() {
        engine.ok(&["rm", "-f", &format!("d{i}")]);
    }
    assert!(engine.leftovers().is_empty(), "{:?}", engine.leftovers());
}

#[test]
fn events_stream_what_happens_with_filters_since_and_until() {
    if !privileged("events_stream_what_happens_with_filters_since_and_until") {
        return;
    }
    let engine = Engine::start();
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let mut watcher = engine
        .cli(&[
            "events",
            "--filter",
            "container=ev",
            "--format",
            "{{json .}}",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    engine.ok(&[
        "create",
        "--name",
        "ev",
        "--network",
        "none",
        "-l",
        "app=x",
        "fixture",
        "sleep",
        "600",
    ]);
    engine.ok(&["start", "ev"]);
    engine.ok(&["pause", "ev"]);
    engine.ok(&["unpause", "ev"]);
    engine.ok(&["rename", "ev", "ev2"]);
    engine.ok(&[
        "run",
        "--rm",
        "--name",
        "other",
        "--network",
        "none",
        "fixture",
        "true",
    ]);
    engine.ok(&["kill", "ev2"]);
    engine.ok(&["rm", "ev2"]);
    std::thread::sleep(Duration::from_millis(300));
    let _ = watcher.kill();
    let out = watcher.wait_with_output().unwrap();
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["Action"].as_str().unwrap())
        .collect();
    // The filter matches the name the container has at each event: once
    // renamed to ev2, it is not `ev` any more (Docker's rule).
    assert_eq!(
        actions,
        ["create", "start", "pause", "unpause"],
        "{events:?}"
    );
    assert_eq!(events[0]["Actor"]["Attributes"]["app"], "x");
    assert_eq!(events[0]["Actor"]["Attributes"]["image"], "fixture");
    assert_eq!(events[0]["Type"], "container");
    assert!(events[0]["timeNano"].as_i64().unwrap() > (start * 1e9) as i64);

    // Since and until: the past replayed, and the stream ends by itself.
    let until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let since = format!("{start:.3}");
    let until = format!("{until:.3}");
    let replay = engine.ok(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        "type=container",
    ]);
    let lines: Vec<&str> = replay.lines().collect();
    for action in [
        "create", "start", "pause", "unpause", "rename", "kill", "die", "destroy",
    ] {
        assert!(
            lines
                .iter()
                .any(|l| l.contains(&format!(" container {action} "))),
            "no {action} in:\n{replay}"
        );
    }
    assert!(replay.contains("oldName=/ev"), "{replay}");
    let other = engine.ok(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "-f",
        "container=other",
        "-f",
        "event=die",
    ]);
    assert_eq!(other.lines().count(), 1, "{other}");
    assert!(other.contains("exitCode=0"), "{other}");
    for cli in common::docker_clis() {
        let seen = engine.docker_ok(
            &cli,
            &[
                "events",
                "--since",
                &since,
                "--until",
                &until,
                "--filter",
                "event=destroy",
            ],
        );
        assert_eq!(seen.lines().count(), 2, "{seen}");
        assert!(
            seen.contains("container destroy") && seen.contains("name=ev2"),
            "{seen}"
        );
    }
    assert!(engine.leftovers().is_empty(), "{:?}", engine.leftovers());
}
