//! The content store, laid out as an OCI image layout (image-spec
//! image-layout.md) so that skopeo, umoci and podman read it as it is:
//!
//! ```text
//! STORE/
//!   oci-layout           {"imageLayoutVersion": "1.0.0"}
//!   index.json           the tags: manifests annotated with a ref.name
//!   blobs/sha256/HEX     every manifest, config and layer, named by digest
//!   ingest/              partial blobs being written (never visible as blobs)
//!   snapshots/CHAINID/   unpacked layers (ours; other tools ignore it)
//! ```
//!
//! A blob appears under its name only complete and checked: it is written
//! to `ingest/` while hashed, flushed to disk, checked against the size and
//! digest expected, and renamed into place, which is atomic. A crash leaves
//! at most a file in `ingest/`. Two writers of one blob race harmlessly:
//! both rename identical bytes onto one name.

use crate::digest::{Digest, HashingWriter};
use crate::manifest::{parse_json, Descriptor, Index, REF_NAME};
use nix::fcntl::{Flock, FlockArg};
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

pub struct Store {
    root: PathBuf,
}

/// The store the course's experiments share: `target/ch04-store` of this
/// workspace (chapter 05 pulls into it, chapter 06 will run from it).
pub fn default_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../target/ch04-store"
    ))
}

/// What a blob is expected to be; an ingest that differs fails.
#[derive(Clone, Debug)]
pub struct Expect {
    pub digest: Option<Digest>,
    pub size: Option<u64>,
}

impl Expect {
    pub fn none() -> Expect {
        Expect {
            digest: None,
            size: None,
        }
    }
    pub fn exactly(d: &Descriptor) -> Expect {
        Expect {
            digest: Some(d.digest.clone()),
            size: Some(d.size),
        }
    }
}

fn err(what: impl std::fmt::Display, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// Writes `bytes` to `path` atomically: temp file, fsync, rename, fsync dir.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| err(dir.display(), e))?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path)
        .map_err(|e| err(path.display(), e.error))?;
    File::open(dir)?.sync_all()
}

impl Store {
    /// Opens the store at `root`, creating an empty layout if there is none.
    pub fn open(root: impl Into<PathBuf>) -> io::Result<Store> {
        let root = root.into();
        for dir in ["blobs/sha256", "ingest", "snapshots"] {
            fs::create_dir_all(root.join(dir)).map_err(|e| err(root.join(dir).display(), e))?;
        }
        let layout = root.join("oci-layout");
        if !layout.exists() {
            write_atomic(&layout, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        }
        let store = Store { root };
        if !store.root.join("index.json").exists() {
            store.write_index(&Index {
                schema_version: 2,
                media_type: Some(crate::manifest::OCI_INDEX.into()),
                manifests: vec![],
                annotations: None,
            })?;
        }
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    pub fn open_blob(&self, digest: &Digest) -> io::Result<File> {
        File::open(self.blob_path(digest)).map_err(|e| err(format!("blob {digest}"), e))
    }

    /// Reads a whole blob (JSON documents), up to `limit` bytes.
    pub fn read_blob(&self, digest: &Digest, limit: u64) -> io::Result<Vec<u8>> {
        let mut bytes = Vec::new();
        self.open_blob(digest)?
            .take(limit + 1)
            .read_to_end(&mut bytes)?;
        if bytes.len() as u64 > limit {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("blob {digest} is over {limit} bytes"),
            ));
        }
        Ok(bytes)
    }

