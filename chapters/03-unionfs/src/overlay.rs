//! Mounting overlayfs: read-only lower layers, one writable upper layer,
//! a work directory, shown merged at one mount point (see the kernel's
//! Documentation/filesystems/overlayfs.rst).
//!
//! Lookups go top-down: the upper layer first, then each lower layer, the
//! first hit wins. Writes go to the upper layer only; changing a file that
//! lives in a lower layer first *copies it up* (copy-on-write). Deleting
//! one leaves a whiteout in the upper layer.
//!
//! Two ways to pass the layers:
//! - `mount(2)` with `lowerdir=TOP:...:BOTTOM` in its option string, which
//!   the kernel limits to one page (4096 bytes): long paths or many layers
//!   do not fit;
//! - the new mount API (`fsopen`, `fsconfig`, `fsmount`, `move_mount`),
//!   where Linux 6.8+ accepts one `lowerdir+` per layer, without a length
//!   limit. We use it where the kernel has it.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// The most lower layers overlayfs stacks (OVL_MAX_STACK).
pub const MAX_LAYERS: usize = 500;
/// What `mount(2)` accepts as its option string: one page, with a NUL.
const PAGE_LIMIT: usize = 4095;

/// The layers of one overlay mount.
#[derive(Clone, Debug)]
pub struct Layers {
    /// Read-only layers, bottom (base) first.
    pub lower: Vec<PathBuf>,
    pub upper: PathBuf,
    pub work: PathBuf,
    /// Mount with `userxattr` (Linux 5.11): overlay's own xattrs (the
    /// opaque marker) in `user.overlay.*`, as a mount inside a user
    /// namespace needs; see [`crate::whiteout::OverlayXattrs`].
    pub userxattr: bool,
}

impl Layers {
    /// A stack for a mount made by this process: `userxattr` when it is in
    /// a user namespace.
    pub fn new(lower: Vec<PathBuf>, upper: PathBuf, work: PathBuf) -> Layers {
        Layers {
            lower,
            upper,
            work,
            userxattr: crate::whiteout::OverlayXattrs::here()
                == crate::whiteout::OverlayXattrs::User,
        }
    }
}

// ANCHOR: lowerdir_option
// exercise 3.1: the mount options for a stack of layers
// hint: overlayfs takes its layers in the option string of mount(2):
//   lowerdir= the read-only layers, separated by ':', upperdir= the writable
//   layer, workdir= its scratch directory, the three separated by ','.
// hint: Lookups go through lowerdir from left to right, so the topmost layer
//   comes FIRST, while `lower` lists them the other way, base first (as an
//   image lists its layers). "lowerdir=/l2:/l1,upperdir=/u,workdir=/w".
//   With `userxattr` set, the option of that name follows: in a user
//   namespace overlay must keep its xattrs in user.overlay.*.
// hint: The kernel's Documentation/filesystems/overlayfs.rst, "Multiple lower
//   layers" and "Upper and Lower".
pub fn mount_options(layers: &Layers) -> String {
    let lower: Vec<String> = layers
        .lower
        .iter()
        .rev()
        .map(|p| p.display().to_string())
        .collect();
    let mut options = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        layers.upper.display(),
        layers.work.display()
    );
    if layers.userxattr {
        options.push_str(",userxattr");
    }
    options
}
// ANCHOR_END: lowerdir_option

/// Why a stack cannot be mounted, found before asking the kernel.
pub fn check(layers: &Layers) -> Result<(), String> {
    if layers.lower.is_empty() {
        return Err("an overlay needs at least one lower layer".into());
    }
    if layers.lower.len() > MAX_LAYERS {
        return Err(format!(
            "{} lower layers: overlayfs stacks at most {MAX_LAYERS} (OVL_MAX_STACK); squash some layers",
            layers.lower.len()
        ));
    }
    for dir in layers.lower.iter().chain([&layers.upper, &layers.work]) {
        match std::fs::metadata(dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(format!("layer {} is not a directory", dir.display())),
            Err(e) => return Err(format!("layer directory {}: {e}", dir.display())),
        }
        if dir.to_string_lossy().contains([',', ':']) {
            return Err(format!(
                "layer path {} contains ',' or ':', which overlay options cannot carry",
                dir.display()
            ));
        }
    }
    for dir in [&layers.upper, &layers.work] {
        if is_on_overlay(dir) {
            return Err(format!(
                "{} is itself on overlayfs: an upper or work directory must be on a real filesystem \
                 (ext4, xfs, tmpfs), not inside another overlay (are you inside a container?)",
                dir.display()
            ));
        }
    }
    use std::os::unix::fs::MetadataExt;
    let dev = |p: &Path| std::fs::metadata(p).map(|m| m.dev()).unwrap_or(0);
    if dev(&layers.upper) != dev(&layers.work) {
        return Err("the upper and work directories must be on the same filesystem".into());
    }
    Ok(())
}

