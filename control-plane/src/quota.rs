//! What a tenant may use and what an application costs. A running application counts with
//! the most it may ever request: its subtasks at its highest possible parallelism (every
//! vertex's, the autoscaler's bound included), the CPU of the worker slots those need
//! (`spec.resources.cpu` per worker, `⌈subtasks / slotsPerWorker⌉` workers, as the operator
//! requests it) and the engine pod's memory. The tenant's namespace carries the same
//! numbers as a ResourceQuota (`k8s`), so what slips past here stops at the API server.

use axum::http::StatusCode;
use strom_crds::FlinkJobSpec;
use strom_crds::spec::{AutoscalerMode, Quantity};

use crate::error::{ApiError, Result};
use crate::model::Tenant;

/// CPU of a tenant that names none, in thousandths of a CPU (64 CPUs).
pub const DEFAULT_MAX_CPU_MILLI: i64 = 64_000;
/// Memory of a tenant that names none, in bytes (256 GiB).
pub const DEFAULT_MAX_MEMORY_BYTES: i64 = 256 << 30;
/// Applications of a tenant that names no limit.
pub const DEFAULT_MAX_APPLICATIONS: i64 = 100;
/// Versions of one application, for a tenant that names no limit.
pub const DEFAULT_MAX_VERSIONS: i64 = 1000;

/// The most an application may use while it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Footprint {
    /// Subtasks at its highest possible parallelism.
    pub subtasks: i64,
    /// CPU its engine requests, in thousandths of a CPU.
    pub cpu_milli: i64,
    /// Memory its engine requests, in bytes.
    pub memory_bytes: i64,
}

impl Footprint {
    /// What `spec` may use at most.
    pub fn of(spec: &FlinkJobSpec) -> Result<Footprint> {
        let subtasks = budget(spec)?;
        let slots = i64::from(spec.slots_per_worker.max(1));
        let workers = (subtasks + slots - 1) / slots;
        let cpu = milli("spec.resources.cpu", &spec.resources.cpu)?;
        let memory = milli("spec.resources.memory", &spec.resources.memory)?;
        let too_much = |field: &str| ApiError::field(field, "is more than any quota allows");
        let cpu_milli = cpu
            .checked_mul(i128::from(workers))
            .and_then(|c| i64::try_from(c).ok())
            .ok_or_else(|| too_much("spec.resources.cpu"))?;
        let memory_bytes =
            i64::try_from((memory + 999) / 1000).map_err(|_| too_much("spec.resources.memory"))?;
        Ok(Footprint {
            subtasks,
            cpu_milli,
            memory_bytes,
        })
    }

    fn plus(self, other: Footprint) -> Footprint {
        Footprint {
            subtasks: self.subtasks.saturating_add(other.subtasks),
            cpu_milli: self.cpu_milli.saturating_add(other.cpu_milli),
            memory_bytes: self.memory_bytes.saturating_add(other.memory_bytes),
        }
    }
}

fn milli(field: &str, q: &Quantity) -> Result<i128> {
    q.milli().map_err(|reason| ApiError::field(field, reason))
}

/// The most subtasks `spec` may ever use: its widest vertex, or the autoscaler's upper
/// bound when it may scale.
pub fn budget(spec: &FlinkJobSpec) -> Result<i64> {
    let widest = spec
        .vertex_parallelism
        .values()
        .copied()
        .fold(spec.parallelism, i32::max);
    match &spec.autoscaler {
        Some(a) if a.mode == AutoscalerMode::Active => {
            match a.max_parallelism.or(spec.max_parallelism) {
                Some(m) => Ok(i64::from(m.max(widest))),
                None => Err(ApiError::field(
                    "spec.autoscaler.maxParallelism",
                    "is required for an active autoscaler under a tenant quota (or set spec.maxParallelism)",
                )),
            }
        }
        _ => Ok(i64::from(widest)),
    }
}

/// A tenant's quota over its running applications, as numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Running applications.
    pub jobs: i64,
    /// What they may use together.
    pub total: Footprint,
}

impl Quota {
    /// The quota of `tenant`.
    pub fn of(tenant: &Tenant) -> Result<Quota> {
        let read = |text: &str| {
            Quantity::Text(text.to_owned())
                .milli()
                .map_err(|e| ApiError::internal(format!("a stored quota: {e}")))
        };
        let cpu = i64::try_from(read(&tenant.max_cpu)?).map_err(ApiError::internal)?;
        let memory = i64::try_from(read(&tenant.max_memory)? / 1000).map_err(ApiError::internal)?;
        Ok(Quota {
            jobs: tenant.max_jobs,
            total: Footprint {
                subtasks: tenant.max_parallelism,
                cpu_milli: cpu,
                memory_bytes: memory,
            },
        })
    }
}

