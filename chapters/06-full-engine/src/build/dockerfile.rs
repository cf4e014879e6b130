//! The Dockerfile's grammar: parser directives, comments, line
//! continuations, instructions with their `--flags`, and the two forms of a
//! command (exec, a JSON array; shell, a string).
//!
//! What each instruction *means* is the builder's ([`super`]); this module
//! only says what was written, and where.

/// One logical line: an instruction as written, continuations joined.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    /// The 1-based number of its first physical line.
    pub number: usize,
    pub text: String,
}

/// The parser directives at the top of a Dockerfile (`# escape=\``).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Directives {
    /// The escape character: `\` unless `# escape=` says `` ` ``.
    pub escape: char,
}

/// An instruction: its keyword (upper case), its `--name=value` flags, the
/// rest of its line, and where it was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instruction {
    pub line: usize,
    pub keyword: String,
    pub flags: Vec<(String, String)>,
    pub rest: String,
    /// The logical line as written (for `Step 3/7 : …`).
    pub original: String,
}

impl Instruction {
    /// The value of flag `--name`, if given.
    pub fn flag(&self, name: &str) -> Option<&str> {
        self.flags
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A command as written: `["a", "b"]` or a string for the shell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Exec(Vec<String>),
    Shell(String),
}

impl Command {
    /// The exec form when the text is a JSON array of strings, else the
    /// shell form (Docker's rule: text that is not valid JSON is a shell
    /// command, even if it starts with `[`).
    pub fn parse(text: &str) -> Command {
        let t = text.trim();
        if t.starts_with('[') {
            if let Ok(words) = serde_json::from_str::<Vec<String>>(t) {
                return Command::Exec(words);
            }
        }
        Command::Shell(t.to_string())
    }

    /// The argv: the exec form as it is, the shell form after `shell`.
    pub fn argv(&self, shell: &[String]) -> Vec<String> {
        match self {
            Command::Exec(words) => words.clone(),
            Command::Shell(text) => shell.iter().cloned().chain([text.clone()]).collect(),
        }
    }
}

/// The instructions the builder knows.
pub const KEYWORDS: &[&str] = &[
    "FROM",
    "RUN",
    "CMD",
    "ENTRYPOINT",
    "COPY",
    "ADD",
    "ENV",
    "ARG",
    "WORKDIR",
    "USER",
    "EXPOSE",
    "LABEL",
    "VOLUME",
    "STOPSIGNAL",
    "SHELL",
    "HEALTHCHECK",
    "ONBUILD",
    "MAINTAINER",
];

/// Reads the parser directives: `# name=value` lines at the very top,
/// before any comment, blank line or instruction. Only `escape` means
/// anything here (`syntax` selects a BuildKit frontend: ignored, as the
/// classic builder ignores it).
pub fn directives(text: &str) -> Result<Directives, (usize, String)> {
    let mut d = Directives { escape: '\\' };
    let mut seen = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let Some(body) = line.trim().strip_prefix('#') else {
            break;
        };
        let Some((name, value)) = body.split_once('=') else {
            break;
        };
        let name = name.trim().to_ascii_lowercase();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric()) {
            break;
        }
        if seen.contains(&name) {
            return Err((
                i + 1,
                format!("only one {name} parser directive can be used"),
            ));
        }
        seen.push(name.clone());
        if name == "escape" {
            d.escape = match value.trim() {
                "\\" => '\\',
                "`" => '`',
                other => {
                    return Err((
                        i + 1,
                        format!("invalid escape token {other:?}: use \\ or `"),
                    ))
                }
            };
        }
    }
    Ok(d)
}

