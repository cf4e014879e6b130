//! Images: the daemon's store is chapter 04's OCI layout under
//! `<root>/images`; pulls are chapter 05's. Names are kept as chapter 05
//! normalises them (`docker.io/library/busybox:latest`) and shown as
//! Docker shows them (`busybox:latest`).

use super::http::{self, flag, json, ApiError, ApiResult};
use super::Daemon;
use crate::api::{ErrorDetail, Message};
use bytes::Bytes;
use chapter_04::manifest::Descriptor;
use chapter_04::unpack::Image;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::{json as j, Value};
use std::collections::{BTreeMap, HashMap};

/// How Docker shows a stored name: without `docker.io/` and `library/`.
pub fn familiar(name: &str) -> String {
    let name = name.strip_prefix("docker.io/").unwrap_or(name);
    name.strip_prefix("library/").unwrap_or(name).to_string()
}

/// `busybox` → `docker.io/library/busybox:latest`; names that do not parse
/// as references are kept as they are.
pub fn normalise(name: &str) -> String {
    chapter_05::Reference::parse(name)
        .map(|r| r.local_name())
        .unwrap_or_else(|_| name.to_string())
}

fn split_repo_tag(name: &str) -> (&str, &str) {
    match name.rfind(':') {
        Some(i) if !name[i..].contains('/') => (&name[..i], &name[i + 1..]),
        _ => (name, "latest"),
    }
}

/// An image found by name or ID.
pub struct Found {
    /// The stored tag it was found by; `None`: found by ID, untagged.
    pub name: Option<String>,
    pub manifest: Descriptor,
    pub image: Image,
}

impl Found {
    /// Docker's image ID: the config's digest.
    pub fn id(&self) -> String {
        self.image.manifest.config.digest.to_string()
    }
}

