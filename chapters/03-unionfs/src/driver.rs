//! One interface, two ways to give a container its filesystem: overlayfs
//! (copy-on-write, instant) or the copy fallback. A container directory
//! holds what the driver needs: `upper/`, `work/` and `merged/` for
//! overlay; `merged/` for copy.

use crate::{copy, diff, idmap, overlay};
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
                let layers = overlay::Layers::new(
                    lower.to_vec(),
                    container_dir.join("upper"),
                    container_dir.join("work"),
                );
                mkdir(&layers.upper)?;
                mkdir(&layers.work)?;
                let mount = overlay::mount(&layers, &merged)?;
                Ok(Mounted {
                    merged,
                    upper: layers.upper,
                    state: State::Overlay {
                        _mount: mount,
                        idmapped: Vec::new(),
                    },
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

/// A container in a user namespace: its ID map, and where shifted copies
/// of layers are kept when the kernel cannot idmap (see [`idmap`]).
pub struct Remap<'a> {
    pub map: &'a chapter_01::IdMap,
    pub cache: &'a Path,
}

/// How a remapped container's layers were given their owners.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RemapMethod {
    Idmapped,
    ShiftedCopies,
}

impl Driver {
    /// Like [`Driver::mount`], for a container whose root is
    /// `remap.map`'s: every layer idmapped (or, where idmapped mounts are
    /// missing or `MINI_DOCKER_IDMAP=off`, a shifted copy), and the upper
    /// directory owned by the container's root.
    pub fn mount_remapped(
        self,
        lower: &[PathBuf],
        container_dir: &Path,
        remap: &Remap<'_>,
    ) -> Result<(Mounted, RemapMethod), String> {
        if self == Driver::Copy {
            return Err(
                "user namespace remapping needs overlayfs (the copy driver has no layers to idmap): \
                 run the container with --userns host"
                    .into(),
            );
        }
        let (Some(uid), Some(gid)) = (remap.map.root_uid(), remap.map.root_gid()) else {
            return Err(format!("the map {} does not map root", remap.map));
        };
        let mut idmapped = Vec::new();
        let mut lowers = Vec::new();
        let mut method = RemapMethod::Idmapped;
        if std::env::var("MINI_DOCKER_IDMAP").as_deref() == Ok("off") {
            method = RemapMethod::ShiftedCopies;
        } else {
            let userns = idmap::user_namespace(remap.map)
                .map_err(|e| format!("a user namespace for the idmapped layers: {e}"))?;
            for (i, layer) in lower.iter().enumerate() {
                let target = container_dir.join("lower").join(i.to_string());
                std::fs::create_dir_all(&target)
                    .map_err(|e| format!("creating {}: {e}", target.display()))?;
                match idmap::bind_idmapped(layer, &target, std::os::fd::AsFd::as_fd(&userns)) {
                    Ok(m) => {
                        lowers.push(target);
                        idmapped.push(m);
                    }
                    Err(e) if idmap::unsupported(&e) => {
                        method = RemapMethod::ShiftedCopies;
                        break;
                    }
                    Err(e) => {
                        return Err(format!("idmapping layer {}: {e}", layer.display()));
                    }
                }
            }
        }
        if method == RemapMethod::ShiftedCopies {
            idmapped.clear();
            lowers = lower
                .iter()
                .map(|l| {
                    // A layer of the container's own (its init layer) is
                    // shifted where it is; shared ones are copied once.
                    if l.starts_with(container_dir) {
                        idmap::shift_tree(l, remap.map).map(|()| l.clone())
                    } else {
                        idmap::shifted_copy(l, remap.cache, remap.map)
                    }
                    .map_err(|e| format!("a shifted copy of layer {}: {e}", l.display()))
                })
                .collect::<Result<_, _>>()?;
        }
        // The upper directory is the merged root's owner: the container's root.
        let upper = container_dir.join("upper");
        std::fs::create_dir_all(&upper)
            .and_then(|()| std::os::unix::fs::chown(&upper, Some(uid), Some(gid)))
            .map_err(|e| format!("giving {} to the container's root: {e}", upper.display()))?;
        let mut mounted = self.mount(&lowers, container_dir)?;
        if let State::Overlay { idmapped: held, .. } = &mut mounted.state {
            *held = idmapped;
        }
        Ok((mounted, method))
    }
}

enum State {
    /// Held for its Drop, which unmounts: the overlay first (fields drop
    /// in order), then the idmapped layers under it.
    Overlay {
        _mount: overlay::OverlayMount,
        idmapped: Vec<idmap::IdmappedMount>,
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