// ANCHOR: logical_lines
// exercise 6.14: join a Dockerfile's physical lines into logical ones
// hint: A Dockerfile is read line by line, but an instruction may go on over
//   several lines: a line whose last character (trailing spaces ignored) is
//   the escape character continues on the next one. The escape is dropped
//   and the next line appended as it is (its leading spaces kept).
// hint: Comment lines (first non-blank character `#`) and blank lines are
//   not instructions, and inside a continuation they are skipped, not an
//   end: `RUN a \` + `# note` + `  b` is `RUN a   b`. Each logical line
//   remembers the number of its first physical line (errors name it), and a
//   continuation still open at the end of the file just ends there. Strip
//   a trailing `\r` (Windows line ends); leading blanks of an instruction
//   go.
// hint: The Dockerfile reference, "Format", "Parser directives" and
//   "escape"; BuildKit's frontend/dockerfile/parser (Parse).
pub fn logical_lines(text: &str, escape: char) -> Vec<Line> {
    let mut out = Vec::new();
    let mut current: Option<Line> = None;
    for (i, raw) in text.lines().enumerate() {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let trimmed = raw.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let piece = if current.is_some() { raw } else { trimmed };
        let end = piece.trim_end();
        let (piece, continues) = match end.strip_suffix(escape) {
            Some(before) => (before, true),
            None => (piece, false),
        };
        let line = current.get_or_insert_with(|| Line {
            number: i + 1,
            text: String::new(),
        });
        line.text.push_str(piece);
        if !continues {
            out.extend(current.take());
        }
    }
    out.extend(current);
    out
}
// ANCHOR_END: logical_lines

/// Parses a Dockerfile into instructions. An error is (line, message).
pub fn parse(text: &str) -> Result<(Directives, Vec<Instruction>), (usize, String)> {
    let d = directives(text)?;
    let mut out = Vec::new();
    for line in logical_lines(text, d.escape) {
        let text = line.text.trim();
        let (word, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
        let keyword = word.to_ascii_uppercase();
        if !KEYWORDS.contains(&keyword.as_str()) {
            return Err((
                line.number,
                format!(
                    "unknown instruction: {word} (the instructions are {})",
                    KEYWORDS.join(", ")
                ),
            ));
        }
        let (flags, rest) = split_flags(rest.trim_start());
        out.push(Instruction {
            line: line.number,
            keyword,
            flags,
            rest: rest.trim().to_string(),
            original: text.to_string(),
        });
    }
    if out.is_empty() {
        return Err((1, "the Dockerfile has no instructions".into()));
    }
    Ok((d, out))
}

/// `--from=build --chown=1:1 a b` → the flags and `a b`. A flag ends at
/// the first blank; `--` alone ends the flags.
fn split_flags(mut rest: &str) -> (Vec<(String, String)>, &str) {
    let mut flags = Vec::new();
    while let Some(after) = rest.strip_prefix("--") {
        let (word, tail) = after.split_once(char::is_whitespace).unwrap_or((after, ""));
        rest = tail.trim_start();
        if word.is_empty() {
            break;
        }
        let (name, value) = word.split_once('=').unwrap_or((word, ""));
        flags.push((name.to_ascii_lowercase(), value.to_string()));
    }
    (flags, rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_come_off_the_front() {
        let (_, ins) = parse("copy --from=b --chown=1:2 a b\n").unwrap();
        assert_eq!(ins[0].keyword, "COPY");
        assert_eq!(ins[0].flag("from"), Some("b"));
        assert_eq!(ins[0].flag("chown"), Some("1:2"));
        assert_eq!(ins[0].rest, "a b");
    }

    #[test]
    fn the_escape_directive_changes_the_continuation() {
        let text = "# escape=`\nFROM x\nRUN dir c:\\ `\n  && echo\n";
        let (d, ins) = parse(text).unwrap();
        assert_eq!(d.escape, '`');
        assert_eq!(ins[1].rest, "dir c:\\   && echo");
    }

    #[test]
    fn directives_end_at_the_first_other_line() {
        let (d, _) = parse("FROM x\n# escape=`\n").unwrap();
        assert_eq!(d.escape, '\\');
        assert!(parse("# escape=x\nFROM a")
            .unwrap_err()
            .1
            .contains("escape"));
    }

    #[test]
    fn commands_have_two_forms() {
        assert_eq!(
            Command::parse(r#"["a", "b c"]"#),
            Command::Exec(vec!["a".into(), "b c".into()])
        );
        assert_eq!(
            Command::parse("[ -f x ] && y"),
            Command::Shell("[ -f x ] && y".into())
        );
    }

    #[test]
    fn unknown_instructions_are_named_with_their_line() {
        let e = parse("FROM a\n\nCOPPY x y\n").unwrap_err();
        assert_eq!(e.0, 3);
        assert!(e.1.contains("unknown instruction: COPPY"), "{}", e.1);
    }
}
