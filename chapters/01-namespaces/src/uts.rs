//! UTS namespace: the hostname (and NIS domain name) a process sees.
//! `sethostname(2)` changes it only for the UTS namespace the caller is in.

use crate::sys::Sys;
use nix::errno::Errno;
use std::ffi::CStr;

/// The kernel's limit, `HOST_NAME_MAX` (see gethostname(2)).
pub const HOST_NAME_MAX: usize = 64;

/// Accepts a hostname made of RFC 1123 labels: letters, digits and `-`,
/// separated by `.`, no label starting or ending with `-`.
pub fn validate_hostname(name: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("invalid hostname {name:?}: {why}"));
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > HOST_NAME_MAX {
        return bad("longer than 64 bytes (HOST_NAME_MAX)");
    }
    for label in name.split('.') {
        if label.is_empty() {
            return bad("empty label (two dots, or a dot at either end)");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return bad("a label starts or ends with '-'");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return bad("only letters, digits, '-' and '.' are allowed");
        }
    }
    Ok(())
}

// ANCHOR: set_hostname
// exercise 1.10: give the container its own hostname
// builds on: 1.9
// hint: The child is already in a new UTS namespace (clone(2) made it), so a
//   hostname it sets is seen only there: the host keeps its own.
// hint: The name is checked before the clone (validate_hostname); the length
//   the kernel wants is the name's bytes without the NUL. A UTS namespace
//   without a name of its own keeps a copy of the host's.
// hint: uts_namespaces(7), sethostname(2); the call is sys.sethostname.
pub fn set_hostname(sys: &mut impl Sys, name: &CStr) -> Result<(), Errno> {
    sys.sethostname(name)
}
// ANCHOR_END: set_hostname

#[cfg(test)]
mod tests {
    use super::validate_hostname;

    #[test]
    fn hostnames_follow_rfc1123() {
        for good in ["box", "a-b.example", "x1", &"a".repeat(63)] {
            assert!(validate_hostname(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "a..b",
            "a_b",
            "ä",
            &"a".repeat(65),
            "has space",
        ] {
            assert!(validate_hostname(bad).is_err(), "{bad}");
        }
    }
}
