//! Images: pull, push, build, load and save, list, tag, remove, history.

use super::*;

/// The build context as a tar, as Docker's CLI sends it: every file of
/// `dir` that `.dockerignore` does not exclude (the Dockerfile and the
/// `.dockerignore` always go), and the Dockerfile's name in it (one
/// outside the context is added under a name of its own).
pub(super) fn context_tar(
    dir: &std::path::Path,
    file: Option<&std::path::Path>,
) -> Result<(Vec<u8>, String)> {
    use chapter_06::build::ignore::Ignore;
    if !dir.is_dir() {
        return Err(anyhow!(
            "the build context {} is not a directory",
            dir.display()
        ));
    }
    let ignore = match std::fs::read_to_string(dir.join(".dockerignore")) {
        Ok(text) => Ignore::parse(&text).map_err(|e| anyhow!(e))?,
        Err(_) => Ignore::none(),
    };
    let dockerfile = file.map_or_else(|| dir.join("Dockerfile"), |f| f.to_path_buf());
    if !dockerfile.is_file() {
        return Err(anyhow!(
            "cannot find the Dockerfile {}: give it with -f",
            dockerfile.display()
        ));
    }
    let canon_dir = std::fs::canonicalize(dir)?;
    let canon_file = std::fs::canonicalize(&dockerfile)?;
    let inside = canon_file
        .strip_prefix(&canon_dir)
        .ok()
        .map(|r| r.to_string_lossy().into_owned());
    let mut tar = tar::Builder::new(Vec::new());
    tar.follow_symlinks(false);
    tar.mode(tar::HeaderMode::Complete);
    let name = inside
        .clone()
        .unwrap_or_else(|| format!(".dockerfile.{}", std::process::id()));
    let always = [name.as_str(), ".dockerignore"];
    chapter_06::build::ignore::walk(dir, &mut |rel, path, meta| {
        let excluded = ignore.excluded(rel) && !always.contains(&rel);
        if !excluded {
            tar.append_path_with_name(path, rel).map_err(|e| {
                std::io::Error::other(format!("adding {} to the context: {e}", path.display()))
            })?;
        }
        // Into an excluded directory only when an exception may be inside.
        Ok(!excluded || (meta.is_dir() && ignore.has_exceptions()))
    })?;
    if inside.is_none() {
        let bytes = std::fs::read(&dockerfile)?;
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        tar.append_data(&mut h, &name, bytes.as_slice())?;
    }
    Ok((tar.into_inner()?, name))
}

pub(super) async fn pull_image(
    client: &Client,
    image: &str,
    platform: Option<&str>,
    to_stderr: bool,
) -> Result<()> {
    let (from, tag) = match image.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r, t),
        _ => (image, "latest"),
    };
    let mut path = format!("/images/create?fromImage={}&tag={}", enc(from), enc(tag));
    if let Some(p) = platform {
        path += &format!("&platform={}", enc(p));
    }
    let body = client.stream("POST", &path, None).await?;
    match print_messages(body, to_stderr).await? {
        Some(e) => Err(anyhow!("pulling {image}: {e}")),
        None => Ok(()),
    }
}

#[derive(Args)]
pub(super) struct PullArgs {
    pub(super) image: String,
    #[arg(long)]
    pub(super) platform: Option<String>,
}

#[derive(Args)]
pub(super) struct LoadArgs {
    #[arg(short, long)]
    pub(super) input: std::path::PathBuf,
}

#[derive(Args)]
pub(super) struct ImagesArgs {
    #[arg(short, long)]
    pub(super) quiet: bool,
    /// NAME=VALUE: dangling=true|false, label=k[=v], reference, before, since
    #[arg(short, long)]
    pub(super) filter: Vec<String>,
}

#[derive(Args)]
pub(super) struct RmiArgs {
    #[arg(short, long)]
    pub(super) force: bool,
    #[arg(required = true)]
    pub(super) images: Vec<String>,
}

#[derive(Args)]
pub(super) struct TagArgs {
    pub(super) source: String,
    pub(super) target: String,
}

#[derive(Args)]
pub(super) struct HistoryArgs {
    #[arg(long)]
    pub(super) no_trunc: bool,
    #[arg(short, long)]
    pub(super) quiet: bool,
    pub(super) image: String,
}

#[derive(Args)]
pub(super) struct SaveArgs {
    /// The archive [default: standard output, when it is not a terminal]
    #[arg(short, long)]
    pub(super) output: Option<std::path::PathBuf>,
    /// docker (docker load reads it) or oci (an OCI image layout)
    #[arg(long, default_value = "docker")]
    pub(super) format: String,
    #[arg(required = true)]
    pub(super) images: Vec<String>,
}

