use super::*;
use crate::cli::{BuildArgs, BuildSettings, BuilderKind};
use clap::Parser;

#[derive(Parser)]
struct Wrap {
    #[command(flatten)]
    args: BuildArgs,
}

fn args(project: &std::path::Path, extra: &[&str]) -> BuildArgs {
    let mut argv = vec!["x".to_string(), project.display().to_string()];
    argv.extend(extra.iter().map(|s| s.to_string()));
    Wrap::parse_from(argv).args
}

const FILE: &str = r#"
release = "web_only"
mix_env = "staging"
user = 1000
builder = "host"
ports = [4000]
env = { A = "from-file", B = "from-file" }
tags = ["app:{release}"]
outputs = ["oci:out", "docker-archive:/abs/img.tar"]
base = "oci:base-layout:v1"
load = true
"#;

/// `FILE` as the user's own settings (`--config`): every key is taken.
fn users_file(dir: &std::path::Path) -> String {
    let file = dir.join("release-oci.toml");
    std::fs::write(&file, FILE).unwrap();
    file.display().to_string()
}

#[test]
fn the_file_fills_in_what_the_command_line_leaves_out() {
    let dir = tempfile::tempdir().unwrap();
    let file = users_file(dir.path());
    let s = args(dir.path(), &["--config", &file]).validate().unwrap();
    assert_eq!(s.release.as_deref(), Some("web_only"));
    assert_eq!(s.mix_env, "staging");
    assert_eq!(s.builder, BuilderKind::Host);
    assert_eq!(s.ports, ["4000/tcp"]);
    assert_eq!(s.tags, ["app:{release}"]);
    assert!(s.load);
    let env: BTreeMap<_, _> = s.env.iter().cloned().collect();
    assert_eq!(env["A"], "from-file");
    let out: Vec<String> = s.outputs.iter().map(ToString::to_string).collect();
    assert_eq!(out, [format!("oci:{}", dir.path().join("out").display()), "docker-archive:/abs/img.tar".into()]);
    assert_eq!(s.base, BaseRef::Layout { dir: dir.path().join("base-layout"), tag: Some("v1".into()) });
}

#[test]
fn flags_win() {
    let dir = tempfile::tempdir().unwrap();
    let file = users_file(dir.path());
    let s = args(
        dir.path(),
        &[
            "--config",
            &file,
            "--release",
            "all",
            "--mix-env",
            "prod",
            "--user",
            "2000",
            "-e",
            "A=cli",
            "-p",
            "5000",
            "-t",
            "x:y",
        ],
    )
    .validate()
    .unwrap();
    assert_eq!(s.release.as_deref(), Some("all"));
    assert_eq!(s.mix_env, "prod");
    assert_eq!(s.tags, ["x:y"]);
    assert_eq!(s.ports, ["4000/tcp", "5000/tcp"]);
    let env: BTreeMap<_, _> = s.env.iter().cloned().collect();
    assert_eq!((env["A"].as_str(), env["B"].as_str()), ("cli", "from-file"));
    assert_eq!(s.env.iter().filter(|(k, _)| k == "A").count(), 1);
    let s = args(dir.path(), &["--no-config"]).validate().unwrap();
    assert_eq!((s.release, s.mix_env.as_str(), s.load), (None, "prod", false));
}

#[test]
fn the_projects_own_file_cannot_act_on_the_host_but_the_same_flags_can() {
    let dir = tempfile::tempdir().unwrap();
    users_file(dir.path());
    let e = format!("{:#}", args(dir.path(), &[]).validate().unwrap_err());
    assert!(e.contains("builder = \"host\" would run the project's code") && e.contains("pass --builder host"), "{e}");
    std::fs::write(dir.path().join("release-oci.toml"), "release = \"web_only\"\n").unwrap();
    let s = args(dir.path(), &["--builder", "host", "--load", "-o", "docker-archive:/abs/img.tar"]).validate().unwrap();
    assert_eq!((s.builder, s.load, s.release.as_deref()), (BuilderKind::Host, true, Some("web_only")));
}

