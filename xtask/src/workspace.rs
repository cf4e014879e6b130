//! Copies of the workspace: the learner's (every exercise stubbed) and the
//! scratch copy `verify` stubs one exercise at a time.

use crate::regions::{self, Exercise};
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What is never copied: build output, git data, a learner's progress,
/// the rendered book.
fn skipped(rel: &Path) -> bool {
    let s = rel.to_string_lossy();
    s == "target" || s == ".git" || s == ".course" || s == "book/book" || s.ends_with(".snap.new")
}

/// Copies the workspace at `from` to `to` (files and symlinks).
pub fn copy(from: &Path, to: &Path) -> Result<()> {
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let src = from.join(&rel);
        let dst = to.join(&rel);
        std::fs::create_dir_all(&dst).with_context(|| format!("creating {}", dst.display()))?;
        for entry in std::fs::read_dir(&src)? {
            let entry = entry?;
            let rel = rel.join(entry.file_name());
            if skipped(&rel) {
                continue;
            }
            let kind = entry.file_type()?;
            if kind.is_dir() {
                stack.push(rel);
            } else if kind.is_symlink() {
                let target = std::fs::read_link(entry.path())?;
                let _ = std::fs::remove_file(to.join(&rel));
                std::os::unix::fs::symlink(target, to.join(&rel))?;
            } else {
                std::fs::copy(entry.path(), to.join(&rel))
                    .with_context(|| format!("copying {}", rel.display()))?;
            }
        }
    }
    Ok(())
}

/// Rewrites, in the workspace at `root`, the files holding `exercises` with
/// those regions stubbed: the learner's way.
pub fn stub_in_place(root: &Path, exercises: &[&Exercise], original_root: &Path) -> Result<()> {
    rewrite_in_place(root, exercises, original_root, regions::stub)
}

/// Rewrites, in the workspace at `root`, every file holding exercises with
/// each of them behind verify's run-time switch.
pub fn stub_switchable_in_place(
    root: &Path,
    exercises: &[Exercise],
    original_root: &Path,
) -> Result<()> {
    let all: Vec<&Exercise> = exercises.iter().collect();
    rewrite_in_place(root, &all, original_root, regions::stub_switchable)
}

/// Writes each file of `exercises`, as `stub` turns it, into `root`.
fn rewrite_in_place(
    root: &Path,
    exercises: &[&Exercise],
    original_root: &Path,
    stub: fn(&str, &[&Exercise]) -> String,
) -> Result<()> {
    let mut by_file: BTreeMap<&Path, Vec<&Exercise>> = BTreeMap::new();
    for ex in exercises {
        by_file.entry(ex.file.as_path()).or_default().push(ex);
    }
    for (file, list) in by_file {
        let src = std::fs::read_to_string(file)?;
        let rel = file
            .strip_prefix(original_root)
            .context("exercise outside the workspace")?;
        std::fs::write(root.join(rel), stub(&src, &list))?;
    }
    Ok(())
}

/// `cargo xtask student DIR`.
pub fn write_student(dir: &Path) -> Result<()> {
    if dir.exists() && std::fs::read_dir(dir)?.next().is_some() {
        bail!(
            "{} exists and is not empty: choose a new directory",
            dir.display()
        );
    }
    let root = testkit::workspace_root();
    let exercises = regions::find_all(&root.join("chapters"))?;
    copy(&root, dir)?;
    let refs: Vec<&Exercise> = exercises.iter().collect();
    stub_in_place(dir, &refs, &root)?;
    println!(
        "wrote a learner workspace to {} with {} exercises stubbed.",
        dir.display(),
        exercises.len()
    );
    println!("next: cd {} && cargo xtask grade", dir.display());
    Ok(())
}
