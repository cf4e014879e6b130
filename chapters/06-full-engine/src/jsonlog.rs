//! Docker's default log driver, `json-file`: one JSON object per line of
//! output, `{"log":"hello\n","stream":"stdout","time":"<RFC 3339, ns>"}`,
//! in `<id>-json.log` beside the container's config. `docker logs` reads it
//! back; `--tail` and `-f` work on lines of this file.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct Entry {
    pub log: String,
    pub stream: String,
    pub time: String,
}

// ANCHOR: log_line
// exercise 6.6: one json-file log line for a chunk of output
// builds on: 6.5
// hint: `docker logs` reads back what the container wrote from a file of
//   JSON lines, one object per line of output: {"log": the text, with its
//   '\n'; "stream": "stdout" or "stderr"; "time": RFC 3339 with nanoseconds}.
//   Build an Entry and serialise it; the file's line ends with '\n'.
// hint: Output is bytes, not always UTF-8: String::from_utf8_lossy. serde_json
//   escapes what JSON must (quotes, control characters), so a line of output
//   can never break the file's own lines.
// hint: Docker's json-file logging driver docs; daemon/logger/jsonfilelog
//   (jsonlog.JSONLog: Log, Stream, Time).
pub fn log_line(stream: &str, bytes: &[u8], time: &str) -> String {
    let entry = Entry {
        log: String::from_utf8_lossy(bytes).into_owned(),
        stream: stream.to_string(),
        time: time.to_string(),
    };
    let mut line = serde_json::to_string(&entry).expect("an Entry always serialises");
    line.push('\n');
    line
}
// ANCHOR_END: log_line

/// Splits output into lines as Docker logs them: every complete line is
/// an entry (with its '\n'); the rest waits in `pending` for more output.
pub fn split_lines(pending: &mut Vec<u8>, chunk: &[u8]) -> Vec<Vec<u8>> {
    pending.extend_from_slice(chunk);
    let mut lines = Vec::new();
    while let Some(pos) = pending.iter().position(|&b| b == b'\n') {
        lines.push(pending.drain(..=pos).collect());
    }
    // A very long line without a newline is cut, as Docker's 16 KiB buffer does.
    if pending.len() >= 16 * 1024 {
        lines.push(std::mem::take(pending));
    }
    lines
}

/// Reads the entries of a log file's text; a line that is not an entry
/// (a torn last line after a crash) is skipped.
pub fn parse(text: &str) -> Vec<Entry> {
    text.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// A json-file log that rotates as Docker's does: once a line would take
/// the file past `max_size`, `ID-json.log` becomes `ID-json.log.1` (`.1`
/// becomes `.2`, …, up to `max_file - 1`; the oldest goes), and a new file
/// starts. With one file, the file starts over.
pub struct Writer {
    path: std::path::PathBuf,
    file: std::fs::File,
    written: u64,
    max_size: Option<u64>,
    max_file: u32,
}

impl Writer {
    pub fn open(
        path: &std::path::Path,
        max_size: Option<u64>,
        max_file: u32,
    ) -> std::io::Result<Writer> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        let written = file.metadata()?.len();
        Ok(Writer {
            path: path.to_path_buf(),
            file,
            written,
            max_size,
            max_file: max_file.max(1),
        })
    }

    pub fn write_line(&mut self, line: &str) -> std::io::Result<()> {
        use std::io::Write;
        if let Some(max) = self.max_size {
            if self.written > 0 && self.written + line.len() as u64 > max {
                self.rotate()?;
            }
        }
        self.file.write_all(line.as_bytes())?;
        self.written += line.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        let numbered = |n: u32| {
            let mut p = self.path.clone().into_os_string();
            p.push(format!(".{n}"));
            std::path::PathBuf::from(p)
        };
        if self.max_file > 1 {
            for n in (1..self.max_file - 1).rev() {
                let _ = std::fs::rename(numbered(n), numbered(n + 1));
            }
            std::fs::rename(&self.path, numbered(1))?;
        } else {
            std::fs::remove_file(&self.path)?;
        }
        self.file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.written = 0;
        Ok(())
    }
}

/// The rotated files of the log at `path`, oldest first (`.N`, …, `.1`).
pub fn rotated(path: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for n in 1.. {
        let mut p = path.to_path_buf().into_os_string();
        p.push(format!(".{n}"));
        let p = std::path::PathBuf::from(p);
        if !p.exists() {
            break;
        }
        found.push(p);
    }
    found.reverse();
    found
}

/// Now, as Docker writes times: RFC 3339 in UTC with nanoseconds.
pub fn now() -> String {
    format_time(time::OffsetDateTime::now_utc())
}

pub fn format_time(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| ZERO_TIME.to_string())
}

pub fn parse_time(text: &str) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()
}

/// Go's zero time, which Docker shows for "never".
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_and_wait_for_their_newline() {
        let mut pending = Vec::new();
        assert_eq!(split_lines(&mut pending, b"a\nb"), vec![b"a\n".to_vec()]);
        assert_eq!(split_lines(&mut pending, b"c\n"), vec![b"bc\n".to_vec()]);
        assert!(pending.is_empty());
    }

    #[test]
    fn logs_rotate_keeping_max_file_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        let mut w = Writer::open(&path, Some(100), 3).unwrap();
        for i in 0..20 {
            w.write_line(&format!("line {i:02} of forty bytes, or so......\n"))
                .unwrap();
        }
        let files = rotated(&path);
        assert_eq!(files.len(), 2, "{files:?}");
        let all: String = files
            .iter()
            .chain([&path])
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect();
        assert!(all.ends_with("line 19 of forty bytes, or so......\n"));
        assert!(!all.contains("line 00"), "the oldest went: {all}");
        for p in files.iter().chain([&path]) {
            assert!(std::fs::metadata(p).unwrap().len() <= 100);
        }
    }

    #[test]
    fn times_round_trip() {
        let t = now();
        assert!(parse_time(&t).is_some(), "{t}");
        assert!(parse(&log_line("stdout", b"x\n", &t)).len() == 1);
    }
}
