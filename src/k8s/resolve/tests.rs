use super::*;
use sha2::{Digest as _, Sha256};
use std::sync::Mutex;

/// Records what it was asked to publish; answers `registry.test/DIRNAME@sha256:sha256(path)`.
#[derive(Default)]
struct FakePublisher {
    calls: Mutex<Vec<PathBuf>>,
    fail_on: Option<&'static str>,
    unpinned: bool,
}

impl Publisher for FakePublisher {
    async fn publish(&self, path: &Path) -> Result<String, PublishError> {
        self.calls.lock().unwrap().push(path.to_path_buf());
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if self.fail_on == Some(name.as_str()) {
            return Err(format!("the builder failed for {name}").into());
        }
        if self.unpinned {
            return Ok(format!("registry.test/{name}:latest"));
        }
        Ok(format!("registry.test/{name}@sha256:{}", hex::encode(Sha256::digest(path.to_string_lossy().as_bytes()))))
    }
}

fn pinned(path: &Path) -> String {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    format!("registry.test/{name}@sha256:{}", hex::encode(Sha256::digest(path.to_string_lossy().as_bytes())))
}

/// A base directory with two "projects" in it.
fn projects() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    for p in ["apps/web", "apps/worker"] {
        std::fs::create_dir_all(dir.path().join(p)).unwrap();
    }
    let base = dir.path().canonicalize().unwrap();
    let (web, worker) = (base.join("apps/web"), base.join("apps/worker"));
    (dir, web, worker)
}

fn src(name: &str, text: &str) -> Source {
    Source { name: name.to_string(), text: text.to_string() }
}

/// Every scalar value of a YAML stream, in order.
fn scalars(text: &str) -> Vec<String> {
    saphyr_parser::Parser::new_from_str(text)
        .filter_map(|e| match e.unwrap().0 {
            saphyr_parser::Event::Scalar(v, ..) => Some(v.into_owned()),
            _ => None,
        })
        .collect()
}

