//! The inverse of [`crate::diff`]: a layer tar unpacked into a directory
//! that overlayfs can stack as a lower layer, with OCI whiteouts turned
//! back into overlayfs's format (0:0 char devices, the opaque xattr).
//!
//! This applier refuses the plain path tricks (absolute names, `..`,
//! writing through a symlink that an earlier entry planted). Chapter 04
//! hardens it for layers from strangers: every rule of a safe unpack, caps
//! against decompression bombs, device nodes only when privileged.

use crate::whiteout::{classify, is_overlay_xattr, make_overlay_whiteout, set_opaque, OciName};
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

// ANCHOR: resolve_entry
// exercise 3.8: resolve an entry's path inside the layer, never through a symlink
// hint: A layer tar names its entries with paths, and a hostile one names
//   "../../etc/passwd", "/etc/passwd", or plants a symlink "d -> /etc" and
//   then writes "d/passwd". The path must stay under `dest` whatever it says:
//   return it made relative (the empty path for the root itself), or refuse.
// hint: Walk the components: a normal name is kept, "." is dropped, ".." and
//   a root or prefix are refused (InvalidData, naming the entry: `bad`). Then
//   every parent on the way must be a real directory under dest: look at each
//   with symlink_metadata (never metadata: that follows the link), create the
//   ones that do not exist, refuse one that is a symlink or a file.
// hint: path_resolution(7); the OCI image spec, layer.md "Changeset over
//   existing files"; CVE-2018-15664 and Go's archive/tar notes on "insecure
//   paths" for what goes wrong otherwise. std::path::Component names the kinds.
/// The entry path `raw` as a path relative to `dest` whose parents are real
/// directories inside it (made where missing).
pub fn resolve_entry(dest: &Path, raw: &Path) -> io::Result<PathBuf> {
    let mut rel = PathBuf::new();
    for part in raw.components() {
        match part {
            Component::Normal(p) => rel.push(p),
            Component::CurDir => {}
            Component::ParentDir => return Err(bad(raw, "`..` would leave the layer")),
            Component::RootDir | Component::Prefix(_) => {
                return Err(bad(raw, "absolute paths are not allowed"))
            }
        }
    }
    let mut at = dest.to_path_buf();
    if let Some(parent) = rel.parent() {
        for part in parent.components() {
            at.push(part);
            match std::fs::symlink_metadata(&at) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(bad(
                        &rel,
                        "a parent is not a directory (a symlink would lead out)",
                    ))
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => std::fs::create_dir(&at)?,
                Err(e) => return Err(e),
            }
        }
    }
    Ok(rel)
}
// ANCHOR_END: resolve_entry

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
// exercise 3.7: turn OCI whiteout markers into overlayfs's form
// builds on: 3.4
// hint: The inverse of 3.6. A layer directory that overlayfs stacks must say
//   "deleted" its own way: a 0:0 character device where the deleted entry was
//   (make_overlay_whiteout), and the xattr that makes a directory opaque
//   (set_opaque). `name` is an entry's file name, `parent` the directory (in
//   the layer being unpacked) it belongs in.
// hint: classify(name) says which. For a whiteout, whatever this layer has
//   already created under that name goes first (remove_any), then the
//   whiteout takes its place. Count each in `applied`; return true when the
//   name was a marker (nothing more to create), false for a Normal name.
// hint: overlayfs.rst "whiteouts and opaque directories"; mknod(2) (a
//   whiteout needs no CAP_MKNOD since Linux 5.8); the OCI layer.md "Whiteouts".
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
        let rel = resolve_entry(dest, &raw)?;
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
        let name = rel
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let parent = dest.join(rel.parent().unwrap_or(Path::new("")));
        if apply_marker(&name, &parent, &mut applied)? {
            continue;
        }
        let path = dest.join(&rel);
        match create_entry(&mut entry, dest, &rel, &path, policy)? {
            Created::SkippedDevice => applied.skipped_devices += 1,
            // A hard link shares the first name's inode, and its metadata.
            Created::Link => {}
            Created::Entry(bytes) => {
                applied.bytes += bytes;
                let header = entry.header().clone();
                if let Some(mtime) = apply_metadata(&mut entry, &header, &rel, &path)? {
                    dir_times.push((path, mtime));
                }
            }
        }
    }
    dir_times.sort_by_key(|(p, _)| std::cmp::Reverse(p.components().count()));
    for (dir, mtime) in dir_times {
        set_mtime(&dir, mtime)?;
    }
    Ok(applied)
}

/// What [`create_entry`] made.
pub enum Created {
    /// A device node the policy left out.
    SkippedDevice,
    /// A hard link to an earlier entry (it has that entry's metadata).
    Link,
    /// A new entry, with the bytes of content written; its metadata is next.
    Entry(u64),
}