    // ANCHOR: ingest
    // exercise 4.3: ingest a blob atomically: hashed on the way in, checked, renamed
    // hint: A blob must appear under its name complete and right, or not at
    //   all: a reader of blobs/sha256/HEX never sees half a file. So write it
    //   elsewhere first (a NamedTempFile in ingest/, on the same filesystem),
    //   hashing as it goes (HashingWriter), and rename it into place at the end:
    //   rename(2) is atomic.
    // hint: Check before the rename: the size and the digest against `expect`
    //   (an error names both values: "expected …, got …"). A known size also
    //   bounds the copy (take(size + 1)), so a source that never ends fails
    //   instead of filling the disk. A blob that is there already stays as it
    //   is (same name, same bytes). fsync the file before the rename and the
    //   directory after it, or a crash can still lose the rename.
    // hint: The OCI image-layout.md "Blobs"; rename(2), fsync(2) (the
    //   directory); tempfile's NamedTempFile::persist.
    /// Streams `source` into the store as one blob; returns its digest and
    /// size. The bytes are hashed as they are written to `ingest/`, flushed,
    /// checked against `expect`, and renamed into `blobs/` in one step.
    pub fn ingest(&self, source: impl Read, expect: &Expect) -> io::Result<(Digest, u64)> {
        let ingest_dir = self.root.join("ingest");
        let tmp = tempfile::NamedTempFile::new_in(&ingest_dir)
            .map_err(|e| err(ingest_dir.display(), e))?;
        let mut writer = HashingWriter::new(io::BufWriter::new(tmp));
        // A known size bounds the copy: a source that keeps going is cut off
        // and then fails the size check, instead of filling the disk.
        let limit = expect.size.map_or(u64::MAX, |s| s.saturating_add(1));
        io::copy(&mut source.take(limit), &mut writer)?;
        let (buffered, digest, size) = writer.finish();
        let tmp = buffered.into_inner().map_err(|e| e.into_error())?;
        if let Some(want) = expect.size {
            if want != size {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "blob {}: expected {want} bytes, got {size} (truncated or padded)",
                        expect.digest.as_ref().map_or("?", |d| d.as_str())
                    ),
                ));
            }
        }
        if let Some(want) = &expect.digest {
            if *want != digest {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "blob content does not match its digest: expected {want}, got {digest}"
                    ),
                ));
            }
        }
        let target = self.blob_path(&digest);
        if target.exists() {
            return Ok((digest, size)); // deduplicated; the temp file is dropped
        }
        tmp.as_file().sync_all()?;
        tmp.persist(&target)
            .map_err(|e| err(target.display(), e.error))?;
        File::open(self.root.join("blobs/sha256"))?.sync_all()?;
        Ok((digest, size))
    }
    // ANCHOR_END: ingest

    /// Stores exact bytes (a JSON document) and returns their descriptor.
    pub fn put_bytes(&self, media_type: &str, bytes: &[u8]) -> io::Result<Descriptor> {
        let (digest, size) = self.ingest(bytes, &Expect::none())?;
        Ok(Descriptor {
            media_type: media_type.into(),
            digest,
            size,
            annotations: None,
            platform: None,
        })
    }

    fn lock(&self) -> io::Result<Flock<File>> {
        let file = File::create(self.root.join(".lock"))?;
        Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, e)| io::Error::from(e))
    }

    pub fn read_index(&self) -> io::Result<Index> {
        let bytes = fs::read(self.root.join("index.json")).map_err(|e| err("index.json", e))?;
        parse_json(&bytes, "index.json").map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    fn write_index(&self, index: &Index) -> io::Result<()> {
        let bytes = serde_json::to_vec_pretty(index).map_err(io::Error::other)?;
        write_atomic(&self.root.join("index.json"), &bytes)
    }

    // ANCHOR: tag
    // exercise 4.6: point a tag at a manifest in index.json, atomically
    // builds on: 4.3
    // hint: An OCI layout names its images in index.json: each entry of
    //   "manifests" is a descriptor, and its annotation
    //   org.opencontainers.image.ref.name (REF_NAME) is the tag. Tagging is:
    //   read the index, drop any entry with this name, add the manifest's
    //   descriptor with the annotation, write the index back.
    // hint: Two writers at once would lose one's change: hold the store's lock
    //   (self.lock) from the read to the write. The write is write_index (temp
    //   file and rename): a crash leaves the old index or the new one. Check
    //   the name first (validate_tag): an error of kind InvalidInput.
    // hint: The OCI image spec, image-layout.md "index.json file" and
    //   annotations.md (org.opencontainers.image.ref.name).
    /// Points tag `name` (e.g. `fixture:latest`) at a manifest.
    pub fn tag(&self, name: &str, manifest: &Descriptor) -> io::Result<()> {
        validate_tag(name).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let _lock = self.lock()?;
        let mut index = self.read_index()?;
        index.manifests.retain(|d| ref_name(d) != Some(name));
        let mut d = manifest.clone();
        d.annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(REF_NAME.into(), name.into());
        index.manifests.push(d);
        self.write_index(&index)
    }
    // ANCHOR_END: tag

    /// Removes tag `name`; false if there was none.
    pub fn untag(&self, name: &str) -> io::Result<bool> {
        let _lock = self.lock()?;
        let mut index = self.read_index()?;
        let before = index.manifests.len();
        index.manifests.retain(|d| ref_name(d) != Some(name));
        let removed = index.manifests.len() != before;
        self.write_index(&index)?;
        Ok(removed)
    }

    /// Keeps `manifest` in the index without a tag: an image Docker shows
    /// as `<none>` (a commit without a name) or a build's cache, told apart
    /// by the `KIND` annotation. One entry per manifest and kind.
    pub fn keep(
        &self,
        manifest: &Descriptor,
        mut annotations: BTreeMap<String, String>,
    ) -> io::Result<()> {
        let _lock = self.lock()?;
        let mut index = self.read_index()?;
        let kind = annotations.get(KIND).cloned();
        index.manifests.retain(|d| {
            !(ref_name(d).is_none()
                && d.digest == manifest.digest
                && d.annotations.as_ref().and_then(|a| a.get(KIND)) == kind.as_ref())
        });
        let mut d = manifest.clone();
        let mine = d.annotations.get_or_insert_with(BTreeMap::new);
        mine.remove(REF_NAME);
        mine.append(&mut annotations);
        index.manifests.push(d);
        self.write_index(&index)
    }

    /// The untagged entries of the index (see [`Store::keep`]).
    pub fn untagged(&self) -> io::Result<Vec<Descriptor>> {
        Ok(self
            .read_index()?
            .manifests
            .into_iter()
            .filter(|d| ref_name(d).is_none())
            .collect())
    }

    /// Drops the untagged entries `drop` chooses; returns how many.
    pub fn forget(&self, mut drop: impl FnMut(&Descriptor) -> bool) -> io::Result<usize> {
        let _lock = self.lock()?;
        let mut index = self.read_index()?;
        let before = index.manifests.len();
        index
            .manifests
            .retain(|d| ref_name(d).is_some() || !drop(d));
        let dropped = before - index.manifests.len();
        self.write_index(&index)?;
        Ok(dropped)
    }

    /// Every tag and the manifest it names.
    pub fn tags(&self) -> io::Result<Vec<(String, Descriptor)>> {
        Ok(self
            .read_index()?
            .manifests
            .into_iter()
            .filter_map(|d| ref_name(&d).map(|n| (n.to_string(), d.clone())))
            .collect())
    }

    /// The manifest a tag (or a digest) names.
    pub fn resolve(&self, name: &str) -> io::Result<Descriptor> {
        let tags = self.tags()?;
        if let Some((_, d)) = tags.iter().find(|(n, _)| n == name) {
            return Ok(d.clone());
        }
        let with_latest = format!("{name}:latest");
        if let Some((_, d)) = tags.iter().find(|(n, _)| *n == with_latest) {
            return Ok(d.clone());
        }
        let known: Vec<&str> = tags.iter().map(|(n, _)| n.as_str()).collect();
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "no image {name:?} in the store (it has: {})",
                if known.is_empty() {
                    "nothing".into()
                } else {
                    known.join(", ")
                }
            ),
        ))
    }

    /// Checks every blob against its name; returns the problems.
    pub fn fsck(&self) -> io::Result<Vec<String>> {
        let mut problems = Vec::new();
        for entry in fs::read_dir(self.root.join("blobs/sha256"))? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Ok(expected) = Digest::parse(&format!("sha256:{name}")) else {
                problems.push(format!("blobs/sha256/{name}: not a digest name"));
                continue;
            };
            let (actual, _) =
                crate::digest::HashingReader::new(File::open(entry.path())?).finish()?;
            if actual != expected {
                problems.push(format!("blobs/sha256/{name}: content hashes to {actual}"));
            }
        }
        if let Err(e) = self.read_index() {
            problems.push(format!("index.json: {e}"));
        }
        Ok(problems)
    }
}

