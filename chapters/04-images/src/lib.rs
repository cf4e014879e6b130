//! Chapter 04: images. An image is a read-only filesystem (layers) plus the
//! configuration a container needs at run time, all stored as blobs named
//! by their SHA-256 digest.
//!
//! - [`digest`]: content addresses, hashing readers and writers, ChainIDs.
//! - [`manifest`]: the JSON documents (index, manifest, config,
//!   descriptor) and their media types, OCI and Docker.
//! - [`store`]: a content store that *is* an OCI image layout, with atomic
//!   ingest and tags in index.json.
//! - [`unpack`]: layers streamed from blobs into shared snapshot
//!   directories, every digest checked, through chapter 03's applier with
//!   strict limits.
//! - [`runconfig`]: entrypoint, cmd, env, user and friends, merged by
//!   Docker's rules.
//! - [`archive`]: import a rootfs, OCI layouts in and out, `docker save`
//!   archives in and out.
//! - [`gc`]: what no tag reaches goes.
//!
//! The book page: `book/src/ch04-images.md`.

pub mod archive;
pub mod digest;
pub mod gc;
pub mod manifest;
pub mod runconfig;
pub mod store;
pub mod unpack;

pub use digest::Digest;
pub use store::Store;