#[test]
fn builder_limits_come_from_the_file_and_only_a_users_file_may_raise_them() {
    use crate::builder::Limits;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("release-oci.toml");
    std::fs::write(&file, "timeout = \"30m\"\nmemory = \"2g\"\npids_limit = 1000\n").unwrap();
    let s = args(dir.path(), &[]).validate().unwrap();
    assert_eq!((s.timeout.as_secs(), s.limits), (1800, Limits { memory: 2 << 30, pids: 1000 }));
    let s = args(dir.path(), &["--memory", "512m", "--pids-limit", "50", "--timeout", "5m"]).validate().unwrap();
    assert_eq!((s.timeout.as_secs(), s.limits), (300, Limits { memory: 512 << 20, pids: 50 }));
    std::fs::write(&file, "memory = \"64g\"\ntimeout = \"3h\"\n").unwrap();
    let e = format!("{:#}", args(dir.path(), &[]).validate().unwrap_err());
    assert!(e.contains("timeout = \"3h\" is more than the default, 1h") && e.contains("pass --timeout 3h"), "{e}");
    let s = args(dir.path(), &["--config", &file.display().to_string()]).validate().unwrap();
    assert_eq!((s.timeout.as_secs(), s.limits.memory), (3 * 3600, 64 << 30));
    std::fs::write(&file, "pids_limit = 100000\n").unwrap();
    let e = format!("{:#}", args(dir.path(), &[]).validate().unwrap_err());
    assert!(e.contains("pids_limit = 100000 is more than the default, 4096"), "{e}");
    std::fs::write(&file, "memory = \"lots\"\n").unwrap();
    let e = format!("{:#}", args(dir.path(), &[]).validate().unwrap_err());
    assert!(e.contains(&file.display().to_string()) && e.contains("memory = \"lots\": \"lots\" is not a size"), "{e}");
}

#[test]
fn the_builder_catalogue_comes_from_the_projects_own_file_or_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("release-oci.toml"), "builder_catalogue = \"127.0.0.1:5000/hexpm/elixir\"\n")
        .unwrap();
    let s = args(dir.path(), &[]).validate().unwrap();
    let c = s.builder_catalogue.unwrap();
    assert_eq!((c.registry.as_str(), c.repository.as_str()), ("127.0.0.1:5000", "hexpm/elixir"));
    let s = args(dir.path(), &["--builder-catalogue", "ghcr.io/team/elixir"]).validate().unwrap();
    assert_eq!(s.builder_catalogue.unwrap().repository_ref(), "ghcr.io/team/elixir");
    let e =
        format!("{:#}", args(dir.path(), &["--builder-catalogue", "r.io/hexpm/elixir:1.18"]).validate().unwrap_err());
    assert!(e.contains("name the repository only") && e.contains("r.io/hexpm/elixir"), "{e}");
}

#[test]
fn bad_values_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("release-oci.toml");
    std::fs::write(&file, "builder = \"podman\"\n").unwrap();
    let e = format!("{:#}", args(dir.path(), &[]).validate().unwrap_err());
    assert!(e.contains(&file.display().to_string()) && e.contains("expected one of docker, host"), "{e}");
    std::fs::write(&file, "[k8s]\nreplicas = 1\nflavour = 2\n").unwrap();
    let e = format!("{:#}", args(dir.path(), &[]).validate().unwrap_err());
    assert!(e.contains(":3:1: unknown key `flavour` in [k8s]"), "{e}");
}

/// A project whose `--config` file holds `text`, with the files keys may name (`ca.pem`,
/// `hex.ez`, `keys/acme.pem`); its settings.
fn from_file(text: &str) -> (tempfile::TempDir, anyhow::Result<BuildSettings>) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("keys")).unwrap();
    for f in ["ca.pem", "hex.ez", "keys/acme.pem"] {
        std::fs::write(dir.path().join(f), "x").unwrap();
    }
    let file = dir.path().join("settings.toml");
    std::fs::write(&file, text).unwrap();
    let s = args(dir.path(), &["--config", &file.display().to_string()]).validate();
    (dir, s)
}