/// The annotation that says what an untagged index entry is: [`DANGLING`]
/// or [`BUILD_CACHE`].
pub const KIND: &str = "io.mini-docker.kind";
pub const DANGLING: &str = "dangling";
pub const BUILD_CACHE: &str = "build-cache";
/// A build cache entry's key (chapter 06's builder).
pub const CACHE_KEY: &str = "io.mini-docker.cache-key";
/// An untagged entry's image ID (its config's digest), so that finding an
/// image by ID among many cache entries reads no blob.
pub const IMAGE_ID: &str = "io.mini-docker.image-id";

/// The `IMAGE_ID` of an untagged entry.
pub fn image_id(d: &Descriptor) -> Option<&str> {
    d.annotations.as_ref()?.get(IMAGE_ID).map(String::as_str)
}

/// The `KIND` of an untagged entry.
pub fn kind(d: &Descriptor) -> Option<&str> {
    d.annotations.as_ref()?.get(KIND).map(String::as_str)
}

pub fn ref_name(d: &Descriptor) -> Option<&str> {
    d.annotations.as_ref()?.get(REF_NAME).map(String::as_str)
}

/// A tag is `name[:tag]` in the characters the distribution spec allows.
pub fn validate_tag(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-/:".contains(c))
        && !name.starts_with(['.', '-', ':', '/']);
    if ok {
        Ok(())
    } else {
        Err(format!("invalid image name {name:?}: use lowercase letters, digits and . _ - / : (e.g. busybox:1.36)"))
    }
}
