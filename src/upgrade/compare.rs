//! The deployed release against the new one: what a hot upgrade would have to change, and whether
//! it can. Everything here reads the two release trees (the old one out of the deployed image's
//! layers, the new one from the builder) and decides; nothing runs.
//!
//! Refused (each with its reason; the build says "roll out the new image instead"): another name,
//! the same version, another ERTS or Erlang/OTP/Elixir, changed NIF shared objects, a changed
//! `runtime.exs`, config provider, `vm.args` or `env.sh`, changed protocol consolidation, a
//! dependency change without `--upgrade-deps`, an application whose files changed under the same
//! version, a release without `sasl`, relx releases (not supported yet), and changed modules whose
//! processes a drafted appup cannot handle (supervisors, the application callback module, a
//! process without `code_change`) unless the project supplies the appup.

use super::appup::{self, Instruction};
use super::draft::app_upgrade;
#[cfg(test)]
use super::start_up::config_providers;
use super::start_up::start_up_files;
use crate::release::{App, Flavour, Release};
use sha2::{Digest as _, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

/// What the comparison is given.
#[derive(Debug, Clone)]
pub struct Inputs<'a> {
    /// The deployed release (read out of its image: `/app`).
    pub old: &'a Release,
    pub new: &'a Release,
    /// The project's own applications and its dependencies (the builder's lists); every other
    /// application comes with Erlang/OTP or Elixir.
    pub own_apps: &'a BTreeSet<String>,
    pub dep_apps: &'a BTreeSet<String>,
    /// `--upgrade-deps`: dependencies may change too.
    pub upgrade_deps: bool,
    /// The project's appups: `rel/appups/APP.appup` (None: draft them all).
    pub appups_dir: Option<&'a Path>,
    /// The hook release-oci appends to `env.sh` in images (left out of the old `env.sh` before
    /// comparing: the new release's is compared as assembled).
    pub env_sh_hook: &'a str,
}

/// A hot upgrade that can be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradePlan {
    pub name: String,
    pub from: String,
    pub to: String,
    /// The applications whose version changed, each with its appup: their new `lib/` directories
    /// go into the package.
    pub apps: Vec<AppUpgrade>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppUpgrade {
    pub name: String,
    pub from: String,
    pub to: String,
    /// `lib/NAME-VSN` of the new release.
    pub dir: String,
    pub appup: Appup,
}

/// Where an application's appup comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appup {
    /// The project's `rel/appups/APP.appup`.
    Project { path: PathBuf, text: String },
    /// Shipped in the new release (`ebin/APP.appup`, as rebar3 and some Hex packages do).
    Shipped { text: String },
    /// Drafted from the modules.
    Drafted { instructions: Vec<Instruction> },
}

impl AppUpgrade {
    /// The `.appup` file's text.
    pub fn appup_text(&self) -> String {
        match &self.appup {
            Appup::Project { text, .. } | Appup::Shipped { text } => text.clone(),
            Appup::Drafted { instructions } => appup::render(&self.to, &self.from, instructions),
        }
    }
}

