//! `mini-dockerd`: one process that owns an engine root and serves the
//! Docker Engine API on a unix socket.
//!
//! - [`http`]: request plumbing and the route table.
//! - [`images`]: pull (chapter 05), load, list, tag, remove (chapter 04),
//!   history, save, push.
//! - [`build`]: `POST /build`, Docker's classic builder on this engine.
//! - [`commit`]: a container's changes, listed (`diff`) and committed.
//! - [`archive`]: `docker cp`, both ways.
//! - [`containers`]: create, start (spawning the monitor), attach, wait,
//!   logs, stop, kill, remove, inspect, list, prune.
//! - [`execs`]: exec instances and their streams.
//! - [`volumes`]: named and anonymous volumes.
//! - [`health`]: health checks; [`events`]: `GET /events`.
//! - [`networks`]: networks, and a container's attachment to one.
//!
//! The daemon keeps every container in memory, and the truth on disk
//! (see [`crate::state`]). On start it reads every container back and
//! reconnects to the monitors that are still alive; a container whose
//! monitor died while the daemon was away is recorded as exited (255, as
//! Docker does after a crash without live-restore) and its mounts and
//! cgroups are cleaned up.

pub mod archive;
pub mod build;
pub mod commit;
pub mod containers;
pub mod events;
pub mod execs;
pub mod filters;
pub mod health;
pub mod http;
pub mod images;
pub mod networks;
pub mod volumes;

use crate::monitor::Hello;
use crate::state::{read_json, write_json, Container, Paths, State, Status};
use anyhow::{anyhow, Context, Result};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::io::AsyncWriteExt;
use tokio::sync::{oneshot, watch};

/// What waiters watch: how many times the container exited, and whether it
/// is gone.
#[derive(Clone, Copy, Debug, Default)]
pub struct Life {
    pub exits: u64,
    pub removed: bool,
    /// The last exit's code (a `removed` waiter answers after the state
    /// file is gone).
    pub exit_code: i32,
}

/// An attach request that arrived before the container started: its
/// connection is handed over once hyper has upgraded it.
pub struct Pending {
    pub hello: Hello,
    pub io: oneshot::Receiver<hyper::upgrade::Upgraded>,
    /// The detach keys of the attach (see [`containers::detach_keys`]).
    pub detach: Option<Vec<u8>>,
}

pub struct Entry {
    pub c: Container,
    pub state: State,
    pub life: watch::Sender<Life>,
    pub pending: Vec<Pending>,
    /// A start or removal is under way: a second one is refused.
    pub busy: bool,
    /// Restarts by its restart policy since the last start by hand.
    pub restart_count: u32,
    /// Stopped or killed by hand: no restart policy applies until a start.
    pub manually_stopped: bool,
    /// Its health check's state, while it has one.
    pub health: Option<health::Health>,
}

impl Entry {
    pub fn new(c: Container, state: State) -> Entry {
        Entry {
            c,
            state,
            life: watch::channel(Life::default()).0,
            pending: Vec::new(),
            busy: false,
            restart_count: 0,
            manually_stopped: false,
            health: None,
        }
    }
}

/// What `mini-dockerd`'s flags set for every container.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// `--default-cgroupns-mode`; `None`: Docker's default, private on
    /// cgroup v2, host on v1 (and hybrid).
    pub default_cgroupns_mode: Option<String>,
    /// `--seccomp-profile` and `--no-new-privileges`.
    pub security: crate::security::Defaults,
    /// `--userns-remap`: `default` or `USER[:GROUP]`.
    pub userns_remap: Option<String>,
    /// Started by an ordinary user: the engine runs in a user namespace
    /// (see [`crate::rootless`]).
    pub rootless: bool,
    /// Where containers' cgroups go, decided as the daemon started.
    pub cgroups: crate::cgroups::Placement,
}

impl Options {
    /// Checks the flags; the error names the flag.
    pub fn validate(&self) -> Result<()> {
        if let Some(mode) = &self.default_cgroupns_mode {
            valid_cgroupns(mode).map_err(|e| anyhow!("--default-cgroupns-mode: {e}"))?;
        }
        if self.rootless && self.userns_remap.is_some() {
            return Err(anyhow!(
                "--userns-remap maps containers onto another user's IDs, which only root may: \
                 a rootless daemon's containers already run in its user namespace"
            ));
        }
        Ok(())
    }

