//! The real `docker` CLI against mini-dockerd: the Engine API is the
//! contract, and Docker's own client is the judge. Images come from a
//! local docker-registry on loopback.

mod common;
use common::{stdout_of, Engine};
use std::process::{Command, Output, Stdio};
use std::time::Duration;
use testkit::privileged;

fn run(cmd: Option<Command>) -> Option<Output> {
    cmd.map(|mut c| c.stdin(Stdio::null()).output().unwrap())
}

fn ok(engine: &Engine, args: &[&str]) -> Option<String> {
    let out = run(engine.docker(args))?;
    assert!(
        out.status.success(),
        "docker {args:?} failed ({:?}): {}{}\ndaemon log:\n{}",
        out.status.code(),
        stdout_of(&out),
        String::from_utf8_lossy(&out.stderr),
        engine.daemon_log()
    );
    Some(stdout_of(&out))
}

/// The fixture pushed to a local registry with chapter 05, as `fixture:v1`.
fn registry_with_fixture(engine: &Engine) -> testkit::registry::Registry {
    let registry = testkit::registry::Registry::start(testkit::registry::Auth::None);
    let store = chapter_04::Store::open(engine.root.join("images")).unwrap();
    common::push_fixture(&store, &registry);
    registry
}

#[test]
fn the_docker_cli_drives_the_whole_lifecycle() {
    if !privileged("the_docker_cli_drives_the_whole_lifecycle") {
        return;
    }
    // Every docker CLI on the machine: a v28 of its own, Debian's 20.10.
    for cli in common::docker_clis() {
        eprintln!("with {}", cli.display());
        lifecycle(&cli);
    }
}

fn lifecycle(cli: &std::path::Path) {
    let engine = Engine::start();
    let run = |args: &[&str]| {
        Some(
            engine
                .docker_at(cli, args)
                .stdin(Stdio::null())
                .output()
                .unwrap(),
        )
    };
    let ok = |engine: &Engine, args: &[&str]| -> Option<String> {
        let out = run(args)?;
        assert!(
            out.status.success(),
            "{} {args:?} failed ({:?}): {}{}\ndaemon log:\n{}",
            cli.display(),
            out.status.code(),
            stdout_of(&out),
            String::from_utf8_lossy(&out.stderr),
            engine.daemon_log()
        );
        Some(stdout_of(&out))
    };
    let version = ok(&engine, &["version", "--format", "{{.Server.APIVersion}}"]).unwrap();
    assert_eq!(version.trim(), chapter_06::api::API_VERSION);

    // pull from the local registry, then images / run / rmi.
    let registry = registry_with_fixture(&engine);
    let image = format!("{}/fixture:v1", registry.addr);
    let pulled = ok(&engine, &["pull", &image]).unwrap();
    assert!(pulled.contains("Digest: sha256:"), "{pulled}");
    assert!(
        pulled.contains(": Pull complete"),
        "layer progress streamed: {pulled}"
    );
    let images = ok(&engine, &["images"]).unwrap();
    assert!(
        images.contains(&format!("{}/fixture", registry.addr)) && images.contains("v1"),
        "{images}"
    );
    assert_eq!(
        ok(&engine, &["run", "--rm", &image, "echo", "hi from docker"]).unwrap(),
        "hi from docker\n"
    );
    let code = run(&["run", "--rm", "fixture", "sh", "-c", "exit 42"]).unwrap();
    assert_eq!(code.status.code(), Some(42));
    let missing = run(&["run", "--rm", "fixture", "nosuch"]).unwrap();
    assert_eq!(
        missing.status.code(),
        Some(127),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );

    // A detached, named container: ps, logs -f, exec, inspect, stop, kill, rm -f.
    let id = ok(
        &engine,
        &[
            "run",
            "-d",
            "--name",
            "web",
            "fixture",
            "sh",
            "-c",
            "trap 'exit 0' TERM; echo started; while true; do sleep 0.1; done",
        ],
    )
    .unwrap();
    let ps = ok(&engine, &["ps", "-a"]).unwrap();
    assert!(
        ps.contains(&id[..12]) && ps.contains("web") && ps.contains("Up"),
        "{ps}"
    );
    let exec = run(&["exec", "web", "sh", "-c", "echo in-$(hostname); exit 3"]).unwrap();
    assert_eq!(exec.status.code(), Some(3));
    assert_eq!(stdout_of(&exec), format!("in-{}\n", &id[..12]));
    let state = ok(
        &engine,
        &[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.Running}} {{.Name}}",
            "web",
        ],
    )
    .unwrap();
    assert_eq!(state.trim(), "running true /web");
    let follow = engine
        .docker(&["logs", "-f", "web"])
        .unwrap()
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    ok(&engine, &["stop", "web"]);
    let followed = follow.wait_with_output().unwrap();
    assert_eq!(stdout_of(&followed), "started\n");
    assert_eq!(
        ok(&engine, &["inspect", "-f", "{{.State.ExitCode}}", "web"])
            .unwrap()
            .trim(),
        "0"
    );
    ok(&engine, &["start", "web"]);
    ok(&engine, &["kill", "web"]);
    assert_eq!(ok(&engine, &["wait", "web"]).unwrap().trim(), "137");
    ok(&engine, &["rm", "-f", "web"]);
    assert_eq!(ok(&engine, &["ps", "-aq"]).unwrap(), "");

    // rmi: refused while a container uses it, then done.
    ok(&engine, &["create", "--name", "user", &image, "true"]);
    assert!(!run(&["rmi", &image]).unwrap().status.success());
    ok(&engine, &["rm", "user"]);
    let removed = ok(&engine, &["rmi", &image]).unwrap();
    assert!(removed.contains("Untagged"), "{removed}");
    // An image the daemon does not have: 404 on create, the CLI pulls.
    let out = run(&["run", "--rm", &image, "echo", "auto-pulled"]).unwrap();
    assert_eq!(stdout_of(&out), "auto-pulled\n");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Unable to find image"),
        "{out:?}"
    );
    assert_eq!(engine.leftovers(), Vec::<String>::new());
}

