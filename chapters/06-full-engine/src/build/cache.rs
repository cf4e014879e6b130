//! The build cache's key: a step is skipped when one already built from
//! the same parent image, the same instruction (its variables substituted)
//! and, for COPY and ADD, the same files. What "the same files" means is
//! the lesson: contents, names, types, modes and owners; never the
//! modification times, which a fresh `git clone` or a `touch` changes
//! without changing anything a build can see.

use sha2::{Digest as _, Sha256};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The SHA-256 of a file's bytes, hex.
pub fn file_digest(path: &Path) -> io::Result<String> {
    let mut hasher = Sha256::new();
    let mut file = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = io::Read::read(&mut file, &mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

// ANCHOR: tree_digest
// exercise 6.15: the content part of a COPY's cache key: what the files are, never when
// hint: Two builds of one COPY may reuse each other's layer when the files
//   they copy are the same, so the key must change with anything a container
//   could see, and with nothing else. Walk `dir` (a COPY's prepared layer)
//   and feed one record per entry into one SHA-256: its path relative to
//   `dir`, its kind, its permission bits (mode & 0o7777), uid and gid, and
//   its content: file_digest for a file, the target for a symlink, the
//   device number for a device.
// hint: The same tree must always give the same digest: read_dir's order is
//   the file system's, so sort the names. The record must be unambiguous:
//   a name may hold spaces or newlines, but never a NUL, so end every field
//   with b'\0'. Leave out mtime, atime, ctime and the inode: a `touch` or a
//   fresh clone changes those and nothing else. `dir` itself is not a
//   record. Read metadata with symlink_metadata (never follow a link).
// hint: Docker's classic builder hashes a tarsum of the sources (mtimes
//   out); BuildKit's contenthash package does the same per file; lstat(2).
/// A digest of the tree under `dir`: names, kinds, modes, owners, contents.
pub fn tree_digest(dir: &Path) -> io::Result<String> {
    fn walk(abs: &Path, rel: &str, hasher: &mut Sha256) -> io::Result<()> {
        let mut names: Vec<std::ffi::OsString> = std::fs::read_dir(abs)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<io::Result<_>>()?;
        names.sort();
        for name in names {
            let path = abs.join(&name);
            let rel = format!("{rel}/{}", name.to_string_lossy());
            let meta = std::fs::symlink_metadata(&path)?;
            let kind = meta.file_type();
            let (letter, content) = if kind.is_dir() {
                ("d", String::new())
            } else if kind.is_symlink() {
                (
                    "l",
                    std::fs::read_link(&path)?.to_string_lossy().into_owned(),
                )
            } else if kind.is_file() {
                ("f", file_digest(&path)?)
            } else {
                ("s", meta.rdev().to_string())
            };
            for field in [
                rel.as_str(),
                letter,
                &format!("{:o}", meta.mode() & 0o7777),
                &meta.uid().to_string(),
                &meta.gid().to_string(),
                &content,
            ] {
                hasher.update(field.as_bytes());
                hasher.update(b"\0");
            }
            if kind.is_dir() {
                walk(&path, &rel, hasher)?;
            }
        }
        Ok(())
    }
    let mut hasher = Sha256::new();
    walk(dir, "", &mut hasher)?;
    Ok(hex(&hasher.finalize()))
}
// ANCHOR_END: tree_digest

/// A step's key: its parent image's ID, the instruction as the builder
/// read it (variables substituted, and for RUN the build arguments in its
/// environment), and for COPY/ADD the [`tree_digest`] of what it copies.
pub fn key(parent: &str, instruction: &str, content: Option<&str>) -> String {
    let mut hasher = Sha256::new();
    for field in [parent, instruction, content.unwrap_or("")] {
        hasher.update(field.as_bytes());
        hasher.update(b"\0");
    }
    format!("sha256:{}", hex(&hasher.finalize()))
}
