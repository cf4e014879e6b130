//! `POST /build`: Docker's classic builder. The context arrives as a tar;
//! each instruction of the Dockerfile is a step whose image is the base of
//! the next: RUN runs in a container of this engine and its upper
//! directory becomes the layer; COPY and ADD prepare their layer in a
//! directory; the other instructions change only the config. A step is
//! skipped when the cache holds one with its key (see [`crate::build::cache`]).
//! The client sees Docker's JSON stream: `{"stream": "Step 1/5 : FROM …"}`,
//! `{"aux": {"ID": …}}`, `{"errorDetail": …}`.

use super::http::{self, flag, ApiError, ApiResult};
use super::images::{familiar, normalise};
use super::Daemon;
use crate::build::dockerfile::{Command, Instruction};
use crate::build::words::Vars;
use crate::build::{self, cache, dockerfile, ignore, words};
use bytes::Bytes;
use chapter_04::digest::Digest;
use chapter_04::manifest::{ContainerConfig as RunConfig, Descriptor, ImageConfig, RootFs};
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::{json as j, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The build arguments every Dockerfile may use without declaring them;
/// they are left out of the history and the cache key (as Docker does).
const PREDEFINED_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// What `POST /build` was asked.
struct Options {
    tags: Vec<String>,
    dockerfile: String,
    build_args: BTreeMap<String, String>,
    target: String,
    no_cache: bool,
    quiet: bool,
    labels: BTreeMap<String, String>,
    /// `networkmode`: the RUN containers' network (Docker's default: the
    /// default bridge; `none`, `host`, or a network's name).
    network: String,
}

/// The JSON stream to the client, written from the build's thread.
struct Out {
    tx: http_body_util::channel::Sender<Bytes>,
    handle: tokio::runtime::Handle,
    quiet: bool,
}

impl Out {
    fn send(&mut self, v: Value) {
        let line = Bytes::from(v.to_string() + "\r\n");
        let _ = self.handle.block_on(self.tx.send_data(line));
    }

    fn stream(&mut self, text: impl Into<String>) {
        if !self.quiet {
            self.send(j!({"stream": text.into()}));
        }
    }
}

/// An image a step starts from or makes.
#[derive(Clone)]
struct Img {
    /// The config's digest; empty for `scratch`.
    id: String,
    config: ImageConfig,
    layers: Vec<Descriptor>,
}

impl Img {
    fn scratch() -> Img {
        let p = chapter_04::unpack::host_platform();
        Img {
            id: String::new(),
            config: ImageConfig {
                architecture: p.architecture,
                os: p.os,
                rootfs: RootFs {
                    kind: "layers".into(),
                    diff_ids: Vec::new(),
                },
                config: Some(RunConfig {
                    env: Some(vec![DEFAULT_PATH.into()]),
                    ..Default::default()
                }),
                ..Default::default()
            },
            layers: Vec::new(),
        }
    }

    fn run(&self) -> RunConfig {
        self.config.config.clone().unwrap_or_default()
    }

    fn short(&self) -> &str {
        let hex = self.id.trim_start_matches("sha256:");
        &hex[..hex.len().min(12)]
    }
}

/// Docker's PATH for images that set none.
const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A stage being built.
struct Stage {
    name: Option<String>,
    img: Img,
    /// The ARGs declared in this stage, with their values.
    args: Vars,
    cmd_set: bool,
}

/// A failure of a step: the message, and Docker's code when a command failed.
struct Failed {
    message: String,
    code: Option<i32>,
}

impl From<String> for Failed {
    fn from(message: String) -> Failed {
        Failed {
            message,
            code: None,
        }
    }
}

impl From<ApiError> for Failed {
    fn from(e: ApiError) -> Failed {
        e.message.into()
    }
}

impl From<std::io::Error> for Failed {
    fn from(e: std::io::Error) -> Failed {
        e.to_string().into()
    }
}

type Step<T> = Result<T, Failed>;

struct Builder<'a> {
    d: &'a Arc<Daemon>,
    out: &'a mut Out,
    /// This build's scratch directory (removed when the build ends).
    work: PathBuf,
    context: PathBuf,
    ignore: ignore::Ignore,
    file: String,
    escape: char,
    options: &'a Options,
    used_args: BTreeSet<String>,
    stages: Vec<(Option<String>, Img)>,
    counter: usize,
}

