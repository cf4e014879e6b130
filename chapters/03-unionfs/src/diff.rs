//! A container's changes as an OCI layer: its upper directory walked and
//! written as a tar, with overlayfs whiteouts turned into `.wh.` files.
//!
//! The same tree always gives the same bytes, because an image layer is
//! named by the hash of its bytes (chapter 04): two builds of one change
//! must produce one layer. The policy:
//! - entries in byte order of their names, each directory before its contents;
//! - the layer's root itself is not an entry;
//! - kept: permission bits, numeric uid/gid, modification time (seconds),
//!   symlink targets, device numbers, extended attributes (sorted, as PAX
//!   `SCHILY.xattr.*` records) except overlayfs's own (`trusted.overlay.*`,
//!   or `user.overlay.*` in a user namespace);
//! - dropped: user and group *names*, access and change times, sockets
//!   (a tar cannot hold them);
//! - a file with several names *inside the layer* is stored once, the later
//!   names as hard links to the first (in walk order); overlayfs's shared
//!   whiteout inode is not such a file;
//! - whiteouts and opaque markers are empty entries with mode 0, owned by
//!   root, dated like the node they stand for.

use crate::whiteout::{
    is_opaque, is_overlay_whiteout, is_overlay_xattr, OPAQUE_MARKER, WHITEOUT_PREFIX,
};
use std::collections::HashMap;
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use tar::{EntryType, Header};

/// Writes the layer tar of `upper` into `out`; returns `out`.
pub fn write_layer<W: Write>(upper: &Path, out: W) -> io::Result<W> {
    let mut walk = Walk {
        builder: tar::Builder::new(out),
        first_names: HashMap::new(),
    };
    walk.builder.mode(tar::HeaderMode::Complete);
    walk.builder.follow_symlinks(false);
    walk.dir(upper, Path::new(""))?;
    walk.builder.into_inner()
}

struct Walk<W: Write> {
    builder: tar::Builder<W>,
    /// (device, inode) → the first path written for a multiply-linked file.
    first_names: HashMap<(u64, u64), PathBuf>,
}

fn header(kind: EntryType, meta: &std::fs::Metadata) -> Header {
    let mut h = Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(meta.mode() & 0o7777);
    h.set_uid(meta.uid() as u64);
    h.set_gid(meta.gid() as u64);
    h.set_mtime(meta.mtime().max(0) as u64);
    h.set_size(0);
    h
}

