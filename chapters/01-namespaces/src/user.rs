//! User namespace: user and group IDs get a second meaning. A process can be
//! uid 0, with every capability, *inside* its namespace while the kernel
//! treats it as an ordinary uid *outside*. The parent writes the mapping
//! into `/proc/PID/uid_map` and `gid_map` after the clone; until then the
//! child is the overflow user `nobody` and must wait. See user_namespaces(7).

use crate::ops::Op;
use nix::unistd::Pid;
use std::fmt;
use std::io;

/// `count` IDs starting at `inside` in the namespace are `outside`.. on the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdRange {
    pub inside: u32,
    pub outside: u32,
    pub count: u32,
}

/// A user-namespace mapping for user and group IDs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdMap {
    pub uids: Vec<IdRange>,
    pub gids: Vec<IdRange>,
    /// Write `deny` to `/proc/PID/setgroups` first. The kernel requires it
    /// before an unprivileged process may write `gid_map`: otherwise the
    /// child could drop a supplementary group that denies it access.
    pub deny_setgroups: bool,
}

/// Where root's containers start on the host: the range Docker's userns
/// remapping and `/etc/subuid` conventionally give the first user.
pub const ROOT_SUBID_START: u32 = 100_000;
pub const ROOT_SUBID_COUNT: u32 = 65_536;

impl IdMap {
    /// The mapping a caller with effective IDs `uid`/`gid` may write itself.
    /// Root maps a whole range (0 inside is 100000 outside). Anyone else may
    /// map exactly one ID, their own, and must deny setgroups.
    pub fn for_caller(uid: u32, gid: u32) -> IdMap {
        if uid == 0 {
            let range = IdRange {
                inside: 0,
                outside: ROOT_SUBID_START,
                count: ROOT_SUBID_COUNT,
            };
            IdMap {
                uids: vec![range],
                gids: vec![range],
                deny_setgroups: false,
            }
        } else {
            IdMap {
                uids: vec![IdRange {
                    inside: 0,
                    outside: uid,
                    count: 1,
                }],
                gids: vec![IdRange {
                    inside: 0,
                    outside: gid,
                    count: 1,
                }],
                deny_setgroups: true,
            }
        }
    }

    /// The mapping for the current process's effective IDs.
    pub fn for_current_process() -> IdMap {
        IdMap::for_caller(
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        )
    }
}

/// The text of a `uid_map`/`gid_map` file: one `inside outside count` line a range.
pub fn map_file_text(ranges: &[IdRange]) -> String {
    ranges
        .iter()
        .map(|r| format!("{} {} {}\n", r.inside, r.outside, r.count))
        .collect()
}

impl fmt::Display for IdMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |rs: &[IdRange]| {
            rs.iter()
                .map(|r| {
                    format!(
                        "{}..{} -> {}..{}",
                        r.inside,
                        r.inside + r.count,
                        r.outside,
                        r.outside + r.count
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        write!(f, "uids {}; gids {}", show(&self.uids), show(&self.gids))
    }
}

/// The child's first step in a new user namespace. Its credentials still
/// hold the host IDs it was cloned with; for root those are not inside the
/// map (0 outside is not mapped when 0 inside is 100000 outside), so the
/// child would act as the overflow user `nobody` until it switches to the
/// namespace's uid 0. Supplementary groups can be dropped only where
/// setgroups(2) was not denied.
pub fn become_root_ops(map: &IdMap) -> Vec<Op> {
    vec![Op::BecomeRoot {
        drop_groups: !map.deny_setgroups,
    }]
}

// ANCHOR: write_id_maps
// exercise 1.7: write the user namespace's ID maps for the child `pid`
// hint: Three files under /proc/PID/: uid_map, then setgroups ("deny", only when
// hint: map.deny_setgroups), then gid_map. Each map is written in ONE write(2)
// hint: (the kernel accepts a map file once); map_file_text builds the text.
pub fn write_id_maps(pid: Pid, map: &IdMap) -> io::Result<()> {
    let write = |file: &str, text: &str| {
        let path = format!("/proc/{pid}/{file}");
        std::fs::write(&path, text)
            .map_err(|e| io::Error::new(e.kind(), format!("writing {text:?} to {path}: {e}")))
    };
    write("uid_map", &map_file_text(&map.uids))?;
    if map.deny_setgroups {
        write("setgroups", "deny")?;
    }
    write("gid_map", &map_file_text(&map.gids))
}
// ANCHOR_END: write_id_maps

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unprivileged_callers_map_only_themselves() {
        let map = IdMap::for_caller(1000, 1000);
        assert_eq!(map_file_text(&map.uids), "0 1000 1\n");
        assert!(map.deny_setgroups);
        let root = IdMap::for_caller(0, 0);
        assert_eq!(map_file_text(&root.gids), "0 100000 65536\n");
        assert!(!root.deny_setgroups);
    }
}
