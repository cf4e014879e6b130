//! `GET /events`: what happens to containers, images, networks and
//! volumes, as a stream of JSON objects (Docker's shape: `Type`, `Action`,
//! `Actor.ID`, `Actor.Attributes`, `time`, `timeNano`, and the old
//! `status`/`id`/`from`). The daemon keeps the last events in memory, so
//! `since` can look back; `until` ends the stream; `filters` selects by
//! type, event, container, image, label, network, volume.

use super::filters::Filters;
use super::http::{self, ApiError, ApiResult};
use super::Daemon;
use bytes::Bytes;
use hyper::StatusCode;
use serde_json::{json as j, Map, Value};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// How many past events `since` can reach.
const KEEP: usize = 1024;

pub struct Events {
    recent: Mutex<VecDeque<Value>>,
    live: broadcast::Sender<Value>,
}

impl Default for Events {
    fn default() -> Events {
        Events {
            recent: Mutex::new(VecDeque::new()),
            live: broadcast::channel(KEEP).0,
        }
    }
}

const FILTERS: &[&str] = &[
    "type",
    "event",
    "container",
    "image",
    "label",
    "network",
    "volume",
];

/// Whether an event passes the filters.
fn selected(f: &Filters, e: &Value) -> bool {
    let kind = e["Type"].as_str().unwrap_or("");
    let action = e["Action"].as_str().unwrap_or("");
    let id = e["Actor"]["ID"].as_str().unwrap_or("");
    let attrs = &e["Actor"]["Attributes"];
    let attr = |k: &str| attrs[k].as_str().unwrap_or("");
    let is = |want: &str, what: &str, name: &str| {
        !want.is_empty() && (what.starts_with(want) || name == want)
    };
    let labels: std::collections::BTreeMap<String, String> = attrs
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default();
    f.any("type", |t| t == kind)
        // `health_status: healthy` is matched by `health_status` too.
        && f.any("event", |a| a == action || action.split(':').next() == Some(a))
        && f.any("container", |c| kind == "container" && is(c, id, attr("name")))
        && f.any("image", |i| {
            (kind == "image" && is(i, id, attr("name"))) || attr("image") == i
        })
        && f.any("network", |n| kind == "network" && is(n, id, attr("name")))
        && f.any("volume", |v| kind == "volume" && id == v)
        && f.labels(Some(&labels))
}

/// A container's name, image and labels, as its events carry them.
pub fn container_attributes(c: &crate::state::Container) -> Map<String, Value> {
    let mut attributes: Map<String, Value> = c
        .config
        .labels
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), j!(v)))
        .collect();
    attributes.insert("name".into(), j!(c.name));
    attributes.insert("image".into(), j!(c.image));
    attributes
}

/// A time as Docker's `since`/`until` take it: unix seconds, with an
/// optional fraction.
fn parse_time(text: &str) -> Result<i128, ApiError> {
    let bad = || ApiError::bad_request(format!("invalid time {text:?}: give unix seconds"));
    let (secs, frac) = text.split_once('.').unwrap_or((text, ""));
    let secs: i128 = secs.parse().map_err(|_| bad())?;
    let mut nanos = 0i128;
    if !frac.is_empty() {
        let digits: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
        nanos = digits.parse().map_err(|_| bad())?;
    }
    Ok(secs * 1_000_000_000 + nanos)
}

