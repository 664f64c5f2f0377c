//! The image config of the minimal base: platform, one layer, the environment the files in it
//! expect. `image::assemble` puts release-oci's settings on top, as for any base.

use super::{BASE_NAME, MinimalError};
use crate::digest::DiffId;
use crate::triple::Platform;
use oci_spec::image::RootFsBuilder;
use oci_spec::image::{Arch, ConfigBuilder, HistoryBuilder, ImageConfiguration, ImageConfigurationBuilder, Os};

/// busybox's applets are in /usr/bin (and /bin, a link on merged-/usr builders); tini is in
/// /usr/local/bin.
pub const PATH: &str = "/usr/local/bin:/usr/bin:/bin";
/// For programs that use OpenSSL's default verify paths (the base has no /usr/lib/ssl).
pub const SSL_CERT_FILE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The config of a base made of the one layer with `diff_id`.
pub fn base_config(platform: &Platform, diff_id: &DiffId, created: &str) -> Result<ImageConfiguration, MinimalError> {
    let spec = |what: &'static str| move |source| MinimalError::Spec { what, source };
    let exec = ConfigBuilder::default()
        .env(vec![format!("PATH={PATH}"), format!("SSL_CERT_FILE={SSL_CERT_FILE}")])
        .build()
        .map_err(spec("config"))?;
    let rootfs = RootFsBuilder::default().diff_ids(vec![diff_id.to_string()]).build().map_err(spec("rootfs"))?;
    let history = HistoryBuilder::default()
        .created(created.to_string())
        .created_by(format!("release-oci: {BASE_NAME} base"))
        .build()
        .map_err(spec("history"))?;
    let mut config = ImageConfigurationBuilder::default()
        .architecture(Arch::from(platform.architecture))
        .os(Os::from(platform.os))
        .created(created.to_string())
        .config(exec)
        .rootfs(rootfs)
        .history(vec![history])
        .build()
        .map_err(spec("config"))?;
    config.set_variant(platform.variant.map(String::from));
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_has_the_platform_the_layer_and_the_environment() {
        let p = Platform { os: "linux", architecture: "arm64", variant: Some("v8") };
        let diff_id = DiffId::of(b"tar");
        let c = base_config(&p, &diff_id, "1970-01-01T00:00:00Z").unwrap();
        assert_eq!(c.architecture().to_string(), "arm64");
        assert_eq!(c.os().to_string(), "linux");
        assert_eq!(c.variant().as_deref(), Some("v8"));
        assert_eq!(c.rootfs().diff_ids(), &vec![diff_id.to_string()]);
        let env = c.config().as_ref().and_then(|e| e.env().clone()).unwrap();
        assert!(env.contains(&format!("PATH={PATH}")), "{env:?}");
        assert_eq!(c.history().as_ref().map(Vec::len), Some(1));
    }
}
