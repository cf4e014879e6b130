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
    rootless();
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

/// The user rootless runs would be for: the one who ran sudo, else whoever
/// runs this. (name, uid, gid)
fn rootless_user() -> Option<(String, u32, u32)> {
    let by = |uid: u32| {
        let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)).ok()??;
        Some((user.name, uid, user.gid.as_raw()))
    };
    match std::env::var("SUDO_UID").ok().and_then(|u| u.parse().ok()) {
        Some(uid) if nix::unistd::geteuid().is_root() => by(uid),
        _ => by(nix::unistd::geteuid().as_raw()),
    }
}

/// The ranges /etc/subuid or /etc/subgid gives `name` (or its number):
/// the sum of their counts.
pub fn subordinate_count(file: &str, name: &str, id: u32) -> u64 {
    read(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let mut fields = line.trim().split(':');
            let (who, _start, count) = (fields.next()?, fields.next()?, fields.next()?);
            (who == name || who == id.to_string())
                .then(|| count.parse::<u64>().ok())
                .flatten()
        })
        .sum()
}

/// A program in PATH that can write another process's ID maps: setuid
/// root, or with file capabilities (`security.capability`).
fn privileged_helper(program: &str) -> Result<String, String> {
    use std::os::unix::fs::MetadataExt;
    let path = std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(program))
                .find(|p| p.is_file())
        })
        .or_else(|| Some(Path::new("/usr/bin").join(program)).filter(|p| p.is_file()))
        .ok_or_else(|| format!("{program} is missing: `apt-get install uidmap`"))?;
    let meta = std::fs::metadata(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let setuid_root = meta.mode() & 0o4000 != 0 && meta.uid() == 0;
    let caps = {
        use std::os::unix::ffi::OsStrExt;
        let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap_or_default();
        // SAFETY: getxattr(2) with valid strings, asking only for the size.
        let size = unsafe {
            libc::getxattr(
                c_path.as_ptr(),
                c"security.capability".as_ptr(),
                std::ptr::null_mut(),
                0,
            )
        };
        size > 0
    };
    if setuid_root || caps {
        Ok(format!(
            "{} ({})",
            path.display(),
            if setuid_root {
                "setuid root"
            } else {
                "file capabilities"
            }
        ))
    } else {
        Err(format!(
            "{} is neither setuid root nor given capabilities: it cannot write another process's ID maps",
            path.display()
        ))
    }
}

/// Whether overlayfs mounts inside a user namespace (kernel 5.11+): tried,
/// with util-linux's unshare, in a throwaway directory.
fn overlay_in_userns() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let d = dir.path().display();
    let script = format!(
        "mkdir {d}/l {d}/u {d}/w {d}/m && mount -t overlay overlay \
         -o lowerdir={d}/l,upperdir={d}/u,workdir={d}/w,userxattr {d}/m && umount {d}/m"
    );
    let out = std::process::Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount", "sh", "-c", &script])
        .output()
        .map_err(|e| format!("running unshare: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// What rootless mini-dockerd needs of this host, for the user who would run it.
fn rootless() {
    let Some((name, uid, gid)) = rootless_user() else {
        report(
            Level::Warn,
            "rootless",
            "cannot tell which user would run it".into(),
        );
        return;
    };
    if uid == 0 {
        report(
            Level::Ok,
            "rootless",
            "not checked: root's daemon is not rootless; run `cargo xtask doctor` as (or with sudo \
             from) the user who will run mini-dockerd rootless"
                .into(),
        );
        return;
    }
    for (file, what, id) in [
        ("/etc/subuid", "subuid range", uid),
        ("/etc/subgid", "subgid range", gid),
    ] {
        let count = subordinate_count(file, &name, id);
        if count >= 65536 {
            report(Level::Ok, what, format!("{name} has {count} ids in {file}"));
        } else {
            report(
                Level::Warn,
                what,
                format!(
                    "{name} has {count} ids in {file} (rootless needs 65536); as root: \
                     `usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {name}`"
                ),
            );
        }
    }
    for program in ["newuidmap", "newgidmap"] {
        match privileged_helper(program) {
            Ok(found) => report(Level::Ok, program, found),
            Err(why) => report(Level::Warn, program, why),
        }
    }
    match overlay_in_userns() {
        Ok(()) => report(
            Level::Ok,
            "overlay in userns",
            "mounts inside a user namespace (userxattr)".into(),
        ),
        Err(why) => report(
            Level::Warn,
            "overlay in userns",
            format!("does not mount inside a user namespace (kernel 5.11+ needed): {why}"),
        ),
    }
    let user_mode: Vec<&str> = ["slirp4netns", "pasta"]
        .into_iter()
        .filter(|p| have(p))
        .collect();
    if user_mode.is_empty() {
        report(
            Level::Warn,
            "user-mode network",
            "neither slirp4netns nor pasta: rootless containers get --network none or host only \
             (`apt-get install slirp4netns`)"
                .into(),
        );
    } else {
        report(Level::Ok, "user-mode network", user_mode.join(", "));
    }
    let delegated = format!("/sys/fs/cgroup/user.slice/user-{uid}.slice/user@{uid}.service");
    let owned = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(&delegated).is_ok_and(|m| m.uid() == uid)
    };
    match (cgroup_mode().starts_with("v2"), owned) {
        (true, true) => report(
            Level::Ok,
            "cgroup delegation",
            format!(
                "{delegated} is {name}'s (controllers: {}): a daemon started in a delegated cgroup \
                 of it (`systemd-run --user --scope -p Delegate=yes mini-dockerd`, or a user \
                 service with Delegate=yes) limits its containers with those",
                read(&format!("{delegated}/cgroup.controllers"))
                    .unwrap_or_default()
                    .trim()
            ),
        ),
        (true, false) => report(
            Level::Warn,
            "cgroup delegation",
            format!(
                "no cgroup v2 subtree delegated to {name} (systemd's user@{uid}.service, or a \
                 cgroup whose directory, cgroup.procs and cgroup.subtree_control {name} owns): \
                 rootless containers run without limits, and -m, --cpus, --pids-limit are refused"
            ),
        ),
        (false, _) => report(
            Level::Warn,
            "cgroup delegation",
            "impossible on cgroup v1 or hybrid hosts (only v2 delegates subtrees): rootless \
             containers run without limits, and -m, --cpus, --pids-limit are refused"
                .into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn subordinate_ranges_are_counted_by_name_or_number() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("subuid");
        std::fs::write(
            &file,
            "ann:100000:65536\n1000:300000:1000\nbob:200000:65536\n",
        )
        .unwrap();
        let file = file.to_str().unwrap();
        assert_eq!(super::subordinate_count(file, "ann", 1000), 66536);
        assert_eq!(super::subordinate_count(file, "eve", 1002), 0);
    }
}
