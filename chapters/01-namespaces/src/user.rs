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

/// The most lines a map file takes (Linux 4.15+).
pub const MAX_MAP_LINES: usize = 340;

// ANCHOR: subordinate_ranges
// exercise 1.16: the ranges a user owns in /etc/subuid, laid end to end
// builds on: 1.8
// hint: Docker's --userns-remap gives every container one host user's
//   subordinate IDs: /etc/subuid (and /etc/subgid) hold lines
//   "NAME:START:COUNT", and a user may own several. The lines that name the
//   user, by name or by number (`id`), in file order, become the map.
// hint: Inside, the ranges are laid end to end: the first starts at 0, the
//   next where the one before ends. Skip blank lines and # comments. A line
//   that is not three fields with two numbers (a count of at least 1) is an
//   error naming its line number; so is no line for the user (say what to
//   add to which file), a range past 2^32, or more lines than MAX_MAP_LINES.
// hint: subuid(5) and subgid(5); user_namespaces(7) on maps of several
//   lines. `Result<_, String>`: the error is one line for the daemon to print.
/// The ranges of `name` (or of the numeric `id`) in a subuid/subgid file,
/// mapped from 0 inside upwards.
pub fn subordinate_ranges(text: &str, name: &str, id: u32) -> Result<Vec<IdRange>, String> {
    let mut ranges = Vec::new();
    let mut inside: u64 = 0;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split(':').collect();
        let bad = || format!("line {}: {line:?} is not NAME:START:COUNT", n + 1);
        let [owner, start, count] = fields[..] else {
            return Err(bad());
        };
        let (Ok(start), Ok(count)) = (start.parse::<u32>(), count.parse::<u32>()) else {
            return Err(bad());
        };
        if count == 0 {
            return Err(bad());
        }
        if owner != name && owner.parse::<u32>() != Ok(id) {
            continue;
        }
        if u64::from(start) + u64::from(count) > 1 << 32 || inside + u64::from(count) > 1 << 32 {
            return Err(format!(
                "line {}: the range {start}+{count} passes 2^32",
                n + 1
            ));
        }
        ranges.push(IdRange {
            inside: inside as u32,
            outside: start,
            count,
        });
        inside += u64::from(count);
    }
    if ranges.is_empty() {
        return Err(format!(
            "no subordinate IDs for {name} (id {id}): add a line {name}:START:COUNT, \
             e.g. {name}:100000:65536"
        ));
    }
    if ranges.len() > MAX_MAP_LINES {
        return Err(format!(
            "{name} has {} ranges; a user namespace takes at most {MAX_MAP_LINES}",
            ranges.len()
        ));
    }
    Ok(ranges)
}
// ANCHOR_END: subordinate_ranges

impl IdMap {
    /// Docker's `--userns-remap USER:GROUP`: the user's ranges from the
    /// text of /etc/subuid, the group's from /etc/subgid.
    pub fn remap(
        (user, uid): (&str, u32),
        (group, gid): (&str, u32),
        subuid: &str,
        subgid: &str,
    ) -> Result<IdMap, String> {
        Ok(IdMap {
            uids: subordinate_ranges(subuid, user, uid).map_err(|e| format!("subuid: {e}"))?,
            gids: subordinate_ranges(subgid, group, gid).map_err(|e| format!("subgid: {e}"))?,
            deny_setgroups: false,
        })
    }

    /// The host uid of the container's root (inside 0).
    pub fn root_uid(&self) -> Option<u32> {
        map_id(&self.uids, 0)
    }

    /// The host gid of the container's root group.
    pub fn root_gid(&self) -> Option<u32> {
        map_id(&self.gids, 0)
    }
}

/// Where the subordinate IDs are: /etc/subuid and /etc/subgid, unless
/// `MINI_DOCKER_SUBUID` / `MINI_DOCKER_SUBGID` name other files (tests use
/// their own, so the machine's stay untouched).
pub fn subid_files() -> (String, String) {
    let file = |var: &str, default: &str| std::env::var(var).unwrap_or_else(|_| default.into());
    (
        file("MINI_DOCKER_SUBUID", "/etc/subuid"),
        file("MINI_DOCKER_SUBGID", "/etc/subgid"),
    )
}

/// `USER[:GROUP]` (names or numbers; the group defaults to the user's
/// name, as Docker's) → the map of its subordinate IDs.
pub fn remap_for(spec: &str) -> Result<IdMap, String> {
    let (user, group) = spec.split_once(':').unwrap_or((spec, spec));
    let (user_name, uid) = match user.parse::<u32>() {
        Ok(uid) => match nix::unistd::User::from_uid(uid.into()) {
            Ok(Some(u)) => (u.name, uid),
            _ => (user.to_string(), uid),
        },
        Err(_) => match nix::unistd::User::from_name(user) {
            Ok(Some(u)) => (u.name, u.uid.as_raw()),
            _ => return Err(format!("no user {user:?} on this host (see /etc/passwd)")),
        },
    };
    let (group_name, gid) = match group.parse::<u32>() {
        Ok(gid) => match nix::unistd::Group::from_gid(gid.into()) {
            Ok(Some(g)) => (g.name, gid),
            _ => (group.to_string(), gid),
        },
        Err(_) => match nix::unistd::Group::from_name(group) {
            Ok(Some(g)) => (g.name, g.gid.as_raw()),
            _ => return Err(format!("no group {group:?} on this host (see /etc/group)")),
        },
    };
    let (uid_file, gid_file) = subid_files();
    let read = |p: &str| std::fs::read_to_string(p).map_err(|e| format!("reading {p}: {e}"));
    Ok(IdMap {
        uids: subordinate_ranges(&read(&uid_file)?, &user_name, uid)
            .map_err(|e| format!("{uid_file}: {e}"))?,
        gids: subordinate_ranges(&read(&gid_file)?, &group_name, gid)
            .map_err(|e| format!("{gid_file}: {e}"))?,
        deny_setgroups: false,
    })
}

/// True in the host's own user namespace (its uid_map is the identity over
/// every ID); false inside any other, e.g. a rootless engine's, where being
/// uid 0 does not give what root has on the host (mknod of a device, the
/// trusted.* xattrs).
pub fn in_initial_namespace() -> bool {
    std::fs::read_to_string("/proc/self/uid_map")
        .is_ok_and(|map| map.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"])
}

/// The outside ID of `inside`, if the ranges map it.
pub fn map_id(ranges: &[IdRange], inside: u32) -> Option<u32> {
    ranges
        .iter()
        .find(|r| inside >= r.inside && inside - r.inside < r.count)
        .map(|r| r.outside + (inside - r.inside))
}

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
