//! Declared licences as SPDX license expressions: the names a package's metadata gives (Hex's
//! `licenses`, free text in old packages, SPDX identifiers in new ones) mapped to SPDX
//! identifiers where the name is one (in any case) or a common spelling of one ("Apache 2.0",
//! "MIT License"); any other name becomes a `LicenseRef-` of the document, with the name as its
//! text, so validators accept the document and nothing is guessed. Several names are joined with
//! `AND` (each applies, as far as the metadata says).

use std::collections::BTreeMap;

/// SPDX identifiers (current, not deprecated) that packages of the BEAM ecosystem use.
const IDS: &[&str] = &[
    "0BSD",
    "AGPL-3.0-only",
    "AGPL-3.0-or-later",
    "Apache-1.1",
    "Apache-2.0",
    "Artistic-2.0",
    "BlueOak-1.0.0",
    "BSD-1-Clause",
    "BSD-2-Clause",
    "BSD-3-Clause",
    "BSD-3-Clause-Clear",
    "BSD-4-Clause",
    "BSL-1.0",
    "CC-BY-4.0",
    "CC-BY-SA-4.0",
    "CC0-1.0",
    "CDDL-1.0",
    "EPL-1.0",
    "EPL-2.0",
    "ErlPL-1.1",
    "EUPL-1.2",
    "GPL-2.0-only",
    "GPL-2.0-or-later",
    "GPL-3.0-only",
    "GPL-3.0-or-later",
    "ISC",
    "LGPL-2.1-only",
    "LGPL-2.1-or-later",
    "LGPL-3.0-only",
    "LGPL-3.0-or-later",
    "MIT",
    "MIT-0",
    "MPL-1.1",
    "MPL-2.0",
    "OpenSSL",
    "PostgreSQL",
    "Python-2.0",
    "Ruby",
    "Unicode-DFS-2016",
    "Unlicense",
    "UPL-1.0",
    "WTFPL",
    "X11",
    "Zlib",
];

/// Common spellings (lower case, separators as spaces) → identifier.
const ALIASES: &[(&str, &str)] = &[
    ("apache 2", "Apache-2.0"),
    ("apache 2.0", "Apache-2.0"),
    ("apache v2", "Apache-2.0"),
    ("apache v2.0", "Apache-2.0"),
    ("apache license 2.0", "Apache-2.0"),
    ("apache license v2.0", "Apache-2.0"),
    ("apache license version 2.0", "Apache-2.0"),
    ("apache software license 2.0", "Apache-2.0"),
    ("asl 2.0", "Apache-2.0"),
    ("mit license", "MIT"),
    ("the mit license", "MIT"),
    ("expat", "MIT"),
    ("isc license", "ISC"),
    ("mpl 2.0", "MPL-2.0"),
    ("mozilla public license 2.0", "MPL-2.0"),
    ("bsd 2 clause", "BSD-2-Clause"),
    ("bsd 3 clause", "BSD-3-Clause"),
    ("new bsd", "BSD-3-Clause"),
    ("simplified bsd", "BSD-2-Clause"),
    ("erlang public license", "ErlPL-1.1"),
    ("epl 1.1", "ErlPL-1.1"),
    ("gpl 2.0", "GPL-2.0-only"),
    ("gpl 3.0", "GPL-3.0-only"),
    ("gplv2", "GPL-2.0-only"),
    ("gplv3", "GPL-3.0-only"),
    ("gpl 2.0+", "GPL-2.0-or-later"),
    ("gpl 3.0+", "GPL-3.0-or-later"),
    ("lgpl 2.1", "LGPL-2.1-only"),
    ("lgpl 3.0", "LGPL-3.0-only"),
    ("lgpl 2.1+", "LGPL-2.1-or-later"),
    ("lgpl 3.0+", "LGPL-3.0-or-later"),
    ("agpl 3.0", "AGPL-3.0-only"),
    ("unlicense", "Unlicense"),
    ("the unlicense", "Unlicense"),
    ("public domain", "Unlicense"),
    ("cc0", "CC0-1.0"),
    ("boost", "BSL-1.0"),
];

/// A licence the document defines (`hasExtractedLicensingInfos`): a name no SPDX identifier
/// matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extracted {
    pub id: String,
    pub name: String,
}

/// The `LicenseRef-`s of one document, by the name they stand for.
#[derive(Debug, Default)]
pub struct Refs {
    by_name: BTreeMap<String, String>,
    order: Vec<Extracted>,
}

impl Refs {
    /// The expression for the names `licenses` (NOASSERTION when there are none).
    pub fn expression(&mut self, licenses: &[String]) -> String {
        let mut parts: Vec<String> = Vec::new();
        for name in licenses.iter().map(|l| l.trim()).filter(|l| !l.is_empty()) {
            let part = match expression_of(name) {
                Some(e) if licenses.len() > 1 && e.contains(" OR ") => format!("({e})"),
                Some(e) => e,
                None => self.reference(name),
            };
            if !parts.contains(&part) {
                parts.push(part);
            }
        }
        if parts.is_empty() { "NOASSERTION".to_string() } else { parts.join(" AND ") }
    }