#[derive(Args)]
pub(super) struct PushArgs {
    pub(super) image: String,
}

#[derive(Args)]
pub(super) struct BuildArgs {
    /// NAME[:TAG] for the image (may be given more than once)
    #[arg(short, long = "tag")]
    pub(super) tags: Vec<String>,
    /// The Dockerfile [default: CONTEXT/Dockerfile]
    #[arg(short, long)]
    pub(super) file: Option<std::path::PathBuf>,
    /// A build argument, KEY=VALUE (or KEY: its value from the environment)
    #[arg(long)]
    pub(super) build_arg: Vec<String>,
    /// Build up to this stage
    #[arg(long)]
    pub(super) target: Option<String>,
    /// Run every step, reusing nothing from the cache
    #[arg(long)]
    pub(super) no_cache: bool,
    /// A label for the image, KEY=VALUE
    #[arg(long)]
    pub(super) label: Vec<String>,
    /// Print only the image ID
    #[arg(short, long)]
    pub(super) quiet: bool,
    /// The network of RUN steps: none, host, or a network [default: the default bridge]
    #[arg(long)]
    pub(super) network: Option<String>,
    pub(super) context: std::path::PathBuf,
}

pub(super) async fn pull(client: &Client, args: PullArgs) -> Result<i32> {
    let PullArgs { image, platform } = args;
    pull_image(client, &image, platform.as_deref(), false).await?;
    Ok(0)
}

pub(super) async fn load(client: &Client, args: LoadArgs) -> Result<i32> {
    let LoadArgs { input } = args;
    let bytes = std::fs::read(&input).map_err(|e| anyhow!("reading {}: {e}", input.display()))?;
    let reply = client
        .post_bytes("/images/load", bytes, "application/x-tar")
        .await?;
    for line in String::from_utf8_lossy(&reply).lines() {
        if let Ok(v) = serde_json::from_str::<Value>(line) {
            print!("{}", v["stream"].as_str().unwrap_or(""));
        }
    }
    Ok(0)
}

pub(super) async fn images(client: &Client, args: ImagesArgs) -> Result<i32> {
    let ImagesArgs { quiet, filter } = args;
    let list = client.images(&filters_query(&filter)?).await?;
    if !quiet {
        println!(
            "{:<40} {:<12} {:<14} {:<16} SIZE",
            "REPOSITORY", "TAG", "IMAGE ID", "CREATED"
        );
    }
    for img in list {
        let id = img.id.trim_start_matches("sha256:");
        let short = &id[..id.len().min(12)];
        if quiet {
            println!("{short}");
            continue;
        }
        let tags: Vec<&str> = img.repo_tags.iter().flatten().map(String::as_str).collect();
        let none = ["<none>:<none>"];
        for tag in if tags.is_empty() {
            &none[..]
        } else {
            &tags[..]
        } {
            let (repo, t) = tag.rsplit_once(':').unwrap_or((tag, "latest"));
            println!(
                "{repo:<40} {t:<12} {short:<14} {:<16} {}",
                ago(img.created),
                human_size(img.size)
            );
        }
    }
    Ok(0)
}

pub(super) async fn rmi(client: &Client, args: RmiArgs) -> Result<i32> {
    let RmiArgs { force, images } = args;
    let mut code = 0;
    for image in images {
        match client
            .json(
                "DELETE",
                &format!("/images/{}?force={force}", enc(&image)),
                None,
            )
            .await
        {
            Ok(v) => {
                for item in v.as_array().into_iter().flatten() {
                    for (k, v) in item.as_object().into_iter().flatten() {
                        println!("{k}: {}", v.as_str().unwrap_or(""));
                    }
                }
            }
            Err(e) => {
                eprintln!("Error response from daemon: {e}");
                code = 1;
            }
        }
    }
    Ok(code)
}

pub(super) async fn tag(client: &Client, args: TagArgs) -> Result<i32> {
    let TagArgs { source, target } = args;
    let (repo, tag) = match target.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r.to_string(), t.to_string()),
        _ => (target.clone(), "latest".into()),
    };
    client
        .call(
            "POST",
            &format!(
                "/images/{}/tag?repo={}&tag={}",
                enc(&source),
                enc(&repo),
                enc(&tag)
            ),
            None,
        )
        .await?;
    Ok(0)
}

