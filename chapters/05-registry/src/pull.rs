//! Pull: from a reference to an image in chapter 04's store.
//!
//! 1. `GET /v2/REPO/manifests/REF` with an `Accept` listing every manifest
//!    and index type we read; the digest of the bytes received is checked
//!    against the registry's `Docker-Content-Digest` and a pinned digest.
//! 2. An index: choose the manifest for the platform (attestations skipped),
//!    and fetch it by digest.
//! 3. The config, then the layers, several at once, each streamed straight
//!    into the store's checked ingest (an interrupted download resumes with
//!    `Range`) and, on a second thread, into chapter 04's unpacker: a layer
//!    is unpacked while it downloads, so a pull takes about as long as its
//!    slowest layer's decompression.

use crate::client::{describe_error, Client, Payload};
use crate::progress::Progress;
use chapter_04::digest::chain_ids;
use chapter_04::digest::Digest;
use chapter_04::manifest::*;
use chapter_04::store::{Expect, Store};
use chapter_04::unpack::{load_image, pipe, unpack_one, unpack_stream, Image, Limits};
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

/// Every manifest and index type we understand, for the Accept header.
pub const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

pub struct Options {
    pub platform: Platform,
    /// Layers downloaded at once.
    pub parallel: usize,
    /// Unpack layers as they arrive (into snapshots), or only store them.
    pub unpack: bool,
    pub limits: Limits,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            platform: chapter_04::unpack::host_platform(),
            parallel: 3,
            unpack: true,
            limits: Limits::default(),
        }
    }
}

/// `os/arch[/variant]`, e.g. `linux/arm64`.
pub fn parse_platform(text: &str) -> Result<Platform, String> {
    let parts: Vec<&str> = text.split('/').collect();
    match parts.as_slice() {
        [os, arch] => Ok(Platform {
            os: os.to_string(),
            architecture: arch.to_string(),
            variant: None,
        }),
        [os, arch, v] => Ok(Platform {
            os: os.to_string(),
            architecture: arch.to_string(),
            variant: Some(v.to_string()),
        }),
        _ => Err(format!(
            "invalid platform {text:?}: use os/arch, e.g. linux/amd64"
        )),
    }
}

#[derive(Debug)]
pub struct Pulled {
    /// The name in the local store.
    pub name: String,
    /// The platform manifest pulled.
    pub manifest: Descriptor,
    pub layers: usize,
    pub downloaded_bytes: u64,
}

/// A manifest or index as received: exact bytes, type, digest.
pub struct Fetched {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub digest: Digest,
}

