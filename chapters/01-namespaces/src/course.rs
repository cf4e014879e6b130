//! Course plumbing, not part of any mechanism: how an exercise that is not
//! solved yet shows itself. In a learner workspace (`cargo xtask student`)
//! each exercise's body is `todo!("exercise 1.2: …")`; when a program
//! reaches one, [`install_hook`] turns the panic into one line that names
//! the exercise and the command that explains it.
//!
//! [`stubbed`] serves `cargo xtask verify`, which builds the workspace once
//! with every exercise guarded by it and then stubs any set of exercises
//! at run time (`COURSE_STUBS=1.2,1.5`), instead of rebuilding per set.

use std::ffi::CStr;

/// The exercise id in a stub's panic message
/// (`not yet implemented: exercise 1.2: …` → `1.2`).
pub fn unsolved(message: &str) -> Option<&str> {
    let at = message.find("exercise ")?;
    let rest = &message[at + "exercise ".len()..];
    let id = &rest[..rest.find(':')?];
    let valid = id.split('.').count() == 2
        && id
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    valid.then_some(id)
}

/// The line an unsolved exercise prints.
pub fn unsolved_line(id: &str) -> String {
    format!("exercise {id} is not solved yet — cargo xtask hint {id}")
}

/// Installs a panic hook that prints one line for an unsolved exercise and
/// leaves every other panic to the default hook. The panic still unwinds,
/// so guards (mounts, cgroups) are cleaned up on the way out.
pub fn install_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        match unsolved(message) {
            Some(id) => eprintln!("{}", unsolved_line(id)),
            None => default(info),
        }
    }));
}

/// The variable `cargo xtask verify` lists the stubbed exercises in.
pub const STUBS_ENV: &CStr = c"COURSE_STUBS";

/// Whether exercise `id` is to behave as a stub in this run: listed in
/// `COURSE_STUBS` (comma-separated ids, or `N.*` for a whole chapter, or
/// `N.M+` for that exercise and every later one). Async-signal-safe (it
/// runs in cloned children): `getenv(3)` scans the environment without a
/// lock, and nothing is allocated.
pub fn stubbed(id: &str) -> bool {
    // SAFETY: getenv returns a pointer into the environment or NULL; the
    // environment is not changed while the program runs.
    let value = unsafe { libc::getenv(STUBS_ENV.as_ptr()) };
    if value.is_null() {
        return false;
    }
    // SAFETY: a non-NULL getenv result is a NUL-terminated string.
    let list = unsafe { CStr::from_ptr(value) }.to_bytes();
    list.split(|b| *b == b',').any(|item| matches(item, id))
}

fn matches(item: &[u8], id: &str) -> bool {
    let id = id.as_bytes();
    if let Some(chapter) = item.strip_suffix(b".*") {
        return id.len() > chapter.len() + 1
            && id.starts_with(chapter)
            && id[chapter.len()] == b'.';
    }
    if let Some(from) = item.strip_suffix(b"+") {
        return order_key(id) >= order_key(from) && order_key(from).is_some();
    }
    item == id
}

/// `b"1.12"` → (1, 12).
fn order_key(id: &[u8]) -> Option<(u32, u32)> {
    let mut parts = id.split(|b| *b == b'.');
    let mut number = || -> Option<u32> {
        let part = parts.next()?;
        if part.is_empty() {
            return None;
        }
        part.iter().try_fold(0u32, |n, b| {
            b.is_ascii_digit()
                .then(|| n.saturating_mul(10).saturating_add(u32::from(b - b'0')))
        })
    };
    Some((number()?, number()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stub_messages_name_their_exercise() {
        assert_eq!(
            unsolved("not yet implemented: exercise 1.12: pivot into the root"),
            Some("1.12")
        );
        assert_eq!(unsolved("index out of bounds"), None);
        assert_eq!(unsolved("exercise one: x"), None);
    }

    #[test]
    fn stub_lists_name_ids_chapters_and_tails() {
        assert!(matches(b"1.2", "1.2"));
        assert!(!matches(b"1.2", "1.12"));
        assert!(matches(b"1.*", "1.12"));
        assert!(!matches(b"1.*", "11.2"));
        assert!(matches(b"1.5+", "1.12"));
        assert!(matches(b"1.5+", "3.1"));
        assert!(!matches(b"1.5+", "1.4"));
    }
}
