//! `cargo xtask verify`: proves the grading is honest.
//!
//! 1. Every exercise has graded tests, and every graded test belongs to an
//!    exercise.
//! 2. The reference solution passes every graded test, none skipped.
//! 3. The learner workspace (everything stubbed) compiles.
//! 4. For each exercise alone: stub only its region, and every one of its
//!    tests must fail. A test that still passes would grade nothing.

use crate::grade::{outcomes_of, run_graded, tests_of, Outcome, TestRun};
use crate::regions::{self, Exercise};
use crate::{cargo, chapters, run, workspace};
use anyhow::{bail, ensure, Result};
use std::collections::BTreeMap;

pub fn verify() -> Result<()> {
    ensure!(
        nix::unistd::geteuid().is_root(),
        "verify needs root: the graded tests must run, not skip (sudo -E cargo xtask verify)"
    );
    let root = testkit::workspace_root();
    let exercises = regions::find_all(&root.join("chapters"))?;
    let scratch = root.join("target/xtask");
    let target = scratch.join("target");
    // One fixture image for every copy of the workspace.
    std::env::set_var(testkit::fixture::DIR_ENV, testkit::fixture::fixture_dir());
    testkit::fixture::build()?;

    let mut problems = Vec::new();
    let mut solutions: BTreeMap<u32, TestRun> = BTreeMap::new();
    for chapter in chapters::list(&root)? {
        let mine: Vec<&Exercise> = exercises
            .iter()
            .filter(|e| e.chapter() == chapter.number)
            .collect();
        if mine.is_empty() {
            continue;
        }
        eprintln!(
            "chapter {:02}: {} exercises; running the solution's graded tests",
            chapter.number,
            mine.len()
        );
        let solution = run_graded(&root, &chapter.package, None, None)?;
        ensure!(
            solution.compiled,
            "chapter {:02} does not compile:\n{}",
            chapter.number,
            solution.output
        );
        for (name, outcome) in &solution.results {
            if *outcome != Outcome::Passed {
                problems.push(format!("solution: {name} is {outcome:?}"));
            }
            if !mine.iter().any(|e| name.starts_with(&e.test_prefix())) {
                problems.push(format!(
                    "graded test {name} names no exercise (names start with exN_M_)"
                ));
            }
        }
        for ex in &mine {
            if tests_of(&solution, ex).is_empty() {
                problems.push(format!(
                    "exercise {} has no graded test named {}*",
                    ex.id,
                    ex.test_prefix()
                ));
            }
        }
        solutions.insert(chapter.number, solution);
    }
    if !problems.is_empty() {
        bail!("the solution is not gradable:\n  {}", problems.join("\n  "));
    }

    eprintln!("writing the learner workspace and compiling it");
    let student = scratch.join("student");
    let _ = std::fs::remove_dir_all(&student);
    workspace::copy(&root, &student)?;
    let all: Vec<&Exercise> = exercises.iter().collect();
    workspace::stub_in_place(&student, &all, &root)?;
    run(cargo()
        .current_dir(&student)
        .args(["build", "--quiet", "--workspace", "--all-targets"])
        .env("CARGO_TARGET_DIR", &target)
        .env("RUSTFLAGS", "-A warnings"))?;

    let ws = scratch.join("one-stub");
    let _ = std::fs::remove_dir_all(&ws);
    workspace::copy(&root, &ws)?;
    for chapter in chapters::list(&root)? {
        for ex in exercises.iter().filter(|e| e.chapter() == chapter.number) {
            let rel = ex.file.strip_prefix(&root)?;
            workspace::stub_in_place(&ws, &[ex], &root)?;
            let run = run_graded(
                &ws,
                &chapter.package,
                Some(&ex.test_prefix()),
                Some(&target),
            )?;
            std::fs::copy(&ex.file, ws.join(rel))?;
            if !run.compiled {
                problems.push(format!(
                    "exercise {}: stubbing it breaks compilation:\n{}",
                    ex.id, run.output
                ));
                continue;
            }
            let expected: Vec<String> = tests_of(&solutions[&chapter.number], ex)
                .iter()
                .map(|(n, _)| n.to_string())
                .collect();
            let tests = outcomes_of(&run, &expected);
            let still_passing: Vec<&str> = tests
                .iter()
                .filter(|(_, o)| *o != Outcome::Failed)
                .map(|(n, _)| n.as_str())
                .collect();
            eprintln!(
                "exercise {:<5} stubbed: {}/{} of its tests fail",
                ex.id,
                tests.len() - still_passing.len(),
                tests.len()
            );
            if tests.is_empty() {
                problems.push(format!("exercise {}: no test ran with the stub", ex.id));
            }
            for name in still_passing {
                problems.push(format!(
                    "exercise {}: {name} passes with the stub, so it grades nothing",
                    ex.id
                ));
            }
        }
    }
    if !problems.is_empty() {
        bail!("grading is not honest:\n  {}", problems.join("\n  "));
    }
    eprintln!("verify: the solution passes, the learner workspace compiles, every exercise's tests fail on its stub");
    Ok(())
}
