use super::*;
use std::collections::HashMap;

fn ep(s: &str) -> Endpoint {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn bad(s: &str) -> String {
    s.parse::<Endpoint>().expect_err(s).to_string()
}

#[test]
fn unix_tcp_and_ssh_endpoints_parse_and_print_back() {
    assert_eq!(ep("unix:///var/run/docker.sock"), Endpoint::Unix { path: "/var/run/docker.sock".into() });
    assert_eq!(ep("tcp://10.0.0.5:2376"), Endpoint::Tcp { host: "10.0.0.5".into(), port: Some(2376) });
    assert_eq!(ep("tcp://builder.example.com"), Endpoint::Tcp { host: "builder.example.com".into(), port: None });
    assert_eq!(ep("tcp://[::1]:2376/"), Endpoint::Tcp { host: "::1".into(), port: Some(2376) });
    assert_eq!(
        ep("ssh://build@arm64-1.example.com:2222"),
        Endpoint::Ssh { user: Some("build".into()), host: "arm64-1.example.com".into(), port: Some(2222) }
    );
    assert_eq!(ep("ssh://arm64-1"), Endpoint::Ssh { user: None, host: "arm64-1".into(), port: None });
    assert_eq!(
        ep("ssh://root@[fd00::7]"),
        Endpoint::Ssh { user: Some("root".into()), host: "fd00::7".into(), port: None }
    );
    for s in [
        "unix:///run/user/1000/podman/podman.sock",
        "tcp://127.0.0.1:2376",
        "tcp://[::1]:2375",
        "ssh://root@127.0.0.1:2222",
        "ssh://arm64-1",
    ] {
        assert_eq!(ep(s).to_string(), s);
    }
    assert!(ep("unix:///tmp/podman.sock").is_local());
    assert!(!ep("tcp://127.0.0.1:2376").is_local() && !ep("ssh://root@127.0.0.1").is_local());
}

#[test]
fn bad_endpoints_say_what_is_wrong_and_how_to_write_one() {
    let how = "write unix:///PATH, tcp://HOST[:PORT] or ssh://[USER@]HOST[:PORT]";
    for (value, reason) in [
        ("arm64-host", "it has no scheme"),
        ("://x", "it has no scheme"),
        ("http://x:2375", "the scheme http:// is not supported"),
        ("npipe:////./pipe/docker_engine", "the scheme npipe:// is not supported"),
        ("unix://", "it names no socket"),
        ("unix://run/docker.sock", "the socket's path must be absolute"),
        ("tcp://", "it names no host"),
        ("tcp://:2376", "it names no host"),
        ("tcp://host:0", "\"0\" is not a port (1 to 65535)"),
        ("tcp://host:http", "\"http\" is not a port"),
        ("tcp://host:99999", "\"99999\" is not a port"),
        ("tcp://host:2376/v1.41", "a path after the host is not supported"),
        ("tcp://::1:2376", "write an IPv6 address in brackets"),
        ("tcp://[::1", "an IPv6 address needs its closing ]"),
        ("ssh://user:secret@host", "a password in the URL is not supported"),
        ("ssh://@host", "\"\" is not a user name"),
        ("ssh://-oProxyCommand=x@host", "is not a user name"),
        ("ssh://-oProxyCommand=x", "is not a host name or address"),
        ("ssh://user@host/var/run/docker.sock", "a path after the host is not supported"),
        ("ssh://host name", "is not a host name or address"),
    ] {
        let e = bad(value);
        assert!(e.starts_with(&format!("{value:?} is not a Docker API endpoint: ")), "{e}");
        assert!(e.contains(reason) && e.ends_with(how), "{value}: {e}");
    }
}

#[test]
fn docker_host_is_the_default_engine_and_empty_is_the_local_socket() {
    assert_eq!(Endpoint::from_docker_host(None).unwrap(), ep("unix:///var/run/docker.sock"));
    assert_eq!(Endpoint::from_docker_host(Some("  ")).unwrap(), ep("unix:///var/run/docker.sock"));
    assert_eq!(Endpoint::from_docker_host(Some("ssh://me@b")).unwrap(), ep("ssh://me@b"));
    let e = Endpoint::from_docker_host(Some("b:2376")).unwrap_err().to_string();
    assert!(e.contains("\"b:2376\" is not a Docker API endpoint: DOCKER_HOST: it has no scheme"), "{e}");
}

#[test]
fn tls_follows_docker_tls_verify_and_the_certificate_directory() {
    let env = |pairs: &[(&str, &str)]| {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k: &str| map.get(k).cloned()
    };
    assert_eq!(TcpSecurity::from_env(env(&[("HOME", "/h")])), Ok(TcpSecurity::Plain));
    assert_eq!(TcpSecurity::from_env(env(&[("DOCKER_TLS_VERIFY", "")])), Ok(TcpSecurity::Plain));
    let tls = |d: &str| TcpSecurity::Tls {
        ca: PathBuf::from(d).join("ca.pem"),
        cert: PathBuf::from(d).join("cert.pem"),
        key: PathBuf::from(d).join("key.pem"),
    };
    assert_eq!(TcpSecurity::from_env(env(&[("DOCKER_TLS_VERIFY", "1"), ("HOME", "/h")])), Ok(tls("/h/.docker")));
    let certs = [("DOCKER_TLS_VERIFY", "1"), ("DOCKER_CERT_PATH", "/certs"), ("HOME", "/h")];
    assert_eq!(TcpSecurity::from_env(env(&certs)), Ok(tls("/certs")));
    assert_eq!(TcpSecurity::from_env(env(&certs)).unwrap().default_port(), 2376);
    assert_eq!(TcpSecurity::Plain.default_port(), 2375);
    let e = TcpSecurity::from_env(env(&[("DOCKER_TLS", "1")])).unwrap_err();
    assert!(e.contains("without verifying") && e.contains("DOCKER_TLS_VERIFY=1"), "{e}");
}

#[test]
fn builder_hosts_are_per_platform_with_a_default() {
    let arm = ep("ssh://build@arm64-1:2222");
    for key in ["aarch64", "arm64", "linux/arm64", "linux/arm64/v8", "aarch64-unknown-linux-musl"] {
        let (arch, e) = BuilderHosts::parse_spec(&format!("{key}=ssh://build@arm64-1:2222")).unwrap();
        assert_eq!((arch, e), (Some(Arch::Aarch64), arm.clone()), "{key}");
    }
    for key in ["x86_64", "amd64", "linux/amd64", "x86_64-unknown-linux-gnu"] {
        assert_eq!(BuilderHosts::parse_spec(&format!("{key}=unix:///x.sock")).unwrap().0, Some(Arch::X86_64));
    }
    assert_eq!(BuilderHosts::parse_spec("tcp://b:2376").unwrap(), (None, ep("tcp://b:2376")));
    assert_eq!(BuilderHosts::parse_spec("*=tcp://b:2376").unwrap(), (None, ep("tcp://b:2376")));

    let hosts = BuilderHosts::from_specs(&["aarch64=ssh://build@arm64-1:2222", "tcp://b:2376"]).unwrap();
    let (x86, arm64): (Triple, Triple) =
        ("x86_64-unknown-linux-gnu".parse().unwrap(), "aarch64-unknown-linux-gnu".parse().unwrap());
    assert_eq!(hosts.for_triple(&arm64), Some(&arm));
    assert_eq!(hosts.for_triple(&x86), Some(&ep("tcp://b:2376")));
    let only_arm = BuilderHosts::from_specs(&["linux/arm64=ssh://build@arm64-1:2222"]).unwrap();
    assert_eq!(only_arm.for_triple(&x86), None);
    assert!(BuilderHosts::default().is_empty() && !only_arm.is_empty());
}

#[test]
fn the_flags_win_over_the_file_platform_by_platform() {
    let file = BuilderHosts::from_table([("aarch64", "ssh://a"), ("x86_64", "ssh://x"), ("*", "ssh://d")]).unwrap();
    let flags = BuilderHosts::from_specs(&["arm64=ssh://flag"]).unwrap();
    let merged = flags.over(file.clone());
    let t = |s: &str| s.parse::<Triple>().unwrap();
    assert_eq!(merged.for_triple(&t("aarch64-unknown-linux-gnu")), Some(&ep("ssh://flag")));
    assert_eq!(merged.for_triple(&t("x86_64-unknown-linux-gnu")), Some(&ep("ssh://x")));
    assert_eq!(merged.default, Some(ep("ssh://d")));
    assert_eq!(BuilderHosts::default().over(file.clone()), file);
}

#[test]
fn bad_builder_hosts_name_the_platform_or_the_url() {
    let e = BuilderHosts::parse_spec("riscv64=ssh://b").unwrap_err().to_string();
    assert!(e.starts_with("unknown platform \"riscv64\": name x86_64 (or amd64, linux/amd64), aarch64"), "{e}");
    let e = BuilderHosts::parse_spec("aarch64=arm64-host").unwrap_err().to_string();
    assert!(e.contains("\"arm64-host\" is not a Docker API endpoint: it has no scheme"), "{e}");
    let e = BuilderHosts::parse_spec("arm64-host").unwrap_err().to_string();
    assert_eq!(e, "\"arm64-host\" is not [PLATFORM=]URL (e.g. aarch64=ssh://build@arm64-host)");
    let e = BuilderHosts::parse_spec("=ssh://b").unwrap_err().to_string();
    assert!(e.contains("is not [PLATFORM=]URL"), "{e}");
    let e = BuilderHosts::parse_spec("aarch64=ssh://b:x").unwrap_err().to_string();
    assert!(e.contains("\"x\" is not a port"), "{e}");
    let e = BuilderHosts::from_specs(&["aarch64=ssh://a", "linux/arm64=ssh://b"]).unwrap_err().to_string();
    assert_eq!(e, "linux/arm64 is given two builder hosts, ssh://a and ssh://b: one each");
    let e = BuilderHosts::from_specs(&["ssh://a", "*=ssh://b"]).unwrap_err().to_string();
    assert!(e.starts_with("every platform (*) is given two builder hosts"), "{e}");
}

#[test]
fn the_load_command_names_the_engine() {
    let c = ep("ssh://root@127.0.0.1:2222").load_command("release-oci/builder:debian-bookworm");
    assert_eq!(
        c,
        "`docker save release-oci/builder:debian-bookworm | DOCKER_HOST=ssh://root@127.0.0.1:2222 docker load`"
    );
    assert!(ep("tcp://b:2376").load_command("i").contains("DOCKER_TLS_VERIFY"));
}
