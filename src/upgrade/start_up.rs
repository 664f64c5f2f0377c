//! What a node reads only when it starts, outside its applications (`releases/VSN/`): a change
//! there refuses a hot upgrade, since `release_handler` never reads it again.

use super::compare::{Inputs, differing, files, shorten};
use std::path::{Path, PathBuf};

/// `releases/VSN/`: what the node read when it started (vm.args, env.sh, runtime.exs, the config
/// providers in sys.config) and the consolidated protocols, which live outside `lib/`.
pub(super) fn start_up_files(i: &Inputs<'_>) -> Vec<String> {
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
pub(super) fn config_providers(sys_config: &str, version: &str) -> String {
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