const DEPLOY: &str = "# the web tier
apiVersion: apps/v1   # keep me
kind: Deployment
spec:
  template:
    spec:
      containers:
        - name: web
          image: release-oci://apps/web # built by resolve
        - name: sidecar
          image: \"release-oci://./apps/worker\"   # quoted, then a comment
        - name: single
          image: 'release-oci://apps/worker' # single-quoted
        - name: flow
          args: [&w 'release-oci://apps/web/', *w, !!str release-oci://apps/worker]
          command:
            - |
              release-oci://apps/web
";

#[tokio::test]
async fn replaces_every_style_keeps_the_rest_and_builds_each_project_once() {
    let (dir, web, worker) = projects();
    let fake = FakePublisher::default();
    let base = dir.path();
    let out = resolve(&[src("deploy.yaml", DEPLOY)], base, &fake, 4).await.unwrap();
    let text = &out[0].text;

    // Each distinct project once, whatever the spelling of its path; in order of first use.
    assert_eq!(*fake.calls.lock().unwrap(), vec![web.clone(), worker.clone()]);
    let (w, k) = (pinned(&web), pinned(&worker));
    let expected = DEPLOY
        .replace("release-oci://apps/web # built", &format!("{w} # built"))
        .replace("\"release-oci://./apps/worker\"", &format!("\"{k}\""))
        .replace("'release-oci://apps/worker'", &format!("'{k}'"))
        .replace("'release-oci://apps/web/'", &format!("'{w}'"))
        .replace("!!str release-oci://apps/worker", &format!("!!str {k}"))
        .replace("  release-oci://apps/web\n", &format!("  {w}\n"));
    assert_eq!(text, &expected);
    assert!(!text.contains(SCHEME), "{text}");
    // And it is still YAML with the values in place (the alias follows its anchor).
    let values = scalars(text);
    for v in [&w, &k] {
        assert!(values.contains(v), "{v} not in {values:?}");
    }
    assert_eq!(values.iter().filter(|v| *v == &format!("{w}\n")).count(), 1, "block scalar: {values:?}");
}

#[tokio::test]
async fn documents_without_references_pass_through_byte_for_byte() {
    let (dir, _, _) = projects();
    let fake = FakePublisher::default();
    let plain = "# a config map\n---\napiVersion: v1\nkind: ConfigMap   # spaces kept\ndata:\n  \
                 x: 'release-oci is mentioned, not referenced'\n  y: \"release-oci:/one-slash\"\n...\n";
    let out = resolve(&[src("a.yaml", plain), src("b.yaml", "")], dir.path(), &fake, 1).await.unwrap();
    assert_eq!(out[0].text, plain);
    assert_eq!(out[1].text, "");
    assert!(fake.calls.lock().unwrap().is_empty());
}

#[tokio::test]
async fn several_sources_share_one_build_and_keep_their_order() {
    let (dir, web, _) = projects();
    let fake = FakePublisher::default();
    let a = src("a.yaml", "image: release-oci://apps/web\n");
    let b = src("b.yaml", "# b\nimage: release-oci://apps/web/../web\n");
    let out = resolve(&[a, b], dir.path(), &fake, 2).await.unwrap();
    assert_eq!(fake.calls.lock().unwrap().len(), 1);
    let p = pinned(&web);
    assert_eq!(join(&out), format!("image: {p}\n---\n# b\nimage: {p}\n"));
}

#[tokio::test]
async fn errors_name_the_source_line_and_project() {
    let (dir, _, _) = projects();
    let fake = FakePublisher::default();
    let e = resolve(&[src("bad.yaml", "a: [b\n")], dir.path(), &fake, 1).await.unwrap_err();
    assert!(matches!(e, ResolveError::Parse { .. }) && e.to_string().starts_with("bad.yaml is not valid YAML"), "{e}");

    let e =
        resolve(&[src("m.yaml", "x: 1\nimage: release-oci://apps/nope\n")], dir.path(), &fake, 1).await.unwrap_err();
    let msg = e.to_string();
    assert!(msg.starts_with("m.yaml, line 2: release-oci://apps/nope names "), "{msg}");

    let e = resolve(&[src("e.yaml", "image: release-oci://\n")], dir.path(), &fake, 1).await.unwrap_err();
    assert!(e.to_string().contains("names no project path"), "{e}");

    let failing = FakePublisher { fail_on: Some("worker"), ..Default::default() };
    let two = src("t.yaml", "a: release-oci://apps/web\nb: release-oci://apps/worker\n");
    let e = resolve(std::slice::from_ref(&two), dir.path(), &failing, 2).await.unwrap_err();
    assert!(
        e.to_string().contains("apps/worker (referenced in t.yaml, line 2) failed: the builder failed for worker"),
        "{e}"
    );

    let unpinned = FakePublisher { unpinned: true, ..Default::default() };
    let e = resolve(&[two], dir.path(), &unpinned, 2).await.unwrap_err();
    assert!(matches!(e, ResolveError::NotPinned { .. }), "{e}");
}

#[test]
fn join_adds_separators_and_final_line_breaks() {
    let s = |t: &str| src("x", t);
    assert_eq!(join(&[s("a: 1"), s("b: 2\n")]), "a: 1\n---\nb: 2\n");
    assert_eq!(join(&[s("a: 1\n"), s("--- \nb: 2\n")]), "a: 1\n--- \nb: 2\n");
    assert_eq!(join(&[s("a: 1\n"), s("---x: 2\n")]), "a: 1\n---\n---x: 2\n");
}

#[test]
fn reads_files_and_directories_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("b.yml"), "b: 1\n").unwrap();
    std::fs::write(d.join("a.yaml"), "a: 1\n").unwrap();
    std::fs::write(d.join("notes.txt"), "no").unwrap();
    std::fs::create_dir(d.join("sub.yaml")).unwrap();
    let got = read_inputs(&[d.to_path_buf(), d.join("b.yml")]).unwrap();
    let texts: Vec<&str> = got.iter().map(|s| s.text.as_str()).collect();
    assert_eq!(texts, ["a: 1\n", "b: 1\n", "b: 1\n"]);
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(read_inputs(&[empty.path().to_path_buf()]), Err(ResolveError::EmptyDir { .. })));
    assert!(matches!(read_inputs(&[d.join("missing.yaml")]), Err(ResolveError::Read { .. })));
}