/// Why a hot upgrade cannot be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub name: String,
    pub from: String,
    pub to: String,
    pub reasons: Vec<String>,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "no hot upgrade of {} from {} to {}; roll out the new image instead (an ordinary deploy):",
            self.name, self.from, self.to
        )?;
        for r in &self.reasons {
            write!(f, "\n  - {r}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Refused {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Own,
    Dep,
    /// Erlang/OTP or Elixir.
    System,
}

/// Compares the releases; the plan, or every reason it cannot be done.
pub fn compare(i: &Inputs<'_>) -> Result<UpgradePlan, Refused> {
    let (old, new) = (i.old, i.new);
    let refuse = |reasons: Vec<String>| Refused {
        name: new.name.clone(),
        from: old.version.clone(),
        to: new.version.clone(),
        reasons,
    };
    if let Some(why) = not_comparable(old, new) {
        return Err(refuse(vec![why]));
    }
    let mut reasons = Vec::new();
    if old.required_erts != new.required_erts {
        reasons.push(format!(
            "ERTS {} -> {} (another Erlang/OTP): a new emulator cannot be loaded into a running one",
            old.required_erts, new.required_erts
        ));
    }
    reasons.extend(without_sasl(old, new));
    let olds: BTreeMap<&str, &App> = old.apps.iter().map(|a| (a.name.as_str(), a)).collect();
    let news: BTreeMap<&str, &App> = new.apps.iter().map(|a| (a.name.as_str(), a)).collect();
    let changed = changed_apps(i, &olds, &news, &mut reasons);
    reasons.extend(same_version_changes(old, new, &olds, &news));
    reasons.extend(native_code(old, new, &olds, &news));
    reasons.extend(start_up_files(i));
    let mut apps = Vec::new();
    for (o, n) in changed {
        match app_upgrade(i, o, n) {
            Ok(a) => apps.push(a),
            Err(mut r) => reasons.append(&mut r),
        }
    }
    for a in &apps {
        if let Some(w) = appup::restarts_emulator(&a.appup_text()) {
            reasons.push(format!("the appup of {} asks for {w}: that restarts the node", a.name));
        }
    }
    if reasons.is_empty() {
        Ok(UpgradePlan { name: new.name.clone(), from: old.version.clone(), to: new.version.clone(), apps })
    } else {
        Err(refuse(reasons))
    }
}

/// Why the two releases cannot be compared at all (then that is the only reason given).
fn not_comparable(old: &Release, new: &Release) -> Option<String> {
    if old.flavour != Flavour::Mix || new.flavour != Flavour::Mix {
        return Some("relx (rebar3) releases are not supported yet: only mix releases are".into());
    }
    if old.name != new.name {
        return Some(format!("the deployed image holds release {}, not {}", old.name, new.name));
    }
    if old.version == new.version {
        return Some(format!(
            "both releases are version {}: release_handler tells releases apart by version; bump the version",
            new.version
        ));
    }
    None
}

/// A release without `sasl` has no `release_handler` to apply the upgrade.
fn without_sasl(old: &Release, new: &Release) -> Vec<String> {
    let without =
        [(old, "deployed"), (new, "new")].into_iter().filter(|(r, _)| !r.apps.iter().any(|a| a.name == "sasl"));
    without
        .map(|(_, which)| {
            format!(
                "the {which} release has no sasl application, whose release_handler applies upgrades: add :sasl to \
                 extra_applications in mix.exs"
            )
        })
        .collect()
}

/// The applications whose version changed (the project's own, and dependencies); the reasons
/// against the upgrade found on the way (toolchain applications that differ, new or removed
/// applications, dependency changes without `--upgrade-deps`) go into `reasons`.
fn changed_apps<'r>(
    i: &Inputs<'_>,
    olds: &BTreeMap<&str, &'r App>,
    news: &BTreeMap<&str, &'r App>,
    reasons: &mut Vec<String>,
) -> Vec<(&'r App, &'r App)> {
    let kind = |name: &str| match (i.own_apps.contains(name), i.dep_apps.contains(name)) {
        (true, _) => Kind::Own,
        (_, true) => Kind::Dep,
        _ => Kind::System,
    };
    let (mut system, mut deps, mut changed) = (Vec::new(), Vec::new(), Vec::new());
    for (name, n) in news {
        match (olds.get(name), kind(name)) {
            (Some(o), k) if o.version != n.version => {
                match k {
                    Kind::System => system.push(format!("{name} {} -> {}", o.version, n.version)),
                    Kind::Dep => deps.push(format!("{name} {} -> {}", o.version, n.version)),
                    Kind::Own => {}
                }
                if k != Kind::System {
                    changed.push((*o, *n));
                }
            }
            (Some(_), _) => {}
            (None, Kind::System) => system.push(format!("{name} {} added", n.version)),
            (None, Kind::Dep) => deps.push(format!("{name} {} added", n.version)),
            (None, Kind::Own) => reasons
                .push(format!("application {name} is new: its supervision tree would have to be started; roll out")),
        }
    }
    for (name, o) in olds.iter().filter(|(name, _)| !news.contains_key(*name)) {
        match kind(name) {
            Kind::Dep => deps.push(format!("{name} {} removed", o.version)),
            _ if i.upgrade_deps => deps.push(format!("{name} {} removed", o.version)),
            _ => reasons.push(format!("application {name} {} is gone from the new release", o.version)),
        }
    }
    if !system.is_empty() {
        reasons.push(format!(
            "Erlang/OTP or Elixir applications differ ({}): the new release was built with another toolchain, or \
             with other extra_applications",
            system.join(", ")
        ));
    }
    if !deps.is_empty() && !i.upgrade_deps {
        reasons.push(format!(
            "dependencies changed ({}): pass --upgrade-deps to upgrade them in place too",
            deps.join(", ")
        ));
    }
    changed
}

