//! `docker cp`: a path inside a container read as a tar, or a tar written
//! into a directory inside it (`/containers/{id}/archive`, HEAD, GET, PUT).
//!
//! Every path the request names, every name in an uploaded tar and every
//! symlink met on the way must mean the *container's* file, never the
//! host's. Rather than resolve each path by hand against the container's
//! root (and race a container that swaps a directory for a symlink), the
//! work is done by a helper process (`mini-dockerd archive-helper`) whose
//! root *is* the container's:
//!
//! - a running container: the helper joins its user namespace (if it has
//!   one) and its mount namespace, as an exec does, so `/` is the
//!   container's root and `..` or an absolute symlink stops there;
//! - a stopped one: the helper takes a mount namespace of its own, mounts
//!   the container's root filesystem and volumes in it (the monitor's
//!   code), `chroot`s into it and, under `--userns-remap`, enters a user
//!   namespace with the container's map. The mounts die with the helper:
//!   nothing is left mounted on the host, even if it is killed.
//!
//! Inside, the helper is the container's root: files it creates belong to
//! root of the container (or keep the tar's owners with `copyUIDGID`), as
//! Docker's do.

use anyhow::{anyhow, Context, Result};
use serde::{Deserialize, Serialize};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

/// What the daemon asks of the helper, passed as JSON.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct ArchiveSpec {
    pub op: Op,
    /// The path in the container, as the client wrote it.
    pub path: String,
    pub root: Root,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub enum Op {
    /// The path's stat (HEAD).
    Stat,
    /// Its stat, then the tar of it (GET).
    Get,
    /// Extract the tar on stdin (a regular file) into the directory.
    Put {
        no_overwrite_dir_non_dir: bool,
        copy_uid_gid: bool,
    },
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub enum Root {
    /// A running (or paused) container: its PID 1, as the host sees it.
    Running { pid: i32, userns: bool },
    /// A stopped one: its root filesystem is mounted by the helper.
    Stopped { engine_root: PathBuf, id: String },
}

/// Docker's `X-Docker-Container-Path-Stat`, base64 JSON in a header.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct PathStat {
    pub name: String,
    pub size: u64,
    /// Go's `os.FileMode`: permission bits plus Go's own type bits.
    pub mode: u32,
    pub mtime: String,
    #[serde(rename = "linkTarget")]
    pub link_target: String,
}

impl PathStat {
    pub fn is_dir(&self) -> bool {
        self.mode & GO_DIR != 0
    }
}

/// The helper's first line on stdout: the stat, or what went wrong with
/// the HTTP status it deserves.
#[derive(Debug, Deserialize, Serialize)]
pub enum Reply {
    Ok(PathStat),
    Err { status: u16, message: String },
}

const GO_DIR: u32 = 1 << 31;
const GO_SYMLINK: u32 = 1 << 27;
const GO_DEVICE: u32 = 1 << 26;
const GO_PIPE: u32 = 1 << 25;
const GO_SOCKET: u32 = 1 << 24;
const GO_SETUID: u32 = 1 << 23;
const GO_SETGID: u32 = 1 << 22;
const GO_CHAR: u32 = 1 << 21;
const GO_STICKY: u32 = 1 << 20;

/// A file's mode as Go's `os.FileMode` encodes it (what Docker's clients
/// decode: `IsDir` is bit 31, not `S_IFDIR`).
pub fn go_mode(meta: &std::fs::Metadata) -> u32 {
    let t = meta.file_type();
    let raw = meta.mode();
    let mut mode = raw & 0o777;
    for (on, bit) in [
        (t.is_dir(), GO_DIR),
        (t.is_symlink(), GO_SYMLINK),
        (t.is_block_device() || t.is_char_device(), GO_DEVICE),
        (t.is_char_device(), GO_CHAR),
        (t.is_fifo(), GO_PIPE),
        (t.is_socket(), GO_SOCKET),
        (raw & 0o4000 != 0, GO_SETUID),
        (raw & 0o2000 != 0, GO_SETGID),
        (raw & 0o1000 != 0, GO_STICKY),
    ] {
        if on {
            mode |= bit;
        }
    }
    mode
}

