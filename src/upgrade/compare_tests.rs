use super::*;
use crate::upgrade::beam::fake_beam;
use std::fs;

/// A mix release on disk: `apps` are `(name, version)`, `modules` `(app, module, exports,
/// behaviours, code)`.
struct Tree {
    dir: tempfile::TempDir,
    name: String,
    version: String,
    erts: String,
    apps: Vec<(String, String)>,
}

type Mod<'a> = (&'a str, &'a [(&'a str, u32)], &'a [&'a str], &'a [u8]);

impl Tree {
    fn new(version: &str) -> Tree {
        let apps =
            [("kernel", "8.5.3"), ("stdlib", "4.2"), ("elixir", "1.14.0"), ("sasl", "4.2"), ("counter", version)];
        let t = Tree {
            dir: tempfile::tempdir().unwrap(),
            name: "counter".into(),
            version: version.into(),
            erts: "13.1.5".into(),
            apps: apps.iter().map(|(a, v)| (a.to_string(), v.to_string())).collect(),
        };
        t.write_release_files();
        for (a, v) in &t.apps {
            fs::create_dir_all(t.lib(a, v).join("ebin")).unwrap();
        }
        t.module(
            "counter",
            ("Elixir.Counter.Server", &[("init", 1), ("code_change", 3)], &["Elixir.GenServer"], b"s1"),
        );
        t.module("counter", ("Elixir.Counter.Protocol", &[("handle", 1)], &[], b"p1"));
        t.module("counter", ("Elixir.Counter.Application", &[("start", 2)], &["Elixir.Application"], b"a1"));
        t.module("kernel", ("application", &[("start", 1)], &[], b"k"));
        t
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn lib(&self, app: &str, vsn: &str) -> PathBuf {
        self.root().join("lib").join(format!("{app}-{vsn}"))
    }

    fn vsn_dir(&self) -> PathBuf {
        self.root().join("releases").join(&self.version)
    }

    fn write_release_files(&self) {
        let r = self.vsn_dir();
        fs::create_dir_all(&r).unwrap();
        fs::create_dir_all(self.root().join("bin")).unwrap();
        fs::write(self.root().join("bin").join(&self.name), "#!/bin/sh\n").unwrap();
        fs::write(self.root().join("releases/start_erl.data"), format!("{} {}", self.erts, self.version)).unwrap();
        let apps: Vec<String> = self.apps.iter().map(|(a, v)| format!("{{{a},\"{v}\",permanent}}")).collect();
        let rel = format!(
            "{{release,{{\"{}\",\"{}\"}},{{erts,\"{}\"}},[{}]}}.\n",
            self.name,
            self.version,
            self.erts,
            apps.join(",")
        );
        fs::write(r.join(format!("{}.rel", self.name)), rel).unwrap();
        fs::write(r.join("vm.args"), "-kernel x y\n").unwrap();
        fs::write(r.join("env.sh"), "#!/bin/sh\n").unwrap();
        fs::write(r.join("sys.config"), "%% coding: utf-8\n%% RUNTIME_CONFIG=false\n[].\n").unwrap();
        fs::create_dir_all(r.join("consolidated")).unwrap();
        fs::write(r.join("consolidated/Elixir.Enumerable.beam"), "enum").unwrap();
    }

    fn module(&self, app: &str, (name, exports, behaviours, code): Mod<'_>) {
        let v = &self.apps.iter().find(|(a, _)| a == app).unwrap().1;
        fs::write(
            self.lib(app, v).join("ebin").join(format!("{name}.beam")),
            fake_beam(name, exports, behaviours, code),
        )
        .unwrap();
    }

    /// Sets (or adds) an application's version, moving its directory.
    fn app(&mut self, app: &str, vsn: &str) {
        let root = self.root().to_path_buf();
        match self.apps.iter_mut().find(|(a, _)| a == app) {
            Some(slot) => {
                let old = root.join("lib").join(format!("{app}-{}", slot.1));
                let new = root.join("lib").join(format!("{app}-{vsn}"));
                fs::rename(old, new).unwrap();
                slot.1 = vsn.into();
            }
            None => {
                self.apps.push((app.into(), vsn.into()));
                fs::create_dir_all(self.lib(app, vsn).join("ebin")).unwrap();
            }
        }
        self.write_release_files();
    }

    fn release(&self) -> Release {
        Release::open(self.root(), Some(&self.name)).unwrap()
    }
}

const HOOK: &str = "\n# cookie hook\n";

fn compare_trees(old: &Tree, new: &Tree, deps: &[&str], upgrade_deps: bool) -> Result<UpgradePlan, Refused> {
    let own = BTreeSet::from(["counter".to_string()]);
    let dep_apps: BTreeSet<String> = deps.iter().map(|d| d.to_string()).collect();
    let (o, n) = (old.release(), new.release());
    compare(&Inputs {
        old: &o,
        new: &n,
        own_apps: &own,
        dep_apps: &dep_apps,
        upgrade_deps,
        appups_dir: Some(&new.root().join("rel/appups")),
        env_sh_hook: HOOK,
    })
}

/// 0.1.0 as deployed (its env.sh with the image's hook) and 0.2.0 with a new Server (code_change
/// exported) and Protocol.
fn pair() -> (Tree, Tree) {
    let old = Tree::new("0.1.0");
    fs::write(old.vsn_dir().join("env.sh"), format!("#!/bin/sh\n{HOOK}")).unwrap();
    let new = Tree::new("0.2.0");
    new.module("counter", ("Elixir.Counter.Server", &[("init", 1), ("code_change", 3)], &["Elixir.GenServer"], b"s2"));
    new.module("counter", ("Elixir.Counter.Protocol", &[("handle", 1)], &[], b"p2"));
    (old, new)
}

fn refused(r: Result<UpgradePlan, Refused>) -> String {
    let e = r.expect_err("the upgrade should be refused");
    let text = e.to_string();
    assert!(text.contains("roll out the new image instead"), "{text}");
    text
}

#[test]
fn a_changed_gen_server_is_updated_and_a_library_module_loaded() {
    let (old, new) = pair();
    new.module("counter", ("Elixir.Counter.New", &[("f", 0)], &[], b"n"));
    fs::remove_file(new.lib("counter", "0.2.0").join("ebin/Elixir.Counter.Application.beam")).unwrap();
    new.module("counter", ("Elixir.Counter.Application", &[("start", 2)], &["Elixir.Application"], b"a1"));
    let plan = compare_trees(&old, &new, &[], false).unwrap();
    assert_eq!((plan.from.as_str(), plan.to.as_str()), ("0.1.0", "0.2.0"));
    let [app] = plan.apps.as_slice() else { panic!("{plan:?}") };
    assert_eq!((app.name.as_str(), app.dir.as_str()), ("counter", "lib/counter-0.2.0"));
    assert_eq!(
        app.appup,
        Appup::Drafted {
            instructions: vec![
                Instruction::AddModule("Elixir.Counter.New".into()),
                Instruction::LoadModule("Elixir.Counter.Protocol".into()),
                Instruction::Update("Elixir.Counter.Server".into()),
            ]
        }
    );
    assert!(app.appup_text().starts_with("%% Drafted"), "{}", app.appup_text());
}

#[test]
fn the_projects_appup_wins_over_a_draft_and_unblocks_a_supervisor() {
    let (old, new) = pair();
    new.module("counter", ("Elixir.Counter.Application", &[("start", 2)], &["Elixir.Application"], b"a2"));
    let text = refused(compare_trees(&old, &new, &[], false));
    assert!(
        text.contains("Elixir.Counter.Application (counter 0.2.0) changed and is the application callback module"),
        "{text}"
    );
    assert!(text.contains("write rel/appups/counter.appup"), "{text}");
    fs::create_dir_all(new.root().join("rel/appups")).unwrap();
    let appup = "{\"0.2.0\", [{\"0.1.0\", [{load_module, 'Elixir.Counter.Application'}]}], [{\"0.1.0\", []}]}.\n";
    fs::write(new.root().join("rel/appups/counter.appup"), appup).unwrap();
    let plan = compare_trees(&old, &new, &[], false).unwrap();
    assert!(matches!(&plan.apps[0].appup, Appup::Project { text, .. } if text == appup));
}

#[test]
fn refuses_supervisors_and_processes_without_code_change() {
    let (old, new) = pair();
    old.module("counter", ("Elixir.Counter.Sup", &[("init", 1)], &["Elixir.Supervisor"], b"x1"));
    new.module("counter", ("Elixir.Counter.Sup", &[("init", 1)], &["Elixir.Supervisor"], b"x2"));
    old.module("counter", ("counter_fsm", &[("init", 1)], &["gen_statem"], b"f1"));
    new.module("counter", ("counter_fsm", &[("init", 1), ("code_change", 3)], &["gen_statem"], b"f2"));
    let text = refused(compare_trees(&old, &new, &[], false));
    assert!(
        text.contains("Elixir.Counter.Sup (counter 0.2.0) changed and is a supervisor (Elixir.Supervisor)"),
        "{text}"
    );
    assert!(text.contains("counter_fsm (counter 0.2.0) changed and is a gen_statem without code_change/4"), "{text}");
}

#[test]
fn refuses_the_same_version() {
    let old = Tree::new("0.1.0");
    let new = Tree::new("0.1.0");
    let text = refused(compare_trees(&old, &new, &[], false));
    assert!(text.contains("both releases are version 0.1.0") && text.contains("bump the version"), "{text}");
}

#[test]
fn refuses_another_erts_and_other_otp_or_elixir_applications() {
    let (old, mut new) = pair();
    new.erts = "14.2".into();
    new.app("elixir", "1.15.7");
    new.app("crypto", "5.4");
    let text = refused(compare_trees(&old, &new, &[], false));
    assert!(text.contains("ERTS 13.1.5 -> 14.2 (another Erlang/OTP)"), "{text}");
    assert!(
        text.contains("Erlang/OTP or Elixir applications differ (crypto 5.4 added, elixir 1.14.0 -> 1.15.7)"),
        "{text}"
    );
}

#[test]
fn refuses_changed_nif_shared_objects() {
    let (mut old, mut new) = pair();
    old.app("zlib_nif", "1.0.0");
    new.app("zlib_nif", "1.0.0");
    for (t, bytes) in [(&old, "elf-1"), (&new, "elf-2")] {
        fs::create_dir_all(t.lib("zlib_nif", "1.0.0").join("priv")).unwrap();
        fs::write(t.lib("zlib_nif", "1.0.0").join("priv/zlib_nif.so"), bytes).unwrap();
    }
    let text = refused(compare_trees(&old, &new, &["zlib_nif"], true));
    assert!(text.contains("NIF shared objects changed (zlib_nif: priv/zlib_nif.so)"), "{text}");
}

#[test]
fn refuses_changed_runtime_config_vm_args_env_and_config_providers() {
    let (old, new) = pair();
    fs::write(old.vsn_dir().join("runtime.exs"), "import Config\n").unwrap();
    fs::write(new.vsn_dir().join("runtime.exs"), "import Config\nconfig :counter, x: 1\n").unwrap();
    fs::write(new.vsn_dir().join("vm.args"), "+S 2\n").unwrap();
    fs::write(new.vsn_dir().join("env.sh"), "#!/bin/sh\nexport X=1\n").unwrap();
    fs::write(
        new.vsn_dir().join("sys.config"),
        "%% RUNTIME_CONFIG=true\n[{elixir,[{config_provider_init,#{providers => []}}]}].\n",
    )
    .unwrap();
    let text = refused(compare_trees(&old, &new, &[], false));
    assert!(text.contains("config/runtime.exs changed"), "{text}");
    assert!(text.contains("the config providers changed"), "{text}");
    assert!(text.contains("vm.args changed"), "{text}");
    assert!(text.contains("env.sh changed"), "{text}");
    // The image's cookie hook in the deployed env.sh is not a change.
    fs::write(new.vsn_dir().join("env.sh"), "#!/bin/sh\n").unwrap();
    assert!(!refused(compare_trees(&old, &new, &[], false)).contains("env.sh"));
}

#[test]
fn refuses_changed_consolidated_protocols() {
    let (old, new) = pair();
    fs::write(new.vsn_dir().join("consolidated/Elixir.Enumerable.beam"), "enum with a new impl").unwrap();
    let text = refused(compare_trees(&old, &new, &[], false));
    assert!(text.contains("consolidated protocols changed (Elixir.Enumerable)"), "{text}");
}

#[test]
fn a_dependency_change_needs_upgrade_deps() {
    let (mut old, mut new) = pair();
    old.app("jason", "1.4.0");
    old.module("jason", ("Elixir.Jason", &[("encode", 1)], &[], b"j1"));
    new.app("jason", "1.4.1");
    new.module("jason", ("Elixir.Jason", &[("encode", 1)], &[], b"j2"));
    let text = refused(compare_trees(&old, &new, &["jason"], false));
    assert!(text.contains("dependencies changed (jason 1.4.0 -> 1.4.1): pass --upgrade-deps"), "{text}");
    let plan = compare_trees(&old, &new, &["jason"], true).unwrap();
    let names: Vec<&str> = plan.apps.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["counter", "jason"]);
}