// ANCHOR: fetch_manifest
// exercise 5.6: fetch a manifest, and check that its bytes are what was named
// builds on: 5.3
// hint: GET /v2/REPO/manifests/REF (a tag or a digest) with an Accept header
//   listing every manifest type this client reads (ACCEPT): a registry
//   answers with the best type the client accepts, so a client that omits
//   one gets a converted or older document. Keep the exact bytes: a
//   manifest's digest is the digest of those bytes, not of any re-encoding.
// hint: Check the digest two ways: the registry's Docker-Content-Digest
//   header (when it is sha256) and, when the reference pinned one (`pinned`),
//   that too. The media type is the document's own "mediaType", else the
//   Content-Type (without parameters). 404 says "manifest unknown"; a
//   schema 1 manifest (schemaVersion 1) is refused with the reason. Read at
//   most MAX_JSON bytes.
// hint: The OCI distribution spec, "Pulling manifests" and "Content
//   Digests"; Docker's deprecation of "Pushing and pulling with image manifest
//   v2 schema 1" (disabled by default since v26).
pub fn fetch_manifest(
    client: &Client,
    reference: &str,
    pinned: Option<&str>,
) -> Result<Fetched, String> {
    let url = client.url(&format!("manifests/{reference}"));
    let mut resp = client.send("GET", &url, &[("Accept", ACCEPT)], Payload::Empty)?;
    match resp.status().as_u16() {
        200 => {}
        404 => {
            return Err(format!(
                "{}: manifest unknown: no such image or tag in the registry",
                client.reference
            ))
        }
        _ => {
            return Err(describe_error(
                &format!("fetching the manifest of {}", client.reference),
                resp,
            ))
        }
    }
    let header = |n: &str| {
        resp.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(String::from)
    };
    let (content_type, registry_digest) = (header("content-type"), header("docker-content-digest"));
    let bytes = resp
        .body_mut()
        .with_config()
        .limit(MAX_JSON)
        .read_to_vec()
        .map_err(|e| format!("reading the manifest: {e}"))?;
    let digest = Digest::of(&bytes);
    if let Some(d) = registry_digest.filter(|d| d.starts_with("sha256:")) {
        if d != digest.as_str() {
            return Err(format!(
                "the registry says the manifest is {d}, but its bytes hash to {digest}"
            ));
        }
    }
    if let Some(p) = pinned {
        if p != digest.as_str() {
            return Err(format!(
                "asked for {p}, received a manifest hashing to {digest}"
            ));
        }
    }
    let json: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| format!("the manifest is not JSON: {e}"))?;
    let media_type = json["mediaType"]
        .as_str()
        .map(String::from)
        .or_else(|| content_type.map(|c| c.split(';').next().unwrap_or("").trim().to_string()))
        .unwrap_or_else(|| OCI_MANIFEST.into());
    // Schema 1 is Docker's application/vnd.docker.distribution.manifest.v1+json
    // (or +prettyjws); OCI's "manifest.v1" is a different, current type.
    if json["schemaVersion"] == 1
        || media_type.starts_with("application/vnd.docker.distribution.manifest.v1")
    {
        return Err(format!(
            "{} is a schema 1 manifest, deprecated since 2017 and not supported: push the image again with a current docker or skopeo",
            client.reference
        ));
    }
    Ok(Fetched {
        bytes,
        media_type,
        digest,
    })
}
// ANCHOR_END: fetch_manifest

// ANCHOR: resolve_locally
// exercise 5.5: resolve a tag with HEAD, and reuse the stored manifest
// builds on: 5.4
// hint: A tag moves; a digest does not. HEAD /v2/REPO/manifests/TAG (with
//   the same Accept as a GET) answers with the current digest in
//   Docker-Content-Digest and no body. When the store already has that blob,
//   nothing needs downloading: return it, read from the store, as Fetched.
// hint: Only for a reference with a tag and no digest (a digest needs no
//   resolving). Anything short of a 200 with a parseable digest that the
//   store has is Ok(None): the caller then fetches. The media type comes from
//   the stored document, else the HEAD's Content-Type. Docker Hub does not
//   count a HEAD against the pull limit, which is why clients do this.
// hint: The OCI distribution spec, "Checking if content exists in the
//   registry" (HEAD on manifests); Docker Hub's rate limit docs.
/// Resolves a tag to a digest with `HEAD` (cheap: Docker Hub does not count
/// it against the pull limit); when the store already has that manifest,
/// its stored bytes are used and no manifest is downloaded.
pub fn resolve_locally(client: &Client, store: &Store) -> Result<Option<Fetched>, String> {
    let Some(tag) = client
        .reference
        .tag
        .as_deref()
        .filter(|_| client.reference.digest.is_none())
    else {
        return Ok(None);
    };
    let head = client.send(
        "HEAD",
        &client.url(&format!("manifests/{tag}")),
        &[("Accept", ACCEPT)],
        Payload::Empty,
    )?;
    let digest = head
        .headers()
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
        .and_then(|d| Digest::parse(d).ok());
    let Some(digest) = digest.filter(|d| head.status() == 200 && store.has_blob(d)) else {
        return Ok(None);
    };
    let bytes = store
        .read_blob(&digest, MAX_JSON)
        .map_err(|e| e.to_string())?;
    let json: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| format!("stored manifest {digest}: {e}"))?;
    let header_type = head
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let media_type = json["mediaType"]
        .as_str()
        .map(String::from)
        .or(header_type)
        .unwrap_or_else(|| OCI_MANIFEST.into());
    Ok(Some(Fetched {
        bytes,
        media_type,
        digest,
    }))
}
// ANCHOR_END: resolve_locally

