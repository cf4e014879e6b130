//! One interface, two ways to give a container its filesystem: overlayfs
//! (copy-on-write, instant) or the copy fallback. A container directory
//! holds what the driver needs: `upper/`, `work/` and `merged/` for
//! overlay; `merged/` for copy.

use crate::{copy, diff, overlay};
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Driver {
    Overlay,
    Copy,
}

impl Driver {
    /// Overlay where the kernel has it and `dir` is not itself on an
    /// overlay (a container inside a container); else copy.
    pub fn detect(dir: &Path) -> Driver {
        let has_overlay =
            std::fs::read_to_string("/proc/filesystems").is_ok_and(|f| f.contains("\toverlay\n"));
        let on_overlay = overlay::is_on_overlay(dir);
        if has_overlay && !on_overlay {
            Driver::Overlay
        } else {
            Driver::Copy
        }
    }

    /// Gives a container in `container_dir` the layers `lower` (bottom
    /// first) as its root filesystem at `container_dir/merged`.
    pub fn mount(self, lower: &[PathBuf], container_dir: &Path) -> Result<Mounted, String> {
        let merged = container_dir.join("merged");
        let mkdir = |d: &Path| {
            std::fs::create_dir_all(d).map_err(|e| format!("creating {}: {e}", d.display()))
        };
        mkdir(&merged)?;
        match self {
            Driver::Overlay => {
                let layers = overlay::Layers {
                    lower: lower.to_vec(),
                    upper: container_dir.join("upper"),
                    work: container_dir.join("work"),
                };
                mkdir(&layers.upper)?;
                mkdir(&layers.work)?;
                let mount = overlay::mount(&layers, &merged)?;
                Ok(Mounted {
                    merged,
                    upper: layers.upper,
                    state: State::Overlay { _mount: mount },
                })
            }
            Driver::Copy => {
                for l in lower {
                    if !l.is_dir() {
                        return Err(format!("layer directory {} does not exist", l.display()));
                    }
                }
                let before = copy::materialize(lower, &merged)
                    .map_err(|e| format!("copying layers: {e}"))?;
                Ok(Mounted {
                    merged,
                    upper: container_dir.join("upper"),
                    state: State::Copy(before),
                })
            }
        }
    }
}

enum State {
    /// Held for its Drop, which unmounts.
    Overlay {
        _mount: overlay::OverlayMount,
    },
    Copy(BTreeMap<PathBuf, copy::Stamp>),
}

/// A container's root filesystem, ready. An overlay is unmounted when this
/// is dropped (the mount's own guard); a copy stays for its owner to delete.
pub struct Mounted {
    merged: PathBuf,
    upper: PathBuf,
    state: State,
}

impl Mounted {
    /// The directory the container uses as `/`.
    pub fn merged(&self) -> &Path {
        &self.merged
    }

    pub fn driver(&self) -> Driver {
        match self.state {
            State::Overlay { .. } => Driver::Overlay,
            State::Copy(_) => Driver::Copy,
        }
    }

    /// Writes the container's changes as an OCI layer tar.
    pub fn write_diff<W: Write>(&self, out: W) -> io::Result<W> {
        if let State::Copy(before) = &self.state {
            let _ = std::fs::remove_dir_all(&self.upper);
            std::fs::create_dir_all(&self.upper)?;
            copy::changes_as_upper(before, &self.merged, &self.upper)?;
        }
        diff::write_layer(&self.upper, out)
    }
}
