//! Chapter 03: union filesystem. An image is a stack of read-only layers;
//! a container adds one writable layer on top; overlayfs shows the stack as
//! one directory tree, and copy-on-write means nothing is copied until it
//! is changed.
//!
//! - [`overlay`]: mounting a stack of layers (and the page-size limit that
//!   the new mount API's `lowerdir+` lifts).
//! - [`whiteout`]: how a layer records a deletion, in overlayfs's format and
//!   in the OCI image format.
//! - [`diff`]: a container's upper directory turned into an OCI layer tar,
//!   byte-for-byte deterministic.
//! - [`apply`]: the inverse: a layer tar unpacked into a directory overlayfs
//!   can use as a lower layer.
//! - [`copy`]: a fallback for hosts without overlayfs, with the same
//!   interface, that copies instead.
//! - [`driver`]: the two behind one interface, chosen by detection.
//! - [`idmap`]: layers for a container in a user namespace: idmapped
//!   mounts, or shifted copies where the kernel has none.
//!
//! The book page: `book/src/ch03-unionfs.md`.

pub mod apply;
pub mod copy;
pub mod diff;
pub mod driver;
pub mod idmap;
pub mod overlay;
pub mod whiteout;

pub use chapter_01::fixture_rootfs;
pub use driver::{Driver, Mounted};
pub use overlay::Layers;