/// A blob download that picks up where it broke off, with `Range`.
pub struct Resuming<'a> {
    client: &'a Client,
    url: String,
    reader: Option<ureq::BodyReader<'static>>,
    offset: u64,
    size: u64,
    retries: u32,
    on_bytes: &'a dyn Fn(u64),
}

impl<'a> Resuming<'a> {
    /// A download of the `size` bytes at `url`, from the first byte.
    pub fn new(client: &'a Client, url: String, size: u64, on_bytes: &'a dyn Fn(u64)) -> Self {
        Resuming {
            client,
            url,
            reader: None,
            offset: 0,
            size,
            retries: 0,
            on_bytes,
        }
    }

    /// The same download, as if `offset` bytes had arrived already.
    pub fn from_offset(mut self, offset: u64) -> Self {
        self.offset = offset;
        self
    }

    // ANCHOR: connect
    // exercise 5.7: (re)connect a blob download, from where it stopped
    // builds on: 5.3
    // hint: GET /v2/REPO/blobs/DIGEST. A download that broke off after
    //   `offset` bytes asks for the rest only: a Range header "bytes=OFFSET-".
    //   The answer to a plain GET is 200 with the whole blob; to a Range, 206
    //   with the rest. Keep the body's reader in self.reader.
    // hint: A registry (or the storage it redirects to) may ignore Range and
    //   send 200 with everything: appending that would corrupt the blob. With
    //   an offset, 200 is an error that says the registry cannot resume; any
    //   other status is describe_error's. No Range header at offset 0.
    // hint: The OCI distribution spec, "Pulling blobs" (Range); RFC 9110
    //   section 14 (Range requests, 206 Partial Content).
    pub fn connect(&mut self) -> io::Result<()> {
        let range = format!("bytes={}-", self.offset);
        let headers: Vec<(&str, &str)> = if self.offset > 0 {
            vec![("Range", range.as_str())]
        } else {
            vec![]
        };
        let resp = self
            .client
            .send("GET", &self.url, &headers, Payload::Empty)
            .map_err(io::Error::other)?;
        let status = resp.status().as_u16();
        if self.offset > 0 && status == 200 {
            return Err(io::Error::other(format!(
                "the download of {} broke off after {} of {} bytes, and the registry cannot resume it \
                 (it answered a Range request with the whole blob)",
                self.url, self.offset, self.size
            )));
        }
        let ok = if self.offset > 0 {
            status == 206
        } else {
            status == 200
        };
        if !ok {
            return Err(io::Error::other(describe_error(
                &format!("downloading {}", self.url),
                resp,
            )));
        }
        self.reader = Some(resp.into_body().into_reader());
        Ok(())
    }
    // ANCHOR_END: connect
}

impl Read for Resuming<'_> {
    // ANCHOR: resuming_read
    // exercise 5.8: read a blob through breaks: resume where it stopped
    // builds on: 5.7
    // hint: Connect when there is no reader yet, read from it, count what came
    //   (self.offset, and on_bytes for the progress bar). A connection that
    //   breaks (an error), or ends (0 bytes) before `size` bytes came, is not
    //   the end: drop the reader and go round again; connect resumes from the
    //   offset with Range.
    // hint: A blob that really ends is 0 at offset == size. Give up after 5
    //   retries, sleeping a little longer each time (100 ms << retries): a
    //   registry that keeps breaking is an error, and a short read then reads
    //   as the end (the digest check will refuse it). A stalled connection ends
    //   in an error too: the client's body timeout.
    // hint: std::io::Read's contract (Ok(0) is end of file); the distribution
    //   spec "Pulling blobs".
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.reader.is_none() {
                self.connect()?;
            }
            let result = self.reader.as_mut().expect("connected").read(buf);
            match result {
                Ok(n) if n > 0 || self.offset >= self.size => {
                    self.offset += n as u64;
                    (self.on_bytes)(n as u64);
                    return Ok(n);
                }
                // Cut short (EOF before `size`) or broken: resume from here.
                Ok(_) | Err(_) if self.retries < 5 => {
                    self.retries += 1;
                    self.reader = None;
                    std::thread::sleep(std::time::Duration::from_millis(100 << self.retries));
                }
                Ok(_) => return Ok(0),
                Err(e) => return Err(e),
            }
        }
    }
    // ANCHOR_END: resuming_read
}

