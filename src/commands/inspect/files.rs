//! `inspect`'s report on what an image's files are: what `--slim-erts` left out (from the
//! [`minimal::SLIM_LABEL`] label) and, with `--files`, every layer's entries; for the minimal
//! base, why each is there (from [`minimal::REASONS_PATH`] in that layer).

use crate::minimal::{self, Reasons};
use crate::sink::{self, EntryType, ImageInfo, LayerEntry, Target, human_size};
use anyhow::Context;
use std::collections::BTreeSet;
use std::fmt::Write;

/// How many consumers a "needed by" reason names before it says how many more there are.
const MAX_NAMED: usize = 4;

/// `Left out ...` when the image was built with `--slim-erts`; empty otherwise.
pub fn slimmed(info: &ImageInfo) -> String {
    let labels = info.config.config().as_ref().and_then(|c| c.labels().clone()).unwrap_or_default();
    match labels.get(minimal::SLIM_LABEL) {
        Some(v) if v.trim().is_empty() => "Left out    nothing (--slim-erts)\n".to_string(),
        Some(v) => {
            let mut out = String::new();
            for (i, path) in v.split_whitespace().enumerate() {
                let head = if i == 0 { "Left out" } else { "" };
                let _ = writeln!(out, "{head:<12}{path}");
            }
            let _ = writeln!(out, "{:<12}(ERTS programs and directories a server never runs: --slim-erts)", "");
            out
        }
        None => String::new(),
    }
}

/// Every layer's entries, in order; entries of a layer that carries the minimal base's reasons
/// say why they are there.
pub fn list(target: &Target, info: &ImageInfo) -> anyhow::Result<String> {
    let mut out = String::from("Files\n");
    for (i, layer) in info.layers.iter().enumerate() {
        let listing = sink::list_layer(target, layer, Some(minimal::REASONS_PATH))
            .with_context(|| format!("listing layer {i} ({}) of {target}", layer.digest))?;
        let reasons = match &listing.captured {
            Some(bytes) => Some(
                Reasons::from_json(bytes)
                    .with_context(|| format!("reading /{} in layer {i}", minimal::REASONS_PATH))?,
            ),
            None => None,
        };
        let by = layer.created_by.as_deref().unwrap_or("");
        let _ = writeln!(
            out,
            "  layer {i}  sha256:{}  {} compressed  {} entries  {by}",
            &layer.digest.hex()[..12],
            human_size(layer.size),
            listing.entries.len()
        );
        for e in &listing.entries {
            let why = reasons.as_ref().and_then(|r| r.lookup(&e.path)).map(summarise).unwrap_or_default();
            out.push_str(&entry_line(e, &why));
        }
    }
    Ok(out)
}

fn entry_line(e: &LayerEntry, why: &str) -> String {
    let size = if e.kind == EntryType::File { human_size(e.size) } else { String::new() };
    let link = match (&e.link, e.kind) {
        (Some(l), EntryType::Symlink) => format!(" -> {l}"),
        (Some(l), EntryType::HardLink) => format!(" => {l}"),
        _ => String::new(),
    };
    let why = if why.is_empty() { String::new() } else { format!("  # {why}") };
    format!("    {} {:04o} {size:>10}  {}{link}{why}\n", e.kind.letter(), e.mode & 0o7777, e.path)
}

/// The reasons as one line: the `needed by` ones merged (`needed by a, b, c, d and 3 more`).
fn summarise(reasons: &BTreeSet<String>) -> String {
    let needed: Vec<&str> = reasons.iter().filter_map(|r| r.strip_prefix("needed by ")).collect();
    let mut parts: Vec<String> = reasons.iter().filter(|r| !r.starts_with("needed by ")).cloned().collect();
    if !needed.is_empty() {
        let mut s = format!("needed by {}", needed.iter().take(MAX_NAMED).copied().collect::<Vec<_>>().join(", "));
        if needed.len() > MAX_NAMED {
            let _ = write!(s, " and {} more", needed.len() - MAX_NAMED);
        }
        parts.insert(0, s);
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_summarised_on_one_line() {
        let r: BTreeSet<String> = ["needed by a", "needed by b", "CA certificates"].map(String::from).into();
        assert_eq!(summarise(&r), "needed by a, b; CA certificates");
        let many: BTreeSet<String> = (0..7).map(|i| format!("needed by p{i}")).collect();
        assert_eq!(summarise(&many), "needed by p0, p1, p2, p3 and 3 more");
    }

    #[test]
    fn entry_lines_show_kind_mode_size_link_and_why() {
        let e = LayerEntry {
            path: "usr/bin/sh".into(),
            kind: EntryType::Symlink,
            mode: 0o777,
            size: 0,
            link: Some("busybox".into()),
        };
        assert_eq!(entry_line(&e, "shell"), format!("    l 0777 {:>10}  usr/bin/sh -> busybox  # shell\n", ""));
        let f = LayerEntry { path: "tmp".into(), kind: EntryType::Dir, mode: 0o41777, size: 0, link: None };
        assert!(entry_line(&f, "").starts_with("    d 1777"), "{}", entry_line(&f, ""));
    }
}