impl Daemon {
    /// `POST /build?t=…&dockerfile=…&buildargs=…&target=…&nocache=…&q=…`
    /// with the context as a tar (optionally gzip) in the body.
    pub async fn build(self: &Arc<Self>, req: Request<Incoming>) -> ApiResult {
        let q = http::query(&req);
        if q.get("remote").is_some_and(|r| !r.is_empty()) {
            return Err(ApiError::bad_request(
                "a remote build context (a URL or git repository) is not supported: send the context as a tar",
            ));
        }
        let json_map = |key: &str| -> Result<BTreeMap<String, String>, ApiError> {
            match q.get(key).filter(|v| !v.is_empty()) {
                None => Ok(BTreeMap::new()),
                Some(text) => {
                    let v: BTreeMap<String, Option<String>> =
                        serde_json::from_str(text).map_err(|e| {
                            ApiError::bad_request(format!(
                                "{key} is not a JSON object of strings: {e}"
                            ))
                        })?;
                    Ok(v.into_iter().filter_map(|(k, v)| Some((k, v?))).collect())
                }
            }
        };
        let options = Options {
            tags: http::query_all(&req, "t"),
            dockerfile: q
                .get("dockerfile")
                .filter(|f| !f.is_empty())
                .cloned()
                .unwrap_or_else(|| "Dockerfile".into()),
            build_args: json_map("buildargs")?,
            labels: json_map("labels")?,
            target: q.get("target").cloned().unwrap_or_default(),
            no_cache: flag(&q, "nocache"),
            quiet: flag(&q, "q"),
            network: q.get("networkmode").cloned().unwrap_or_default(),
        };
        let mut names = Vec::new();
        for t in &options.tags {
            let name = normalise(t);
            chapter_04::store::validate_tag(&name).map_err(ApiError::bad_request)?;
            names.push(name);
        }
        let builds = self.paths.root.join("build");
        std::fs::create_dir_all(&builds)?;
        let work = tempfile::tempdir_in(&builds)?;
        // The context, as it came.
        let tar_path = work.path().join("context.tar");
        let mut file = std::fs::File::create(&tar_path)?;
        http::spool(req, &mut file, "build context").await?;
        drop(file);
        let (tx, response) = http::streaming(StatusCode::OK, "application/json");
        let d = self.clone();
        let handle = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            let mut out = Out {
                tx,
                handle,
                quiet: options.quiet,
            };
            let result = d.build_blocking(work.path(), &tar_path, &options, &names, &mut out);
            match result {
                Ok(id) => {
                    out.send(j!({"aux": {"ID": id}}));
                    if options.quiet {
                        out.send(j!({"stream": format!("{id}\n")}));
                    }
                    let short = &id.trim_start_matches("sha256:")[..12];
                    out.stream(format!("Successfully built {short}\n"));
                    for t in &names {
                        out.stream(format!("Successfully tagged {}\n", familiar(t)));
                    }
                }
                Err(f) => {
                    let mut detail = j!({"message": f.message});
                    if let Some(code) = f.code {
                        detail["code"] = j!(code);
                    }
                    out.send(j!({"errorDetail": detail, "error": f.message}));
                }
            }
            drop(work);
        });
        Ok(response)
    }

    fn build_blocking(
        self: &Arc<Self>,
        work: &Path,
        tar_path: &Path,
        options: &Options,
        names: &[String],
        out: &mut Out,
    ) -> Step<String> {
        let context = work.join("context");
        std::fs::create_dir_all(&context)?;
        extract_context(tar_path, &context)?;
        let _ = std::fs::remove_file(tar_path);
        let file = ignore::clean(&options.dockerfile);
        if file.starts_with("..") || file.is_empty() {
            return Err(format!(
                "the Dockerfile {:?} is outside the build context",
                options.dockerfile
            )
            .into());
        }
        let text = std::fs::read_to_string(context.join(&file)).map_err(|e| {
            format!(
                "Cannot locate specified Dockerfile: {} ({e})",
                options.dockerfile
            )
        })?;
        let ignore = match std::fs::read_to_string(context.join(".dockerignore")) {
            Ok(text) => ignore::Ignore::parse(&text)?,
            Err(_) => ignore::Ignore::none(),
        };
        let (directives, instructions) =
            dockerfile::parse(&text).map_err(|(line, e)| format!("{file}:{line}: {e}"))?;
        let mut builder = Builder {
            d: self,
            out,
            work: work.to_path_buf(),
            context,
            ignore,
            file: file.clone(),
            escape: directives.escape,
            options,
            used_args: BTreeSet::new(),
            stages: Vec::new(),
            counter: 0,
        };
        let mut img = builder.run_all(&instructions)?;
        if !options.labels.is_empty() {
            // `--label`: one more config step on the result, as Docker's.
            let mut run = img.run();
            run.labels
                .get_or_insert_with(Default::default)
                .extend(options.labels.clone());
            let shown: Vec<String> = options
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={v:?}"))
                .collect();
            let created_by = format!("/bin/sh -c #(nop)  LABEL {}", shown.join(" "));
            img = builder.config_step(&img, run, &created_by, &Vars::new())?;
        }
        let unused: Vec<&String> = options
            .build_args
            .keys()
            .filter(|k| !builder.used_args.contains(*k) && !PREDEFINED_ARGS.contains(&k.as_str()))
            .collect();
        if !unused.is_empty() {
            let list: Vec<&str> = unused.iter().map(|s| s.as_str()).collect();
            builder.out.stream(format!(
                "[Warning] One or more build-args [{}] were not consumed\n",
                list.join(" ")
            ));
        }
        let _guard = self.handle_lock();
        let manifest = self.manifest_of(&img)?;
        for name in names {
            self.store.tag(name, &manifest)?;
        }
        Ok(img.id)
    }

    /// The images lock, taken from the build's thread: storing a step's
    /// blobs and naming them must not race a garbage collection.
    fn handle_lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        tokio::runtime::Handle::current().block_on(self.images_lock.lock())
    }

    /// The manifest descriptor of a step's image, without annotations.
    fn manifest_of(&self, img: &Img) -> Step<Descriptor> {
        let found = self.resolve_image(&img.id)?;
        let mut d = found.manifest;
        d.annotations = None;
        Ok(d)
    }
}

/// Extracts the context tar (plain or gzip) into `dir`: tar's own checks
/// keep every entry inside `dir` (no `..`, no absolute names, no writing
/// through a link); owners are not kept (a COPY gives files to root).
fn extract_context(tar_path: &Path, dir: &Path) -> Step<()> {
    let mut magic = [0u8; 2];
    let mut f = std::fs::File::open(tar_path)?;
    let n = f.read(&mut magic)?;
    let f = std::fs::File::open(tar_path)?;
    let reader: Box<dyn Read> = if n == 2 && magic == [0x1f, 0x8b] {
        Box::new(flate2::read::GzDecoder::new(std::io::BufReader::new(f)))
    } else {
        Box::new(std::io::BufReader::new(f))
    };
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive.set_preserve_mtime(true);
    archive.set_overwrite(true);
    archive
        .unpack(dir)
        .map_err(|e| format!("the build context is not a valid tar: {e}"))?;
    Ok(())
}

