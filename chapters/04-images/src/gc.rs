//! Garbage collection: what no tag reaches goes. Mark every blob reachable
//! from index.json (indexes → manifests → config and layers) and every
//! snapshot of a reachable stack (by ChainID); sweep the rest, and ingest
//! leftovers of crashed writers.

use crate::digest::{chain_ids, Digest};
use crate::manifest::{
    parse_json, Descriptor, ImageConfig, Index, Manifest, DOCKER_LIST, MAX_JSON, OCI_INDEX,
};
use crate::store::Store;
use std::collections::BTreeSet;
use std::io;
use std::time::{Duration, SystemTime};

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub blobs_removed: usize,
    pub snapshots_removed: usize,
    pub bytes_freed: u64,
}

// ANCHOR: mark
// exercise 4.12: mark everything a descriptor keeps alive
// builds on: 4.4
// hint: Garbage collection by reachability: what a tag reaches stays. A
//   descriptor's own blob is live; an index (OCI_INDEX, DOCKER_LIST) keeps
//   each of its manifests (recurse); a manifest keeps its config and its
//   layers, and the snapshots of its stack: chain_ids of the config's DiffIDs.
// hint: Mark each blob once (a second visit returns at once: indexes can
//   share manifests). A blob that is missing or unreadable marks nothing more
//   (a half-pulled image must not stop the collection).
// hint: The OCI image spec, image-index.md, manifest.md; containerd's
//   "garbage collection" docs (mark and sweep over labels and references).
pub fn mark(
    store: &Store,
    d: &Descriptor,
    blobs: &mut BTreeSet<Digest>,
    snapshots: &mut BTreeSet<String>,
) {
    if !blobs.insert(d.digest.clone()) {
        return;
    }
    let Ok(bytes) = store.read_blob(&d.digest, MAX_JSON) else {
        return;
    };
    if d.media_type == OCI_INDEX || d.media_type == DOCKER_LIST {
        if let Ok(index) = parse_json::<Index>(&bytes, "index") {
            for m in &index.manifests {
                mark(store, m, blobs, snapshots);
            }
        }
        return;
    }
    let Ok(manifest) = parse_json::<Manifest>(&bytes, "manifest") else {
        return;
    };
    blobs.insert(manifest.config.digest.clone());
    blobs.extend(manifest.layers.iter().map(|l| l.digest.clone()));
    if let Ok(config) = store.read_blob(&manifest.config.digest, MAX_JSON) {
        if let Ok(config) = parse_json::<ImageConfig>(&config, "config") {
            snapshots.extend(
                chain_ids(&config.rootfs.diff_ids)
                    .iter()
                    .map(|c| c.hex().to_string()),
            );
        }
    }
}
// ANCHOR_END: mark

// ANCHOR: collect
// exercise 4.13: sweep what no tag reaches
// builds on: 4.12
// hint: Mark from every entry of index.json (the tags), then sweep: every
//   file in blobs/sha256 whose name is not a marked digest goes (count it and
//   its bytes), every snapshot directory whose name is not a marked ChainID
//   goes (remove_dir_all).
// hint: Two things are in use without being reachable: unpacks in progress
//   (snapshots/.unpack-*) and files in ingest/ being written. Leave those; of
//   ingest/ remove only files older than 10 minutes (a crashed writer's).
// hint: The OCI image-layout.md "Blobs"; mark-and-sweep, e.g. containerd's
//   gc (docs/garbage-collection.md).
/// Removes every blob and snapshot no tag reaches.
pub fn collect(store: &Store) -> io::Result<Report> {
    let mut blobs = BTreeSet::new();
    let mut snapshots = BTreeSet::new();
    for d in store.read_index()?.manifests {
        mark(store, &d, &mut blobs, &mut snapshots);
    }
    let mut report = Report::default();
    for entry in std::fs::read_dir(store.root().join("blobs/sha256"))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let live = Digest::parse(&format!("sha256:{name}")).is_ok_and(|d| blobs.contains(&d));
        if !live {
            report.bytes_freed += entry.metadata()?.len();
            std::fs::remove_file(entry.path())?;
            report.blobs_removed += 1;
        }
    }
    for entry in std::fs::read_dir(store.root().join("snapshots"))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // Unpacks in progress (.unpack-*) belong to someone else right now.
        if !snapshots.contains(&name) && !name.starts_with(".unpack-") {
            std::fs::remove_dir_all(entry.path())?;
            report.snapshots_removed += 1;
        }
    }
    // Ingest files of writers that crashed: old ones only, not those in flight.
    let stale = SystemTime::now() - Duration::from_secs(600);
    for entry in std::fs::read_dir(store.root().join("ingest"))? {
        let entry = entry?;
        if entry.metadata()?.modified()? < stale {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(report)
}
// ANCHOR_END: collect