// ANCHOR: fetch_blob
// exercise 5.9: download a blob into the store, verified
// builds on: 5.8
// hint: A blob the store has is never downloaded again (report its size as
//   arrived). Otherwise stream it: a Resuming download of
//   client.url("blobs/DIGEST"), straight into Store::ingest with what the
//   descriptor promises (Expect::exactly: size and digest), so nothing
//   unchecked ever becomes a blob.
// hint: The descriptor comes from a manifest whose bytes were checked (5.5):
//   trusting it is trusting the digest chain. A registry that sends other
//   bytes, or more, or fewer, fails the ingest; the error names the blob
//   (its short digest).
// hint: The OCI distribution spec, "Pulling blobs"; the image spec,
//   descriptor.md "Verification".
/// Downloads blob `d` into the store (checked), unless it is there.
pub fn fetch_blob(
    client: &Client,
    store: &Store,
    d: &Descriptor,
    on_bytes: &dyn Fn(u64),
) -> Result<(), String> {
    if store.has_blob(&d.digest) {
        on_bytes(d.size);
        return Ok(());
    }
    let reader = Resuming::new(
        client,
        client.url(&format!("blobs/{}", d.digest)),
        d.size,
        on_bytes,
    );
    store
        .ingest(reader, &Expect::exactly(d))
        .map(|_| ())
        .map_err(|e| format!("blob {}: {e}", d.digest.short()))
}
// ANCHOR_END: fetch_blob

/// A reader that writes a copy of what is read through it to `copy`: the
/// download feeds the store's ingest, and the copy (a pipe) the unpacker.
/// A copy that fails (the unpacker stopped: it has its own error to report)
/// is given up; the download goes on into the store regardless.
struct Tee<R, W: Write> {
    inner: R,
    copy: Option<W>,
}

impl<R: Read, W: Write> Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(copy) = &mut self.copy {
            if copy.write_all(&buf[..n]).is_err() {
                self.copy = None;
            }
        }
        Ok(n)
    }
}

/// Layer `i` of `image` into the store and, with `unpack`, into its
/// snapshot. A layer in neither is downloaded and unpacked at once: the
/// download (ingest, as [`fetch_blob`]) passes every chunk to an unpacker on
/// a second thread. Both check the digest, so neither keeps a wrong byte:
/// a download that fails ends the unpacker's stream short, and its
/// temporary snapshot is removed.
fn fetch_layer(
    client: &Client,
    store: &Store,
    image: &Image,
    i: usize,
    options: &Options,
    on_bytes: &dyn Fn(u64),
) -> Result<(), String> {
    let layer = &image.manifest.layers[i];
    let chain = &chain_ids(&image.config.rootfs.diff_ids[..=i])[i];
    let snapshot = store.root().join("snapshots").join(chain.hex());
    if !options.unpack || snapshot.is_dir() {
        return fetch_blob(client, store, layer, on_bytes);
    }
    if store.has_blob(&layer.digest) {
        on_bytes(layer.size);
        return unpack_one(store, image, i, &options.limits)
            .map(|_| ())
            .map_err(|e| e.to_string());
    }
    let (from_download, copy) = pipe().map_err(|e| format!("a pipe to the unpacker: {e}"))?;
    let diff_id = &image.config.rootfs.diff_ids[i];
    std::thread::scope(|scope| {
        let unpacker = scope.spawn(move || {
            unpack_stream(
                store,
                from_download,
                layer,
                diff_id,
                &snapshot,
                &options.limits,
            )
        });
        let url = client.url(&format!("blobs/{}", layer.digest));
        let download = Tee {
            inner: Resuming::new(client, url, layer.size, on_bytes),
            copy: Some(io::BufWriter::with_capacity(256 << 10, copy)),
        };
        // Dropped at the end of the ingest, and the pipe with it: the end
        // of the unpacker's stream, whole or cut short.
        let stored = store.ingest(download, &Expect::exactly(layer));
        let unpacked = unpacker.join().expect("the unpacker panicked");
        let short = layer.digest.short();
        stored.map_err(|e| format!("blob {short}: {e}"))?;
        unpacked.map_err(|e| format!("layer {} ({short}): {e}", i + 1))
    })
}

