//! User namespace: user and group IDs get a second meaning. A process can be
//! uid 0, with every capability, *inside* its namespace while the kernel
//! treats it as an ordinary uid *outside*. The parent writes the mapping
//! into `/proc/PID/uid_map` and `gid_map` after the clone; until then the
//! child is the overflow user `nobody` and must wait. See user_namespaces(7).

use crate::sys::Sys;
use nix::errno::Errno;
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

/// Where the parent writes a child's maps: `/proc/PID/FILE`, each file in
/// one `write(2)`; the error names the file and the text.
pub fn proc_writer(pid: Pid) -> impl FnMut(&str, &str) -> io::Result<()> {
    move |file, text| {
        let path = format!("/proc/{pid}/{file}");
        std::fs::write(&path, text)
            .map_err(|e| io::Error::new(e.kind(), format!("writing {text:?} to {path}: {e}")))
    }
}

// ANCHOR: write_id_maps
// exercise 1.8: write the user namespace's ID maps for the child
// hint: From outside, the parent tells the kernel what the child's IDs mean: one
//   "inside outside count" line per range, for users and for groups. Until
//   then the child is the overflow user nobody. `write(file, text)` writes one
//   file of /proc/CHILD/ (see proc_writer); map_file_text makes the text.
// hint: A map file accepts exactly one write, so all its lines go in one call.
//   An unprivileged writer may only map gids after "deny" went into setgroups
//   (else a dropped group could grant it access): order is uid_map, setgroups
//   (only when map.deny_setgroups), gid_map.
// hint: user_namespaces(7), sections "User and group ID mappings: uid_map and
//   gid_map" and "Interaction with system calls that change process UIDs or GIDs".
pub fn write_id_maps(
    map: &IdMap,
    write: &mut dyn FnMut(&str, &str) -> io::Result<()>,
) -> io::Result<()> {
    write("uid_map", &map_file_text(&map.uids))?;
    if map.deny_setgroups {
        write("setgroups", "deny")?;
    }
    write("gid_map", &map_file_text(&map.gids))
}
// ANCHOR_END: write_id_maps

// ANCHOR: become_root
// exercise 1.9: become root of the new user namespace
// builds on: 1.7, 1.8
// hint: After clone(2) the child still holds the IDs it was copied with. For
//   root those are not in the map (0 outside is not mapped when 0 inside is
//   100000 outside), so the child acts as nobody until it takes the
//   namespace's uid 0 and gid 0 for itself.
// hint: Groups first, then the gid, the uid last: once the uid is no longer
//   0 nothing else may be changed. Supplementary groups can be dropped only
//   where setgroups was not denied (`drop_groups`); there it is an empty list.
// hint: user_namespaces(7) "Capabilities"; setresuid(2), setgroups(2). The
//   calls are sys.setgroups, sys.setresgid, sys.setresuid.
/// The child's first step in a new user namespace.
pub fn become_root(sys: &mut impl Sys, drop_groups: bool) -> Result<(), Errno> {
    if drop_groups {
        sys.setgroups(&[])?;
    }
    sys.setresgid(0)?;
    sys.setresuid(0)
}
// ANCHOR_END: become_root

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