impl Builder<'_> {
    fn at(&self, ins: &Instruction, message: impl std::fmt::Display) -> Failed {
        format!("{}:{}: {message}", self.file, ins.line).into()
    }

    fn run_all(&mut self, instructions: &[Instruction]) -> Step<Img> {
        let total = instructions.len();
        let mut meta_args = Vars::new();
        let mut stage: Option<Stage> = None;
        for (n, ins) in instructions.iter().enumerate() {
            if ins.keyword == "FROM" && stage.as_ref().is_some_and(|s| self.is_target(s)) {
                return Ok(stage.take().unwrap().img);
            }
            self.out
                .stream(format!("Step {}/{total} : {}\n", n + 1, ins.original));
            if ins.keyword == "FROM" {
                if let Some(done) = stage.take() {
                    self.stages.push((done.name.clone(), done.img));
                }
                stage = Some(self.from(ins, &meta_args)?);
                let img = &stage.as_ref().unwrap().img;
                let shown = if img.id.is_empty() {
                    "scratch".to_string()
                } else {
                    img.short().to_string()
                };
                self.out.stream(format!(" ---> {shown}\n"));
                continue;
            }
            let Some(current) = stage.as_mut() else {
                if ins.keyword == "ARG" {
                    for (name, value) in self.arg_values(ins, &Vars::new(), &meta_args)? {
                        if let Some(v) = value {
                            meta_args.insert(name, v);
                        }
                    }
                    continue;
                }
                return Err(self.at(ins, format!("{} before FROM: a Dockerfile starts with FROM (only ARG may come before it)", ins.keyword)));
            };
            let next = self.step(ins, current, &meta_args)?;
            current.img = next;
            let short = current.img.short().to_string();
            self.out.stream(format!(" ---> {short}\n"));
        }
        let Some(last) = stage else {
            return Err("the Dockerfile has no FROM".to_string().into());
        };
        if !self.options.target.is_empty() && !self.is_target(&last) {
            return Err(format!(
                "failed to reach build target {} in Dockerfile: no stage is named so",
                self.options.target
            )
            .into());
        }
        if last.img.id.is_empty() {
            return Err(
                "the image is empty: a FROM scratch stage needs at least one instruction"
                    .to_string()
                    .into(),
            );
        }
        Ok(last.img)
    }

    fn is_target(&self, stage: &Stage) -> bool {
        !self.options.target.is_empty()
            && stage
                .name
                .as_deref()
                .is_some_and(|n| n.eq_ignore_ascii_case(&self.options.target))
    }

    /// `ARG a[=x] b[=y]`: each name and its value (a build argument, else
    /// the default, else an inherited global ARG, else none).
    fn arg_values(
        &mut self,
        ins: &Instruction,
        vars: &Vars,
        meta: &Vars,
    ) -> Step<Vec<(String, Option<String>)>> {
        build::check_flags(ins, &[]).map_err(|e| self.at(ins, e))?;
        let raw = words::raw_words(&ins.rest, self.escape);
        if raw.is_empty() {
            return Err(self.at(ins, "ARG needs a name"));
        }
        let mut out = Vec::new();
        for word in raw {
            let (name, default) = match word.split_once('=') {
                Some((n, v)) => (
                    n.to_string(),
                    Some(words::expand(v, vars, self.escape).map_err(|e| self.at(ins, e))?),
                ),
                None => (word.clone(), None),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(self.at(
                    ins,
                    format!("ARG {word:?}: a name is letters, digits and _"),
                ));
            }
            let value = match self.options.build_args.get(&name) {
                Some(v) => {
                    self.used_args.insert(name.clone());
                    Some(v.clone())
                }
                None => default.or_else(|| meta.get(&name).cloned()),
            };
            out.push((name, value));
        }
        Ok(out)
    }

    /// `FROM [--platform=…] IMAGE [AS NAME]`: a stage, an image (pulled
    /// when missing), or scratch.
    fn from(&mut self, ins: &Instruction, meta: &Vars) -> Step<Stage> {
        build::check_flags(ins, &["platform"]).map_err(|e| self.at(ins, e))?;
        let parts: Vec<&str> = ins.rest.split_whitespace().collect();
        let (image, name) = match parts.as_slice() {
            [image] => (*image, None),
            [image, as_, name] if as_.eq_ignore_ascii_case("as") => {
                (*image, Some(name.to_ascii_lowercase()))
            }
            _ => return Err(self.at(ins, "FROM takes an image and optionally AS NAME")),
        };
        let image = words::expand(image, meta, self.escape).map_err(|e| self.at(ins, e))?;
        if image.is_empty() {
            return Err(self.at(ins, "FROM names no image (an ARG without a value?)"));
        }
        if let Some(n) = &name {
            if self.stages.iter().any(|(s, _)| s.as_deref() == Some(n)) {
                return Err(self.at(ins, format!("a stage named {n} is defined twice")));
            }
        }
        let mut img = self.image_for(ins, &image)?;
        // A base without PATH gets Docker's (BuildKit and buildah do the
        // same): RUN and the built image find their programs.
        let mut run = img.run();
        let env = run.env.get_or_insert_with(Vec::new);
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.insert(0, DEFAULT_PATH.to_string());
            img.config.config = Some(run);
        }
        Ok(Stage {
            name,
            img,
            args: Vars::new(),
            cmd_set: false,
        })
    }

    /// A stage by name or index, `scratch`, or an image of the store
    /// (pulled when missing).
    fn image_for(&mut self, ins: &Instruction, image: &str) -> Step<Img> {
        if image.eq_ignore_ascii_case("scratch") {
            return Ok(Img::scratch());
        }
        let lower = image.to_ascii_lowercase();
        if let Some((_, img)) = self
            .stages
            .iter()
            .find(|(n, _)| n.as_deref() == Some(lower.as_str()))
        {
            return Ok(img.clone());
        }
        if let Ok(i) = image.parse::<usize>() {
            return match self.stages.get(i) {
                Some((_, img)) => Ok(img.clone()),
                None => Err(self.at(
                    ins,
                    format!(
                        "no stage {i}: stages are counted from 0 and only earlier ones can be used"
                    ),
                )),
            };
        }
        let found = match self.d.resolve_image(image) {
            Ok(found) => found,
            Err(e) if e.status == StatusCode::NOT_FOUND => {
                self.pull(ins, image)?;
                self.d
                    .resolve_image(image)
                    .map_err(|e| self.at(ins, e.message))?
            }
            Err(e) => return Err(self.at(ins, e.message)),
        };
        Ok(Img {
            id: found.id(),
            config: found.image.config,
            layers: found.image.manifest.layers,
        })
    }

    fn pull(&mut self, ins: &Instruction, image: &str) -> Step<()> {
        let reference = chapter_05::Reference::parse(image).map_err(|e| self.at(ins, e))?;
        self.out
            .stream(format!("Pulling {}\n", familiar(&reference.local_name())));
        let _guard = self.d.handle_lock();
        let client =
            chapter_05::client::Client::new(&reference, false).map_err(|e| self.at(ins, e))?;
        chapter_05::pull::pull(
            &client,
            &self.d.store,
            &chapter_05::pull::Options::default(),
            &chapter_05::progress::Progress::quiet(),
        )
        .map_err(|e| self.at(ins, format!("pulling {image}: {e}")))?;
        Ok(())
    }

    /// The unpacked layers of an image, bottom first.
    fn lowers(&self, img: &Img) -> Step<Vec<PathBuf>> {
        if img.id.is_empty() {
            return Ok(Vec::new());
        }
        let found = self.d.resolve_image(&img.id)?;
        Ok(chapter_04::unpack::unpack(
            &self.d.store,
            &found.image,
            &chapter_04::unpack::Limits::default(),
        )?)
    }

    /// A cached step's image, if the cache has one for `key`.
    fn cached(&self, key: &str) -> Option<Img> {
        if self.options.no_cache {
            return None;
        }
        let platform = chapter_04::unpack::host_platform();
        let entries = self.d.store.untagged().ok()?;
        let d = entries.iter().rev().find(|d| {
            chapter_04::store::kind(d) == Some(chapter_04::store::BUILD_CACHE)
                && d.annotations
                    .as_ref()
                    .and_then(|a| a.get(chapter_04::store::CACHE_KEY))
                    .map(String::as_str)
                    == Some(key)
        })?;
        let image = chapter_04::unpack::load_image(&self.d.store, d, &platform).ok()?;
        // Every blob must still be there (a pruned store keeps no half images).
        if !image
            .manifest
            .layers
            .iter()
            .all(|l| self.d.store.has_blob(&l.digest))
        {
            return None;
        }
        Some(Img {
            id: image.manifest.config.digest.to_string(),
            config: image.config,
            layers: image.manifest.layers,
        })
    }

    /// Stores a step's image as a cache entry under `key`.
    fn commit_step(
        &mut self,
        parent: &Img,
        layer: Option<(Descriptor, Digest)>,
        run: RunConfig,
        created_by: &str,
        key: &str,
    ) -> Step<Img> {
        let (config, layers) = build::next_image(
            &parent.config,
            &parent.layers,
            layer,
            run,
            created_by,
            &crate::jsonlog::now(),
        );
        let mut annotations = BTreeMap::new();
        annotations.insert(
            chapter_04::store::KIND.to_string(),
            chapter_04::store::BUILD_CACHE.to_string(),
        );
        annotations.insert(chapter_04::store::CACHE_KEY.to_string(), key.to_string());
        let id = self
            .d
            .put_image(&config, layers.clone(), None, &annotations)?;
        Ok(Img { id, config, layers })
    }

    /// One instruction of a stage.
    fn step(&mut self, ins: &Instruction, stage: &mut Stage, meta: &Vars) -> Step<Img> {
        let parent = stage.img.clone();
        let mut run = parent.run();
        let vars = build::vars_of(&run, &stage.args);
        match ins.keyword.as_str() {
            "RUN" => self.run_step(ins, stage),
            "COPY" | "ADD" => self.copy_step(ins, stage, &vars),
            "ARG" => {
                for (name, value) in self.arg_values(ins, &vars, meta)? {
                    match value {
                        Some(v) => stage.args.insert(name, v),
                        None => stage.args.remove(&name),
                    };
                }
                let created_by = format!("/bin/sh -c #(nop)  ARG {}", ins.rest);
                self.config_step(&parent, run, &created_by, &stage.args)
            }
            "MAINTAINER" => {
                let mut img = parent.clone();
                img.config.author = Some(ins.rest.clone());
                let created_by = format!("/bin/sh -c #(nop)  MAINTAINER {}", ins.rest);
                self.config_step(&img, run, &created_by, &stage.args)
            }
            "WORKDIR" => {
                build::apply_config(ins, &mut run, &vars, self.escape, &mut stage.cmd_set)
                    .map_err(|e| self.at(ins, e))?;
                let dir = run.working_dir.clone().unwrap_or_else(|| "/".into());
                let created_by = format!("/bin/sh -c #(nop) WORKDIR {dir}");
                let lowers = self.lowers(&parent)?;
                if chapter_03::diff::exists_below(&lowers, Path::new(&dir)) || dir == "/" {
                    return self.config_step(&parent, run, &created_by, &stage.args);
                }
                // A directory the image lacks is made, in a layer of its own.
                let layer = self.layer_dir()?;
                let target = self.make_parents(&layer, &lowers, &dir)?;
                std::fs::create_dir_all(&target)?;
                std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755))?;
                self.layer_step(&parent, &layer, run, &created_by)
            }
            _ => {
                build::apply_config(ins, &mut run, &vars, self.escape, &mut stage.cmd_set)
                    .map_err(|e| self.at(ins, e))?;
                let created_by = format!("/bin/sh -c #(nop)  {} {}", ins.keyword, ins.rest);
                self.config_step(&parent, run, &created_by, &stage.args)
            }
        }
    }

    /// A step that changes only the config: an image with an empty layer
    /// entry in its history.
    fn config_step(
        &mut self,
        parent: &Img,
        run: RunConfig,
        created_by: &str,
        args: &Vars,
    ) -> Step<Img> {
        // The ARG values are part of the key: `ARG V` with another value
        // must not reuse the image made for the first.
        let args_text: Vec<String> = args.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let key = cache::key(
            &parent.id,
            &format!(
                "{created_by}\0{}\0{}",
                args_text.join("\0"),
                serde_json::to_string(&parent.config.author).unwrap()
            ),
            None,
        );
        if let Some(img) = self.cached(&key) {
            self.out.stream(" ---> Using cache\n");
            return Ok(img);
        }
        let _guard = self.d.handle_lock();
        self.commit_step(parent, None, run, created_by, &key)
    }

    /// A fresh directory for a step's layer.
    fn layer_dir(&mut self) -> Step<PathBuf> {
        self.counter += 1;
        let dir = self.work.join(format!("layer-{}", self.counter));
        std::fs::create_dir_all(&dir)?;
        Ok(dir)
    }

    /// Creates in `layer` the parent directories of `dest` (an absolute
    /// path in the image), each with the mode, owner and time it has in the
    /// image (`lowers`), or 0755 root when it is new. Returns where `dest`
    /// itself goes in `layer`.
    fn make_parents(&self, layer: &Path, lowers: &[PathBuf], dest: &str) -> Step<PathBuf> {
        let rel = ignore::clean(dest.trim_start_matches('/'));
        let mut at = layer.to_path_buf();
        let mut rel_at = PathBuf::new();
        let parts: Vec<&str> = rel.split('/').filter(|p| !p.is_empty()).collect();
        for part in parts.iter().take(parts.len().saturating_sub(1)) {
            at.push(part);
            rel_at.push(part);
            if at.exists() {
                continue;
            }
            std::fs::create_dir(&at)?;
            match chapter_03::diff::find_below(lowers, &rel_at) {
                Some(existing) => {
                    let meta = std::fs::metadata(&existing)?;
                    if !meta.is_dir() {
                        return Err(format!(
                            "/{} is not a directory in the image",
                            rel_at.display()
                        )
                        .into());
                    }
                    std::os::unix::fs::chown(&at, Some(meta.uid()), Some(meta.gid()))?;
                    std::fs::set_permissions(
                        &at,
                        std::fs::Permissions::from_mode(meta.mode() & 0o7777),
                    )?;
                    set_mtime(&at, meta.mtime())?;
                }
                None => std::fs::set_permissions(&at, std::fs::Permissions::from_mode(0o755))?,
            }
        }
        Ok(layer.join(&rel))
    }

    /// A layer directory written as a layer blob (chapter 03's diff).
    fn store_layer_dir(&self, layer: &Path) -> Step<(Descriptor, Digest)> {
        let mut tar = tempfile::tempfile_in(self.d.store.root().join("ingest"))?;
        chapter_03::diff::write_layer(layer, &mut tar)?;
        use std::io::Seek;
        tar.seek(std::io::SeekFrom::Start(0))?;
        Ok(chapter_04::archive::store_layer(
            &self.d.store,
            std::io::BufReader::new(tar),
        )?)
    }

    /// `RUN`: the command in a container on the stage's image, with the
    /// stage's ARGs in its environment; its changes are the layer.
    fn run_step(&mut self, ins: &Instruction, stage: &mut Stage) -> Step<Img> {
        build::check_flags(ins, &[]).map_err(|e| {
            self.at(ins, format!("{e} (RUN --mount, --network and --security are BuildKit's; the classic builder has none)"))
        })?;
        let parent = stage.img.clone();
        if parent.id.is_empty() {
            return Err(self.at(ins, "RUN in a FROM scratch stage: there is no shell or program to run yet (COPY one in first)"));
        }
        let run = parent.run();
        let shell = run.shell.clone().unwrap_or_else(build::default_shell);
        let command = Command::parse(&ins.rest);
        let argv = command.argv(&shell);
        if argv.is_empty() || argv.iter().all(|a| a.is_empty()) {
            return Err(self.at(ins, "RUN needs a command"));
        }
        // The build arguments the command sees (ENV wins over ARG).
        let env_names: BTreeSet<String> = run
            .env
            .iter()
            .flatten()
            .filter_map(|e| e.split_once('=').map(|(k, _)| k.to_string()))
            .collect();
        let args_env: Vec<(String, String)> = stage
            .args
            .iter()
            .filter(|(k, _)| !env_names.contains(*k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let shown_args: Vec<String> = args_env
            .iter()
            .filter(|(k, _)| !PREDEFINED_ARGS.contains(&k.as_str()))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let mut created_by = argv.join(" ");
        if !shown_args.is_empty() {
            created_by = format!(
                "|{} {} {created_by}",
                shown_args.len(),
                shown_args.join(" ")
            );
        }
        let key = cache::key(&parent.id, &created_by, None);
        if let Some(img) = self.cached(&key) {
            self.out.stream(" ---> Using cache\n");
            return Ok(img);
        }
        let env: Vec<String> = args_env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let request = j!({
            "Image": parent.id,
            "Entrypoint": [""],
            "Cmd": argv,
            "Env": env,
            "User": run.user.clone().unwrap_or_default(),
            "WorkingDir": run.working_dir.clone().unwrap_or_default(),
            "Labels": {"io.mini-docker.build": "intermediate"},
            "HostConfig": {"NetworkMode": if self.options.network == "default" { "" } else { self.options.network.as_str() }},
        });
        let body: crate::api::CreateRequest = serde_json::from_value(request)
            .map_err(|e| format!("the RUN container's config: {e}"))?;
        let id = self
            .d
            .create_blocking(body, "", "")
            .map_err(|e| self.at(ins, e.message))?;
        let guard = RemoveOnDrop {
            d: self.d,
            id: id.clone(),
        };
        self.out
            .stream(format!(" ---> Running in {}\n", crate::ids::short(&id)));
        let code = self.run_container(&id)?;
        if code != 0 {
            return Err(Failed {
                message: format!(
                    "{}:{}: The command '{}' returned a non-zero code: {code}",
                    self.file,
                    ins.line,
                    argv.join(" ")
                ),
                code: Some(code),
            });
        }
        let c = self.d.entry(&id, |e| e.c.clone())?;
        let img = {
            let _guard = self.d.handle_lock();
            let layer = self.d.store_container_layer(&c)?;
            self.commit_step(&parent, Some(layer), run, &created_by, &key)?
        };
        drop(guard);
        self.out.stream(format!(
            "Removing intermediate container {}\n",
            crate::ids::short(&id)
        ));
        Ok(img)
    }

    /// Starts a created container, streams its output to the client as it
    /// comes, and returns its exit code.
    fn run_container(&mut self, id: &str) -> Step<i32> {
        let handle = tokio::runtime::Handle::current();
        let mut life = self.d.entry(id, |e| e.life.subscribe())?;
        let start = *life.borrow_and_update();
        handle
            .block_on(self.d.clone().start(id))
            .map_err(|e| format!("starting the RUN container: {}", e.message))?;
        let log = self.d.paths.log(id);
        let mut offset = 0u64;
        let mut pending = Vec::new();
        loop {
            let exited = handle.block_on(async {
                let changed =
                    tokio::time::timeout(std::time::Duration::from_millis(100), life.changed())
                        .await;
                match changed {
                    Ok(Err(_)) => true,
                    _ => {
                        let l = *life.borrow_and_update();
                        l.exits > start.exits || l.removed
                    }
                }
            });
            // Whatever the log has gained, line by line.
            if let Ok(mut f) = std::fs::File::open(&log) {
                use std::io::Seek;
                if f.seek(std::io::SeekFrom::Start(offset)).is_ok() {
                    let mut buf = Vec::new();
                    if let Ok(n) = f.read_to_end(&mut buf) {
                        offset += n as u64;
                        pending.extend_from_slice(&buf);
                    }
                }
            }
            while let Some(pos) = pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = pending.drain(..=pos).collect();
                for entry in crate::jsonlog::parse(&String::from_utf8_lossy(&line)) {
                    self.out.stream(entry.log);
                }
            }
            if exited {
                break;
            }
        }
        Ok(self.d.entry(id, |e| e.state.exit_code)?)
    }

    /// `COPY`/`ADD [--from=…] [--chown=…] [--chmod=…] SRC… DEST`.
    fn copy_step(&mut self, ins: &Instruction, stage: &mut Stage, vars: &Vars) -> Step<Img> {
        let add = ins.keyword == "ADD";
        let allowed: &[&str] = if add {
            &["chown", "chmod", "link"]
        } else {
            &["from", "chown", "chmod", "link"]
        };
        build::check_flags(ins, allowed).map_err(|e| self.at(ins, e))?;
        let parent = stage.img.clone();
        let run = parent.run();
        let mut list = match Command::parse(&ins.rest) {
            Command::Exec(words) => words
                .iter()
                .map(|w| words::expand(w, vars, self.escape))
                .collect::<Result<Vec<_>, _>>(),
            Command::Shell(text) => words::words(&text, vars, self.escape),
        }
        .map_err(|e| self.at(ins, e))?;
        if list.len() < 2 {
            return Err(self.at(
                ins,
                format!("{} needs a source and a destination", ins.keyword),
            ));
        }
        let dest_text = list.pop().unwrap();
        let sources = list;
        let workdir = run.working_dir.clone().unwrap_or_else(|| "/".into());
        let dest_is_dir = dest_text.ends_with('/') || dest_text == ".";
        let dest = if dest_text.starts_with('/') {
            dest_text.clone()
        } else {
            format!("{workdir}/{dest_text}")
        };
        let dest = format!("/{}", ignore::clean(&dest));
        let lowers = self.lowers(&parent)?;
        // The owner: --chown names resolved in the image's /etc/passwd.
        let owner = match ins.flag("chown") {
            Some(spec) => {
                let spec = words::expand(spec, vars, self.escape).map_err(|e| self.at(ins, e))?;
                Some(
                    self.resolve_owner(&lowers, &spec)
                        .map_err(|e| self.at(ins, e))?,
                )
            }
            None => None,
        };
        let mode = match ins.flag("chmod") {
            Some(m) => Some(
                u32::from_str_radix(m, 8)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .ok_or_else(|| {
                        self.at(ins, format!("--chmod={m}: an octal mode such as 755"))
                    })?,
            ),
            None => None,
        };
        // Where sources are read from.
        let from = ins.flag("from").map(str::to_string);
        let no_rules = ignore::Ignore::none();
        let (root, rules) = match &from {
            Some(name) => {
                let name = words::expand(name, vars, self.escape).map_err(|e| self.at(ins, e))?;
                let img = self.image_for(ins, &name)?;
                let view = self.work.join(format!("from-{}", self.counter + 1));
                std::fs::create_dir_all(&view)?;
                chapter_03::copy::materialize(&self.lowers(&img)?, &view)?;
                (view, &no_rules)
            }
            None => (self.context.clone(), &self.ignore),
        };
        let resolved = self.resolve_sources(ins, &root, rules, &sources, add)?;
        let many = resolved.len() > 1 || sources.iter().any(|s| has_glob(s));
        let into_dir = dest_is_dir
            || many
            || chapter_03::diff::find_below(&lowers, Path::new(&dest))
                .is_some_and(|p| std::fs::metadata(p).is_ok_and(|m| m.is_dir()));
        if many && !dest_is_dir && resolved.len() > 1 {
            return Err(self.at(ins, format!("When using {} with more than one source file, the destination must be a directory and end with a /", ins.keyword)));
        }
        let layer = self.layer_dir()?;
        let keep_owner = from.is_some();
        for (src, is_archive) in &resolved {
            let meta = std::fs::metadata(src)?;
            let name = src
                .file_name()
                .map(|n| n.to_os_string())
                .unwrap_or_default();
            if meta.is_dir() {
                let target = self.make_parents(&layer, &lowers, &format!("{dest}/x"))?;
                let target = target.parent().unwrap().to_path_buf();
                copy_tree(src, &target, owner, mode, keep_owner, true)?;
            } else if *is_archive {
                let target = self.make_parents(&layer, &lowers, &format!("{dest}/x"))?;
                let target = target.parent().unwrap().to_path_buf();
                std::fs::create_dir_all(&target)?;
                extract_archive(src, &target).map_err(|e| self.at(ins, e))?;
            } else {
                let path = if into_dir {
                    format!("{dest}/{}", name.to_string_lossy())
                } else {
                    dest.clone()
                };
                let target = self.make_parents(&layer, &lowers, &path)?;
                copy_tree(src, &target, owner, mode, keep_owner, false)?;
            }
        }
        // The destination directory itself, when the step made it: --chown's.
        if let Some((uid, gid)) = owner {
            let made = layer.join(dest.trim_start_matches('/'));
            if made.is_dir() && !chapter_03::diff::exists_below(&lowers, Path::new(&dest)) {
                std::os::unix::fs::lchown(&made, Some(uid), Some(gid))?;
            }
        }
        let mut flags: Vec<String> = ins
            .flags
            .iter()
            .map(|(k, v)| format!("--{k}={v}"))
            .collect();
        flags.sort();
        let created_by = format!(
            "/bin/sh -c #(nop) {} {}{} in {dest_text}",
            ins.keyword,
            if flags.is_empty() {
                String::new()
            } else {
                flags.join(" ") + " "
            },
            sources.join(" ")
        );
        self.layer_step(&parent, &layer, run, &created_by)
    }

    /// A step whose layer is the directory `layer` (COPY, ADD, WORKDIR):
    /// the cached image when the key (with the layer's tree digest) has
    /// one, else the layer stored and the step's image made.
    fn layer_step(
        &mut self,
        parent: &Img,
        layer: &Path,
        run: RunConfig,
        created_by: &str,
    ) -> Step<Img> {
        let content = cache::tree_digest(layer)?;
        let key = cache::key(&parent.id, created_by, Some(&content));
        if let Some(img) = self.cached(&key) {
            self.out.stream(" ---> Using cache\n");
            return Ok(img);
        }
        let stored = self.store_layer_dir(layer)?;
        let _guard = self.d.handle_lock();
        self.commit_step(parent, Some(stored), run, created_by, &key)
    }

    /// `user[:group]` as uid and gid, names looked up in the image.
    fn resolve_owner(&self, lowers: &[PathBuf], spec: &str) -> Result<(u32, u32), String> {
        let numeric = |s: &str| s.parse::<u32>().ok();
        let (user, group) = spec
            .split_once(':')
            .map_or((spec, None), |(u, g)| (u, Some(g)));
        if let (Some(u), None) = (numeric(user), group) {
            return Ok((u, u));
        }
        if let (Some(u), Some(g)) = (numeric(user), group.and_then(numeric)) {
            return Ok((u, g));
        }
        // Names: the image's /etc/passwd and /etc/group, through chapter 04.
        let etc = tempfile::tempdir().map_err(|e| e.to_string())?;
        std::fs::create_dir_all(etc.path().join("etc")).map_err(|e| e.to_string())?;
        for f in ["etc/passwd", "etc/group"] {
            if let Some(p) = chapter_03::diff::find_below(lowers, Path::new(f)) {
                let _ = std::fs::copy(p, etc.path().join(f));
            }
        }
        chapter_04::runconfig::resolve_user(spec, etc.path())
            .map_err(|e| format!("--chown={spec}: {e}"))
    }

    /// The files the sources name under `root`: each path cleaned and
    /// kept inside, symlinks on the way resolved inside `root` (one that
    /// leads out is refused), globs expanded, excluded files left out.
    /// For ADD, whether a file is a local archive to extract.
    fn resolve_sources(
        &self,
        ins: &Instruction,
        root: &Path,
        ignore: &ignore::Ignore,
        sources: &[String],
        add: bool,
    ) -> Step<Vec<(PathBuf, bool)>> {
        let mut out = Vec::new();
        for src in sources {
            if add
                && (src.starts_with("http://")
                    || src.starts_with("https://")
                    || src.starts_with("git@"))
            {
                return Err(self.at(ins, format!("ADD {src}: a URL source is not supported by mini-docker: download it into the context, or fetch it in a RUN")));
            }
            let cleaned = ignore::clean(src.trim_start_matches('/'));
            if cleaned.starts_with("..") {
                return Err(self.at(
                    ins,
                    format!(
                        "{} failed: forbidden path outside the build context: {src}",
                        ins.keyword
                    ),
                ));
            }
            let matches: Vec<String> = if has_glob(&cleaned) {
                let glob = ignore::glob(&cleaned).map_err(|e| self.at(ins, e))?;
                let mut all = Vec::new();
                ignore::walk(root, &mut |rel, _, _| {
                    all.push(rel.to_string());
                    Ok(true)
                })?;
                let found: Vec<String> = all
                    .into_iter()
                    .filter(|r| glob.is_match(r) && !ignore.excluded(r))
                    .collect();
                if found.is_empty() {
                    return Err(self.at(ins, format!("{} failed: no source files were specified: {src} matches nothing in the build context", ins.keyword)));
                }
                // A directory and its matching contents: keep the outermost.
                found
                    .iter()
                    .filter(|r| {
                        !found
                            .iter()
                            .any(|o| o != *r && r.starts_with(&format!("{o}/")))
                    })
                    .cloned()
                    .collect()
            } else {
                vec![cleaned.clone()]
            };
            for rel in matches {
                if !rel.is_empty() && ignore.excluded(&rel) {
                    return Err(self.at(
                        ins,
                        format!("{} failed: {src} is excluded by .dockerignore", ins.keyword),
                    ));
                }
                let path = resolve_inside(root, &rel)
                    .map_err(|e| self.at(ins, format!("{} failed: {src}: {e}", ins.keyword)))?;
                if std::fs::symlink_metadata(&path).is_err() {
                    return Err(self.at(ins, format!(
                        "{} failed: file not found in build context or excluded by .dockerignore: stat {src}: no such file or directory{}",
                        ins.keyword,
                        if src.starts_with('/') { " (a source is a path in the context: the host's files are never read)" } else { "" }
                    )));
                }
                let archive =
                    add && std::fs::metadata(&path).is_ok_and(|m| m.is_file()) && is_archive(&path);
                out.push((path, archive));
            }
        }
        Ok(out)
    }
}

