//! The one integration-test binary: drives the real `release-oci` binary against the real Docker
//! engine, builder and runtime images (scripts/setup.sh makes them), skopeo and umoci.
//! Tests that need Docker fail, loudly, when no engine answers: they never skip.

mod util;

mod build_run;
mod cookie;
mod determinism;
mod errors;
mod host_builder;
mod interrupt;
mod outputs;
mod path_deps;
