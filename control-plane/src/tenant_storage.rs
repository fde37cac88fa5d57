//! Where a tenant's state may live on the service: under the platform's storage (`--storage`,
//! the chart's `controlPlane.storage`), in the tenant's own prefix `<storage>/strom-<tenant>/`
//! — the directory the operator's layout puts every job of the tenant's namespace in. A
//! tenant cannot point its checkpoints or savepoints at another bucket or another tenant's
//! prefix, restore another tenant's savepoint, or read another tenant's pipeline file; a
//! platform that gives each tenant prefix its own cloud identity (see `docs/security.md`)
//! then has the cloud enforce the same line.
//!
//! The URLs are checked after the CRD's own rules, which refuse `.`/`..` segments, queries,
//! fragments and escapes, so a prefix comparison is a containment check.

use strom_crds::{FlinkJobSpec, Violation};

/// The platform's storage and one tenant's prefix in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantStorage {
    /// The platform's storage, without a trailing `/`.
    base: String,
    /// `<base>/<namespace>/`.
    prefix: String,
}

impl TenantStorage {
    /// The prefix of the tenant whose namespace is `namespace`.
    pub fn new(base: &str, namespace: &str) -> TenantStorage {
        let base = base.trim_end_matches('/').to_owned();
        let prefix = format!("{base}/{namespace}/");
        TenantStorage { base, prefix }
    }

    /// The platform's storage: where jobs keep state unless they name a place in the prefix.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The tenant's prefix, `<storage>/strom-<tenant>/`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn inside(&self, url: &str) -> bool {
        url.starts_with(&self.prefix) && url.len() > self.prefix.len()
    }

    /// Every storage field of `spec` that leaves the tenant's prefix, by path under `spec.`:
    /// checkpoint and savepoint storage must be the platform's storage itself (jobs' data
    /// then goes under `<namespace>/<app>/`) or a place inside the prefix; a savepoint to
    /// restore and a pipeline file must be inside the prefix.
    pub fn check(&self, spec: &FlinkJobSpec) -> Vec<Violation> {
        let mut out = Vec::new();
        let roots = [
            (
                "spec.checkpoints.storage",
                spec.checkpoints.as_ref().map(|c| &c.storage),
            ),
            (
                "spec.savepoints.storage",
                spec.savepoints.as_ref().and_then(|s| s.storage.as_ref()),
            ),
        ];
        for (path, url) in roots {
            let Some(url) = url else { continue };
            if url.0.trim_end_matches('/') != self.base && !self.inside(&url.0) {
                out.push(Violation::new(
                    path,
                    format!(
                        "{:?} is outside this tenant's storage: leave it out (the service keeps \
                         state in {}) or name a place under {}",
                        url.0, self.base, self.prefix
                    ),
                ));
            }
        }
        let inner = [
            (
                "spec.restore.initialSavepoint",
                spec.restore
                    .as_ref()
                    .and_then(|r| r.initial_savepoint.as_ref()),
            ),
            ("spec.jobUri", spec.job_uri.as_ref()),
        ];
        for (path, url) in inner {
            let Some(url) = url else { continue };
            if !self.inside(&url.0) {
                out.push(Violation::new(
                    path,
                    format!(
                        "{:?} is outside this tenant's storage: it must be under {}",
                        url.0, self.prefix
                    ),
                ));
            }
        }
        out
    }
}

/// Whether `endpoint` is one of `allowed` (compared without a trailing `/`). The platform's
/// and the operator's credentials go only to endpoints on such a list: a store at another
/// address would receive them (on Azure and GCS, a bearer token).
pub fn endpoint_allowed(allowed: &[String], endpoint: &str) -> bool {
    let endpoint = endpoint.trim_end_matches('/');
    allowed.iter().any(|a| a.trim_end_matches('/') == endpoint)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(extra: serde_json::Value) -> FlinkJobSpec {
        let mut v = serde_json::json!({
            "image": "strom/engine:0.1.0",
            "job": {"sources": [], "sinks": []},
        });
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        serde_json::from_value(v).unwrap()
    }

    fn paths(s: &FlinkJobSpec) -> Vec<String> {
        TenantStorage::new("s3://state/strom/", "strom-acme")
            .check(s)
            .into_iter()
            .map(|v| v.path)
            .collect()
    }

    #[test]
    fn state_stays_in_the_tenants_prefix() {
        let own = spec(serde_json::json!({
            "checkpoints": {"storage": "s3://state/strom"},
            "savepoints": {"storage": "s3://state/strom/strom-acme/fast/"},
            "restore": {"initialSavepoint": "s3://state/strom/strom-acme/old/savepoints/sp-3"},
        }));
        assert!(paths(&own).is_empty(), "{:?}", paths(&own));

        let theirs = spec(serde_json::json!({
            "checkpoints": {"storage": "s3://other-bucket/x"},
            "savepoints": {"storage": "s3://state/strom/strom-globex"},
            "restore": {"initialSavepoint": "s3://state/strom/strom-globex/app/savepoints/sp-1"},
        }));
        assert_eq!(
            paths(&theirs),
            [
                "spec.checkpoints.storage",
                "spec.savepoints.storage",
                "spec.restore.initialSavepoint"
            ]
        );
        // A sibling whose name starts with the tenant's is not the tenant's.
        let sibling = spec(serde_json::json!({
            "restore": {"initialSavepoint": "s3://state/strom/strom-acme2/app/savepoints/sp-1"},
        }));
        assert_eq!(paths(&sibling), ["spec.restore.initialSavepoint"]);
        // The prefix itself is not a savepoint, and the platform's root is no pipeline file.
        let bare = spec(serde_json::json!({
            "restore": {"initialSavepoint": "s3://state/strom/strom-acme/"},
        }));
        assert_eq!(paths(&bare), ["spec.restore.initialSavepoint"]);
    }

    #[test]
    fn endpoints_are_compared_whole() {
        let allowed = vec!["https://minio.storage.svc:9000/".to_owned()];
        assert!(endpoint_allowed(&allowed, "https://minio.storage.svc:9000"));
        assert!(!endpoint_allowed(
            &allowed,
            "https://minio.storage.svc:9000.attacker.example"
        ));
        assert!(!endpoint_allowed(&[], "https://minio.storage.svc:9000"));
    }
}