/// Removes a build's RUN container however the step ends.
struct RemoveOnDrop<'a> {
    d: &'a Arc<Daemon>,
    id: String,
}

impl Drop for RemoveOnDrop<'_> {
    fn drop(&mut self) {
        if self.d.is_running(&self.id) {
            let mut q = std::collections::HashMap::new();
            q.insert("t".to_string(), "0".to_string());
            let _ = tokio::runtime::Handle::current().block_on(self.d.stop(&self.id, &q));
        }
        let _ = self.d.remove_now(&self.id);
    }
}

fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// `rel` under `root`, following symlinks as the context's own: a link to
/// an absolute path, or one that climbs above `root`, is refused.
fn resolve_inside(root: &Path, rel: &str) -> Result<PathBuf, String> {
    let mut parts: Vec<String> = rel
        .split('/')
        .filter(|p| !p.is_empty())
        .map(String::from)
        .collect();
    parts.reverse();
    let mut at: Vec<String> = Vec::new();
    let mut hops = 0;
    while let Some(part) = parts.pop() {
        match part.as_str() {
            "." => continue,
            ".." => {
                if at.pop().is_none() {
                    return Err("the path leads outside the build context".into());
                }
                continue;
            }
            _ => {}
        }
        at.push(part);
        let path = root.join(at.join("/"));
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.file_type().is_symlink() {
            hops += 1;
            if hops > 40 {
                return Err("too many levels of symbolic links".into());
            }
            let target = std::fs::read_link(&path).map_err(|e| e.to_string())?;
            let target = target.to_string_lossy().into_owned();
            if target.starts_with('/') {
                return Err(format!(
                    "it is a symlink to {target}, outside the build context"
                ));
            }
            at.pop();
            let depth = at.len();
            let ups = target.split('/').filter(|p| *p == "..").count();
            if ups > depth {
                return Err(format!(
                    "it is a symlink to {target}, outside the build context"
                ));
            }
            for p in target.split('/').rev().filter(|p| !p.is_empty()) {
                parts.push(p.to_string());
            }
        }
    }
    Ok(root.join(at.join("/")))
}