fn quota_exceeded(message: String) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "quota_exceeded", message)
}

/// `milli` thousandths of a CPU as a quantity (`16`, `1500m`).
pub fn cpu_text(milli: i64) -> String {
    if milli % 1000 == 0 {
        format!("{}", milli / 1000)
    } else {
        format!("{milli}m")
    }
}

/// `bytes` as a quantity with the largest binary suffix that divides it (`64Gi`, `1536Mi`).
pub fn memory_text(bytes: i64) -> String {
    for (shift, suffix) in [
        (60, "Ei"),
        (50, "Pi"),
        (40, "Ti"),
        (30, "Gi"),
        (20, "Mi"),
        (10, "Ki"),
    ] {
        if bytes != 0 && bytes % (1_i64 << shift) == 0 {
            return format!("{}{suffix}", bytes >> shift);
        }
    }
    bytes.to_string()
}

/// Refuses `spec` if it alone may use more than the tenant may.
pub fn fits(tenant: &Tenant, spec: &FlinkJobSpec) -> Result<()> {
    let quota = Quota::of(tenant)?;
    let mine = Footprint::of(spec)?;
    let over = |what: &str, mine: String, may: String| {
        quota_exceeded(format!(
            "this application may use up to {mine} {what}; tenant {:?} may use {may}",
            tenant.name
        ))
    };
    if mine.subtasks > quota.total.subtasks {
        return Err(over(
            "subtasks",
            mine.subtasks.to_string(),
            quota.total.subtasks.to_string(),
        ));
    }
    if mine.cpu_milli > quota.total.cpu_milli {
        return Err(over(
            "CPU",
            cpu_text(mine.cpu_milli),
            cpu_text(quota.total.cpu_milli),
        ));
    }
    if mine.memory_bytes > quota.total.memory_bytes {
        return Err(over(
            "memory",
            memory_text(mine.memory_bytes),
            memory_text(quota.total.memory_bytes),
        ));
    }
    Ok(())
}

