//! Appups: the instructions `systools:make_relup/4` turns into a relup, one file per application
//! (`ebin/APP.appup`). A drafted one lists, for each changed module, `{load_module, M}` (library
//! code) or `{update, M, {advanced, []}}` (a process's callback module: suspended, its code
//! loaded, `code_change/3` called, resumed), and `add_module`/`delete_module` for modules that
//! came or went; the same list serves both ways (`systools` orders a downgrade's `code_change`
//! before the old code is loaded, with `{down, Vsn}`).

use std::fmt;

/// One high-level appup instruction for a module.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Instruction {
    /// Library code: loaded, the old code purged.
    LoadModule(String),
    /// A process's callback module that exports `code_change`: `{update, M, {advanced, []}}`.
    Update(String),
    AddModule(String),
    DeleteModule(String),
}

impl Instruction {
    pub fn module(&self) -> &str {
        match self {
            Instruction::LoadModule(m) | Instruction::Update(m) | Instruction::AddModule(m) => m,
            Instruction::DeleteModule(m) => m,
        }
    }

    /// The instruction that undoes this one on a downgrade.
    fn down(&self) -> Instruction {
        match self {
            Instruction::AddModule(m) => Instruction::DeleteModule(m.clone()),
            Instruction::DeleteModule(m) => Instruction::AddModule(m.clone()),
            other => other.clone(),
        }
    }
}

impl fmt::Display for Instruction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Instruction::LoadModule(m) => write!(f, "{{load_module, {}}}", atom(m)),
            Instruction::Update(m) => write!(f, "{{update, {}, {{advanced, []}}}}", atom(m)),
            Instruction::AddModule(m) => write!(f, "{{add_module, {}}}", atom(m)),
            Instruction::DeleteModule(m) => write!(f, "{{delete_module, {}}}", atom(m)),
        }
    }
}

/// The `.appup` file of an application going from `from` to `to` with `instructions`, and back.
pub fn render(to: &str, from: &str, instructions: &[Instruction]) -> String {
    let up: Vec<String> = instructions.iter().map(ToString::to_string).collect();
    let down: Vec<String> = instructions.iter().map(|i| i.down().to_string()).collect();
    let list = |items: &[String]| {
        if items.is_empty() { "[]".to_string() } else { format!("[{}]", items.join(",\n    ")) }
    };
    format!(
        "%% Drafted by release-oci (docs/hot-upgrades.md): {from} -> {to} and back.\n{{{},\n [{{{}, {}}}],\n [{{{}, {}}}]}}.\n",
        string(to),
        string(from),
        list(&up),
        string(from),
        list(&down)
    )
}

/// An Erlang string literal.
fn string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// An atom: bare when it is a plain lowercase name, else quoted (`'Elixir.Counter.Server'`).
pub fn atom(name: &str) -> String {
    let plain = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '@');
    if plain { name.to_string() } else { format!("'{}'", name.replace('\\', "\\\\").replace('\'', "\\'")) }
}

/// Whether the text of an appup or relup asks for a restart of the emulator
/// (`restart_new_emulator`, `restart_emulator`): then it is not a hot upgrade.
pub fn restarts_emulator(text: &str) -> Option<&'static str> {
    let code: String = text.lines().map(|l| l.split('%').next().unwrap_or("")).collect::<Vec<_>>().join("\n");
    ["restart_new_emulator", "restart_emulator"].into_iter().find(|w| {
        code.match_indices(w).any(|(i, _)| {
            let before = code[..i].chars().last();
            let after = code[i + w.len()..].chars().next();
            let word = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
            !word(before) && !word(after)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_up_and_down() {
        let text = render(
            "0.2.0",
            "0.1.0",
            &[
                Instruction::LoadModule("Elixir.Counter.Protocol".into()),
                Instruction::Update("Elixir.Counter.Server".into()),
                Instruction::AddModule("new_mod".into()),
            ],
        );
        assert!(text.contains("{\"0.2.0\",\n [{\"0.1.0\", [{load_module, 'Elixir.Counter.Protocol'},"), "{text}");
        assert!(text.contains("{update, 'Elixir.Counter.Server', {advanced, []}}"), "{text}");
        assert!(text.contains("{add_module, new_mod}]}],\n [{\"0.1.0\", ["), "{text}");
        assert!(text.trim_end().ends_with("{delete_module, new_mod}]}]}."), "{text}");
        assert!(render("2", "1", &[]).contains("[{\"1\", []}]"));
    }

    #[test]
    fn finds_emulator_restarts_outside_comments() {
        assert_eq!(restarts_emulator("{\"1\", [{\"0\", [restart_new_emulator]}], []}."), Some("restart_new_emulator"));
        assert_eq!(restarts_emulator("[{\"0\", [restart_emulator]}]"), Some("restart_emulator"));
        assert_eq!(restarts_emulator("%% no restart_emulator here\n[]"), None);
        assert_eq!(restarts_emulator("[{apply, {m, no_restart_emulator_x, []}}]"), None);
    }
}
