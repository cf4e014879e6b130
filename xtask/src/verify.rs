//! `cargo xtask verify`: proves the grading is honest.
//!
//! The workspace is built once with every exercise behind a run-time switch
//! (`regions::stub_switchable`: `COURSE_STUBS=1.3` makes exercise 1.3 behave
//! as its stub), so each check below is a run of already built test
//! binaries, not a rebuild:
//!
//! - (0) Every exercise has graded tests, every graded test names an
//!   exercise, every `builds on:` names an earlier exercise; the solution
//!   passes every graded test, none skipped.
//! - (a) Each exercise stubbed alone: every one of its tests fails.
//! - (b) Each chapter stubbed whole: its main experiment fails with the
//!   line that names its first exercise; solved, the experiment works.
//! - (c) With every exercise after j stubbed, j's tests pass: no test needs
//!   an exercise that comes after its own.
//! - (d) The learner workspace (`cargo xtask student`) compiles without a
//!   warning, its chapter 01 experiment names exercise 1.1, and its book
//!   builds; no exercise's solution shows in it, and in the reference book
//!   solutions appear only folded (inside `<details>`).

use crate::regions::{self, Exercise};
use crate::{cargo, chapters, run, workspace};
use anyhow::{bail, ensure, Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// A graded test: its name, and the test binary that holds it.
struct Graded {
    name: String,
    exe: PathBuf,
}

pub fn verify() -> Result<()> {
    ensure!(
        nix::unistd::geteuid().is_root(),
        "verify needs root: the graded tests must run, not skip (sudo -E cargo xtask verify)"
    );
    let started = Instant::now();
    let root = testkit::workspace_root();
    let exercises = regions::find_all(&root.join("chapters"))?;
    check_dependencies(&exercises)?;
    let scratch = root.join("target/xtask");
    std::env::set_var(testkit::fixture::DIR_ENV, testkit::fixture::fixture_dir());
    testkit::fixture::build()?;

    let phase = |name: &str, since: Instant| {
        eprintln!("verify: {name} took {:.0?}", since.elapsed());
    };

    let t = Instant::now();
    let ws = scratch.join("switch");
    let _ = std::fs::remove_dir_all(&ws);
    workspace::copy(&root, &ws)?;
    workspace::stub_switchable_in_place(&ws, &exercises, &root)?;
    let target = scratch.join("target-switch");
    let executables = build_tests(&ws, &target)?;
    let tests = list_graded(&executables)?;
    phase("the switchable build", t);

    let mut problems = Vec::new();
    let by_exercise = tests_by_exercise(&exercises, &tests, &mut problems);

    let t = Instant::now();
    for chapter in chapters::list(&root)? {
        let all: Vec<&Graded> = exercises
            .iter()
            .filter(|e| e.chapter() == chapter.number)
            .flat_map(|e| by_exercise[&e.id].iter().copied())
            .collect();
        let since = Instant::now();
        let results = run_tests(&all, None)?;
        let mut failed = 0;
        for t in &all {
            if results.get(&t.name) != Some(&true) {
                failed += 1;
                problems.push(format!("the solution fails {}", t.name));
            }
        }
        eprintln!(
            "solution: chapter {:02}: {}/{} graded tests pass ({:.0?})",
            chapter.number,
            all.len() - failed,
            all.len(),
            since.elapsed()
        );
    }
    phase("the solution's graded tests", t);
    if !problems.is_empty() {
        bail!("the solution is not gradable:\n  {}", problems.join("\n  "));
    }

    let t = Instant::now();
    for ex in &exercises {
        let mine = &by_exercise[&ex.id];
        let results = run_tests(mine, Some(&ex.id))?;
        let passing: Vec<&str> = mine
            .iter()
            .filter(|t| results.get(&t.name) == Some(&true))
            .map(|t| t.name.as_str())
            .collect();
        eprintln!(
            "(a) exercise {:<5} stubbed: {}/{} of its tests fail",
            ex.id,
            mine.len() - passing.len(),
            mine.len()
        );
        for name in passing {
            problems.push(format!(
                "(a) exercise {}: {name} passes with the stub, so it grades nothing",
                ex.id
            ));
        }
    }
    phase("(a) each exercise stubbed alone", t);

    let t = Instant::now();
    for pair in exercises.windows(2) {
        let (ex, next) = (&pair[0], &pair[1]);
        let mine = &by_exercise[&ex.id];
        let stubs = format!("{}+", next.id);
        let results = run_tests(mine, Some(&stubs))?;
        for t in mine {
            if results.get(&t.name) != Some(&true) {
                problems.push(format!(
                    "(c) exercise {}: {} fails with {} and later stubbed: it needs a later exercise",
                    ex.id, t.name, next.id
                ));
            }
        }
    }
    phase("(c) every exercise with the later ones stubbed", t);

    let t = Instant::now();
    let experiments = crate::experiments::Experiments::prepare(&ws, &target)?;
    for chapter in chapters::list(&root)? {
        let Some(first) = exercises.iter().find(|e| e.chapter() == chapter.number) else {
            continue;
        };
        let stubbed = experiments.run(chapter.number, Some(&format!("{}.*", chapter.number)))?;
        let line = chapter_01::course::unsolved_line(&first.id);
        if stubbed.success || !stubbed.output.contains(&line) {
            problems.push(format!(
                "(b) chapter {:02} stubbed: its experiment should fail with {line:?}; it {} and said:\n{}",
                chapter.number,
                if stubbed.success { "succeeded" } else { "failed" },
                stubbed.output
            ));
        }
        let solved = experiments.run(chapter.number, None)?;
        if !solved.success {
            problems.push(format!(
                "(b) chapter {:02} solved: its experiment fails:\n{}",
                chapter.number, solved.output
            ));
        }
        eprintln!(
            "(b) chapter {:02}: stubbed it says {:?}; solved it works",
            chapter.number,
            stubbed
                .output
                .lines()
                .find(|l| l.contains("not solved"))
                .unwrap_or("?")
        );
    }
    drop(experiments);
    phase("(b) each chapter's experiment, stubbed and solved", t);

    // A CI machine's disk may be small: the switchable build is done with.
    free_in_ci(&[&ws, &target]);

    let t = Instant::now();
    problems.extend(check_learner_workspace(&root, &scratch, &exercises)?);
    phase("(d) the learner workspace and the books", t);
    free_in_ci(&[&scratch.join("student"), &scratch.join("target-student")]);

    if !problems.is_empty() {
        bail!("grading is not honest:\n  {}", problems.join("\n  "));
    }
    eprintln!(
        "verify: {} exercises, {} graded tests; (a)-(d) hold; {:.0?} in all",
        exercises.len(),
        tests.len(),
        started.elapsed()
    );
    Ok(())
}

/// Every `builds on:` names an exercise that exists and comes earlier.
fn check_dependencies(exercises: &[Exercise]) -> Result<()> {
    let ids: BTreeSet<&str> = exercises.iter().map(|e| e.id.as_str()).collect();
    let mut problems = Vec::new();
    for ex in exercises {
        for dep in &ex.builds_on {
            if !ids.contains(dep.as_str()) {
                problems.push(format!(
                    "exercise {} builds on {dep}, which does not exist",
                    ex.id
                ));
            } else if regions::sort_key(dep) >= regions::sort_key(&ex.id) {
                problems.push(format!(
                    "exercise {} builds on {dep}, which is not earlier",
                    ex.id
                ));
            }
        }
    }
    if !problems.is_empty() {
        bail!("{}", problems.join("\n"));
    }
    Ok(())
}

/// Removes scratch workspaces and their builds under CI, where nothing
/// reuses them; on a learner's machine they make the next verify faster.
fn free_in_ci(dirs: &[&Path]) {
    if std::env::var_os("CI").is_some_and(|v| v == "true") {
        for dir in dirs {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Builds every test target of the workspace at `ws` (and so its binaries);
/// returns the test executables.
fn build_tests(ws: &Path, target: &Path) -> Result<Vec<PathBuf>> {
    let out = cargo()
        .current_dir(ws)
        .args([
            "test",
            "--workspace",
            "--tests",
            "--no-run",
            "--message-format=json-render-diagnostics",
        ])
        .env("CARGO_TARGET_DIR", target)
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("building the switchable workspace's tests")?;
    ensure!(
        out.status.success(),
        "the switchable workspace does not build (see above)"
    );
    let mut exes = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let is_test = msg["profile"]["test"] == true;
        let from_chapter = msg["package_id"]
            .as_str()
            .is_some_and(|p| p.contains("chapter-0") || p.contains("chapter_0"));
        if let (true, true, Some(exe)) = (is_test, from_chapter, msg["executable"].as_str()) {
            exes.push(PathBuf::from(exe));
        }
    }
    exes.sort();
    exes.dedup();
    ensure!(!exes.is_empty(), "no test executables were built");
    Ok(exes)
}

/// Whether a test name is a graded one: `exN_M_…`.
pub fn exercise_of(name: &str) -> Option<String> {
    let rest = name.strip_prefix("ex")?;
    let mut parts = rest.splitn(3, '_');
    let (c, n) = (parts.next()?, parts.next()?);
    parts.next()?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (digits(c) && digits(n)).then(|| format!("{c}.{n}"))
}

fn list_graded(exes: &[PathBuf]) -> Result<Vec<Graded>> {
    let mut out = Vec::new();
    for exe in exes {
        let listed = Command::new(exe)
            .args(["--list", "--format", "terse"])
            .output()
            .with_context(|| format!("listing the tests of {}", exe.display()))?;
        for line in String::from_utf8_lossy(&listed.stdout).lines() {
            if let Some(name) = line.strip_suffix(": test") {
                if exercise_of(name).is_some() {
                    out.push(Graded {
                        name: name.to_string(),
                        exe: exe.clone(),
                    });
                }
            }
        }
    }
    Ok(out)
}

fn tests_by_exercise<'a>(
    exercises: &[Exercise],
    tests: &'a [Graded],
    problems: &mut Vec<String>,
) -> BTreeMap<String, Vec<&'a Graded>> {
    let mut map: BTreeMap<String, Vec<&Graded>> = exercises
        .iter()
        .map(|e| (e.id.clone(), Vec::new()))
        .collect();
    for t in tests {
        let id = exercise_of(&t.name).expect("listed as graded");
        match map.get_mut(&id) {
            Some(list) => list.push(t),
            None => problems.push(format!("graded test {} names no exercise ({id})", t.name)),
        }
    }
    for (id, list) in &map {
        if list.is_empty() {
            problems.push(format!(
                "exercise {id} has no graded test (names start with ex{}_)",
                id.replace('.', "_")
            ));
        }
    }
    map
}

/// The longest one run of a test binary may take: a stub can leave a test
/// waiting for something that never comes; such a run counts as failed.
const RUN_LIMIT: std::time::Duration = std::time::Duration::from_secs(300);

/// Runs `cmd` to its end, or kills it (and its process group) after `limit`.
fn output_within(cmd: &mut Command, limit: std::time::Duration) -> Result<std::process::Output> {
    use std::io::Read;
    use std::os::unix::process::CommandExt;
    let mut child = cmd
        .process_group(0)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let (mut out, mut err) = (
        child.stdout.take().expect("piped"),
        child.stderr.take().expect("piped"),
    );
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out.read_to_end(&mut buf);
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            eprintln!("verify: a test run took over {limit:?}: killed, its tests count as failed");
            // SAFETY: SIGKILL to the process group of the child we started.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            break child.wait()?;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    // What the tests started and left behind in the group goes with it (a
    // process still holding the output pipe would keep the readers waiting).
    // SAFETY: SIGKILL to the process group of the child we started.
    unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
    Ok(std::process::Output {
        status,
        stdout: reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    })
}

/// Runs `tests` (each in its binary, exact names), with `stubs` in
/// `COURSE_STUBS`; returns name → passed.
fn run_tests(tests: &[&Graded], stubs: Option<&str>) -> Result<BTreeMap<String, bool>> {
    let mut by_exe: BTreeMap<&Path, Vec<&str>> = BTreeMap::new();
    for t in tests {
        by_exe.entry(&t.exe).or_default().push(&t.name);
    }
    let mut results = BTreeMap::new();
    for (exe, names) in by_exe {
        let mut cmd = Command::new(exe);
        cmd.arg("--exact")
            .args(&names)
            .env_remove(testkit::SKIP_LOG_ENV)
            .env("RUST_BACKTRACE", "0");
        match stubs {
            Some(s) => cmd.env("COURSE_STUBS", s),
            None => cmd.env_remove("COURSE_STUBS"),
        };
        let out = output_within(&mut cmd, RUN_LIMIT)
            .with_context(|| format!("running {}", exe.display()))?;
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let Some(rest) = line.strip_prefix("test ") else {
                continue;
            };
            if let Some((name, verdict)) = rest.rsplit_once(" ... ") {
                results.insert(name.to_string(), verdict.trim() == "ok");
            }
        }
        // A crash before a test reported: its tests count as failed.
        for name in names {
            results.entry(name.to_string()).or_insert(false);
        }
        for dir in testkit::janitor::sweep_test_cgroups() {
            eprintln!("cleaned up a cgroup a test left behind: {}", dir.display());
        }
    }
    Ok(results)
}

