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
    fn times_round_trip() {
        let t = now();
        assert!(parse_time(&t).is_some(), "{t}");
        assert!(parse(&log_line("stdout", b"x\n", &t)).len() == 1);
    }
}
