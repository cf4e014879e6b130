//! What the engine keeps on disk about each container, under
//! `<root>/containers/<id>/`:
//!
//! - `config.json`: written once by the daemon at create: what to run and
//!   how (the resolved command, environment, user, limits, image layers).
//! - `state.json`: created / running / exited, PIDs, exit code, times.
//!   The daemon writes it at create and start; the container's monitor
//!   writes the exit. Every write is atomic (temp file, fsync, rename), so
//!   a crash leaves the old state or the new one, never half of one.
//! - `<id>-json.log`: the output, in Docker's json-file format.
//! - `upper/`, `work/`, `merged/`: the overlay (chapter 03).
//!
//! The monitor's socket lives in `<root>/sock/<short id>` (a unix socket
//! path has at most 107 bytes; a 64-digit ID under a deep root is longer).

use crate::api::{ContainerConfig, HostConfig};
use serde::{Deserialize, Serialize};
use std::io;
use std::path::{Path, PathBuf};

/// A container's fixed configuration.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Container {
    pub id: String,
    pub name: String,
    pub created: String,
    /// The image as the user named it.
    pub image: String,
    /// The image's config digest (`sha256:…`), Docker's image ID.
    pub image_id: String,
    /// The image's unpacked layers, bottom first (overlay lowerdirs).
    pub layers: Vec<PathBuf>,
    /// The command as it will be executed: entrypoint + cmd.
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub workdir: String,
    pub uid: u32,
    pub gid: u32,
    pub hostname: String,
    /// The signal `stop` sends first (the image's STOPSIGNAL, else SIGTERM).
    pub stop_signal: i32,
    pub config: ContainerConfig,
    pub host_config: HostConfig,
    /// Volumes, bind mounts and tmpfs mounts (`-v`, `--tmpfs`).
    #[serde(default)]
    pub mounts: Vec<MountPoint>,
    /// Exposed ports of the image and the request ("80/tcp"), for `-P`.
    #[serde(default)]
    pub exposed_ports: Vec<String>,
    /// The seccomp profile and no_new_privs, resolved at create.
    #[serde(default)]
    pub confinement: crate::security::Confinement,
    /// The user namespace's map under the daemon's `--userns-remap`
    /// (resolved at create); `None`: no user namespace.
    #[serde(default)]
    pub userns: Option<UsernsMap>,
    /// Other names on its network (`--network-alias`, compose's service
    /// name): in the network's /etc/hosts files beside its name.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// The networks it joined besides the one its mode names (`network
    /// connect`), in order: the second is its eth1, and so on.
    #[serde(default)]
    pub networks: Vec<String>,
    /// `--ip`: the address it asked for on its network.
    #[serde(default)]
    pub ip: Option<std::net::Ipv4Addr>,
    /// More groups for its processes (`--group-add`, resolved at create).
    #[serde(default)]
    pub groups: Vec<u32>,
}

/// A user namespace's ID map as kept on disk: `[inside, outside, count]`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct UsernsMap {
    pub uids: Vec<[u32; 3]>,
    pub gids: Vec<[u32; 3]>,
}

impl UsernsMap {
    pub fn from_id_map(map: &chapter_01::IdMap) -> UsernsMap {
        let ranges = |rs: &[chapter_01::IdRange]| {
            rs.iter().map(|r| [r.inside, r.outside, r.count]).collect()
        };
        UsernsMap {
            uids: ranges(&map.uids),
            gids: ranges(&map.gids),
        }
    }

