//! `cargo xtask grade [ID | CHAPTER]`: run the graded tests of one
//! exercise, one chapter, or all, and show the scoreboard: per exercise how
//! many of its tests pass, what it builds on, and which exercise is next.
//!
//! Progress is kept in the workspace (`.course/progress.json`): an exercise
//! that passed is not run again until a file it depends on changes (its
//! own, those of the exercises it builds on, earlier chapters', its
//! chapter's tests). So after the first run, grading one exercise takes
//! seconds: its crate's incremental build and its own tests.

use crate::chapters;
use crate::regions::{self, Exercise};
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
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
    pub results: BTreeMap<String, Outcome>,
    pub output: String,
}

/// Runs `cargo test -p PACKAGE --tests [FILTERS]` in `workspace`: graded
/// tests live in any test file; their names start with their exercise id.
pub fn run_graded(workspace: &Path, package: &str, filters: &[String]) -> Result<TestRun> {
    let skips = std::env::temp_dir().join(format!(
        "xtask-skipped-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
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
        .args(filters)
        .env(testkit::SKIP_LOG_ENV, &skips)
        .env("RUST_BACKTRACE", "0");
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
        results,
        output: format!("{stdout}\n{stderr}"),
    })
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

/// Every exercise `ex` builds on, directly or through others, and every
/// exercise of the earlier chapters (their code runs under this one's).
pub fn foundations<'a>(ex: &Exercise, all: &'a [Exercise]) -> Vec<&'a Exercise> {
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    let mut stack: Vec<&str> = ex.builds_on.iter().map(String::as_str).collect();
    while let Some(id) = stack.pop() {
        if seen.insert(id) {
            if let Some(dep) = all.iter().find(|e| e.id == id) {
                stack.extend(dep.builds_on.iter().map(String::as_str));
            }
        }
    }
    let mut out: Vec<&Exercise> = all
        .iter()
        .filter(|e| seen.contains(e.id.as_str()) || e.chapter() < ex.chapter())
        .collect();
    out.sort_by_key(|e| regions::sort_key(&e.id));
    out
}

/// "1.1–1.15, 2.3": ids, consecutive runs of one chapter joined.
pub fn id_ranges(ids: &[&Exercise], all: &[Exercise]) -> String {
    let position = |id: &str| all.iter().position(|e| e.id == id).unwrap_or(0);
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < ids.len() {
        let mut j = i;
        while j + 1 < ids.len()
            && ids[j + 1].chapter() == ids[i].chapter()
            && position(&ids[j + 1].id) == position(&ids[j].id) + 1
        {
            j += 1;
        }
        parts.push(if j > i {
            format!("{}–{}", ids[i].id, ids[j].id)
        } else {
            ids[i].id.clone()
        });
        i = j + 1;
    }
    parts.join(", ")
}

/// A hash of what an exercise's result depends on.
fn fingerprint(root: &Path, ex: &Exercise, all: &[Exercise]) -> String {
    let mut files: BTreeSet<PathBuf> = BTreeSet::new();
    files.insert(ex.file.clone());
    for dep in foundations(ex, all) {
        files.insert(dep.file.clone());
    }
    if let Some(chapter) = chapters::list(root)
        .ok()
        .and_then(|l| l.into_iter().find(|c| c.number == ex.chapter()))
    {
        if let Ok(entries) = std::fs::read_dir(chapter.dir.join("tests")) {
            for e in entries.flatten() {
                files.insert(e.path());
            }
        }
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for f in files {
        f.hash(&mut h);
        std::fs::read(&f).unwrap_or_default().hash(&mut h);
    }
    format!("{:016x}", h.finish())
}

/// `.course/progress.json`: per exercise, its fingerprint when it last
/// passed; and how many hints of it were shown.
pub struct Progress {
    path: PathBuf,
    data: Value,
}

impl Progress {
    pub fn load(root: &Path) -> Progress {
        let path = root.join(".course/progress.json");
        let data = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_else(|| json!({"passed": {}, "hints": {}}));
        Progress { path, data }
    }

    pub fn save(&self) -> Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = self.path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(&self.data)?)?;
        std::fs::rename(&tmp, &self.path)?;
        Ok(())
    }

    fn passed_at(&self, id: &str) -> Option<&str> {
        self.data["passed"][id].as_str()
    }

    fn set_passed(&mut self, id: &str, fingerprint: Option<String>) {
        let passed = self.data["passed"].as_object_mut().expect("an object");
        match fingerprint {
            Some(f) => {
                passed.insert(id.to_string(), f.into());
            }
            None => {
                passed.remove(id);
            }
        }
    }

    pub fn hints_shown(&self, id: &str) -> usize {
        self.data["hints"][id].as_u64().unwrap_or(0) as usize
    }

    pub fn set_hints_shown(&mut self, id: &str, n: usize) {
        if let Some(h) = self.data["hints"].as_object_mut() {
            h.insert(id.to_string(), n.into());
        }
    }
}

/// What `grade` was asked to grade.
enum Scope {
    All,
    Chapter(u32),
    Exercise(String),
}

fn scope_of(arg: Option<&str>, exercises: &[Exercise]) -> Result<Scope> {
    let Some(arg) = arg else {
        return Ok(Scope::All);
    };
    if arg.contains('.') {
        if !exercises.iter().any(|e| e.id == arg) {
            let ids: Vec<&str> = exercises.iter().map(|e| e.id.as_str()).collect();
            bail!("no exercise {arg:?}; the exercises are {}", ids.join(", "));
        }
        return Ok(Scope::Exercise(arg.to_string()));
    }
    match arg.parse::<u32>() {
        Ok(n) if exercises.iter().any(|e| e.chapter() == n) => Ok(Scope::Chapter(n)),
        _ => bail!("grade takes an exercise (1.3), a chapter number (2), or nothing for all"),
    }
}

