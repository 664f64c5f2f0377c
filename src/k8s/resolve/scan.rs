//! Finding `release-oci://PATH` scalars in a YAML stream and replacing them in place.
//!
//! The text is parsed with `saphyr-parser`, which reports where each scalar is; only those
//! scalars' own characters are rewritten, so everything else (comments, key order, quoting,
//! blank lines, other documents) comes out byte for byte as it went in.

use saphyr_parser::{Event, Parser, ScalarStyle};
use std::ops::Range;

/// The scheme of an image reference that `resolve` builds and replaces.
pub const SCHEME: &str = "release-oci://";

/// `release-oci://PATH#name=PREFIX` is a name made for the image (the migration Job's): it
/// becomes `PREFIX-` and the first digits of the image's digest when `resolve` pins the image.
pub const NAME_FRAGMENT: &str = "#name=";

/// A problem in the YAML text, with its 1-based position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct ScanError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// One `release-oci://PATH` scalar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// What follows the scheme: the project's path.
    pub target: String,
    /// `Some(PREFIX)` for `release-oci://PATH#name=PREFIX`: a name, not the image.
    pub name_prefix: Option<String>,
    /// 1-based line of the scalar.
    pub line: usize,
    /// Bytes of the text that the replacement takes the place of.
    range: Range<usize>,
    /// Quote written around the replacement (`'`, `"`), if the scalar was quoted.
    quote: Option<char>,
}

/// The `release-oci://` scalars of `text`, in order. Fails when the text is not YAML.
pub fn find_references(text: &str) -> Result<Vec<Reference>, ScanError> {
    // Spans count characters; slicing needs bytes.
    let bytes: Vec<usize> = text.char_indices().map(|(b, _)| b).chain(std::iter::once(text.len())).collect();
    let byte_at = |chars: usize| bytes.get(chars).copied().unwrap_or(text.len());
    let mut refs = Vec::new();
    for item in Parser::new_from_str(text) {
        let (event, span) = item.map_err(|e| ScanError {
            line: e.marker().line(),
            column: e.marker().col() + 1,
            message: e.info().to_string(),
        })?;
        let Event::Scalar(value, style, ..) = event else { continue };
        if !value.starts_with(SCHEME) {
            continue;
        }
        let (line, column) = (span.start.line(), span.start.col() + 1);
        let err = |message: String| ScanError { line, column, message };
        let (target, name_prefix) = split_name(value[SCHEME.len()..].trim_end()).map_err(err)?;
        if target.is_empty() || target.contains('\n') {
            return Err(err(format!("{:?} names no project path: write {SCHEME}PATH", value.trim_end())));
        }
        let whole = byte_at(span.start.index())..byte_at(span.end.index());
        let (range, quote) = match style {
            // A block scalar's span is its content: keep the indicator, indentation and line breaks.
            ScalarStyle::Literal | ScalarStyle::Folded => {
                let content = text[whole.clone()].trim_end();
                if content != value.trim_end() {
                    return Err(err(format!("the block scalar {content:?} is not a single-line image reference")));
                }
                (whole.start..whole.start + content.len(), None)
            }
            ScalarStyle::Plain | ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => {
                // The span starts with the node's anchor and tag, if any: skip them.
                let token_start = whole.start + properties_len(&text[whole.clone()]);
                let token = &text[token_start..whole.end];
                let quote = match style {
                    ScalarStyle::SingleQuoted => Some('\''),
                    ScalarStyle::DoubleQuoted => Some('"'),
                    _ => None,
                };
                // A quoted scalar's span may run past its closing quote (to a comment): find it.
                let len = match quote {
                    Some(q) => quoted_len(token, q),
                    None => (token == &*value).then_some(token.len()),
                };
                let Some(len) = len else {
                    return Err(err(format!("cannot locate the image reference {token:?}; write it on one line")));
                };
                (token_start..token_start + len, quote)
            }
        };
        refs.push(Reference { target, name_prefix, line, range, quote });
    }
    Ok(refs)
}

/// `PATH#name=PREFIX` → (`PATH`, `Some(PREFIX)`), with the prefix checked: the name it becomes
/// must be an RFC 1035 label.
fn split_name(target: &str) -> Result<(String, Option<String>), String> {
    let Some((path, prefix)) = target.rsplit_once(NAME_FRAGMENT) else { return Ok((target.to_string(), None)) };
    let max = crate::k8s::naming::MAX_DIGEST_PREFIX;
    if prefix.len() > max || crate::k8s::naming::check_name("a name prefix", prefix).is_err() {
        return Err(format!(
            "{NAME_FRAGMENT}{prefix:?} is not a name prefix: use at most {max} lowercase letters, digits and `-`, \
             starting with a letter and ending with a letter or digit"
        ));
    }
    Ok((path.to_string(), Some(prefix.to_string())))
}

/// Bytes of anchors (`&a`) and tags (`!!str`) and the blanks after them at the start of `s`.
fn properties_len(s: &str) -> usize {
    let mut i = 0;
    loop {
        let rest = &s[i..];
        let blank = rest.len() - rest.trim_start().len();
        let rest = &rest[blank..];
        if !(rest.starts_with('&') || rest.starts_with('!')) {
            return i + blank;
        }
        i += blank + rest.find(char::is_whitespace).unwrap_or(rest.len());
    }
}

/// Bytes of the quoted scalar at the start of `s` (`q` is its quote), closing quote included:
/// `''` escapes a quote in single quotes, a backslash escapes anything in double quotes.
fn quoted_len(s: &str, q: char) -> Option<usize> {
    let mut chars = s.char_indices();
    if chars.next()?.1 != q {
        return None;
    }
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' if q == '"' => {
                chars.next();
            }
            c if c == q => {
                if q == '\'' && s[i + 1..].starts_with('\'') {
                    chars.next();
                } else {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

/// `text` with `refs[i]` replaced by `images[i]`, quoted as the original was.
pub fn substitute(text: &str, refs: &[Reference], images: &[&str]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    let mut order: Vec<(&Reference, &str)> = refs.iter().zip(images.iter().copied()).collect();
    order.sort_by_key(|(r, _)| r.range.start);
    for (r, new) in order {
        out.push_str(&text[at..r.range.start]);
        match r.quote {
            Some(q) => {
                out.push(q);
                out.push_str(new);
                out.push(q);
            }
            None => out.push_str(new),
        }
        at = r.range.end;
    }
    out.push_str(&text[at..]);
    out
}

/// Whether `s` can be written as it is in any of the scalar styles `substitute` writes: an image
/// reference never needs quoting or escaping, but a publisher's answer is checked all the same.
pub fn is_plain_safe(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || "-._/:@+".contains(c))
        && !s.starts_with(|c: char| "-:@".contains(c))
}
