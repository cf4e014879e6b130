//! Debian's docker-compose (1.29): a web server, a worker that fetches
//! from it by service name, a one-shot job, a named volume, the project's
//! network and a published port, through `up`, `ps`, `logs`, `exec`,
//! `--scale`, `restart`, `stop`, `up` again and `down -v`, against
//! mini-dockerd and, in the same test, a real dockerd (Debian's 20.10, a
//! root of its own): both show the same.

mod common;
use common::{stdout_of, Engine};
use std::path::Path;
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

/// One daemon the project runs on: its socket, and its log for failures.
struct Daemon<'a> {
    host: String,
    log: &'a dyn Fn() -> String,
}

impl Daemon<'_> {
    fn compose(&self, dir: &Path, args: &[&str]) -> String {
        let out = std::process::Command::new("docker-compose")
            .args(["-p", "course"])
            .args(args)
            .current_dir(dir)
            .env("DOCKER_HOST", &self.host)
            .env("DOCKER_CONFIG", dir.join("docker-config"))
            .output()
            .expect("docker-compose (cargo xtask install)");
        assert!(
            out.status.success(),
            "docker-compose {args:?} on {}: {}{}\ndaemon log:\n{}",
            self.host,
            stdout_of(&out),
            String::from_utf8_lossy(&out.stderr),
            (self.log)()
        );
        format!(
            "{}{}",
            stdout_of(&out),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    /// Debian's docker CLI on this daemon; stdout.
    fn docker(&self, args: &[&str]) -> String {
        let out = std::process::Command::new("/usr/bin/docker")
            .args(["-H", &self.host])
            .args(args)
            .env("DOCKER_CONFIG", "/nonexistent")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "docker {args:?} on {}: {out:?}",
            self.host
        );
        stdout_of(&out)
    }

    /// Polls `compose logs SERVICE` until it holds `text` `times` times.
    fn wait_for_log(&self, dir: &Path, service: &str, text: &str, times: usize) -> usize {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let n = self
                .compose(dir, &["logs", "--no-color", service])
                .matches(text)
                .count();
            if n >= times || Instant::now() > deadline {
                return n;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// What a run of the project shows: nothing in it depends on which
/// daemon ran it.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    worker_fetched: usize,
    job_done: usize,
    http: bool,
    ps: Vec<String>,
    port_shown: bool,
    exec: String,
    labels: (String, String, String),
    up_to_date: bool,
    scaled_fetched: usize,
    worker_addresses: usize,
    restarted: bool,
    fetched_after_up: bool,
    left: (String, bool, bool),
}

fn run_project(d: &Daemon, port: u16) -> Seen {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    std::fs::write(
        dir.join("docker-compose.yml"),
        COMPOSE.replace("PORT", &port.to_string()),
    )
    .unwrap();
    d.compose(dir, &["up", "-d"]);
    let worker_fetched = d.wait_for_log(dir, "worker", "served-by-web", 1);
    let job_done = d.wait_for_log(dir, "job", "job-done", 1);
    let http = common::http_get(&format!("127.0.0.1:{port}")).contains("served-by-web");
    let ps_out = d.compose(dir, &["ps"]);
    let mut ps: Vec<String> = ["course_web_1", "course_worker_1", "course_job_1"]
        .iter()
        .filter(|n| ps_out.contains(*n))
        .map(|n| n.to_string())
        .collect();
    ps.sort();
    let port_shown = ps_out.contains(&format!("0.0.0.0:{port}->8080/tcp"));
    let exec = d.compose(dir, &["exec", "-T", "web", "cat", "/www/index.html"]);
    let label = |k: &str| {
        d.docker(&[
            "inspect",
            "--format",
            &format!("{{{{index .Config.Labels \"{k}\"}}}}"),
            "course_web_1",
        ])
        .trim()
        .to_string()
    };
    let labels = (
        label("com.docker.compose.project"),
        label("com.docker.compose.service"),
        label("course.role"),
    );
    let up_to_date = d
        .compose(dir, &["up", "-d"])
        .contains("course_web_1 is up-to-date");
    // Two workers: both fetch, and the service name has both addresses
    // (the embedded DNS server's answer to `worker`).
    d.compose(dir, &["up", "-d", "--scale", "worker=2"]);
    let scaled_fetched = d.wait_for_log(dir, "worker", "served-by-web", 2);
    let lookup = d.compose(dir, &["exec", "-T", "web", "nslookup", "-type=a", "worker"]);
    let worker_addresses = lookup
        .split("Name:")
        .skip(1)
        .filter(|part| part.contains("Address"))
        .count();
    d.compose(dir, &["restart", "web"]);
    d.compose(dir, &["stop"]);
    let restarted = d
        .compose(dir, &["up", "-d", "--scale", "worker=2"])
        .contains("Starting course_web_1");
    let fetched_after_up = d.wait_for_log(dir, "worker", "served-by-web", 4) >= 4;
    d.compose(dir, &["down", "-v"]);
    let left = (
        d.docker(&[
            "ps",
            "-aq",
            "--filter",
            "label=com.docker.compose.project=course",
        ]),
        d.docker(&["volume", "ls", "-q"]).contains("course_site"),
        d.docker(&["network", "ls"]).contains("course_default"),
    );
    Seen {
        worker_fetched: worker_fetched.min(1),
        job_done: job_done.min(1),
        http,
        ps,
        port_shown,
        exec,
        labels,
        up_to_date,
        scaled_fetched: scaled_fetched.min(2),
        worker_addresses,
        restarted,
        fetched_after_up,
        left,
    }
}

#[test]
fn a_compose_project_shows_the_same_on_mini_dockerd_and_dockerd() {
    if !privileged("a_compose_project_shows_the_same_on_mini_dockerd_and_dockerd") {
        return;
    }
    let engine = Engine::start();
    let log = || engine.daemon_log();
    let ours = Daemon {
        host: engine.host(),
        log: &log,
    };
    let seen = run_project(&ours, testkit::registry::free_port());
    let expected = Seen {
        worker_fetched: 1,
        job_done: 1,
        http: true,
        ps: vec![
            "course_job_1".into(),
            "course_web_1".into(),
            "course_worker_1".into(),
        ],
        port_shown: true,
        exec: "served-by-web\n".into(),
        labels: ("course".into(), "web".into(), "server".into()),
        up_to_date: true,
        scaled_fetched: 2,
        worker_addresses: 2,
        restarted: true,
        fetched_after_up: true,
        left: (String::new(), false, false),
    };
    assert_eq!(seen, expected, "mini-dockerd\n{}", engine.daemon_log());
    assert!(engine.leftovers().is_empty(), "{:?}", engine.leftovers());

    // The same project on a real dockerd with the same fixture image.
    let root = tempfile::tempdir().unwrap();
    let dockerd = testkit::peers::Dockerd::start(&root.path().join("dockerd"));
    let image = root.path().join("fixture.tar");
    engine.ok(&["save", "-o", &image.display().to_string(), "fixture"]);
    let dockerd_log =
        || std::fs::read_to_string(root.path().join("dockerd/dockerd.log")).unwrap_or_default();
    let theirs = Daemon {
        host: format!("unix://{}", dockerd.socket.display()),
        log: &dockerd_log,
    };
    theirs.docker(&["load", "-i", &image.display().to_string()]);
    let seen = run_project(&theirs, testkit::registry::free_port());
    assert_eq!(seen, expected, "dockerd\n{}", dockerd_log());
}