#[test]
fn refuses_an_application_changed_under_the_same_version() {
    let (mut old, mut new) = pair();
    old.app("jason", "1.4.0");
    new.app("jason", "1.4.0");
    old.module("jason", ("Elixir.Jason", &[("encode", 1)], &[], b"j1"));
    new.module("jason", ("Elixir.Jason", &[("encode", 1)], &[], b"j2"));
    let text = refused(compare_trees(&old, &new, &["jason"], true));
    assert!(
        text.contains("application jason changed but kept version 1.4.0 (ebin/Elixir.Jason.beam): bump its version"),
        "{text}"
    );
}

#[test]
fn refuses_a_release_without_sasl() {
    let (mut old, new) = pair();
    old.apps.retain(|(a, _)| a != "sasl");
    old.write_release_files();
    let text = refused(compare_trees(&old, &new, &[], false));
    assert!(text.contains("the deployed release has no sasl application") && text.contains(":sasl"), "{text}");
}

#[test]
fn refuses_an_appup_that_restarts_the_emulator() {
    let (old, new) = pair();
    let ebin = new.lib("counter", "0.2.0").join("ebin");
    fs::write(ebin.join("counter.appup"), "{\"0.2.0\", [{\"0.1.0\", [restart_new_emulator]}], [{\"0.1.0\", []}]}.\n")
        .unwrap();
    let text = refused(compare_trees(&old, &new, &[], false));
    assert!(text.contains("the appup of counter asks for restart_new_emulator: that restarts the node"), "{text}");
}

