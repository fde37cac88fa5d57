//! What Strom's tests share, without Kubernetes: the object-store emulators
//! ([`emulators`]), a Kafka-protocol broker ([`kafka`]), the four stores behind one interface ([`stores`]), and helpers that
//! find the binaries `cargo test --workspace` builds and free ports.
//!
//! The engine's tests depend on this crate, so it must never link `kube` or
//! `k8s-openapi` (`local-cluster/tests/dependency_direction.rs` checks it).

pub mod emulators;
pub mod kafka;
pub mod once;
pub mod stores;

use std::net::TcpListener;
use std::path::PathBuf;

/// A binary of this workspace that `cargo test --workspace` builds beside the test
/// executables (`target/<profile>/<name>`), e.g. `strom-engine`.
pub fn workspace_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test executables live in target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: build it with `cargo build -p <its package>` (cargo test --workspace does)",
        path.display()
    );
    path
}

/// The engine binary.
pub fn engine_binary() -> PathBuf {
    workspace_binary("strom-engine")
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The directory `scripts/install-tools.sh` installs into (`STROM_TOOLS`, else
/// `target/tools` of this workspace).
pub fn tools_dir() -> PathBuf {
    std::env::var_os("STROM_TOOLS").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/tools"),
        PathBuf::from,
    )
}
