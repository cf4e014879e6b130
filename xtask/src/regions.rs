//! Exercise regions: how the reference code marks what a learner writes.
//!
//! A region is the body of the function right below a marker:
//!
//! ```text
//! // exercise 1.11: mount a /proc that shows the new PID namespace
//! // builds on: 1.10
//! // hint: the idea (a hint may go on over lines that start
//! //   with two more spaces)
//! // hint: the trap, and the shape of the answer
//! // hint: the man page or spec section
//! /// doc comments and attributes may sit between marker and fn
//! pub fn mount_proc(sys: &mut impl Sys, target: &CStr) -> Result<(), Errno> { ... }
//! ```
//!
//! Stubbing replaces the body with `todo!("exercise 1.11: …")`, which always
//! type-checks. The function is found by parsing the file with `syn`, so
//! braces in strings, chars, raw strings and comments cannot confuse it.
//!
//! Two kinds of stub: the learner's ([`stub`]: the body is gone, and the file
//! allows the imports and helpers only the solution used), and verify's
//! ([`stub_switchable`]: the body stays, behind a run-time check, so one build
//! can stub any set of exercises).

use anyhow::{bail, Context, Result};
use proc_macro2::LineColumn;
use std::path::{Path, PathBuf};
use syn::spanned::Spanned;
use syn::visit::Visit;

/// One exercise found in a source file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exercise {
    /// `"1.3"`: chapter, then number.
    pub id: String,
    pub title: String,
    /// The exercises whose code this one's tests also run.
    pub builds_on: Vec<String>,
    /// From the idea to the man page; each may span several lines.
    pub hints: Vec<String>,
    pub file: PathBuf,
    /// 1-based line of the marker.
    pub line: usize,
    /// Byte range of the function body, braces included.
    pub body: std::ops::Range<usize>,
    /// Indentation of the function's first line.
    pub indent: String,
}

impl Exercise {
    /// The chapter number (`1` for `"1.3"`).
    pub fn chapter(&self) -> u32 {
        self.id
            .split('.')
            .next()
            .and_then(|c| c.parse().ok())
            .unwrap_or(0)
    }

    /// The prefix of the names of the tests that grade this exercise.
    pub fn test_prefix(&self) -> String {
        format!("ex{}_", self.id.replace('.', "_"))
    }
}

const MARKER: &str = "// exercise ";
const HINT: &str = "// hint:";
const BUILDS_ON: &str = "// builds on:";
const CONTINUATION: &str = "//   ";

fn valid_id(id: &str) -> bool {
    id.split('.').count() == 2
        && id
            .split('.')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

/// Finds every exercise region in one file's source.
pub fn find(file: &Path, src: &str) -> Result<Vec<Exercise>> {
    let lines: Vec<&str> = src.lines().collect();
    let mut markers = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(rest) = line.trim_start().strip_prefix(MARKER) else {
            continue;
        };
        let Some((id, title)) = rest.split_once(':') else {
            bail!(
                "{}:{}: an exercise marker is `// exercise N.M: task`",
                file.display(),
                i + 1
            );
        };
        let id = id.trim().to_string();
        if !valid_id(&id) {
            bail!(
                "{}:{}: exercise id {id:?} is not of the form N.M",
                file.display(),
                i + 1
            );
        }
        let mut hints: Vec<String> = Vec::new();
        let mut builds_on = Vec::new();
        let mut used = 0;
        for (j, line) in lines[i + 1..].iter().enumerate() {
            let line = line.trim_start();
            if let Some(deps) = line.strip_prefix(BUILDS_ON) {
                for dep in deps.split(',').map(str::trim).filter(|d| !d.is_empty()) {
                    if !valid_id(dep) {
                        bail!(
                            "{}:{}: `builds on:` lists exercise ids like 1.2, not {dep:?}",
                            file.display(),
                            i + j + 2
                        );
                    }
                    builds_on.push(dep.to_string());
                }
            } else if let Some(h) = line.strip_prefix(HINT) {
                hints.push(h.trim().to_string());
            } else if let (Some(more), Some(last)) =
                (line.strip_prefix(CONTINUATION), hints.last_mut())
            {
                last.push(' ');
                last.push_str(more.trim());
            } else {
                break;
            }
            used = j + 1;
        }
        markers.push((i + 1, id, title.trim().to_string(), builds_on, hints, used));
    }
    if markers.is_empty() {
        return Ok(Vec::new());
    }

    let parsed = syn::parse_file(src).with_context(|| format!("parsing {}", file.display()))?;
    let mut fns = FnCollector::default();
    fns.visit_file(&parsed);

    let offsets = LineOffsets::new(src);
    let mut found = Vec::new();
    for (line, id, title, builds_on, hints, used) in markers {
        let first_after = line + used + 1;
        let Some(f) = fns.fns.iter().find(|f| f.start_line == first_after) else {
            bail!(
                "{}:{line}: exercise {id} must sit directly above a function with a body \
                 (doc comments and attributes may come between)",
                file.display()
            );
        };
        let indent: String = lines[f.start_line - 1]
            .chars()
            .take_while(|c| c.is_whitespace())
            .collect();
        found.push(Exercise {
            id,
            title,
            builds_on,
            hints,
            file: file.to_path_buf(),
            line,
            body: offsets.byte(f.body_open)..offsets.byte(f.body_close) + 1,
            indent,
        });
    }
    Ok(found)
}

