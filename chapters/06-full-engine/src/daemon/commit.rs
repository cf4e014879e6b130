//! A container's changes: listed (`docker diff`), and made into an image
//! (`docker commit`, and each RUN of a build).
//!
//! A container's own layer is its overlay upper directory; below it lie
//! the init layer (the mount points the engine needs) and the image's
//! layers. Its changes are chapter 03's diff of the upper directory.

use super::http::{self, json, ApiError, ApiResult};
use super::Daemon;
use crate::build::{self, dockerfile, words};
use crate::state::Container;
use chapter_04::digest::Digest;
use chapter_04::manifest::{ContainerConfig as RunConfig, Descriptor, ImageConfig};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::{json as j, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

impl Daemon {
    /// The container's lower layers as its overlay has them: the image's,
    /// then its init layer.
    fn lowers_of(&self, c: &Container) -> Vec<PathBuf> {
        let mut lowers = c.layers.clone();
        let init = self.paths.container(&c.id).join("init");
        if init.is_dir() {
            lowers.push(init);
        }
        lowers
    }

    /// `GET /containers/{id}/changes`: `[{"Path": "/etc", "Kind": 0}, …]`
    /// (0 changed, 1 added, 2 deleted).
    pub fn changes(&self, query: &str) -> ApiResult {
        let id = self.find(query)?;
        let c = self.entry(&id, |e| e.c.clone())?;
        let upper = self.paths.container(&id).join("upper");
        if !upper.is_dir() {
            return Ok(json(StatusCode::OK, &Value::Null));
        }
        let changes = chapter_03::diff::changes(&upper, &self.lowers_of(&c))
            .map_err(|e| ApiError::internal(format!("reading the changes of {id}: {e}")))?;
        let list: Vec<Value> = changes
            .into_iter()
            .map(|(change, path)| j!({"Path": path, "Kind": change.kind()}))
            .collect();
        Ok(json(StatusCode::OK, &list))
    }

    /// `GET /containers/{id}/export`: the container's whole root
    /// filesystem (image, init layer, its changes) as one tar, with the
    /// container's own IDs (chapter 03's copy driver merges the layers).
    pub async fn export(self: &Arc<Self>, query: &str) -> ApiResult {
        let id = self.find(query)?;
        let c = self.entry(&id, |e| e.c.clone())?;
        let d = self.clone();
        let file = tokio::task::spawn_blocking(move || -> Result<std::fs::File, ApiError> {
            let mut layers = d.lowers_of(&c);
            let upper = d.paths.container(&c.id).join("upper");
            if upper.is_dir() {
                layers.push(upper);
            }
            let scratch = tempfile::tempdir_in(d.store.root().join("ingest"))?;
            let root = scratch.path().join("rootfs");
            std::fs::create_dir_all(&root)?;
            chapter_03::copy::materialize(&layers, &root)?;
            if let Some(map) = &c.userns {
                unshift_tree(&root, &map.to_id_map())?;
            }
            let mut tar = tempfile::tempfile_in(d.store.root().join("ingest"))?;
            chapter_03::diff::write_layer(&root, &mut tar)?;
            use std::io::Seek;
            tar.seek(std::io::SeekFrom::Start(0))?;
            Ok(tar)
        })
        .await
        .map_err(|e| ApiError::internal(e.to_string()))??;
        Ok(http::stream_file(file))
    }

    /// The container's own layer as a blob in the store: its descriptor
    /// and DiffID. Under a user namespace the upper directory holds host
    /// IDs; the layer holds the container's (a shifted copy is written).
    pub(crate) fn store_container_layer(
        &self,
        c: &Container,
    ) -> Result<(Descriptor, Digest), ApiError> {
        let upper = self.paths.container(&c.id).join("upper");
        let scratch = tempfile::tempdir_in(self.store.root().join("ingest"))?;
        let dir = self.paths.container(&c.id);
        if !upper.is_dir()
            && chapter_03::driver::Driver::detect(&dir) == chapter_03::driver::Driver::Copy
        {
            return Err(ApiError::conflict(format!(
                "container {} runs on the copy driver (its root is not on overlayfs: an engine inside a container?): its changes cannot be read as a layer, so it cannot be committed",
                crate::ids::short(&c.id)
            )));
        }
        let source = if !upper.is_dir() {
            // Never started: no changes, an empty layer (as Docker's).
            scratch.path().to_path_buf()
        } else if let Some(map) = &c.userns {
            let copy = scratch.path().join("layer");
            let ok = std::process::Command::new("cp")
                .arg("-a")
                .arg(&upper)
                .arg(&copy)
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                return Err(ApiError::internal(format!(
                    "copying the layer of {} to shift its owners back",
                    c.id
                )));
            }
            unshift_tree(&copy, &map.to_id_map())?;
            copy
        } else {
            upper
        };
        let mut tar = tempfile::tempfile_in(self.store.root().join("ingest"))?;
        chapter_03::diff::write_layer(&source, &mut tar)?;
        use std::io::Seek;
        tar.seek(std::io::SeekFrom::Start(0))?;
        Ok(chapter_04::archive::store_layer(
            &self.store,
            std::io::BufReader::new(tar),
        )?)
    }

    /// `POST /commit?container=…&repo=…&tag=…&comment=…&author=…&changes=…`
    /// with an optional config in the body: the container's changes as a
    /// new image on its image.
    pub async fn commit(self: &Arc<Self>, req: Request<Incoming>) -> ApiResult {
        let q = http::query(&req);
        let changes = http::query_all(&req, "changes");
        let body = req
            .into_body()
            .collect()
            .await
            .map_err(|e| ApiError::bad_request(format!("reading the body: {e}")))?
            .to_bytes();
        let overrides: Option<crate::api::ContainerConfig> =
            match String::from_utf8_lossy(&body).trim() {
                "" | "null" => None,
                text => Some(serde_json::from_str(text).map_err(|e| {
                    ApiError::bad_request(format!("the body is not a container config: {e}"))
                })?),
            };
        let query = q.get("container").cloned().unwrap_or_default();
        let id = self.find(&query)?;
        let c = self.entry(&id, |e| e.c.clone())?;
        let name = match q.get("repo").filter(|r| !r.is_empty()) {
            Some(repo) => {
                let tag = q
                    .get("tag")
                    .filter(|t| !t.is_empty())
                    .map_or("latest", |t| t);
                let name = super::images::normalise(&format!("{repo}:{tag}"));
                chapter_04::store::validate_tag(&name).map_err(ApiError::bad_request)?;
                Some(name)
            }
            None => None,
        };
        let parent = self.resolve_image(&c.image_id)?.image;
        let mut run = committed_config(&c, parent.config.config.clone().unwrap_or_default());
        if let Some(o) = overrides {
            apply_overrides(&mut run, &o);
        }
        let mut cmd_set = true;
        for change in &changes {
            let (_, instructions) = dockerfile::parse(change)
                .map_err(|(_, e)| ApiError::bad_request(format!("--change {change:?}: {e}")))?;
            for ins in instructions {
                const ALLOWED: &[&str] = &[
                    "CMD",
                    "ENTRYPOINT",
                    "ENV",
                    "EXPOSE",
                    "LABEL",
                    "ONBUILD",
                    "USER",
                    "VOLUME",
                    "WORKDIR",
                    "STOPSIGNAL",
                    "HEALTHCHECK",
                    "SHELL",
                ];
                if !ALLOWED.contains(&ins.keyword.as_str()) {
                    return Err(ApiError::bad_request(format!(
                        "--change {change:?}: {} is not allowed here: use one of {}",
                        ins.keyword,
                        ALLOWED.join(", ")
                    )));
                }
                let vars = build::vars_of(&run, &words::Vars::new());
                build::apply_config(&ins, &mut run, &vars, '\\', &mut cmd_set)
                    .map_err(|e| ApiError::bad_request(format!("--change {change:?}: {e}")))?;
            }
        }
        let d = self.clone();
        let comment = q.get("comment").cloned().unwrap_or_default();
        let author = q.get("author").cloned().unwrap_or_default();
        let _guard = self.images_lock.lock().await;
        let image_id = tokio::task::spawn_blocking(move || -> Result<String, ApiError> {
            let layer = d.store_container_layer(&c)?;
            let created = crate::jsonlog::now();
            let (mut config, layers) = build::next_image(
                &parent.config,
                &parent.manifest.layers,
                Some(layer),
                run,
                &c.args.join(" "),
                &created,
            );
            if let Some(last) = config.history.last_mut() {
                if !comment.is_empty() {
                    last["comment"] = Value::String(comment);
                }
                if !author.is_empty() {
                    last["author"] = Value::String(author.clone());
                }
            }
            if !author.is_empty() {
                config.author = Some(author);
            }
            d.put_image(&config, layers, name.as_deref(), &BTreeMap::new())
        })
        .await
        .map_err(|e| ApiError::internal(e.to_string()))??;
        Ok(json(StatusCode::CREATED, &j!({"Id": image_id})))
    }

    /// Stores an image and names it: by `name` when given, else as an
    /// untagged entry: dangling, or with `cache` annotations the build's
    /// cache. Returns the image ID.
    pub(crate) fn put_image(
        &self,
        config: &ImageConfig,
        layers: Vec<Descriptor>,
        name: Option<&str>,
        cache: &BTreeMap<String, String>,
    ) -> Result<String, ApiError> {
        let manifest = chapter_04::archive::put_image(&self.store, config, layers)?;
        let platform = chapter_04::unpack::host_platform();
        let image = chapter_04::unpack::load_image(&self.store, &manifest, &platform)?;
        let id = image.manifest.config.digest.to_string();
        match name {
            Some(name) => self.store.tag(name, &manifest)?,
            None => {
                let mut a = cache.clone();
                if a.is_empty() {
                    a.insert(
                        chapter_04::store::KIND.into(),
                        chapter_04::store::DANGLING.into(),
                    );
                }
                a.insert(chapter_04::store::IMAGE_ID.into(), id.clone());
                self.store.keep(&manifest, a)?;
            }
        }
        Ok(id)
    }
}