fn set_mtime(path: &Path, secs: i64) -> std::io::Result<()> {
    // Files and directories only (never called on a symlink).
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs.max(0) as u64);
    std::fs::File::open(path)?.set_times(std::fs::FileTimes::new().set_accessed(t).set_modified(t))
}

/// Copies `src` (a file, a symlink, or with `contents` a directory's
/// contents) to `dst`, modes and times kept, owned by `owner` (root when
/// none, or as in the source with `keep_owner`), `mode` over every entry.
fn copy_tree(
    src: &Path,
    dst: &Path,
    owner: Option<(u32, u32)>,
    mode: Option<u32>,
    keep_owner: bool,
    contents: bool,
) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(src)?;
    let (uid, gid) = match owner {
        Some(o) => o,
        None if keep_owner => (meta.uid(), meta.gid()),
        None => (0, 0),
    };
    let kind = meta.file_type();
    if kind.is_dir() {
        if !dst.exists() {
            std::fs::create_dir(dst)?;
        }
        let mut names: Vec<_> = std::fs::read_dir(src)?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name())
            .collect();
        names.sort();
        for name in names {
            copy_tree(
                &src.join(&name),
                &dst.join(&name),
                owner,
                mode,
                keep_owner,
                false,
            )?;
        }
        if !contents || !dst.exists() || std::fs::symlink_metadata(dst)?.is_dir() {
            let m = mode.unwrap_or(meta.mode() & 0o7777);
            if !contents {
                std::os::unix::fs::lchown(dst, Some(uid), Some(gid))?;
                std::fs::set_permissions(dst, std::fs::Permissions::from_mode(m))?;
                set_mtime(dst, meta.mtime())?;
            }
        }
        return Ok(());
    }
    if std::fs::symlink_metadata(dst).is_ok_and(|m| m.is_dir()) && !kind.is_dir() {
        std::fs::remove_dir_all(dst)?;
    } else if dst.symlink_metadata().is_ok() {
        std::fs::remove_file(dst)?;
    }
    if kind.is_symlink() {
        std::os::unix::fs::symlink(std::fs::read_link(src)?, dst)?;
        std::os::unix::fs::lchown(dst, Some(uid), Some(gid))?;
        return Ok(());
    }
    if !kind.is_file() {
        // Devices, fifos, sockets of a context are not copied.
        return Ok(());
    }
    std::fs::copy(src, dst)?;
    std::os::unix::fs::lchown(dst, Some(uid), Some(gid))?;
    std::fs::set_permissions(
        dst,
        std::fs::Permissions::from_mode(mode.unwrap_or(meta.mode() & 0o7777)),
    )?;
    set_mtime(dst, meta.mtime())
}