pub(super) async fn history(client: &Client, args: HistoryArgs) -> Result<i32> {
    let HistoryArgs {
        no_trunc,
        quiet,
        image,
    } = args;
    let list = client.history(&image).await?;
    if !quiet {
        println!(
            "{:<14} {:<16} {:<46} {:<10} COMMENT",
            "IMAGE", "CREATED", "CREATED BY", "SIZE"
        );
    }
    for h in list {
        let id = match h.id.strip_prefix("sha256:") {
            Some(hex) if !no_trunc => hex[..12.min(hex.len())].to_string(),
            _ => h.id.clone(),
        };
        if quiet {
            println!("{id}");
            continue;
        }
        let by = &h.created_by;
        let by = if no_trunc || by.chars().count() <= 45 {
            by.clone()
        } else {
            by.chars().take(44).collect::<String>() + "…"
        };
        let created = match h.created {
            t if t > 0 => ago(t),
            _ => "N/A".to_string(),
        };
        println!(
            "{id:<14} {created:<16} {by:<46} {:<10} {}",
            human_size(h.size),
            h.comment
        );
    }
    Ok(0)
}

pub(super) async fn save(client: &Client, args: SaveArgs) -> Result<i32> {
    let SaveArgs {
        output,
        format,
        images,
    } = args;
    let oci = match format.as_str() {
        "docker" => false,
        "oci" => true,
        other => return Err(anyhow!("unknown --format {other:?}: use docker or oci")),
    };
    if output.is_none() && std::io::stdout().is_terminal() {
        return Err(anyhow!(
            "refusing to write an archive to the terminal: use -o FILE or redirect the output"
        ));
    }
    let mut path = String::from("/images/get?");
    for i in &images {
        path += &format!("names={}&", enc(i));
    }
    if oci {
        path += "format=oci";
    }
    let body = client.stream("GET", &path, None).await?;
    write_archive(body, output.as_deref()).await?;
    Ok(0)
}

pub(super) async fn push(client: &Client, args: PushArgs) -> Result<i32> {
    let PushArgs { image } = args;
    let reference = chapter_05::Reference::parse(&image).map_err(|e| anyhow!(e))?;
    let (repo, tag) = split_name(&image);
    let auth = match chapter_05::auth::credentials_for(&reference.registry)
        .map_err(|e| anyhow!(e))?
    {
        Some(c) => {
            json!({"username": c.username, "password": c.secret, "serveraddress": reference.registry})
        }
        None => json!({}),
    };
    use base64::Engine as _;
    let header = base64::engine::general_purpose::URL_SAFE.encode(auth.to_string());
    let body = client
        .stream_with(
            &format!("/images/{}/push?tag={}", enc(repo), enc(tag)),
            Vec::new(),
            "application/json",
            &[("X-Registry-Auth", header)],
        )
        .await?;
    let failed = print_messages(body, false).await?;
    if let Some(e) = failed {
        eprintln!("{e}");
        return Ok(1);
    }
    Ok(0)
}

pub(super) async fn build(client: &Client, args: BuildArgs) -> Result<i32> {
    let BuildArgs {
        tags,
        file,
        build_arg,
        target,
        no_cache,
        label,
        quiet,
        network,
        context,
    } = args;
    let pairs =
        |list: &[String], what: &str, env: bool| -> Result<serde_json::Map<String, Value>> {
            let mut map = serde_json::Map::new();
            for item in list {
                match item.split_once('=') {
                    Some((k, v)) => {
                        map.insert(k.to_string(), json!(v));
                    }
                    None if env => {
                        if let Ok(v) = std::env::var(item) {
                            map.insert(item.clone(), json!(v));
                        }
                    }
                    None => return Err(anyhow!("--{what} {item:?}: write KEY=VALUE")),
                }
            }
            Ok(map)
        };
    let args = pairs(&build_arg, "build-arg", true)?;
    let labels = pairs(&label, "label", false)?;
    let (tar, dockerfile) = context_tar(&context, file.as_deref())?;
    let mut path = format!(
        "/build?dockerfile={}&buildargs={}&labels={}",
        enc(&dockerfile),
        enc(&Value::Object(args).to_string()),
        enc(&Value::Object(labels).to_string())
    );
    for t in &tags {
        path += &format!("&t={}", enc(t));
    }
    if let Some(t) = &target {
        path += &format!("&target={}", enc(t));
    }
    if no_cache {
        path += "&nocache=1";
    }
    if quiet {
        path += "&q=1";
    }
    if let Some(n) = &network {
        path += &format!("&networkmode={}", enc(n));
    }
    let body = client
        .stream_with(&path, tar, "application/x-tar", &[])
        .await?;
    if let Some(e) = print_messages(body, false).await? {
        eprintln!("{e}");
        return Ok(1);
    }
    Ok(0)
}