    /// The cgroup namespace mode of a container that asks for none.
    pub fn cgroupns_default(&self) -> String {
        self.default_cgroupns_mode.clone().unwrap_or_else(|| {
            match chapter_02::Layout::detect().map(|l| l.mode) {
                Ok(chapter_02::Mode::V2) => "private".into(),
                _ => "host".into(),
            }
        })
    }
}

/// `private` or `host`, or an error that says so.
pub fn valid_cgroupns(mode: &str) -> Result<(), String> {
    match mode {
        "private" | "host" => Ok(()),
        other => Err(format!(
            "invalid cgroup namespace mode {other:?}: use \"private\" or \"host\""
        )),
    }
}

pub struct Daemon {
    pub paths: Paths,
    pub options: Options,
    /// The remap user and its map, under `--userns-remap`.
    pub remap: Option<(String, chapter_01::IdMap)>,
    pub store: chapter_04::Store,
    pub containers: Mutex<BTreeMap<String, Entry>>,
    pub execs: Mutex<HashMap<String, execs::Exec>>,
    /// Pulls, loads, tags and removals of images, one at a time: the store
    /// has one writer, so its garbage collection never races an ingest.
    pub images_lock: tokio::sync::Mutex<()>,
    /// Bridge, NAT and address changes, one at a time.
    pub net_lock: tokio::sync::Mutex<()>,
    pub net: crate::net::NetConfig,
    /// Host ports held for running containers' `-p`.
    pub held_ports: Mutex<HashMap<String, Vec<networks::Held>>>,
    pub events: events::Events,
    /// The embedded DNS server of each running container on a
    /// user-defined network.
    pub dns: Mutex<HashMap<String, tokio::task::AbortHandle>>,
    _lock: std::fs::File,
}

/// The monitor and the exec helper are this very binary. `/proc/self/exe`
/// still works after the file was replaced (a rebuild, an upgrade) while
/// the daemon runs; its path would name a deleted file.
pub fn self_exe() -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new("/proc/self/exe");
    cmd.arg0("mini-dockerd");
    cmd
}

