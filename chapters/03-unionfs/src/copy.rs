//! The fallback for hosts without overlayfs (or where the container's
//! directory sits on an overlay itself): copy every layer, bottom up, into
//! one directory, applying whiteouts as we go. It is what the union
//! filesystem saves us from: starting a container costs a full copy.
//!
//! Changes are found afterwards by comparing the tree with a record of what
//! was copied (type, mode, owner, size, modification time: the "naive diff"
//! Docker's vfs driver uses too), and written as an overlay-style upper
//! directory, so [`crate::diff`] turns them into a layer unchanged.

use crate::apply::{remove_any, set_owner};
use crate::whiteout::{is_opaque, is_overlay_whiteout, make_overlay_whiteout};
use std::collections::{BTreeMap, HashMap};
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// What identifies an unchanged entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stamp {
    kind: u32,
    mode: u32,
    uid: u32,
    gid: u32,
    size: u64,
    mtime_ns: i128,
}

fn stamp(meta: &std::fs::Metadata) -> Stamp {
    Stamp {
        kind: meta.mode() & libc::S_IFMT,
        mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
        size: if meta.is_dir() { 0 } else { meta.len() },
        mtime_ns: meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128,
    }
}

/// Copies one entry (not a directory's contents) with its metadata.
fn copy_entry(
    src: &Path,
    dst: &Path,
    meta: &std::fs::Metadata,
    links: &mut HashMap<(u64, u64), PathBuf>,
) -> io::Result<()> {
    let kind = meta.file_type();
    if kind.is_dir() {
        if !dst.is_dir() {
            remove_any(dst)?;
            std::fs::create_dir(dst)?;
        }
    } else if kind.is_symlink() {
        std::os::unix::fs::symlink(std::fs::read_link(src)?, dst)?;
    } else if kind.is_file() {
        if meta.nlink() > 1 {
            if let Some(first) = links.get(&(meta.dev(), meta.ino())) {
                return std::fs::hard_link(first, dst);
            }
            links.insert((meta.dev(), meta.ino()), dst.to_path_buf());
        }
        std::fs::copy(src, dst)?;
    } else if kind.is_char_device() || kind.is_block_device() || kind.is_fifo() {
        let sflag = nix::sys::stat::SFlag::from_bits_truncate(meta.mode() & libc::S_IFMT);
        nix::sys::stat::mknod(dst, sflag, nix::sys::stat::Mode::empty(), meta.rdev())?;
    } else {
        return Ok(()); // sockets are not copied
    }
    for name in xattr::list(src)? {
        if !name.to_string_lossy().starts_with("trusted.overlay.") {
            if let Some(v) = xattr::get(src, &name)? {
                xattr::set(dst, &name, &v)?;
            }
        }
    }
    set_owner(dst, meta.uid(), meta.gid())?;
    if !kind.is_symlink() {
        std::fs::set_permissions(dst, std::fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    }
    let (atime, mtime) = (
        nix::sys::time::TimeSpec::new(meta.atime(), meta.atime_nsec()),
        nix::sys::time::TimeSpec::new(meta.mtime(), meta.mtime_nsec()),
    );
    nix::sys::stat::utimensat(
        nix::fcntl::AT_FDCWD,
        dst,
        &atime,
        &mtime,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )?;
    Ok(())
}

// ANCHOR: merge_layer
// exercise 3.11: the copy fallback: lay one layer over a directory as overlayfs would show it
// builds on: 3.4
// hint: Without overlayfs the union is made by copying: each layer, bottom
//   first, onto one directory. Walk layer `src` in name order: what it has
//   replaces what `dst` had, an overlay whiteout (is_overlay_whiteout) removes
//   it, a directory merges into the one below (copy_entry, then recurse).
// hint: An opaque directory (is_opaque) hides everything below it: remove the
//   directory in `dst` before copying it. A directory's own time is the
//   layer's: merging its contents changes it, so set it back afterwards.
//   Anything that is not a directory replaces what was there (remove_any,
//   then copy_entry). `links` keeps a layer's hard links linked.
// hint: overlayfs.rst "Directories" and "whiteouts and opaque directories";
//   Docker's vfs storage driver does this; utimensat(2).
/// Merges layer `src` onto `dst`, as overlayfs would show it.
fn merge_layer(src: &Path, dst: &Path, links: &mut HashMap<(u64, u64), PathBuf>) -> io::Result<()> {
    let mut names: Vec<_> = std::fs::read_dir(src)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()?;
    names.sort();
    for name in names {
        let (s, d) = (src.join(&name), dst.join(&name));
        let meta = std::fs::symlink_metadata(&s)?;
        if is_overlay_whiteout(&meta) {
            remove_any(&d)?;
            continue;
        }
        if meta.is_dir() {
            if is_opaque(&s) {
                remove_any(&d)?;
            }
            copy_entry(&s, &d, &meta, links)?;
            merge_layer(&s, &d, links)?;
            // Contents changed the directory's time: restore the layer's.
            let t = nix::sys::time::TimeSpec::new(meta.mtime(), meta.mtime_nsec());
            nix::sys::stat::utimensat(
                nix::fcntl::AT_FDCWD,
                &d,
                &t,
                &t,
                nix::sys::stat::UtimensatFlags::NoFollowSymlink,
            )?;
        } else {
            remove_any(&d)?;
            copy_entry(&s, &d, &meta, links)?;
        }
    }
    Ok(())
}
// ANCHOR_END: merge_layer

/// Copies the layers (bottom first) into `target` and returns the record
/// of what is there, for finding changes later.
pub fn materialize(lower: &[PathBuf], target: &Path) -> io::Result<BTreeMap<PathBuf, Stamp>> {
    for layer in lower {
        merge_layer(layer, target, &mut HashMap::new())?;
    }
    record(target)
}

/// Type, mode, owner, size and mtime of everything under `root`.
pub fn record(root: &Path) -> io::Result<BTreeMap<PathBuf, Stamp>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for entry in std::fs::read_dir(root.join(&rel))? {
            let entry = entry?;
            let rel = rel.join(entry.file_name());
            let meta = std::fs::symlink_metadata(root.join(&rel))?;
            if meta.is_dir() {
                stack.push(rel.clone());
            }
            out.insert(rel, stamp(&meta));
        }
    }
    Ok(out)
}