#[test]
fn docker_run_it_gets_a_terminal_and_stdin_streams() {
    if !privileged("docker_run_it_gets_a_terminal_and_stdin_streams") {
        return;
    }
    let engine = Engine::start();
    let Some(cmd) = engine.docker(&["run", "-it", "--rm", "fixture", "sh"]) else {
        return;
    };
    let (status, text) = testkit::pty::run_on_terminal(
        cmd,
        // The CLI resizes just after start (API 1.41 has no size at
        // create), so give the resize a moment before asking.
        b"[ -t 0 ] && echo tty-$((6*7)); sleep 1; stty size\nexit 5\n",
        Duration::from_secs(30),
    );
    assert_eq!(status.code(), Some(5), "{text}");
    assert!(text.contains("tty-42"), "{text}");
    // The client's terminal size reached the container's terminal.
    assert!(text.contains("24 80"), "{text}");

    // -i without -t: bytes through stdin, EOF closes it.
    let out = testkit::run_with_stdin(
        engine
            .docker(&["run", "-i", "--rm", "fixture", "wc", "-c"])
            .unwrap(),
        &[b'x'; 100_000],
    );
    assert_eq!(stdout_of(&out).trim(), "100000");

    // exec -it into a running container.
    ok(
        &engine,
        &["run", "-d", "--name", "box", "fixture", "sleep", "60"],
    );
    let (status, text) = testkit::pty::run_on_terminal(
        engine.docker(&["exec", "-it", "box", "sh"]).unwrap(),
        b"[ -t 0 ] && echo exec-tty; exit 6\n",
        Duration::from_secs(30),
    );
    assert_eq!(status.code(), Some(6), "{text}");
    assert!(text.contains("exec-tty"), "{text}");
    ok(&engine, &["rm", "-f", "box"]);
    assert_eq!(engine.leftovers(), Vec::<String>::new());
}

#[test]
fn our_cli_runs_interactively_on_a_terminal() {
    if !privileged("our_cli_runs_interactively_on_a_terminal") {
        return;
    }
    let engine = Engine::start();
    let (status, text) = testkit::pty::run_on_terminal(
        engine.cli(&["run", "-it", "--rm", "fixture", "sh"]),
        b"[ -t 0 ] && echo tty-$((6*7)); stty size\nexit 4\n",
        Duration::from_secs(30),
    );
    assert_eq!(status.code(), Some(4), "{text}");
    assert!(text.contains("tty-42"), "{text}");
    assert!(text.contains("24 80"), "the size is forwarded: {text}");
    // our registry pull, too
    let registry = registry_with_fixture(&engine);
    let image = format!("{}/fixture:v1", registry.addr);
    let out = engine.ok(&["run", "--rm", &image, "echo", "pulled-and-ran"]);
    assert_eq!(out, "pulled-and-ran\n");
    assert_eq!(engine.leftovers(), Vec::<String>::new());
}