type Check = fn(&BuildSettings, &std::path::Path) -> bool;

/// Every key of the file (but `[k8s]`, read by `release-oci k8s`), each with what it must change.
#[test]
fn every_key_of_the_file_takes_effect() {
    let keys: &[(&str, Check)] = &[
        ("name = \"team/app\"", |s, _| s.image_name.as_deref() == Some("team/app")),
        ("tags = [\"app:1\"]", |s, _| s.tags == ["app:1"]),
        ("triple = \"aarch64-unknown-linux-gnu\"", |s, _| s.triple.to_string() == "aarch64-unknown-linux-gnu"),
        ("triples = [\"x86_64-linux-gnu\", \"aarch64-linux-gnu\"]", |s, _| s.platforms.len() == 2),
        ("builder = \"host\"", |s, _| s.builder == BuilderKind::Host),
        ("builder_image = \"ghcr.io/t/b:1\"", |s, _| s.builder_image == "ghcr.io/t/b:1" && s.pull_missing),
        ("builder_image = \"ghcr.io/t/b:1\"\npull = \"never\"", |s, _| {
            s.builder_image == "ghcr.io/t/b:1" && !s.pull_missing
        }),
        ("builder_host = \"ssh://b@arm\"", |s, _| s.builder_host().is_some_and(|e| e.to_string() == "ssh://b@arm")),
        ("builder_host = { x86_64 = \"tcp://b:2376\" }", |s, _| {
            s.builder_host().is_some_and(|e| e.to_string() == "tcp://b:2376")
        }),
        ("builder_catalogue = \"r.io/hexpm/elixir\"", |s, _| s.builder_catalogue.is_some()),
        ("mix_env = \"staging\"", |s, _| s.mix_env == "staging"),
        ("profile = \"edge\"", |s, _| s.profile == "edge"),
        ("release = \"web\"", |s, _| s.release.as_deref() == Some("web")),
        ("from_release = \"rel\"\nbase = \"debian\"", |s, d| s.from_release == Some(d.join("rel"))),
        ("tini = \"bin/tini\"", |s, d| s.tini == Some(d.join("bin/tini"))),
        ("base = \"scratch\"", |s, _| s.base == BaseRef::Scratch),
        ("slim_erts = true", |s, _| s.slim_erts),
        ("tzdata = true", |s, _| s.tzdata),
        ("user = \"nobody\"", |s, _| s.user == UserSpec::Name("nobody".into())),
        ("user = 1000", |s, _| s.user == UserSpec::Ids { uid: 1000, gid: 1000 }),
        ("cmd = \"server\"", |s, _| s.cmd.as_deref() == Some("server")),
        ("env = { A = \"1\" }", |s, _| s.env == [("A".to_string(), "1".to_string())]),
        ("ports = [4000, \"53/udp\"]", |s, _| s.ports == ["4000/tcp", "53/udp"]),
        ("labels = { a = \"1\" }", |s, _| s.labels.get("a").is_some_and(|v| v == "1")),
        ("annotations = { a = \"1\" }", |s, _| s.annotations.get("a").is_some_and(|v| v == "1")),
        ("outputs = [\"oci:out\"]", |s, d| {
            s.outputs.first().map(ToString::to_string) == Some(format!("oci:{}", d.join("out").display()))
        }),
        ("load = true", |s, _| s.load),
        ("include_cookie = true", |s, _| s.include_cookie),
        ("source_url = \"https://x\"", |s, _| s.source_url.as_deref() == Some("https://x")),
        ("sbom = \"none\"", |s, _| s.supply.sbom == crate::supply::SbomFormat::None),
        ("sbom_dir = \"sboms\"", |s, d| s.supply.sbom_dir == Some(d.join("sboms"))),
        ("cache_dir = \"cache\"", |s, d| s.cache_dir == d.join("cache")),
        ("cache_repo = \"r.example.com/ci/cache\"", |s, _| {
            s.cache_repo.as_ref().is_some_and(|r| r.repository == "ci/cache")
        }),
        ("no_cache = true", |s, _| s.no_cache),
        ("cross_compile = \"never\"", |s, _| s.cross_compile == crate::cli::CrossCompile::Never),
        ("hot_upgrades = true", |s, _| s.upgrade.hot_upgrades),
        ("upgrade_from = \"oci:deployed:0.1.0\"", |s, d| {
            s.upgrade
                .from
                .as_ref()
                .is_some_and(|f| f.to_string() == format!("oci:{}:0.1.0", d.join("deployed").display()))
        }),
        ("upgrade_from = \"oci:deployed:0.1.0\"\nupgrade_deps = true", |s, _| s.upgrade.upgrade_deps),
        ("compression = \"zstd\"", |s, _| s.compression.to_string().starts_with("zstd")),
        ("timeout = \"5m\"", |s, _| s.timeout.as_secs() == 300),
        ("memory = \"1g\"", |s, _| s.limits.memory == 1 << 30),
        ("pids_limit = 100", |s, _| s.limits.pids == 100),
        ("build_env = { HEX_MIRROR = \"m\" }", |s, _| s.inputs.env == [("HEX_MIRROR".into(), "m".into())]),
        ("build_ca = \"ca.pem\"", |s, d| s.inputs.ca_bundle == Some(d.join("ca.pem"))),
        ("assets = \"skip\"", |s, _| s.inputs.assets == crate::builder::inputs::AssetsMode::Skip),
        ("secrets = [\"id=k,env=PATH\"]", |s, _| s.inputs.secrets.first().is_some_and(|x| x.id == "k")),
        ("ssh = [\"agent=/run/agent.sock\"]", |s, _| s.inputs.ssh.first().is_some_and(|a| a.id == "agent")),
        ("[hex]\nclient = \"hex.ez\"", |s, d| s.inputs.hex_client == Some(d.join("hex.ez"))),
        ("[[hex.repos]]\nname = \"acme\"\nurl = \"https://h/\"\npublic_key = \"keys/acme.pem\"", |s, _| {
            s.inputs.hex_repos.first().is_some_and(|r| r.url == "https://h" && r.public_key.as_deref() == Some("x"))
        }),
    ];
    let (_d, default) = from_file("");
    let default = default.unwrap();
    for (text, check) in keys {
        let (dir, s) = from_file(text);
        let s = s.unwrap_or_else(|e| panic!("{text}: {e:#}"));
        assert!(check(&s, dir.path()), "{text} did not take effect: {s:#?}");
        assert!(!check(&default, dir.path()), "{text}: the default already passes the check");
    }
}

