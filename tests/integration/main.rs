//! The one integration-test binary: drives the real `release-oci` binary against the real Docker
//! engine, builder and runtime images (scripts/setup.sh makes them), skopeo and umoci.
//! Tests that need Docker fail, loudly, when no engine answers: they never skip.

mod util;

mod build_limits;
mod build_run;
mod builder_catalogue;
mod builder_sandbox;
mod cache;
mod config_file;
mod cookie;
mod cross_assemble;
mod determinism;
mod errors;
mod from_release;
mod hex_kit;
mod host_builder;
mod hot_upgrade;
mod interrupt;
mod k8s;
mod k8s_pod;
mod k8s_resolve;
mod layout_concurrency;
mod leftovers;
mod minimal_base;
mod minimal_base_cache;
mod multi_platform;
mod musl;
mod outputs;
mod path_deps;
mod phoenix;
mod phoenix_postgres;
mod postgres;
mod private_deps;
mod projects_util;
mod quiet_release;
mod rebar3;
mod registry_auth;
mod registry_base;
mod registry_build_cache;
mod registry_build_cache_rebar3;
mod registry_cache;
mod registry_faults;
mod registry_proxy;
mod registry_push;
mod registry_token;
mod registry_util;
mod remote_builders;
mod result_cache;
mod supply_chain;
mod supply_contents;
mod supply_multi;
mod toolchain;
mod umbrella;
mod warm_builder;
mod warm_mix_server;
