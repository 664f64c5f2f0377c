use super::*;

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: std::collections::HashMap<String, String> =
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    move |k| map.get(k).cloned()
}

#[test]
fn a_secret_comes_from_a_variable_or_a_file_and_never_prints() {
    let s = parse_secret("id=hex_key,env=MY_KEY,build_env=HEX_API_KEY", env_of(&[("MY_KEY", "abc123")])).unwrap();
    assert_eq!(
        (s.id.as_str(), s.value.bytes(), s.build_env.as_deref()),
        ("hex_key", &b"abc123"[..], Some("HEX_API_KEY"))
    );
    assert!(!format!("{s:?}").contains("abc123"), "{s:?}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("k");
    std::fs::write(&file, "from-file\n").unwrap();
    let s = parse_secret(&format!("id=k,src={}", file.display()), env_of(&[])).unwrap();
    assert_eq!(s.value.bytes(), b"from-file\n");
    assert_eq!(s.build_env, None);
}

#[test]
fn a_missing_or_malformed_secret_names_its_id() {
    let err = parse_secret("id=acme_key,env=ACME_KEY", env_of(&[])).unwrap_err().to_string();
    assert!(err.contains("secret acme_key") && err.contains("ACME_KEY is not set"), "{err}");
    let err = parse_secret("id=k,src=/nonexistent/key", env_of(&[])).unwrap_err().to_string();
    assert!(err.contains("secret k") && err.contains("/nonexistent/key"), "{err}");
    for spec in ["env=X", "id=k", "id=k,env=X,src=Y", "id=../x,env=X", "id=k,env=X,build_env=1A", "id=k,nope=1"] {
        let err = parse_secret(spec, env_of(&[("X", "v")])).unwrap_err();
        assert!(matches!(err, InputError::SecretSpec { .. }), "{spec}: {err}");
    }
}

#[test]
fn ssh_default_is_the_callers_agent() {
    let a = parse_ssh("default", env_of(&[("SSH_AUTH_SOCK", "/tmp/agent.1")])).unwrap();
    assert_eq!(a, SshAgent { id: "default".into(), socket: "/tmp/agent.1".into() });
    let a = parse_ssh("work=/run/a.sock", env_of(&[])).unwrap();
    assert_eq!((a.id.as_str(), a.socket.to_str()), ("work", Some("/run/a.sock")));
    let err = parse_ssh("default", env_of(&[])).unwrap_err().to_string();
    assert!(err.contains("SSH_AUTH_SOCK is not set"), "{err}");
}

#[test]
fn build_env_is_key_value() {
    assert_eq!(parse_build_env("HEX_MIRROR=http://x:1").unwrap(), ("HEX_MIRROR".into(), "http://x:1".into()));
    assert_eq!(parse_build_env("EMPTY=").unwrap(), ("EMPTY".into(), String::new()));
    for bad in ["=x", "NOVALUE", "A B=1", "1A=2"] {
        assert!(parse_build_env(bad).is_err(), "{bad}");
    }
}

fn inputs_with_secret() -> BuilderInputs {
    BuilderInputs {
        env: vec![("HEX_MIRROR".into(), "http://m".into())],
        secrets: vec![Secret {
            id: "acme".into(),
            value: SecretValue::new(b"tok-xyz".to_vec()),
            build_env: Some("ACME".into()),
        }],
        hex_repos: vec![HexRepo {
            name: "acme".into(),
            url: "https://hex.acme.example".into(),
            public_key: Some("PEM".into()),
            auth_secret: Some("acme".into()),
        }],
        ..Default::default()
    }
}

#[test]
fn no_secret_value_reaches_the_key_the_env_or_the_debug_form() {
    let inputs = inputs_with_secret();
    let env = inputs.container_env().join("\n");
    for text in [inputs.key_part(), env.clone(), format!("{inputs:?}")] {
        assert!(!text.contains("tok-xyz"), "{text}");
    }
    assert!(env.contains("HEX_MIRROR=http://m") && env.contains("RELEASE_OCI_SECRET_ENV=ACME=acme"), "{env}");
    assert!(
        env.contains(
            "RELEASE_OCI_HEX_REPOS=acme https://hex.acme.example /build/inputs/hex/acme.pem /run/secrets/acme"
        ),
        "{env}"
    );
    let files = inputs.files().unwrap();
    let secret = files.iter().find(|f| f.path == "build/inputs/secrets/acme").unwrap();
    assert_eq!((secret.content.as_slice(), secret.mode), (&b"tok-xyz"[..], 0o400));
    assert!(!format!("{files:?}").contains("tok-xyz"));
    assert_eq!(inputs.redactions(), [b"tok-xyz".to_vec()]);
}

#[test]
fn the_key_changes_with_what_shapes_the_output_only() {
    let a = inputs_with_secret();
    let mut b = a.clone();
    b.secrets[0].value = SecretValue::new(b"other".to_vec());
    b.ca_bundle = Some("/etc/ssl/other.pem".into());
    assert_eq!(a.key_part(), b.key_part(), "a secret's value or the CA bundle changed the key");
    b.env.push(("MIX_OS_DEPS_COMPILE_PARTITION_COUNT".into(), "2".into()));
    assert_ne!(a.key_part(), b.key_part());
    let mut c = a.clone();
    c.assets = AssetsMode::Skip;
    assert_ne!(a.key_part(), c.key_part());
}

#[test]
fn an_auth_secret_must_be_passed() {
    let mut inputs = inputs_with_secret();
    assert!(inputs.check().is_ok());
    inputs.secrets.clear();
    let err = inputs.check().unwrap_err().to_string();
    assert!(err.contains("acme") && err.contains("--secret id=acme"), "{err}");
}

#[test]
fn redaction_replaces_every_occurrence() {
    let values = vec![b"s3cr3t\n".to_vec(), Vec::new()];
    assert_eq!(redact("a s3cr3t b s3cr3t", &values), "a [secret] b [secret]");
    assert_eq!(redact("nothing", &values), "nothing");
}

#[test]
fn the_host_bundle_follows_ssl_cert_file() {
    assert_eq!(host_ca_bundle(env_of(&[("SSL_CERT_FILE", "/x/ca.pem")])), Some("/x/ca.pem".into()));
}
