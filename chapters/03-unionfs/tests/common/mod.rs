//! Helpers shared by this chapter's test files.

use chapter_03::overlay::Layers;
use std::fs;
use std::path::{Path, PathBuf};

/// A scratch stack under `root`: `lowers` lower dirs (l0 is the bottom),
/// upper, work, and a `merged` mount point, all created.
pub fn stack(root: &Path, lowers: usize) -> Layers {
    let lower: Vec<PathBuf> = (0..lowers).map(|i| root.join(format!("l{i}"))).collect();
    for d in lower.iter().chain([
        &root.join("upper"),
        &root.join("work"),
        &root.join("merged"),
    ]) {
        fs::create_dir_all(d).unwrap();
    }
    Layers::new(lower, root.join("upper"), root.join("work"))
}
