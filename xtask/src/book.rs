//! `cargo xtask book`: the exercise sections of each chapter page are
//! written from the exercise markers (so the book and the code cannot
//! drift), every `{{#include path:anchor}}` must name an existing file and
//! anchor (mdBook would render an empty block), then mdBook builds it.
//!
//! A chapter page (`book/src/chNN-*.md`) holds the generated part between
//! `<!-- exercises:begin -->` and `<!-- exercises:end -->`: per exercise its
//! title, what it builds on, where it is, the tests that grade it, its
//! hints as the idea, the trap and what to read, and the reference
//! solution folded (`<details>`), included by the anchor around it.

use crate::regions::{self, Exercise};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

const BEGIN: &str = "<!-- exercises:begin -->";
const END: &str = "<!-- exercises:end -->";

/// The anchor on the line right above an exercise's marker.
fn anchor_of(ex: &Exercise) -> Result<String> {
    let src = std::fs::read_to_string(&ex.file)?;
    let above = src.lines().nth(ex.line.saturating_sub(2)).unwrap_or("");
    above
        .trim()
        .strip_prefix("// ANCHOR:")
        .map(|a| a.trim().to_string())
        .with_context(|| {
            format!(
                "{}:{}: exercise {} needs `// ANCHOR: name` on the line above its marker (the book folds its solution from it)",
                ex.file.display(),
                ex.line,
                ex.id
            )
        })
}

/// The graded tests of `ex`, as sentences, from the chapter's test files.
fn test_sentences(chapter_dir: &Path, ex: &Exercise) -> Vec<String> {
    let prefix = format!("fn {}", ex.test_prefix());
    let mut out = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(chapter_dir.join("tests"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    for f in files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "rs"))
    {
        for line in std::fs::read_to_string(f).unwrap_or_default().lines() {
            if let Some(rest) = line.trim().strip_prefix(&prefix) {
                let name = rest.split('(').next().unwrap_or("").trim_end_matches('_');
                out.push(name.replace('_', " "));
            }
        }
    }
    out
}

/// Hint text as Markdown: `<`, `>` and `*` are text here, not HTML or emphasis.
fn markdown_text(text: &str) -> String {
    text.replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('*', "\\*")
}

/// The generated exercise section of one chapter.
pub fn exercise_section(root: &Path, chapter_dir: &Path, mine: &[&Exercise]) -> Result<String> {
    let mut out = String::new();
    for ex in mine {
        let file = ex.file.strip_prefix(root).unwrap_or(&ex.file);
        out.push_str(&format!(
            "### Exercise {}: {}\n\n",
            ex.id,
            markdown_text(&ex.title)
        ));
        if !ex.builds_on.is_empty() {
            out.push_str(&format!("*Builds on {}.* ", ex.builds_on.join(", ")));
        }
        out.push_str(&format!(
            "In `{}`. Graded by `cargo xtask grade {}`:\n\n",
            file.display(),
            ex.id
        ));
        for t in test_sentences(chapter_dir, ex) {
            out.push_str(&format!("- {t}\n"));
        }
        out.push('\n');
        let labels = ["The idea", "The trap", "Read"];
        for (i, h) in ex.hints.iter().enumerate() {
            let label = labels.get(i).copied().unwrap_or("More");
            out.push_str(&format!("**{label}.** {}\n\n", markdown_text(h)));
        }
        let rel = Path::new("../..").join(file);
        out.push_str(&format!(
            "<details><summary>Reference solution (exercise {})</summary>\n\n```rust,ignore\n{{{{#include {}:{}}}}}\n```\n\n</details>\n\n",
            ex.id,
            rel.display(),
            anchor_of(ex)?
        ));
    }
    Ok(out)
}

