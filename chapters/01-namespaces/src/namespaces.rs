//! The kinds of namespace a process can be given, and the `clone(2)` flag
//! that asks the kernel for a new one of each. See namespaces(7).

use nix::sched::CloneFlags;
use std::fmt;
use std::str::FromStr;

/// One kind of namespace. Each isolates one thing the kernel would otherwise
/// show every process the same way.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Namespace {
    /// Hostname and NIS domain name.
    Uts,
    /// SysV semaphores, message queues and shared memory; POSIX queues.
    Ipc,
    /// Process IDs: the first process inside is PID 1.
    Pid,
    /// Network devices, addresses, routes, ports, firewall rules.
    Net,
    /// The mount table: which filesystem is mounted where.
    Mount,
    /// User and group IDs, and the capabilities that go with them.
    User,
    /// The root of the cgroup tree as `/proc/self/cgroup` shows it.
    Cgroup,
}

impl Namespace {
    /// All kinds, in the order the book presents them.
    pub const ALL: [Namespace; 7] = [
        Namespace::Uts,
        Namespace::Pid,
        Namespace::Mount,
        Namespace::Ipc,
        Namespace::Net,
        Namespace::User,
        Namespace::Cgroup,
    ];

    /// The name the kernel uses under `/proc/PID/ns/`.
    pub fn proc_name(self) -> &'static str {
        match self {
            Namespace::Uts => "uts",
            Namespace::Ipc => "ipc",
            Namespace::Pid => "pid",
            Namespace::Net => "net",
            Namespace::Mount => "mnt",
            Namespace::User => "user",
            Namespace::Cgroup => "cgroup",
        }
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.proc_name())
    }
}

impl FromStr for Namespace {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "uts" => Namespace::Uts,
            "ipc" => Namespace::Ipc,
            "pid" => Namespace::Pid,
            "net" | "network" => Namespace::Net,
            "mnt" | "mount" => Namespace::Mount,
            "user" | "userns" => Namespace::User,
            "cgroup" => Namespace::Cgroup,
            other => {
                return Err(format!(
                    "unknown namespace {other:?}: use uts, pid, mnt, ipc, net, user or cgroup"
                ))
            }
        })
    }
}

/// A set of namespaces to create for one container.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Namespaces(Vec<Namespace>);

impl Namespaces {
    /// No new namespaces: the child shares everything with its parent.
    pub fn none() -> Self {
        Namespaces(Vec::new())
    }

    /// What a container gets by default: UTS, PID, MNT, IPC, NET. USER is
    /// added where it is needed (an unprivileged caller) or asked for.
    pub fn container() -> Self {
        Self::from_iter([
            Namespace::Uts,
            Namespace::Pid,
            Namespace::Mount,
            Namespace::Ipc,
            Namespace::Net,
        ])
    }

    pub fn contains(&self, ns: Namespace) -> bool {
        self.0.contains(&ns)
    }

    pub fn insert(&mut self, ns: Namespace) {
        if !self.contains(ns) {
            self.0.push(ns);
            self.0.sort();
        }
    }

    /// Shares `ns` with the parent instead (`--network host`).
    pub fn remove(&mut self, ns: Namespace) {
        self.0.retain(|n| *n != ns);
    }

    pub fn iter(&self) -> impl Iterator<Item = Namespace> + '_ {
        self.0.iter().copied()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<Namespace> for Namespaces {
    fn from_iter<I: IntoIterator<Item = Namespace>>(iter: I) -> Self {
        let mut set = Namespaces::none();
        for ns in iter {
            set.insert(ns);
        }
        set
    }
}

impl FromStr for Namespaces {
    type Err = String;
    /// Parses a comma-separated list such as `uts,pid,mnt`; `all` is every
    /// kind but cgroup, `none` is the empty set.
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "none" | "" => Ok(Namespaces::none()),
            "all" => {
                let mut set = Namespaces::container();
                set.insert(Namespace::User);
                Ok(set)
            }
            list => list.split(',').map(str::parse).collect(),
        }
    }
}

impl fmt::Display for Namespaces {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Namespace::proc_name).collect();
        f.write_str(&names.join(","))
    }
}

// ANCHOR: clone_flags
// exercise 1.1: map each namespace to the clone(2) flag that asks for a new one
// hint: A container is one process that the kernel shows a private view of
//   some things. Each kind of view is asked for with one CLONE_NEW* bit in the
//   flags of clone(2); a set of namespaces is those bits ORed together, and
//   no namespaces is no bits.
// hint: The mount namespace was the first (2002), before anyone expected
//   more: its flag is CLONE_NEWNS, not CLONE_NEWMNT. nix names the bits
//   CloneFlags::CLONE_NEW…; the cgroup namespace has one too.
// hint: namespaces(7), the table "Namespace types"; clone(2) DESCRIPTION.
pub fn clone_flags(namespaces: &Namespaces) -> CloneFlags {
    let mut flags = CloneFlags::empty();
    for ns in namespaces.iter() {
        flags |= match ns {
            Namespace::Uts => CloneFlags::CLONE_NEWUTS,
            Namespace::Ipc => CloneFlags::CLONE_NEWIPC,
            Namespace::Pid => CloneFlags::CLONE_NEWPID,
            Namespace::Net => CloneFlags::CLONE_NEWNET,
            Namespace::Mount => CloneFlags::CLONE_NEWNS,
            Namespace::User => CloneFlags::CLONE_NEWUSER,
            Namespace::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        };
    }
    flags
}
// ANCHOR_END: clone_flags

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists_aliases_and_rejects_unknown_names() {
        let set: Namespaces = "uts, mount,network".parse().unwrap();
        assert_eq!(set.to_string(), "uts,net,mnt");
        assert!("all"
            .parse::<Namespaces>()
            .unwrap()
            .contains(Namespace::User));
        assert!("none".parse::<Namespaces>().unwrap().is_empty());
        let err = "uts,time".parse::<Namespaces>().unwrap_err();
        assert!(err.contains("\"time\""), "{err}");
    }
}
