//! The fixture image: a tiny root filesystem made of Debian's static
//! busybox (every applet as a symlink) and our static `facts` helper.
//!
//! Nothing binary is committed: [`rootfs`] builds it on first use into
//! `target/fixture/rootfs` and rebuilds when an input changes. A file lock
//! makes concurrent test processes build it once; the finished tree is
//! renamed into place, so nobody sees half of it.

use anyhow::{bail, ensure, Context, Result};
use nix::fcntl::{Flock, FlockArg};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where Debian's `busybox-static` installs its binary.
pub const BUSYBOX: &str = "/bin/busybox";

/// Bump when the layout below changes, to force a rebuild.
const LAYOUT_VERSION: u32 = 1;

/// Overrides where the fixture lives (`cargo xtask verify` points its
/// scratch workspaces at the main one's, so the image is built once).
pub const DIR_ENV: &str = "MINI_DOCKER_FIXTURE_DIR";

/// `target/fixture` in the workspace, unless [`DIR_ENV`] says otherwise.
pub fn fixture_dir() -> PathBuf {
    std::env::var_os(DIR_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::workspace_root().join("target/fixture"))
}

/// The fixture rootfs, built if needed. Panics with the reason (for tests).
pub fn rootfs() -> PathBuf {
    build().unwrap_or_else(|e| panic!("building the fixture image failed: {e:#}"))
}

/// Builds the fixture rootfs if it is missing or stale; returns its path.
pub fn build() -> Result<PathBuf> {
    let dir = fixture_dir();
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let lock = fs::File::create(dir.join(".lock"))?;
    let _lock = Flock::lock(lock, FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .context("locking the fixture")?;

    let facts = build_facts(&dir)?;
    ensure!(
        Path::new(BUSYBOX).exists(),
        "{BUSYBOX} is missing: install Debian's static busybox (`apt-get install busybox-static`), \
         or run `cargo xtask setup`"
    );
    let stamp = format!(
        "{LAYOUT_VERSION} {} {}",
        identity(&facts)?,
        identity(Path::new(BUSYBOX))?
    );
    let rootfs = dir.join("rootfs");
    if fs::read_to_string(rootfs.join(".fixture-stamp")).is_ok_and(|s| s == stamp) {
        return Ok(rootfs);
    }

    let tmp = dir.join(format!("rootfs.tmp-{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    populate(&tmp, &facts).with_context(|| format!("populating {}", tmp.display()))?;
    fs::write(tmp.join(".fixture-stamp"), &stamp)?;
    if rootfs.exists() {
        let old = dir.join(format!("rootfs.old-{}", std::process::id()));
        fs::rename(&rootfs, &old)?;
        fs::remove_dir_all(&old)?;
    }
    fs::rename(&tmp, &rootfs)?;
    Ok(rootfs)
}

/// Size and modification time: enough to notice a rebuilt binary.
fn identity(path: &Path) -> Result<String> {
    let meta = fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(format!(
        "{}:{}.{}",
        meta.size(),
        meta.mtime(),
        meta.mtime_nsec()
    ))
}

/// Builds `facts` as a static executable in its own target directory, so
/// the static flags never touch the workspace's normal build.
fn build_facts(dir: &Path) -> Result<PathBuf> {
    let triple = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
    let target_dir = dir.join("cargo");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(crate::workspace_root())
        .args([
            "build",
            "--quiet",
            "--release",
            "--package",
            "testkit",
            "--bin",
            "facts",
        ])
        .args(["--target", &triple, "--target-dir"])
        .arg(&target_dir)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env("CARGO_ENCODED_RUSTFLAGS", "-Ctarget-feature=+crt-static")
        .status()
        .context("running cargo to build the facts helper")?;
    ensure!(
        status.success(),
        "building the static facts helper failed ({status})"
    );
    Ok(target_dir.join(triple).join("release/facts"))
}

fn populate(root: &Path, facts: &Path) -> Result<()> {
    for (dir, mode) in [
        ("", 0o755),
        ("bin", 0o755),
        ("sbin", 0o755),
        ("usr", 0o755),
        ("usr/bin", 0o755),
        ("usr/sbin", 0o755),
        ("etc", 0o755),
        ("proc", 0o555),
        ("sys", 0o555),
        ("dev", 0o755),
        ("tmp", 0o1777),
        ("root", 0o700),
        ("home", 0o755),
        ("mnt", 0o755),
        ("var", 0o755),
        ("run", 0o755),
    ] {
        let path = root.join(dir);
        fs::create_dir_all(&path)?;
        fs::set_permissions(&path, fs::Permissions::from_mode(mode))?;
    }
    fs::copy(BUSYBOX, root.join("bin/busybox"))?;
    fs::copy(facts, root.join("bin/facts"))?;
    let list = Command::new(BUSYBOX)
        .arg("--list-full")
        .output()
        .context("listing busybox applets")?;
    if !list.status.success() {
        bail!("`{BUSYBOX} --list-full` failed: is it Debian's busybox-static?");
    }
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let link = root.join(applet);
        if applet.is_empty() || link.exists() {
            continue;
        }
        if let Some(parent) = link.parent() {
            fs::create_dir_all(parent)?;
        }
        std::os::unix::fs::symlink("/bin/busybox", &link)?;
    }
    fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )?;
    fs::write(root.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n")?;
    fs::write(
        root.join("etc/os-release"),
        "NAME=\"mini-docker fixture\"\nPRETTY_NAME=\"mini-docker fixture (busybox)\"\nID=fixture\n",
    )?;
    Ok(())
}