/// Writes each chapter page's exercise section from the markers. Returns
/// the pages that changed.
pub fn write_exercise_sections(root: &Path) -> Result<Vec<PathBuf>> {
    let exercises = regions::find_all(&root.join("chapters"))?;
    let mut changed = Vec::new();
    for chapter in crate::chapters::list(root)? {
        let mine: Vec<&Exercise> = exercises
            .iter()
            .filter(|e| e.chapter() == chapter.number)
            .collect();
        if mine.is_empty() {
            continue;
        }
        let prefix = format!("ch{:02}-", chapter.number);
        let page = std::fs::read_dir(root.join("book/src"))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(&prefix)))
            .find(|p| std::fs::read_to_string(p).is_ok_and(|t| t.contains(BEGIN)))
            .with_context(|| {
                format!("no book page book/src/{prefix}*.md holds {BEGIN} for chapter {:02}'s exercises", chapter.number)
            })?;
        let text = std::fs::read_to_string(&page)?;
        let (before, rest) = text.split_once(BEGIN).expect("found above");
        let Some((_, after)) = rest.split_once(END) else {
            bail!("{}: {BEGIN} without {END}", page.display());
        };
        let section = exercise_section(root, &chapter.dir, &mine)?;
        let new = format!("{before}{BEGIN}\n<!-- written by `cargo xtask book` from the exercise markers: edit those -->\n\n{section}{END}{after}");
        if new != text {
            std::fs::write(&page, new)?;
            changed.push(page);
        }
    }
    Ok(changed)
}

/// The problems with the includes of one Markdown file.
pub fn check_includes(md_file: &Path, text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let dir = md_file.parent().unwrap_or(Path::new("."));
    for (lineno, line) in text.lines().enumerate() {
        let mut rest = line;
        while let Some(start) = rest.find("{{#") {
            let after = &rest[start + 3..];
            let Some(end) = after.find("}}") else { break };
            let directive = &after[..end];
            rest = &after[end + 2..];
            let Some(arg) = directive
                .strip_prefix("include ")
                .or_else(|| directive.strip_prefix("rustdoc_include "))
            else {
                continue;
            };
            let mut parts = arg.trim().splitn(2, ':');
            let path = dir.join(parts.next().unwrap_or_default());
            let anchor = parts.next();
            let at = format!("{}:{}", md_file.display(), lineno + 1);
            let Ok(source) = std::fs::read_to_string(&path) else {
                problems.push(format!(
                    "{at}: included file {} does not exist",
                    path.display()
                ));
                continue;
            };
            // Line ranges (`file:10:20`) are not anchors.
            if let Some(anchor) = anchor.filter(|a| !a.starts_with(|c: char| c.is_ascii_digit())) {
                let has = |marker: &str| {
                    source.lines().any(|l| {
                        l.trim_start().trim_start_matches("//").trim()
                            == format!("{marker}: {anchor}")
                    })
                };
                if !has("ANCHOR") || !has("ANCHOR_END") {
                    problems.push(format!(
                        "{at}: anchor {anchor:?} is missing (or unclosed) in {}",
                        path.display()
                    ));
                }
            }
        }
    }
    problems
}

pub fn build() -> Result<()> {
    let root = testkit::workspace_root();
    for page in write_exercise_sections(&root)? {
        eprintln!("book: wrote the exercise section of {}", page.display());
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            bail!(
                "{} was out of date with the exercise markers: run `cargo xtask book` and commit it",
                page.display()
            );
        }
    }
    let src = root.join("book/src");
    let mut problems = Vec::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))?
        {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                problems.extend(check_includes(&path, &std::fs::read_to_string(&path)?));
            }
        }
    }
    if !problems.is_empty() {
        bail!(
            "the book has dangling includes:\n  {}",
            problems.join("\n  ")
        );
    }
    crate::run(
        std::process::Command::new("mdbook")
            .arg("build")
            .arg(root.join("book")),
    )
    .context("building the book (is mdbook installed? `cargo xtask install`)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dangling_files_and_anchors_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("code.rs"),
            "// ANCHOR: here\nfn f() {}\n// ANCHOR_END: here\n// ANCHOR: open\n",
        )
        .unwrap();
        let md = dir.path().join("page.md");
        let text = "```rust\n{{#include code.rs:here}}\n{{#include code.rs:gone}}\n{{#include code.rs:open}}\n{{#include nope.rs}}\n{{#include code.rs:1:2}}\n```\n";
        let problems = check_includes(&md, text);
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].contains("\"gone\""));
        assert!(problems[1].contains("\"open\""));
        assert!(problems[2].contains("nope.rs"));
    }
}
