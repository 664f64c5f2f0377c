//! `release-oci k8s` and `release-oci resolve` flags, and their validation into a [`k8s::Spec`].
//! The `[k8s]` table of `release-oci.toml` fills in the flags that are not given.

use crate::config::{K8sConfig, ProjectConfig, UserValue};
use crate::k8s::{self, Cluster, Spec, Termination, naming};
use anyhow::{Context, bail};
use std::path::PathBuf;

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
    /// Ignore the project's release-oci.toml.
    #[arg(long)]
    pub no_config: bool,
}

/// The image reference to use when none is given: the project, for `resolve`.
pub fn default_image(project: &std::path::Path) -> String {
    format!("{}{}", k8s::resolve::SCHEME, project.display())
}

impl K8sArgs {
    /// The manifests' spec, and warnings for stderr.
    pub fn validate(self) -> anyhow::Result<(Spec, Vec<String>)> {
        let config = if self.no_config { None } else { ProjectConfig::load_for_project(&self.project)? };
        let file_user = config.as_ref().and_then(|c| c.user.clone());
        let file_release = config.as_ref().and_then(|c| c.release.clone()).filter(|r| r != "all");
        let c = config.and_then(|c| c.k8s).unwrap_or_default();
        self.merge(c, file_user, file_release)
    }

