//! One file per subcommand; each takes validated settings and does the work. `anyhow` lives here
//! and in `cli`, the edge; the stages below return their own error types.

pub mod build;
pub mod builder;
pub mod cache;
pub mod inspect;
pub mod k8s;
pub mod push;
pub mod resolve;
pub mod upgrade;
pub mod verify;