/// The name Docker gives a path: Go's `filepath.Base`, except that a
/// trailing `/.` is kept as `.` ("the directory's contents").
pub fn base_name(path: &str) -> String {
    if path.ends_with("/.") || path == "." {
        return ".".into();
    }
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return "/".into();
    }
    trimmed.rsplit('/').next().unwrap_or(trimmed).to_string()
}

/// Whether the last component is followed when it is a symlink: only when
/// the path ends in `/` or `/.` (as Docker's resolution, and `ls -d`).
fn follows_last(path: &str) -> bool {
    path.ends_with('/') || path.ends_with("/.") || path == "."
}

/// The path as an absolute one inside the (already entered) root.
fn in_root(path: &str) -> PathBuf {
    Path::new("/").join(path.trim_start_matches('/'))
}

fn not_found(path: &str) -> Reply {
    Reply::Err {
        status: 404,
        message: format!("Could not find the file {path} in container"),
    }
}

fn stat(path: &str) -> Result<PathStat, Reply> {
    let at = in_root(path);
    let meta = if follows_last(path) {
        std::fs::metadata(&at)
    } else {
        std::fs::symlink_metadata(&at)
    };
    let meta = meta.map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => not_found(path),
        _ => Reply::Err {
            status: 500,
            message: format!("stat {path}: {e}"),
        },
    })?;
    let link_target = if meta.file_type().is_symlink() {
        // Absolute, in the container: the root is ours, so this is scoped.
        std::fs::canonicalize(&at)
            .or_else(|_| std::fs::read_link(&at))
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    } else {
        String::new()
    };
    let mtime = time::OffsetDateTime::from_unix_timestamp_nanos(
        i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
    )
    .map(crate::jsonlog::format_time)
    .unwrap_or_else(|_| crate::jsonlog::ZERO_TIME.into());
    Ok(PathStat {
        name: base_name(path),
        size: meta.len(),
        mode: go_mode(&meta),
        mtime,
        link_target,
    })
}

/// Entry point of `mini-dockerd archive-helper`: enters the container's
/// root, then does the one operation, replying on stdout.
pub fn helper_main(spec: &ArchiveSpec) -> Result<()> {
    // Not dumpable: a process of a running container must not ptrace this
    // host binary once it is in the container's namespaces (see exec.rs).
    // SAFETY: prctl with constant arguments.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    let _mounted = enter_root(&spec.root)?;
    let mut out = std::io::stdout().lock();
    let reply = |out: &mut dyn Write, r: &Reply| -> Result<()> {
        writeln!(out, "{}", serde_json::to_string(r)?)?;
        out.flush()?;
        Ok(())
    };
    let stat = match stat(&spec.path) {
        Ok(s) => s,
        Err(r) => return reply(&mut out, &r),
    };
    match &spec.op {
        Op::Stat => reply(&mut out, &Reply::Ok(stat)),
        Op::Get => {
            reply(&mut out, &Reply::Ok(stat.clone()))?;
            write_tar(&spec.path, &stat, &mut out)?;
            out.flush()?;
            Ok(())
        }
        Op::Put {
            no_overwrite_dir_non_dir,
            copy_uid_gid,
        } => {
            // The extraction point: the directory, symlinks followed (in
            // the container's root).
            let dest = match std::fs::canonicalize(in_root(&spec.path)) {
                Ok(d) if d.is_dir() => d,
                Ok(_) => {
                    return reply(
                        &mut out,
                        &Reply::Err {
                            status: 400,
                            message: "extraction point is not a directory".into(),
                        },
                    )
                }
                Err(_) => return reply(&mut out, &not_found(&spec.path)),
            };
            // SAFETY: fd 0 is the spooled upload, a regular file the daemon
            // gave us; we own it for the rest of this process.
            let mut tar =
                unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(libc::dup(0)) };
            let options = PutOptions {
                no_overwrite_dir_non_dir: *no_overwrite_dir_non_dir,
                copy_uid_gid: *copy_uid_gid,
            };
            match extract(&mut tar, &dest, &options) {
                Ok(()) => reply(&mut out, &Reply::Ok(stat)),
                Err(e) => reply(
                    &mut out,
                    &Reply::Err {
                        status: if e.kind() == std::io::ErrorKind::InvalidData {
                            400
                        } else {
                            500
                        },
                        message: e.to_string(),
                    },
                ),
            }
        }
    }
}