// ANCHOR: changes_as_upper
// exercise 3.12: the copy fallback's diff: what changed, written as an overlay upper dir
// builds on: 3.11
// hint: A copied root has no upper dir recording what the container changed,
//   so compare: `before` is the record made when the layers were copied
//   (record: type, mode, owner, size, mtime per path), `record(merged)` the
//   tree now. Write into `upper` what overlayfs would have: every entry that
//   is new or whose stamp differs (with copy_entry), every entry that is gone
//   as a whiteout (make_overlay_whiteout). 3.6 then makes the layer.
// hint: overlayfs copies a changed file's directories up too: create each
//   missing parent in `upper` from `merged` first. A directory already in
//   upper is not copied again. Only the top of a deleted subtree gets a
//   whiteout (its parent still exists); what was below it needs none.
// hint: Docker's "naive diff" (daemon/graphdriver/fsdiff.go) is this
//   comparison; overlayfs.rst "whiteouts and opaque directories".
/// Writes into `upper` what turns the recorded tree into `merged`: changed
/// and new entries copied, deleted ones as whiteouts.
pub fn changes_as_upper(
    before: &BTreeMap<PathBuf, Stamp>,
    merged: &Path,
    upper: &Path,
) -> io::Result<()> {
    let after = record(merged)?;
    let mut links = HashMap::new();
    for (rel, now) in &after {
        if before.get(rel) == Some(now) {
            continue;
        }
        // Parents come along (as overlayfs copies up a changed file's directories).
        let mut at = PathBuf::new();
        for part in rel.parent().into_iter().flat_map(|p| p.components()) {
            at.push(part);
            if !upper.join(&at).exists() {
                copy_entry(
                    &merged.join(&at),
                    &upper.join(&at),
                    &std::fs::symlink_metadata(merged.join(&at))?,
                    &mut links,
                )?;
            }
        }
        let meta = std::fs::symlink_metadata(merged.join(rel))?;
        if !upper.join(rel).exists() || !meta.is_dir() {
            copy_entry(&merged.join(rel), &upper.join(rel), &meta, &mut links)?;
        }
    }
    for rel in before.keys() {
        let gone = !after.contains_key(rel);
        let parent_gone = rel
            .parent()
            .is_some_and(|p| !p.as_os_str().is_empty() && !after.contains_key(p));
        if gone && !parent_gone {
            if let Some(parent) = rel.parent() {
                std::fs::create_dir_all(upper.join(parent))?;
            }
            make_overlay_whiteout(&upper.join(rel))?;
        }
    }
    Ok(())
}
// ANCHOR_END: changes_as_upper

/// Disk blocks used under `root`, each inode counted once (what `du`
/// says; the engine's `system df`, chapter 03's disk experiment).
pub fn disk_usage(root: &Path) -> io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    let mut seen = std::collections::HashSet::new();
    let mut total = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let p = e?.path();
            let m = std::fs::symlink_metadata(&p)?;
            if seen.insert((m.dev(), m.ino())) {
                total += m.blocks() * 512;
            }
            if m.is_dir() {
                stack.push(p);
            }
        }
    }
    Ok(total)
}
