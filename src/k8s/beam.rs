//! What the BEAM needs from its pod: a scheduler count that matches the CPU limit, a shutdown
//! bound shorter than the grace period, a preStop delay so endpoints drain before SIGTERM, and
//! probes that wait for the release to boot.
//!
//! VM flags go in `ERL_FLAGS`: `erlexec` itself reads it for every `erl` it starts, so it works
//! with the `bin/NAME` script of every Elixir version (and with rebar3/relx releases), and it is
//! placed after the release's `vm.args`, so the manifest's values win over the defaults baked
//! into the image.

use super::Spec;
use k8s_openapi::api::core::v1::{
    EnvVar, ExecAction, HTTPGetAction, Lifecycle, LifecycleHandler, Probe, TCPSocketAction,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// The environment variable the VM flags go in.
pub const ERL_FLAGS: &str = "ERL_FLAGS";

/// The name of the container port the application listens on (probes and Services use it).
pub const HTTP_PORT_NAME: &str = "http";

/// The VM flags for the spec: schedulers from the CPU limit, the shutdown bound, and the
/// epmd-less distribution flags when clustering asks for a fixed port.
pub fn erl_flags(spec: &Spec) -> Vec<String> {
    let mut flags = Vec::new();
    if let Some(cpu) = &spec.cpu {
        let n = cpu.schedulers();
        // Normal and dirty CPU schedulers, all online: one per core of the limit, not one per
        // core of the node (the VM would otherwise start as many as the node has).
        flags.push(format!("+S {n}:{n}"));
        flags.push(format!("+SDcpu {n}:{n}"));
    }
    // init:stop() (what SIGTERM triggers) halts the VM when applications take longer than this.
    flags.push(format!("-kernel shutdown_time {}", spec.termination.shutdown_time_ms()));
    if let Some(port) = spec.cluster.as_ref().and_then(|c| c.dist_port) {
        flags.extend(super::clustering::epmdless_flags(port));
    }
    flags
}

/// The `ERL_FLAGS` variable: the generated flags, then the user's own `ERL_FLAGS` (from
/// `--env`), which come last and so win.
pub fn erl_flags_env(spec: &Spec) -> EnvVar {
    let mut value = erl_flags(spec).join(" ");
    if let Some((_, user)) = spec.env.iter().find(|(k, _)| k == ERL_FLAGS) {
        value.push(' ');
        value.push_str(user);
    }
    EnvVar { name: ERL_FLAGS.to_string(), value: Some(value), ..Default::default() }
}

/// The preStop hook: sleep while the endpoints controller and the proxies stop sending traffic,
/// so no request reaches a node that is already stopping. It runs `/bin/sleep` in the container
/// (the Debian and Alpine runtime bases have it); the grace period's clock includes it.
pub fn lifecycle(spec: &Spec) -> Option<Lifecycle> {
    if spec.termination.pre_stop_delay == 0 {
        return None;
    }
    let exec = ExecAction { command: Some(vec!["/bin/sleep".into(), spec.termination.pre_stop_delay.to_string()]) };
    Some(Lifecycle {
        pre_stop: Some(LifecycleHandler { exec: Some(exec), ..Default::default() }),
        ..Default::default()
    })
}

/// The probe handler: `GET --health` on the HTTP port, or a TCP connect to it.
fn handler(spec: &Spec) -> Probe {
    let port = IntOrString::String(HTTP_PORT_NAME.to_string());
    match &spec.health {
        Some(path) => Probe {
            http_get: Some(HTTPGetAction { path: Some(path.clone()), port, ..Default::default() }),
            ..Default::default()
        },
        None => Probe { tcp_socket: Some(TCPSocketAction { port, ..Default::default() }), ..Default::default() },
    }
}

/// Startup, readiness and liveness probes. The startup probe gives the release up to two minutes
/// to boot (loading every module in embedded mode takes a while on a small CPU limit) before the
/// liveness probe may restart it.
pub fn probes(spec: &Spec) -> (Probe, Probe, Probe) {
    let startup =
        Probe { period_seconds: Some(2), failure_threshold: Some(60), timeout_seconds: Some(2), ..handler(spec) };
    let readiness =
        Probe { period_seconds: Some(5), failure_threshold: Some(2), timeout_seconds: Some(2), ..handler(spec) };
    let liveness =
        Probe { period_seconds: Some(10), failure_threshold: Some(3), timeout_seconds: Some(5), ..handler(spec) };
    (startup, readiness, liveness)
}
