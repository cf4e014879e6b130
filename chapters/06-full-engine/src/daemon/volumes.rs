//! Volumes: directories the daemon keeps under `<root>/volumes/NAME/_data`
//! that outlive containers. A named volume is created on first use (or by
//! `volume create`); an anonymous one for each `VOLUME` of the image (and
//! each `-v /path`) that nothing else covers, removed with its container by
//! `rm -v` and `--rm`. Mounting is the monitor's work; this is bookkeeping.

use super::http::{self, flag, json, ApiError, ApiResult};
use super::Daemon;
use crate::state::{read_json, write_json, MountKind, MountPoint};
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{json as j, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct VolumeRecord {
    pub name: String,
    pub created_at: String,
    pub anonymous: bool,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct CreateVolume {
    name: String,
    labels: BTreeMap<String, String>,
}

impl Daemon {
    /// The volume `name`, created if it does not exist; returns its data
    /// directory.
    pub fn ensure_volume(&self, name: &str, anonymous: bool) -> Result<PathBuf, ApiError> {
        crate::ids::validate_name(name)
            .map_err(|_| ApiError::bad_request(format!("invalid volume name {name:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed, at least 2 characters")))?;
        let dir = self.paths.volume(name);
        let data = dir.join("_data");
        if !dir.join("volume.json").exists() {
            std::fs::create_dir_all(&data)?;
            write_json(
                &dir.join("volume.json"),
                &VolumeRecord {
                    name: name.to_string(),
                    created_at: crate::jsonlog::now(),
                    anonymous,
                    labels: BTreeMap::new(),
                },
            )?;
        }
        Ok(data)
    }

    /// The containers that mount volume `name`.
    pub(crate) fn volume_users(&self, name: &str) -> Vec<String> {
        self.containers
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, e)| {
                e.c.mounts
                    .iter()
                    .any(|m| m.kind == MountKind::Volume && m.name.as_deref() == Some(name))
            })
            .map(|(id, _)| id.clone())
            .collect()
    }

    fn volume_json(&self, name: &str) -> Result<Value, ApiError> {
        let dir = self.paths.volume(name);
        let record: VolumeRecord = read_json(&dir.join("volume.json"))
            .map_err(|_| ApiError::not_found(format!("get {name}: no such volume")))?;
        Ok(j!({
            "Name": record.name,
            "Driver": "local",
            "Mountpoint": dir.join("_data"),
            "CreatedAt": record.created_at,
            "Labels": record.labels,
            "Scope": "local",
            "Options": {},
        }))
    }

    fn volume_names(&self) -> Result<Vec<String>, ApiError> {
        let mut names = Vec::new();
        if let Ok(entries) = std::fs::read_dir(self.paths.volumes()) {
            for e in entries.flatten() {
                if e.path().join("volume.json").exists() {
                    names.push(e.file_name().to_string_lossy().into_owned());
                }
            }
        }
        names.sort();
        Ok(names)
    }

    /// `POST /volumes/create`
    pub async fn volume_create(&self, req: Request<Incoming>) -> ApiResult {
        let body: CreateVolume = http::body_json(req).await?;
        let name = if body.name.is_empty() {
            crate::ids::new_id()
        } else {
            body.name
        };
        self.ensure_volume(&name, false)?;
        if !body.labels.is_empty() {
            let path = self.paths.volume(&name).join("volume.json");
            let mut record: VolumeRecord = read_json(&path)?;
            record.labels = body.labels;
            write_json(&path, &record)?;
        }
        let mut attributes = serde_json::Map::new();
        attributes.insert("driver".into(), j!("local"));
        self.event("volume", "create", &name, attributes);
        Ok(json(StatusCode::CREATED, &self.volume_json(&name)?))
    }

    /// Every volume as inspect shows it.
    pub(crate) fn volume_rows(&self) -> Result<Vec<Value>, ApiError> {
        Ok(self
            .volume_names()?
            .iter()
            .filter_map(|n| self.volume_json(n).ok())
            .collect())
    }

    /// `GET /volumes?filters=…`: name (a part of it), label, dangling (no
    /// container uses it), driver.
    pub fn volume_list(&self, q: &HashMap<String, String>) -> ApiResult {
        let f = super::filters::Filters::from_query(q, &["name", "label", "dangling", "driver"])?;
        let dangling = f.boolean("dangling")?;
        let volumes: Vec<Value> = self
            .volume_names()?
            .iter()
            .filter(|n| {
                f.any("name", |w| super::filters::name_matches(n, w))
                    && f.any("driver", |w| w == "local")
                    && dangling.is_none_or(|d| d == self.volume_users(n).is_empty())
            })
            .filter_map(|n| self.volume_json(n).ok())
            .filter(|v| {
                let labels: std::collections::BTreeMap<String, String> =
                    serde_json::from_value(v["Labels"].clone()).unwrap_or_default();
                f.labels(Some(&labels))
            })
            .collect();
        Ok(json(
            StatusCode::OK,
            &j!({"Volumes": volumes, "Warnings": []}),
        ))
    }

    /// `GET /volumes/{name}`
    pub fn volume_inspect(&self, name: &str) -> ApiResult {
        Ok(json(StatusCode::OK, &self.volume_json(name)?))
    }

    /// `DELETE /volumes/{name}`: refused while a container uses it.
    pub fn volume_remove(&self, name: &str, q: &HashMap<String, String>) -> ApiResult {
        self.volume_json(name)?;
        let users = self.volume_users(name);
        if !users.is_empty() {
            return Err(ApiError::conflict(format!(
                "remove {name}: volume is in use - [{}]",
                users.join(", ")
            )));
        }
        let _ = flag(q, "force");
        std::fs::remove_dir_all(self.paths.volume(name))?;
        let mut attributes = serde_json::Map::new();
        attributes.insert("driver".into(), j!("local"));
        self.event("volume", "destroy", name, attributes);
        Ok(http::empty(StatusCode::NO_CONTENT))
    }

    /// `POST /volumes/prune`: anonymous volumes no container uses (Docker's
    /// default since API 1.42; named ones stay).
    pub fn volume_prune(&self) -> ApiResult {
        let mut deleted = Vec::new();
        for name in self.volume_names()? {
            let record: Option<VolumeRecord> =
                read_json(&self.paths.volume(&name).join("volume.json")).ok();
            if record.is_some_and(|r| r.anonymous) && self.volume_users(&name).is_empty() {
                std::fs::remove_dir_all(self.paths.volume(&name))?;
                deleted.push(name);
            }
        }
        Ok(json(
            StatusCode::OK,
            &j!({"VolumesDeleted": deleted, "SpaceReclaimed": 0}),
        ))
    }

    /// The mounts a create asks for: `Binds` (`/host:/ctr[:ro]`,
    /// `name:/ctr`, `/ctr`), `Mounts` (the long form), `Tmpfs`, and an anonymous volume for each of
    /// the image's `Volumes` not covered by those.
    pub fn plan_mounts(
        &self,
        binds: &[String],
        long_form: &[crate::api::Mount],
        tmpfs: &BTreeMap<String, String>,
        image_volumes: &[String],
    ) -> Result<Vec<MountPoint>, ApiError> {
        let mut mounts: Vec<MountPoint> = Vec::new();
        let check_destination = |dest: &str| -> Result<String, ApiError> {
            if !dest.starts_with('/') {
                return Err(ApiError::bad_request(format!(
                    "invalid mount destination {dest:?}: it must be an absolute path inside the container"
                )));
            }
            let clean = dest.trim_end_matches('/');
            if clean.is_empty() {
                return Err(ApiError::bad_request(
                    "invalid mount destination \"/\": a volume cannot replace the container's root",
                ));
            }
            Ok(clean.to_string())
        };
        for bind in binds {
            let parts: Vec<&str> = bind.split(':').collect();
            let (source, dest, mode) = match parts.as_slice() {
                [dest] => ("", *dest, ""),
                [source, dest] => (*source, *dest, ""),
                [source, dest, mode] => (*source, *dest, *mode),
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "invalid volume specification {bind:?}: use /host/path:/container/path[:ro], name:/container/path or /container/path"
                    )))
                }
            };
            let destination = check_destination(dest)?;
            let mut readonly = false;
            for opt in mode.split(',').filter(|o| !o.is_empty()) {
                match opt {
                    "ro" => readonly = true,
                    "rw" | "z" | "Z" | "rprivate" | "private" => {}
                    other => {
                        return Err(ApiError::bad_request(format!(
                            "invalid mode {other:?} in volume {bind:?}: use ro or rw"
                        )))
                    }
                }
            }
            let mount = if source.is_empty() {
                let name = crate::ids::new_id();
                MountPoint {
                    kind: MountKind::Volume,
                    source: self.ensure_volume(&name, true)?,
                    name: Some(name),
                    destination,
                    readonly,
                    anonymous: true,
                    options: String::new(),
                }
            } else if source.starts_with('/') {
                // Docker's -v creates a missing host directory.
                std::fs::create_dir_all(source)
                    .or_else(|e| {
                        if std::path::Path::new(source).exists() {
                            Ok(())
                        } else {
                            Err(e)
                        }
                    })
                    .map_err(|e| ApiError::bad_request(format!("bind source {source}: {e}")))?;
                MountPoint {
                    kind: MountKind::Bind,
                    name: None,
                    source: PathBuf::from(source),
                    destination,
                    readonly,
                    anonymous: false,
                    options: String::new(),
                }
            } else {
                MountPoint {
                    kind: MountKind::Volume,
                    source: self.ensure_volume(source, false)?,
                    name: Some(source.to_string()),
                    destination,
                    readonly,
                    anonymous: false,
                    options: String::new(),
                }
            };
            if mounts.iter().any(|m| m.destination == mount.destination) {
                return Err(ApiError::bad_request(format!(
                    "duplicate mount point: {}",
                    mount.destination
                )));
            }
            mounts.push(mount);
        }
        for m in long_form {
            let destination = check_destination(&m.target)?;
            let mount = match m.kind.as_str() {
                "bind" => {
                    // The long form does not create a missing source (Docker's rule).
                    let source = PathBuf::from(&m.source);
                    if !source.is_absolute() || !source.exists() {
                        return Err(ApiError::bad_request(format!(
                            "invalid mount config for type \"bind\": bind source path does not exist: {}",
                            m.source
                        )));
                    }
                    MountPoint {
                        kind: MountKind::Bind,
                        name: None,
                        source,
                        destination,
                        readonly: m.read_only,
                        anonymous: false,
                        options: String::new(),
                    }
                }
                "volume" => {
                    let anonymous = m.source.is_empty();
                    let name = if anonymous {
                        crate::ids::new_id()
                    } else {
                        m.source.clone()
                    };
                    let data = self.ensure_volume(&name, anonymous)?;
                    let subpath = m
                        .volume_options
                        .as_ref()
                        .map(|o| o.subpath.as_str())
                        .unwrap_or("");
                    let source = if subpath.is_empty() {
                        data
                    } else {
                        volume_subpath(&data, subpath)?
                    };
                    MountPoint {
                        kind: MountKind::Volume,
                        name: Some(name),
                        source,
                        destination,
                        readonly: m.read_only,
                        anonymous,
                        options: String::new(),
                    }
                }
                "tmpfs" => {
                    let mut options = Vec::new();
                    if let Some(t) = &m.tmpfs_options {
                        if t.size_bytes > 0 {
                            options.push(format!("size={}", t.size_bytes));
                        }
                        if t.mode != 0 {
                            options.push(format!("mode={:o}", t.mode));
                        }
                    }
                    MountPoint {
                        kind: MountKind::Tmpfs,
                        name: None,
                        source: PathBuf::new(),
                        destination,
                        readonly: m.read_only,
                        anonymous: false,
                        options: options.join(","),
                    }
                }
                other => {
                    return Err(ApiError::bad_request(format!(
                        "invalid mount type {other:?}: use bind, volume or tmpfs"
                    )))
                }
            };
            if mounts.iter().any(|x| x.destination == mount.destination) {
                return Err(ApiError::bad_request(format!(
                    "duplicate mount point: {}",
                    mount.destination
                )));
            }
            mounts.push(mount);
        }
        for (dest, options) in tmpfs {
            let destination = check_destination(dest)?;
            if mounts.iter().any(|m| m.destination == destination) {
                return Err(ApiError::bad_request(format!(
                    "duplicate mount point: {destination}"
                )));
            }
            mounts.push(MountPoint {
                kind: MountKind::Tmpfs,
                name: None,
                source: PathBuf::new(),
                destination,
                readonly: false,
                anonymous: false,
                options: options.clone(),
            });
        }
        for dest in image_volumes {
            let destination = check_destination(dest)?;
            if mounts.iter().any(|m| m.destination == destination) {
                continue;
            }
            let name = crate::ids::new_id();
            mounts.push(MountPoint {
                kind: MountKind::Volume,
                source: self.ensure_volume(&name, true)?,
                name: Some(name),
                destination,
                readonly: false,
                anonymous: true,
                options: String::new(),
            });
        }
        Ok(mounts)
    }

    /// Removes a removed container's anonymous volumes.
    pub fn remove_anonymous_volumes(&self, mounts: &[MountPoint]) {
        for m in mounts.iter().filter(|m| m.anonymous) {
            if let Some(name) = &m.name {
                if self.volume_users(name).is_empty() {
                    let _ = std::fs::remove_dir_all(self.paths.volume(name));
                }
            }
        }
    }
}

/// `VolumeOptions.Subpath`: a directory inside the volume's data, which
/// must exist and stay inside it (no `..`, no symlink leading out).
fn volume_subpath(data: &Path, subpath: &str) -> Result<PathBuf, ApiError> {
    let bad =
        |why: &str| ApiError::bad_request(format!("invalid volume subpath {subpath:?}: {why}"));
    let rel = Path::new(subpath);
    if rel.is_absolute()
        || rel
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        return Err(bad("a relative path inside the volume, without .."));
    }
    let real = data
        .join(rel)
        .canonicalize()
        .map_err(|_| bad("it does not exist in the volume"))?;
    let root = data.canonicalize()?;
    if !real.starts_with(&root) || !real.is_dir() {
        return Err(bad("not a directory inside the volume"));
    }
    Ok(real)
}
