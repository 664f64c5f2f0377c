//! Provenance: an in-toto statement (v1) about the image with the SLSA provenance v1 predicate,
//! a pure function of the build's [`Facts`] and the image digest (no start or finish times, no
//! invocation id: two builds of the same inputs give the same bytes). It is signed as a DSSE
//! envelope and pushed in cosign's attestation layout (`sign.rs`, `attach.rs`), so
//! `cosign verify-attestation --type slsaprovenance1` checks it.

use super::facts::Facts;
use crate::digest::Digest;
use serde_json::{Value, json};

pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
pub const PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";
/// What a release-oci build is: how to read `externalParameters` (docs/supply-chain.md).
pub const BUILD_TYPE: &str = "urn:release-oci:build-type:v1";
/// The builder: release-oci itself (its version is in `runDetails.builder.version`).
pub const BUILDER_ID: &str = "urn:release-oci:builder";

/// `{"sha256": HEX}` of a `sha256:HEX` digest.
fn digest_set(d: &str) -> Value {
    match d.strip_prefix("sha256:") {
        Some(hex) => json!({"sha256": hex}),
        None => json!({}),
    }
}

/// The statement (JSON bytes) for the image `digest` built with `facts`.
pub fn statement(facts: &Facts, digest: &Digest) -> Vec<u8> {
    let mut resolved = Vec::new();
    if let Some(rev) = &facts.source.revision {
        let uri = facts.source.repository.as_deref().map_or_else(|| "git".to_string(), |r| format!("git+{r}"));
        resolved.push(json!({"uri": uri, "digest": {"gitCommit": rev}, "name": "source"}));
    }
    if let Some(lock) = &facts.lock {
        resolved.push(json!({"name": lock.file, "digest": digest_set(lock.digest.as_str())}));
    }
    if let Some(base) = &facts.base {
        let mut r = json!({"name": format!("base image {}", base.name)});
        if let Some(d) = &base.digest {
            r["digest"] = digest_set(d);
        }
        resolved.push(r);
    }
    let mut builder_deps = Vec::new();
    if let Some(b) = &facts.builder {
        let mut r = json!({"name": format!("builder image {}", b.name)});
        if let Some(d) = &b.digest {
            r["digest"] = digest_set(d);
        }
        builder_deps.push(r);
    }
    let mut external = json!({
        "release": facts.release,
        "version": facts.version,
        "triple": facts.triple,
        "platform": facts.platform,
        "flags": facts.parameters,
    });
    if let Some(repo) = &facts.source.repository {
        external["source"] = json!(repo);
    }
    let v = json!({
        "_type": STATEMENT_TYPE,
        "subject": [{"name": facts.release, "digest": digest_set(digest.as_str())}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": external,
                "internalParameters": {"created": facts.created, "erts": facts.required_erts},
                "resolvedDependencies": resolved,
            },
            "runDetails": {
                "builder": {
                    "id": BUILDER_ID,
                    "version": {"release-oci": facts.tool_version},
                    "builderDependencies": builder_deps,
                },
                "metadata": {},
            },
        },
    });
    // serde_json's maps are sorted: the same facts give the same bytes.
    serde_json::to_vec(&v).unwrap_or_default()
}