    fn merge(
        self,
        c: K8sConfig,
        file_user: Option<UserValue>,
        file_release: Option<String>,
    ) -> anyhow::Result<(Spec, Vec<String>)> {
        // Every key of the [k8s] table, by name: a new key cannot be left out of the merge.
        let K8sConfig {
            image: c_image,
            namespace: c_namespace,
            name: c_name,
            replicas: c_replicas,
            port: c_port,
            health: c_health,
            cluster: c_cluster,
            cookie_secret: c_cookie_secret,
            cookie_secret_key: c_cookie_secret_key,
            cluster_domain: c_cluster_domain,
            dist_port: c_dist_port,
            cpu: c_cpu,
            memory: c_memory,
            tmp_size: c_tmp_size,
            grace_period: c_grace_period,
            pre_stop_delay: c_pre_stop_delay,
            push_to: _,
            env: c_env,
        } = c;
        let mut warnings = Vec::new();
        let release = match self.release.or(file_release) {
            Some(r) => r,
            None => naming::release_name(&self.project).with_context(|| {
                format!("cannot tell the release name of {}; pass --release NAME", self.project.display())
            })?,
        };
        let name = self.name.or(c_name).unwrap_or_else(|| naming::name_from(&release));
        naming::check_name("--name", &name)?;
        let namespace = self.namespace.or(c_namespace);
        if let Some(ns) = &namespace {
            naming::check_subdomain("--namespace", ns, 63)?;
            if ns.contains('.') {
                bail!("--namespace {ns:?} must not contain `.`");
            }
        }
        let image = self.image.or(c_image).unwrap_or_else(|| default_image(&self.project));
        if !image.starts_with(k8s::resolve::SCHEME) && !image.contains("@sha256:") {
            warnings.push(format!(
                "--image {image} is not pinned by digest: pods of one Deployment may run different images; \
                 use REPO@sha256:... (`release-oci build --push` prints it)"
            ));
        }
        let port = self.port.or(c_port).unwrap_or(4000);
        if port == 0 {
            bail!("--port 0 is not a port");
        }
        let health = self.health.or(c_health);
        if let Some(h) = &health
            && !h.starts_with('/')
        {
            bail!("--health {h:?} must be an HTTP path starting with `/`");
        }
        let cluster = match (self.cluster, c_cluster.as_deref()) {
            (Some(ClusterArg::Dns), _) | (None, Some("dns")) => true,
            (None, None) => false,
            (None, Some(other)) => bail!("[k8s] cluster = {other:?}: the only strategy is \"dns\""),
        };
        let dist_port = self.dist_port.or(c_dist_port);
        let cookie_secret = self.cookie_secret.or(c_cookie_secret);
        if cluster && cookie_secret.is_none() {
            bail!(
                "--cluster dns needs --cookie-secret NAME: every node must share one cookie, read from a Secret \
                 (create it with `kubectl create secret generic NAME --from-literal=cookie=$(openssl rand -hex 32)`)"
            );
        }
        if let Some(s) = &cookie_secret {
            naming::check_subdomain("--cookie-secret", s, 253)?;
        }
        let key = self.cookie_secret_key.or(c_cookie_secret_key).unwrap_or_else(|| "cookie".into());
        let key = &key;
        if key.is_empty() || !key.chars().all(|ch| ch.is_ascii_alphanumeric() || "-._".contains(ch)) {
            bail!("--cookie-secret-key {key:?} is not a Secret key (letters, digits, `-`, `_`, `.`)");
        }
        match dist_port {
            Some(_) if !cluster => bail!("--dist-port is for Erlang distribution; add --cluster dns"),
            Some(p) if p == port || p == 0 => bail!("--dist-port {p} must differ from --port and be non-zero"),
            _ => {}
        }
        let domain = self.cluster_domain.or(c_cluster_domain).unwrap_or_else(|| "cluster.local".into());
        let (uid, gid) =
            parse_user(self.user.or(file_user.map(|u| u.to_string())).as_deref().unwrap_or("10001:10001"))?;
        let termination = Termination::new(
            self.grace_period.or(c_grace_period).unwrap_or(30),
            self.pre_stop_delay.or(c_pre_stop_delay).unwrap_or(5),
        )?;
        let mut env: Vec<(String, String)> = c_env.unwrap_or_default().into_iter().collect();
        for e in &self.env {
            let (k, v) = e
                .split_once('=')
                .filter(|(k, _)| !k.is_empty())
                .with_context(|| format!("--env {e:?} is not KEY=VALUE"))?;
            env.retain(|(old, _)| old != k);
            env.push((k.to_string(), v.to_string()));
        }
        if env.iter().any(|(k, _)| k == "RELEASE_COOKIE") {
            bail!("RELEASE_COOKIE must not be a literal in a manifest; use --cookie-secret NAME");
        }
        let spec = Spec {
            name,
            release,
            namespace,
            image,
            replicas: i32::try_from(self.replicas.or(c_replicas).unwrap_or(1)).context("--replicas is too large")?,
            port,
            health,
            uid,
            gid,
            cpu: self.cpu.or(c_cpu).map(|s| s.parse()).transpose().context("--cpu")?,
            memory: self.memory.or(c_memory).map(|s| s.parse()).transpose().context("--memory")?,
            tmp_size: self.tmp_size.or(c_tmp_size).map(|s| s.parse()).transpose().context("--tmp-size")?,
            termination,
            cookie_secret: cookie_secret.map(|s| (s, key.clone())),
            cluster: cluster.then(|| Cluster { dist_port, domain: domain.clone() }),
            env,
        };
        Ok((spec, warnings))
    }
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
mod tests {
    use super::*;

    fn args(f: impl FnOnce(&mut K8sArgs)) -> K8sArgs {
        let mut a = K8sArgs {
            project: PathBuf::from("/nonexistent/my_app"),
            release: Some("my_app".into()),
            cookie_secret_key: None,
            cluster_domain: None,
            no_config: true,
            ..Default::default()
        };
        f(&mut a);
        a
    }

    fn spec(f: impl FnOnce(&mut K8sArgs)) -> anyhow::Result<Spec> {
        args(f).merge(K8sConfig::default(), None, None).map(|(s, _)| s)
    }

    #[test]
    fn defaults() {
        let (s, warnings) = args(|_| {}).merge(K8sConfig::default(), None, None).unwrap();
        assert_eq!((s.name.as_str(), s.release.as_str(), s.port, s.replicas), ("my-app", "my_app", 4000, 1));
        assert_eq!(s.image, "release-oci:///nonexistent/my_app");
        assert_eq!((s.uid, s.gid), (10001, 10001));
        assert_eq!(s.termination.shutdown_time_ms(), 20_000);
        assert!(s.cluster.is_none() && s.cookie_secret.is_none() && warnings.is_empty());
    }