/// (d): the learner workspace builds without warnings, names 1.1 when run,
/// and its book builds without showing a solution; the reference book shows
/// solutions only folded.
fn check_learner_workspace(
    root: &Path,
    scratch: &Path,
    exercises: &[Exercise],
) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    let student = scratch.join("student");
    let _ = std::fs::remove_dir_all(&student);
    workspace::copy(root, &student)?;
    let all: Vec<&Exercise> = exercises.iter().collect();
    workspace::stub_in_place(&student, &all, root)?;
    let target = scratch.join("target-student");
    run(cargo()
        .current_dir(&student)
        .args(["build", "--quiet", "--workspace", "--all-targets"])
        .env("CARGO_TARGET_DIR", &target)
        .env("RUSTFLAGS", "-D warnings"))
    .context("(d) the learner workspace must compile without warnings")?;
    let out = Command::new(target.join("debug/chapter-01"))
        .args(["run", "--rootfs"])
        .arg(testkit::fixture::rootfs())
        .args(["--", "/bin/true"])
        .output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    let line = chapter_01::course::unsolved_line("1.1");
    if out.status.success() || err.trim() != line {
        problems.push(format!(
            "(d) a fresh learner workspace's chapter 01 experiment should say only {line:?}; it said {err:?}"
        ));
    }
    let solutions = solution_lines(exercises)?;
    let (learner_book, reference_book) =
        (scratch.join("book-student"), scratch.join("book-reference"));
    for (src, dest) in [
        (student.join("book"), &learner_book),
        (root.join("book"), &reference_book),
    ] {
        run(Command::new("mdbook")
            .arg("build")
            .arg(&src)
            .arg("--dest-dir")
            .arg(dest))
        .with_context(|| format!("(d) building the book at {}", src.display()))?;
    }
    let learner_html = html_of(&learner_book)?;
    let reference_html = html_of(&reference_book)?;
    for (id, line) in &solutions {
        if learner_html.iter().any(|(_, h)| h.contains(line.as_str())) {
            problems.push(format!(
                "(d) the learner's book shows exercise {id}'s solution: {line:?}"
            ));
        }
        for (page, html) in &reference_html {
            if unfolded(html).contains(line.as_str()) {
                problems.push(format!(
                    "(d) {page} shows exercise {id}'s solution unfolded: {line:?}"
                ));
            }
        }
    }
    Ok(problems)
}

