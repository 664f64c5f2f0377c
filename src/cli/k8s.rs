//! `release-oci k8s` and `release-oci resolve` flags, and their validation into a [`k8s::Spec`].
//! The `[k8s]` table of `release-oci.toml` fills in the flags that are not given.

use crate::config::{K8sConfig, MigrateValue, ProjectConfig, UserValue};
use crate::k8s::{self, Spec, Termination, naming};
use anyhow::{Context, bail};
use settings::{
    ClusterInputs, MigrateInputs, check_health, check_namespace, check_phx_host, cluster_settings, image_warnings,
    merge_env, merge_env_from, migration,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[path = "k8s_settings.rs"]
mod settings;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ClusterArg {
    /// Erlang distribution between the pods, found through a headless Service's DNS records.
    Dns,
}

#[derive(Debug, Default, clap::Args)]
pub struct K8sArgs {
    /// The project directory: names the release; the default image is release-oci://PROJECT.
    #[arg(default_value = ".")]
    pub project: PathBuf,
    /// The image, pinned by digest (REPO@sha256:...); default release-oci://PROJECT, for
    /// `release-oci resolve` to build, push and pin.
    #[arg(long)]
    pub image: Option<String>,
    /// Name of the Deployment and Services (default: the release name, `_` → `-`).
    #[arg(long)]
    pub name: Option<String>,
    /// The release name (node names are RELEASE@POD_IP; default: `app:` in mix.exs, the relx
    /// release in rebar.config, else the directory name).
    #[arg(long)]
    pub release: Option<String>,
    /// Namespace of the objects (default: none, kubectl's current one).
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,
    /// Number of pods [default: 1].
    #[arg(long)]
    pub replicas: Option<u32>,
    /// The port the application listens on; also given to it as PORT [default: 4000].
    #[arg(long)]
    pub port: Option<u16>,
    /// HTTP path for the startup/readiness/liveness probes (default: a TCP probe on the port).
    #[arg(long)]
    pub health: Option<String>,
    /// Erlang clustering: `dns` adds a headless Service, RELEASE_DISTRIBUTION=name and
    /// RELEASE_NODE=RELEASE@$(POD_IP); needs --cookie-secret.
    #[arg(long, value_enum)]
    pub cluster: Option<ClusterArg>,
    /// The Secret whose key `cookie` (see --cookie-secret-key) is RELEASE_COOKIE.
    #[arg(long)]
    pub cookie_secret: Option<String>,
    /// The key in --cookie-secret [default: cookie].
    #[arg(long)]
    pub cookie_secret_key: Option<String>,
    /// Erlang distribution on this fixed port without epmd (with --cluster).
    #[arg(long)]
    pub dist_port: Option<u16>,
    /// The cluster's DNS domain (for the headless Service's name in DNS_CLUSTER_QUERY)
    /// [default: cluster.local].
    #[arg(long)]
    pub cluster_domain: Option<String>,
    /// CPU limit and request (`500m`, `2`); the BEAM gets as many schedulers (rounded up).
    #[arg(long)]
    pub cpu: Option<String>,
    /// Memory limit and request (`512Mi`, `2Gi`).
    #[arg(long)]
    pub memory: Option<String>,
    /// Size limit of the /tmp emptyDir (RELEASE_TMP), e.g. `64Mi` (default: none).
    #[arg(long)]
    pub tmp_size: Option<String>,
    /// The image's user, UID[:GID] (numeric, not 0) [default: 10001:10001, or `user` of
    /// release-oci.toml].
    #[arg(long)]
    pub user: Option<String>,
    /// terminationGracePeriodSeconds; the BEAM's shutdown bound is this minus the preStop delay
    /// and 5 s [default: 30].
    #[arg(long)]
    pub grace_period: Option<u32>,
    /// Seconds the preStop hook sleeps so endpoints drain before SIGTERM; 0: no hook [default: 5].
    #[arg(long)]
    pub pre_stop_delay: Option<u32>,
    /// Container environment variable (KEY=VALUE; repeatable). ERL_FLAGS is appended to the
    /// generated flags.
    #[arg(long = "env", short = 'e', value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// A Secret whose keys become the containers' environment (envFrom; repeatable), e.g. one
    /// with DATABASE_URL and SECRET_KEY_BASE.
    #[arg(long, value_name = "SECRET")]
    pub env_from: Vec<String>,
    /// PHX_HOST of the containers: the host name Phoenix builds its URLs with.
    #[arg(long, value_name = "HOST")]
    pub phx_host: Option<String>,
    /// Migrate the database before the rollout: a Job per image digest (apply it and wait for it
    /// before the Deployment) whose args are COMMAND [default: the release's bin/migrate, else
    /// `eval APP.Release.migrate()`]. A command goes after `=`: --migrate=/app/bin/migrate.
    #[arg(long, value_name = "COMMAND", num_args = 0..=1, require_equals = true)]
    pub migrate: Option<Option<String>>,
    /// Migrate in an init container of the Deployment's pods instead of a Job (implies --migrate).
    #[arg(long)]
    pub migrate_init: bool,
    /// For an image built with --hot-upgrades: an emptyDir at /var/lib/release-oci, where the
    /// release root lives while it runs, so `release_handler` can upgrade it in place
    /// (docs/hot-upgrades.md).
    #[arg(long)]
    pub hot_upgrades: bool,
    /// Ignore the project's release-oci.toml.
    #[arg(long)]
    pub no_config: bool,
}

/// The image reference to use when none is given: the project, for `resolve`.
pub fn default_image(project: &std::path::Path) -> String {
    format!("{}{}", k8s::resolve::SCHEME, project.display())
}

/// What the rest of `release-oci.toml` tells the k8s command: the top-level `user` and `release`,
/// and the release directory `from_release` names (its `bin/migrate`).
#[derive(Debug, Default)]
struct TopLevel {
    user: Option<UserValue>,
    release: Option<String>,
    release_dir: Option<PathBuf>,
}

/// The `[k8s]` keys that are merged with their flags rather than replaced by them: lists and
/// tables (the file's, then the flags'), and the migration (`--migrate` alone keeps the file's
/// command).
#[derive(Debug, Default)]
struct FileMerged {
    env: Option<BTreeMap<String, String>>,
    env_from: Option<Vec<String>>,
    migrate: Option<MigrateValue>,
    migrate_init: Option<bool>,
    hot_upgrades: Option<bool>,
}

/// The defaults of what neither a flag nor the file sets.
const DEFAULT_PORT: u16 = 4000;
const DEFAULT_USER: &str = "10001:10001";
const DEFAULT_GRACE_PERIOD: u32 = 30;
const DEFAULT_PRE_STOP_DELAY: u32 = 5;

impl K8sArgs {
    /// The manifests' spec, and warnings for stderr.
    pub fn validate(self) -> anyhow::Result<(Spec, Vec<String>)> {
        let config = if self.no_config { None } else { ProjectConfig::load_for_project(&self.project)? };
        let top = match &config {
            None => TopLevel::default(),
            Some(c) => TopLevel {
                user: c.user.clone(),
                release: c.release.clone().filter(|r| r != "all"),
                release_dir: c.from_release.as_deref().map(|p| c.resolve_path(p)).filter(|p| p.is_dir()),
            },
        };
        let c = config.and_then(|c| c.k8s).unwrap_or_default();
        self.merge(c, top)
    }

    /// The flags over the `[k8s]` table over the defaults.
    fn merge(self, c: K8sConfig, top: TopLevel) -> anyhow::Result<(Spec, Vec<String>)> {
        let (args, file) = self.over(c)?;
        let spec = args.spec(file, top)?;
        let warnings = image_warnings(&spec);
        Ok((spec, warnings))
    }

    /// Each flag left out takes the table's value (typed, as the flag would be); the keys merged
    /// otherwise come back in [`FileMerged`].
    fn over(mut self, c: K8sConfig) -> anyhow::Result<(K8sArgs, FileMerged)> {
        // Every key of the table, by name: a new key does not compile until it is merged here.
        #[rustfmt::skip]
        let K8sConfig {
            image, namespace, name, replicas, port, health, cluster, cookie_secret, cookie_secret_key,
            cluster_domain, dist_port, cpu, memory, tmp_size, grace_period, pre_stop_delay, env, migrate,
            migrate_init, env_from, phx_host, hot_upgrades,
            // `release-oci resolve`'s (commands/resolve.rs): where the images it builds are pushed.
            push_to: _,
        } = c;
        fill(&mut self.image, image);
        fill(&mut self.namespace, namespace);
        fill(&mut self.name, name);
        fill(&mut self.replicas, replicas);
        fill(&mut self.port, port);
        fill(&mut self.health, health);
        fill(&mut self.cluster, cluster.as_deref().map(cluster_value).transpose()?);
        fill(&mut self.cookie_secret, cookie_secret);
        fill(&mut self.cookie_secret_key, cookie_secret_key);
        fill(&mut self.cluster_domain, cluster_domain);
        fill(&mut self.dist_port, dist_port);
        fill(&mut self.cpu, cpu);
        fill(&mut self.memory, memory);
        fill(&mut self.tmp_size, tmp_size);
        fill(&mut self.grace_period, grace_period);
        fill(&mut self.pre_stop_delay, pre_stop_delay);
        fill(&mut self.phx_host, phx_host);
        Ok((self, FileMerged { env, env_from, migrate, migrate_init, hot_upgrades }))
    }

    /// The spec of the merged flags, with the defaults.
    fn spec(self, file: FileMerged, top: TopLevel) -> anyhow::Result<Spec> {
        #[rustfmt::skip]
        let K8sArgs {
            project, image, name, release, namespace, replicas, port, health, cluster, cookie_secret,
            cookie_secret_key, dist_port, cluster_domain, cpu, memory, tmp_size, user, grace_period, pre_stop_delay,
            env, env_from, phx_host, migrate, migrate_init, hot_upgrades, no_config: _,
        } = self;
        let (release, name) = release_and_name(release.or(top.release), name, &project)?;
        let port = port.unwrap_or(DEFAULT_PORT);
        anyhow::ensure!(port != 0, "--port 0 is not a port");
        let (cluster, cookie_secret) = cluster_settings(
            ClusterInputs { cluster, cookie_secret, cookie_secret_key, dist_port, domain: cluster_domain },
            port,
        )?;
        let (uid, gid) = parse_user(&user.or(top.user.map(|u| u.to_string())).unwrap_or(DEFAULT_USER.into()))?;
        let env = merge_env(file.env, &env)?;
        let migration = migration(MigrateInputs {
            flag: migrate,
            flag_init: migrate_init,
            file: file.migrate,
            file_init: file.migrate_init,
            project: &project,
            release_dir: top.release_dir.as_deref(),
        })?;
        Ok(Spec {
            image: image.unwrap_or_else(|| default_image(&project)),
            namespace: check_namespace(namespace)?,
            replicas: i32::try_from(replicas.unwrap_or(1)).context("--replicas is too large")?,
            health: check_health(health)?,
            cpu: cpu.map(|s| s.parse()).transpose().context("--cpu")?,
            memory: memory.map(|s| s.parse()).transpose().context("--memory")?,
            tmp_size: tmp_size.map(|s| s.parse()).transpose().context("--tmp-size")?,
            termination: Termination::new(
                grace_period.unwrap_or(DEFAULT_GRACE_PERIOD),
                pre_stop_delay.unwrap_or(DEFAULT_PRE_STOP_DELAY),
            )?,
            env_from: merge_env_from(file.env_from, env_from)?,
            phx_host: check_phx_host(phx_host, &env)?,
            name,
            release,
            port,
            uid,
            gid,
            cookie_secret,
            cluster,
            env,
            migration,
            hot_upgrades: hot_upgrades || file.hot_upgrades == Some(true),
        })
    }
}

fn fill<T>(flag: &mut Option<T>, from_file: Option<T>) {
    if flag.is_none() {
        *flag = from_file;
    }
}

/// `[k8s] cluster = "dns"`: the strategies `--cluster` takes.
fn cluster_value(value: &str) -> anyhow::Result<ClusterArg> {
    <ClusterArg as clap::ValueEnum>::from_str(value, false)
        .map_err(|_| anyhow::anyhow!("[k8s] cluster = {value:?}: the only strategy is \"dns\""))
}

/// The release's name (the flag or file, else read from the project's files) and the objects'.
fn release_and_name(release: Option<String>, name: Option<String>, project: &Path) -> anyhow::Result<(String, String)> {
    let release = match release {
        Some(r) => r,
        None => naming::release_name(project)
            .with_context(|| format!("cannot tell the release name of {}; pass --release NAME", project.display()))?,
    };
    let name = name.unwrap_or_else(|| naming::name_from(&release));
    naming::check_name("--name", &name)?;
    Ok((release, name))
}

/// `UID[:GID]`, numeric (runAsNonRoot can only check numbers), not root.
fn parse_user(s: &str) -> anyhow::Result<(i64, i64)> {
    let (u, g) = s.split_once(':').unwrap_or((s, s));
    let (Ok(uid), Ok(gid)) = (u.parse::<u32>(), g.parse::<u32>()) else {
        bail!("--user {s:?} must be numeric UID[:GID]: Kubernetes' runAsNonRoot can only check numeric users");
    };
    if uid == 0 {
        bail!("--user {s:?}: the restricted Pod Security Standard does not allow root (build with the default user)");
    }
    Ok((uid.into(), gid.into()))
}

#[derive(Debug, clap::Args)]
pub struct ResolveArgs {
    /// YAML to resolve: a file, a directory (its *.yaml and *.yml files, sorted) or `-` for
    /// standard input (repeatable).
    #[arg(short = 'f', long = "filename", required = true, value_name = "FILE|DIR")]
    pub files: Vec<PathBuf>,
    /// Repository prefix to push to: each project goes to PREFIX/RELEASE (default: `push_to` in
    /// the [k8s] table of ./release-oci.toml).
    #[arg(long, value_name = "REGISTRY/PREFIX")]
    pub push_to: Option<String>,
    /// Builds at a time [default: the number of CPUs].
    #[arg(long, short = 'j')]
    pub jobs: Option<usize>,
    /// `release-oci build` flags for every build (after `--`), e.g. `-- --triple aarch64-unknown-linux-gnu`.
    #[arg(last = true, value_name = "BUILD_FLAGS")]
    pub build_flags: Vec<String>,
}

impl ResolveArgs {
    /// The repository prefix (without a trailing `/`), checked; `from_config` when not given.
    pub fn push_prefix(&self, from_config: Option<String>) -> anyhow::Result<String> {
        let Some(p) = self.push_to.clone().or(from_config) else {
            bail!("resolve needs --push-to REGISTRY/PREFIX: where the images it builds are pushed");
        };
        let p = p.trim_end_matches('/');
        if p.is_empty() || p.contains('@') || p.chars().any(|c| c.is_whitespace() || c.is_ascii_uppercase()) {
            bail!("--push-to {p:?} is not a repository prefix (REGISTRY[/PATH], lowercase, no tag or digest)");
        }
        Ok(p.to_string())
    }
}

#[cfg(test)]
#[path = "k8s_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "k8s_key_tests.rs"]
mod key_tests;
