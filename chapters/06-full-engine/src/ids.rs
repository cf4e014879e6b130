//! Container and exec IDs (64 hex digits, shown by their first 12), names
//! (unique, Docker's `adjective_name` when none is given), and finding a
//! container by what a user typed: a full ID, a name, or an ID prefix.

use std::io::Read;

/// A new random ID: 32 bytes from the kernel's generator, as hex.
pub fn new_id() -> String {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("/dev/urandom is readable");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The 12-digit form `docker ps` shows.
pub fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

/// Why a lookup found no single container.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    NotFound,
    /// The prefix matches several IDs; the user must type more of it.
    Ambiguous(usize),
}

// ANCHOR: find
// exercise 6.3: find a container by full ID, exact name, or unique ID prefix
// builds on: 6.2
// hint: Every command names a container the way the user typed it: a full
//   64-digit ID, a name, or the first few digits of an ID. `containers` holds
//   (id, name) pairs; answer the one ID meant, or why there is none.
// hint: Docker's order: an exact ID wins, then an exact name (a leading '/'
//   in the query is allowed: Docker stores names as "/name"), then an ID that
//   starts with the query. Several IDs with that prefix is
//   Lookup::Ambiguous(how many); none at all, or an empty query, NotFound.
// hint: Docker's daemon/container store (GetByName, then the truncindex
//   package's prefix lookup); docker-inspect(1) "NAME|ID".
pub fn find(containers: &[(String, String)], query: &str) -> Result<String, Lookup> {
    if query.is_empty() {
        return Err(Lookup::NotFound);
    }
    if let Some((id, _)) = containers.iter().find(|(id, _)| id == query) {
        return Ok(id.clone());
    }
    let name = query.strip_prefix('/').unwrap_or(query);
    if let Some((id, _)) = containers.iter().find(|(_, n)| n == name) {
        return Ok(id.clone());
    }
    let matches: Vec<&String> = containers
        .iter()
        .map(|(id, _)| id)
        .filter(|id| id.starts_with(query))
        .collect();
    match matches.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(Lookup::NotFound),
        many => Err(Lookup::Ambiguous(many.len())),
    }
}
// ANCHOR_END: find

/// Checks a user-given name against Docker's rule `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn validate_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if first_ok && rest_ok && name.len() >= 2 {
        Ok(())
    } else {
        Err(format!(
            "invalid container name {name:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed, at least 2 characters"
        ))
    }
}

const ADJECTIVES: [&str; 16] = [
    "brave", "calm", "eager", "fervent", "gentle", "happy", "jolly", "keen", "lucid", "modest",
    "nifty", "quirky", "serene", "tender", "vibrant", "witty",
];
const SCIENTISTS: [&str; 16] = [
    "babbage", "curie", "dijkstra", "euler", "feynman", "goldberg", "hopper", "kare", "lamport",
    "lovelace", "noether", "ritchie", "shannon", "thompson", "torvalds", "turing",
];

/// A Docker-style random name (`jolly_hopper`); `taken` names are avoided
/// by adding a number, as Docker does on a collision.
pub fn random_name(taken: impl Fn(&str) -> bool) -> String {
    let id = new_id();
    let byte = |i: usize| usize::from_str_radix(&id[2 * i..2 * i + 2], 16).unwrap_or(0);
    let base = format!("{}_{}", ADJECTIVES[byte(0) % 16], SCIENTISTS[byte(1) % 16]);
    if !taken(&base) {
        return base;
    }
    (2..)
        .map(|n| format!("{base}{n}"))
        .find(|n| !taken(n))
        .expect("some number is free")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_64_hex_and_differ() {
        let (a, b) = (new_id(), new_id());
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert_eq!(short(&a).len(), 12);
    }

    #[test]
    fn names_follow_dockers_rule() {
        assert!(validate_name("web-1.a_b").is_ok());
        for bad in ["", "a", "-x", "a b", "a/b", "é1"] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
        let name = random_name(|n| !n.ends_with('2'));
        assert!(name.ends_with('2'), "{name}");
    }
}
