//! `mini-docker cp`: files between a container and the host, as tar archives.

use super::*;

/// `cp SRC DST`, one side `CONTAINER:PATH`, Docker's rules (see
/// [`chapter_06::cp`]). Returns what to say on success.
pub(super) async fn copy(
    client: &Client,
    src: &str,
    dst: &str,
    archive: bool,
    follow: bool,
) -> Result<String> {
    use chapter_06::archive::PathStat;
    use chapter_06::cp::{self as rules, split_target};
    let archive_path = |c: &str, p: &str, extra: &str| {
        format!("/containers/{}/archive?path={}{extra}", enc(c), enc(p))
    };
    let stat_of = |r: &hyper::Response<hyper::body::Incoming>| -> Result<PathStat> {
        use base64::Engine as _;
        let header = r
            .headers()
            .get("X-Docker-Container-Path-Stat")
            .ok_or_else(|| anyhow!("the daemon sent no X-Docker-Container-Path-Stat header"))?;
        let json = base64::engine::general_purpose::STANDARD.decode(header.as_bytes())?;
        Ok(serde_json::from_slice(&json)?)
    };
    match (split_target(src), split_target(dst)) {
        (Some(_), Some(_)) => Err(anyhow!(
            "copying between containers is not supported: copy to the host, then on"
        )),
        (None, None) => Err(anyhow!(
            "must specify at least one container source: CONTAINER:PATH"
        )),
        (Some((container, path)), None) => {
            let mut path = path.to_string();
            let mut response = client
                .request("GET", &archive_path(container, &path, ""), Vec::new(), "")
                .await?;
            let mut stat = stat_of(&response)?;
            if follow && !stat.link_target.is_empty() {
                path = stat.link_target.clone();
                response = client
                    .request("GET", &archive_path(container, &path, ""), Vec::new(), "")
                    .await?;
                stat = stat_of(&response)?;
            }
            if dst == "-" {
                write_archive(response.into_body(), None).await?;
                return Ok(String::new());
            }
            let (dir, name) =
                rules::local_destination(std::path::Path::new(dst), stat.is_dir(), &stat.name)?;
            let mut spool = tempfile::tempfile()?;
            let mut failed = None;
            each_chunk(response.into_body(), |chunk| {
                if failed.is_none() {
                    failed = spool.write_all(chunk).err();
                }
            })
            .await?;
            if let Some(e) = failed {
                return Err(anyhow!("spooling the archive: {e}"));
            }
            use std::io::Seek;
            spool.seek(std::io::SeekFrom::Start(0))?;
            let old = if stat.name == "/" {
                "."
            } else {
                stat.name.as_str()
            };
            rules::extract_local(spool, &dir, old, &name)?;
            Ok(format!(
                "Successfully copied from {container}:{path} to {dst}"
            ))
        }
        (None, Some((container, path))) => {
            // A missing container first, in so many words: a HEAD for a
            // path has no body to say which of the two is missing.
            client
                .call("GET", &format!("/containers/{}/json", enc(container)), None)
                .await?;
            let extra = format!(
                "&noOverwriteDirNonDir=true{}",
                if archive { "&copyUIDGID=true" } else { "" }
            );
            if src == "-" {
                let mut tar = Vec::new();
                std::io::stdin().lock().read_to_end(&mut tar)?;
                client
                    .request(
                        "PUT",
                        &archive_path(container, path, &extra),
                        tar,
                        "application/x-tar",
                    )
                    .await?;
                return Ok(String::new());
            }
            let local = std::path::Path::new(src);
            let meta = if follow {
                std::fs::metadata(local)
            } else {
                std::fs::symlink_metadata(local)
            }
            .map_err(|e| anyhow!("{src}: {e}"))?;
            let stat = client
                .request("HEAD", &archive_path(container, path, ""), Vec::new(), "")
                .await;
            // Into an existing directory under the source's name; else the
            // destination is the new name, in its parent.
            let (dir, name) = match stat {
                Ok(r) if stat_of(&r)?.is_dir() => (path.to_string(), rules::root_name(src)),
                Ok(_) if meta.is_dir() => {
                    return Err(anyhow!(
                        "cannot copy a directory to a file: {container}:{path} is a file"
                    ))
                }
                Ok(_) => rules::container_parent(path),
                Err(e)
                    if e.downcast_ref::<ApiError>()
                        .is_some_and(|a| a.status == hyper::StatusCode::NOT_FOUND) =>
                {
                    let (parent, name) = rules::container_parent(path);
                    if path.ends_with('/') && !meta.is_dir() {
                        return Err(anyhow!(
                            "destination directory {container}:{path} does not exist"
                        ));
                    }
                    (parent, name)
                }
                Err(e) => return Err(e),
            };
            let tar = rules::tar_local(local, &name, follow)?;
            let size = tar.len();
            client
                .request(
                    "PUT",
                    &archive_path(container, &dir, &extra),
                    tar,
                    "application/x-tar",
                )
                .await?;
            Ok(format!(
                "Successfully copied {} to {container}:{path}",
                human_size(size as u64)
            ))
        }
    }
}

/// Writes a tar the daemon streams to `output` (written beside it and
/// renamed: a failed transfer leaves no half archive under the name), or
/// to standard output.
pub(super) async fn write_archive(
    body: hyper::body::Incoming,
    output: Option<&std::path::Path>,
) -> Result<()> {
    let mut sink: Box<dyn Write> = Box::new(std::io::stdout().lock());
    let mut partial = None;
    if let Some(out) = output {
        let dir = out
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        let tmp = tempfile::NamedTempFile::new_in(dir)
            .map_err(|e| anyhow!("writing in {}: {e}", dir.display()))?;
        sink = Box::new(tmp.reopen()?);
        partial = Some(tmp);
    }
    let mut failed = None;
    each_chunk(body, |chunk| {
        if failed.is_none() {
            if let Err(e) = sink.write_all(chunk) {
                failed = Some(e);
            }
        }
    })
    .await?;
    if let Some(e) = failed {
        return Err(anyhow!("writing the archive: {e}"));
    }
    sink.flush()?;
    if let (Some(tmp), Some(out)) = (partial, output) {
        tmp.persist(out)
            .map_err(|e| anyhow!("writing {}: {e}", out.display()))?;
    }
    Ok(())
}

#[derive(Args)]
pub(super) struct CpArgs {
    /// Keep the source's owners (uid:gid) in the container
    #[arg(short, long)]
    pub(super) archive: bool,
    /// Follow a symlink given as the source
    #[arg(short = 'L', long)]
    pub(super) follow_link: bool,
    /// Print nothing on success
    #[arg(short, long)]
    pub(super) quiet: bool,
    pub(super) src: String,
    pub(super) dst: String,
}

pub(super) async fn cp(client: &Client, args: CpArgs) -> Result<i32> {
    let CpArgs {
        archive,
        follow_link,
        quiet,
        src,
        dst,
    } = args;
    let message = copy(client, &src, &dst, archive, follow_link).await?;
    if !quiet && !message.is_empty() {
        eprintln!("{message}");
    }
    Ok(0)
}