/// Lines of each solution that would give it away (long enough to be
/// distinctive), HTML-escaped as mdBook writes code.
fn solution_lines(exercises: &[Exercise]) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for ex in exercises {
        let src = std::fs::read_to_string(&ex.file)?;
        let body = &src[ex.body.clone()];
        for line in body.lines() {
            let t = line.trim();
            if t.len() >= 30 && !t.starts_with("//") {
                let escaped = t
                    .replace('&', "&amp;")
                    .replace('<', "&lt;")
                    .replace('>', "&gt;")
                    .replace('"', "&quot;");
                out.push((ex.id.clone(), escaped));
            }
        }
    }
    Ok(out)
}

fn html_of(dir: &Path) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        // print.html repeats every page.
        if name.ends_with(".html") && name != "print.html" {
            out.push((name, std::fs::read_to_string(&path)?));
        }
    }
    Ok(out)
}

/// The page with everything inside `<details>…</details>` taken out.
fn unfolded(html: &str) -> String {
    let mut out = String::new();
    let mut rest = html;
    while let Some(start) = rest.find("<details") {
        out.push_str(&rest[..start]);
        match rest[start..].find("</details>") {
            Some(end) => rest = &rest[start + end + "</details>".len()..],
            None => return out,
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn graded_names_carry_their_exercise() {
        assert_eq!(super::exercise_of("ex1_12_pivot"), Some("1.12".into()));
        assert_eq!(super::exercise_of("ex6_3_x"), Some("6.3".into()));
        assert_eq!(super::exercise_of("experiments_walk"), None);
        assert_eq!(super::exercise_of("ex1_"), None);
    }

    #[test]
    fn details_are_taken_out() {
        assert_eq!(
            super::unfolded("a<details><summary>s</summary>x</details>b<details open>y</details>c"),
            "abc"
        );
    }
}
