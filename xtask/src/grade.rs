//! `cargo xtask grade`: run each chapter's graded tests and show, per
//! exercise, how many of its tests pass, and which exercise is next.

use crate::chapters;
use crate::regions::{self, Exercise};
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    Failed,
    /// Passed only because it skipped (not root).
    Skipped,
}

pub struct TestRun {
    /// False when the tests did not even compile.
    pub compiled: bool,
    /// The test process ended in failure (a failed test, or a crash).
    pub failed: bool,
    pub results: BTreeMap<String, Outcome>,
    pub output: String,
}

/// Runs `cargo test -p PACKAGE --tests [FILTER]` in `workspace`: graded
/// tests live in any test file; their names start with their exercise id.
pub fn run_graded(
    workspace: &Path,
    package: &str,
    filter: Option<&str>,
    target_dir: Option<&Path>,
) -> Result<TestRun> {
    let skips = tempfile_path("skipped");
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(workspace)
        .args([
            "test",
            "--quiet",
            "-p",
            package,
            "--tests",
            "--no-fail-fast",
            "--",
        ])
        .arg("--format=pretty")
        .env(testkit::SKIP_LOG_ENV, &skips);
    if let Some(f) = filter {
        cmd.arg(f);
    }
    if let Some(t) = target_dir {
        cmd.env("CARGO_TARGET_DIR", t);
    }
    let out = cmd
        .output()
        .with_context(|| format!("running the graded tests of {package}"))?;
    // Whatever the graded code did (or failed to clean up), leave nothing.
    if nix::unistd::geteuid().is_root() {
        for dir in testkit::janitor::sweep_test_cgroups() {
            eprintln!(
                "cleaned up a cgroup the tests left behind: {}",
                dir.display()
            );
        }
    }
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let skipped = std::fs::read_to_string(&skips).unwrap_or_default();
    let _ = std::fs::remove_file(&skips);
    let mut results = BTreeMap::new();
    for line in stdout.lines() {
        let Some(rest) = line.strip_prefix("test ") else {
            continue;
        };
        let Some((name, verdict)) = rest.rsplit_once(" ... ") else {
            continue;
        };
        let outcome = match verdict.trim() {
            // A skip is logged by name, maybe followed by its reason.
            "ok" if skipped
                .lines()
                .any(|s| s == name || s.starts_with(&format!("{name} "))) =>
            {
                Outcome::Skipped
            }
            "ok" => Outcome::Passed,
            "FAILED" => Outcome::Failed,
            _ => continue,
        };
        results.insert(name.to_string(), outcome);
    }
    let compiled = !stderr.contains("error: could not compile") && !stderr.contains("error[E");
    Ok(TestRun {
        compiled,
        failed: !out.status.success(),
        results,
        output: format!("{stdout}\n{stderr}"),
    })
}

fn tempfile_path(what: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "xtask-{what}-{}-{}",
        std::process::id(),
        rand_suffix()
    ))
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// The tests of `run` that grade `ex`.
pub fn tests_of<'a>(run: &'a TestRun, ex: &Exercise) -> Vec<(&'a str, Outcome)> {
    let prefix = ex.test_prefix();
    run.results
        .iter()
        .filter(|(name, _)| name.starts_with(&prefix))
        .map(|(n, o)| (n.as_str(), *o))
        .collect()
}

/// Like [`tests_of`], but every name in `expected` that has no result in a
/// run that ended in failure counts as failed: the test binary crashed (a
/// panic inside a panic aborts it) before the test could report.
pub fn outcomes_of(run: &TestRun, expected: &[String]) -> Vec<(String, Outcome)> {
    expected
        .iter()
        .filter_map(|name| match run.results.get(name) {
            Some(o) => Some((name.clone(), *o)),
            None if run.failed => Some((name.clone(), Outcome::Failed)),
            None => None,
        })
        .collect()
}

pub fn grade(only: Option<u32>) -> Result<()> {
    let root = testkit::workspace_root();
    let exercises = regions::find_all(&root.join("chapters"))?;
    let mut next: Option<&Exercise> = None;
    let mut any_skipped = false;
    for chapter in chapters::list(&root)? {
        if only.is_some_and(|n| n != chapter.number) {
            continue;
        }
        let mine: Vec<&Exercise> = exercises
            .iter()
            .filter(|e| e.chapter() == chapter.number)
            .collect();
        if mine.is_empty() {
            continue;
        }
        let run = run_graded(&root, &chapter.package, None, None)?;
        if !run.compiled {
            println!(
                "chapter {:02} ({}): does not compile yet\n{}",
                chapter.number, chapter.topic, run.output
            );
            next = next.or(mine.first().copied());
            continue;
        }
        let done = mine
            .iter()
            .filter(|ex| {
                let t = tests_of(&run, ex);
                !t.is_empty() && t.iter().all(|(_, o)| *o == Outcome::Passed)
            })
            .count();
        println!(
            "chapter {:02}: {:<40} {done}/{} exercises",
            chapter.number,
            chapter.topic,
            mine.len()
        );
        for ex in mine {
            let t = tests_of(&run, ex);
            let passed = t.iter().filter(|(_, o)| *o == Outcome::Passed).count();
            let skipped = t.iter().filter(|(_, o)| *o == Outcome::Skipped).count();
            any_skipped |= skipped > 0;
            let mark = match (passed == t.len() && !t.is_empty(), skipped) {
                (true, _) => "done",
                (false, s) if s > 0 && passed + s == t.len() => "skip",
                _ => "todo",
            };
            if mark != "done" && next.is_none() {
                next = Some(ex);
            }
            let title: String = ex.title.chars().take(60).collect();
            println!(
                "  [{mark}] {:<5} {title:<62} {passed}/{} tests",
                ex.id,
                t.len()
            );
        }
    }
    if any_skipped {
        println!("\nsome tests were skipped: they need root. Run `sudo -E cargo xtask grade` to grade them.");
    }
    match next {
        Some(ex) => println!(
            "\nnext: exercise {} — {}\n      cargo xtask hint {}   |   cargo test -p chapter-{:02} --test graded {}",
            ex.id,
            ex.title,
            ex.id,
            ex.chapter(),
            ex.test_prefix()
        ),
        None => println!("\nevery exercise passes. On to the next chapter of the book."),
    }
    Ok(())
}
