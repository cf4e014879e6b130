//! How replies are shown: sizes, ages, and a stream of progress messages.

use super::*;

pub(super) fn ago(unix: i64) -> String {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    format!(
        "{} ago",
        human_duration(Duration::from_secs((now - unix).max(0) as u64))
    )
}

/// Docker's sizes: decimal units, three significant digits.
pub(super) fn human_size(bytes: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    let digits = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    // Go's %.3g, as Docker's go-units: no trailing zeros (0B, 512B, 2kB, 2.05kB).
    let text = format!("{v:.digits$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        &text
    };
    format!("{text}{}", units[i])
}

/// Pulls, printing Docker's progress lines (on stderr when the pull is part
/// of a `run`, so the container's output stays alone on stdout).
/// Prints a JSON message stream (pull, push, build) to stdout, or to
/// stderr: statuses with their layer's id, streams as they are; byte
/// progress is left out (Docker's CLI draws bars from it). Returns the
/// error the stream ended with.
pub(super) async fn print_messages(
    body: hyper::body::Incoming,
    to_stderr: bool,
) -> Result<Option<String>> {
    let mut failed = None;
    let mut pending = Vec::new();
    let mut stdout = std::io::stdout();
    each_chunk(body, |chunk| {
        pending.extend_from_slice(chunk);
        while let Some(pos) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=pos).collect();
            let Ok(m) = serde_json::from_slice::<Value>(&line) else {
                continue;
            };
            if let Some(e) = m["error"].as_str() {
                failed = Some(e.to_string());
            } else if m["progressDetail"]["current"].is_number() {
            } else {
                let text = match (m["stream"].as_str(), m["status"].as_str(), m["id"].as_str()) {
                    (Some(s), _, _) => s.to_string(),
                    (None, Some(status), Some(id)) => format!("{id}: {status}\n"),
                    (None, Some(status), None) => format!("{status}\n"),
                    _ => String::new(),
                };
                if to_stderr {
                    eprint!("{text}");
                } else {
                    print!("{text}");
                    let _ = stdout.flush();
                }
            }
        }
    })
    .await?;
    Ok(failed)
}
