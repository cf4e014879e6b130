//! Sizes as Docker's flags write them: `512k`, `100m`, `1.5g`, `2GiB`.

/// Binary multiples, as Docker's `--memory` uses them (1k = 1024 bytes).
const UNITS: [(&str, u64); 6] = [
    ("", 1),
    ("k", 1 << 10),
    ("m", 1 << 20),
    ("g", 1 << 30),
    ("t", 1 << 40),
    ("p", 1 << 50),
];

// ANCHOR: parse_size
// exercise 2.1: parse a size such as 100m, 1.5g or 4096 into bytes
// hint: Docker's sizes are a number, maybe with a fraction, and a unit from
//   UNITS (b, k, m, g, t, p: powers of 1024). Split the text where the digits
//   and the one '.' end; the rest is the unit, the empty unit meaning bytes.
// hint: Units are case-insensitive and may carry a "b" or "ib" (1mb = 1mib =
//   1m). Refuse with a message that quotes the input: a sign, an empty
//   number, two dots, an unknown unit ("10ZB"), and a result past u64 (use
//   checked arithmetic; a fraction is multiplied as f64, then rounded).
// hint: Docker's go-units (RAMInBytes) is the model; docker-run(1) "--memory".
pub fn parse_size(text: &str) -> Result<u64, String> {
    let bad = |why: &str| {
        Err(format!("invalid size {text:?}: {why} (use a number with an optional unit b, k, m, g, t or p, e.g. 512m)"))
    };
    let t = text.trim().to_ascii_lowercase();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    if t.starts_with('-') {
        return bad("sizes cannot be negative");
    }
    if number.is_empty() || number == "." {
        return bad("no number");
    }
    if number.matches('.').count() > 1 {
        return bad("more than one decimal point");
    }
    let unit = unit.trim();
    let unit = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b'))
        .unwrap_or(unit);
    let Some((_, multiplier)) = UNITS.iter().find(|(name, _)| *name == unit) else {
        return bad("unknown unit");
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("invalid size {text:?}: not a number"))?;
    let bytes = value * *multiplier as f64;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return bad("too large");
    }
    Ok(bytes as u64)
}
// ANCHOR_END: parse_size

/// Bytes for people: `104857600` → `100.0 MiB`.
pub fn human(bytes: u64) -> String {
    let mut value = bytes as f64;
    for unit in ["B", "KiB", "MiB", "GiB", "TiB"] {
        if value < 1024.0 || unit == "TiB" {
            return if unit == "B" {
                format!("{bytes} B")
            } else {
                format!("{value:.1} {unit}")
            };
        }
        value /= 1024.0;
    }
    unreachable!()
}