/// An empty marker entry (whiteout or opaque) dated like `meta`.
fn marker(meta: &std::fs::Metadata) -> Header {
    let mut h = Header::new_gnu();
    h.set_entry_type(EntryType::Regular);
    h.set_mode(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(meta.mtime().max(0) as u64);
    h.set_size(0);
    h
}

impl<W: Write> Walk<W> {
    fn dir(&mut self, abs: &Path, rel: &Path) -> io::Result<()> {
        let mut names: Vec<std::ffi::OsString> = std::fs::read_dir(abs)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<io::Result<_>>()?;
        names.sort();
        for name in names {
            self.entry(&abs.join(&name), &rel.join(&name))?;
        }
        Ok(())
    }

    fn xattrs(&mut self, abs: &Path) -> io::Result<()> {
        let mut records: Vec<(String, Vec<u8>)> = Vec::new();
        for name in xattr::list(abs)? {
            let name = name.to_string_lossy().into_owned();
            if is_overlay_xattr(&name) {
                continue;
            }
            if let Some(value) = xattr::get(abs, &name)? {
                records.push((format!("SCHILY.xattr.{name}"), value));
            }
        }
        if !records.is_empty() {
            records.sort();
            self.builder
                .append_pax_extensions(records.iter().map(|(k, v)| (k.as_str(), v.as_slice())))?;
        }
        Ok(())
    }

    /// A device node or fifo (the layer keeps its numbers).
    fn special(&mut self, rel: &Path, meta: &std::fs::Metadata) -> io::Result<()> {
        let kind = meta.file_type();
        let entry_type = if kind.is_char_device() {
            EntryType::Char
        } else if kind.is_block_device() {
            EntryType::Block
        } else {
            EntryType::Fifo
        };
        let mut h = header(entry_type, meta);
        let (major, minor) = if kind.is_fifo() {
            (0, 0)
        } else {
            (libc::major(meta.rdev()), libc::minor(meta.rdev()))
        };
        h.set_device_major(major)?;
        h.set_device_minor(minor)?;
        self.builder.append_data(&mut h, rel, io::empty())
    }

    // ANCHOR: entry
    // exercise 3.6: write one entry of the upper dir into the layer, whiteouts in OCI's form
    // builds on: 3.4, 3.5
    // hint: The upper dir speaks overlayfs, the layer speaks OCI. An overlay
    //   whiteout (is_overlay_whiteout) becomes an empty `.wh.NAME` entry
    //   (`marker(meta)` makes its header); an opaque directory (is_opaque)
    //   is written as a directory, then a `.wh..wh..opq` marker inside it.
    //   Everything else is itself.
    // hint: Per kind: a directory is its header (header(EntryType::Directory,
    //   ..)) and then its contents (self.dir); a symlink keeps its target
    //   (append_link); devices and fifos go to self.special; a socket is left
    //   out (a tar cannot hold one); a regular file is its content, or a hard
    //   link when first_name says so. Every kind but a whiteout carries its
    //   xattrs first (self.xattrs). Read metadata with symlink_metadata: a
    //   symlink is never followed.
    // hint: The OCI image spec, layer.md "Change Types", "Whiteouts"; tar(5).
    fn entry(&mut self, abs: &Path, rel: &Path) -> io::Result<()> {
        let meta = std::fs::symlink_metadata(abs)?;
        let kind = meta.file_type();
        if is_overlay_whiteout(&meta) {
            let name = rel
                .file_name()
                .expect("an entry has a name")
                .to_string_lossy();
            let path = rel.with_file_name(format!("{WHITEOUT_PREFIX}{name}"));
            return self
                .builder
                .append_data(&mut marker(&meta), path, io::empty());
        }
        if kind.is_socket() {
            return Ok(());
        }
        self.xattrs(abs)?;
        if kind.is_dir() {
            self.builder
                .append_data(&mut header(EntryType::Directory, &meta), rel, io::empty())?;
            if is_opaque(abs) {
                self.builder.append_data(
                    &mut marker(&meta),
                    rel.join(OPAQUE_MARKER),
                    io::empty(),
                )?;
            }
            return self.dir(abs, rel);
        }
        if kind.is_symlink() {
            let target = std::fs::read_link(abs)?;
            return self
                .builder
                .append_link(&mut header(EntryType::Symlink, &meta), rel, target);
        }
        if !kind.is_file() {
            return self.special(rel, &meta);
        }
        // A regular file. One with several names in this layer is stored once.
        if let Some(first) = first_name(&mut self.first_names, rel, &meta) {
            return self
                .builder
                .append_link(&mut header(EntryType::Link, &meta), rel, first);
        }
        let mut h = header(EntryType::Regular, &meta);
        h.set_size(meta.len());
        self.builder
            .append_data(&mut h, rel, std::fs::File::open(abs)?)
    }
    // ANCHOR_END: entry
}

// ANCHOR: first_name
// exercise 3.5: store a file with several names in this layer only once
// hint: A tar can say "this name is a hard link to that earlier name". A file
//   whose link count is above 1 may have other names in this layer: the
//   first name met in the walk stores the content, the later ones become
//   links to it. Files are told apart by (device, inode).
// hint: Return None to write the file itself (and remember `rel` under its
//   key the first time), Some(first) to write a link to `first`. A file with
//   nlink 1 has no other name: never remember it.
// hint: tar(5) "LNKTYPE"; stat(2) st_nlink, st_dev, st_ino.
pub fn first_name(
    first_names: &mut HashMap<(u64, u64), PathBuf>,
    rel: &Path,
    meta: &std::fs::Metadata,
) -> Option<PathBuf> {
    if meta.nlink() <= 1 {
        return None;
    }
    let key = (meta.dev(), meta.ino());
    if let Some(first) = first_names.get(&key) {
        return Some(first.clone());
    }
    first_names.insert(key, rel.to_path_buf());
    None
}
// ANCHOR_END: first_name

/// One line per entry: type, mode, owner, size, path (and link target):
/// what a layer contains, for people and snapshot tests.
pub fn listing(tar_bytes: &[u8]) -> io::Result<String> {
    let mut out = String::new();
    let mut archive = tar::Archive::new(tar_bytes);
    for entry in archive.entries()? {
        let entry = entry?;
        let h = entry.header();
        let kind = match h.entry_type() {
            EntryType::Directory => 'd',
            EntryType::Symlink => 'l',
            EntryType::Link => 'h',
            EntryType::Char => 'c',
            EntryType::Block => 'b',
            EntryType::Fifo => 'p',
            _ => '-',
        };
        let link = match entry.link_name()? {
            Some(target) => format!(" -> {}", target.display()),
            None => String::new(),
        };
        out.push_str(&format!(
            "{kind} {:04o} {}:{} {:>6} {}{link}\n",
            h.mode()?,
            h.uid()?,
            h.gid()?,
            h.size()?,
            entry.path()?.display()
        ));
    }
    Ok(out)
}

/// What a change did to a path, as `docker diff` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// `C`: there before, changed (or, for a directory, changed inside).
    Modified,
    /// `A`: not there before.
    Added,
    /// `D`: there before, now gone (a whiteout).
    Deleted,
}