/// Whether ADD extracts this file: a tar, plain or gzip (bzip2 and xz are
/// recognised, and refused when extracted).
fn is_archive(path: &Path) -> bool {
    let mut head = [0u8; 512];
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    let n = f.read(&mut head).unwrap_or(0);
    let head = &head[..n];
    head.starts_with(&[0x1f, 0x8b])
        || head.starts_with(b"BZh")
        || head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0])
        || (n >= 262 && &head[257..262] == b"ustar")
}

/// ADD's extraction of a local archive, through chapter 03's hardened
/// applier (no `..`, no absolute names, no writing through links).
fn extract_archive(path: &Path, dir: &Path) -> Result<(), String> {
    let mut head = [0u8; 6];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .map_err(|e| e.to_string())?;
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let reader: Box<dyn Read> = if n >= 2 && head[..2] == [0x1f, 0x8b] {
        Box::new(flate2::read::GzDecoder::new(std::io::BufReader::new(file)))
    } else if head.starts_with(b"BZh")
        || head[..n.min(6)] == [0xfd, b'7', b'z', b'X', b'Z', 0][..n.min(6)] && n == 6
    {
        return Err(format!("ADD {name}: bzip2 and xz archives are not extracted by mini-docker: use a plain or gzip tar"));
    } else {
        Box::new(std::io::BufReader::new(file))
    };
    chapter_03::apply::apply_layer(reader, dir)
        .map(|_| ())
        .map_err(|e| format!("ADD {name}: extracting the archive: {e}"))
}
