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
use super::beam;
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
    let mut reasons = Vec::new();
    let refuse = |reasons: Vec<String>| Refused {
        name: new.name.clone(),
        from: old.version.clone(),
        to: new.version.clone(),
        reasons,
    };
    if old.flavour != Flavour::Mix || new.flavour != Flavour::Mix {
        reasons.push("relx (rebar3) releases are not supported yet: only mix releases are".into());
        return Err(refuse(reasons));
    }
    if old.name != new.name {
        reasons.push(format!("the deployed image holds release {}, not {}", old.name, new.name));
        return Err(refuse(reasons));
    }
    if old.version == new.version {
        reasons.push(format!(
            "both releases are version {}: release_handler tells releases apart by version; bump the version",
            new.version
        ));
        return Err(refuse(reasons));
    }
    if old.required_erts != new.required_erts {
        reasons.push(format!(
            "ERTS {} -> {} (another Erlang/OTP): a new emulator cannot be loaded into a running one",
            old.required_erts, new.required_erts
        ));
    }
    let kind = |name: &str| match (i.own_apps.contains(name), i.dep_apps.contains(name)) {
        (true, _) => Kind::Own,
        (_, true) => Kind::Dep,
        _ => Kind::System,
    };
    for (rel, which) in [(old, "deployed"), (new, "new")] {
        if !rel.apps.iter().any(|a| a.name == "sasl") {
            reasons.push(format!(
                "the {which} release has no sasl application, whose release_handler applies upgrades: add :sasl \
                 to extra_applications in mix.exs"
            ));
        }
    }
    let olds: BTreeMap<&str, &App> = old.apps.iter().map(|a| (a.name.as_str(), a)).collect();
    let news: BTreeMap<&str, &App> = new.apps.iter().map(|a| (a.name.as_str(), a)).collect();
    let mut system = Vec::new();
    let mut deps = Vec::new();
    let mut changed: Vec<(&App, &App, Kind)> = Vec::new();
    for (name, n) in &news {
        match (olds.get(name), kind(name)) {
            (Some(o), k) if o.version != n.version => match k {
                Kind::System => system.push(format!("{name} {} -> {}", o.version, n.version)),
                Kind::Dep => {
                    deps.push(format!("{name} {} -> {}", o.version, n.version));
                    changed.push((o, n, k));
                }
                Kind::Own => changed.push((o, n, k)),
            },
            (Some(_), _) => {}
            (None, Kind::System) => system.push(format!("{name} {} added", n.version)),
            (None, Kind::Dep) => deps.push(format!("{name} {} added", n.version)),
            (None, Kind::Own) => reasons
                .push(format!("application {name} is new: its supervision tree would have to be started; roll out")),
        }
    }
    for (name, o) in &olds {
        if !news.contains_key(name) {
            match kind(name) {
                Kind::Dep => deps.push(format!("{name} {} removed", o.version)),
                _ if i.upgrade_deps => deps.push(format!("{name} {} removed", o.version)),
                _ => reasons.push(format!("application {name} {} is gone from the new release", o.version)),
            }
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
    reasons.extend(same_version_changes(old, new, &olds, &news));
    reasons.extend(native_code(old, new, &olds, &news));
    reasons.extend(start_up_files(i));
    let mut apps = Vec::new();
    for (o, n, _) in changed {
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

/// `releases/VSN/`: what the node read when it started (vm.args, env.sh, runtime.exs, the config
/// providers in sys.config) and the consolidated protocols, which live outside `lib/`.
fn start_up_files(i: &Inputs<'_>) -> Vec<String> {
    let (old_dir, new_dir) = (i.old.version_dir(), i.new.version_dir());
    let read = |p: PathBuf| std::fs::read(p).ok();
    let mut out = Vec::new();
    let runtime = (read(old_dir.join("runtime.exs")), read(new_dir.join("runtime.exs")));
    if runtime.0 != runtime.1 {
        out.push(match runtime {
            (None, Some(_)) => "config/runtime.exs is new: runtime configuration is read when the node starts".into(),
            (Some(_), None) => "config/runtime.exs is gone: runtime configuration is read when the node starts".into(),
            _ => "config/runtime.exs changed: runtime configuration is read when the node starts".into(),
        });
    }
    let providers = |dir: &Path, vsn: &str| {
        read(dir.join("sys.config")).map(|t| config_providers(&String::from_utf8_lossy(&t), vsn))
    };
    if providers(&old_dir, &i.old.version) != providers(&new_dir, &i.new.version) {
        out.push(
            "the config providers changed (sys.config's RUNTIME_CONFIG and config_providers): they run when the \
             node starts"
                .into(),
        );
    }
    for file in ["vm.args", "remote.vm.args"] {
        if read(old_dir.join(file)) != read(new_dir.join(file)) {
            out.push(format!("{file} changed: the emulator's flags are read when it starts"));
        }
    }
    let old_env = read(old_dir.join("env.sh")).map(|t| strip_suffix(t, i.env_sh_hook.as_bytes()));
    if old_env != read(new_dir.join("env.sh")) {
        out.push("env.sh changed: the node's environment is set when it starts".into());
    }
    let consolidated = (files(&old_dir.join("consolidated")), files(&new_dir.join("consolidated")));
    if consolidated.0 != consolidated.1 {
        let differ: Vec<String> = differing(&consolidated.0, &consolidated.1)
            .iter()
            .map(|p| p.trim_end_matches(".beam").to_string())
            .collect();
        out.push(format!(
            "consolidated protocols changed ({}): they are loaded from releases/VSN/consolidated, outside any \
             application, so no appup reaches them",
            shorten(&differ)
        ));
    }
    out
}

/// What in a `sys.config` says how the release is configured at start: mix's `RUNTIME_CONFIG`
/// marker line and the Elixir `config_provider_init` entry (its text, whitespace ignored, its
/// binaries as text, and the release's own `releases/VSN/` in its paths as `releases/VSN/`: the
/// provider of `runtime.exs` names the version's directory).
fn config_providers(sys_config: &str, version: &str) -> String {
    let marker: String = sys_config.lines().filter(|l| l.contains("RUNTIME_CONFIG=")).collect::<Vec<_>>().join("\n");
    let flat: String = sys_config.chars().filter(|c| !c.is_whitespace()).collect();
    let providers = match flat.find("config_provider_init") {
        Some(at) => binaries_as_text(balanced(&flat[at..])),
        None => String::new(),
    };
    format!("{marker}\n{}", providers.replace(&format!("releases/{version}/"), "releases/VSN/"))
}

/// `<<47,114,101>>` (how `sys.config` writes binaries) as `<<"/re">>`.
fn binaries_as_text(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(at) = rest.find("<<") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let Some(end) = after.find(">>") else {
            out.push_str(&rest[at..]);
            return out;
        };
        let bytes: Option<Vec<u8>> = after[..end].split(',').map(|b| b.trim().parse::<u8>().ok()).collect();
        match bytes {
            Some(b) if !after[..end].is_empty() => out.push_str(&format!("<<{:?}>>", String::from_utf8_lossy(&b))),
            _ => out.push_str(&rest[at..at + 2 + end + 2]),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// The text from the start of `s` up to where the term it is in closes.
fn balanced(s: &str) -> &str {
    let mut depth = 0i32;
    for (i, c) in s.char_indices() {
        match c {
            '{' | '[' => depth += 1,
            '}' | ']' => {
                depth -= 1;
                if depth < 0 {
                    return &s[..i];
                }
            }
            _ => {}
        }
    }
    s
}

fn strip_suffix(mut text: Vec<u8>, suffix: &[u8]) -> Vec<u8> {
    if !suffix.is_empty() && text.ends_with(suffix) {
        text.truncate(text.len() - suffix.len());
    }
    text
}

/// The upgrade of one application: its appup (the project's, one it ships, or a draft).
fn app_upgrade(i: &Inputs<'_>, o: &App, n: &App) -> Result<AppUpgrade, Vec<String>> {
    let mut up = AppUpgrade {
        name: n.name.clone(),
        from: o.version.clone(),
        to: n.version.clone(),
        dir: format!("lib/{}", n.dir),
        appup: Appup::Drafted { instructions: Vec::new() },
    };
    let project = i.appups_dir.map(|d| d.join(format!("{}.appup", n.name)));
    if let Some(path) = project.filter(|p| p.is_file()) {
        let text = std::fs::read_to_string(&path).map_err(|e| vec![format!("cannot read {}: {e}", path.display())])?;
        up.appup = Appup::Project { path, text };
        return Ok(up);
    }
    let shipped = i.new.root.join("lib").join(&n.dir).join("ebin").join(format!("{}.appup", n.name));
    if let Ok(text) = std::fs::read_to_string(&shipped) {
        up.appup = Appup::Shipped { text };
        return Ok(up);
    }
    let (olds, news) = (modules(&i.old.root.join("lib").join(&o.dir))?, modules(&i.new.root.join("lib").join(&n.dir))?);
    let mut instructions = Vec::new();
    let mut reasons = Vec::new();
    for (name, m) in &news {
        match olds.get(name) {
            None => instructions.push(Instruction::AddModule(name.clone())),
            Some(old) if old.code != m.code => match process_kind(m) {
                Ok(i) => instructions.push(i),
                Err(why) => reasons.push(format!(
                    "{name} ({} {}) changed and {why}; write rel/appups/{}.appup for it (see docs/hot-upgrades.md)",
                    n.name, n.version, n.name
                )),
            },
            Some(_) => {}
        }
    }
    for name in olds.keys().filter(|m| !news.contains_key(*m)) {
        instructions.push(Instruction::DeleteModule(name.clone()));
    }
    if !reasons.is_empty() {
        return Err(reasons);
    }
    up.appup = Appup::Drafted { instructions };
    Ok(up)
}

/// How a changed module is upgraded, from what it is: a process's callback module with
/// `code_change` is updated (suspend, load, `code_change`, resume), library code loaded; a
/// supervisor, the application callback module, or a process without `code_change` cannot be
/// handled without the project's appup.
fn process_kind(m: &beam::Module) -> Result<Instruction, String> {
    const SUPERVISORS: &[&str] = &[
        "supervisor",
        "supervisor_bridge",
        "Elixir.Supervisor",
        "Elixir.DynamicSupervisor",
        "Elixir.PartitionSupervisor",
    ];
    const APPLICATION: &[&str] = &["application", "Elixir.Application"];
    const PROCESSES: &[(&str, u32)] =
        &[("gen_server", 3), ("Elixir.GenServer", 3), ("gen_event", 3), ("gen_statem", 4), ("Elixir.GenStage", 3)];
    if let Some(b) = m.behaviours.iter().find(|b| SUPERVISORS.contains(&b.as_str())) {
        return Err(format!(
            "is a supervisor ({b}): a changed child list needs start/stop instructions, which are not drafted"
        ));
    }
    if m.behaviours.iter().any(|b| APPLICATION.contains(&b.as_str())) {
        return Err(
            "is the application callback module: its start/2 built the supervision tree when the node started and \
             is not run again"
                .into(),
        );
    }
    if let Some((b, arity)) = PROCESSES.iter().find(|(b, _)| m.has_behaviour(b)) {
        return if m.exports("code_change", *arity) {
            Ok(Instruction::Update(m.name.clone()))
        } else {
            Err(format!("is a {b} without code_change/{arity}: its processes' state cannot be carried over"))
        };
    }
    Ok(Instruction::LoadModule(m.name.clone()))
}

/// The modules of an application directory (`ebin/*.beam`), by name.
fn modules(app_dir: &Path) -> Result<BTreeMap<String, beam::Module>, Vec<String>> {
    let ebin = app_dir.join("ebin");
    let mut out = BTreeMap::new();
    let entries = std::fs::read_dir(&ebin).map_err(|e| vec![format!("cannot read {}: {e}", ebin.display())])?;
    for e in entries.flatten() {
        let path = e.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".beam")) else {
            continue;
        };
        let bytes = std::fs::read(&path).map_err(|err| vec![format!("cannot read {}: {err}", path.display())])?;
        let m = beam::read(name, &bytes).map_err(|err| vec![err.to_string()])?;
        out.insert(name.to_string(), m);
    }
    Ok(out)
}

/// Every file under `dir` (relative path → SHA-256); empty when `dir` does not exist.
fn files(dir: &Path) -> BTreeMap<String, String> {
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
fn differing(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> Vec<String> {
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.into_iter().filter(|k| a.get(*k) != b.get(*k)).cloned().collect()
}

/// At most five, then how many more.
fn shorten(items: &[String]) -> String {
    match items.len() {
        0..=5 => items.join(", "),
        n => format!("{}, and {} more", items[..5].join(", "), n - 5),
    }
}

#[cfg(test)]
#[path = "compare_tests.rs"]
mod tests;