pub fn grade(arg: Option<&str>) -> Result<()> {
    let root = testkit::workspace_root();
    let exercises = regions::find_all(&root.join("chapters"))?;
    let scope = scope_of(arg, &exercises)?;
    let mut progress = Progress::load(&root);
    let wanted = |ex: &Exercise| match &scope {
        Scope::All => true,
        Scope::Chapter(n) => ex.chapter() == *n,
        Scope::Exercise(id) => ex.id == *id,
    };
    let mut status: BTreeMap<String, (usize, usize, usize, bool)> = BTreeMap::new();
    let mut any_skipped = false;
    for chapter in chapters::list(&root)? {
        let mine: Vec<&Exercise> = exercises
            .iter()
            .filter(|e| e.chapter() == chapter.number && wanted(e))
            .collect();
        if mine.is_empty() {
            continue;
        }
        let prints: BTreeMap<&str, String> = mine
            .iter()
            .map(|e| (e.id.as_str(), fingerprint(&root, e, &exercises)))
            .collect();
        // Exercises that passed and whose files did not change are not run.
        let to_run: Vec<&Exercise> = mine
            .iter()
            .copied()
            .filter(|e| progress.passed_at(&e.id) != Some(prints[e.id.as_str()].as_str()))
            .collect();
        let run = if to_run.is_empty() {
            None
        } else {
            let filters: Vec<String> = to_run.iter().map(|e| e.test_prefix()).collect();
            Some(run_graded(&root, &chapter.package, &filters)?)
        };
        if let Some(r) = &run {
            if !r.compiled {
                println!(
                    "chapter {:02} ({}): does not compile yet\n{}",
                    chapter.number, chapter.topic, r.output
                );
                for ex in &to_run {
                    progress.set_passed(&ex.id, None);
                    status.insert(ex.id.clone(), (0, 0, 0, false));
                }
            }
        }
        for ex in &mine {
            let cached = !to_run.iter().any(|e| e.id == ex.id);
            let (passed, skipped, total) = match (&run, cached) {
                (_, true) => (1, 0, 1),
                (Some(r), false) if r.compiled => {
                    let t = tests_of(r, ex);
                    let p = t.iter().filter(|(_, o)| *o == Outcome::Passed).count();
                    let s = t.iter().filter(|(_, o)| *o == Outcome::Skipped).count();
                    (p, s, t.len())
                }
                _ => (0, 0, 1),
            };
            any_skipped |= skipped > 0;
            let done = total > 0 && passed == total;
            if !cached {
                progress.set_passed(&ex.id, done.then(|| prints[ex.id.as_str()].clone()));
            }
            status.insert(ex.id.clone(), (passed, skipped, total, cached));
        }
        let done = mine
            .iter()
            .filter(|e| matches!(status[&e.id], (p, _, t, _) if t > 0 && p == t))
            .count();
        println!(
            "chapter {:02}: {:<40} {done}/{} exercises",
            chapter.number,
            chapter.topic,
            mine.len()
        );
        for ex in &mine {
            let (passed, skipped, total, cached) = status[&ex.id];
            let mark = if total > 0 && passed == total {
                "done"
            } else if skipped > 0 && passed + skipped == total {
                "skip"
            } else {
                "todo"
            };
            let title: String = ex.title.chars().take(60).collect();
            let tests = if cached {
                "passed before, unchanged".to_string()
            } else {
                format!("{passed}/{total} tests")
            };
            println!("  [{mark}] {:<5} {title:<62} {tests}", ex.id);
            if mark == "todo" {
                let unsolved: Vec<&Exercise> = foundations(ex, &exercises)
                    .into_iter()
                    .filter(|d| progress.passed_at(&d.id).is_none())
                    .collect();
                if !unsolved.is_empty() {
                    println!(
                        "         {} runs your {}: solve those first",
                        ex.id,
                        id_ranges(&unsolved, &exercises)
                    );
                }
            }
        }
    }
    progress.save()?;
    if any_skipped {
        println!("\nsome tests were skipped: they need root (they say why). Run `sudo -E cargo xtask grade` to grade them.");
    }
    let next = exercises
        .iter()
        .find(|e| progress.passed_at(&e.id).is_none());
    match next {
        Some(ex) => println!(
            "\nnext: exercise {} — {}\n      cargo xtask hint {}   |   cargo xtask grade {}",
            ex.id, ex.title, ex.id, ex.id
        ),
        None => {
            println!("\nevery exercise passes: your engine is whole. See the book's last page.")
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(id: &str, deps: &[&str]) -> Exercise {
        Exercise {
            id: id.into(),
            title: String::new(),
            builds_on: deps.iter().map(|d| d.to_string()).collect(),
            hints: vec![],
            file: PathBuf::from(format!("{id}.rs")),
            line: 1,
            body: 0..0,
            indent: String::new(),
        }
    }

    #[test]
    fn foundations_follow_builds_on_and_take_every_earlier_chapter() {
        let all = vec![
            ex("1.1", &[]),
            ex("1.2", &["1.1"]),
            ex("1.3", &[]),
            ex("2.1", &[]),
            ex("2.2", &["2.1"]),
            ex("2.3", &["2.2"]),
        ];
        let ids = |v: Vec<&Exercise>| v.iter().map(|e| e.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(foundations(&all[1], &all)), ["1.1"]);
        assert_eq!(
            ids(foundations(&all[5], &all)),
            ["1.1", "1.2", "1.3", "2.1", "2.2"]
        );
        let f = foundations(&all[5], &all);
        assert_eq!(id_ranges(&f, &all), "1.1–1.3, 2.1–2.2");
    }
}