impl Daemon {
    /// Takes the root (refusing a second daemon on it) and reads back every
    /// container.
    pub fn open(root: &Path, options: Options) -> Result<Arc<Daemon>> {
        options.validate()?;
        let paths = Paths::new(root);
        for dir in [
            paths.root.clone(),
            paths.containers(),
            paths.root.join("sock"),
        ] {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let lock = take_lock(&paths.lock())?;
        let remap = match &options.userns_remap {
            Some(value) => {
                let remap = crate::userns::resolve(value)?;
                crate::userns::open_paths(&paths.root)?;
                Some(remap)
            }
            None => None,
        };
        let store = chapter_04::Store::open(paths.images())?;
        let net = crate::net::NetConfig::from_env().map_err(|e| anyhow!(e))?;
        let daemon = Arc::new(Daemon {
            paths,
            options,
            remap,
            store,
            containers: Mutex::new(BTreeMap::new()),
            execs: Mutex::new(HashMap::new()),
            images_lock: tokio::sync::Mutex::new(()),
            net_lock: tokio::sync::Mutex::new(()),
            net,
            held_ports: Mutex::new(HashMap::new()),
            events: events::Events::default(),
            dns: Mutex::new(HashMap::new()),
            _lock: lock,
        });
        daemon
            .ensure_default_network()
            .map_err(|e| anyhow!(e.message))?;
        daemon.recover()?;
        Ok(daemon)
    }

    fn recover(self: &Arc<Self>) -> Result<()> {
        for dirent in std::fs::read_dir(self.paths.containers())? {
            let id = dirent?.file_name().to_string_lossy().into_owned();
            let c: Container = match read_json(&self.paths.config(&id)) {
                Ok(c) => c,
                Err(e) => {
                    // A create that crashed before its config was written.
                    eprintln!("recovery: {id}: {e}: removing the incomplete container");
                    cleanup_leftovers(&self.paths, &id, &[]);
                    let _ = std::fs::remove_dir_all(self.paths.container(&id));
                    continue;
                }
            };
            let state: State = read_json(&self.paths.state(&id)).unwrap_or_default();
            self.containers
                .lock()
                .unwrap()
                .insert(id.clone(), Entry::new(c, state));
        }
        Ok(())
    }

    /// Reconnects to the monitors of running containers (needs the runtime).
    pub async fn reconnect(self: &Arc<Self>) {
        let running = self.running_ids();
        for id in running {
            match self.connect_monitor(&id, &Hello::Wait).await {
                Ok(conn) => {
                    eprintln!(
                        "recovery: {}: monitor alive, reconnected",
                        crate::ids::short(&id)
                    );
                    self.hold_again(&id);
                    let pid = self.entry(&id, |e| e.state.pid).unwrap_or(0);
                    if pid > 0 {
                        self.start_dns(&id, pid).await;
                    }
                    tokio::spawn(self.clone().watch_exit(id, conn));
                }
                Err(_) => {
                    eprintln!(
                        "recovery: {}: monitor gone, marking exited",
                        crate::ids::short(&id)
                    );
                    self.network_detach(&id).await;
                    self.monitor_lost(&id);
                }
            }
        }
        // Containers that exited while no daemon ran still hold their
        // address and NAT rules.
        let exited: Vec<String> = self
            .containers
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, e)| e.state.status != Status::Running)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &exited {
            if self.paths.endpoint(id).exists() {
                self.network_detach(id).await;
            }
        }
        self.sweep_orphaned_cgroups();
        // Docker starts `always` and `unless-stopped` containers with the
        // daemon (not one stopped by hand before, for unless-stopped).
        for id in exited {
            let manual = self.paths.container(&id).join("stopped-by-hand").exists();
            let policy = self
                .entry(&id, |e| e.c.host_config.restart_policy.name.clone())
                .unwrap_or_default();
            if policy == "always" || (policy == "unless-stopped" && !manual) {
                eprintln!(
                    "recovery: {}: restart policy {policy}: starting",
                    crate::ids::short(&id)
                );
                let _ = self.clone().start(&id).await;
            }
        }
    }

    /// Connects to a container's monitor and says hello.
    pub async fn connect_monitor(
        &self,
        id: &str,
        hello: &Hello,
    ) -> std::io::Result<tokio::net::UnixStream> {
        let mut conn = tokio::net::UnixStream::connect(self.paths.socket(id)).await?;
        let mut line = serde_json::to_vec(hello).map_err(std::io::Error::other)?;
        line.push(b'\n');
        conn.write_all(&line).await?;
        // The monitor acknowledges once the connection is registered (and,
        // for a resize, done); exactly these bytes, so that what follows
        // on an attach stays the container's output.
        let mut ok = [0u8; 3];
        tokio::io::AsyncReadExt::read_exact(&mut conn, &mut ok).await?;
        if &ok != b"ok\n" {
            return Err(std::io::Error::other(format!(
                "the monitor of {id} answered {:?} instead of ok",
                String::from_utf8_lossy(&ok)
            )));
        }
        Ok(conn)
    }

    /// The monitor died without recording an exit: record one, clean up.
    fn monitor_lost(&self, id: &str) {
        let mut map = self.containers.lock().unwrap();
        let Some(e) = map.get_mut(id) else { return };
        let disk: State = read_json(&self.paths.state(id)).unwrap_or_default();
        if disk.status == Status::Running {
            let state = State {
                status: Status::Exited,
                exit_code: 255,
                error: "the container's monitor died; the container was killed with it".into(),
                started_at: disk.started_at.clone(),
                finished_at: crate::jsonlog::now(),
                ..State::default()
            };
            cleanup_leftovers(&self.paths, id, &disk.cgroup_dirs);
            let _ = write_json(&self.paths.state(id), &state);
            e.state = state;
        } else {
            e.state = disk;
        }
        let code = e.state.exit_code;
        e.life.send_modify(|l| {
            l.exits += 1;
            l.exit_code = code;
        });
    }

    /// Finds a container by ID, name or ID prefix.
    pub fn find(&self, query: &str) -> Result<String, http::ApiError> {
        let map = self.containers.lock().unwrap();
        let pairs: Vec<(String, String)> = map
            .iter()
            .map(|(id, e)| (id.clone(), e.c.name.clone()))
            .collect();
        crate::ids::find(&pairs, query).map_err(|e| match e {
            crate::ids::Lookup::NotFound => {
                http::ApiError::not_found(format!("No such container: {query}"))
            }
            crate::ids::Lookup::Ambiguous(n) => http::ApiError::bad_request(format!(
                "{n} containers have IDs starting with {query:?}: give more of the ID"
            )),
        })
    }

    pub fn version(&self) -> Value {
        let kernel = nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default();
        let arch = chapter_04::unpack::host_platform().architecture;
        let version = env!("CARGO_PKG_VERSION");
        json!({
            "Platform": {"Name": "mini-docker"},
            "Components": [{
                "Name": "Engine",
                "Version": version,
                "Details": {
                    "ApiVersion": crate::api::API_VERSION,
                    "MinAPIVersion": crate::api::MIN_API_VERSION,
                    "Os": "linux", "Arch": arch, "KernelVersion": kernel,
                }
            }],
            "Version": version,
            "ApiVersion": crate::api::API_VERSION,
            "MinAPIVersion": crate::api::MIN_API_VERSION,
            "GitCommit": "",
            "GoVersion": "rust",
            "Os": "linux",
            "Arch": arch,
            "KernelVersion": kernel,
            "BuildTime": "",
        })
    }

    pub fn info(&self) -> Result<Value, http::ApiError> {
        let map = self.containers.lock().unwrap();
        let count = |s: Status| map.values().filter(|e| e.state.status == s).count();
        let layout = chapter_02::Layout::detect().ok();
        let cgroup_version = match layout.as_ref().map(|l| l.mode) {
            Some(chapter_02::Mode::V2) => "2",
            _ => "1",
        };
        let images = self.store.tags()?.len();
        let uname = nix::sys::utsname::uname().ok();
        let field = |f: fn(&nix::sys::utsname::UtsName) -> &std::ffi::OsStr| {
            uname
                .as_ref()
                .map(|u| f(u).to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        Ok(json!({
            "ID": "mini-docker",
            "Containers": map.len(),
            "ContainersRunning": count(Status::Running),
            "ContainersPaused": 0,
            "ContainersStopped": map.len() - count(Status::Running),
            "Images": images,
            "Driver": "overlay2",
            "DockerRootDir": self.paths.root,
            "LoggingDriver": "json-file",
            // Rootless without a delegated cgroup: none, as Docker says.
            "CgroupDriver": self.options.cgroups.driver(),
            "CgroupVersion": cgroup_version,
            "KernelVersion": field(|u| u.release()),
            "OperatingSystem": "mini-docker (chapter 06)",
            "OSType": "linux",
            "Architecture": field(|u| u.machine()),
            "NCPU": chapter_02::limits::host_cpus(),
            "MemTotal": mem_total(),
            "Name": field(|u| u.nodename()),
            "ServerVersion": env!("CARGO_PKG_VERSION"),
            "SecurityOptions": self.security_options(),
            "Warnings": [],
        }))
    }
}

impl Daemon {
    /// `docker info`'s SecurityOptions: what every container gets.
    fn security_options(&self) -> Vec<String> {
        let mut options = vec![match &self.options.security.seccomp {
            crate::seccomp::Seccomp::Builtin => "name=seccomp,profile=builtin".to_string(),
            crate::seccomp::Seccomp::Unconfined => "name=seccomp,profile=unconfined".into(),
            crate::seccomp::Seccomp::Custom(_) => "name=seccomp,profile=custom".into(),
        }];
        if self.options.security.no_new_privileges {
            options.push("name=no-new-privileges".into());
        }
        if self.remap.is_some() {
            options.push("name=userns".into());
        }
        if self.options.rootless {
            options.push("name=rootless".into());
        }
        if self.options.cgroupns_default() == "private" {
            options.push("name=cgroupns".to_string());
        }
        options
    }
}

fn mem_total() -> u64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    meminfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("MemTotal:")?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .map_or(0, |kib: u64| kib * 1024)
}

