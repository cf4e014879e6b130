//! `cargo xtask book`: every `{{#include path:anchor}}` in the book must
//! name an existing file and anchor (mdBook would render an empty block),
//! then mdBook builds it.

use anyhow::{bail, Context, Result};
use std::path::Path;

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
