//! Leaves the machine as the tests found it, whatever the code under test
//! did. A graded run may have the learner's own, unfinished cleanup code in
//! it (or, in `cargo xtask verify`, a deliberately stubbed one), so this
//! sweep relies on nothing from the chapters: it walks the cgroup
//! filesystem for directories named with the test prefix, kills what they
//! hold, and removes them, deepest first.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The prefixes of the cgroups tests and experiments create (never those of
/// a running engine's containers).
pub const CGROUP_PREFIXES: [&str; 2] = ["mini-docker-test-", "mini-docker-ch02-"];

/// Sweeps every prefix of [`CGROUP_PREFIXES`].
pub fn sweep_test_cgroups() -> Vec<PathBuf> {
    CGROUP_PREFIXES
        .iter()
        .flat_map(|p| sweep_cgroups(p))
        .collect()
}

/// Removes every cgroup under /sys/fs/cgroup whose name starts with
/// `prefix`, killing its processes first. Returns what it removed.
pub fn sweep_cgroups(prefix: &str) -> Vec<PathBuf> {
    let mut found = find_cgroups(prefix);
    // Deepest first, so children go before their parents.
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    let mut removed = Vec::new();
    for dir in found {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
            for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                // SAFETY: kill(2) with a PID read from the cgroup.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            // A frozen v1 group must be thawed for the kills to land.
            let _ = std::fs::write(dir.join("freezer.state"), "THAWED");
            if std::fs::remove_dir(&dir).is_ok() || !dir.exists() {
                removed.push(dir);
                break;
            }
            if Instant::now() > deadline {
                eprintln!("janitor: could not remove {}", dir.display());
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    removed
}

/// Every cgroup directory whose name starts with `prefix` (a leak check).
pub fn find_cgroups(prefix: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    collect(Path::new("/sys/fs/cgroup"), prefix, 0, &mut found);
    found
}

fn collect(dir: &Path, prefix: &str, depth: usize, found: &mut Vec<PathBuf>) {
    if depth > 8 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if !kind.is_dir() {
            continue;
        }
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with(prefix) {
            collect(&path, prefix, depth + 1, found);
            found.push(path);
        } else {
            collect(&path, prefix, depth + 1, found);
        }
    }
}
