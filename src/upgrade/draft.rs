//! The appup of one application whose version changed: the project's (`rel/appups/APP.appup`),
//! the one the application ships, or one drafted from a comparison of the two versions' modules.

use super::appup::Instruction;
use super::beam;
use super::compare::{AppUpgrade, Appup, Inputs};
use crate::release::App;
use std::collections::BTreeMap;
use std::path::Path;

/// The upgrade of one application: its appup (the project's, one it ships, or a draft).
pub(super) fn app_upgrade(i: &Inputs<'_>, o: &App, n: &App) -> Result<AppUpgrade, Vec<String>> {
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
