//! Images in and out of the store:
//!
//! - a root filesystem (a directory, or a tarball) imported as a one-layer
//!   image, like `docker import`;
//! - an OCI image layout (a directory) copied in or out, which is what
//!   skopeo's and umoci's `oci:` transport read and write;
//! - a `docker save` archive loaded or saved: `manifest.json` naming one
//!   config and the layer tars (uncompressed) of each image.

use crate::digest::{Digest, HashingReader};
use crate::manifest::*;
use crate::store::{Expect, Store};
use crate::unpack::{host_platform, load_image};
use std::io::{self, Read, Write};
use std::path::Path;

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Stores `config` and a manifest for it and `layers` (already stored);
/// returns the manifest's descriptor. Nothing is tagged.
pub fn put_image(
    store: &Store,
    config: &ImageConfig,
    layers: Vec<Descriptor>,
) -> io::Result<Descriptor> {
    let config = store.put_bytes(
        OCI_CONFIG,
        &serde_json::to_vec(config).map_err(io::Error::other)?,
    )?;
    put_manifest(store, config, layers)
}

/// Stores an OCI manifest for `config` and `layers`; returns its descriptor.
fn put_manifest(
    store: &Store,
    config: Descriptor,
    layers: Vec<Descriptor>,
) -> io::Result<Descriptor> {
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.into()),
        config,
        layers,
        annotations: None,
    };
    store.put_bytes(
        OCI_MANIFEST,
        &serde_json::to_vec(&manifest).map_err(io::Error::other)?,
    )
}

/// Writes config and manifest for `layers` (already stored) and tags it.
fn finish_image(
    store: &Store,
    name: &str,
    layers: Vec<Descriptor>,
    diff_ids: Vec<Digest>,
    run: ContainerConfig,
    history: &str,
) -> io::Result<Descriptor> {
    let platform = host_platform();
    let config = ImageConfig {
        created: None,
        author: None,
        architecture: platform.architecture,
        os: platform.os,
        config: Some(run),
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids,
        },
        history: vec![serde_json::json!({ "created_by": history })],
    };
    let config = store.put_bytes(
        OCI_CONFIG,
        &serde_json::to_vec(&config).map_err(io::Error::other)?,
    )?;
    let manifest = put_manifest(store, config, layers)?;
    store.tag(name, &manifest)?;
    Ok(manifest)
}

/// Stores an uncompressed layer tar gzip-compressed; returns the blob's
/// descriptor and the DiffID (digest of the uncompressed tar).
pub fn store_layer(store: &Store, tar: impl Read) -> io::Result<(Descriptor, Digest)> {
    let tmp = tempfile::tempfile_in(store.root().join("ingest"))?;
    let mut uncompressed = HashingReader::new(tar);
    let mut gz =
        flate2::write::GzEncoder::new(io::BufWriter::new(tmp), flate2::Compression::fast());
    io::copy(&mut uncompressed, &mut gz)?;
    let mut tmp = gz.finish()?.into_inner().map_err(|e| e.into_error())?;
    let (diff_id, _) = uncompressed.finish()?;
    use std::io::Seek;
    tmp.seek(io::SeekFrom::Start(0))?;
    let (digest, size) = store.ingest(tmp, &Expect::none())?;
    Ok((
        Descriptor {
            media_type: OCI_LAYER_GZIP.into(),
            digest,
            size,
            annotations: None,
            platform: None,
        },
        diff_id,
    ))
}

/// `docker import`: a root filesystem tarball as a one-layer image.
pub fn import_rootfs_tar(
    store: &Store,
    tar: impl Read,
    name: &str,
    run: ContainerConfig,
) -> io::Result<Descriptor> {
    let (layer, diff_id) = store_layer(store, tar)?;
    finish_image(
        store,
        name,
        vec![layer],
        vec![diff_id],
        run,
        "imported from a rootfs tarball",
    )
}

/// A root filesystem directory as a one-layer image (the tar written by
/// chapter 03's deterministic diff, so the same tree gives the same image).
pub fn import_rootfs_dir(
    store: &Store,
    dir: &Path,
    name: &str,
    run: ContainerConfig,
) -> io::Result<Descriptor> {
    let tar = chapter_03::diff::write_layer(dir, Vec::new())?;
    import_rootfs_tar(store, tar.as_slice(), name, run)
}