impl Daemon {
    /// Finds an image by name (as typed or normalised) or by ID (prefix of
    /// the config digest, with or without `sha256:`), tagged or not (a
    /// commit without a name, a build's intermediate image).
    pub fn resolve_image(&self, name: &str) -> Result<Found, ApiError> {
        let platform = chapter_04::unpack::host_platform();
        let load = |d: &Descriptor| {
            chapter_04::unpack::load_image(&self.store, d, &platform)
                .map_err(|e| ApiError::internal(format!("reading image {name}: {e}")))
        };
        let tags = self.store.tags()?;
        for candidate in [name.to_string(), normalise(name)] {
            if let Some((n, d)) = tags.iter().find(|(n, _)| *n == candidate) {
                return Ok(Found {
                    name: Some(n.clone()),
                    manifest: d.clone(),
                    image: load(d)?,
                });
            }
        }
        let hex = name.strip_prefix("sha256:").unwrap_or(name);
        if hex.len() >= 4 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
            // Untagged entries say their ID: only a match is read.
            let untagged = self.store.untagged()?.into_iter().filter(|d| {
                chapter_04::store::image_id(d)
                    .is_none_or(|id| id.trim_start_matches("sha256:").starts_with(hex))
            });
            let tagged = tags.into_iter().map(|(n, d)| (Some(n), d));
            for (n, d) in tagged.chain(untagged.map(|d| (None, d))) {
                let image = load(&d)?;
                if image.manifest.config.digest.hex().starts_with(hex) {
                    return Ok(Found {
                        name: n,
                        manifest: d,
                        image,
                    });
                }
            }
        }
        Err(
            ApiError::not_found(format!("No such image: {}", familiar(&normalise(name))))
                .with_kind(crate::api::ErrorKind::NoSuchImage),
        )
    }

    /// `POST /images/create?fromImage=…&tag=…`: a pull, reported as
    /// Docker's JSON message stream.
    pub async fn pull(self: &std::sync::Arc<Self>, req: Request<Incoming>) -> ApiResult {
        let q = http::query(&req);
        let from = q.get("fromImage").cloned().unwrap_or_default();
        if from.is_empty() {
            return Err(ApiError::bad_request(
                "fromImage is missing: say which image to pull",
            ));
        }
        let tag = q.get("tag").cloned().unwrap_or_default();
        let text = match tag.as_str() {
            "" => from.clone(),
            t if t.starts_with("sha256:") => format!("{from}@{t}"),
            t => format!("{from}:{t}"),
        };
        let reference = chapter_05::Reference::parse(&text)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let mut options = chapter_05::pull::Options::default();
        if let Some(p) = q.get("platform").filter(|p| !p.is_empty()) {
            options.platform =
                chapter_05::pull::parse_platform(p).map_err(ApiError::bad_request)?;
        }
        let (mut tx, response) = http::streaming(StatusCode::OK, "application/json");
        let d = self.clone();
        tokio::spawn(async move {
            let _guard = d.images_lock.lock().await;
            let line = |m: Message| Bytes::from(serde_json::to_string(&m).unwrap() + "\r\n");
            let shown = reference.tag.clone().unwrap_or_else(|| "latest".into());
            let repo = familiar(&format!("{}/{}", reference.registry, reference.repository));
            let _ = tx
                .send_data(line(Message {
                    status: format!("Pulling from {repo}"),
                    id: shown,
                    ..Message::default()
                }))
                .await;
            // Chapter 05's progress events, as Docker's messages, live.
            let (events, mut received) = tokio::sync::mpsc::unbounded_channel::<Message>();
            let sink: chapter_05::progress::Sink = std::sync::Arc::new(move |id, event| {
                let _ = events.send(progress_message(id, event));
            });
            let d2 = d.clone();
            let r2 = reference.clone();
            let mut pulling = tokio::task::spawn_blocking(move || {
                let client = chapter_05::client::Client::new(&r2, false)?;
                chapter_05::pull::pull(
                    &client,
                    &d2.store,
                    &options,
                    &chapter_05::progress::Progress::to_sink(sink),
                )
            });
            let result = loop {
                tokio::select! {
                    Some(m) = received.recv() => {
                        let _ = tx.send_data(line(m)).await;
                    }
                    done = &mut pulling => {
                        break done.unwrap_or_else(|e| Err(format!("the pull crashed: {e}")));
                    }
                }
            };
            while let Ok(m) = received.try_recv() {
                let _ = tx.send_data(line(m)).await;
            }
            let messages = match result {
                Ok(pulled) => vec![
                    Message {
                        status: format!("Digest: {}", pulled.manifest.digest),
                        ..Message::default()
                    },
                    Message {
                        status: format!(
                            "Status: Downloaded newer image for {}",
                            familiar(&pulled.name)
                        ),
                        ..Message::default()
                    },
                ],
                Err(e) => vec![Message {
                    error: Some(e.clone()),
                    error_detail: Some(ErrorDetail { message: e }),
                    ..Message::default()
                }],
            };
            for m in messages {
                let _ = tx.send_data(line(m)).await;
            }
        });
        Ok(response)
    }

    /// `POST /images/load`: a `docker save` archive in the body.
    pub async fn load(self: &std::sync::Arc<Self>, req: Request<Incoming>) -> ApiResult {
        let _guard = self.images_lock.lock().await;
        let ingest = self.store.root().join("ingest");
        let mut file = tempfile::NamedTempFile::new_in(&ingest)?;
        http::spool(req, &mut file, "archive").await?;
        let d = self.clone();
        let loaded = tokio::task::spawn_blocking(move || {
            let archive = std::fs::File::open(file.path())?;
            chapter_04::archive::load_docker(&d.store, std::io::BufReader::new(archive))
        })
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| ApiError::bad_request(format!("loading the archive: {e}")))?;
        let mut out = String::new();
        for name in loaded {
            out += &serde_json::to_string(
                &j!({"stream": format!("Loaded image: {}\n", familiar(&name))}),
            )
            .unwrap();
            out += "\r\n";
        }
        Ok(http::full(StatusCode::OK, out))
    }

    /// `GET /images/json`: one entry per image ID, with all its tags; an
    /// untagged image (a commit without a name) with none. A build's cache
    /// is not listed.
    pub fn images(&self, q: &HashMap<String, String>) -> Result<Vec<Value>, ApiError> {
        let f = super::filters::Filters::from_query(
            q,
            &["dangling", "label", "reference", "before", "since"],
        )?;
        let dangling = f.boolean("dangling")?;
        let references: Vec<globset::GlobMatcher> = f
            .values("reference")
            .iter()
            .map(|r| {
                let r = if r.contains(':') {
                    r.clone()
                } else {
                    format!("{r}:*")
                };
                crate::build::ignore::glob(&r).map_err(ApiError::bad_request)
            })
            .collect::<Result<_, _>>()?;
        let created_of = |name: &str| {
            self.resolve_image(name)
                .map(|found| created_unix(&found.image))
        };
        let before: Vec<i64> = f
            .values("before")
            .iter()
            .map(|b| created_of(b))
            .collect::<Result<_, _>>()?;
        let since: Vec<i64> = f
            .values("since")
            .iter()
            .map(|s| created_of(s))
            .collect::<Result<_, _>>()?;
        let platform = chapter_04::unpack::host_platform();
        let mut by_id: BTreeMap<String, (Image, Vec<String>, Vec<String>)> = BTreeMap::new();
        for d in self.store.untagged()? {
            if chapter_04::store::kind(&d) != Some(chapter_04::store::DANGLING) {
                continue;
            }
            if let Ok(image) = chapter_04::unpack::load_image(&self.store, &d, &platform) {
                let id = image.manifest.config.digest.to_string();
                by_id.entry(id).or_insert((image, Vec::new(), Vec::new()));
            }
        }
        for (name, d) in self.store.tags()? {
            let Ok(image) = chapter_04::unpack::load_image(&self.store, &d, &platform) else {
                continue;
            };
            let id = image.manifest.config.digest.to_string();
            let (repo, _) = split_repo_tag(&name);
            let digest = format!("{}@{}", familiar(repo), d.digest);
            let entry = by_id
                .entry(id)
                .or_insert_with(|| (image, Vec::new(), Vec::new()));
            entry.1.push(familiar(&name));
            entry.2.push(digest);
        }
        let containers = self.containers.lock().unwrap();
        Ok(by_id
            .into_iter()
            .filter(|(_, (image, tags, _))| {
                let created = created_unix(image);
                dangling.is_none_or(|d| d == tags.is_empty())
                    && f.labels(image.config.config.as_ref().and_then(|c| c.labels.as_ref()))
                    && (references.is_empty() || tags.iter().any(|t| references.iter().any(|r| r.is_match(t))))
                    && before.iter().all(|b| created < *b)
                    && since.iter().all(|s| created > *s)
            })
            .map(|(id, (image, tags, digests))| {
                let size: u64 = image.manifest.layers.iter().map(|l| l.size).sum();
                let used = containers.values().filter(|e| e.c.image_id == id).count();
                j!({
                    "Id": id,
                    "ParentId": "",
                    "RepoTags": tags,
                    "RepoDigests": digests,
                    "Created": created_unix(&image),
                    "Size": size,
                    "VirtualSize": size,
                    "SharedSize": -1,
                    "Labels": image.config.config.as_ref().and_then(|c| c.labels.clone()).unwrap_or_default(),
                    "Containers": used,
                })
            })
            .collect())
    }

    pub fn image_inspect(&self, name: &str) -> ApiResult {
        let found = self.resolve_image(name)?;
        let image = found.image;
        let cfg = image.config.config.clone().unwrap_or_default();
        let size: u64 = image.manifest.layers.iter().map(|l| l.size).sum();
        let id = image.manifest.config.digest.to_string();
        let tags = self.tags_of(&id)?;
        let comment = image
            .config
            .history
            .last()
            .and_then(|h| h.get("comment"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        Ok(json(
            StatusCode::OK,
            &j!({
                "Id": id,
                "RepoTags": tags,
                "Comment": comment,
                "RepoDigests": [],
                "Created": image.config.created.clone().unwrap_or_else(|| crate::jsonlog::ZERO_TIME.into()),
                "Size": size,
                "Os": image.config.os,
                "Architecture": image.config.architecture,
                "Config": {
                    "User": cfg.user.unwrap_or_default(),
                    "Env": cfg.env,
                    "Cmd": cfg.cmd,
                    "Entrypoint": cfg.entrypoint,
                    "WorkingDir": cfg.working_dir.unwrap_or_default(),
                    "ExposedPorts": cfg.exposed_ports,
                    "Volumes": cfg.volumes,
                    "StopSignal": cfg.stop_signal,
                    "Labels": cfg.labels,
                    "Healthcheck": cfg.healthcheck,
                    "Shell": cfg.shell,
                    "OnBuild": cfg.on_build,
                },
                "RootFS": {
                    "Type": "layers",
                    "Layers": image.config.rootfs.diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
                },
                "GraphDriver": {"Name": "overlay2", "Data": {}},
            }),
        ))
    }

    /// `POST /images/{name}/tag?repo=…&tag=…`
    pub fn tag(&self, name: &str, q: &HashMap<String, String>) -> ApiResult {
        let found = self.resolve_image(name)?;
        let repo = q.get("repo").cloned().unwrap_or_default();
        if repo.is_empty() {
            return Err(ApiError::bad_request(
                "repo is missing: say what to call the image",
            ));
        }
        let tag = q
            .get("tag")
            .filter(|t| !t.is_empty())
            .cloned()
            .unwrap_or("latest".into());
        let new = normalise(&format!("{repo}:{tag}"));
        chapter_04::store::validate_tag(&new).map_err(ApiError::bad_request)?;
        let mut descriptor = found.manifest;
        descriptor.annotations = None;
        self.store.tag(&new, &descriptor)?;
        // A dangling image that gets a name is no longer dangling.
        let digest = descriptor.digest.clone();
        self.store.forget(|d| {
            d.digest == digest && chapter_04::store::kind(d) == Some(chapter_04::store::DANGLING)
        })?;
        self.image_event(
            "tag",
            &found.image.manifest.config.digest.to_string(),
            &familiar(&new),
        );
        Ok(http::empty(StatusCode::CREATED))
    }

    /// `DELETE /images/{name}`: untag; when no tag is left, delete (and
    /// collect unreachable blobs and snapshots). An image a container uses
    /// needs `force`, and its layers stay while the container exists.
    pub async fn rmi(&self, name: &str, q: &HashMap<String, String>) -> ApiResult {
        let _guard = self.images_lock.lock().await;
        let found = self.resolve_image(name)?;
        let image = &found.image;
        let id = found.id();
        let user = self
            .containers
            .lock()
            .unwrap()
            .iter()
            .find(|(_, e)| e.c.image_id == id)
            .map(|(cid, _)| cid.clone());
        if let (Some(cid), false) = (&user, flag(q, "force")) {
            return Err(ApiError::conflict(format!(
                "conflict: unable to remove repository reference \"{name}\" (must force) - container {} is using its referenced image {}",
                crate::ids::short(cid),
                &image.manifest.config.digest.hex()[..12]
            )));
        }
        let mut out = Vec::new();
        match &found.name {
            Some(stored) => {
                self.store.untag(stored)?;
                out.push(j!({"Untagged": familiar(stored)}));
                self.image_event("untag", &id, &familiar(stored));
            }
            None => {
                let platform = chapter_04::unpack::host_platform();
                self.store.forget(|d| {
                    chapter_04::unpack::load_image(&self.store, d, &platform)
                        .is_ok_and(|i| i.manifest.config.digest.to_string() == id)
                })?;
            }
        }
        if self.tags_of(&id)?.is_empty() {
            out.push(j!({"Deleted": id}));
            self.collect_garbage()?;
            self.image_event("delete", &id, name);
        }
        Ok(json(StatusCode::OK, &out))
    }

    fn image_event(&self, action: &str, id: &str, name: &str) {
        let mut attributes = serde_json::Map::new();
        attributes.insert("name".into(), j!(name));
        self.event("image", action, id, attributes);
    }

    /// Every tag of image `id`, as Docker shows names.
    fn tags_of(&self, id: &str) -> Result<Vec<String>, ApiError> {
        Ok(self
            .store
            .tags()?
            .iter()
            .filter(|(_, d)| self.image_id_of(d).as_deref() == Some(id))
            .map(|(n, _)| familiar(n))
            .collect())
    }

    fn image_id_of(&self, d: &Descriptor) -> Option<String> {
        let platform = chapter_04::unpack::host_platform();
        chapter_04::unpack::load_image(&self.store, d, &platform)
            .ok()
            .map(|i| i.manifest.config.digest.to_string())
    }

    /// Chapter 04's GC, but only when every container's image is still
    /// in the index: the GC knows the index, not containers, and would
    /// remove the snapshots of a force-removed image a container still runs on.
    pub fn collect_garbage(&self) -> Result<(), ApiError> {
        let tagged: Vec<String> = self
            .store
            .read_index()?
            .manifests
            .iter()
            .filter_map(|d| self.image_id_of(d))
            .collect();
        let orphaned_user = self
            .containers
            .lock()
            .unwrap()
            .values()
            .any(|e| !tagged.contains(&e.c.image_id));
        if !orphaned_user {
            chapter_04::gc::collect(&self.store)?;
        }
        Ok(())
    }

    /// `POST /images/prune`: untagged images no container uses go (with
    /// `filters={"dangling":["false"]}`, `prune -a`, the build cache too),
    /// then the GC runs.
    pub async fn image_prune(&self, q: &HashMap<String, String>) -> ApiResult {
        let _guard = self.images_lock.lock().await;
        let all = q
            .get("filters")
            .and_then(|f| serde_json::from_str::<Value>(f).ok())
            .and_then(|f| f.get("dangling").cloned())
            .is_some_and(|v| v.to_string().contains("false") || v.to_string().contains("0"));
        let used: Vec<String> = self
            .containers
            .lock()
            .unwrap()
            .values()
            .map(|e| e.c.image_id.clone())
            .collect();
        let platform = chapter_04::unpack::host_platform();
        let mut deleted = Vec::new();
        self.store.forget(|d| {
            let kind = chapter_04::store::kind(d);
            let wanted = kind == Some(chapter_04::store::DANGLING)
                || (all && kind == Some(chapter_04::store::BUILD_CACHE));
            let Ok(image) = chapter_04::unpack::load_image(&self.store, d, &platform) else {
                return wanted;
            };
            let id = image.manifest.config.digest.to_string();
            let go = wanted && !used.contains(&id);
            if go && kind == Some(chapter_04::store::DANGLING) {
                deleted.push(j!({"Deleted": id}));
            }
            go
        })?;
        let before = self.store_bytes();
        self.collect_garbage()?;
        let reclaimed = before.saturating_sub(self.store_bytes());
        Ok(json(
            StatusCode::OK,
            &j!({"ImagesDeleted": deleted, "SpaceReclaimed": reclaimed}),
        ))
    }

    /// The bytes of the store's blobs.
    fn store_bytes(&self) -> u64 {
        std::fs::read_dir(self.store.root().join("blobs/sha256"))
            .map(|dir| {
                dir.filter_map(|e| e.ok()?.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    }
}

/// A chapter 05 progress event as the message `docker pull` shows.
fn progress_message(id: &str, event: chapter_05::progress::Event) -> Message {
    use chapter_05::progress::Event;
    let (status, detail) = match event {
        Event::Started { .. } => ("Pulling fs layer".to_string(), None),
        Event::Advanced { current, total } => (
            "Downloading".to_string(),
            Some(crate::api::ProgressDetail { current, total }),
        ),
        Event::Finished("downloaded") => ("Download complete".to_string(), None),
        Event::Finished(other) | Event::Note(other) => (other.to_string(), None),
    };
    Message {
        status,
        id: id.to_string(),
        progress_detail: detail,
        ..Message::default()
    }
}

fn created_unix(image: &Image) -> i64 {
    image
        .config
        .created
        .as_deref()
        .and_then(crate::jsonlog::parse_time)
        .map_or(0, |t| t.unix_timestamp())
}

/// A push's progress events as the messages `docker push` shows.
fn push_message(id: &str, event: chapter_05::progress::Event, from: &str) -> Message {
    use chapter_05::progress::Event;
    let (status, detail) = match event {
        Event::Started { .. } => ("Preparing".to_string(), None),
        Event::Advanced { current, total } => (
            "Pushing".to_string(),
            Some(crate::api::ProgressDetail { current, total }),
        ),
        Event::Finished("already there") => ("Layer already exists".to_string(), None),
        Event::Finished("mounted") => (format!("Mounted from {from}"), None),
        Event::Finished(_) => ("Pushed".to_string(), None),
        Event::Note(other) => (other.to_string(), None),
    };
    Message {
        status,
        id: id.to_string(),
        progress_detail: detail,
        ..Message::default()
    }
}

/// Credentials from the API's `X-Registry-Auth` header: base64url of
/// `{"username": …, "password": …}` (or an identity token); `None` when
/// absent or empty, and the daemon then reads its own Docker config.
pub fn registry_auth(
    req: &Request<Incoming>,
) -> Result<Option<chapter_05::auth::Credentials>, ApiError> {
    use base64::Engine as _;
    let Some(header) = req.headers().get("X-Registry-Auth") else {
        return Ok(None);
    };
    let text = header.to_str().unwrap_or("").trim();
    if text.is_empty() {
        return Ok(None);
    }
    let engines = [
        base64::engine::general_purpose::URL_SAFE,
        base64::engine::general_purpose::URL_SAFE_NO_PAD,
        base64::engine::general_purpose::STANDARD,
    ];
    let bytes = engines
        .iter()
        .find_map(|e| e.decode(text).ok())
        .ok_or_else(|| ApiError::bad_request("X-Registry-Auth is not base64"))?;
    let v: Value = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("X-Registry-Auth is not JSON: {e}")))?;
    let user = v["username"].as_str().unwrap_or("");
    let secret = v["password"]
        .as_str()
        .filter(|p| !p.is_empty())
        .or_else(|| v["identitytoken"].as_str())
        .unwrap_or("");
    if user.is_empty() && secret.is_empty() {
        return Ok(None);
    }
    Ok(Some(chapter_05::auth::Credentials {
        username: user.to_string(),
        secret: secret.to_string(),
    }))
}

impl Daemon {
    /// `GET /images/{name}/history`: newest first, one entry per history
    /// entry, each non-empty one paired with its layer.
    pub fn history(&self, name: &str) -> ApiResult {
        let found = self.resolve_image(name)?;
        let image = &found.image;
        let mut layers = image.manifest.layers.iter();
        let mut out = Vec::new();
        let history = if image.config.history.is_empty() {
            // An image without history: one line per layer.
            image.manifest.layers.iter().map(|_| j!({})).collect()
        } else {
            image.config.history.clone()
        };
        for h in &history {
            let empty = h["empty_layer"].as_bool().unwrap_or(false);
            let size = if empty {
                0
            } else {
                layers.next().map_or(0, |l| l.size)
            };
            out.push(j!({
                "Id": "<missing>",
                "Created": h["created"].as_str().and_then(crate::jsonlog::parse_time).map_or(0, |t| t.unix_timestamp()),
                "CreatedBy": h["created_by"].as_str().unwrap_or(""),
                "Tags": Value::Null,
                "Size": size,
                "Comment": h["comment"].as_str().unwrap_or(""),
            }));
        }
        out.reverse();
        if let Some(top) = out.first_mut() {
            top["Id"] = j!(found.id());
            top["Tags"] = j!(self.tags_of(&found.id())?);
        }
        Ok(json(StatusCode::OK, &out))
    }

    /// `GET /images/get?names=…` and `GET /images/{name}/get`: a `docker
    /// save` archive (`format=oci`, ours: an OCI image layout as a tar).
    pub async fn save(self: &std::sync::Arc<Self>, names: Vec<String>, oci: bool) -> ApiResult {
        if names.is_empty() {
            return Err(ApiError::bad_request(
                "no image named: say which images to save",
            ));
        }
        let mut stored = Vec::new();
        for n in &names {
            let found = self.resolve_image(n)?;
            let name = match found.name {
                Some(name) => name,
                None => {
                    return Err(ApiError::bad_request(format!(
                        "{n} has no name: tag it first (mini-docker saves images by name)"
                    )))
                }
            };
            stored.push(name);
        }
        let d = self.clone();
        let file = tokio::task::spawn_blocking(move || -> Result<std::fs::File, ApiError> {
            let ingest = d.store.root().join("ingest");
            let mut file = tempfile::tempfile_in(&ingest)?;
            if oci {
                let dir = tempfile::tempdir_in(&ingest)?;
                let layout = dir.path().join("layout");
                for name in &stored {
                    chapter_04::archive::export_oci(&d.store, name, &layout, name)?;
                }
                let mut tar = tar::Builder::new(&mut file);
                tar.follow_symlinks(false);
                tar.append_dir_all(".", &layout)?;
                tar.finish()?;
            } else {
                let names: Vec<&str> = stored.iter().map(String::as_str).collect();
                chapter_04::archive::save_docker(&d.store, &names, &mut file)?;
            }
            use std::io::Seek;
            file.seek(std::io::SeekFrom::Start(0))?;
            Ok(file)
        })
        .await
        .map_err(|e| ApiError::internal(e.to_string()))??;
        Ok(http::stream_file(file))
    }

    /// `POST /images/{name}/push?tag=…`: chapter 05's push (blobs first,
    /// mounted from another repository of the registry when the store has
    /// the image under one, the manifest last), as Docker's JSON stream.
    pub async fn push(
        self: &std::sync::Arc<Self>,
        name: &str,
        req: Request<Incoming>,
    ) -> ApiResult {
        let q = http::query(&req);
        let credentials = registry_auth(&req)?;
        let text = match q.get("tag").filter(|t| !t.is_empty()) {
            Some(t) => format!("{name}:{t}"),
            None => name.to_string(),
        };
        let reference = chapter_05::Reference::parse(&text)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let local = reference.local_name();
        let found = self.resolve_image(&local)?;
        if found.name.is_none() {
            return Err(ApiError::not_found(format!("No such image: {text}")));
        }
        // Another repository of the same registry that holds the base layer.
        let first_layer = found
            .image
            .manifest
            .layers
            .first()
            .map(|l| l.digest.clone());
        let repo_prefix = format!("{}/", reference.registry);
        let mount_from = self.store.tags()?.into_iter().find_map(|(n, d)| {
            let r = chapter_05::Reference::parse(&n).ok()?;
            if !n.starts_with(&repo_prefix) || r.repository == reference.repository {
                return None;
            }
            let image = chapter_04::unpack::load_image(
                &self.store,
                &d,
                &chapter_04::unpack::host_platform(),
            )
            .ok()?;
            (image.manifest.layers.first().map(|l| &l.digest) == first_layer.as_ref())
                .then_some(r.repository)
        });
        let (mut tx, response) = http::streaming(StatusCode::OK, "application/json");
        let d = self.clone();
        tokio::spawn(async move {
            let line = |m: &Value| Bytes::from(m.to_string() + "\r\n");
            let repo = familiar(&format!("{}/{}", reference.registry, reference.repository));
            let _ = tx
                .send_data(line(
                    &j!({"status": format!("The push refers to repository [{repo}]")}),
                ))
                .await;
            let (events, mut received) = tokio::sync::mpsc::unbounded_channel::<Message>();
            let from = mount_from.clone().unwrap_or_default();
            let sink: chapter_05::progress::Sink = std::sync::Arc::new(move |id, event| {
                let _ = events.send(push_message(id, event, &from));
            });
            let r2 = reference.clone();
            let d2 = d.clone();
            let mut pushing = tokio::task::spawn_blocking(move || {
                let client = chapter_05::client::Client::new(&r2, true)?;
                let client = match credentials {
                    Some(c) => client.with_credentials(Some(c)),
                    None => client,
                };
                let options = chapter_05::push::Options {
                    mount_from,
                    ..Default::default()
                };
                let d = chapter_05::push::push(
                    &client,
                    &d2.store,
                    &local,
                    &options,
                    &chapter_05::progress::Progress::to_sink(sink),
                )?;
                Ok::<_, String>(d)
            });
            let result = loop {
                tokio::select! {
                    Some(m) = received.recv() => {
                        let _ = tx.send_data(line(&serde_json::to_value(&m).unwrap())).await;
                    }
                    done = &mut pushing => {
                        break done.unwrap_or_else(|e| Err(format!("the push crashed: {e}")));
                    }
                }
            };
            while let Ok(m) = received.try_recv() {
                let _ = tx.send_data(line(&serde_json::to_value(&m).unwrap())).await;
            }
            let tag = reference.tag.clone().unwrap_or_else(|| "latest".into());
            let last = match result {
                Ok(pushed) => vec![
                    j!({"status": format!("{tag}: digest: {} size: {}", pushed.digest, pushed.size)}),
                    j!({"progressDetail": {}, "aux": {"Tag": tag, "Digest": pushed.digest.to_string(), "Size": pushed.size}}),
                ],
                Err(e) => vec![j!({"error": e, "errorDetail": {"message": e}})],
            };
            for m in last {
                let _ = tx.send_data(line(&m)).await;
            }
        });
        Ok(response)
    }
}
