use super::*;

fn v(s: &str) -> Version {
    Version::parse(s).unwrap()
}

fn builder(image: &str, elixir: &str, otp: &str) -> Builder {
    Builder { image: image.into(), elixir: Version::parse(elixir), otp: Version::parse(otp) }
}

fn builders() -> Vec<Builder> {
    vec![builder("bookworm", "1.14.0", "25.2.3"), builder("trixie", "1.18.3", "27.3.4")]
}

#[test]
fn versions() {
    assert_eq!(v("1.17.3-otp-27"), Version(1, 17, 3));
    assert_eq!(v("27"), Version(27, 0, 0));
    assert_eq!(v("v1.14"), Version(1, 14, 0));
    assert!(Version::parse("ref:main").is_none());
    assert!(v("1.14.1") > v("1.14.0"));
}

#[test]
fn requirements_follow_mix() {
    let r = |s: &str| Requirement::parse(s).unwrap();
    assert!(r("~> 1.14").matches(v("1.18.3")));
    assert!(!r("~> 1.14").matches(v("2.0.0")));
    assert!(!r("~> 1.15").matches(v("1.14.0")));
    assert!(r("~> 1.14.1").matches(v("1.14.5")));
    assert!(!r("~> 1.14.1").matches(v("1.15.0")));
    assert!(!r("~> 1.14.1").matches(v("1.14.0")));
    assert!(r(">= 1.12.0 and < 1.16.0").matches(v("1.14.0")));
    assert!(!r(">= 1.12.0 and < 1.14.0").matches(v("1.14.0")));
    assert!(r("~> 1.11 or ~> 2.0").matches(v("2.1.0")));
    assert!(r("1.14.0").matches(v("1.14.0")));
}

#[test]
fn reads_the_projects_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".tool-versions"), "# pinned\nelixir 1.18.3-otp-27\nerlang 27.3\nnodejs 20\n")
        .unwrap();
    std::fs::write(
        dir.path().join("mix.exs"),
        "def project do\n  [app: :x, version: \"0.1.0\", elixir: \"~> 1.15\", deps: [{:dep, \"~> 1.0\"}]]\nend\n",
    )
    .unwrap();
    let pins = project_pins(dir.path());
    assert_eq!(pins.len(), 3, "{pins:?}");
    assert_eq!(pins[0], Pin { want: Want::ElixirPin(v("1.18.3")), file: ".tool-versions" });
    assert_eq!(pins[1], Pin { want: Want::OtpPin(v("27.3")), file: ".tool-versions" });
    assert_eq!(pins[2].to_string(), "Elixir ~> 1.15 (mix.exs)");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rebar.config"), "{minimum_otp_vsn, \"26\"}.\n{relx, []}.\n").unwrap();
    assert_eq!(project_pins(dir.path()), vec![Pin { want: Want::MinOtp(v("26")), file: "rebar.config" }]);
    assert!(project_pins(tempfile::tempdir().unwrap().path()).is_empty());
}

#[test]
fn the_newest_builder_that_satisfies_every_pin() {
    let b = builders();
    let pin = |want| Pin { want, file: ".tool-versions" };
    assert_eq!(choose("app", &[], &b).unwrap().image, "trixie", "no pin: the newest");
    assert_eq!(choose("app", &[pin(Want::ElixirPin(v("1.14.0")))], &b).unwrap().image, "bookworm");
    assert_eq!(choose("app", &[pin(Want::ElixirPin(v("1.18.1")))], &b).unwrap().image, "trixie");
    let mix = Pin { want: Want::Elixir(Requirement::parse("~> 1.14").unwrap()), file: "mix.exs" };
    assert_eq!(choose("app", std::slice::from_ref(&mix), &b).unwrap().image, "trixie");
    let otp25 = pin(Want::OtpPin(v("25.3")));
    assert_eq!(choose("app", &[mix, otp25], &b).unwrap().image, "bookworm");
}

#[test]
fn none_satisfies_names_the_requirement_its_file_and_the_builders() {
    let b = builders();
    let mix = Pin { want: Want::Elixir(Requirement::parse("~> 1.19").unwrap()), file: "mix.exs" };
    let err = choose("/src/app", &[mix], &b).unwrap_err().to_string();
    assert!(err.contains("/src/app") && err.contains("Elixir ~> 1.19 (mix.exs)"), "{err}");
    assert!(err.contains("bookworm (Elixir 1.14.0, Erlang/OTP 25.2.3)"), "{err}");
    assert!(err.contains("trixie (Elixir 1.18.3, Erlang/OTP 27.3.4)"), "{err}");
    let unlabelled = vec![Builder { image: "custom".into(), elixir: None, otp: None }];
    let pin = Pin { want: Want::MinOtp(v("26")), file: "rebar.config" };
    let err = choose("p", &[pin], &unlabelled).unwrap_err().to_string();
    assert!(err.contains("custom (Elixir unknown, Erlang/OTP unknown)"), "{err}");
    assert_eq!(choose("p", &[], &unlabelled).unwrap().image, "custom");
}
