//! A tree described exactly, for tests that compare two trees (an unpack
//! against a peer's, a round trip against its source): per path, type and
//! mode, owner, size, mtime (not for directories, which their contents
//! change), content, link target, device number, extended attributes (not
//! overlayfs's own), and which paths share an inode.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// What to leave out of a description.
#[derive(Clone, Copy, Debug, Default)]
pub struct Ignore {
    /// Modification times (tools differ in how they keep them).
    pub mtimes: bool,
}

pub fn describe(root: &Path) -> BTreeMap<PathBuf, String> {
    describe_with(root, Ignore::default())
}

pub fn describe_with(root: &Path, ignore: Ignore) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut inodes: BTreeMap<u64, PathBuf> = BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let mut names: Vec<_> = std::fs::read_dir(root.join(&rel))
            .unwrap_or_else(|e| panic!("{}: {e}", root.join(&rel).display()))
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        for name in names {
            let rel = rel.join(name);
            let abs = root.join(&rel);
            let m = std::fs::symlink_metadata(&abs).unwrap();
            let mut xattrs: Vec<String> = xattr::list(&abs)
                .map(|l| l.collect::<Vec<_>>())
                .unwrap_or_default()
                .into_iter()
                .map(|n| {
                    format!(
                        "{}={:?}",
                        n.to_string_lossy(),
                        xattr::get(&abs, &n).ok().flatten()
                    )
                })
                .filter(|x| !x.starts_with("trusted.overlay."))
                .collect();
            xattrs.sort();
            let content = if m.is_file() {
                format!("{:?}", std::fs::read(&abs).unwrap())
            } else {
                String::new()
            };
            let link = std::fs::read_link(&abs)
                .map(|t| t.display().to_string())
                .unwrap_or_default();
            let mtime = if m.is_dir() || ignore.mtimes {
                String::new()
            } else {
                m.mtime().to_string()
            };
            let shared = if m.is_file() && m.nlink() > 1 {
                inodes
                    .entry(m.ino())
                    .or_insert_with(|| rel.clone())
                    .display()
                    .to_string()
            } else {
                String::new()
            };
            out.insert(
                rel.clone(),
                format!(
                    "{:o} {}:{} {} {mtime} {content} {link} {xattrs:?} {} {shared}",
                    m.mode(),
                    m.uid(),
                    m.gid(),
                    if m.is_dir() { 0 } else { m.len() },
                    m.rdev()
                ),
            );
            if m.is_dir() {
                stack.push(rel);
            }
        }
    }
    out
}