/// Makes the container's root this process's `/`; what must stay alive
/// until the end (the stopped container's mounts) is returned.
fn enter_root(root: &Root) -> Result<Option<chapter_03::Mounted>> {
    match root {
        Root::Running { pid, userns } => {
            let names: &[&str] = if *userns { &["user", "mnt"] } else { &["mnt"] };
            let fds = names
                .iter()
                .map(|ns| {
                    std::fs::File::open(format!("/proc/{pid}/ns/{ns}"))
                        .with_context(|| format!("opening the {ns} namespace of PID {pid}"))
                })
                .collect::<Result<Vec<_>>>()?;
            for (fd, ns) in fds.iter().zip(names) {
                nix::sched::setns(fd, nix::sched::CloneFlags::empty())
                    .with_context(|| format!("entering the container's {ns} namespace"))?;
            }
            if *userns {
                become_root()?;
            }
            std::env::set_current_dir("/")?;
            Ok(None)
        }
        Root::Stopped { engine_root, id } => {
            let paths = crate::state::Paths::new(engine_root.clone());
            let c: crate::state::Container = serde_json::from_slice(
                &std::fs::read(paths.config(id)).context("reading the container's config")?,
            )?;
            use nix::mount::{mount, MsFlags};
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
                .context("a mount namespace of our own")?;
            mount(
                None::<&str>,
                "/",
                None::<&str>,
                MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                None::<&str>,
            )
            .context("making our mounts private")?;
            let (mounted, owner) = crate::monitor::mount_rootfs(&paths, &c)?;
            let merged = mounted.merged().to_path_buf();
            // Its volumes and binds, and the daemon's /etc files, where the
            // container sees them (tmpfs mounts are empty when it is not
            // running, as in Docker).
            let dir = paths.container(id);
            let mut binds: Vec<(PathBuf, String, bool)> = c
                .mounts
                .iter()
                .filter(|m| m.kind != crate::state::MountKind::Tmpfs)
                .map(|m| (m.source.clone(), m.destination.clone(), m.readonly))
                .collect();
            for (source, destination) in crate::monitor::daemon_files(&dir, &c) {
                binds.push((source, destination.to_string(), false));
            }
            for (source, destination, readonly) in binds {
                let target =
                    crate::monitor::resolve_target(&merged, &destination, source.is_file(), owner)?;
                mount(
                    Some(&source),
                    &target,
                    None::<&str>,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None::<&str>,
                )
                .with_context(|| format!("binding {} at {destination}", source.display()))?;
                if readonly {
                    mount(
                        None::<&str>,
                        &target,
                        None::<&str>,
                        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
                        None::<&str>,
                    )?;
                }
            }
            // The user namespace is made before the chroot: the kernel
            // refuses a new one to a chrooted process (user_namespaces(7)).
            let userns = c
                .userns
                .as_ref()
                .map(|map| chapter_03::idmap::user_namespace(&map.to_id_map()))
                .transpose()
                .context("a user namespace with the container's map")?;
            std::env::set_current_dir(&merged)?;
            nix::unistd::chroot(".").context("chroot into the container's root")?;
            std::env::set_current_dir("/")?;
            if let Some(ns) = userns {
                nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWUSER)
                    .context("entering the container's user namespace")?;
                become_root()?;
            }
            Ok(Some(mounted))
        }
    }
}

/// In a user namespace we are still host root, which it does not map:
/// become its root (chapter 01's become_root), or nothing we create could
/// be owned.
fn become_root() -> Result<()> {
    use nix::unistd::{setgroups, setresgid, setresuid, Gid, Uid};
    setgroups(&[])
        .and_then(|()| setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0)))
        .and_then(|()| setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0)))
        .context("becoming root of the container's user namespace")
}

