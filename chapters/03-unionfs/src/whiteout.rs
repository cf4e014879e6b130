//! Deletions in a layered filesystem. A layer cannot remove a file from the
//! layers below it (they are read-only and shared), so it records the
//! deletion instead. Two formats exist, and we convert between them:
//!
//! | meaning | overlayfs (in an upper dir) | OCI layer tar |
//! |---|---|---|
//! | `NAME` is deleted | a char device `NAME` with number 0:0 | an empty file `.wh.NAME` |
//! | directory `D` hides everything below | xattr `trusted.overlay.opaque=y` on `D` | an empty file `D/.wh..wh..opq` |
//!
//! Overlayfs (since Linux 5.8) may make many whiteouts hard links of one
//! shared inode; they are still whiteouts, not a hard-linked file.
//!
//! Inside a user namespace (a rootless engine), overlayfs's own xattrs live
//! in `user.overlay.*` instead: only the host's root may set `trusted.*`,
//! so such a mount takes the `userxattr` option (Linux 5.11) and reads
//! `user.overlay.opaque`. [`OverlayXattrs::here`] says which this process
//! uses; the marker functions below follow it.

use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

/// The OCI prefix of a whiteout file.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// The OCI name of the opaque marker.
pub const OPAQUE_MARKER: &str = ".wh..wh..opq";
/// Where overlayfs keeps its own xattrs (the opaque marker among them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OverlayXattrs {
    /// `trusted.overlay.*`: mounts made by the host's root, the only one who
    /// may set `trusted.*` xattrs.
    Trusted,
    /// `user.overlay.*`: mounts with the `userxattr` option, as the root of a
    /// user namespace makes them.
    User,
}

impl OverlayXattrs {
    /// The host's root uses `trusted.overlay.*`; anyone in a user namespace
    /// (a rootless engine, an ordinary user's experiment) `user.overlay.*`.
    pub fn here() -> OverlayXattrs {
        if chapter_01::user::in_initial_namespace() {
            OverlayXattrs::Trusted
        } else {
            OverlayXattrs::User
        }
    }

    /// The xattr that makes a directory opaque.
    pub fn opaque(self) -> &'static str {
        match self {
            OverlayXattrs::Trusted => "trusted.overlay.opaque",
            OverlayXattrs::User => "user.overlay.opaque",
        }
    }
}

/// An xattr of overlayfs's own, in either namespace: it steers the mount
/// (opaque, redirect, origin), so a layer never carries one.
pub fn is_overlay_xattr(name: &str) -> bool {
    name.starts_with("trusted.overlay.") || name.starts_with("user.overlay.")
}

/// What an entry name in an OCI layer means.
#[derive(Debug, PartialEq, Eq)]
pub enum OciName<'a> {
    /// A file or directory to create.
    Normal,
    /// Delete this sibling.
    Whiteout(&'a str),
    /// The containing directory is opaque.
    Opaque,
}

// ANCHOR: classify
// exercise 3.4: tell what an OCI layer entry's file name means
// hint: An OCI layer is a tar, and a tar cannot hold "this was deleted": the
//   image format spells deletions as names. `.wh.NAME` deletes the sibling
//   NAME from the layers below; `.wh..wh..opq` says its directory hides
//   everything below it. Any other name is a file to create.
// hint: Check the opaque marker first (it starts with the whiteout prefix
//   too). An empty NAME (".wh." alone) is malformed: call it Normal, so the
//   applier refuses it as an ordinary bad name instead of deleting "".
// hint: The OCI image spec, layer.md "Whiteouts" and "Opaque Whiteout".
pub fn classify(name: &str) -> OciName<'_> {
    if name == OPAQUE_MARKER {
        OciName::Opaque
    } else {
        match name.strip_prefix(WHITEOUT_PREFIX) {
            Some(target) if !target.is_empty() => OciName::Whiteout(target),
            _ => OciName::Normal,
        }
    }
}
// ANCHOR_END: classify

// ANCHOR: is_overlay_whiteout
/// An overlayfs whiteout: a character device numbered 0:0.
pub fn is_overlay_whiteout(meta: &std::fs::Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}
// ANCHOR_END: is_overlay_whiteout

/// Whether `dir` carries overlayfs's opaque marker (in the namespace this
/// process's mounts use).
pub fn is_opaque(dir: &Path) -> bool {
    matches!(xattr::get(dir, OverlayXattrs::here().opaque()), Ok(Some(v)) if v == b"y")
}

/// Makes `path` an overlayfs whiteout (needs CAP_MKNOD).
pub fn make_overlay_whiteout(path: &Path) -> io::Result<()> {
    nix::sys::stat::mknod(
        path,
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::empty(),
        0,
    )
    .map_err(|e| {
        io::Error::new(
            io::Error::from(e).kind(),
            format!("creating whiteout {}: {e}", path.display()),
        )
    })
}

/// Marks `dir` opaque for overlayfs: `trusted.overlay.opaque` as the host's
/// root, `user.overlay.opaque` in a user namespace (see [`OverlayXattrs`]).
pub fn set_opaque(dir: &Path) -> io::Result<()> {
    let name = OverlayXattrs::here().opaque();
    xattr::set(dir, name, b"y").map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("marking {} opaque ({name}): {e}", dir.display()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oci_names() {
        assert_eq!(classify(".wh.foo"), OciName::Whiteout("foo"));
        assert_eq!(classify(".wh..wh..opq"), OciName::Opaque);
        assert_eq!(classify(".wh."), OciName::Normal);
        assert_eq!(classify("foo.wh.bar"), OciName::Normal);
    }

    #[test]
    fn overlay_xattrs_in_both_namespaces_are_overlays_own() {
        assert!(is_overlay_xattr("trusted.overlay.opaque"));
        assert!(is_overlay_xattr("user.overlay.redirect"));
        assert!(!is_overlay_xattr("user.mime_type"));
        assert!(!is_overlay_xattr("security.capability"));
    }
}