/// Applications with the same version whose files differ: release_handler would keep the old
/// ones (the new lib directory has the same name).
fn same_version_changes(
    old: &Release,
    new: &Release,
    olds: &BTreeMap<&str, &App>,
    news: &BTreeMap<&str, &App>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (name, n) in news {
        let Some(o) = olds.get(name).filter(|o| o.version == n.version) else { continue };
        let (a, b) = (files(&old.root.join("lib").join(&o.dir)), files(&new.root.join("lib").join(&n.dir)));
        if a != b {
            let differ = differing(&a, &b);
            out.push(format!(
                "application {name} changed but kept version {} ({}): bump its version (mix.exs) so the new code \
                 gets its own lib directory",
                n.version,
                shorten(&differ)
            ));
        }
    }
    out
}

/// NIF shared objects (`*.so` under an application's directory) that differ between releases.
fn native_code(old: &Release, new: &Release, olds: &BTreeMap<&str, &App>, news: &BTreeMap<&str, &App>) -> Vec<String> {
    let so = |root: &Path, app: Option<&&App>| -> BTreeMap<String, String> {
        app.map(|a| files(&root.join("lib").join(&a.dir)))
            .unwrap_or_default()
            .into_iter()
            .filter(|(p, _)| p.ends_with(".so") || p.contains(".so."))
            .collect()
    };
    let mut differ = Vec::new();
    let names: BTreeSet<&str> = olds.keys().chain(news.keys()).copied().collect();
    for name in names {
        let (a, b) = (so(&old.root, olds.get(name)), so(&new.root, news.get(name)));
        differ.extend(differing(&a, &b).into_iter().map(|p| format!("{name}: {p}")));
    }
    if differ.is_empty() {
        return Vec::new();
    }
    vec![format!(
        "NIF shared objects changed ({}): native code cannot be replaced safely in a running emulator",
        shorten(&differ)
    )]
}

/// Every file under `dir` (relative path → SHA-256); empty when `dir` does not exist.
pub(super) fn files(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for e in walkdir::WalkDir::new(dir).sort_by_file_name().into_iter().flatten() {
        if !e.file_type().is_file() {
            continue;
        }
        let rel = e.path().strip_prefix(dir).unwrap_or(e.path()).to_string_lossy().into_owned();
        let digest = std::fs::read(e.path()).map(|b| hex::encode(Sha256::digest(&b))).unwrap_or_default();
        out.insert(rel, digest);
    }
    out
}

/// The paths whose content differs, or that only one side has.
pub(super) fn differing(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> Vec<String> {
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.into_iter().filter(|k| a.get(*k) != b.get(*k)).cloned().collect()
}

/// At most five, then how many more.
pub(super) fn shorten(items: &[String]) -> String {
    match items.len() {
        0..=5 => items.join(", "),
        n => format!("{}, and {} more", items[..5].join(", "), n - 5),
    }
}

#[cfg(test)]
#[path = "compare_tests.rs"]
mod tests;
