//! The inverse of [`crate::diff`]: a layer tar unpacked into a directory
//! that overlayfs can stack as a lower layer, with OCI whiteouts turned
//! back into overlayfs's format (0:0 char devices, the opaque xattr).
//!
//! This applier refuses the plain path tricks (absolute names, `..`,
//! writing through a symlink that an earlier entry planted). Chapter 04
//! hardens it for layers from strangers: every rule of a safe unpack, caps
//! against decompression bombs, device nodes only when privileged.

use crate::whiteout::{classify, make_overlay_whiteout, set_opaque, OciName};
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use tar::EntryType;

/// What an apply did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Applied {
    pub entries: u64,
    pub whiteouts: u64,
    pub opaque_dirs: u64,
    /// Device nodes left out because the policy said so.
    pub skipped_devices: u64,
    /// Bytes of file content written.
    pub bytes: u64,
}

/// What to do with device node entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Devices {
    Create,
    /// Leave them out (unprivileged unpacking cannot create them anyway).
    Skip,
}

/// Limits for an apply. The default trusts the layer (our own diffs);
/// chapter 04 passes tight limits for layers from elsewhere.
#[derive(Clone, Debug)]
pub struct Policy {
    pub max_entries: u64,
    /// Most bytes of file content in the whole layer.
    pub max_bytes: u64,
    pub devices: Devices,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            max_entries: u64::MAX,
            max_bytes: u64::MAX,
            devices: Devices::Create,
        }
    }
}

fn bad(entry: &Path, rule: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("layer entry {}: {rule}", entry.display()),
    )
}

/// The entry's path made relative and checked: no absolute paths, no `..`.
pub fn clean_path(path: &Path) -> io::Result<PathBuf> {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::ParentDir => return Err(bad(path, "`..` would leave the layer")),
            Component::RootDir | Component::Prefix(_) => {
                return Err(bad(path, "absolute paths are not allowed"))
            }
        }
    }
    Ok(out)
}

