//! The client's half of `docker cp`: the daemon only reads a path as a
//! tar and extracts a tar into a directory (see [`crate::archive`]); the
//! naming rules of `cp` live in the client, as in Docker's CLI. A source
//! `dir` arrives as `dir/…`, `dir/.` as its contents; a destination that
//! exists as a directory receives the source under its own name, one that
//! does not exist *becomes* the source (its root entry renamed).

use anyhow::{anyhow, Result};
use std::io::{Read, Seek};
use std::path::{Component, Path, PathBuf};

/// `CONTAINER:PATH` or a local path. As Docker's CLI: a path that starts
/// with `/` or `.` is local even if it holds a `:`.
pub fn split_target(arg: &str) -> Option<(&str, &str)> {
    if arg.starts_with('/') || arg.starts_with('.') {
        return None;
    }
    match arg.split_once(':') {
        Some((c, p)) if !c.is_empty() => Some((c, if p.is_empty() { "/" } else { p })),
        _ => None,
    }
}

/// The root name a source path gets in its tar: its base name, `.` for
/// `dir/.` (its contents).
pub fn root_name(path: &str) -> String {
    crate::archive::base_name(path)
}

/// `path` with its first component `old` replaced by `new` (`dir/sub/f` →
/// `copy/sub/f`; with `old` `.`, every name is under `new`).
pub fn rebase(path: &Path, old: &str, new: &str) -> PathBuf {
    let mut parts = path
        .components()
        .filter(|c| !matches!(c, Component::CurDir | Component::RootDir));
    if old == "." || old == "/" {
        return Path::new(new).join(parts.collect::<PathBuf>());
    }
    match parts.next() {
        Some(Component::Normal(first)) if first == old => {
            Path::new(new).join(parts.collect::<PathBuf>())
        }
        Some(first) => std::iter::once(first).chain(parts).collect(),
        None => PathBuf::from(new),
    }
}

/// A tar of the local `source`: its root entry named `name` (`.` puts the
/// contents at the top), symlinks stored as links unless `follow`.
pub fn tar_local(source: &Path, name: &str, follow: bool) -> Result<Vec<u8>> {
    let meta = if follow {
        std::fs::metadata(source)
    } else {
        std::fs::symlink_metadata(source)
    }
    .map_err(|e| anyhow!("{}: {e}", source.display()))?;
    let mut tar = tar::Builder::new(Vec::new());
    tar.follow_symlinks(false);
    let source = if follow {
        source.canonicalize()?
    } else {
        source.to_path_buf()
    };
    if meta.is_dir() {
        tar.append_dir_all(name, &source)
    } else {
        tar.append_path_with_name(&source, name)
    }
    .map_err(|e| anyhow!("archiving {}: {e}", source.display()))?;
    Ok(tar.into_inner()?)
}

/// Extracts a tar from the daemon into the local directory `dir`, its root
/// entry `old` renamed to `new`. Names are checked (no `..`, no absolute
/// paths, no parent that is a symlink: chapter 03's resolve_entry), so a
/// hostile tar cannot write outside `dir`. Files are the invoking user's,
/// as Docker's CLI leaves them; device nodes are skipped.
pub fn extract_local<R: Read + Seek>(tar: R, dir: &Path, old: &str, new: &str) -> Result<u64> {
    use chapter_03::apply::{apply_metadata, create_entry, resolve_entry, Created, Policy};
    let policy = Policy {
        devices: chapter_03::apply::Devices::Skip,
        ..Default::default()
    };
    let mut archive = tar::Archive::new(tar);
    let mut dir_times = Vec::new();
    let mut count = 0;
    let (uid, gid) = (
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
    );
    for entry in archive.entries()? {
        let mut entry = entry?;
        let raw = entry.path()?.into_owned();
        let named = rebase(&raw, old, new);
        let rel = resolve_entry(dir, &named)?;
        if rel.as_os_str().is_empty() {
            continue;
        }
        let path = dir.join(&rel);
        if let Created::Entry(_) = create_entry(&mut entry, dir, &rel, &path, &policy)? {
            let mut header = entry.header().clone();
            header.set_uid(u64::from(uid));
            header.set_gid(u64::from(gid));
            if let Some(mtime) = apply_metadata(&mut entry, &header, &rel, &path)? {
                dir_times.push((path, mtime));
            }
        }
        count += 1;
    }
    dir_times.sort_by_key(|(p, _): &(PathBuf, i64)| std::cmp::Reverse(p.components().count()));
    for (d, mtime) in dir_times {
        chapter_03::apply::set_mtime(&d, mtime)?;
    }
    Ok(count)
}

/// Where a copy out of a container goes, by what the local destination
/// is: (the directory to extract in, the name the source's root takes).
pub fn local_destination(
    dst: &Path,
    src_is_dir: bool,
    src_name: &str,
) -> Result<(PathBuf, String)> {
    match std::fs::metadata(dst) {
        Ok(m) if m.is_dir() => {
            // Into it, under the source's own name (its contents for `.`).
            Ok((dst.to_path_buf(), src_name.to_string()))
        }
        Ok(_) if src_is_dir => Err(anyhow!(
            "cannot copy a directory to a file: {} is a file",
            dst.display()
        )),
        Ok(_) => Ok(split_parent(dst)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if dst.to_string_lossy().ends_with('/') && !src_is_dir {
                return Err(anyhow!(
                    "destination directory {} does not exist",
                    dst.display()
                ));
            }
            let (parent, name) = split_parent(dst);
            if !parent.is_dir() {
                return Err(anyhow!(
                    "the directory {} does not exist: create it first",
                    parent.display()
                ));
            }
            Ok((parent, name))
        }
        Err(e) => Err(anyhow!("{}: {e}", dst.display())),
    }
}

fn split_parent(path: &Path) -> (PathBuf, String) {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| ".".into());
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    (parent, name)
}

/// The parent directory of a container path, and its last component.
pub fn container_parent(path: &str) -> (String, String) {
    let trimmed = path.trim_end_matches('/');
    match trimmed.rsplit_once('/') {
        Some(("", name)) => ("/".into(), name.into()),
        Some((parent, name)) => (parent.into(), name.into()),
        None => (".".into(), trimmed.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_split_as_docker_s() {
        assert_eq!(split_target("web:/etc/x"), Some(("web", "/etc/x")));
        assert_eq!(split_target("./a:b"), None);
        assert_eq!(split_target("/tmp/x"), None);
        assert_eq!(split_target("file"), None);
    }

    #[test]
    fn roots_are_renamed() {
        assert_eq!(
            rebase(Path::new("d/sub/f"), "d", "copy"),
            Path::new("copy/sub/f")
        );
        assert_eq!(rebase(Path::new("d/"), "d", "copy"), Path::new("copy"));
        assert_eq!(
            rebase(Path::new("./sub/f"), ".", "copy"),
            Path::new("copy/sub/f")
        );
        assert_eq!(rebase(Path::new("./"), ".", "."), Path::new("."));
        assert_eq!(container_parent("/etc/x"), ("/etc".into(), "x".into()));
        assert_eq!(container_parent("/x/"), ("/".into(), "x".into()));
    }

    #[test]
    fn a_hostile_tar_stays_in_its_directory() {
        let outside = tempfile::tempdir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        b.append_link(&mut h, "x/esc", outside.path()).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        h.set_mode(0o644);
        b.append_data(&mut h, "x/esc/pwned", &b"pwn"[..]).unwrap();
        let tar = std::io::Cursor::new(b.into_inner().unwrap());
        assert!(extract_local(tar, dir.path(), "x", "x").is_err());
        assert!(!outside.path().join("pwned").exists());
    }
}
