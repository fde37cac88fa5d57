//! The names of the objects the operator makes for a FlinkJob, and the annotations on them:
//! one definition for the operator, which creates them, and the control plane, which reads
//! them (the CRD keeps job names short enough for every derived name).

/// The engine StatefulSet's annotation naming the snapshot its pods restored from.
pub const RESTORED_FROM: &str = "strom.dev/restored-from";

/// The key of the control Secret holding the engine's bearer token.
pub const CONTROL_TOKEN_KEY: &str = "token";

/// Names of a job's objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectNames {
    /// ConfigMap with the pipeline.
    pub config: String,
    /// Service of the control endpoint.
    pub service: String,
    /// StatefulSet of the engine.
    pub engine: String,
    /// Its (only) pod.
    pub pod: String,
    /// ConfigMap with the autoscaler's metrics history and state.
    pub autoscaler: String,
    /// Secret with the token the engine's control endpoint requires for changes.
    pub control: String,
}

impl ObjectNames {
    /// The names of the objects of the FlinkJob named `name`.
    pub fn of(name: &str) -> Self {
        ObjectNames {
            config: format!("{name}-job"),
            service: format!("{name}-rest"),
            engine: format!("{name}-engine"),
            pod: format!("{name}-engine-0"),
            autoscaler: format!("{name}-autoscaler"),
            control: format!("{name}-control"),
        }
    }
}

impl crate::FlinkJob {
    /// The names of this job's objects.
    pub fn object_names(&self) -> ObjectNames {
        ObjectNames::of(self.metadata.name.as_deref().unwrap_or("job"))
    }
}
