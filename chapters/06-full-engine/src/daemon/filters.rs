//! The `filters` query parameter of Docker's list endpoints: JSON, a map
//! from a filter's name to its values, `{"label": ["a=b", "c"], "status":
//! ["exited"]}` (old clients send `{"label": {"a=b": true}}`). Values of one
//! name are alternatives (any may match), except `label`, where every one
//! must; different names must all match.

use super::http::ApiError;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Default)]
pub struct Filters(BTreeMap<String, Vec<String>>);

impl Filters {
    /// Reads `filters` from the query; `known` are the names this endpoint
    /// takes (another is refused, as Docker refuses it).
    pub fn from_query(q: &HashMap<String, String>, known: &[&str]) -> Result<Filters, ApiError> {
        let Some(text) = q.get("filters").filter(|t| !t.trim().is_empty()) else {
            return Ok(Filters::default());
        };
        let v: Value = serde_json::from_str(text)
            .map_err(|e| ApiError::bad_request(format!("invalid filters {text:?}: {e}")))?;
        let Some(map) = v.as_object() else {
            return Err(ApiError::bad_request(format!(
                "invalid filters {text:?}: not a JSON object"
            )));
        };
        let mut out = BTreeMap::new();
        for (name, values) in map {
            if !known.contains(&name.as_str()) {
                return Err(ApiError::bad_request(format!("invalid filter '{name}'")));
            }
            let values: Vec<String> = match values {
                Value::Array(list) => list
                    .iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect(),
                Value::Object(map) => map
                    .iter()
                    .filter(|(_, on)| on.as_bool().unwrap_or(true))
                    .map(|(k, _)| k.clone())
                    .collect(),
                Value::String(s) => vec![s.clone()],
                _ => Vec::new(),
            };
            out.insert(name.clone(), values);
        }
        Ok(Filters(out))
    }

    /// The values of one filter (empty: not given).
    pub fn values(&self, name: &str) -> &[String] {
        self.0.get(name).map_or(&[], Vec::as_slice)
    }

    /// True when `name` is not given, or `test` holds for one of its values.
    pub fn any(&self, name: &str, test: impl Fn(&str) -> bool) -> bool {
        let values = self.values(name);
        values.is_empty() || values.iter().any(|v| test(v))
    }

    /// `label=KEY` or `label=KEY=VALUE`, every one of them, against `labels`.
    pub fn labels(&self, labels: Option<&BTreeMap<String, String>>) -> bool {
        self.labels_under("label", labels)
    }

    pub fn labels_under(&self, name: &str, labels: Option<&BTreeMap<String, String>>) -> bool {
        self.values(name).iter().all(|want| {
            let Some(labels) = labels else {
                return false;
            };
            match want.split_once('=') {
                Some((k, v)) => labels.get(k).is_some_and(|have| have == v),
                None => labels.contains_key(want.as_str()),
            }
        })
    }

    /// A boolean filter (`dangling=true`): `None` when not given.
    pub fn boolean(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.values(name).first().map(String::as_str) {
            None => Ok(None),
            Some("true" | "1") => Ok(Some(true)),
            Some("false" | "0") => Ok(Some(false)),
            Some(other) => Err(ApiError::bad_request(format!(
                "invalid filter '{name}={other}': use true or false"
            ))),
        }
    }
}

/// Docker's name match: a name filter matches anywhere in the name (the
/// filter is a regular expression there; a substring covers what clients
/// send: exact names, prefixes like compose's `project_`).
pub fn name_matches(name: &str, want: &str) -> bool {
    let want = want.trim_start_matches('/');
    match (want.strip_prefix('^'), want.strip_suffix('$')) {
        (Some(rest), _) if rest.ends_with('$') => name == &rest[..rest.len() - 1],
        (Some(rest), _) => name.starts_with(rest),
        (None, Some(rest)) => name.ends_with(rest),
        (None, None) => name.contains(want),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(text: &str) -> HashMap<String, String> {
        [("filters".to_string(), text.to_string())]
            .into_iter()
            .collect()
    }

    #[test]
    fn both_forms_and_unknown_names() {
        let f = Filters::from_query(
            &q(r#"{"label":["a=b","c"],"status":{"exited":true}}"#),
            &["label", "status"],
        )
        .unwrap();
        let labels: BTreeMap<String, String> = [("a", "b"), ("c", "x")]
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        assert!(f.labels(Some(&labels)));
        let fewer: BTreeMap<String, String> =
            [("a".to_string(), "b".to_string())].into_iter().collect();
        assert!(!f.labels(Some(&fewer)), "every label must match");
        assert!(f.any("status", |s| s == "exited"));
        assert!(f.any("name", |_| false), "not given: anything goes");
        assert!(Filters::from_query(&q(r#"{"nope":["x"]}"#), &["label"]).is_err());
        assert!(name_matches("proj_web_1", "proj_"));
        assert!(name_matches("web", "^web$") && !name_matches("web2", "^web$"));
    }
}
