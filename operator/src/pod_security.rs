//! How every engine pod runs, whoever wrote the FlinkJob: as the image's non-root user, with
//! no privilege escalation, no capabilities, the runtime's default seccomp profile, a
//! read-only root filesystem (scratch space on an `emptyDir` at `/tmp`) and no Kubernetes
//! API token (engines never call the API; cloud identities such as IRSA and Azure Workload
//! Identity project their own token, and GKE's comes from the metadata server). This meets
//! the Pod Security Standards' `restricted` profile, which the control plane enforces on
//! tenant namespaces; the pod template cannot loosen it (its fields do not reach these).

use k8s_openapi::api::core::v1::{
    Capabilities, EmptyDirVolumeSource, PodSecurityContext, SeccompProfile, SecurityContext,
    Volume, VolumeMount,
};

/// The user and group engines run as (the engine image's `USER`).
pub const ENGINE_UID: i64 = 65532;

/// The volume giving engines scratch space under a read-only root filesystem.
pub const TMP_VOLUME: &str = "tmp";

/// The pod-level security context of engine pods.
pub fn pod() -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(ENGINE_UID),
        run_as_group: Some(ENGINE_UID),
        fs_group: Some(ENGINE_UID),
        seccomp_profile: Some(runtime_default()),
        ..PodSecurityContext::default()
    }
}

/// The engine container's security context.
pub fn container() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        privileged: Some(false),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            ..Capabilities::default()
        }),
        seccomp_profile: Some(runtime_default()),
        ..SecurityContext::default()
    }
}

/// Scratch space at `/tmp` (the root filesystem is read-only).
pub fn tmp() -> (Volume, VolumeMount) {
    (
        Volume {
            name: TMP_VOLUME.into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Volume::default()
        },
        VolumeMount {
            name: TMP_VOLUME.into(),
            mount_path: "/tmp".into(),
            ..VolumeMount::default()
        },
    )
}

fn runtime_default() -> SeccompProfile {
    SeccompProfile {
        type_: "RuntimeDefault".into(),
        ..SeccompProfile::default()
    }
}
