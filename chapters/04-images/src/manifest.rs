//! The JSON documents of an image (OCI image spec; Docker's v2 schema 2
//! uses the same shapes under other media types):
//!
//! - an **index** lists manifests, one per platform;
//! - a **manifest** names one config and the layers, bottom first;
//! - the **config** holds what a container needs at run time (env, user,
//!   entrypoint, …) and the DiffIDs: the digests of the *uncompressed*
//!   layers, while the manifest names the compressed blobs;
//! - a **descriptor** points at a blob: media type, digest, size.
//!
//! Unknown fields are ignored and unknown media types kept, as the spec asks.
//! A manifest's digest is always taken over the bytes as stored, never over
//! JSON re-serialised here (field order and spacing would change it).

use crate::digest::Digest;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const DOCKER_LAYER_FOREIGN: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

/// The annotation that names a tag in an OCI layout's index.json.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Largest JSON document we parse (a defence against absurd inputs).
pub const MAX_JSON: u64 = 4 << 20;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ContainerConfig>,
    pub rootfs: RootFs,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<serde_json::Value>,
}

/// The run-time part of an image config (its field names are Docker's).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// Docker's extensions, kept by a build: `HEALTHCHECK`, `SHELL`, `ONBUILD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_build: Option<Vec<String>>,
}

/// A `HEALTHCHECK` as Docker keeps it: `Test` is `["NONE"]`, `["CMD", …]`
/// or `["CMD-SHELL", "…"]`; durations in nanoseconds, 0 for the default.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Healthcheck {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub test: Vec<String>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub interval: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub timeout: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start_period: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start_interval: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retries: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    pub diff_ids: Vec<Digest>,
}

/// How a layer blob is compressed, from its media type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

// ANCHOR: select_platform
// exercise 4.5: choose the manifest for a platform from an index
// hint: A multi-platform image is an index: a list of manifests, one per
//   platform (os, architecture, variant). A run wants the one for this
//   machine (unpack::host_platform), so look for a descriptor whose platform
//   has the wanted os and architecture, and the variant when one is asked for.
// hint: Indexes also list attestations (build provenance, SBOMs): their
//   platform is unknown/unknown, or an annotation "vnd.docker.reference.type"
//   marks them. Never choose one, and leave them out of the error, which lists
//   what the index offers ("linux/arm64, linux/amd64") and says --platform.
// hint: The OCI image spec, image-index.md "platform"; Docker's attestation
//   manifests (buildkit docs, "Attestation storage").
pub fn select_platform(index: &Index, wanted: &Platform) -> Result<Descriptor, String> {
    let is_attestation = |d: &Descriptor| {
        d.annotations
            .as_ref()
            .is_some_and(|a| a.contains_key("vnd.docker.reference.type"))
            || d.platform.as_ref().is_some_and(|p| p.os == "unknown")
    };
    let matches = |p: &Platform| {
        p.os == wanted.os
            && p.architecture == wanted.architecture
            && (wanted.variant.is_none() || p.variant == wanted.variant)
    };
    if let Some(d) = index
        .manifests
        .iter()
        .filter(|d| !is_attestation(d))
        .find(|d| d.platform.as_ref().is_some_and(matches))
    {
        return Ok(d.clone());
    }
    let offered: Vec<String> = index
        .manifests
        .iter()
        .filter(|d| !is_attestation(d))
        .filter_map(|d| {
            d.platform
                .as_ref()
                .map(|p| format!("{}/{}", p.os, p.architecture))
        })
        .collect();
    Err(format!(
        "no image for {}/{}; this image offers: {} (choose one with --platform)",
        wanted.os,
        wanted.architecture,
        if offered.is_empty() {
            "nothing".into()
        } else {
            offered.join(", ")
        }
    ))
}
// ANCHOR_END: select_platform

pub fn layer_compression(media_type: &str) -> Result<Compression, String> {
    Ok(match media_type {
        OCI_LAYER | "application/vnd.docker.image.rootfs.diff.tar" => Compression::None,
        OCI_LAYER_GZIP | DOCKER_LAYER_GZIP | DOCKER_LAYER_FOREIGN => Compression::Gzip,
        OCI_LAYER_ZSTD => Compression::Zstd,
        other => return Err(format!("unsupported layer media type {other:?}")),
    })
}

/// Parses JSON from exact bytes, refusing oversized documents.
pub fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, String> {
    if bytes.len() as u64 > MAX_JSON {
        return Err(format!(
            "{what} is {} bytes, over the {MAX_JSON}-byte limit for JSON documents",
            bytes.len()
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| format!("{what} is not valid: {e}"))
}