#[test]
fn pinned_references() {
    let hex = "a".repeat(64);
    assert!(is_pinned(&format!("127.0.0.1:5000/team/web@sha256:{hex}")));
    assert!(!is_pinned(&format!("web:1@sha256:{}", "A".repeat(64))));
    assert!(!is_pinned("web:latest"));
    assert!(!is_pinned(&format!("@sha256:{hex}")));
    assert!(!is_pinned(&format!("a b@sha256:{hex}")));
}

#[test]
fn quoted_scalars_end_at_their_closing_quote() {
    let text = "a: 'release-oci://it''s' # c\nb: \"release-oci://x\\\"y\" # \"q\"\n";
    let refs = find_references(text).unwrap();
    assert_eq!(refs.iter().map(|r| r.target.as_str()).collect::<Vec<_>>(), ["it's", "x\"y"]);
    let out = substitute(text, &refs, &["r@sha256:0"; 2]);
    assert_eq!(out, "a: 'r@sha256:0' # c\nb: \"r@sha256:0\" # \"q\"\n");
}

/// What `release-oci k8s --migrate` writes without `--image`: the Job's and the init container's
/// images are pinned like the Deployment's, and the Job's name becomes the digest's.
#[tokio::test]
async fn migration_jobs_and_init_containers_are_pinned_and_the_job_named_after_the_digest() {
    use crate::k8s::{Migration, MigrationMode, Spec, manifests, migrate, yaml};
    let (dir, web, _) = projects();
    let fake = FakePublisher::default();
    let with = |mode| Spec {
        image: format!("{SCHEME}apps/web"),
        migration: Some(Migration { args: vec!["/app/bin/migrate".into()], mode }),
        ..crate::k8s::tests::spec()
    };
    let sources: Vec<Source> = [MigrationMode::Job, MigrationMode::InitContainer]
        .into_iter()
        .map(|m| src("m.yaml", &yaml::to_yaml(&manifests(&with(m))).unwrap()))
        .collect();
    let out = resolve(&sources, dir.path(), &fake, 2).await.unwrap();
    assert_eq!(*fake.calls.lock().unwrap(), vec![web.clone()], "one project, one build");
    let image = pinned(&web);
    let text = join(&out);
    assert!(!text.contains(SCHEME), "{text}");
    let docs: Vec<serde_json::Value> =
        yaml_serde::Deserializer::from_str(&text).map(|d| serde::Deserialize::deserialize(d).unwrap()).collect();
    let job = &docs[0];
    assert_eq!(job["kind"], "Job");
    // The name `k8s --image PINNED` would have given it.
    let expected = migrate::job_name(&Spec { image: image.clone(), ..with(MigrationMode::Job) });
    assert_eq!(job["metadata"]["name"], expected.as_str());
    assert!(expected.starts_with("hello-web-migrate-") && expected.len() == "hello-web-migrate-".len() + 10);
    assert_eq!(job["spec"]["template"]["spec"]["containers"][0]["image"], image.as_str());
    let pods: Vec<&serde_json::Value> =
        docs.iter().filter(|d| d["kind"] == "Deployment").map(|d| &d["spec"]["template"]["spec"]).collect();
    assert_eq!(pods.len(), 2);
    for pod in &pods {
        assert_eq!(pod["containers"][0]["image"], image.as_str());
    }
    assert_eq!(pods[1]["initContainers"][0]["image"], image.as_str());
}

#[test]
fn name_fragments_are_checked() {
    let refs = find_references("name: release-oci://apps/web#name=web-migrate\n").unwrap();
    assert_eq!((refs[0].target.as_str(), refs[0].name_prefix.as_deref()), ("apps/web", Some("web-migrate")));
    assert_eq!(find_references("image: release-oci://apps/web\n").unwrap()[0].name_prefix, None);
    for bad in ["Web", "web_", &"a".repeat(53)] {
        let e = find_references(&format!("name: release-oci://apps/web#name={bad}\n")).unwrap_err();
        assert!(e.message.contains("is not a name prefix"), "{e}");
    }
}
