//! Chapter 06: the full engine. Everything the earlier chapters built,
//! composed into a daemon that speaks the Docker Engine API, so that our
//! `mini-docker` CLI, and the real `docker` CLI, can drive it.
//!
//! ```text
//! mini-docker / docker ──HTTP on a unix socket──▶ mini-dockerd ──▶ monitor ──▶ container
//!      (client)              (Engine API)          (daemon)      (one each)   (PID 1)
//! ```
//!
//! The modules, in the order a `run` touches them:
//!
//! - [`client`]: the CLI's side of the API (requests, hijacked streams).
//! - [`api`]: the API's JSON, with Docker's field names.
//! - [`daemon`]: the server: routes, images (chapters 04 and 05),
//!   containers, exec; its view of every container, rebuilt from disk on
//!   start.
//! - [`state`]: what is kept on disk per container, written atomically.
//! - [`monitor`]: the per-container process that holds stdio and the exit
//!   status: it mounts the overlay (03), creates the cgroup (02) and clones
//!   the container (01) with Docker's hardening.
//! - [`security`], [`seccomp`]: capabilities, no_new_privs and Docker's
//!   seccomp profile compiled to BPF, from `--cap-*`, `--privileged` and
//!   `--security-opt`.
//! - [`cgroups`]: where containers' cgroups go (v1, v2, a delegated v2
//!   subtree) and which limits can be had there.
//! - [`userns`]: `--userns-remap`, every container's root an unprivileged
//!   host user (its layers idmapped by chapter 03).
//! - [`rootless`]: the whole engine in a user namespace of an ordinary
//!   user, its networks through slirp4netns.
//! - [`build`]: `docker build`'s grammar, substitution, `.dockerignore`
//!   and cache key (the steps run in `daemon::build`).
//! - [`exec`]: a second process in a running container (`setns(2)`).
//! - [`net`]: bridge networking: addresses, veth pairs, NAT, /etc files.
//! - [`stdcopy`], [`jsonlog`], [`human`], [`ids`]: Docker's stream frames,
//!   log format, "Up 3 seconds", and container IDs and names.
//!
//! The book page: `book/src/ch06-engine.md`.

pub mod api;
pub mod archive;
pub mod build;
pub mod cgroups;
pub mod client;
pub mod cp;
pub mod daemon;
pub mod exec;
pub mod human;
pub mod ids;
pub mod jsonlog;
pub mod monitor;
pub mod net;
pub mod rootless;
pub mod seccomp;
pub mod security;
pub mod state;
pub mod stdcopy;
pub mod userns;