/// `flock` on the root's lock file: one daemon per root.
fn take_lock(path: &Path) -> Result<std::fs::File> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } < 0 {
        let holder = std::fs::read_to_string(path).unwrap_or_default();
        return Err(anyhow!(
            "another mini-dockerd (pid {}) already owns {}: stop it, or give this one its own --root",
            holder.trim(),
            path.parent().unwrap_or(path).display()
        ));
    }
    file.set_len(0)?;
    std::fs::write(path, std::process::id().to_string())?;
    Ok(file)
}

/// Unmounts and removes what a dead monitor left behind.
impl Daemon {
    /// The IDs of the running containers.
    pub fn running_ids(&self) -> Vec<String> {
        self.containers
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, e)| e.state.status == Status::Running)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Cgroups named for a container (`cgroup_name`) that no running
    /// container of ours owns: what a daemon killed at the wrong moment
    /// (between a monitor making its cgroup and the container's record)
    /// leaves. Whatever is inside is killed, the directories removed.
    fn sweep_orphaned_cgroups(&self) {
        let running = self.running_ids();
        for (id, dir) in container_cgroups() {
            if running.contains(&id) {
                continue;
            }
            eprintln!(
                "recovery: {}: orphaned cgroup {}: removing it",
                crate::ids::short(&id),
                dir.display()
            );
            let _ = chapter_02::cgroup::kill_listed(std::slice::from_ref(&dir));
            let _ = chapter_02::cgroup::remove_dir(&dir);
        }
    }
}