fn stub_message(ex: &Exercise) -> String {
    format!("exercise {}: {}", ex.id, ex.title)
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
}

/// The learner's stubs: the bodies of `exercises` (all from `src`) become
/// `todo!()`. Parameters, imports and helpers that only the solution used
/// would draw warnings from a fresh workspace, so the stub allows unused
/// variables and the file, where it has a stub, unused imports and dead code.
pub fn stub(src: &str, exercises: &[&Exercise]) -> String {
    let mut sorted: Vec<&&Exercise> = exercises.iter().collect();
    sorted.sort_by_key(|e| std::cmp::Reverse(e.body.start));
    let mut out = src.to_string();
    for ex in &sorted {
        let body = format!(
            "{{\n{0}    #![allow(unused_variables, unused_mut)]\n{0}    todo!(\"{1}\")\n{0}}}",
            ex.indent,
            stub_message(ex)
        );
        out.replace_range(ex.body.clone(), &body);
    }
    if !sorted.is_empty() {
        out = allow_unused_in_file(&out);
    }
    out
}

/// Verify's stubs: each body starts with a check of `COURSE_STUBS` (see
/// `chapter_01::course::stubbed`), so one build stubs any set at run time.
pub fn stub_switchable(src: &str, exercises: &[&Exercise]) -> String {
    let mut sorted: Vec<&&Exercise> = exercises.iter().collect();
    sorted.sort_by_key(|e| std::cmp::Reverse(e.body.start));
    let mut out = src.to_string();
    for ex in sorted {
        let check = format!(
            "\n{0}    if ::chapter_01::course::stubbed(\"{1}\") {{ todo!(\"{2}\") }}",
            ex.indent,
            ex.id,
            stub_message(ex)
        );
        // Right after the opening brace: the rest of the body stays as it was.
        out.insert_str(ex.body.start + 1, &check);
    }
    out
}

/// `#![allow(unused_imports, dead_code)]` after the file's inner doc
/// comments and attributes (inner attributes must come first).
fn allow_unused_in_file(src: &str) -> String {
    let mut at = 0;
    for line in src.split_inclusive('\n') {
        let t = line.trim_start();
        if t.starts_with("//!") || t.starts_with("#![") || (t.is_empty() && at == 0) {
            at += line.len();
        } else {
            break;
        }
    }
    let mut out = src.to_string();
    out.insert_str(
        at,
        "// A learner workspace: until its exercises are written, some imports\n\
         // and helpers of this file are used by nothing.\n\
         #![allow(unused_imports, dead_code)]\n",
    );
    out
}

struct FnSite {
    start_line: usize,
    body_open: LineColumn,
    body_close: LineColumn,
}

#[derive(Default)]
struct FnCollector {
    fns: Vec<FnSite>,
}

impl FnCollector {
    fn add(
        &mut self,
        attrs: &[syn::Attribute],
        sig: &syn::Signature,
        vis_span: Option<proc_macro2::Span>,
        block: &syn::Block,
    ) {
        let mut start = sig.span().start().line;
        if let Some(v) = vis_span {
            start = start.min(v.start().line);
        }
        for attr in attrs {
            start = start.min(attr.span().start().line);
        }
        let braces = block.brace_token.span;
        self.fns.push(FnSite {
            start_line: start,
            body_open: braces.open().start(),
            body_close: braces.close().start(),
        });
    }
}

