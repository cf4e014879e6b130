//! From blobs to directories overlayfs can stack: each layer unpacked once
//! per ChainID into `snapshots/CHAINID/`, shared by every image whose stack
//! contains it.
//!
//! One streaming pass per layer, nothing buffered whole:
//!
//! ```text
//! blob file → sha256 (must equal the manifest's digest)
//!           → decompress (gzip, zstd, or none)
//!           → sha256 (must equal the config's DiffID)
//!           → apply entries (chapter 03's applier, under a strict policy)
//! ```
//!
//! The layer goes into a temporary directory, renamed into place only when
//! both digests matched. A failure removes the temporary directory: the
//! store is as it was.

use crate::digest::{chain_ids, Digest, HashingReader};
use crate::manifest::{
    layer_compression, parse_json, select_platform, Compression, Descriptor, ImageConfig, Index,
    Manifest, Platform, DOCKER_LIST, MAX_JSON, OCI_INDEX,
};
use crate::store::Store;
use chapter_03::apply::{apply_layer_with, Devices, Policy};
use std::io::{self, BufReader, Read, Write};
use std::path::PathBuf;

/// Caps against decompression bombs and absurd layers.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Most bytes one layer may decompress to.
    pub max_layer_bytes: u64,
    /// Most entries in one layer.
    pub max_entries: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_layer_bytes: 32 << 30,
            max_entries: 2_000_000,
        }
    }
}

/// An image's documents, read from the store.
#[derive(Clone, Debug)]
pub struct Image {
    pub manifest_descriptor: Descriptor,
    pub manifest: Manifest,
    pub config: ImageConfig,
}

