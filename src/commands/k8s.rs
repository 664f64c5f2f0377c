//! `release-oci k8s PROJECT`: a Deployment and Services for the release (and with `--migrate` a
//! migration Job), as YAML on stdout.

use crate::cli::K8sArgs;
use crate::k8s;

/// The manifests as a multi-document YAML stream; warnings go to stderr.
pub fn run(args: K8sArgs) -> anyhow::Result<String> {
    let (spec, warnings) = args.validate()?;
    for w in warnings {
        eprintln!("warning: {w}");
    }
    Ok(k8s::yaml::to_yaml(&k8s::manifests(&spec))?)
}