fn vis_span(vis: &syn::Visibility) -> Option<proc_macro2::Span> {
    (!matches!(vis, syn::Visibility::Inherited)).then(|| vis.span())
}

impl<'ast> Visit<'ast> for FnCollector {
    fn visit_item_fn(&mut self, f: &'ast syn::ItemFn) {
        self.add(&f.attrs, &f.sig, vis_span(&f.vis), &f.block);
        syn::visit::visit_item_fn(self, f);
    }
    fn visit_impl_item_fn(&mut self, f: &'ast syn::ImplItemFn) {
        self.add(&f.attrs, &f.sig, vis_span(&f.vis), &f.block);
        syn::visit::visit_impl_item_fn(self, f);
    }
    fn visit_trait_item_fn(&mut self, f: &'ast syn::TraitItemFn) {
        if let Some(block) = &f.default {
            self.add(&f.attrs, &f.sig, None, block);
        }
        syn::visit::visit_trait_item_fn(self, f);
    }
}

/// Line/column (1-based line, column in chars) to byte offset.
struct LineOffsets<'a> {
    src: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineOffsets<'a> {
    fn new(src: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(src.match_indices('\n').map(|(i, _)| i + 1));
        LineOffsets { src, starts }
    }
    fn byte(&self, lc: LineColumn) -> usize {
        let start = self.starts[lc.line - 1];
        let line = &self.src[start..];
        start
            + line
                .char_indices()
                .nth(lc.column)
                .map_or(line.len(), |(i, _)| i)
    }
}

/// Every exercise in the Rust files under `dir`, sorted by id.
pub fn find_all(dir: &Path) -> Result<Vec<Exercise>> {
    let mut all = Vec::new();
    for file in rust_files(dir)? {
        let src = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))?;
        all.extend(find(&file, &src)?);
    }
    all.sort_by_key(|e| sort_key(&e.id));
    for pair in all.windows(2) {
        if pair[0].id == pair[1].id {
            bail!(
                "exercise {} is marked twice: {}:{} and {}:{}",
                pair[0].id,
                pair[0].file.display(),
                pair[0].line,
                pair[1].file.display(),
                pair[1].line
            );
        }
    }
    Ok(all)
}

