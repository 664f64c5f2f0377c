use super::*;
use crate::toolchain::{Requirement, Want};

const TRIXIE: &str = "1.18.3-erlang-27.3.4.1-debian-trixie-20250428-slim";
const TRIXIE_OLDER: &str = "1.18.3-erlang-27.3.4.1-debian-trixie-20250317-slim";
const TRIXIE_OTP26: &str = "1.18.3-erlang-26.2.5.11-debian-trixie-20250428-slim";
const BOOKWORM: &str = "1.17.3-erlang-26.2.5-debian-bookworm-20240612-slim";

fn tags(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn pin(want: Want) -> Pin {
    Pin { want, file: ".tool-versions" }
}

fn v(s: &str) -> Version {
    Version::parse(s).unwrap()
}

#[test]
fn tags_of_the_pattern_are_read() {
    let t = CatalogueTag::parse(TRIXIE).unwrap();
    assert_eq!((t.elixir, t.otp.as_slice()), (Version(1, 18, 3), &[27, 3, 4, 1][..]));
    assert_eq!((t.suite.as_str(), t.date.as_str()), ("trixie", "20250428"));
    assert_eq!(t.otp_version(), Version(27, 3, 4));
    assert_eq!(t.to_string(), format!("{TRIXIE} (Elixir 1.18.3, Erlang/OTP 27.3.4.1)"));
    for other in [
        "latest",
        "1.18.3-erlang-27.3.4.1-debian-trixie-20250428",
        "1.18.3-erlang-27.3.4.1-alpine-3.21.3",
        "1.18.3-erlang-27.3.4.1-ubuntu-noble-20250404",
        "1.18.0-rc.0-erlang-27.2-debian-bookworm-20241202-slim",
        "1.18-erlang-27.3.4.1-debian-trixie-20250428-slim",
        "1.18.3-erlang-27..4-debian-trixie-20250428-slim",
        "1.18.3-erlang-27.3.4.1-debian-trixie-2025-slim",
        "1.18.3-erlang-27.3.4.1-debian--20250428-slim",
    ] {
        assert_eq!(CatalogueTag::parse(other), None, "{other}");
    }
}

#[test]
fn the_newest_tag_that_satisfies_every_pin() {
    let all = tags(&["junk", BOOKWORM, TRIXIE_OLDER, TRIXIE_OTP26, TRIXIE]);
    let choose = |pins: &[Pin]| choose_tag("r/hexpm/elixir", "app", pins, &all, Libc::Gnu, "x86_64-unknown-linux-gnu");
    assert_eq!(choose(&[pin(Want::ElixirPin(v("1.18.1")))]).unwrap().tag, TRIXIE, "newest date, newest OTP");
    assert_eq!(choose(&[pin(Want::OtpPin(v("26.2")))]).unwrap().tag, TRIXIE_OTP26, "Elixir before OTP");
    let mix = Pin { want: Want::Elixir(Requirement::parse("~> 1.15 and < 1.18.0").unwrap()), file: "mix.exs" };
    assert_eq!(choose(&[mix]).unwrap().tag, BOOKWORM);
    assert_eq!(choose(&[]).unwrap().tag, TRIXIE, "no pin: the newest");
}

#[test]
fn no_matching_tag_names_the_catalogue_and_its_versions() {
    let all = tags(&["latest", BOOKWORM, TRIXIE]);
    let pins = [pin(Want::ElixirPin(v("1.99.0")))];
    let err = choose_tag("127.0.0.1:5000/hexpm/elixir", "/src/app", &pins, &all, Libc::Gnu, "x86_64-unknown-linux-gnu")
        .unwrap_err()
        .to_string();
    assert!(err.contains("127.0.0.1:5000/hexpm/elixir") && err.contains("/src/app"), "{err}");
    assert!(err.contains("Elixir 1.99 (.tool-versions: elixir 1.99.0)"), "{err}");
    assert!(err.contains(&format!("{TRIXIE} (Elixir 1.18.3, Erlang/OTP 27.3.4.1), {BOOKWORM}")), "{err}");
    assert!(err.contains("(1 other tags not of that form)"), "{err}");
    let err = choose_tag("c", "p", &pins, &tags(&["latest"]), Libc::Gnu, "t").unwrap_err().to_string();
    assert!(err.contains("no tag of the form ELIXIR-erlang-OTP-debian-SUITE-DATE-slim"), "{err}");
}

#[test]
fn a_musl_target_is_refused() {
    let err =
        choose_tag("c/hexpm/elixir", "p", &[], &tags(&[TRIXIE]), Libc::Musl, "x86_64-unknown-linux-musl").unwrap_err();
    assert!(matches!(err, CatalogueError::Musl { .. }));
    let err = err.to_string();
    assert!(err.contains("c/hexpm/elixir") && err.contains("x86_64-unknown-linux-musl is a musl target"), "{err}");
}
