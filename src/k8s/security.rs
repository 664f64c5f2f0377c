//! The "restricted" Pod Security Standard, met by the image as release-oci builds it: a numeric
//! non-root user, a read-only root filesystem with an `emptyDir` at `/tmp` (the image's
//! `RELEASE_TMP`), no privilege escalation, every capability dropped, the runtime's default
//! seccomp profile.

use super::Spec;
use k8s_openapi::api::core::v1::{
    Capabilities, EmptyDirVolumeSource, PodSecurityContext, SeccompProfile, SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// Where the release writes (the image sets `RELEASE_TMP=/tmp`).
pub const TMP_PATH: &str = "/tmp";
pub const TMP_VOLUME: &str = "tmp";

fn seccomp() -> SeccompProfile {
    SeccompProfile { type_: "RuntimeDefault".to_string(), ..Default::default() }
}

/// The pod's security context: non-root with the image's ids, default seccomp.
pub fn pod_security_context(spec: &Spec) -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(spec.uid),
        run_as_group: Some(spec.gid),
        seccomp_profile: Some(seccomp()),
        ..Default::default()
    }
}

/// The container's security context (repeats the ids so the container alone passes too).
pub fn container_security_context(spec: &Spec) -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities { drop: Some(vec!["ALL".to_string()]), ..Default::default() }),
        privileged: Some(false),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        run_as_user: Some(spec.uid),
        run_as_group: Some(spec.gid),
        seccomp_profile: Some(seccomp()),
        ..Default::default()
    }
}

/// The writable `/tmp`: an `emptyDir` (optionally size-limited).
pub fn tmp_volume(spec: &Spec) -> Volume {
    Volume {
        name: TMP_VOLUME.to_string(),
        empty_dir: Some(EmptyDirVolumeSource {
            size_limit: spec.tmp_size.as_ref().map(|m| Quantity(m.as_str().to_string())),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// `--hot-upgrades`: the writable volume the image's release root lives on while it runs (an
/// `emptyDir`: it lasts as long as the pod, so a restarted container keeps an upgrade made
/// permanent; a new pod starts from its image). See docs/hot-upgrades.md.
pub fn hot_upgrades_volume() -> (Volume, VolumeMount) {
    let name = "release-root".to_string();
    let volume = Volume { name: name.clone(), empty_dir: Some(EmptyDirVolumeSource::default()), ..Default::default() };
    let mount = VolumeMount { name, mount_path: format!("/{}", crate::plan::hot::HOT_DIR), ..Default::default() };
    (volume, mount)
}

pub fn tmp_mount() -> VolumeMount {
    VolumeMount { name: TMP_VOLUME.to_string(), mount_path: TMP_PATH.to_string(), ..Default::default() }
}
