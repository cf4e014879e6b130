//! Words and substitution as the Dockerfile reads them (not a shell: RUN's
//! text goes to the image's shell untouched): quotes group and are removed,
//! the escape character takes the next character literally, and `$VAR`,
//! `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:+alt}`,
//! `${VAR+alt}` are replaced from the build's variables (ENV and ARG so far).
//! Inside single quotes nothing is replaced.

use std::collections::BTreeMap;

/// The variables a substitution sees.
pub type Vars = BTreeMap<String, String>;

/// `text` as one word, substituted and unquoted (WORKDIR, USER, …).
pub fn expand(text: &str, vars: &Vars, escape: char) -> Result<String, String> {
    Ok(lex(text, vars, escape, false)?.join(""))
}

/// `text` split into words at unquoted blanks, each substituted and
/// unquoted (EXPOSE, VOLUME, COPY's sources, ENV's pairs).
pub fn words(text: &str, vars: &Vars, escape: char) -> Result<Vec<String>, String> {
    lex(text, vars, escape, true)
}

/// `text` split at unquoted blanks, quotes and escapes kept and nothing
/// substituted: ENV and LABEL pairs are split first, substituted after,
/// each against the variables before the instruction.
pub fn raw_words(text: &str, escape: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                continue;
            }
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (Some('\''), _) => {}
            (_, c) if c == escape => {
                cur.push(c);
                if let Some(next) = chars.next() {
                    cur.push(next);
                }
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn lex(text: &str, vars: &Vars, escape: char, split: bool) -> Result<Vec<String>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if split && c.is_whitespace() {
            if in_word {
                out.push(std::mem::take(&mut cur));
                in_word = false;
            }
            i += 1;
            continue;
        }
        in_word = true;
        i += 1;
        match c {
            '\'' => {
                let end = find(&chars, i, '\'')
                    .ok_or_else(|| format!("unmatched single quote in {text:?}"))?;
                cur.extend(&chars[i..end]);
                i = end + 1;
            }
            '"' => loop {
                let Some(&d) = chars.get(i) else {
                    return Err(format!("unmatched double quote in {text:?}"));
                };
                i += 1;
                match d {
                    '"' => break,
                    '$' => i = dollar(&chars, i, vars, escape, &mut cur)?,
                    d if d == escape && i < chars.len() => {
                        let next = chars[i];
                        // Inside double quotes only these are escaped.
                        if !matches!(next, '"' | '$') && next != escape {
                            cur.push(d);
                        }
                        cur.push(next);
                        i += 1;
                    }
                    d => cur.push(d),
                }
            },
            '$' => i = dollar(&chars, i, vars, escape, &mut cur)?,
            c if c == escape => match chars.get(i) {
                Some(&next) => {
                    cur.push(next);
                    i += 1;
                }
                None => cur.push(c),
            },
            c => cur.push(c),
        }
    }
    if in_word || !split {
        out.push(cur);
    }
    Ok(out)
}

fn find(chars: &[char], from: usize, wanted: char) -> Option<usize> {
    (from..chars.len()).find(|&j| chars[j] == wanted)
}

fn is_name(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// A substitution starting after the `$` at `i`; returns where reading goes on.
fn dollar(
    chars: &[char],
    i: usize,
    vars: &Vars,
    escape: char,
    out: &mut String,
) -> Result<usize, String> {
    match chars.get(i) {
        Some('{') => {
            // The matching brace, nested substitutions counted.
            let mut depth = 1;
            let mut j = i + 1;
            while j < chars.len() {
                match chars[j] {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            if j >= chars.len() {
                return Err(format!(
                    "missing '}}' in ${{{}",
                    chars[i + 1..].iter().collect::<String>()
                ));
            }
            let inner: String = chars[i + 1..j].iter().collect();
            let name_end = inner.find(|c: char| !is_name(c)).unwrap_or(inner.len());
            let (name, op) = inner.split_at(name_end);
            if name.is_empty() {
                return Err(format!("bad substitution: ${{{inner}}}"));
            }
            let value = vars.get(name);
            let set_nonempty = value.is_some_and(|v| !v.is_empty());
            let word = |w: &str| expand(w, vars, escape);
            let replaced = match op {
                "" => value.cloned().unwrap_or_default(),
                _ if op.starts_with(":-") => match set_nonempty {
                    true => value.cloned().unwrap_or_default(),
                    false => word(&op[2..])?,
                },
                _ if op.starts_with(":+") => match set_nonempty {
                    true => word(&op[2..])?,
                    false => String::new(),
                },
                _ if op.starts_with('-') => match value {
                    Some(v) => v.clone(),
                    None => word(&op[1..])?,
                },
                _ if op.starts_with('+') => match value {
                    Some(_) => word(&op[1..])?,
                    None => String::new(),
                },
                _ => {
                    return Err(format!(
                        "unsupported modifier in ${{{inner}}}: use ${{{name}}}, ${{{name}:-default}} or ${{{name}:+alt}}"
                    ))
                }
            };
            out.push_str(&replaced);
            Ok(j + 1)
        }
        Some(&c) if is_name(c) && !c.is_ascii_digit() => {
            let mut j = i;
            while j < chars.len() && is_name(chars[j]) {
                j += 1;
            }
            let name: String = chars[i..j].iter().collect();
            out.push_str(vars.get(&name).map(String::as_str).unwrap_or(""));
            Ok(j)
        }
        _ => {
            out.push('$');
            Ok(i)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        [("A", "1"), ("EMPTY", ""), ("P", "/usr/bin")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn substitutions() {
        let v = vars();
        let e = |t: &str| expand(t, &v, '\\').unwrap();
        assert_eq!(e("$A-${A}x"), "1-1x");
        assert_eq!(e("${NONE:-d}/${EMPTY:-e}/${EMPTY-f}/${A:-g}"), "d/e//1");
        assert_eq!(
            e("${A:+yes}/${EMPTY:+no}/${EMPTY+set}/${NONE+x}"),
            "yes//set/"
        );
        assert_eq!(e("${NONE:-$P/x}"), "/usr/bin/x");
        assert_eq!(e("'$A' \"$A\" \\$A $"), "$A 1 $A $");
        assert!(expand("${A", &v, '\\').is_err());
        assert!(expand("${A?x}", &v, '\\')
            .unwrap_err()
            .contains("unsupported"));
    }

    #[test]
    fn words_split_at_unquoted_blanks() {
        let v = vars();
        assert_eq!(
            words(r#"a "b c" d\ e '$A' $A"#, &v, '\\').unwrap(),
            ["a", "b c", "d e", "$A", "1"]
        );
        assert_eq!(
            raw_words(r#"k="a b" x=\ y"#, '\\'),
            [r#"k="a b""#, r"x=\ y"]
        );
    }
}
