//! Layers for a container in a user namespace (`--userns-remap`).
//!
//! Container root is host uid 100000 (say); the layers on disk are owned
//! by 0, 1000, …. Seen from inside the user namespace, a file of host uid
//! 0 belongs to nobody (65534): root inside could not even write `/`. Two
//! ways out:
//!
//! - **idmapped mounts** (mount_setattr(2) `MOUNT_ATTR_IDMAP`, Linux 5.12;
//!   overlayfs takes them as lower layers since 5.19): a bind of the layer
//!   that shows each on-disk owner through the container's map, 0 as
//!   100000, 1000 as 101000. Nothing on disk changes, so one unpacked
//!   layer serves every container, remapped or not, and a remapped
//!   container starts as fast as any other.
//! - **shifted copies** (what Docker does: a store per remapped root, its
//!   layers chowned at unpack): a copy of each layer with every owner
//!   shifted. It works everywhere, costs a copy of every layer per
//!   remapped root, and is the fallback here where the kernel or the
//!   filesystem cannot idmap.
//!
//! The map of an idmapped mount is a user namespace, given by descriptor:
//! [`user_namespace`] makes one that holds nothing but the map.

use chapter_01::user::{map_id, proc_writer, write_id_maps};
use chapter_01::IdMap;
use nix::errno::Errno;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

fn c_path(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL byte in a path"))
}

/// A user namespace with `map`, as a descriptor (`/proc/PID/ns/user` of a
/// short-lived child that only holds it). Needs root to write any map.
pub fn user_namespace(map: &IdMap) -> io::Result<OwnedFd> {
    // The child only waits to be killed. (Not for a pipe's EOF: a process
    // cloned meanwhile by another thread would hold a copy of the write end.)
    let entry = Box::new(|| loop {
        // SAFETY: pause(2) has no arguments.
        unsafe { libc::pause() };
    });
    let pid = chapter_01::parent::clone_child(nix::sched::CloneFlags::CLONE_NEWUSER, entry)
        .map_err(io::Error::from)?;
    let result = write_id_maps(map, &mut proc_writer(pid)).and_then(|()| {
        let file = std::fs::File::open(format!("/proc/{pid}/ns/user"))?;
        Ok(OwnedFd::from(file))
    });
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    while let Err(Errno::EINTR) = nix::sys::wait::waitpid(pid, None) {}
    result
}

/// An idmapped bind; detached when dropped.
#[derive(Debug)]
pub struct IdmappedMount {
    target: PathBuf,
}

impl IdmappedMount {
    pub fn target(&self) -> &Path {
        &self.target
    }
}

impl Drop for IdmappedMount {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.target, nix::mount::MntFlags::MNT_DETACH);
    }
}

const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
const OPEN_TREE_CLONE: libc::c_uint = 1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;

/// Binds `source` read-only on `target`, its owners shown through the map
/// of the user namespace `userns`: open_tree(2) clones the tree as a
/// detached mount, mount_setattr(2) idmaps it, move_mount(2) attaches it.
pub fn bind_idmapped(
    source: &Path,
    target: &Path,
    userns: BorrowedFd,
) -> io::Result<IdmappedMount> {
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    let (source_c, target_c) = (c_path(source)?, c_path(target)?);
    // SAFETY: raw system calls with C strings and a struct that outlive each
    // call; the descriptor returned is owned at once.
    unsafe {
        let fd = libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            source_c.as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint,
        );
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let tree = OwnedFd::from_raw_fd(fd as i32);
        let attr = MountAttr {
            attr_set: MOUNT_ATTR_IDMAP | MOUNT_ATTR_RDONLY,
            attr_clr: 0,
            propagation: 0,
            userns_fd: userns.as_raw_fd() as u64,
        };
        let rc = libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            &raw const attr,
            std::mem::size_of::<MountAttr>(),
        );
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        let rc = libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            target_c.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        );
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(IdmappedMount {
        target: target.to_path_buf(),
    })
}

/// Whether an error from [`bind_idmapped`] means "not here" (the kernel or
/// this filesystem cannot idmap), rather than a real failure.
pub fn unsupported(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOSYS) | Some(libc::EINVAL) | Some(libc::EOPNOTSUPP) | Some(libc::EPERM)
    )
}

/// The host owner of an on-disk owner, through `map`; unmapped IDs are
/// an error naming the file (the map must cover every owner in a layer).
fn shifted(map: &IdMap, path: &Path, uid: u32, gid: u32) -> io::Result<(u32, u32)> {
    match (map_id(&map.uids, uid), map_id(&map.gids, gid)) {
        (Some(u), Some(g)) => Ok((u, g)),
        _ => Err(io::Error::other(format!(
            "{} is owned by {uid}:{gid}, outside the remapped range ({map})",
            path.display()
        ))),
    }
}

/// Shifts every owner under `dir` (itself included) through `map`, in
/// place: chown(2) each entry without following symlinks, then put back
/// the setuid and setgid bits chown clears.
pub fn shift_tree(dir: &Path, map: &IdMap) -> io::Result<()> {
    shift_tree_with(dir, &|path, uid, gid| shifted(map, path, uid, gid))
}

/// Maps an on-disk owner (path, uid, gid) to the owner it gets.
pub type OwnerMap<'a> = dyn Fn(&Path, u32, u32) -> io::Result<(u32, u32)> + 'a;

/// Like [`shift_tree`], with each owner mapped by `owner`.
pub fn shift_tree_with(dir: &Path, owner: &OwnerMap) -> io::Result<()> {
    let meta = std::fs::symlink_metadata(dir)?;
    let (uid, gid) = owner(dir, meta.uid(), meta.gid())?;
    std::os::unix::fs::lchown(dir, Some(uid), Some(gid))?;
    if !meta.file_type().is_symlink() {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    }
    if meta.is_dir() {
        for entry in std::fs::read_dir(dir)? {
            shift_tree_with(&entry?.path(), owner)?;
        }
    }
    Ok(())
}

/// A shifted copy of `layer` under `cache` (made once, then reused:
/// `cp -a` copies it faithfully, whiteouts and xattrs included; the copy
/// is renamed into place only when complete).
pub fn shifted_copy(layer: &Path, cache: &Path, map: &IdMap) -> io::Result<PathBuf> {
    let name = layer
        .file_name()
        .ok_or_else(|| io::Error::other(format!("layer {} has no name", layer.display())))?;
    let done = cache.join(name);
    if done.is_dir() {
        return Ok(done);
    }
    std::fs::create_dir_all(cache)?;
    let tmp = cache.join(format!(
        ".{}-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&tmp);
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg("--reflink=auto")
        .arg(layer)
        .arg(&tmp)
        .status()?;
    if !status.success() {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(io::Error::other(format!(
            "cp -a {} {} failed ({status})",
            layer.display(),
            tmp.display()
        )));
    }
    if let Err(e) = shift_tree(&tmp, map) {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    if let Err(e) = std::fs::rename(&tmp, &done) {
        let _ = std::fs::remove_dir_all(&tmp);
        // Another container made the same copy first: use that one.
        if !done.is_dir() {
            return Err(e);
        }
    }
    Ok(done)
}