/// Adds one layer (an uncompressed tar) on top of image `base`, as `name`.
pub fn add_layer(
    store: &Store,
    base: &str,
    tar: impl Read,
    name: &str,
    created_by: &str,
) -> io::Result<Descriptor> {
    let image = load_image(store, &store.resolve(base)?, &host_platform())?;
    let (layer, diff_id) = store_layer(store, tar)?;
    let mut layers = image.manifest.layers.clone();
    layers.push(layer);
    let mut diff_ids = image.config.rootfs.diff_ids.clone();
    diff_ids.push(diff_id);
    finish_image(
        store,
        name,
        layers,
        diff_ids,
        image.config.config.unwrap_or_default(),
        created_by,
    )
}

/// Copies a blob between stores, checked against its descriptor.
fn copy_blob(from: &Store, to: &Store, d: &Descriptor) -> io::Result<()> {
    if !to.has_blob(&d.digest) {
        to.ingest(from.open_blob(&d.digest)?, &Expect::exactly(d))?;
    }
    Ok(())
}

/// Copies an image (index or manifest, config, layers) between stores.
fn copy_image(from: &Store, to: &Store, d: &Descriptor) -> io::Result<()> {
    let bytes = from.read_blob(&d.digest, MAX_JSON)?;
    if d.media_type == OCI_INDEX || d.media_type == DOCKER_LIST {
        let index: Index = parse_json(&bytes, "index").map_err(invalid)?;
        for m in &index.manifests {
            copy_image(from, to, m)?;
        }
    } else {
        let manifest: Manifest = parse_json(&bytes, "manifest").map_err(invalid)?;
        copy_blob(from, to, &manifest.config)?;
        for layer in &manifest.layers {
            copy_blob(from, to, layer)?;
        }
    }
    copy_blob(from, to, d)
}

/// Writes image `name` as an OCI image layout at `dir` (tagged `tag`).
pub fn export_oci(store: &Store, name: &str, dir: &Path, tag: &str) -> io::Result<()> {
    let d = store.resolve(name)?;
    let out = Store::open(dir)?;
    copy_image(store, &out, &d)?;
    out.tag(tag, &d)
}

/// Copies image `tag` (or the only image) of the OCI layout at `dir` in, as `name`.
pub fn import_oci(
    store: &Store,
    dir: &Path,
    tag: Option<&str>,
    name: &str,
) -> io::Result<Descriptor> {
    if !dir.join("oci-layout").is_file() {
        return Err(invalid(format!(
            "{} is not an OCI image layout (no oci-layout file)",
            dir.display()
        )));
    }
    let src = Store::open(dir)?;
    let d = match tag {
        Some(t) => src.resolve(t)?,
        None => {
            let all = src.read_index()?.manifests;
            match all.as_slice() {
                [one] => one.clone(),
                _ => {
                    return Err(invalid(format!(
                        "{} holds {} images: name one",
                        dir.display(),
                        all.len()
                    )))
                }
            }
        }
    };
    copy_image(&src, store, &d)?;
    store.tag(name, &d)?;
    Ok(d)
}

/// `docker save`'s manifest.json entries.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SaveEntry {
    config: String,
    #[serde(default)]
    repo_tags: Vec<String>,
    layers: Vec<String>,
}

/// Writes images `names` as a `docker save` archive.
pub fn save_docker(store: &Store, names: &[&str], out: impl Write) -> io::Result<()> {
    let mut tar = tar::Builder::new(out);
    let mut entries = Vec::new();
    let mut written = std::collections::BTreeSet::new();
    let add = |tar: &mut tar::Builder<_>, path: &str, bytes: &[u8]| -> io::Result<()> {
        let mut h = tar::Header::new_ustar();
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_size(bytes.len() as u64);
        h.set_mtime(0);
        tar.append_data(&mut h, path, bytes)
    };
    for name in names {
        let image = load_image(store, &store.resolve(name)?, &host_platform())?;
        let config_bytes = store.read_blob(&image.manifest.config.digest, MAX_JSON)?;
        let config_path = format!("{}.json", image.manifest.config.digest.hex());
        let mut layer_paths = Vec::new();
        for (layer, diff_id) in image
            .manifest
            .layers
            .iter()
            .zip(&image.config.rootfs.diff_ids)
        {
            let path = format!("{}/layer.tar", diff_id.hex());
            if written.insert(path.clone()) {
                let mut plain = Vec::new();
                let blob = io::BufReader::new(store.open_blob(&layer.digest)?);
                match layer_compression(&layer.media_type).map_err(invalid)? {
                    Compression::None => io::copy(&mut { blob }, &mut plain)?,
                    Compression::Gzip => {
                        io::copy(&mut flate2::read::MultiGzDecoder::new(blob), &mut plain)?
                    }
                    Compression::Zstd => io::copy(&mut zstd::Decoder::new(blob)?, &mut plain)?,
                };
                add(&mut tar, &path, &plain)?;
            }
            layer_paths.push(path);
        }
        if written.insert(config_path.clone()) {
            add(&mut tar, &config_path, &config_bytes)?;
        }
        entries.push(SaveEntry {
            config: config_path,
            repo_tags: vec![name.to_string()],
            layers: layer_paths,
        });
    }
    add(
        &mut tar,
        "manifest.json",
        &serde_json::to_vec(&entries).map_err(io::Error::other)?,
    )?;
    tar.into_inner()?.flush()
}