#[test]
fn flags_win_over_every_new_key_and_bools_add_up() {
    let (dir, s) = from_file("slim_erts = true\ntzdata = true\nsbom = \"none\"\n");
    let s = s.unwrap();
    assert!(s.slim_erts && s.tzdata && s.supply.sbom == crate::supply::SbomFormat::None);
    let file = dir.path().join("settings.toml").display().to_string();
    std::fs::write(&file, "sbom = \"none\"\nsbom_dir = \"out\"\n").unwrap();
    let e = format!("{:#}", args(dir.path(), &["--config", &file]).validate().unwrap_err());
    assert!(e.contains("makes none"), "{e}");
    let s = args(dir.path(), &["--config", &file, "--sbom", "spdx"]).validate().unwrap();
    assert_eq!((s.supply.sbom, s.supply.sbom_dir), (crate::supply::SbomFormat::Spdx, Some(dir.path().join("out"))));
    std::fs::write(&file, "sbom = \"swid\"\n").unwrap();
    let e = format!("{:#}", args(dir.path(), &["--config", &file]).validate().unwrap_err());
    assert!(e.contains("sbom: \"swid\" is not one of spdx, ") && e.contains("none"), "{e}");
    std::fs::write(&file, "build_ca = \"none\"\n").unwrap();
    assert_eq!(args(dir.path(), &["--config", &file]).validate().unwrap().inputs.ca_bundle, None);
    std::fs::write(&file, "slim_erts = \"yes\"\n").unwrap();
    assert!(args(dir.path(), &["--config", &file]).validate().is_err());
}