/// The tar Docker sends for `path`: its root entry named [`base_name`]
/// (`d/`, `d/sub/f`; `./`, `./sub/f` for `d/.`), symlinks inside stored as
/// symlinks, sockets left out (tar has no such entry). The mount points of
/// /proc, /sys and /dev are empty directories, as in the container's own
/// filesystem.
fn write_tar(path: &str, stat: &PathStat, out: &mut dyn Write) -> Result<()> {
    let mut tar = tar::Builder::new(out);
    tar.follow_symlinks(false);
    let source = if follows_last(path) {
        std::fs::canonicalize(in_root(path))?
    } else {
        in_root(path)
    };
    // The root of the container is named `/` by Docker; a tar cannot hold
    // absolute names, so its entries are `./…`, which clients take alike.
    let name = match stat.name.as_str() {
        "/" => PathBuf::from("."),
        n => PathBuf::from(n),
    };
    let root_dev = std::fs::symlink_metadata("/")?.dev();
    add(&mut tar, &source, &name, root_dev)?;
    tar.finish()?;
    Ok(())
}

fn add(
    tar: &mut tar::Builder<&mut dyn Write>,
    source: &Path,
    name: &Path,
    root_dev: u64,
) -> Result<()> {
    let meta = std::fs::symlink_metadata(source)?;
    if meta.file_type().is_socket() {
        return Ok(());
    }
    tar.append_path_with_name(source, name)
        .with_context(|| format!("archiving {}", source.display()))?;
    if !meta.is_dir() {
        return Ok(());
    }
    // Kernel filesystems mounted in a running container are not its files.
    let kernel = ["/proc", "/sys", "/dev"]
        .iter()
        .any(|p| source == Path::new(p))
        && meta.dev() != root_dev;
    if kernel {
        return Ok(());
    }
    let mut children: Vec<_> = std::fs::read_dir(source)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<std::io::Result<_>>()?;
    children.sort();
    for child in children {
        add(tar, &source.join(&child), &name.join(&child), root_dev)?;
    }
    Ok(())
}

/// How an upload is extracted.
pub struct PutOptions {
    /// Refuse to replace a directory with a non-directory and back
    /// (`noOverwriteDirNonDir`, which the docker CLI always sends).
    pub no_overwrite_dir_non_dir: bool,
    /// Keep the tar's owners; else everything is the container's root's.
    pub copy_uid_gid: bool,
}

/// An entry's name as a path under the extraction point: a leading `/` is
/// dropped (Docker extracts `/etc/x` as `DEST/etc/x`), `.` ignored, and a
/// `..` that would climb above the extraction point refused.
pub fn entry_path(raw: &Path) -> std::io::Result<PathBuf> {
    let mut rel = PathBuf::new();
    for part in raw.components() {
        match part {
            Component::Normal(p) => rel.push(p),
            Component::ParentDir => {
                if !rel.pop() {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!(
                            "{:?} is outside of the extraction point: refusing the archive",
                            raw.display().to_string()
                        ),
                    ));
                }
            }
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    Ok(rel)
}