/// Refuses a path whose parents are not real directories inside `dest`
/// (a symlink planted by an earlier entry would lead outside).
fn check_parents(dest: &Path, rel: &Path) -> io::Result<()> {
    let mut at = dest.to_path_buf();
    if let Some(parent) = rel.parent() {
        for part in parent.components() {
            at.push(part);
            match std::fs::symlink_metadata(&at) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(bad(
                        rel,
                        "a parent is not a directory (a symlink would lead out)",
                    ))
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => std::fs::create_dir_all(&at)?,
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// Removes whatever is at `path` (file, link, or directory tree), never
/// following a symlink.
pub fn remove_any(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

// ANCHOR: apply_marker
// exercise 3.5: turn OCI whiteout markers into overlayfs's format
// hint: classify(name): Opaque → set_opaque(parent), count it, return true.
// hint: Whiteout(target) → remove whatever is at parent/target, then
// hint: make_overlay_whiteout there, count it, return true. Normal → false (the
// hint: caller creates the entry). `parent` is the entry's directory in the layer.
pub fn apply_marker(name: &str, parent: &Path, applied: &mut Applied) -> io::Result<bool> {
    match classify(name) {
        OciName::Opaque => {
            set_opaque(parent)?;
            applied.opaque_dirs += 1;
            Ok(true)
        }
        OciName::Whiteout(target) => {
            let victim = parent.join(target);
            remove_any(&victim)?;
            make_overlay_whiteout(&victim)?;
            applied.whiteouts += 1;
            Ok(true)
        }
        OciName::Normal => Ok(false),
    }
}
// ANCHOR_END: apply_marker

/// Unpacks the layer `tar` into `dest`, trusting its size.
pub fn apply_layer<R: Read>(tar: R, dest: &Path) -> io::Result<Applied> {
    apply_layer_with(tar, dest, &Policy::default())
}

/// Unpacks the layer `tar` into `dest` within `policy`'s limits.
pub fn apply_layer_with<R: Read>(tar: R, dest: &Path, policy: &Policy) -> io::Result<Applied> {
    let mut archive = tar::Archive::new(tar);
    let mut applied = Applied::default();
    // Directory times are set last: creating their contents changes them.
    let mut dir_times: Vec<(PathBuf, i64)> = Vec::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let raw = entry.path()?.into_owned();
        let rel = clean_path(&raw)?;
        if rel.as_os_str().is_empty() {
            continue; // the root itself
        }
        applied.entries += 1;
        if applied.entries > policy.max_entries {
            return Err(bad(
                &rel,
                &format!(
                    "more than {} entries: refusing the layer",
                    policy.max_entries
                ),
            ));
        }
        let size = entry.header().size()?;
        if applied.bytes.saturating_add(size) > policy.max_bytes {
            return Err(bad(
                &rel,
                &format!(
                    "the layer's content would exceed {} bytes (a decompression bomb?)",
                    policy.max_bytes
                ),
            ));
        }
        check_parents(dest, &rel)?;
        let name = rel
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let parent = dest.join(rel.parent().unwrap_or(Path::new("")));
        if apply_marker(&name, &parent, &mut applied)? {
            continue;
        }
        let path = dest.join(&rel);
        let h = entry.header().clone();
        let mode = h.mode()? & 0o7777;
        let kind = h.entry_type();
        // lstat, never stat: a symlink planted earlier under this name must be
        // replaced, not followed (chmod through it would reach outside).
        let is_real_dir = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir());
        if kind != EntryType::Directory || !is_real_dir {
            remove_any(&path)?;
        }
        match kind {
            EntryType::Directory => {
                if !is_real_dir {
                    std::fs::create_dir(&path)?;
                }
                dir_times.push((path.clone(), numeric(h.mtime()) as i64));
            }
            EntryType::Regular | EntryType::Continuous => {
                let mut file = std::fs::File::create(&path)?;
                applied.bytes += io::copy(&mut (&mut entry).take(size), &mut file)?;
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name()?
                    .ok_or_else(|| bad(&rel, "symlink without a target"))?;
                std::os::unix::fs::symlink(target, &path)?;
            }
            EntryType::Link => {
                let target = entry
                    .link_name()?
                    .ok_or_else(|| bad(&rel, "hard link without a target"))?;
                let target = clean_path(&target)?;
                check_parents(dest, &target)?;
                let source = dest.join(&target);
                if std::fs::symlink_metadata(&source).map(|m| m.is_file()).ok() != Some(true) {
                    return Err(bad(&rel, "hard link to a file this layer has not created"));
                }
                std::fs::hard_link(source, &path)?;
                continue; // shares the first name's metadata
            }
            EntryType::Char | EntryType::Block if policy.devices == Devices::Skip => {
                applied.skipped_devices += 1;
                continue;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let sflag = match kind {
                    EntryType::Char => nix::sys::stat::SFlag::S_IFCHR,
                    EntryType::Block => nix::sys::stat::SFlag::S_IFBLK,
                    _ => nix::sys::stat::SFlag::S_IFIFO,
                };
                // A fifo may carry empty device fields: they mean 0.
                let number = |v: io::Result<Option<u32>>| v.ok().flatten().unwrap_or(0);
                let dev = libc::makedev(number(h.device_major()), number(h.device_minor()));
                nix::sys::stat::mknod(
                    &path,
                    sflag,
                    nix::sys::stat::Mode::from_bits_truncate(mode),
                    dev,
                )?;
            }
            other => return Err(bad(&rel, &format!("unsupported entry type {other:?}"))),
        }
        if let Some(extensions) = entry.pax_extensions()? {
            for ext in extensions {
                let ext = ext?;
                let Some(name) = ext.key().ok().and_then(|k| k.strip_prefix("SCHILY.xattr."))
                else {
                    continue;
                };
                if name.starts_with("trusted.") {
                    return Err(bad(
                        &rel,
                        &format!("refusing the xattr {name}: trusted.* would steer overlayfs"),
                    ));
                }
                xattr::set(&path, name, ext.value_bytes())?;
            }
        }
        set_owner(&path, numeric(h.uid()) as u32, numeric(h.gid()) as u32)?;
        if kind != EntryType::Symlink {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))?;
        }
        if kind != EntryType::Directory {
            set_mtime(&path, numeric(h.mtime()) as i64)?;
        }
    }
    dir_times.sort_by_key(|(p, _)| std::cmp::Reverse(p.components().count()));
    for (dir, mtime) in dir_times {
        set_mtime(&dir, mtime)?;
    }
    Ok(applied)
}

/// Sets owner and group of `path` itself (a symlink is not followed).
pub fn set_owner(path: &Path, uid: u32, gid: u32) -> io::Result<()> {
    nix::unistd::fchownat(
        nix::fcntl::AT_FDCWD,
        path,
        Some(nix::unistd::Uid::from_raw(uid)),
        Some(nix::unistd::Gid::from_raw(gid)),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )?;
    Ok(())
}

/// A numeric header field; empty (as some writers leave uid, gid or mtime)
/// reads as 0, as Go's archive/tar, Docker's reader, takes it.
fn numeric(field: io::Result<u64>) -> u64 {
    field.unwrap_or(0)
}

/// Sets a path's modification (and access) time, not following symlinks.
pub fn set_mtime(path: &Path, secs: i64) -> io::Result<()> {
    let t = nix::sys::time::TimeSpec::new(secs, 0);
    nix::sys::stat::utimensat(
        nix::fcntl::AT_FDCWD,
        path,
        &t,
        &t,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )?;
    Ok(())
}
