//! Health checks: the image's `HEALTHCHECK` or `--health-cmd`, run as an
//! exec inside the running container every interval. Docker's rules: the
//! status is `starting` until the first success (`healthy`); `retries`
//! failures in a row make it `unhealthy`, except that failures within the
//! start period do not count; a probe that outlives its timeout fails
//! (and is killed: it dies with its exec helper). The last five probes are
//! kept, each with at most 4 KiB of its output.

use super::Daemon;
use chapter_04::manifest::Healthcheck;
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;

/// Docker's defaults for a zero field.
const INTERVAL: Duration = Duration::from_secs(30);
const TIMEOUT: Duration = Duration::from_secs(30);
const RETRIES: u64 = 3;
const KEEP: usize = 5;
const MAX_OUTPUT: usize = 4096;

/// `State.Health` as inspect shows it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Health {
    pub status: &'static str,
    pub failing_streak: u64,
    pub log: VecDeque<Probe>,
}

impl Health {
    pub fn starting() -> Health {
        Health {
            status: "starting",
            failing_streak: 0,
            log: VecDeque::new(),
        }
    }

    /// The outcome of one probe, by Docker's rules.
    pub fn record(&mut self, probe: Probe, retries: u64, in_start_period: bool) {
        if probe.exit_code == 0 {
            self.status = "healthy";
            self.failing_streak = 0;
        } else if !(in_start_period && self.status == "starting") {
            self.failing_streak += 1;
            if self.failing_streak >= retries {
                self.status = "unhealthy";
            }
        }
        self.log.push_back(probe);
        while self.log.len() > KEEP {
            self.log.pop_front();
        }
    }
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Probe {
    pub start: String,
    pub end: String,
    pub exit_code: i64,
    pub output: String,
}

/// The check in effect, if any: `["NONE"]` (`--no-healthcheck`, or
/// `HEALTHCHECK NONE`) and an empty test mean none.
pub fn effective(check: Option<&Healthcheck>) -> Option<Healthcheck> {
    let check = check?;
    match check.test.first().map(String::as_str) {
        None | Some("NONE") => None,
        Some(_) => Some(check.clone()),
    }
}

/// The command a test runs: `CMD a b` → `a b`; `CMD-SHELL x` → `/bin/sh -c x`.
pub fn command(test: &[String]) -> Option<Vec<String>> {
    match test.split_first() {
        Some((kind, rest)) if kind == "CMD" && !rest.is_empty() => Some(rest.to_vec()),
        Some((kind, [script])) if kind == "CMD-SHELL" => {
            Some(vec!["/bin/sh".into(), "-c".into(), script.clone()])
        }
        _ => None,
    }
}

/// The request's check over the image's, as Docker merges them: no test
/// takes the image's, and each zero field takes the image's value.
pub fn merge(request: Option<Healthcheck>, image: Option<&Healthcheck>) -> Option<Healthcheck> {
    let Some(image) = image else {
        return request;
    };
    let Some(mut check) = request else {
        return Some(image.clone());
    };
    if check.test.is_empty() {
        check.test = image.test.clone();
    }
    for (ours, theirs) in [
        (&mut check.interval, image.interval),
        (&mut check.timeout, image.timeout),
        (&mut check.start_period, image.start_period),
        (&mut check.retries, image.retries),
    ] {
        if *ours == 0 {
            *ours = theirs;
        }
    }
    Some(check)
}

fn or(nanos: u64, default: Duration) -> Duration {
    if nanos == 0 {
        default
    } else {
        Duration::from_nanos(nanos)
    }
}

impl Daemon {
    /// Runs the container's health check for as long as this run lasts
    /// (the caller aborts it at the exit).
    pub(crate) async fn watch_health(self: Arc<Self>, id: String) {
        let Ok(Some(check)) = self.entry(&id, |e| {
            let check = effective(e.c.config.healthcheck.as_ref());
            e.health = check.as_ref().map(|_| Health::starting());
            check
        }) else {
            return;
        };
        let Some(args) = command(&check.test) else {
            eprintln!(
                "mini-dockerd: {}: health check {:?} is not CMD or CMD-SHELL: not run",
                crate::ids::short(&id),
                check.test
            );
            return;
        };
        let interval = or(check.interval, INTERVAL);
        let timeout = or(check.timeout, TIMEOUT);
        let start_period = Duration::from_nanos(check.start_period);
        let retries = if check.retries == 0 {
            RETRIES
        } else {
            check.retries
        };
        let started = Instant::now();
        loop {
            tokio::time::sleep(interval).await;
            let Ok((c, state)) = self.entry(&id, |e| (e.c.clone(), e.state.clone())) else {
                return;
            };
            if super::containers::is_frozen(&state.cgroup_dirs) {
                continue; // paused: nothing can answer
            }
            let spec = self.exec_spec(&c, &state, args.clone());
            let probe = probe(&spec, timeout).await;
            let in_start_period = started.elapsed() < start_period;
            let changed = self.entry(&id, |e| {
                let health = e.health.get_or_insert_with(Health::starting);
                let before = health.status;
                health.record(probe, retries, in_start_period);
                (before != health.status).then_some(health.status)
            });
            if let Ok(Some(status)) = changed {
                self.event(
                    "container",
                    &format!("health_status: {status}"),
                    &id,
                    serde_json::Map::new(),
                );
            }
        }
    }
}

/// Runs one probe through the exec helper: its exit code and output
/// (stdout and stderr as they come, at most 4 KiB).
async fn probe(spec: &crate::exec::ExecSpec, timeout: Duration) -> Probe {
    let start = crate::jsonlog::now();
    let mut command = super::self_exe();
    command
        .arg("exec-helper")
        .arg(serde_json::to_string(spec).expect("specs serialise"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let finish = |exit_code: i64, output: String| Probe {
        start: start.clone(),
        end: crate::jsonlog::now(),
        exit_code,
        output,
    };
    let mut child = match command.spawn() {
        Ok(c) => c,
        Err(e) => return finish(-1, format!("starting the health check: {e}")),
    };
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let run = async {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let _ = tokio::join!(stdout.read_to_end(&mut out), stderr.read_to_end(&mut err));
        out.extend_from_slice(&err);
        let status = child.wait().await;
        (status, out)
    };
    match tokio::time::timeout(timeout, run).await {
        Ok((status, mut output)) => {
            output.truncate(MAX_OUTPUT);
            let code = i64::from(super::execs::exit_code(status));
            finish(code, String::from_utf8_lossy(&output).into_owned())
        }
        // Dropping the child kills the helper, and so the probe.
        Err(_) => finish(
            -1,
            format!("Health check exceeded timeout ({}s)", timeout.as_secs_f64()),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(code: i64) -> Probe {
        Probe {
            start: String::new(),
            end: String::new(),
            exit_code: code,
            output: String::new(),
        }
    }

    #[test]
    fn statuses_follow_docker_s_rules() {
        let mut h = Health::starting();
        h.record(probe(1), 2, true);
        assert_eq!((h.status, h.failing_streak), ("starting", 0));
        h.record(probe(1), 2, false);
        assert_eq!((h.status, h.failing_streak), ("starting", 1));
        h.record(probe(0), 2, false);
        assert_eq!((h.status, h.failing_streak), ("healthy", 0));
        h.record(probe(1), 2, true); // the start period is over once healthy
        h.record(probe(1), 2, false);
        assert_eq!((h.status, h.failing_streak), ("unhealthy", 2));
        for _ in 0..10 {
            h.record(probe(1), 2, false);
        }
        assert_eq!(h.log.len(), KEEP);
    }

    #[test]
    fn tests_and_merges() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(command(&s(&["CMD", "true"])), Some(s(&["true"])));
        assert_eq!(
            command(&s(&["CMD-SHELL", "exit 1"])),
            Some(s(&["/bin/sh", "-c", "exit 1"]))
        );
        assert_eq!(command(&s(&["NONE"])), None);
        let image = Healthcheck {
            test: s(&["CMD", "true"]),
            interval: 5,
            retries: 7,
            ..Default::default()
        };
        let request = Healthcheck {
            interval: 9,
            ..Default::default()
        };
        let merged = merge(Some(request), Some(&image)).unwrap();
        assert_eq!(
            (merged.test, merged.interval, merged.retries),
            (s(&["CMD", "true"]), 9, 7)
        );
        let none = Healthcheck {
            test: s(&["NONE"]),
            ..Default::default()
        };
        assert!(effective(merge(Some(none), Some(&image)).as_ref()).is_none());
    }
}