/// Extracts the tar into `dest` (a directory of the entered root). Every
/// name is checked first, so a refused archive writes nothing; then each
/// entry is made by chapter 03's applier (its kinds, its metadata rules).
/// Parent directories are followed even when they are symlinks, as
/// Docker's cp does: this root is the container's, so they cannot lead out.
pub fn extract<F: Read + Seek>(
    tar: &mut F,
    dest: &Path,
    options: &PutOptions,
) -> std::io::Result<()> {
    let invalid = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidData, m);
    {
        let mut archive = tar::Archive::new(&mut *tar);
        for entry in archive.entries()? {
            let entry = entry?;
            let rel = entry_path(&entry.path()?)?;
            if options.no_overwrite_dir_non_dir && !rel.as_os_str().is_empty() {
                let is_dir = entry.header().entry_type() == tar::EntryType::Directory;
                if let Ok(existing) = std::fs::symlink_metadata(dest.join(&rel)) {
                    if existing.is_dir() && !is_dir {
                        return Err(invalid(format!(
                            "cannot overwrite directory {:?} with non-directory {:?}",
                            dest.join(&rel).display().to_string(),
                            rel.display().to_string()
                        )));
                    }
                    if !existing.is_dir() && is_dir {
                        return Err(invalid(format!(
                            "cannot overwrite non-directory {:?} with directory {:?}",
                            dest.join(&rel).display().to_string(),
                            rel.display().to_string()
                        )));
                    }
                }
            }
        }
    }
    tar.rewind()?;
    // No device nodes from an upload: a container gets its devices from
    // the engine, never from a tar.
    let policy = chapter_03::apply::Policy {
        devices: chapter_03::apply::Devices::Skip,
        ..Default::default()
    };
    let mut archive = tar::Archive::new(&mut *tar);
    let mut dir_times = Vec::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let rel = entry_path(&entry.path()?)?;
        let path = dest.join(&rel);
        if let Some(parent) = path.parent() {
            // Missing parents are made; one that is there (a directory, or
            // a symlink to one: this root is the container's) is used.
            if std::fs::symlink_metadata(parent).is_err() {
                std::fs::create_dir_all(parent)?;
            }
        }
        if rel.as_os_str().is_empty() {
            continue; // the extraction point itself stays as it is
        }
        use chapter_03::apply::{apply_metadata, create_entry, Created};
        if let Created::Entry(_) = create_entry(&mut entry, dest, &rel, &path, &policy)? {
            let mut header = entry.header().clone();
            if !options.copy_uid_gid {
                header.set_uid(0);
                header.set_gid(0);
            }
            if let Some(mtime) = apply_metadata(&mut entry, &header, &rel, &path)? {
                dir_times.push((path, mtime));
            }
        }
    }
    dir_times.sort_by_key(|(p, _): &(PathBuf, i64)| std::cmp::Reverse(p.components().count()));
    for (dir, mtime) in dir_times {
        chapter_03::apply::set_mtime(&dir, mtime)?;
    }
    Ok(())
}

/// Reads the helper's reply line from its stdout.
pub fn parse_reply(line: &str) -> Result<Reply> {
    serde_json::from_str(line.trim_end())
        .map_err(|e| anyhow!("the archive helper said {line:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_docker_s() {
        assert_eq!(base_name("/etc/hostname"), "hostname");
        assert_eq!(base_name("/d/"), "d");
        assert_eq!(base_name("/d/."), ".");
        assert_eq!(base_name("/"), "/");
        assert!(follows_last("/dl/") && !follows_last("/dl"));
    }

    #[test]
    fn entry_names_stay_under_the_extraction_point() {
        assert_eq!(entry_path(Path::new("/etc/x")).unwrap(), Path::new("etc/x"));
        assert_eq!(entry_path(Path::new("./a/../b")).unwrap(), Path::new("b"));
        for hostile in ["../x", "a/../../x", "/../../etc/passwd"] {
            let e = entry_path(Path::new(hostile)).unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::InvalidData, "{hostile}");
        }
    }

    #[test]
    fn modes_are_go_s() {
        let dir = tempfile::tempdir().unwrap();
        let meta = std::fs::symlink_metadata(dir.path()).unwrap();
        assert_eq!(go_mode(&meta) & GO_DIR, GO_DIR);
        std::os::unix::fs::symlink("/x", dir.path().join("l")).unwrap();
        let link = std::fs::symlink_metadata(dir.path().join("l")).unwrap();
        assert_eq!(go_mode(&link), GO_SYMLINK | 0o777);
    }

    #[test]
    fn a_refused_archive_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        b.append_data(&mut h, "first", &b"x"[..]).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        // tar refuses to write `..` names; set the raw bytes.
        h.as_old_mut().name[..7].copy_from_slice(b"../evil");
        h.set_cksum();
        b.append(&h, &b"x"[..]).unwrap();
        let mut file = std::io::Cursor::new(b.into_inner().unwrap());
        let options = PutOptions {
            no_overwrite_dir_non_dir: true,
            copy_uid_gid: true,
        };
        let e = extract(&mut file, dir.path(), &options).unwrap_err();
        assert!(e.to_string().contains("outside"), "{e}");
        assert!(!dir.path().join("first").exists());
    }
}