/// `base = "debian"` in the file is the alias, followed per triple; an explicit image is kept.
#[test]
fn the_debian_base_of_the_file_follows_the_triple() {
    let (_dir, s) = from_file("base = \"debian\"\ntriple = \"aarch64-unknown-linux-gnu\"\n");
    assert_eq!(s.unwrap().base.to_string(), "docker-daemon:release-oci/runtime:debian-bookworm-arm64");
    let (_dir, s) = from_file("base = \"debian\"\ntriples = [\"x86_64-linux-gnu\", \"aarch64-linux-gnu\"]\n");
    let p: Vec<String> = s.unwrap().platforms.iter().map(|p| p.base.to_string()).collect();
    assert_eq!(p[1], "docker-daemon:release-oci/runtime:debian-bookworm-arm64");
}

/// `--builder-host` and `builder_host`: each platform its engine, the flags' over the file's
/// platform by platform; a bad value names the flag or the key.
#[test]
fn builder_hosts_come_from_the_flags_over_the_file() {
    let (dir, _) = from_file("");
    let file = dir.path().join("settings.toml").display().to_string();
    std::fs::write(&file, "builder_host = { aarch64 = \"ssh://file@arm\", x86_64 = \"tcp://x86:2376\" }\n").unwrap();
    let two = ["--triple", "x86_64-unknown-linux-gnu", "--triple", "aarch64-unknown-linux-gnu"];
    let flags = [&["--config", file.as_str(), "--builder-host", "linux/arm64=ssh://flag@arm"][..], &two].concat();
    let s = args(dir.path(), &flags).validate().unwrap();
    let host = |triple: &str| {
        let one = BuildSettings { triple: triple.parse().unwrap(), ..s.clone() };
        one.builder_host().map(ToString::to_string)
    };
    assert_eq!(host("aarch64-unknown-linux-gnu").as_deref(), Some("ssh://flag@arm"));
    assert_eq!(host("x86_64-unknown-linux-gnu").as_deref(), Some("tcp://x86:2376"));
    let s = args(dir.path(), &["--builder-host", "unix:///run/podman/podman.sock"]).validate().unwrap();
    assert_eq!(s.builder_host().map(ToString::to_string).as_deref(), Some("unix:///run/podman/podman.sock"));
    assert_eq!(args(dir.path(), &[]).validate().unwrap().builder_host(), None);

    let e = format!("{:#}", args(dir.path(), &["--builder-host", "riscv64=ssh://b"]).validate().unwrap_err());
    assert!(e.starts_with("--builder-host: unknown platform \"riscv64\""), "{e}");
    let e = format!("{:#}", args(dir.path(), &["--builder-host", "aarch64=arm-host:22"]).validate().unwrap_err());
    assert!(e.contains("--builder-host: \"arm-host:22\" is not a Docker API endpoint: it has no scheme"), "{e}");
    std::fs::write(&file, "builder_host = { riscv64 = \"ssh://b\" }\n").unwrap();
    let e = format!("{:#}", args(dir.path(), &["--config", &file]).validate().unwrap_err());
    assert!(e.contains("builder_host = { \"riscv64\" = \"ssh://b\" }: unknown platform \"riscv64\""), "{e}");
    std::fs::write(&file, "builder_host = \"docker.sock\"\n").unwrap();
    let e = format!("{:#}", args(dir.path(), &["--config", &file]).validate().unwrap_err());
    assert!(e.contains("builder_host = \"docker.sock\": \"docker.sock\" is not a Docker API endpoint"), "{e}");
    std::fs::write(&file, "builder_host = 3\n").unwrap();
    assert!(args(dir.path(), &["--config", &file]).validate().is_err());
    let e =
        format!("{:#}", args(dir.path(), &["--builder", "host", "--builder-host", "ssh://b"]).validate().unwrap_err());
    assert!(e.starts_with("--builder-host names the Docker engines") && e.contains("--builder host"), "{e}");
}
