//! release-oci: turn an Elixir or Erlang project into a production OCI image.
//!
//! Stages, each a module with one job: [`cli`] (flags → validated settings), [`project`] (what to
//! build), [`builder`] (assembles the release in a container or on the host), [`release`] (the
//! release directory model), [`plan`] (release → layer specs), [`layer`] (deterministic tar + gzip +
//! digests), [`image`] (OCI config/manifest), [`base`] (base image sources), [`sink`] (OCI layout,
//! archive, engine), all over a content-addressed [`store`].

pub mod base;
pub mod builder;
pub mod cancel;
pub mod cli;
pub mod commands;
pub mod config;
pub mod digest;
pub mod engine;
pub mod exe_identity;
pub mod image;
pub mod k8s;
pub mod layer;
pub mod minimal;
pub mod output;
pub mod plan;
pub mod prebuilt;
pub mod project;
pub mod registry;
pub mod registry_cache;
pub mod release;
pub mod result_cache;
pub mod sink;
pub mod store;
pub mod supply;
pub mod time;
pub mod toolchain;
pub mod triple;
pub mod ui;
pub mod upgrade;

/// The chunk size for streaming a file to the Docker engine (sources, `docker load` archives):
/// `ReaderStream`'s default, 4 KiB, costs a blocking-pool round trip per 4 KiB; a 40 MB upload
/// took a second with it.
pub const UPLOAD_CHUNK: usize = 1 << 20;