/// Pulls `client.reference` into `store`.
pub fn pull(
    client: &Client,
    store: &Store,
    options: &Options,
    progress: &Progress,
) -> Result<Pulled, String> {
    let reference = &client.reference;
    let top = match resolve_locally(client, store)? {
        Some(known) => known,
        None => fetch_manifest(
            client,
            reference.manifest_ref(),
            reference.digest.as_deref(),
        )?,
    };
    store
        .put_bytes(&top.media_type, &top.bytes)
        .map_err(|e| e.to_string())?;
    let manifest = if top.media_type == OCI_INDEX || top.media_type == DOCKER_LIST {
        let index: Index = parse_json(&top.bytes, "image index")?;
        let chosen = chapter_04::manifest::select_platform(&index, &options.platform)?;
        let fetched = fetch_manifest(client, chosen.digest.as_str(), Some(chosen.digest.as_str()))?;
        store
            .put_bytes(&fetched.media_type, &fetched.bytes)
            .map_err(|e| e.to_string())?
    } else {
        Descriptor {
            media_type: top.media_type.clone(),
            digest: top.digest.clone(),
            size: top.bytes.len() as u64,
            annotations: None,
            platform: None,
        }
    };
    let parsed: Manifest = parse_json(
        &store
            .read_blob(&manifest.digest, MAX_JSON)
            .map_err(|e| e.to_string())?,
        "manifest",
    )?;
    fetch_blob(client, store, &parsed.config, &|_| {})?;
    let name = reference.local_name();

    // Layers: `parallel` threads take the next layer, each downloading and
    // unpacking it (a snapshot does not need the layers below it: overlay
    // stacks them at mount time).
    let image = load_image(store, &manifest, &options.platform).map_err(|e| e.to_string())?;
    let image = &image;
    let layers = &parsed.layers;
    let next = AtomicUsize::new(0);
    let downloaded = AtomicUsize::new(0);
    let (done_tx, done_rx) = mpsc::channel::<(usize, Result<(), String>)>();
    std::thread::scope(|scope| -> Result<(), String> {
        for _ in 0..options.parallel.clamp(1, 8).min(layers.len().max(1)) {
            let done_tx = done_tx.clone();
            let (next, downloaded) = (&next, &downloaded);
            scope.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(layer) = layers.get(i) else { return };
                let item = progress.item(layer.digest.short(), layer.size);
                let result = fetch_layer(client, store, image, i, options, &|n| {
                    item.advance(n);
                    downloaded.fetch_add(n as usize, Ordering::Relaxed);
                });
                item.finish(if result.is_ok() {
                    "downloaded"
                } else {
                    "failed"
                });
                if result.is_ok() && options.unpack {
                    progress.note(layer.digest.short(), "Pull complete");
                }
                if done_tx.send((i, result)).is_err() {
                    return;
                }
            });
        }
        drop(done_tx);
        for (_, result) in done_rx {
            if let Err(e) = result {
                next.store(usize::MAX / 2, Ordering::SeqCst); // stop the other downloaders
                return Err(e);
            }
        }
        Ok(())
    })?;
    store.tag(&name, &manifest).map_err(|e| e.to_string())?;
    Ok(Pulled {
        name,
        manifest,
        layers: layers.len(),
        downloaded_bytes: downloaded.load(Ordering::Relaxed) as u64,
    })
}