/// The statement for an image index, made from its images' statements (`images`: each image's
/// digest and statement, in the index's order): the index as the subject, the first image's build
/// definition and run details with the images' `platform`s and `triple`s as lists, and as resolved
/// dependencies each image (by digest) then every distinct dependency of any of them. None when
/// no image has a statement.
pub fn index_statement(index: &Digest, images: &[(&Digest, &[u8])]) -> Option<Vec<u8>> {
    let parsed: Vec<(&Digest, Value)> = images
        .iter()
        .filter_map(|(d, b)| Some((*d, serde_json::from_slice::<Value>(b).ok()?)))
        .filter(|(_, s)| s["subject"][0].is_object() && s["predicate"]["buildDefinition"].is_object())
        .collect();
    let mut v = parsed.first()?.1.clone();
    let def = |s: &Value| s["predicate"]["buildDefinition"].clone();
    let each = |k: &str| parsed.iter().map(|(_, s)| def(s)["externalParameters"][k].clone()).collect::<Vec<_>>();
    let (platforms, triples) = (each("platform"), each("triple"));
    let mut resolved: Vec<Value> = parsed
        .iter()
        .zip(&platforms)
        .map(|((d, _), p)| json!({"name": format!("image {}", p.as_str().unwrap_or("?")), "digest": digest_set(d.as_str())}))
        .collect();
    let mut builders: Vec<Value> = Vec::new();
    for (_, s) in &parsed {
        for r in def(s)["resolvedDependencies"].as_array().into_iter().flatten() {
            if !resolved.contains(r) {
                resolved.push(r.clone());
            }
        }
        for b in s["predicate"]["runDetails"]["builder"]["builderDependencies"].as_array().into_iter().flatten() {
            if !builders.contains(b) {
                builders.push(b.clone());
            }
        }
    }
    v["subject"][0]["digest"] = digest_set(index.as_str());
    let external = &mut v["predicate"]["buildDefinition"]["externalParameters"];
    if let Some(map) = external.as_object_mut() {
        map.remove("platform");
        map.remove("triple");
        map.insert("platforms".into(), Value::Array(platforms));
        map.insert("triples".into(), Value::Array(triples));
    }
    v["predicate"]["buildDefinition"]["resolvedDependencies"] = Value::Array(resolved);
    v["predicate"]["runDetails"]["builder"]["builderDependencies"] = Value::Array(builders);
    Some(serde_json::to_vec(&v).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supply::facts::tests::sample;

    #[test]
    fn statement_names_the_image_and_the_build_inputs() {
        let d = Digest::of(b"manifest");
        let bytes = statement(&sample(), &d);
        assert_eq!(bytes, statement(&sample(), &d), "deterministic");
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["_type"], STATEMENT_TYPE);
        assert_eq!(v["predicateType"], PREDICATE_TYPE);
        assert_eq!(v["subject"][0]["digest"]["sha256"], d.hex());
        let def = &v["predicate"]["buildDefinition"];
        assert_eq!(def["externalParameters"]["triple"], "x86_64-unknown-linux-gnu");
        assert_eq!(def["externalParameters"]["flags"]["mix_env"], "prod");
        let deps = def["resolvedDependencies"].as_array().unwrap();
        assert_eq!(deps[0]["digest"]["gitCommit"], "f".repeat(40));
        assert_eq!(deps[0]["uri"], "git+https://example.com/acme/hello.git");
        assert_eq!(deps[1]["name"], "mix.lock");
        assert_eq!(deps[1]["digest"]["sha256"], Digest::of(b"lock").hex());
        let run = &v["predicate"]["runDetails"];
        assert_eq!(run["builder"]["version"]["release-oci"], "0.1.0");
        assert_eq!(run["builder"]["builderDependencies"][0]["digest"]["sha256"], Digest::of(b"builder").hex());
        assert!(run["metadata"].get("startedOn").is_none(), "no time that varies");
    }

    #[test]
    fn an_index_statement_names_the_index_and_each_image() {
        let mut arm = sample();
        arm.platform = "linux/arm64/v8".into();
        arm.triple = "aarch64-unknown-linux-gnu".into();
        arm.builder = Some(crate::supply::facts::ImageFact { name: "b-arm64".into(), digest: None });
        let (a, b, index) = (Digest::of(b"amd64"), Digest::of(b"arm64"), Digest::of(b"index"));
        let (sa, sb) = (statement(&sample(), &a), statement(&arm, &b));
        assert_eq!(index_statement(&index, &[]), None);
        assert_eq!(index_statement(&index, &[(&a, b"{}")]), None, "not a statement");
        let bytes = index_statement(&index, &[(&a, &sa), (&b, &sb)]).unwrap();
        assert_eq!(bytes, index_statement(&index, &[(&a, &sa), (&b, &sb)]).unwrap(), "deterministic");
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["subject"][0]["digest"]["sha256"], index.hex());
        assert_eq!(v["subject"][0]["name"], "hello_web");
        assert_eq!(v["predicateType"], PREDICATE_TYPE);
        let ext = &v["predicate"]["buildDefinition"]["externalParameters"];
        assert_eq!(ext["platforms"], json!(["linux/amd64", "linux/arm64/v8"]));
        assert_eq!(ext["triples"], json!(["x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu"]));
        assert!(ext.get("platform").is_none());
        let deps = v["predicate"]["buildDefinition"]["resolvedDependencies"].as_array().unwrap();
        assert_eq!(deps[0], json!({"name": "image linux/amd64", "digest": {"sha256": a.hex()}}));
        assert_eq!(deps[1], json!({"name": "image linux/arm64/v8", "digest": {"sha256": b.hex()}}));
        // The source, lock and base once (the same for both), after the images.
        assert_eq!(deps.len(), 5, "{deps:#?}");
        let builders = v["predicate"]["runDetails"]["builder"]["builderDependencies"].as_array().unwrap();
        assert_eq!(builders.len(), 2, "{builders:#?}");
    }
}