/// Refuses running `spec` beside the tenant's `others` running applications if together
/// they would exceed its quota of applications, subtasks, CPU or memory.
pub fn fits_beside(tenant: &Tenant, others: &[FlinkJobSpec], spec: &FlinkJobSpec) -> Result<()> {
    let quota = Quota::of(tenant)?;
    let mine = Footprint::of(spec)?;
    // A stored spec always has a footprint; one that somehow has none counts its
    // parallelism and its resources at one worker rather than nothing.
    let used = others.iter().fold(Footprint::default(), |sum, o| {
        sum.plus(Footprint::of(o).unwrap_or(Footprint {
            subtasks: i64::from(o.parallelism),
            ..Footprint::default()
        }))
    });
    if others.len() as i64 + 1 > quota.jobs {
        return Err(quota_exceeded(format!(
            "tenant {:?} may run {} applications and runs {} already",
            tenant.name,
            quota.jobs,
            others.len()
        )));
    }
    let over = |what: &str, may: String, used: String, mine: String| {
        quota_exceeded(format!(
            "tenant {:?} may use {may} {what}; its other running applications use up to {used} and this one up to {mine}",
            tenant.name
        ))
    };
    let total = used.plus(mine);
    if total.subtasks > quota.total.subtasks {
        return Err(over(
            "subtasks",
            quota.total.subtasks.to_string(),
            used.subtasks.to_string(),
            mine.subtasks.to_string(),
        ));
    }
    if total.cpu_milli > quota.total.cpu_milli {
        return Err(over(
            "CPU",
            cpu_text(quota.total.cpu_milli),
            cpu_text(used.cpu_milli),
            cpu_text(mine.cpu_milli),
        ));
    }
    if total.memory_bytes > quota.total.memory_bytes {
        return Err(over(
            "memory",
            memory_text(quota.total.memory_bytes),
            memory_text(used.memory_bytes),
            memory_text(mine.memory_bytes),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Policy;
    use crate::spec::managed;
    use crate::tenant_storage::TenantStorage;

    fn spec(json: serde_json::Value) -> FlinkJobSpec {
        let storage = TenantStorage::new("s3://bucket/app", "strom-acme");
        managed(&storage, &Policy::default(), "app", &json).expect("a valid spec")
    }

    fn base() -> serde_json::Value {
        serde_json::json!({
            "image": "strom/engine:0.1.0",
            "parallelism": 2,
            "job": {
                "sources": [{"name": "clicks", "datagen": {"rate": 10, "columns": [{"name": "v", "expr": "id"}]}}],
                "sinks": [{"name": "out", "input": "clicks", "blackhole": {}}]
            }
        })
    }

    fn tenant(max_parallelism: i64, max_jobs: i64) -> Tenant {
        Tenant {
            name: "acme".into(),
            namespace: "strom-acme".into(),
            max_parallelism,
            max_jobs,
            max_cpu: cpu_text(DEFAULT_MAX_CPU_MILLI),
            max_memory: memory_text(DEFAULT_MAX_MEMORY_BYTES),
            max_applications: DEFAULT_MAX_APPLICATIONS,
            max_versions: DEFAULT_MAX_VERSIONS,
            created_at: String::new(),
        }
    }

    #[test]
    fn the_budget_is_the_widest_vertex_or_the_autoscalers_bound() {
        let mut v = base();
        v["vertexParallelism"] = serde_json::json!({"source:clicks": 5});
        assert_eq!(budget(&spec(v)).unwrap(), 5);

        let mut active = base();
        active["autoscaler"] = serde_json::json!({"mode": "active", "maxParallelism": 8});
        assert_eq!(budget(&spec(active)).unwrap(), 8);

        let mut unbounded = base();
        unbounded["autoscaler"] = serde_json::json!({"mode": "active"});
        let e = budget(&spec(unbounded)).unwrap_err();
        let fields: Vec<_> = e.body.errors.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["spec.autoscaler.maxParallelism"]);
    }

    #[test]
    fn the_footprint_is_the_workers_cpu_and_the_pods_memory() {
        let mut v = base();
        v["vertexParallelism"] = serde_json::json!({"source:clicks": 5});
        v["slotsPerWorker"] = serde_json::json!(2);
        v["resources"] = serde_json::json!({"cpu": "1500m", "memory": "3Gi"});
        // 5 subtasks in slots of 2: 3 workers of 1.5 CPU; one pod of 3 GiB.
        assert_eq!(
            Footprint::of(&spec(v)).unwrap(),
            Footprint {
                subtasks: 5,
                cpu_milli: 4500,
                memory_bytes: 3 << 30
            }
        );
        assert_eq!(cpu_text(4500), "4500m");
        assert_eq!(cpu_text(16_000), "16");
        assert_eq!(memory_text(3 << 30), "3Gi");
        assert_eq!(memory_text(1536 << 20), "1536Mi");
        assert_eq!(memory_text(1000), "1000");
    }

    #[test]
    fn the_quota_counts_applications_subtasks_cpu_and_memory() {
        let two = spec(base());
        assert!(fits(&tenant(2, 1), &two).is_ok());
        let e = fits(&tenant(1, 1), &two).unwrap_err();
        assert_eq!(
            (e.status, e.body.code.as_str()),
            (StatusCode::FORBIDDEN, "quota_exceeded")
        );

        assert!(fits_beside(&tenant(4, 2), std::slice::from_ref(&two), &two).is_ok());
        let e = fits_beside(&tenant(3, 2), std::slice::from_ref(&two), &two).unwrap_err();
        assert!(
            e.body.message.contains("use up to 2 and this one up to 2"),
            "{}",
            e.body.message
        );
        let e = fits_beside(&tenant(100, 1), std::slice::from_ref(&two), &two).unwrap_err();
        assert!(
            e.body.message.contains("may run 1 applications and runs 1"),
            "{}",
            e.body.message
        );

        // Subtasks to spare, CPU not: two engines of 2 workers × 1 CPU beside a 3-CPU quota.
        let cpu_bound = Tenant {
            max_cpu: "3".into(),
            ..tenant(100, 10)
        };
        assert!(fits(&cpu_bound, &two).is_ok());
        let e = fits_beside(&cpu_bound, std::slice::from_ref(&two), &two).unwrap_err();
        assert_eq!(
            e.body.message,
            "tenant \"acme\" may use 3 CPU; its other running applications use up to 2 and this one up to 2"
        );
        let memory_bound = Tenant {
            max_memory: "1536Mi".into(),
            ..tenant(100, 10)
        };
        let e = fits_beside(&memory_bound, std::slice::from_ref(&two), &two).unwrap_err();
        assert!(
            e.body.message.contains("1536Mi memory"),
            "{}",
            e.body.message
        );
        let mut big = base();
        big["resources"] = serde_json::json!({"memory": "2Gi"});
        let e = fits(&memory_bound, &spec(big)).unwrap_err();
        assert_eq!(
            e.body.message,
            "this application may use up to 2Gi memory; tenant \"acme\" may use 1536Mi"
        );
    }
}