/// The image config a commit writes: the image's, with what the container
/// was created with over it (its environment, command, user, …), as
/// Docker's commit merges them.
fn committed_config(c: &Container, mut run: RunConfig) -> RunConfig {
    run.env = Some(c.env.clone());
    if let Some(cmd) = &c.config.cmd {
        run.cmd = Some(cmd.clone());
    }
    if let Some(ep) = &c.config.entrypoint {
        run.entrypoint = (ep != &[""]).then(|| ep.clone());
    }
    if !c.config.user.is_empty() {
        run.user = Some(c.config.user.clone());
    }
    if !c.config.working_dir.is_empty() {
        run.working_dir = Some(c.config.working_dir.clone());
    }
    if let Some(labels) = &c.config.labels {
        run.labels
            .get_or_insert_with(Default::default)
            .extend(labels.clone());
    }
    if !c.exposed_ports.is_empty() {
        let ports = run.exposed_ports.get_or_insert_with(Default::default);
        for p in &c.exposed_ports {
            ports.insert(p.clone(), j!({}));
        }
    }
    if let Some(v) = &c.config.volumes {
        run.volumes
            .get_or_insert_with(Default::default)
            .extend(v.clone());
    }
    if let Some(s) = &c.config.stop_signal {
        run.stop_signal = Some(s.clone());
    }
    run
}