/// This machine's platform in OCI terms.
pub fn host_platform() -> Platform {
    let architecture = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    Platform {
        architecture: architecture.into(),
        os: "linux".into(),
        variant: None,
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Reads the manifest (choosing the platform in an index) and config of
/// the image `descriptor` names.
pub fn load_image(
    store: &Store,
    descriptor: &Descriptor,
    platform: &Platform,
) -> io::Result<Image> {
    let mut descriptor = descriptor.clone();
    if descriptor.media_type == OCI_INDEX || descriptor.media_type == DOCKER_LIST {
        let bytes = store.read_blob(&descriptor.digest, MAX_JSON)?;
        let index: Index = parse_json(&bytes, "image index").map_err(invalid)?;
        descriptor = select_platform(&index, platform).map_err(invalid)?;
    }
    let bytes = store.read_blob(&descriptor.digest, MAX_JSON)?;
    let manifest: Manifest = parse_json(&bytes, "manifest").map_err(invalid)?;
    let bytes = store.read_blob(&manifest.config.digest, MAX_JSON)?;
    let config: ImageConfig = parse_json(&bytes, "image config").map_err(invalid)?;
    if config.rootfs.diff_ids.len() != manifest.layers.len() {
        return Err(invalid(format!(
            "the manifest has {} layers but the config lists {} DiffIDs",
            manifest.layers.len(),
            config.rootfs.diff_ids.len()
        )));
    }
    Ok(Image {
        manifest_descriptor: descriptor,
        manifest,
        config,
    })
}

/// Unpacks every layer not unpacked yet; returns the snapshot directories,
/// bottom layer first (overlay's lower layers).
pub fn unpack(store: &Store, image: &Image, limits: &Limits) -> io::Result<Vec<PathBuf>> {
    (0..image.manifest.layers.len())
        .map(|i| unpack_one(store, image, i, limits))
        .collect()
}

// ANCHOR: unpack_one
// exercise 4.8: unpack a layer once per stack: its snapshot is named by its ChainID
// builds on: 4.4, 4.7
// hint: A layer is only meaningful on top of the exact layers below it, so
//   its unpacked directory is named by the ChainID of the stack up to it:
//   snapshots/CHAINID (the hex). Two images that share a base share its
//   snapshots; a layer already unpacked on that stack is not unpacked again.
// hint: The ChainIDs come from the config's DiffIDs up to layer i. Only when
//   the directory does not exist, unpack_layer(…) makes it (it renames into
//   place itself: a snapshot is complete or absent). Errors say which layer
//   (its number from 1, its short digest).
// hint: The OCI image spec, config.md "Layer ChainID"; containerd's
//   snapshotter docs (a snapshot's key is its ChainID).
/// Unpacks layer `i` (its blob must be in the store, and the layers below
/// it unpacked) unless its snapshot exists; returns the snapshot directory.
pub fn unpack_one(store: &Store, image: &Image, i: usize, limits: &Limits) -> io::Result<PathBuf> {
    let chains = chain_ids(&image.config.rootfs.diff_ids[..=i]);
    let layer = &image.manifest.layers[i];
    let dir = store.root().join("snapshots").join(chains[i].hex());
    if !dir.is_dir() {
        unpack_layer(store, layer, &image.config.rootfs.diff_ids[i], &dir, limits).map_err(
            |e| {
                io::Error::new(
                    e.kind(),
                    format!("layer {} ({}): {e}", i + 1, layer.digest.short()),
                )
            },
        )?;
    }
    Ok(dir)
}
// ANCHOR_END: unpack_one

/// A reader that fails once more than `left` bytes pass.
struct Capped<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n as u64 > self.left {
            return Err(invalid(
                "the layer decompresses to more than the limit allows (a decompression bomb?)"
                    .into(),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// A pipe(2) of 1 MiB (64 KiB by default), for streams between threads:
/// read and written 256 KiB a time, its two sides wake each other seldom
/// (the tar reader alone reads 512 bytes a time).
pub fn pipe() -> io::Result<(io::PipeReader, io::PipeWriter)> {
    let (reader, writer) = io::pipe()?;
    // Best effort: a smaller pipe is only slower.
    let _ = nix::fcntl::fcntl(&writer, nix::fcntl::FcntlArg::F_SETPIPE_SZ(1 << 20));
    Ok((reader, writer))
}

/// `gunzip | tar x` in one process: decompresses `compressed` on a thread
/// of its own into a pipe, and runs `apply` on this thread on the pipe's
/// other end, so that decompressing and applying overlap (with two cores an
/// unpack takes about as long as the decompression alone). Returns what
/// `apply` returned and the compressed reader, read to where the
/// decompressor stopped.
///
/// A broken compressed stream explains a short tar, so the decompressor's
/// error comes first; a tar refused part-way explains the decompressor's
/// broken pipe, so then `apply`'s.
pub fn decompress_piped<R: Read + Send, T>(
    mut compressed: R,
    compression: Compression,
    apply: impl FnOnce(&mut dyn Read) -> io::Result<T>,
) -> io::Result<(T, R)> {
    let (from_pipe, mut to_pipe) = pipe()?;
    std::thread::scope(|scope| {
        let decompressor = scope.spawn(move || -> io::Result<R> {
            {
                let mut decompressed: Box<dyn Read + '_> = match compression {
                    Compression::None => Box::new(&mut compressed),
                    Compression::Gzip => {
                        Box::new(flate2::read::MultiGzDecoder::new(&mut compressed))
                    }
                    Compression::Zstd => Box::new(zstd::Decoder::new(&mut compressed)?),
                };
                let mut buf = vec![0; 256 << 10];
                loop {
                    match decompressed.read(&mut buf)? {
                        0 => break,
                        n => to_pipe.write_all(&buf[..n])?,
                    }
                }
            }
            Ok(compressed) // and the pipe closes: the end of the stream
        });
        // The pipe's end is dropped with the reader: a decompressor still
        // writing then stops with a broken pipe.
        let applied = apply(&mut BufReader::with_capacity(256 << 10, from_pipe));
        let decompressed = decompressor
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the decompressing thread panicked")))
            .map_err(|e| match e.kind() {
                io::ErrorKind::BrokenPipe => e,
                kind => io::Error::new(
                    kind,
                    format!("decompressing the layer ({compression:?}): {e}"),
                ),
            });
        match (decompressed, applied) {
            (Err(e), Err(first)) if e.kind() == io::ErrorKind::BrokenPipe => Err(first),
            (Err(e), _) | (Ok(_), Err(e)) => Err(e),
            (Ok(compressed), Ok(applied)) => Ok((applied, compressed)),
        }
    })
}

/// Unpacks layer `layer` from its blob in the store into `dir` (see
/// [`unpack_stream`]).
pub fn unpack_layer(
    store: &Store,
    layer: &Descriptor,
    diff_id: &Digest,
    dir: &PathBuf,
    limits: &Limits,
) -> io::Result<()> {
    let blob = store.open_blob(&layer.digest)?;
    unpack_stream(store, blob, layer, diff_id, dir, limits)
}

// ANCHOR: unpack_stream
// exercise 4.7: unpack one layer in a single verified stream
// builds on: 4.2
// hint: One pass over the compressed bytes, nothing held whole: `blob` is
//   the store's file or a download as it arrives (chapter 05 unpacks while
//   it downloads). Hashed (it must equal the manifest's digest and size,
//   read at most size + 1 bytes), decompressed by its media type (gzip,
//   zstd, or none: decompress_piped does it on a thread of its own, so that
//   it overlaps with the rest), hashed again (it must equal the config's DiffID), capped
//   (a decompression bomb stops at limits.max_layer_bytes), and applied by
//   chapter 03's apply_layer_with into a temporary directory in snapshots/.
//   Only when both digests match is it renamed to `dir`.
// hint: Read the uncompressed stream to its end (finish) before checking the
//   DiffID: the tar may end before its padding; and the compressed one too,
//   or bytes after the end of the gzip stream go unhashed. A failure must leave nothing:
//   the TempDir removes itself when dropped; keep() it only to rename. If the
//   rename loses a race to another unpack of the same layer, that is fine
//   (same content). Without root, device nodes are skipped (Devices::Skip).
// hint: The OCI image spec, layer.md "Distributable Format" and config.md
//   "rootfs.diff_ids"; flate2::read::MultiGzDecoder (a layer may be several
//   gzip members); zstd::Decoder.
pub fn unpack_stream(
    store: &Store,
    blob: impl Read + Send,
    layer: &Descriptor,
    diff_id: &Digest,
    dir: &PathBuf,
    limits: &Limits,
) -> io::Result<()> {
    let compression = layer_compression(&layer.media_type).map_err(invalid)?;
    let tmp = tempfile::Builder::new()
        .prefix(".unpack-")
        .tempdir_in(store.root().join("snapshots"))?;
    let compressed = HashingReader::new(
        BufReader::with_capacity(256 << 10, blob).take(layer.size.saturating_add(1)),
    );
    // Root of a user namespace (a rootless engine) cannot make devices.
    let privileged = nix::unistd::geteuid().is_root() && chapter_01::user::in_initial_namespace();
    let policy = Policy {
        max_entries: limits.max_entries,
        max_bytes: limits.max_layer_bytes,
        devices: if privileged {
            Devices::Create
        } else {
            Devices::Skip
        },
    };
    let ((actual, _), compressed) = decompress_piped(compressed, compression, |tar| {
        let mut tar = HashingReader::new(Capped {
            inner: tar,
            left: limits.max_layer_bytes,
        });
        apply_layer_with(&mut tar, tmp.path(), &policy)?;
        tar.finish()
    })?;
    if actual != *diff_id {
        return Err(invalid(format!(
            "uncompressed content is {actual}, but the config's DiffID says {diff_id}"
        )));
    }
    let (digest, size) = compressed.finish()?;
    if digest != layer.digest || size != layer.size {
        return Err(invalid(format!(
            "the blob is {digest} ({size} bytes), but the manifest says {} ({} bytes)",
            layer.digest, layer.size
        )));
    }
    // Into place in one step; a concurrent unpack of the same layer may
    // have won the race, which is fine: same content.
    let tmp_path = tmp.keep();
    if let Err(e) = std::fs::rename(&tmp_path, dir) {
        let _ = std::fs::remove_dir_all(&tmp_path);
        if !dir.is_dir() {
            return Err(e);
        }
    }
    Ok(())
}
// ANCHOR_END: unpack_stream
