//! What a FlinkJob runs: its spec with an active autoscaler's decision on top, and the
//! hashes that tell specs and pipelines apart.

use std::collections::BTreeMap;

use crate::spec::AutoscalerMode;
use crate::{FlinkJob, FlinkJobSpec};

/// A stable hash (FNV-1a, hex) of a value's JSON form.
fn json_hash(value: &impl serde::Serialize) -> String {
    let json = serde_json::to_vec(value).expect("JSON serializes");
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in json {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

impl FlinkJobSpec {
    /// A stable hash of the whole spec, to tell deployed versions apart.
    pub fn hash(&self) -> String {
        json_hash(self)
    }

    /// A hash of the pipeline (`spec.job`): vertex ids belong to one pipeline.
    pub fn pipeline_hash(&self) -> String {
        json_hash(&self.job)
    }

    /// The highest parallelism of any vertex (what `status.parallelism` shows).
    pub fn widest(&self) -> i32 {
        self.vertex_parallelism
            .values()
            .copied()
            .fold(self.parallelism, i32::max)
    }
}

impl FlinkJob {
    /// The autoscaler's vertex parallelism the job should run with now: what an `active`
    /// autoscaler decided for this very pipeline, else nothing.
    pub fn autoscaled(&self) -> BTreeMap<String, i32> {
        let active = self
            .spec
            .autoscaler
            .as_ref()
            .is_some_and(|a| a.mode == AutoscalerMode::Active);
        match self.status.as_ref().and_then(|s| s.autoscaler.as_ref()) {
            Some(s)
                if active && s.job_hash.as_deref() == Some(self.spec.pipeline_hash().as_str()) =>
            {
                s.vertex_parallelism.clone()
            }
            _ => BTreeMap::new(),
        }
    }

    /// The spec the job should run: the user's, with the vertex parallelism an `active`
    /// autoscaler decided for this pipeline on top. A change of it is a rescale like any
    /// other.
    pub fn effective_spec(&self) -> FlinkJobSpec {
        let mut spec = self.spec.clone();
        spec.vertex_parallelism.extend(self.autoscaled());
        spec
    }

    /// Savepoints a start is about to restore from, so nothing may delete them: the one a
    /// spec the operator has not taken up yet names (`restore.initialSavepoint`, e.g. a
    /// rollback just made) and the one an upgrade under way has chosen
    /// (`status.operation.restoreFrom`). The savepoint the running engine restored from is on
    /// its StatefulSet (`strom.dev/restored-from`); once a spec is taken up, its
    /// `initialSavepoint` is not restored again (a later start resumes from newer state).
    pub fn savepoints_in_use(&self) -> Vec<String> {
        let pending = self
            .status
            .as_ref()
            .and_then(|s| s.last_reconciled_spec.as_ref())
            .is_none_or(|r| Some(r.generation) != self.metadata.generation);
        let named = self
            .spec
            .restore
            .as_ref()
            .and_then(|r| r.initial_savepoint.as_ref())
            .filter(|_| pending)
            .map(|u| u.0.clone());
        let upgrading = self
            .status
            .as_ref()
            .and_then(|s| s.operation.as_ref())
            .and_then(|o| o.restore_from.clone());
        named.into_iter().chain(upgrading).collect()
    }
}
