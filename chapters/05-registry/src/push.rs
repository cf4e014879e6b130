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
use chapter_04::manifest::{Descriptor, Index, DOCKER_LIST, MAX_JSON, OCI_INDEX};
use chapter_04::store::Store;
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
// exercise 5.10: push one blob: skip, mount, or upload
// builds on: 5.3
// hint: Three ways to get a blob into a repository, cheapest first. HEAD
//   /v2/REPO/blobs/DIGEST: 200 means it is there already. Else POST
//   /v2/REPO/blobs/uploads/, with ?mount=DIGEST&from=OTHER when the blob is
//   known in another repository of the same registry (options.mount_from):
//   201 means the registry linked it, nothing sent. 202 opens an upload whose
//   Location (maybe relative: location()) is where the bytes go.
// hint: A blob up to options.chunk_size goes in one PUT to
//   Location?digest=DIGEST with the file as the body (201: Sent::Uploaded);
//   a bigger one is upload_chunks' work (5.10). Location may already have a
//   query: with_query adds with '&'.
// hint: The OCI distribution spec, "Pushing blobs" (monolithic, chunked) and
//   "Mounting a blob from another repository".
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
    let upload = location(client, &resp)?;
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
    upload_chunks(client, &path, d, &upload, options.chunk_size)
}
// ANCHOR_END: push_blob

// ANCHOR: upload_chunks
// exercise 5.11: upload a big blob in chunks
// builds on: 5.10
// hint: A blob too big for one request goes up as PATCHes to the upload's
//   Location, each with the next `chunk` bytes and a Content-Range "START-END"
//   (inclusive: the first chunk of 1000 bytes is "0-999"). Each answer is 202
//   with the Location to continue at: the next PATCH goes there, not to the
//   first URL. An empty PUT to the last Location with ?digest=DIGEST closes
//   the upload (201).
// hint: Read the file in chunk-sized pieces (read_exact: the last piece is
//   shorter); count the chunks for the answer (Sent::UploadedInChunks). Errors
//   say which bytes of which blob (describe_error has the registry's words).
// hint: The OCI distribution spec, "Pushing a blob in chunks".
/// PATCHes `path`'s bytes to the open upload at `upload`, then closes it.
fn upload_chunks(
    client: &Client,
    path: &std::path::Path,
    d: &Descriptor,
    upload: &str,
    chunk: u64,
) -> Result<Sent, String> {
    let mut upload = upload.to_string();
    let mut file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let (mut sent, mut chunks) = (0u64, 0usize);
    let mut buf = vec![0u8; chunk as usize];
    while sent < d.size {
        let n = (d.size - sent).min(chunk) as usize;
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
// ANCHOR_END: upload_chunks

/// Pushes one manifest: its blobs, then itself under `name` (a tag or its digest).
fn push_manifest(
    client: &Client,
    store: &Store,
    d: &Descriptor,
    name: &str,
    options: &Options,
    progress: &Progress,
) -> Result<(), String> {
    let bytes = store
        .read_blob(&d.digest, MAX_JSON)
        .map_err(|e| e.to_string())?;
    let manifest: chapter_04::manifest::Manifest =
        chapter_04::manifest::parse_json(&bytes, "manifest")?;
    for blob in manifest
        .layers
        .iter()
        .chain(std::iter::once(&manifest.config))
    {
        let item = progress.item(blob.digest.short(), blob.size);
        let sent = push_blob(client, store, blob, options)?;
        item.advance(blob.size);
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
    put_manifest(client, d, &bytes, name)
}

// ANCHOR: put_manifest
// exercise 5.12: push a manifest, after its blobs, and check what the registry kept
// builds on: 5.11
// hint: The manifest goes last: a registry refuses one whose blobs it does
//   not have. PUT /v2/REPO/manifests/NAME (a tag, or the manifest's own
//   digest for an index's children) with the exact stored bytes as the body
//   and their media type as Content-Type (the registry stores bytes, and the
//   type decides how it reads them). 201 is success.
// hint: The registry answers with the digest it stored in
//   Docker-Content-Digest: when it is there and differs from ours, the
//   bytes were changed on the way: an error. Errors name the manifest and the
//   reference (describe_error has the registry's own message).
// hint: The OCI distribution spec, "Pushing Manifests".
/// `PUT /v2/REPO/manifests/NAME` with the exact bytes and their media type.
pub fn put_manifest(
    client: &Client,
    d: &Descriptor,
    bytes: &[u8],
    name: &str,
) -> Result<(), String> {
    let resp = client.send(
        "PUT",
        &client.url(&format!("manifests/{name}")),
        &[("Content-Type", &d.media_type)],
        Payload::Bytes(bytes),
    )?;
    if resp.status() != 201 {
        return Err(describe_error(
            &format!(
                "pushing the manifest {} of {}",
                d.digest.short(),
                client.reference
            ),
            resp,
        ));
    }
    match resp
        .headers()
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
    {
        Some(echo) if echo != d.digest.as_str() => Err(format!(
            "the registry stored the manifest as {echo}, not {}",
            d.digest
        )),
        _ => Ok(()),
    }
}
// ANCHOR_END: put_manifest

/// Pushes image `local` (a tag in `store`) as `client.reference`. For an
/// index, every platform's manifest goes first (by digest), the index last.
pub fn push(
    client: &Client,
    store: &Store,
    local: &str,
    options: &Options,
    progress: &Progress,
) -> Result<Descriptor, String> {
    let d = store.resolve(local).map_err(|e| e.to_string())?;
    let tag = client
        .reference
        .tag
        .clone()
        .unwrap_or_else(|| d.digest.to_string());
    if d.media_type == OCI_INDEX || d.media_type == DOCKER_LIST {
        let bytes = store
            .read_blob(&d.digest, MAX_JSON)
            .map_err(|e| e.to_string())?;
        let index: Index = chapter_04::manifest::parse_json(&bytes, "index")?;
        for child in &index.manifests {
            if !store.has_blob(&child.digest) {
                return Err(format!(
                    "the index {local} lists a manifest {} this store does not have (pulled for one platform only?)",
                    child.digest.short()
                ));
            }
            push_manifest(
                client,
                store,
                child,
                child.digest.as_str(),
                options,
                progress,
            )?;
        }
        put_manifest(client, &d, &bytes, &tag)?;
    } else {
        push_manifest(client, store, &d, &tag, options, progress)?;
    }
    Ok(d)
}
