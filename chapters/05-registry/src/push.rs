//! Push: an image from chapter 04's store to a registry. Blobs first (a
//! manifest naming a blob the registry lacks is refused), the manifest
//! last, with its media type as `Content-Type`.
//!
//! For each blob: `HEAD` it (already there: skip); else, when another
//! repository of the same registry has it, ask for a cross-repository
//! *mount* (no bytes sent); else upload it: `POST` opens an upload session
//! and answers with a `Location`; then either one `PUT …?digest=` with the
//! whole blob (monolithic), or `PATCH` chunks, each answered with the next
//! `Location`, and a final `PUT …?digest=`.

use crate::client::{describe_error, Client, Payload};
use crate::progress::Progress;
use chapter_04::manifest::{Descriptor, MAX_JSON};
use chapter_04::store::Store;
use chapter_04::unpack::{host_platform, load_image};
use std::io::Read;

pub struct Options {
    /// Blobs larger than this go up in chunks of this size.
    pub chunk_size: u64,
    /// A repository on the same registry that may already hold the blobs.
    pub mount_from: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            chunk_size: 32 << 20,
            mount_from: None,
        }
    }
}

/// What happened to one blob.
#[derive(Debug, PartialEq, Eq)]
pub enum Sent {
    AlreadyThere,
    Mounted,
    Uploaded,
    UploadedInChunks(usize),
}

fn location(client: &Client, resp: &ureq::http::Response<ureq::Body>) -> Result<String, String> {
    let loc = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .ok_or("the registry opened an upload without a Location")?;
    Ok(
        if loc.starts_with("http://") || loc.starts_with("https://") {
            loc.to_string()
        } else {
            format!("{}{loc}", client.base())
        },
    )
}

fn with_query(url: &str, query: &str) -> String {
    format!("{url}{}{query}", if url.contains('?') { '&' } else { '?' })
}

// ANCHOR: push_blob
pub fn push_blob(
    client: &Client,
    store: &Store,
    d: &Descriptor,
    options: &Options,
) -> Result<Sent, String> {
    let head = client.send(
        "HEAD",
        &client.url(&format!("blobs/{}", d.digest)),
        &[],
        Payload::Empty,
    )?;
    if head.status() == 200 {
        return Ok(Sent::AlreadyThere);
    }
    let mut start = client.url("blobs/uploads/");
    if let Some(from) = &options.mount_from {
        start = with_query(&start, &format!("mount={}&from={from}", d.digest));
    }
    let resp = client.send("POST", &start, &[], Payload::Bytes(&[]))?;
    match resp.status().as_u16() {
        201 => return Ok(Sent::Mounted),
        202 => {}
        _ => return Err(describe_error("opening an upload", resp)),
    }
    let mut upload = location(client, &resp)?;
    let path = store.blob_path(&d.digest);
    if d.size <= options.chunk_size {
        let resp = client.send(
            "PUT",
            &with_query(&upload, &format!("digest={}", d.digest)),
            &[("Content-Type", "application/octet-stream")],
            Payload::File(&path),
        )?;
        return match resp.status().as_u16() {
            201 => Ok(Sent::Uploaded),
            _ => Err(describe_error(
                &format!("uploading blob {}", d.digest.short()),
                resp,
            )),
        };
    }
    let mut file = std::fs::File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let (mut sent, mut chunks) = (0u64, 0usize);
    let mut buf = vec![0u8; options.chunk_size as usize];
    while sent < d.size {
        let n = (d.size - sent).min(options.chunk_size) as usize;
        file.read_exact(&mut buf[..n])
            .map_err(|e| format!("reading blob {}: {e}", d.digest.short()))?;
        let range = format!("{}-{}", sent, sent + n as u64 - 1);
        let resp = client.send(
            "PATCH",
            &upload,
            &[
                ("Content-Type", "application/octet-stream"),
                ("Content-Range", &range),
            ],
            Payload::Bytes(&buf[..n]),
        )?;
        if resp.status() != 202 {
            return Err(describe_error(
                &format!("uploading bytes {range} of blob {}", d.digest.short()),
                resp,
            ));
        }
        upload = location(client, &resp)?; // each answer names where to continue
        sent += n as u64;
        chunks += 1;
    }
    let resp = client.send(
        "PUT",
        &with_query(&upload, &format!("digest={}", d.digest)),
        &[],
        Payload::Bytes(&[]),
    )?;
    match resp.status().as_u16() {
        201 => Ok(Sent::UploadedInChunks(chunks)),
        _ => Err(describe_error(
            &format!("finishing the upload of blob {}", d.digest.short()),
            resp,
        )),
    }
}
// ANCHOR_END: push_blob

/// Pushes image `local` (a tag in `store`) as `client.reference`.
pub fn push(
    client: &Client,
    store: &Store,
    local: &str,
    options: &Options,
    progress: &Progress,
) -> Result<Descriptor, String> {
    let image = load_image(
        store,
        &store.resolve(local).map_err(|e| e.to_string())?,
        &host_platform(),
    )
    .map_err(|e| e.to_string())?;
    for d in image
        .manifest
        .layers
        .iter()
        .chain(std::iter::once(&image.manifest.config))
    {
        let item = progress.item(d.digest.short(), d.size);
        let sent = push_blob(client, store, d, options)?;
        item.advance(d.size);
        item.finish(
            match sent {
                Sent::AlreadyThere => "already there".into(),
                Sent::Mounted => "mounted".into(),
                Sent::Uploaded => "uploaded".into(),
                Sent::UploadedInChunks(n) => format!("uploaded in {n} chunks"),
            }
            .as_str(),
        );
    }
    let d = &image.manifest_descriptor;
    let bytes = store
        .read_blob(&d.digest, MAX_JSON)
        .map_err(|e| e.to_string())?;
    let tag = client
        .reference
        .tag
        .clone()
        .unwrap_or_else(|| d.digest.to_string());
    let resp = client.send(
        "PUT",
        &client.url(&format!("manifests/{tag}")),
        &[("Content-Type", &d.media_type)],
        Payload::Bytes(&bytes),
    )?;
    if resp.status() != 201 {
        return Err(describe_error(
            &format!("pushing the manifest of {}", client.reference),
            resp,
        ));
    }
    if let Some(echo) = resp
        .headers()
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
    {
        if echo != d.digest.as_str() {
            return Err(format!(
                "the registry stored the manifest as {echo}, not {}",
                d.digest
            ));
        }
    }
    Ok(d.clone())
}