impl Daemon {
    /// Records and sends an event. For a container, its name and image and
    /// labels are added to `attributes`, as Docker's are.
    pub(crate) fn event(
        &self,
        kind: &str,
        action: &str,
        id: &str,
        mut attributes: Map<String, Value>,
    ) {
        let mut from = Value::Null;
        if kind == "container" {
            if let Some(e) = self.containers.lock().unwrap().get(id) {
                for (k, v) in container_attributes(&e.c) {
                    attributes.entry(k).or_insert(v);
                }
                from = j!(e.c.image);
            }
            if from.is_null() {
                from = attributes.get("image").cloned().unwrap_or_default();
            }
        }
        let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
        let mut e = j!({
            "Type": kind,
            "Action": action,
            "Actor": {"ID": id, "Attributes": attributes},
            "scope": "local",
            "time": now / 1_000_000_000,
            "timeNano": now,
        });
        if kind == "container" || kind == "image" {
            e["status"] = j!(action);
            e["id"] = j!(id);
            if !from.is_null() {
                e["from"] = from;
            }
        }
        let mut recent = self.events.recent.lock().unwrap();
        recent.push_back(e.clone());
        while recent.len() > KEEP {
            recent.pop_front();
        }
        // Sent under the lock: a subscriber that took the past under it
        // misses nothing and sees nothing twice.
        let _ = self.events.live.send(e);
    }

    /// A container event with no attributes of its own.
    pub(crate) fn container_event(&self, action: &str, id: &str) {
        self.event("container", action, id, Map::new());
    }

    /// `GET /events?since=…&until=…&filters=…`
    pub fn events(self: &Arc<Self>, q: &HashMap<String, String>) -> ApiResult {
        let filters = Filters::from_query(q, FILTERS)?;
        let since = q
            .get("since")
            .filter(|s| !s.is_empty())
            .map(|s| parse_time(s))
            .transpose()?;
        let until = q
            .get("until")
            .filter(|s| !s.is_empty())
            .map(|s| parse_time(s))
            .transpose()?;
        let (past, mut live) = {
            let recent = self.events.recent.lock().unwrap();
            let past: Vec<Value> = match since {
                Some(since) => recent
                    .iter()
                    .filter(|e| e["timeNano"].as_i64().map(i128::from) >= Some(since))
                    .cloned()
                    .collect(),
                None => Vec::new(),
            };
            (past, self.events.live.subscribe())
        };
        let (mut tx, response) = http::streaming(StatusCode::OK, "application/json");
        tokio::spawn(async move {
            let within = |e: &Value| match until {
                Some(until) => e["timeNano"].as_i64().map(i128::from) <= Some(until),
                None => true,
            };
            let line = |e: &Value| Bytes::from(format!("{e}\n"));
            for e in past.iter().filter(|e| within(e) && selected(&filters, e)) {
                if tx.send_data(line(e)).await.is_err() {
                    return;
                }
            }
            let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
            let wait = until.map(|u| std::time::Duration::from_nanos((u - now).max(0) as u64));
            let deadline =
                tokio::time::Instant::now() + wait.unwrap_or(std::time::Duration::MAX / 4);
            loop {
                let next = tokio::select! {
                    next = live.recv() => next,
                    _ = tokio::time::sleep_until(deadline) => return,
                };
                match next {
                    Ok(e) if !within(&e) => return,
                    Ok(e) if selected(&filters, &e) => {
                        if tx.send_data(line(&e)).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_filters() {
        assert_eq!(parse_time("12").unwrap(), 12_000_000_000);
        assert_eq!(parse_time("1.5").unwrap(), 1_500_000_000);
        assert!(parse_time("yesterday").is_err());
        let e = j!({"Type": "container", "Action": "health_status: healthy",
            "Actor": {"ID": "abc123", "Attributes": {"name": "web", "image": "fixture", "app": "x"}}});
        let q = |f: &str| -> HashMap<String, String> {
            [("filters".to_string(), f.to_string())]
                .into_iter()
                .collect()
        };
        let pass = |f: &str| selected(&Filters::from_query(&q(f), FILTERS).unwrap(), &e);
        assert!(pass(r#"{"event":["health_status"]}"#));
        assert!(pass(r#"{"container":["web"],"label":["app=x"]}"#));
        assert!(pass(r#"{"container":["abc"]}"#));
        assert!(!pass(r#"{"type":["image"]}"#));
        assert!(!pass(r#"{"label":["app=y"]}"#));
    }
}