/// Loads every image of a `docker save` archive; returns the tags loaded.
pub fn load_docker(store: &Store, archive: impl Read) -> io::Result<Vec<String>> {
    // The archive is unpacked with chapter 03's applier (no `..`, no
    // absolute names, no writing through links), then read from there.
    let dir = tempfile::tempdir_in(store.root().join("ingest"))?;
    let policy = chapter_03::apply::Policy {
        max_entries: 100_000,
        max_bytes: 64 << 30,
        devices: chapter_03::apply::Devices::Skip,
    };
    chapter_03::apply::apply_layer_with(archive, dir.path(), &policy)?;
    let read_inside = |rel: &str| -> io::Result<std::fs::File> {
        let path = chapter_03::apply::resolve_entry(dir.path(), Path::new(rel))?;
        let full = dir.path().join(&path);
        if std::fs::symlink_metadata(&full)?.file_type().is_symlink() {
            return Err(invalid(format!("{rel} is a symlink in the archive")));
        }
        std::fs::File::open(full)
            .map_err(|e| io::Error::new(e.kind(), format!("{rel} named by manifest.json: {e}")))
    };
    let mut manifest_json = Vec::new();
    read_inside("manifest.json")
        .map_err(|e| invalid(format!("not a docker save archive: {e}")))?
        .take(MAX_JSON)
        .read_to_end(&mut manifest_json)?;
    let entries: Vec<SaveEntry> = parse_json(&manifest_json, "manifest.json").map_err(invalid)?;
    let mut loaded = Vec::new();
    for entry in entries {
        let mut config_bytes = Vec::new();
        read_inside(&entry.config)?
            .take(MAX_JSON + 1)
            .read_to_end(&mut config_bytes)?;
        let config: ImageConfig = parse_json(&config_bytes, "image config").map_err(invalid)?;
        if config.rootfs.diff_ids.len() != entry.layers.len() {
            return Err(invalid(format!(
                "{}: {} layers but {} DiffIDs",
                entry.config,
                entry.layers.len(),
                config.rootfs.diff_ids.len()
            )));
        }
        let mut layers = Vec::new();
        for (path, diff_id) in entry.layers.iter().zip(&config.rootfs.diff_ids) {
            let mut file = read_inside(path)?;
            let mut magic = [0u8; 2];
            let gzipped = file.read(&mut magic)? == 2 && magic == [0x1f, 0x8b];
            use std::io::Seek;
            file.seek(io::SeekFrom::Start(0))?;
            let (digest, size) = store.ingest(file, &Expect::none())?;
            if !gzipped && digest != *diff_id {
                return Err(invalid(format!(
                    "{path}: content is {digest}, the config's DiffID is {diff_id}"
                )));
            }
            let media_type = if gzipped {
                DOCKER_LAYER_GZIP
            } else {
                OCI_LAYER
            };
            layers.push(Descriptor {
                media_type: media_type.into(),
                digest,
                size,
                annotations: None,
                platform: None,
            });
        }
        let config = store.put_bytes(OCI_CONFIG, &config_bytes)?;
        let manifest = put_manifest(store, config, layers)?;
        for tag in &entry.repo_tags {
            store.tag(tag, &manifest)?;
            loaded.push(tag.clone());
        }
    }
    Ok(loaded)
}
