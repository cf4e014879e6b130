//! `mini-dockerd --userns-remap`: every container's root is an
//! unprivileged host user, as with `dockerd --userns-remap`.
//!
//! The daemon takes one host user's subordinate IDs (chapter 01's
//! [`chapter_01::user::remap_for`], exercise 1.16) and gives each container
//! a user namespace with that map: uid 0 inside is, say, 100000 outside.
//! The layers stay shared and unpacked once: chapter 03 idmaps them
//! ([`chapter_03::idmap`]). `docker run --userns host` opts one container
//! out.

use anyhow::{anyhow, Context, Result};
use chapter_01::IdMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

/// The user `--userns-remap default` creates and uses, Docker's name.
pub const DEFAULT_USER: &str = "dockremap";

/// Docker's first subordinate ID and the size of one range.
const FIRST_SUBID: u64 = 100_000;
const RANGE: u64 = 65_536;

/// The map of `--userns-remap VALUE`: `default` (the dockremap user,
/// created with ranges of its own if missing), or `USER[:GROUP]`.
pub fn resolve(value: &str) -> Result<(String, IdMap)> {
    let user = if value == "default" {
        ensure_default_user()?;
        DEFAULT_USER.to_string()
    } else {
        value.to_string()
    };
    let map =
        chapter_01::user::remap_for(&user).map_err(|e| anyhow!("--userns-remap {value}: {e}"))?;
    Ok((user, map))
}

/// Creates the dockremap system user (and its group) if it is missing, and
/// gives it a free range of 65536 subordinate IDs if it has none.
fn ensure_default_user() -> Result<()> {
    let run = |cmd: &mut Command| -> Result<()> {
        let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
        if !out.status.success() {
            return Err(anyhow!(
                "{cmd:?} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(())
    };
    if nix::unistd::User::from_name(DEFAULT_USER)?.is_none() {
        run(Command::new("useradd")
            .args(["--system", "--user-group", "--no-create-home"])
            .args(["--shell", "/bin/false", DEFAULT_USER]))?;
    }
    let (uid_file, gid_file) = chapter_01::user::subid_files();
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let (subuid, subgid) = (read(&uid_file), read(&gid_file));
    let owns = |text: &str| {
        text.lines()
            .any(|l| l.split(':').next() == Some(DEFAULT_USER))
    };
    if owns(&subuid) && owns(&subgid) {
        return Ok(());
    }
    let start = free_range(&[&subuid, &subgid]);
    let range = format!("{start}-{}", start + RANGE - 1);
    run(Command::new("usermod").args([
        "--add-subuids",
        &range,
        "--add-subgids",
        &range,
        DEFAULT_USER,
    ]))
}

/// The first 65536 IDs from 100000 on that no line of `files` uses.
fn free_range(files: &[&str]) -> u64 {
    let mut taken: Vec<(u64, u64)> = files
        .iter()
        .flat_map(|text| text.lines())
        .filter_map(|l| {
            let mut f = l.split(':').skip(1);
            let start: u64 = f.next()?.trim().parse().ok()?;
            let count: u64 = f.next()?.trim().parse().ok()?;
            Some((start, start + count))
        })
        .collect();
    taken.sort();
    let mut start = FIRST_SUBID;
    for (from, to) in taken {
        if start + RANGE <= from {
            break;
        }
        start = start.max(to);
    }
    start
}

/// The engine's root must be reachable by the containers' root (host uid
/// 100000 or so) on the way to `containers/ID/merged` and the files bound
/// from there: the daemon's own directories get o+x (0711, as Docker's
/// root), and an ancestor without it is an error that says what to do.
pub fn open_paths(root: &Path) -> Result<()> {
    for dir in [root.to_path_buf(), root.join("containers")] {
        let mode = std::fs::metadata(&dir)?.permissions().mode();
        if mode & 0o001 == 0 {
            std::fs::set_permissions(
                &dir,
                std::fs::Permissions::from_mode((mode & 0o7777) | 0o711),
            )?;
        }
    }
    let root = root.canonicalize()?;
    for dir in root.ancestors().skip(1) {
        let mode = std::fs::metadata(dir)?.permissions().mode();
        if mode & 0o001 == 0 {
            return Err(anyhow!(
                "--userns-remap: the containers' root cannot reach {} (mode {:o}): give it o+x \
                 (chmod o+x {}) or put the engine's root elsewhere",
                dir.display(),
                mode & 0o7777,
                dir.display()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_free_range_avoids_every_taken_one() {
        assert_eq!(free_range(&[""]), 100_000);
        assert_eq!(free_range(&["root:100000:65536\n"]), 165_536);
        assert_eq!(
            free_range(&["a:100000:65536\n", "b:165536:10\nc:300000:65536\n"]),
            165_546
        );
        assert_eq!(
            free_range(&["a:200000:65536\n"]),
            100_000,
            "room before the first"
        );
    }
}
