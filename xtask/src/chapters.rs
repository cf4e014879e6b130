//! The chapter crates of the workspace, found by their folder names
//! (`chapters/NN-topic`, package `chapter-NN`).

use anyhow::Result;
use std::path::Path;

pub struct Chapter {
    pub number: u32,
    pub topic: String,
    pub package: String,
    pub dir: std::path::PathBuf,
}

pub fn list(root: &Path) -> Result<Vec<Chapter>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(root.join("chapters"))? {
        let dir = entry?.path();
        let name = dir
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let Some((num, topic)) = name.split_once('-') else {
            continue;
        };
        let Ok(number) = num.parse::<u32>() else {
            continue;
        };
        out.push(Chapter {
            number,
            topic: topic.replace('-', " "),
            package: format!("chapter-{num}"),
            dir: dir.clone(),
        });
    }
    out.sort_by_key(|c| c.number);
    Ok(out)
}