/// Every cgroup directory, in every hierarchy, that a container's monitor
/// (a child of this daemon, so in its cgroups) would make: named
/// `cgroup_name(ID)` for a 64-hex-digit ID, beside each other under the
/// daemon's own cgroup.
fn container_cgroups() -> Vec<(String, PathBuf)> {
    let prefix = crate::monitor::cgroup_name("");
    let Ok(layout) = chapter_02::layout::Layout::detect() else {
        return Vec::new();
    };
    let own = chapter_02::layout::parse_own_cgroups(
        &std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default(),
    );
    let mut parents: Vec<PathBuf> = layout
        .v1_mounts
        .iter()
        .map(|(controller, mount)| {
            chapter_02::layout::under(mount, own.v1.get(controller).map_or("/", String::as_str))
        })
        .collect();
    if let Some(mount) = &layout.v2_mount {
        parents.push(chapter_02::layout::under(
            mount,
            own.v2.as_deref().unwrap_or("/"),
        ));
    }
    // On v2, where the daemon put them (crate::cgroups).
    if let Some(parent) = crate::cgroups::inherited().v2_parent() {
        parents.push(parent.to_path_buf());
    }
    parents.sort();
    parents.dedup();
    let mut found = Vec::new();
    for parent in parents {
        let Ok(entries) = std::fs::read_dir(&parent) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(id) = name.strip_prefix(&prefix) else {
                continue;
            };
            if id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()) && e.path().is_dir() {
                found.push((id.to_string(), e.path()));
            }
        }
    }
    found
}

pub fn cleanup_leftovers(paths: &Paths, id: &str, cgroup_dirs: &[PathBuf]) {
    let merged = paths.container(id).join("merged");
    if is_mount_point(&merged) {
        let _ = nix::mount::umount2(&merged, nix::mount::MntFlags::MNT_DETACH);
    }
    for dir in cgroup_dirs {
        if dir.exists() {
            let _ = chapter_02::cgroup::kill_listed(std::slice::from_ref(dir));
            let _ = chapter_02::cgroup::remove_dir(dir);
        }
    }
    let _ = std::fs::remove_file(paths.socket(id));
}

pub fn is_mount_point(path: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = path.to_string_lossy();
    text.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|mp| mp == want)
}

/// Accepts connections on `listener` until the process ends.
pub async fn serve(daemon: Arc<Daemon>, listener: tokio::net::UnixListener) {
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                eprintln!("accept: {e}");
                continue;
            }
        };
        let d = daemon.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let d = d.clone();
                async move { Ok::<_, std::convert::Infallible>(http::route(d, req).await) }
            });
            if let Err(e) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await
            {
                if !e.is_incomplete_message() {
                    eprintln!("connection: {e}");
                }
            }
        });
    }
}
