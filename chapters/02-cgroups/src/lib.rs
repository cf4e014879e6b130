//! Chapter 02: control groups. Namespaces decide what a container can
//! *see*; cgroups decide what it can *use*: how much memory, CPU time, how
//! many processes, how fast it may do IO, and they account for all of it.
//!
//! A cgroup is a directory in a special filesystem; its limits are files;
//! a process joins by writing its PID into `cgroup.procs`. The modules:
//!
//! - [`layout`]: which of the three layouts this host has (v1, hybrid, v2),
//!   where the hierarchies are mounted, where this process sits in them.
//! - [`size`], [`limits`]: Docker's flags (`--memory 100m`, `--cpus 0.5`,
//!   ...) parsed and checked against the host.
//! - [`convert`]: v1 values to v2 ones, with crun's formulas.
//! - [`files`]: reading and writing cgroup files, with the kernel's
//!   refusals said in words.
//! - [`cgroup`]: the interface both versions implement, and the life both
//!   share: join, kill everything, remove; [`v1`] and [`v2`]: the two
//!   drivers, each creating its directories and writing its limit files.
//! - [`container`]: the driver chosen for this host, and a chapter 01
//!   container joined to its cgroup before its command runs, cleaned up
//!   after.
//! - [`view`]: what the container sees at `/sys/fs/cgroup`: its own cgroup
//!   in each hierarchy, for chapter 01 to mount.
//!
//! The book page: `book/src/ch02-cgroups.md`.

pub mod cgroup;
pub mod container;
pub mod convert;
pub mod devices;
pub mod files;
pub mod layout;
pub mod limits;
pub mod size;
pub mod v1;
pub mod v2;
pub mod view;

pub use cgroup::{Cgroup, Stats};
pub use container::{run_limited, Outcome};
pub use layout::{Layout, Mode};
pub use limits::Limits;
