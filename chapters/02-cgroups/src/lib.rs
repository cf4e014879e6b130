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
//! - [`cgroup`]: the interface both versions implement, and shared file
//!   handling; [`v1`] and [`v2`]: the two drivers.
//! - [`container`]: a chapter 01 container joined to a cgroup before its
//!   command runs, and cleaned up after.
//!
//! The book page: `book/src/ch02-cgroups.md`.

pub mod cgroup;
pub mod container;
pub mod convert;
pub mod layout;
pub mod limits;
pub mod size;
pub mod v1;
pub mod v2;

pub use cgroup::{Cgroup, Stats};
pub use container::{run_limited, Outcome};
pub use layout::{Layout, Mode};
pub use limits::Limits;
