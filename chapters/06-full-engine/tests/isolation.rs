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
