use super::*;

#[test]
fn users() {
    assert_eq!(parse_user("root").unwrap(), UserSpec::Ids { uid: 0, gid: 0 });
    assert_eq!(parse_user("1000").unwrap(), UserSpec::Ids { uid: 1000, gid: 1000 });
    assert_eq!(parse_user("1000:2000").unwrap(), UserSpec::Ids { uid: 1000, gid: 2000 });
    assert_eq!(parse_user("nobody").unwrap(), UserSpec::Name("nobody".into()));
    assert!(parse_user("1000:x").is_err());
    let passwd = "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
    let u = UserSpec::Name("nobody".into()).resolve(passwd).unwrap();
    assert_eq!((u.uid, u.gid, u.home.as_str()), (65534, 65534, "/nonexistent"));
    let u = UserSpec::Ids { uid: 10001, gid: 10001 }.resolve(passwd).unwrap();
    assert_eq!(u.name, "app");
    assert!(UserSpec::Name("ghost".into()).resolve(passwd).is_err());
}

#[test]
fn ports_and_pairs() {
    assert_eq!(parse_port("4000").unwrap(), "4000/tcp");
    assert_eq!(parse_port("53/udp").unwrap(), "53/udp");
    assert!(parse_port("http").is_err());
    assert!(parse_port("0").is_err());
    assert_eq!(key_value("env", "A=b=c").unwrap(), ("A".into(), "b=c".into()));
    assert!(key_value("env", "=x").is_err());
}

#[test]
fn timeout_flag() {
    use clap::Parser as _;
    let parse = |t: &[&str]| crate::cli::Cli::try_parse_from([&["x", "build", "--no-config"], t].concat());
    let get = |t: &[&str]| match parse(t).unwrap().command {
        crate::cli::Command::Build(args) => args.validate().map(|s| s.timeout),
        _ => unreachable!(),
    };
    assert_eq!(get(&[]).unwrap(), std::time::Duration::from_secs(3600));
    assert_eq!(get(&["--timeout", "30m"]).unwrap(), std::time::Duration::from_secs(1800));
    let e = format!("{:#}", get(&["--timeout", "30"]).unwrap_err());
    assert!(e.starts_with("--timeout \"30\": ") && e.contains("no unit"), "{e}");
}

#[test]
fn builder_limit_flags() {
    use clap::Parser as _;
    let parse = |t: &[&str]| crate::cli::Cli::try_parse_from([&["x", "build", "--no-config"], t].concat());
    let get = |t: &[&str]| match parse(t).unwrap().command {
        crate::cli::Command::Build(args) => args.validate().map(|s| s.limits),
        _ => unreachable!(),
    };
    assert_eq!(get(&[]).unwrap(), crate::builder::Limits { memory: 4 << 30, pids: 4096 });
    assert_eq!(
        get(&["--memory", "2g", "--pids-limit", "64"]).unwrap(),
        crate::builder::Limits { memory: 2 << 30, pids: 64 }
    );
    let e = format!("{:#}", get(&["--memory", "2x"]).unwrap_err());
    assert!(e.starts_with("--memory \"2x\": \"2x\" is not a size"), "{e}");
    let e = format!("{:#}", get(&["--pids-limit", "0"]).unwrap_err());
    assert!(e.starts_with("--pids-limit 0: ") && e.contains("at least 1"), "{e}");
}
