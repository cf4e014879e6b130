//! Chapter 05: the registry. A registry stores and hands out images, as a
//! code-hosting site does for source; Docker Hub is the public one. The
//! protocol is the OCI distribution spec: plain HTTP, JSON manifests, blobs
//! named by digest.
//!
//! - [`reference`]: `busybox` → `docker.io/library/busybox:latest`.
//! - [`auth`]: challenges, tokens, Docker's credentials.
//! - [`client`]: HTTP with auth, redirects, retries, rate limits.
//! - [`pull`]: manifest (platform chosen from an index), config, layers
//!   in parallel, each streamed into chapter 04's store and checked.
//! - [`push`]: blobs first (skipping what exists, mounting from another
//!   repository when possible), then the manifest.
//! - [`progress`]: per-layer bars on a terminal, lines elsewhere.
//!
//! The book page: `book/src/ch05-registry.md`.

pub mod auth;
pub mod client;
pub mod progress;
pub mod pull;
pub mod push;
pub mod reference;

pub use reference::Reference;
