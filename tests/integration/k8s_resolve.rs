//! `release-oci resolve`: two documents referencing two example apps are built and pushed to a
//! local registry once each, the references are replaced by digests that `skopeo inspect`
//! confirms, and everything else passes through byte for byte.

use crate::k8s_pod::{k8s_manifests, parse_yaml};
use crate::registry_util::{Registry, skopeo_digest};
use crate::util::*;

const PLAIN: &str = "# no image to build here: this file must come out as it went in
apiVersion: v1
kind: ConfigMap   # odd spacing, kept
metadata: {name: settings}
data:
  note: 'mentions release-oci:// only inside a sentence'
";

#[test]
fn a_document_without_references_passes_through_byte_for_byte() {
    let dir = crate::util::tempdir().unwrap();
    let f = dir.path().join("plain.yaml");
    std::fs::write(&f, PLAIN).unwrap();
    let mut c = release_oci();
    // No registry listens there: nothing is built or pushed for a file without references.
    c.arg("resolve").arg("-f").arg(&f).args(["--push-to", "127.0.0.1:9/never"]);
    assert_eq!(ok(c), PLAIN);
}

#[test]
fn resolve_builds_pushes_and_pins_two_example_apps() {
    require_docker();
    let reg = Registry::plain();
    let work = crate::util::tempdir().unwrap();
    let (hello, paths) = (copy_example("hello_web"), copy_example("path_deps"));
    for (src, name) in [(&hello, "hello_web"), (&paths, "path_deps")] {
        std::fs::rename(src.path(), work.path().join(name)).unwrap();
    }
    let k8s = work.path().join("k8s");
    std::fs::create_dir(&k8s).unwrap();
    // 1: what `release-oci k8s` writes without --image (release-oci://PATH, relative to the
    // directory resolve runs in); 2: a hand-written document; 3: no reference at all.
    let (web, _) = k8s_manifests(&[work.path().join("hello_web").to_str().unwrap(), "--health", "/health"]);
    let web =
        web.replace(&format!("release-oci://{}", work.path().join("hello_web").display()), "release-oci://hello_web");
    std::fs::write(k8s.join("1-web.yaml"), &web).unwrap();
    let worker = "# the worker\napiVersion: v1\nkind: Pod\nmetadata:\n  name: worker\nspec:\n  containers:\n    \
                  - name: worker\n      image: \"release-oci://./path_deps\"   # built by resolve\n    \
                  - name: web-too\n      image: release-oci://hello_web/\n";
    std::fs::write(k8s.join("2-worker.yaml"), worker).unwrap();
    std::fs::write(k8s.join("3-plain.yaml"), PLAIN).unwrap();

    let mut c = release_oci();
    c.current_dir(work.path()).args(["resolve", "-f", "k8s", "--push-to", &format!("{}/team", reg.addr())]);
    let out = ok(c);
    let docs = parse_yaml(&out);
    assert_eq!(docs.len(), 4, "{out}");
    let web_image = docs[1]["spec"]["template"]["spec"]["containers"][0]["image"].as_str().unwrap().to_string();
    let containers = &docs[2]["spec"]["containers"];
    let (worker_image, web_again) =
        (containers[0]["image"].as_str().unwrap().to_string(), containers[1]["image"].as_str().unwrap());
    assert_eq!(web_again, web_image, "one project, one build, one reference");
    for (image, repo) in [(&web_image, "team/hello_web"), (&worker_image, "team/path_deps")] {
        let (name, digest) = image.split_once('@').unwrap_or_else(|| panic!("{image} is not pinned"));
        assert_eq!(name, format!("{}/{repo}", reg.addr()));
        assert!(digest.starts_with("sha256:") && digest.len() == 71, "{image}");
        // The registry has exactly that manifest.
        assert_eq!(skopeo_digest(image, &[]), digest, "{image}");
    }
    assert_ne!(web_image, worker_image);
    // Everything but the references is as it was, comments included; files keep their order.
    let expected = format!(
        "{}---\n{}---\n{PLAIN}",
        web.replace("release-oci://hello_web", &web_image),
        worker
            .replace("\"release-oci://./path_deps\"", &format!("\"{worker_image}\""))
            .replace("release-oci://hello_web/", &web_image)
    );
    assert_eq!(out, expected);
}

/// `k8s --migrate` without `--image`, then `resolve`: the Job's image is pushed and pinned like
/// the Deployment's, and the Job gets its name from that digest (one Job per image).
#[test]
fn resolve_pins_the_migration_job_and_names_it_after_the_digest() {
    require_docker();
    let reg = Registry::plain();
    let work = crate::util::tempdir().unwrap();
    let hello = copy_example("hello_web");
    std::fs::rename(hello.path(), work.path().join("hello_web")).unwrap();
    let project = work.path().join("hello_web");
    let (text, _) =
        k8s_manifests(&[project.to_str().unwrap(), "--migrate=eval IO.puts(:migrated)", "--env-from", "app-secrets"]);
    let text = text.replace(&format!("release-oci://{}", project.display()), "release-oci://hello_web");
    assert!(text.contains("name: release-oci://hello_web#name=hello-web-migrate\n"), "{text}");
    std::fs::write(work.path().join("app.yaml"), &text).unwrap();

    let mut c = release_oci();
    c.current_dir(work.path()).args(["resolve", "-f", "app.yaml", "--push-to", &format!("{}/team", reg.addr())]);
    let out = ok(c);
    assert!(!out.contains("release-oci://"), "{out}");
    let docs = parse_yaml(&out);
    let job = docs.iter().find(|d| d["kind"] == "Job").expect("a Job");
    let deployment = docs.iter().find(|d| d["kind"] == "Deployment").expect("a Deployment");
    let image = deployment["spec"]["template"]["spec"]["containers"][0]["image"].as_str().unwrap();
    assert_eq!(job["spec"]["template"]["spec"]["containers"][0]["image"], image);
    let (name, digest) = image.split_once('@').unwrap_or_else(|| panic!("{image} is not pinned"));
    assert_eq!(name, format!("{}/team/hello_web", reg.addr()));
    assert_eq!(skopeo_digest(image, &[]), digest, "{image}");
    let hex = digest.strip_prefix("sha256:").unwrap();
    assert_eq!(job["metadata"]["name"], format!("hello-web-migrate-{}", &hex[..10]));
    // Only the two references changed.
    let expected = text
        .replace("release-oci://hello_web#name=hello-web-migrate", &format!("hello-web-migrate-{}", &hex[..10]))
        .replace("release-oci://hello_web", image);
    assert_eq!(out, expected);
}