/// Mix writes the path of `runtime.exs` with the version into `config_provider_init`: the same
/// providers in two versions are no change.
#[test]
fn the_same_config_providers_in_another_version_are_no_change() {
    let sys = |vsn: &str| {
        let path: Vec<String> = format!("/releases/{vsn}/runtime.exs").bytes().map(|b| b.to_string()).collect();
        format!(
            "%% RUNTIME_CONFIG=false\n[{{elixir,[{{config_provider_init,#{{providers => [{{'Elixir.Config.Reader',\
             {{{{system,<<82,69>>,<<{}>>}},[{{env,prod}}]}}}}]}}}}]}}].\n",
            path.join(",")
        )
    };
    let (old, new) = pair();
    fs::write(old.vsn_dir().join("sys.config"), sys("0.1.0")).unwrap();
    fs::write(new.vsn_dir().join("sys.config"), sys("0.2.0")).unwrap();
    for t in [&old, &new] {
        fs::write(t.vsn_dir().join("runtime.exs"), "import Config\n").unwrap();
    }
    compare_trees(&old, &new, &[], false).unwrap();
    assert!(config_providers(&sys("0.1.0"), "0.1.0").contains("<<\"/releases/VSN/runtime.exs\">>"));
    fs::write(new.vsn_dir().join("sys.config"), sys("0.2.0").replace("{env,prod}", "{env,staging}")).unwrap();
    assert!(refused(compare_trees(&old, &new, &[], false)).contains("the config providers changed"));
}