    #[test]
    fn flags_win_over_the_config_file() {
        let c = K8sConfig { replicas: Some(3), port: Some(8080), cpu: Some("2".into()), ..Default::default() };
        let (s, _) = args(|a| a.port = Some(4001)).merge(c, Some(UserValue::Id(2000)), None).unwrap();
        assert_eq!((s.replicas, s.port, s.uid, s.gid), (3, 4001, 2000, 2000));
        assert_eq!(s.cpu.unwrap().schedulers(), 2);
    }

    #[test]
    fn every_documented_key_of_the_table_takes_effect() {
        let c = K8sConfig {
            cluster: Some("dns".into()),
            cookie_secret: Some("app-cookie".into()),
            cookie_secret_key: Some("erlang-cookie".into()),
            cluster_domain: Some("corp.internal".into()),
            tmp_size: Some("64Mi".into()),
            ..Default::default()
        };
        let (s, _) = args(|_| {}).merge(c.clone(), None, None).unwrap();
        assert_eq!(s.cookie_secret, Some(("app-cookie".to_string(), "erlang-cookie".to_string())));
        assert_eq!(s.cluster.as_ref().map(|c| c.domain.as_str()), Some("corp.internal"));
        assert_eq!(s.tmp_size.as_ref().map(|m| m.as_str().to_string()), Some("64Mi".to_string()));
        let (s, _) = args(|a| a.cluster_domain = Some("cli.local".into())).merge(c, None, None).unwrap();
        assert_eq!(s.cluster.map(|c| c.domain), Some("cli.local".to_string()), "the flag wins");
    }

    #[test]
    fn rejects_what_kubernetes_or_the_beam_would() {
        type Change = Box<dyn FnOnce(&mut K8sArgs)>;
        let cases: Vec<(Change, &str)> = vec![
            (Box::new(|a| a.cluster = Some(ClusterArg::Dns)), "needs --cookie-secret"),
            (Box::new(|a| a.dist_port = Some(9000)), "add --cluster dns"),
            (Box::new(|a| a.user = Some("0".into())), "does not allow root"),
            (Box::new(|a| a.user = Some("app".into())), "must be numeric"),
            (Box::new(|a| a.name = Some("My_App".into())), "not a valid Kubernetes name"),
            (Box::new(|a| a.health = Some("health".into())), "starting with `/`"),
            (Box::new(|a| a.cpu = Some("lots".into())), "--cpu: \"lots\" is not a CPU quantity"),
            (Box::new(|a| a.tmp_size = Some("1GB".into())), "--tmp-size: \"1GB\" is not a memory quantity"),
            (Box::new(|a| a.grace_period = Some(10)), "leaves the BEAM no time"),
            (Box::new(|a| a.env = vec!["RELEASE_COOKIE=x".into()]), "must not be a literal"),
            (Box::new(|a| a.env = vec!["=x".into()]), "not KEY=VALUE"),
        ];
        for (f, want) in cases {
            let e = format!("{:#}", spec(f).unwrap_err());
            assert!(e.contains(want), "{e:?} does not say {want:?}");
        }
    }

    #[test]
    fn unpinned_images_warn() {
        let (_, w) = args(|a| a.image = Some("my_app:latest".into())).merge(K8sConfig::default(), None, None).unwrap();
        assert!(w[0].contains("not pinned by digest"), "{w:?}");
    }

    #[test]
    fn push_prefixes() {
        let r = |p: &str| ResolveArgs { files: vec![], push_to: Some(p.into()), jobs: None, build_flags: vec![] };
        assert_eq!(r("127.0.0.1:5000/team/").push_prefix(None).unwrap(), "127.0.0.1:5000/team");
        assert_eq!(r("a/b").push_prefix(Some("c/d".into())).unwrap(), "a/b");
        assert!(r("x/y@sha256:ab").push_prefix(None).is_err());
        assert!(r("X/y").push_prefix(None).is_err());
        let none = ResolveArgs { push_to: None, ..r("") };
        assert_eq!(none.push_prefix(Some("c/d".into())).unwrap(), "c/d");
        assert!(none.push_prefix(None).unwrap_err().to_string().contains("needs --push-to"));
    }
}
