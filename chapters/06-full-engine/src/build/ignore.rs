//! `.dockerignore`: which files of the context are not sent, and not seen
//! by COPY and ADD. Docker's rules (its `patternmatcher`): one pattern a
//! line, `#` lines are comments, a leading `/` means nothing (every pattern
//! is relative to the context's root), `*` and `?` do not cross `/`, `**`
//! matches any number of directories, a pattern that matches a directory
//! excludes everything in it, and `!` makes an exception. The last pattern
//! that matches a path decides.

use globset::{Glob, GlobBuilder, GlobMatcher};

pub struct Ignore {
    rules: Vec<(GlobMatcher, bool)>,
}

/// A glob as Go's filepath.Match reads it (plus `**`).
pub fn glob(pattern: &str) -> Result<GlobMatcher, String> {
    let built: Result<Glob, _> = GlobBuilder::new(pattern)
        .literal_separator(true)
        .backslash_escape(true)
        .build();
    built
        .map(|g| g.compile_matcher())
        .map_err(|e| format!("invalid pattern {pattern:?}: {e}"))
}

/// Cleans a path as Go's filepath.Clean does for relative paths:
/// no `.` parts, no empty parts, `..` eats the part before it.
pub fn clean(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else {
                    parts.push("..");
                }
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

/// Visits every path under `root` in name order (relative, `/`-separated,
/// with its path and metadata; symlinks are not followed). `visit` says
/// whether to go into a directory.
pub fn walk(
    root: &std::path::Path,
    visit: &mut dyn FnMut(&str, &std::path::Path, &std::fs::Metadata) -> std::io::Result<bool>,
) -> std::io::Result<()> {
    fn inner(
        dir: &std::path::Path,
        rel: &str,
        visit: &mut dyn FnMut(&str, &std::path::Path, &std::fs::Metadata) -> std::io::Result<bool>,
    ) -> std::io::Result<()> {
        let mut names: Vec<_> = std::fs::read_dir(dir)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<std::io::Result<_>>()?;
        names.sort();
        for name in names {
            let r = if rel.is_empty() {
                name.to_string_lossy().into_owned()
            } else {
                format!("{rel}/{}", name.to_string_lossy())
            };
            let path = dir.join(&name);
            let meta = std::fs::symlink_metadata(&path)?;
            if visit(&r, &path, &meta)? && meta.is_dir() {
                inner(&path, &r, visit)?;
            }
        }
        Ok(())
    }
    inner(root, "", visit)
}

impl Ignore {
    pub fn none() -> Ignore {
        Ignore { rules: Vec::new() }
    }

    /// Reads a `.dockerignore`; an invalid pattern is an error naming it.
    pub fn parse(text: &str) -> Result<Ignore, String> {
        let mut rules = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (exception, pattern) = match line.strip_prefix('!') {
                Some(p) => (true, p.trim()),
                None => (false, line),
            };
            let pattern = clean(pattern.trim_start_matches('/'));
            if pattern.is_empty() {
                continue;
            }
            let matcher =
                glob(&pattern).map_err(|e| format!(".dockerignore line {}: {e}", i + 1))?;
            rules.push((matcher, exception));
        }
        Ok(Ignore { rules })
    }

    /// Whether `rel` (a path in the context, `/`-separated) is left out:
    /// the last pattern that matches it or one of its parent directories
    /// decides.
    pub fn excluded(&self, rel: &str) -> bool {
        let rel = clean(rel);
        let mut prefixes = Vec::new();
        let mut at = 0;
        while let Some(i) = rel[at..].find('/') {
            prefixes.push(&rel[..at + i]);
            at += i + 1;
        }
        prefixes.push(&rel);
        let mut out = false;
        for (matcher, exception) in &self.rules {
            if prefixes.iter().any(|p| matcher.is_match(p)) {
                out = !exception;
            }
        }
        out
    }

    /// Whether a directory may hold something not excluded (an exception
    /// below it): the walk must go in even when the directory matches.
    pub fn has_exceptions(&self) -> bool {
        self.rules.iter().any(|(_, e)| *e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_rules() {
        let i = Ignore::parse("# c\n/build\n*.log\n!keep.log\n**/*.tmp\ndocs/*/x\n").unwrap();
        assert!(i.excluded("build"));
        assert!(i.excluded("build/out/a"));
        assert!(i.excluded("a.log"));
        assert!(!i.excluded("keep.log"));
        assert!(!i.excluded("sub/a.log"), "* does not cross /");
        assert!(i.excluded("a/b/c.tmp"));
        assert!(i.excluded("c.tmp"), "** matches no directory too");
        assert!(i.excluded("docs/en/x"));
        assert!(!i.excluded("docs/en/y/x"));
        assert!(!i.excluded("src/main.rs"));
        assert_eq!(clean("./a//b/../c"), "a/c");
    }
}