impl Change {
    /// Docker's `Kind` number in `GET /containers/{id}/changes`.
    pub fn kind(self) -> u8 {
        match self {
            Change::Modified => 0,
            Change::Added => 1,
            Change::Deleted => 2,
        }
    }

    pub fn letter(self) -> char {
        match self {
            Change::Modified => 'C',
            Change::Added => 'A',
            Change::Deleted => 'D',
        }
    }
}

/// Whether `rel` exists in the stack `lowers` (bottom first), read as
/// overlayfs reads it: from the top, a whiteout hides the path, an opaque
/// directory hides everything below it in lower layers.
pub fn exists_below(lowers: &[PathBuf], rel: &Path) -> bool {
    find_below(lowers, rel).is_some()
}

/// Where `rel` is in the stack `lowers` (bottom first): the path in the
/// topmost layer that has it, unless a whiteout or an opaque directory
/// above hides it. Symlinks on the way are not followed.
pub fn find_below(lowers: &[PathBuf], rel: &Path) -> Option<PathBuf> {
    let parts: Vec<_> = rel
        .components()
        .filter(|c| matches!(c, std::path::Component::Normal(_)))
        .collect();
    for layer in lowers.iter().rev() {
        let mut hidden = false;
        let mut at = layer.clone();
        if parts.is_empty() {
            return Some(at);
        }
        for (i, part) in parts.iter().enumerate() {
            at.push(part);
            let Ok(meta) = std::fs::symlink_metadata(&at) else {
                break;
            };
            if is_overlay_whiteout(&meta) {
                return None;
            }
            if i + 1 == parts.len() {
                return Some(at);
            }
            if !meta.is_dir() {
                break;
            }
            if is_opaque(&at) {
                hidden = true;
            }
        }
        if hidden {
            return None;
        }
    }
    None
}

/// The changes an upper directory holds over `lowers`, in path order:
/// each whiteout a deletion, each entry new or changed, a directory's own
/// entry included (Docker lists `C /etc` for a file changed in /etc).
pub fn changes(upper: &Path, lowers: &[PathBuf]) -> io::Result<Vec<(Change, PathBuf)>> {
    let mut out = Vec::new();
    walk_changes(upper, Path::new(""), lowers, false, &mut out)?;
    Ok(out)
}

fn walk_changes(
    abs: &Path,
    rel: &Path,
    lowers: &[PathBuf],
    under_new: bool,
    out: &mut Vec<(Change, PathBuf)>,
) -> io::Result<()> {
    let mut names: Vec<std::ffi::OsString> = std::fs::read_dir(abs)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()?;
    names.sort();
    for name in names {
        let (path, rel_path) = (abs.join(&name), rel.join(&name));
        let meta = std::fs::symlink_metadata(&path)?;
        let shown = Path::new("/").join(&rel_path);
        if is_overlay_whiteout(&meta) {
            out.push((Change::Deleted, shown));
            continue;
        }
        let new = under_new || !exists_below(lowers, &rel_path);
        out.push((if new { Change::Added } else { Change::Modified }, shown));
        if meta.is_dir() {
            // Below an opaque directory every entry is new.
            let fresh = new || is_opaque(&path);
            walk_changes(&path, &rel_path, lowers, fresh, out)?;
        }
    }
    Ok(())
}
