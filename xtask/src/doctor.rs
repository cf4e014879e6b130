//! `cargo xtask doctor`: what this host can do for the course, and what it
//! cannot, each in one plain sentence.

use anyhow::Result;
use std::path::Path;

enum Level {
    Ok,
    Warn,
    Fail,
}

fn report(level: Level, what: &str, detail: String) {
    let tag = match level {
        Level::Ok => "ok  ",
        Level::Warn => "warn",
        Level::Fail => "FAIL",
    };
    println!("[{tag}] {what:<18} {detail}");
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

fn have(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false)
}

/// How cgroups are mounted, detected as runc does: by the filesystem type
/// of /sys/fs/cgroup.
pub fn cgroup_mode() -> &'static str {
    let magic = |p: &str| nix::sys::statfs::statfs(p).map(|s| s.filesystem_type());
    match magic("/sys/fs/cgroup") {
        Ok(t) if t == nix::sys::statfs::CGROUP2_SUPER_MAGIC => "v2 (unified)",
        Ok(t) if t == nix::sys::statfs::TMPFS_MAGIC => match magic("/sys/fs/cgroup/unified") {
            Ok(u) if u == nix::sys::statfs::CGROUP2_SUPER_MAGIC => {
                "hybrid (v1 controllers, empty v2 at unified/)"
            }
            _ => "v1",
        },
        _ => "none",
    }
}

pub fn doctor() -> Result<()> {
    let root = nix::unistd::geteuid().is_root();
    if root {
        report(
            Level::Ok,
            "privileges",
            "running as root: every experiment and test can run".into(),
        );
    } else {
        report(
            Level::Warn,
            "privileges",
            format!(
                "running as uid {}: experiments work through user namespaces, but privileged tests skip \
                 (run them with sudo -E)",
                nix::unistd::geteuid()
            ),
        );
    }

    let release = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let major: u32 = release
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    let level = if major >= 5 { Level::Ok } else { Level::Warn };
    report(
        level,
        "kernel",
        format!("{release} (the course expects 5.x or newer; overlay's lowerdir+ needs 6.8+)"),
    );

    let max_userns: u64 = read("/proc/sys/user/max_user_namespaces")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let clone_allowed = read("/proc/sys/kernel/unprivileged_userns_clone").is_none_or(|v| v == "1");
    let apparmor_restricts =
        read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").is_some_and(|v| v == "1");
    match (max_userns > 0, clone_allowed, apparmor_restricts) {
        (true, true, false) => report(
            Level::Ok,
            "user namespaces",
            format!("available to unprivileged users (max {max_userns})"),
        ),
        (false, _, _) => report(
            Level::Warn,
            "user namespaces",
            "disabled (user.max_user_namespaces = 0): containers need root".into(),
        ),
        (_, false, _) => report(
            Level::Warn,
            "user namespaces",
            "root only (kernel.unprivileged_userns_clone = 0): unprivileged runs fail with EPERM".into(),
        ),
        (_, _, true) => report(
            Level::Warn,
            "user namespaces",
            "AppArmor restricts them for unprivileged users (kernel.apparmor_restrict_unprivileged_userns = 1)".into(),
        ),
    }

    let ns_missing: Vec<&str> = ["uts", "ipc", "pid", "net", "mnt", "user", "cgroup"]
        .into_iter()
        .filter(|ns| !Path::new(&format!("/proc/self/ns/{ns}")).exists())
        .collect();
    if ns_missing.is_empty() {
        report(
            Level::Ok,
            "namespaces",
            "all seven kinds are supported".into(),
        );
    } else {
        report(
            Level::Fail,
            "namespaces",
            format!("this kernel lacks {}", ns_missing.join(", ")),
        );
    }

    let mode = cgroup_mode();
    let controllers: Vec<String> = if mode.starts_with("v2") {
        read("/sys/fs/cgroup/cgroup.controllers")
            .unwrap_or_default()
            .split_whitespace()
            .map(String::from)
            .collect()
    } else {
        ["cpu", "cpuacct", "cpuset", "memory", "pids", "blkio"]
            .into_iter()
            .filter(|c| Path::new(&format!("/sys/fs/cgroup/{c}")).is_dir())
            .map(String::from)
            .collect()
    };
    let level = if mode == "none" {
        Level::Fail
    } else {
        Level::Ok
    };
    report(
        level,
        "cgroups",
        format!("{mode}; controllers: {}", controllers.join(" ")),
    );

    let filesystems = read("/proc/filesystems").unwrap_or_default();
    if filesystems.contains("\toverlay") {
        report(Level::Ok, "overlayfs", "available".into());
    } else {
        report(
            Level::Warn,
            "overlayfs",
            "not loaded: try `modprobe overlay`; chapter 03 falls back to copying".into(),
        );
    }

    let nat: Vec<&str> = ["nft", "iptables"]
        .into_iter()
        .filter(|p| have(p))
        .collect();
    if nat.is_empty() {
        report(
            Level::Warn,
            "NAT tools",
            "neither nft nor iptables found: bridge networking needs one".into(),
        );
    } else {
        report(Level::Ok, "NAT tools", nat.join(", "));
    }

    if Path::new(testkit::fixture::BUSYBOX).exists() {
        report(
            Level::Ok,
            "busybox-static",
            "installed (the fixture image is built from it)".into(),
        );
    } else {
        report(
            Level::Fail,
            "busybox-static",
            "missing: `apt-get install busybox-static` (or `cargo xtask install`)".into(),
        );
    }
    // Chapter 06 links libseccomp to compile seccomp profiles.
    if crate::install::installed("libseccomp-dev") {
        report(
            Level::Ok,
            "libseccomp-dev",
            "installed (chapter 06 compiles seccomp profiles with it)".into(),
        );
    } else {
        report(
            Level::Fail,
            "libseccomp-dev",
            "missing: chapter 06 does not link without it: `apt-get install libseccomp-dev` (or `cargo xtask install`)".into(),
        );
    }
    let fixture = testkit::fixture::fixture_dir().join("rootfs/.fixture-stamp");
    if fixture.exists() {
        report(Level::Ok, "fixture image", "built".into());
    } else {
        report(
            Level::Warn,
            "fixture image",
            "not built yet: `cargo xtask fixture` (tests build it on demand)".into(),
        );
    }
    if have("mdbook") {
        report(Level::Ok, "mdbook", "installed".into());
    } else {
        report(
            Level::Warn,
            "mdbook",
            format!(
                "missing: the book cannot be built (`cargo install --locked mdbook --version {}`)",
                crate::install::MDBOOK_VERSION
            ),
        );
    }
    Ok(())
}