/// Whether `path` lives on an overlayfs (a container inside a container).
pub fn is_on_overlay(path: &Path) -> bool {
    nix::sys::statfs::statfs(path)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::OVERLAYFS_SUPER_MAGIC)
}

/// A mounted overlay; unmounted when dropped.
#[derive(Debug)]
pub struct OverlayMount {
    target: PathBuf,
    pub method: &'static str,
}

impl OverlayMount {
    pub fn target(&self) -> &Path {
        &self.target
    }
}

impl Drop for OverlayMount {
    fn drop(&mut self) {
        if nix::mount::umount2(&self.target, nix::mount::MntFlags::empty()).is_err() {
            // Still busy (a process inside): detach it; it goes when unused.
            let _ = nix::mount::umount2(&self.target, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

/// Mounts `layers` at `target`: with `mount(2)` when the options fit in
/// its one page, else with the new mount API's `lowerdir+` (Linux 6.8).
pub fn mount(layers: &Layers, target: &Path) -> Result<OverlayMount, String> {
    check(layers)?;
    if mount_options(layers).len() <= PAGE_LIMIT {
        return mount_legacy(layers, target);
    }
    mount_new_api(layers, target).map_err(|e| {
        let why = match e.raw_os_error() {
            Some(libc::EINVAL) | Some(libc::ENOSYS) => {
                " (this kernel has no lowerdir+, Linux 6.8: use shorter layer paths or fewer layers)"
            }
            _ => hint(&e),
        };
        format!(
            "mounting {} layers on {} with the new mount API: {e}{why}",
            layers.lower.len(),
            target.display()
        )
    })?;
    Ok(OverlayMount {
        target: target.to_path_buf(),
        method: "fsconfig lowerdir+",
    })
}

// ANCHOR: mount_legacy
// exercise 3.2: mount the stack with mount(2)
// builds on: 3.1
// hint: One mount(2) call: source "overlay" (any name: it shows in
//   /proc/mounts), filesystem type "overlay", no flags, and the option string
//   of 3.1 as the data. The layers are checked first (`check`: they exist, the
//   upper and work dirs share a filesystem and are not on an overlay).
// hint: mount(2) reads at most one page of options (4096 bytes with the NUL):
//   a longer string is cut, and a cut path fails strangely. Refuse an option
//   string over PAGE_LIMIT before trying, and say what to do. A failed mount
//   is reported with the target and `hint(errno)`.
// hint: mount(2) "data" argument; overlayfs.rst "Multiple lower layers" (the
//   page limit). Return an OverlayMount: its Drop unmounts.
/// Mounts with `mount(2)` and a `lowerdir=` option string (every kernel;
/// limited to one page of options).
pub fn mount_legacy(layers: &Layers, target: &Path) -> Result<OverlayMount, String> {
    check(layers)?;
    let options = mount_options(layers);
    if options.len() > PAGE_LIMIT {
        return Err(format!(
            "{} layers make a {}-byte option string, over mount(2)'s one-page limit: \
             use the new mount API (lowerdir+, Linux 6.8), shorter layer paths, or fewer layers",
            layers.lower.len(),
            options.len()
        ));
    }
    nix::mount::mount(
        Some("overlay"),
        target,
        Some("overlay"),
        nix::mount::MsFlags::empty(),
        Some(options.as_str()),
    )
    .map_err(|e| {
        let e = io::Error::from(e);
        format!("mounting overlay on {}: {e}{}", target.display(), hint(&e))
    })?;
    Ok(OverlayMount {
        target: target.to_path_buf(),
        method: "mount(2) lowerdir=",
    })
}
// ANCHOR_END: mount_legacy

fn hint(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::EPERM) => " (mounting needs CAP_SYS_ADMIN)",
        Some(libc::ENODEV) => {
            " (overlayfs is not available: modprobe overlay, or use the copy driver)"
        }
        Some(libc::EINVAL) => {
            " (the kernel refused the layers: an upper dir on overlayfs, a work dir on another \
             filesystem, or a work dir in use by another mount)"
        }
        Some(libc::ENOENT) => " (a layer directory or the mount point does not exist)",
        _ => "",
    }
}

fn cstring(s: &str) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL byte in a path"))
}

// ANCHOR: mount_new_api
// exercise 3.3: mount a stack of any length with the new mount API
// builds on: 3.2
// hint: Since Linux 5.2 a mount can be built step by step: fsopen("overlay")
//   gives a filesystem context, fsconfig sets its options one at a time,
//   FSCONFIG_CMD_CREATE makes the superblock, fsmount turns it into a
//   detached mount, move_mount puts that on `target`. Each step is a raw
//   syscall (libc::SYS_fsopen, ...) returning a descriptor or -1.
// hint: Since 6.8 overlayfs takes "lowerdir+" once per layer, in the same
//   order as lowerdir= (top first), with no page limit on the whole; then
//   "upperdir" and "workdir" (FSCONFIG_SET_STRING), and with `userxattr` set
//   the flag of that name (FSCONFIG_SET_FLAG, no value). move_mount of the mount
//   descriptor itself needs an empty path and MOVE_MOUNT_F_EMPTY_PATH. Own
//   every descriptor you get (OwnedFd), so errors close them.
// hint: fsopen(2), fsconfig(2), fsmount(2), move_mount(2); overlayfs.rst
//   "Multiple lower layers" (lowerdir+, datadir+).
/// `fsopen("overlay")`, one `lowerdir+` per layer (top first), upper, work,
/// create, `fsmount`, `move_mount` onto the target.
fn mount_new_api(layers: &Layers, target: &Path) -> io::Result<()> {
    // SAFETY: raw system calls of the new mount API, with C strings that
    // outlive each call; returned descriptors are owned immediately.
    unsafe {
        let fs = libc::syscall(libc::SYS_fsopen, c"overlay".as_ptr(), libc::FSOPEN_CLOEXEC);
        if fs < 0 {
            return Err(io::Error::last_os_error());
        }
        let fs = OwnedFd::from_raw_fd(fs as i32);
        let set = |key: &str, value: &str| -> io::Result<()> {
            let (k, v) = (cstring(key)?, cstring(value)?);
            let rc = libc::syscall(
                libc::SYS_fsconfig,
                fs.as_raw_fd(),
                libc::FSCONFIG_SET_STRING,
                k.as_ptr(),
                v.as_ptr(),
                0,
            );
            if rc < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(())
            }
        };
        for layer in layers.lower.iter().rev() {
            set("lowerdir+", &layer.to_string_lossy())?;
        }
        set("upperdir", &layers.upper.to_string_lossy())?;
        set("workdir", &layers.work.to_string_lossy())?;
        if layers.userxattr {
            let rc = libc::syscall(
                libc::SYS_fsconfig,
                fs.as_raw_fd(),
                libc::FSCONFIG_SET_FLAG,
                c"userxattr".as_ptr(),
                std::ptr::null::<libc::c_void>(),
                0,
            );
            if rc < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        let rc = libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            libc::FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        );
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        let mnt = libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), libc::FSMOUNT_CLOEXEC, 0);
        if mnt < 0 {
            return Err(io::Error::last_os_error());
        }
        let mnt = OwnedFd::from_raw_fd(mnt as i32);
        let target = cstring(&target.to_string_lossy())?;
        let rc = libc::syscall(
            libc::SYS_move_mount,
            mnt.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            libc::MOVE_MOUNT_F_EMPTY_PATH,
        );
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}
// ANCHOR_END: mount_new_api