    /// The licences defined so far, in the order they were first met.
    pub fn extracted(&self) -> &[Extracted] {
        &self.order
    }

    fn reference(&mut self, name: &str) -> String {
        if let Some(id) = self.by_name.get(name) {
            return id.clone();
        }
        let clean: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' { c } else { '-' }).collect();
        let clean = clean.split('-').filter(|p| !p.is_empty()).collect::<Vec<_>>().join("-");
        let base = format!("LicenseRef-{}", if clean.is_empty() { "unnamed" } else { &clean });
        let mut id = base.clone();
        let mut n = 2;
        while self.order.iter().any(|e| e.id == id) {
            id = format!("{base}-{n}");
            n += 1;
        }
        self.by_name.insert(name.to_string(), id.clone());
        self.order.push(Extracted { id: id.clone(), name: name.to_string() });
        id
    }
}

/// The SPDX identifier `name` is, in any case, or is a common spelling of.
pub fn identifier(name: &str) -> Option<&'static str> {
    let name = name.trim();
    if let Some(id) = IDS.iter().find(|id| id.eq_ignore_ascii_case(name)) {
        return Some(id);
    }
    let key: String =
        name.to_lowercase().replace(['-', '_', ','], " ").split_whitespace().collect::<Vec<_>>().join(" ");
    let key = key.replace(" +", "+");
    ALIASES.iter().find(|(alias, _)| *alias == key).map(|(_, id)| *id)
}

/// `name` as an expression: one identifier, or identifiers joined by `OR`/`AND` (a package that
/// wrote an SPDX expression); None when any part is not an identifier.
fn expression_of(name: &str) -> Option<String> {
    if let Some(id) = identifier(name) {
        return Some(id.to_string());
    }
    let words: Vec<&str> = name.split_whitespace().collect();
    if words.len() < 3 || words.len().is_multiple_of(2) {
        return None;
    }
    let mut out = Vec::new();
    for (i, w) in words.iter().enumerate() {
        if i % 2 == 1 {
            let op = w.to_uppercase();
            if op != "OR" && op != "AND" {
                return None;
            }
            out.push(op);
        } else {
            out.push(identifier(w)?.to_string());
        }
    }
    Some(out.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn identifiers_and_common_spellings() {
        assert_eq!(identifier("Apache-2.0"), Some("Apache-2.0"));
        assert_eq!(identifier("apache-2.0"), Some("Apache-2.0"));
        assert_eq!(identifier("Apache 2.0"), Some("Apache-2.0"));
        assert_eq!(identifier("Apache License, Version 2.0"), Some("Apache-2.0"));
        assert_eq!(identifier("MIT License"), Some("MIT"));
        assert_eq!(identifier("BSD 3-Clause"), Some("BSD-3-Clause"));
        assert_eq!(identifier("GPL-2.0+"), Some("GPL-2.0-or-later"));
        assert_eq!(identifier("BSD"), None);
    }

    #[test]
    fn expressions_join_with_and_and_unknown_names_become_refs() {
        let mut refs = Refs::default();
        assert_eq!(refs.expression(&names(&["Apache 2.0"])), "Apache-2.0");
        assert_eq!(refs.expression(&names(&["MIT", "Apache-2.0"])), "MIT AND Apache-2.0");
        assert_eq!(refs.expression(&names(&["MIT or Apache-2.0"])), "MIT OR Apache-2.0");
        assert_eq!(refs.expression(&names(&["MIT OR Apache-2.0", "ISC"])), "(MIT OR Apache-2.0) AND ISC");
        assert_eq!(refs.expression(&[]), "NOASSERTION");
        assert_eq!(refs.expression(&names(&["", " "])), "NOASSERTION");
        assert_eq!(refs.expression(&names(&["BSD", "MIT"])), "LicenseRef-BSD AND MIT");
        // The same name, the same reference; another name that cleans up the same, another one.
        assert_eq!(refs.expression(&names(&["BSD"])), "LicenseRef-BSD");
        assert_eq!(refs.expression(&names(&["BSD!"])), "LicenseRef-BSD-2");
        assert_eq!(
            refs.expression(&names(&["Copyright (c) ACME, all rights"])),
            "LicenseRef-Copyright-c-ACME-all-rights"
        );
        let ids: Vec<&str> = refs.extracted().iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["LicenseRef-BSD", "LicenseRef-BSD-2", "LicenseRef-Copyright-c-ACME-all-rights"]);
        assert_eq!(refs.extracted()[1].name, "BSD!");
    }
}
