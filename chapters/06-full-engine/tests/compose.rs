//! Debian's docker-compose (1.29) against mini-dockerd: a web server, a
//! worker that fetches from it by service name, a one-shot job, a named
//! volume, the project's network and a published port, through `up`, `ps`,
//! `logs`, `exec`, `restart`, `stop`, `up` again and `down -v`.

mod common;
use common::{stdout_of, Engine};
use std::time::{Duration, Instant};
use testkit::privileged;

const COMPOSE: &str = r#"version: "3"
services:
  web:
    image: fixture
    command: ["sh", "-c", "echo served-by-web > /www/index.html && exec httpd -f -p 8080 -h /www"]
    volumes:
      - site:/www
    ports:
      - "PORT:8080"
    labels:
      course.role: server
  worker:
    image: fixture
    command: ["sh", "-c", "while ! wget -qO- http://web:8080/; do sleep 0.2; done; echo; exec sleep 60"]
  job:
    image: fixture
    command: ["sh", "-c", "echo job-done"]
    restart: "no"
volumes:
  site:
"#;

fn compose(engine: &Engine, dir: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new("docker-compose")
        .args(["-p", "course"])
        .args(args)
        .current_dir(dir)
        .env("DOCKER_HOST", engine.host())
        .env("DOCKER_CONFIG", dir.join("docker-config"))
        .output()
        .expect("docker-compose (cargo xtask install)");
    assert!(
        out.status.success(),
        "docker-compose {args:?}: {}{}\ndaemon log:\n{}",
        stdout_of(&out),
        String::from_utf8_lossy(&out.stderr),
        engine.daemon_log()
    );
    format!(
        "{}{}",
        stdout_of(&out),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Polls `compose logs SERVICE` until it holds `text` `times` times.
fn wait_for_log(
    engine: &Engine,
    dir: &std::path::Path,
    service: &str,
    text: &str,
    times: usize,
) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let logs = compose(engine, dir, &["logs", "--no-color", service]);
        if logs.matches(text).count() >= times || Instant::now() > deadline {
            return logs;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_compose_project_comes_up_talks_by_service_name_and_goes_away() {
    if !privileged("a_compose_project_comes_up_talks_by_service_name_and_goes_away") {
        return;
    }
    let engine = Engine::start();
    let dir = tempfile::tempdir().unwrap();
    let port = testkit::registry::free_port();
    std::fs::write(
        dir.path().join("docker-compose.yml"),
        COMPOSE.replace("PORT", &port.to_string()),
    )
    .unwrap();
    compose(&engine, dir.path(), &["up", "-d"]);
    let logs = wait_for_log(&engine, dir.path(), "worker", "served-by-web", 1);
    assert!(
        logs.contains("served-by-web"),
        "the worker reached web by its service name: {logs}"
    );
    assert!(wait_for_log(&engine, dir.path(), "job", "job-done", 1).contains("job-done"));
    let reply = common::http_get(&format!("127.0.0.1:{port}"));
    assert!(reply.contains("served-by-web"), "{reply}");
    let ps = compose(&engine, dir.path(), &["ps"]);
    for line in ["course_web_1", "course_worker_1", "course_job_1"] {
        assert!(ps.contains(line), "{ps}");
    }
    assert!(ps.contains(&format!("0.0.0.0:{port}->8080/tcp")), "{ps}");
    assert_eq!(
        compose(
            &engine,
            dir.path(),
            &["exec", "-T", "web", "cat", "/www/index.html"]
        ),
        "served-by-web\n"
    );
    // Labels are how compose owns its objects.
    let labels = &engine.inspect("course_web_1")["Config"]["Labels"];
    assert_eq!(labels["com.docker.compose.project"], "course");
    assert_eq!(labels["com.docker.compose.service"], "web");
    assert_eq!(labels["course.role"], "server");
    // A second up changes nothing; restart and stop, then up again.
    let again = compose(&engine, dir.path(), &["up", "-d"]);
    assert!(again.contains("course_web_1 is up-to-date"), "{again}");
    compose(&engine, dir.path(), &["restart", "web"]);
    compose(&engine, dir.path(), &["stop"]);
    let up = compose(&engine, dir.path(), &["up", "-d"]);
    assert!(up.contains("Starting course_web_1"), "{up}");
    let logs = wait_for_log(&engine, dir.path(), "worker", "served-by-web", 2);
    assert!(
        logs.matches("served-by-web").count() >= 2,
        "fetched again after the restart: {logs}"
    );
    // down -v: containers, network and volume gone, nothing left.
    compose(&engine, dir.path(), &["down", "-v"]);
    assert_eq!(engine.ok(&["ps", "-aq"]), "");
    assert!(!engine.ok(&["volume", "ls"]).contains("course_site"));
    assert!(!engine.ok(&["network", "ls"]).contains("course_default"));
    assert!(engine.leftovers().is_empty(), "{:?}", engine.leftovers());
}
