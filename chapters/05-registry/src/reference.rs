//! Image references, normalised as Docker does: `busybox` is
//! `docker.io/library/busybox:latest`.
//!
//! The first component is a registry only if it contains a `.` or a `:`, or
//! is `localhost`; otherwise the whole name is a repository on Docker Hub,
//! where single names live under `library/`. `index.docker.io` is
//! `docker.io`, and Docker Hub's API is served from `registry-1.docker.io`.

use std::fmt;

pub const DOCKER_HUB: &str = "docker.io";
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    /// `sha256:…` when the reference pins a digest.
    pub digest: Option<String>,
}

fn valid_component(c: &str) -> bool {
    !c.is_empty()
        && c.chars()
            .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "._-".contains(ch))
        && c.starts_with(|ch: char| ch.is_ascii_alphanumeric())
        && c.ends_with(|ch: char| ch.is_ascii_alphanumeric())
}

impl Reference {
    // ANCHOR: parse_reference
    // exercise 5.1: parse and normalise an image reference like Docker
    // hint: `busybox` means docker.io/library/busybox:latest: a reference is
    //   [registry/]repository[:tag][@digest], and the parts that are left out
    //   have Docker's defaults. Split off "@sha256:…" first, then ":tag" (a ':'
    //   after the last '/': "localhost:5000/x" has a port, not a tag).
    // hint: The first component is a registry only if it has a '.' or a ':',
    //   or is "localhost"; else the registry is docker.io (index.docker.io is
    //   docker.io too), and there a one-component name gets "library/". No tag
    //   and no digest means "latest". Repository components are lowercase
    //   [a-z0-9._-], starting and ending alphanumeric: refuse others clearly.
    // hint: The distribution project's reference grammar (reference/regexp.go,
    //   "Grammar"); docker-pull(1) "Examples".
    pub fn parse(text: &str) -> Result<Reference, String> {
        let bad = |why: &str| Err(format!("invalid image reference {text:?}: {why}"));
        if text.is_empty() || text.len() > 255 {
            return bad("empty or longer than 255 characters");
        }
        let (name, digest) = match text.split_once('@') {
            Some((n, d)) => {
                if chapter_04::Digest::parse(d).is_err() {
                    return bad("the digest must be sha256: and 64 lowercase hex digits");
                }
                (n, Some(d.to_string()))
            }
            None => (text, None),
        };
        let last_slash = name.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name[last_slash..].rfind(':') {
            Some(i) => {
                let tag = &name[last_slash + i + 1..];
                let ok = !tag.is_empty()
                    && tag.len() <= 128
                    && tag
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
                    && !tag.starts_with(['.', '-']);
                if !ok {
                    return bad("a tag is up to 128 letters, digits, '_', '.', '-'");
                }
                (&name[..last_slash + i], Some(tag.to_string()))
            }
            None => (name, None),
        };
        let (mut registry, mut repository) = match name.split_once('/') {
            Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
                (first.to_string(), rest.to_string())
            }
            _ => (DOCKER_HUB.to_string(), name.to_string()),
        };
        if registry == "index.docker.io" {
            registry = DOCKER_HUB.to_string();
        }
        if registry == DOCKER_HUB && !repository.contains('/') {
            repository = format!("library/{repository}");
        }
        if repository.is_empty() || !repository.split('/').all(valid_component) {
            return bad("repository names are lowercase letters, digits and . _ - between slashes");
        }
        let tag = if tag.is_none() && digest.is_none() {
            Some("latest".into())
        } else {
            tag
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }
    // ANCHOR_END: parse_reference

    /// Where the registry API is: `registry-1.docker.io` for Docker Hub.
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// The digest if pinned, else the tag: what goes after `/manifests/`.
    pub fn manifest_ref(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }

    /// The name a pulled image gets in the local store (`registry/repo:tag`).
    pub fn local_name(&self) -> String {
        let base = format!("{}/{}", self.registry, self.repository);
        match (&self.tag, &self.digest) {
            (Some(t), _) => format!("{base}:{t}"),
            (None, Some(d)) => format!("{base}:{}", &d["sha256:".len().."sha256:".len() + 12]),
            _ => format!("{base}:latest"),
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}