/// The fields a commit's body config sets.
fn apply_overrides(run: &mut RunConfig, o: &crate::api::ContainerConfig) {
    if let Some(env) = &o.env {
        let mut merged = run.env.clone().unwrap_or_default();
        for e in env {
            let (k, v) = e.split_once('=').unwrap_or((e, ""));
            build::set_env(&mut merged, k, v);
        }
        run.env = Some(merged);
    }
    if o.cmd.is_some() {
        run.cmd = o.cmd.clone();
    }
    if o.entrypoint.is_some() {
        run.entrypoint = o.entrypoint.clone();
    }
    if !o.user.is_empty() {
        run.user = Some(o.user.clone());
    }
    if !o.working_dir.is_empty() {
        run.working_dir = Some(o.working_dir.clone());
    }
    if let Some(l) = &o.labels {
        run.labels
            .get_or_insert_with(Default::default)
            .extend(l.clone());
    }
}

/// Shifts owners under `dir` from host IDs back to the container's through
/// `map` (inverse of chapter 03's shift); an owner outside the map (a
/// whiteout the kernel made as the host's root) becomes the container's
/// root. The setuid and setgid bits chown clears are put back.
fn unshift_tree(dir: &Path, map: &chapter_01::IdMap) -> std::io::Result<()> {
    let back = |ranges: &[chapter_01::IdRange], id: u32| {
        ranges
            .iter()
            .find(|r| id >= r.outside && id - r.outside < r.count)
            .map_or(0, |r| r.inside + (id - r.outside))
    };
    chapter_03::idmap::shift_tree_with(dir, &|_, uid, gid| {
        Ok((back(&map.uids, uid), back(&map.gids, gid)))
    })
}