    pub fn to_id_map(&self) -> chapter_01::IdMap {
        let ranges = |rs: &[[u32; 3]]| {
            rs.iter()
                .map(|[inside, outside, count]| chapter_01::IdRange {
                    inside: *inside,
                    outside: *outside,
                    count: *count,
                })
                .collect()
        };
        chapter_01::IdMap {
            uids: ranges(&self.uids),
            gids: ranges(&self.gids),
            deny_setgroups: false,
        }
    }
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MountKind {
    Bind,
    Volume,
    Tmpfs,
}

/// One mount of a container, as `docker inspect` lists it.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct MountPoint {
    pub kind: MountKind,
    /// A volume's name.
    pub name: Option<String>,
    /// The host path (a volume's `_data`, a bind's source); empty for tmpfs.
    pub source: PathBuf,
    /// The path inside the container.
    pub destination: String,
    pub readonly: bool,
    /// An anonymous volume (from the image's VOLUME, or `-v /path`): removed
    /// with the container by `rm -v` and `--rm`.
    pub anonymous: bool,
    /// tmpfs options (`size=64m,mode=1777`).
    pub options: String,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Created,
    Running,
    Exited,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Exited => "exited",
        }
    }
}

/// A container's changing state.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct State {
    pub status: Status,
    /// The container's PID 1 as the host sees it (0 when not running).
    pub pid: i32,
    pub monitor_pid: i32,
    pub exit_code: i32,
    pub oom_killed: bool,
    /// Why the container could not start, or what went wrong with it.
    pub error: String,
    pub started_at: String,
    pub finished_at: String,
    /// The cgroup directories while running (`exec` joins them).
    pub cgroup_dirs: Vec<PathBuf>,
}

/// The directory layout of one engine root.
#[derive(Clone, Debug)]
pub struct Paths {
    pub root: PathBuf,
}

impl Paths {
    pub fn new(root: impl Into<PathBuf>) -> Paths {
        Paths { root: root.into() }
    }
    pub fn images(&self) -> PathBuf {
        self.root.join("images")
    }
    pub fn containers(&self) -> PathBuf {
        self.root.join("containers")
    }
    pub fn container(&self, id: &str) -> PathBuf {
        self.containers().join(id)
    }
    pub fn config(&self, id: &str) -> PathBuf {
        self.container(id).join("config.json")
    }
    pub fn state(&self, id: &str) -> PathBuf {
        self.container(id).join("state.json")
    }
    pub fn log(&self, id: &str) -> PathBuf {
        self.container(id).join(format!("{id}-json.log"))
    }
    /// The container's place on a network while it runs.
    pub fn endpoint(&self, id: &str) -> PathBuf {
        self.container(id).join("endpoint.json")
    }
    /// Its place on one more network (`network connect`) while it runs.
    pub fn extra_endpoint(&self, id: &str, network: &str) -> PathBuf {
        self.container(id).join(format!("endpoint-{network}.json"))
    }
    pub fn socket(&self, id: &str) -> PathBuf {
        self.root.join("sock").join(crate::ids::short(id))
    }
    /// Shifted copies of layers for one remapped root (where idmapped
    /// mounts are missing): `remapped/UID.GID`, as Docker names its root.
    pub fn remapped_layers(&self, map: &chapter_01::IdMap) -> PathBuf {
        self.root.join("remapped").join(format!(
            "{}.{}",
            map.root_uid().unwrap_or(0),
            map.root_gid().unwrap_or(0)
        ))
    }

    /// Compiled seccomp programs, by what they were compiled from.
    pub fn seccomp_cache(&self) -> PathBuf {
        self.root.join("seccomp")
    }

    pub fn volumes(&self) -> PathBuf {
        self.root.join("volumes")
    }
    pub fn volume(&self, name: &str) -> PathBuf {
        self.volumes().join(name)
    }
    pub fn lock(&self) -> PathBuf {
        self.root.join("daemon.lock")
    }
}

/// Writes JSON atomically: temp file beside it, fsync, rename, fsync dir.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> io::Result<()> {
    let bytes = serde_json::to_vec_pretty(value).map_err(io::Error::other)?;
    chapter_04::store::write_atomic(path, &bytes)
}

pub fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> io::Result<T> {
    let bytes = std::fs::read(path)?;
    serde_json::from_slice(&bytes).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {e}", path.display()),
        )
    })
}