// ANCHOR: create_entry
// exercise 3.9: create one layer entry by its kind
// builds on: 3.8
// hint: `path` is where the entry goes (its parents are checked real
//   directories); make it by its kind: a directory (one that is a real
//   directory already stays: a layer may list it again), a regular file with
//   its content copied from `entry`, a symlink to its target, a hard link to
//   an earlier entry of this layer, a device node or fifo with mknod(2).
// hint: Whatever is at `path` and is not a real directory goes first
//   (remove_any, which never follows a symlink). A hard link's target goes
//   through resolve_entry and must be a file this layer made (Created::Link:
//   it shares that file's metadata). The policy may skip devices; an empty
//   device field means 0; unknown kinds are an error naming the entry.
// hint: tar(5) for the entry types; mknod(2), link(2), symlink(2).
pub fn create_entry<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    dest: &Path,
    rel: &Path,
    path: &Path,
    policy: &Policy,
) -> io::Result<Created> {
    let h = entry.header().clone();
    let mode = h.mode()? & 0o7777;
    let kind = h.entry_type();
    let size = h.size()?;
    // lstat, never stat: a symlink planted earlier under this name must be
    // replaced, not followed.
    let is_real_dir = std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir());
    if kind != EntryType::Directory || !is_real_dir {
        remove_any(path)?;
    }
    let mut written = 0;
    match kind {
        EntryType::Directory => {
            if !is_real_dir {
                std::fs::create_dir(path)?;
            }
        }
        EntryType::Regular | EntryType::Continuous => {
            let mut file = std::fs::File::create(path)?;
            written = io::copy(&mut entry.take(size), &mut file)?;
        }
        EntryType::Symlink => {
            let target = entry
                .link_name()?
                .ok_or_else(|| bad(rel, "symlink without a target"))?;
            std::os::unix::fs::symlink(target, path)?;
        }
        EntryType::Link => {
            let target = entry
                .link_name()?
                .ok_or_else(|| bad(rel, "hard link without a target"))?;
            let target = resolve_entry(dest, &target)?;
            let source = dest.join(&target);
            if std::fs::symlink_metadata(&source).map(|m| m.is_file()).ok() != Some(true) {
                return Err(bad(rel, "hard link to a file this layer has not created"));
            }
            std::fs::hard_link(source, path)?;
            return Ok(Created::Link);
        }
        EntryType::Char | EntryType::Block if policy.devices == Devices::Skip => {
            return Ok(Created::SkippedDevice);
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
                path,
                sflag,
                nix::sys::stat::Mode::from_bits_truncate(mode),
                dev,
            )?;
        }
        other => return Err(bad(rel, &format!("unsupported entry type {other:?}"))),
    }
    Ok(Created::Entry(written))
}
// ANCHOR_END: create_entry

// ANCHOR: apply_metadata
// exercise 3.10: give a created entry its xattrs, owner, mode and time
// builds on: 3.9
// hint: What a layer keeps of a file besides its content: extended
//   attributes (PAX records SCHILY.xattr.NAME), the numeric owner and group,
//   the permission bits, the modification time. Set them in that order: a
//   chown clears setuid bits, so the mode comes after it. An ordinary user
//   cannot chown to another owner (EPERM): the file stays theirs.
// hint: Refuse trusted.* xattrs and overlayfs's own in user.*
//   (is_overlay_xattr: a mount in a user namespace reads user.overlay.*):
//   they would steer overlayfs (a layer could make a directory opaque, or
//   redirect it). A symlink has no mode of its own: leave it. A directory's time changes as its contents are made:
//   return Some(mtime) for the caller to set last, None for everything else
//   (whose time you set here, without following a symlink).
// hint: tar(5) "pax extended headers"; xattr(7) namespaces; fchownat(2)
//   AT_SYMLINK_NOFOLLOW; utimensat(2). set_owner, set_mtime and numeric are
//   here for you.
/// Sets the metadata of the entry just made at `path`; returns a
/// directory's mtime for the caller to set after its contents.
pub fn apply_metadata<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    h: &tar::Header,
    rel: &Path,
    path: &Path,
) -> io::Result<Option<i64>> {
    let kind = h.entry_type();
    if let Some(extensions) = entry.pax_extensions()? {
        for ext in extensions {
            let ext = ext?;
            let Some(name) = ext.key().ok().and_then(|k| k.strip_prefix("SCHILY.xattr.")) else {
                continue;
            };
            if name.starts_with("trusted.") || is_overlay_xattr(name) {
                return Err(bad(
                    rel,
                    &format!("refusing the xattr {name}: overlayfs's own xattrs would steer it"),
                ));
            }
            xattr::set(path, name, ext.value_bytes())?;
        }
    }
    // An ordinary user cannot give files away: they stay the user's, as GNU
    // tar does for a user who is not root.
    match set_owner(path, numeric(h.uid()) as u32, numeric(h.gid()) as u32) {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) && !nix::unistd::geteuid().is_root() => {}
        other => other?,
    }
    if kind != EntryType::Symlink {
        let mode = h.mode()? & 0o7777;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    }
    if kind == EntryType::Directory {
        return Ok(Some(numeric(h.mtime()) as i64));
    }
    set_mtime(path, numeric(h.mtime()) as i64)?;
    Ok(None)
}
// ANCHOR_END: apply_metadata

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
pub fn numeric(field: io::Result<u64>) -> u64 {
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