pub fn sort_key(id: &str) -> (u32, u32) {
    let mut parts = id.split('.').map(|p| p.parse().unwrap_or(u32::MAX));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

fn rust_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("listing {}", d.display()))? {
            let path = entry?.path();
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            if path.is_dir() {
                if name != "target" && !name.starts_with('.') {
                    stack.push(path);
                }
            } else if name.ends_with(".rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stub_all(src: &str) -> (Vec<Exercise>, String) {
        let found = find(Path::new("t.rs"), src).unwrap();
        let refs: Vec<&Exercise> = found.iter().collect();
        let out = stub(src, &refs);
        (found, out)
    }

    const ALLOW: &str = "// A learner workspace: until its exercises are written, some imports\n// and helpers of this file are used by nothing.\n#![allow(unused_imports, dead_code)]\n";

    #[test]
    fn nested_braces_are_replaced_whole() {
        let src = "// exercise 1.1: do it\nfn f(x: u8) -> u8 {\n    if x > 0 { match x { _ => { x } } } else { 0 }\n}\nfn g() {}\n";
        let (found, out) = stub_all(src);
        assert_eq!(found.len(), 1);
        assert_eq!(out, format!("{ALLOW}// exercise 1.1: do it\nfn f(x: u8) -> u8 {{\n    #![allow(unused_variables, unused_mut)]\n    todo!(\"exercise 1.1: do it\")\n}}\nfn g() {{}}\n"));
        syn::parse_file(&out).unwrap();
    }

    #[test]
    fn braces_in_strings_chars_and_comments_do_not_confuse_it() {
        let src = r####"// exercise 2.4: tricky
// hint: one
// hint: two
fn f() -> String {
    let a = "}}{"; let b = '}'; let c = r#"}"{"#; // } not a brace
    /* { */ format!("{a}{b}{c}}}")
}
fn after() -> u8 { 1 }
"####;
        let (found, out) = stub_all(src);
        assert_eq!(found[0].hints, ["one", "two"]);
        assert!(
            out.contains("todo!(\"exercise 2.4: tricky\")\n}\nfn after() -> u8 { 1 }"),
            "{out}"
        );
        syn::parse_file(&out).unwrap();
    }

    #[test]
    fn hints_span_lines_and_dependencies_are_listed() {
        let src = "// exercise 3.2: two lines\n// builds on: 3.1, 2.5\n// hint: the idea\n//   goes on here\n// hint: the man page\nfn f() {}\n";
        let found = find(Path::new("t.rs"), src).unwrap();
        assert_eq!(found[0].builds_on, ["3.1", "2.5"]);
        assert_eq!(found[0].hints, ["the idea goes on here", "the man page"]);
        let err = find(
            Path::new("t.rs"),
            "// exercise 3.2: x\n// builds on: three\nfn f() {}\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("t.rs:2"), "{err}");
    }

    #[test]
    fn regions_in_impl_blocks_keep_their_indentation() {
        let src = "struct S;\nimpl S {\n    // exercise 3.1: method \"quoted\"\n    /// docs\n    #[inline]\n    pub fn m(&self) -> u32 {\n        { 7 }\n    }\n}\n";
        let (found, out) = stub_all(src);
        assert_eq!(found[0].indent, "    ");
        assert!(out.contains("    pub fn m(&self) -> u32 {\n        #![allow(unused_variables, unused_mut)]\n        todo!(\"exercise 3.1: method \\\"quoted\\\"\")\n    }\n}"), "{out}");
        syn::parse_file(&out).unwrap();
    }

    #[test]
    fn the_allowance_goes_after_inner_docs_and_attributes() {
        let src = "//! Module docs.\n//! More.\n#![allow(clippy::all)]\nuse std::fmt;\n// exercise 1.1: a\nfn a() -> u8 { 1 }\n";
        let (_, out) = stub_all(src);
        assert!(
            out.starts_with(&format!(
                "//! Module docs.\n//! More.\n#![allow(clippy::all)]\n{ALLOW}use std::fmt;"
            )),
            "{out}"
        );
        syn::parse_file(&out).unwrap();
    }

    #[test]
    fn a_marker_not_above_a_function_is_an_error() {
        let src = "// exercise 1.2: lonely\n\nfn f() {}\n";
        let err = find(Path::new("t.rs"), src).unwrap_err().to_string();
        assert!(
            err.contains("t.rs:1") && err.contains("directly above"),
            "{err}"
        );
        let err = find(Path::new("t.rs"), "// exercise one: x\nfn f() {}\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("N.M"), "{err}");
    }

    #[test]
    fn only_the_chosen_region_is_stubbed() {
        let src =
            "// exercise 1.1: a\nfn a() -> u8 { 1 }\n// exercise 1.2: b\nfn b() -> u8 { 2 }\n";
        let found = find(Path::new("t.rs"), src).unwrap();
        let out = stub(src, &[&found[1]]);
        assert!(out.contains("fn a() -> u8 { 1 }"));
        assert!(out.contains("todo!(\"exercise 1.2: b\")"));
    }

    #[test]
    fn switchable_stubs_keep_the_body_behind_a_check() {
        let src = "// exercise 1.1: a\nfn a() -> u8 { 1 }\n";
        let found = find(Path::new("t.rs"), src).unwrap();
        let out = stub_switchable(src, &[&found[0]]);
        assert_eq!(out, "// exercise 1.1: a\nfn a() -> u8 {\n    if ::chapter_01::course::stubbed(\"1.1\") { todo!(\"exercise 1.1: a\") } 1 }\n");
        syn::parse_file(&out).unwrap();
    }

    #[test]
    fn multibyte_text_before_a_body_keeps_offsets_right() {
        let src = "// exercise 1.1: ünïcödé\nfn f() -> &'static str { \"→{\" }\n";
        let (_, out) = stub_all(src);
        assert_eq!(out, format!("{ALLOW}// exercise 1.1: ünïcödé\nfn f() -> &'static str {{\n    #![allow(unused_variables, unused_mut)]\n    todo!(\"exercise 1.1: ünïcödé\")\n}}\n"));
    }
}
