//! The Rust side of FlinkJob validation. It enforces the same rules as the CRD schema and its
//! CEL rules (a test runs both over every example and every bad manifest), and reports every
//! violation with its field path and a reason written for the person who made the mistake.

use serde_json::Value;

use crate::spec::{AutoscalerMode, MAX_NAME_LEN, UpgradeMode};
use crate::{Duration, FlinkJob, FlinkJobSpec, StorageUrl};

pub use strom_jobspec::{Violation, Violations};

/// Reads a FlinkJob from a YAML (or JSON) manifest and validates it: wrong types, unknown
/// fields and every rule of [`FlinkJob::validate`] are reported with their field paths.
pub fn from_yaml(text: &str) -> Result<FlinkJob, Violations> {
    let value: Value = serde_yaml_ng::from_str(text)
        .map_err(|e| Violations::one("<document>", format!("is not valid YAML: {e}")))?;
    from_value(value)
}

/// Reads a FlinkJob from a JSON value and validates it; see [`from_yaml`].
pub fn from_value(value: Value) -> Result<FlinkJob, Violations> {
    check_type_meta(&value)?;
    let (job, unknown) = strom_jobspec::strict::read::<FlinkJob>(&value)?;
    // The type meta is checked above; the derived type does not keep it.
    let unknown: Vec<Violation> = unknown
        .into_iter()
        .filter(|v| !matches!(v.path.as_str(), "apiVersion" | "kind"))
        .collect();
    let mut violations = unknown;
    if let Err(Violations(more)) = job.validate() {
        violations.extend(more);
    }
    if violations.is_empty() {
        Ok(job)
    } else {
        Err(Violations(violations))
    }
}

fn check_type_meta(value: &Value) -> Result<(), Violations> {
    let Some(object) = value.as_object() else {
        return Err(Violations::one(
            "<document>",
            "must be a mapping (a Kubernetes object)",
        ));
    };
    let expected_api = "strom.dev/v1alpha1";
    match object.get("apiVersion").and_then(Value::as_str) {
        Some(v) if v == expected_api => {}
        Some(v) => {
            return Err(Violations::one(
                "apiVersion",
                format!("is {v:?}, expected {expected_api:?}"),
            ));
        }
        None => {
            return Err(Violations::one(
                "apiVersion",
                format!("is required ({expected_api:?})"),
            ));
        }
    }
    match object.get("kind").and_then(Value::as_str) {
        Some("FlinkJob") => Ok(()),
        Some(k) => Err(Violations::one(
            "kind",
            format!("is {k:?}, expected \"FlinkJob\""),
        )),
        None => Err(Violations::one("kind", "is required (\"FlinkJob\")")),
    }
}

impl FlinkJob {
    /// Checks the name and the spec. Returns every violation.
    pub fn validate(&self) -> Result<(), Violations> {
        let mut check = Check::default();
        if let Some(name) = &self.metadata.name {
            check.name(name);
        }
        self.spec.check(&mut check);
        check.finish()
    }
}

impl FlinkJobSpec {
    /// Checks the spec against the same rules as the CRD schema and its CEL rules. Returns
    /// every violation, with paths starting at `spec.`.
    pub fn validate(&self) -> Result<(), Violations> {
        let mut check = Check::default();
        self.check(&mut check);
        check.finish()
    }

    fn check(&self, c: &mut Check) {
        if self.image.is_empty() {
            c.fail(
                "spec.image",
                "must not be empty (e.g. \"strom/engine:0.1.0\")",
            );
        }
        match (&self.job, &self.job_uri) {
            (Some(_), Some(_)) | (None, None) => c.fail(
                "spec.job",
                "exactly one of spec.job (the pipeline inline) and spec.jobUri (a pipeline file in object storage) must be set",
            ),
            _ => {}
        }
        // The whole pipeline, as the engine will check it: inputs that exist, one kind per
        // step, durations and SQL that parse. A pipeline the engine would refuse is an
        // invalid spec here, before any pod starts.
        if let Some(Err(problems)) = self.job.as_ref().map(strom_jobspec::JobSpec::check) {
            for v in problems.0 {
                c.fail(&format!("spec.job.{}", v.path), v.reason);
            }
        }
        if let Some(uri) = &self.job_uri {
            c.url("spec.jobUri", uri);
        }
        c.range("spec.parallelism", self.parallelism, 1, 10_000);
        if let Some(max) = self.max_parallelism {
            c.range("spec.maxParallelism", max, 1, 10_000);
            if self.parallelism > max {
                c.fail(
                    "spec.parallelism",
                    format!(
                        "must not exceed spec.maxParallelism ({} > {max})",
                        self.parallelism
                    ),
                );
            }
        }
        for (id, n) in &self.vertex_parallelism {
            c.range(&format!("spec.vertexParallelism.{id}"), *n, 1, 10_000);
        }
        c.range("spec.slotsPerWorker", self.slots_per_worker, 1, 256);
        if let Err(reason) = self.resources.cpu.check() {
            c.fail("spec.resources.cpu", reason);
        }
        if let Err(reason) = self.resources.memory.check() {
            c.fail("spec.resources.memory", reason);
        }

        let savepoint_storage = self.savepoints.as_ref().and_then(|s| s.storage.as_ref());
        if self.upgrade_mode == UpgradeMode::Savepoint && savepoint_storage.is_none() {
            c.fail("spec.savepoints.storage", "is required when spec.upgradeMode is savepoint: upgrades stop the job with a savepoint written there");
        }
        if self.upgrade_mode == UpgradeMode::LastState && self.checkpoints.is_none() {
            c.fail("spec.checkpoints", "is required when spec.upgradeMode is last-state: upgrades restore the latest checkpoint kept there");
        }

        if let Some(os) = &self.object_storage
            && let Some(endpoint) = &os.endpoint
        {
            let well_formed = endpoint_pattern().is_match(endpoint);
            if !well_formed {
                c.fail(
                    "spec.objectStorage.endpoint",
                    format!(
                        "{endpoint:?} is not an http(s) URL, e.g. https://minio.storage.svc:9000"
                    ),
                );
            } else if endpoint.starts_with("http://") && !os.allow_http {
                c.fail(
                    "spec.objectStorage.endpoint",
                    "is plain http://: set objectStorage.allowHttp to true to allow it",
                );
            }
        }

        if let Some(cp) = &self.checkpoints {
            c.duration("spec.checkpoints.interval", &cp.interval, true);
            c.url("spec.checkpoints.storage", &cp.storage);
            c.range("spec.checkpoints.retained", cp.retained, 1, 100);
            c.duration("spec.checkpoints.timeout", &cp.timeout, true);
        }
        if let Some(sp) = &self.savepoints {
            if let Some(storage) = &sp.storage {
                c.url("spec.savepoints.storage", storage);
            }
            if let Some(every) = &sp.periodic_interval {
                c.duration("spec.savepoints.periodicInterval", every, true);
            }
            c.range(
                "spec.savepoints.history.maxCount",
                sp.history.max_count,
                1,
                1000,
            );
            if let Some(age) = &sp.history.max_age {
                c.duration("spec.savepoints.history.maxAge", age, true);
            }
        }
        if let Some(initial) = self
            .restore
            .as_ref()
            .and_then(|r| r.initial_savepoint.as_ref())
        {
            c.url("spec.restore.initialSavepoint", initial);
        }
        if let Some(r) = &self.restore
            && r.redeploy_nonce.is_some()
            && r.initial_savepoint.is_none()
        {
            c.fail(
                "spec.restore.initialSavepoint",
                "is required with spec.restore.redeployNonce: a redeploy starts from it",
            );
        }

        if let Some(a) = &self.autoscaler {
            c.range(
                "spec.autoscaler.minParallelism",
                a.min_parallelism,
                1,
                10_000,
            );
            if let Some(max) = a.max_parallelism {
                c.range("spec.autoscaler.maxParallelism", max, 1, 10_000);
                if a.min_parallelism > max {
                    c.fail(
                        "spec.autoscaler.minParallelism",
                        format!(
                            "must not exceed autoscaler.maxParallelism ({} > {max})",
                            a.min_parallelism
                        ),
                    );
                }
                if let Some(job_max) = self.max_parallelism
                    && max > job_max
                {
                    c.fail(
                        "spec.autoscaler.maxParallelism",
                        format!("must not exceed spec.maxParallelism ({max} > {job_max})"),
                    );
                }
            }
            c.range_f64(
                "spec.autoscaler.targetUtilization",
                a.target_utilization,
                0.01,
                1.0,
            );
            c.range_f64(
                "spec.autoscaler.utilizationBand",
                a.utilization_band,
                0.0,
                0.99,
            );
            c.range_f64(
                "spec.autoscaler.maxScaleUpFactor",
                a.max_scale_up_factor,
                1.0,
                1000.0,
            );
            c.range_f64(
                "spec.autoscaler.maxScaleDownFactor",
                a.max_scale_down_factor,
                1.0,
                1000.0,
            );
            // The same arithmetic as the CEL rule, so both agree at the edges.
            if !(a.target_utilization - a.utilization_band > 0.0
                && a.target_utilization + a.utilization_band <= 1.0)
            {
                c.fail(
                    "spec.autoscaler.utilizationBand",
                    format!(
                        "targetUtilization ± utilizationBand must stay within (0, 1] (got {} ± {})",
                        a.target_utilization, a.utilization_band
                    ),
                );
            }
            c.duration("spec.autoscaler.metricsWindow", &a.metrics_window, true);
            c.duration(
                "spec.autoscaler.stabilizationInterval",
                &a.stabilization_interval,
                false,
            );
            c.duration("spec.autoscaler.scaleDownDelay", &a.scale_down_delay, false);
            c.duration(
                "spec.autoscaler.catchUpDuration",
                &a.catch_up_duration,
                true,
            );
            c.duration("spec.autoscaler.restartTime", &a.restart_time, false);
            if a.mode == AutoscalerMode::Active && savepoint_storage.is_none() {
                c.fail("spec.savepoints.storage", "is required when spec.autoscaler.mode is active: every rescale restores from a savepoint written there");
            }
        }
        if let Some(r) = &self.rollback {
            c.duration("spec.rollback.readinessTimeout", &r.readiness_timeout, true);
            if r.enabled && savepoint_storage.is_none() {
                c.fail("spec.savepoints.storage", "is required when spec.rollback.enabled is true: a rollback restores the savepoint taken before the upgrade");
            }
        }
    }
}

#[derive(Default)]
struct Check {
    violations: Vec<Violation>,
}

impl Check {
    fn fail(&mut self, path: &str, reason: impl Into<String>) {
        self.violations.push(Violation {
            path: path.to_owned(),
            reason: reason.into(),
        });
    }

    fn finish(self) -> Result<(), Violations> {
        if self.violations.is_empty() {
            Ok(())
        } else {
            Err(Violations(self.violations))
        }
    }

    fn name(&mut self, name: &str) {
        let label = name.len() <= MAX_NAME_LEN
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && !name.ends_with('-')
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !label {
            self.fail(
                "metadata.name",
                format!("{name:?} must be a lower-case DNS label (letters, digits, '-'; starting with a letter) of at most {MAX_NAME_LEN} characters, so that the names of the job's pods and Services stay valid"),
            );
        }
    }

    fn range(&mut self, path: &str, value: i32, min: i32, max: i32) {
        if !(min..=max).contains(&value) {
            self.fail(
                path,
                format!("must be between {min} and {max} (got {value})"),
            );
        }
    }

    fn range_f64(&mut self, path: &str, value: f64, min: f64, max: f64) {
        if !(min..=max).contains(&value) {
            self.fail(
                path,
                format!("must be between {min} and {max} (got {value})"),
            );
        }
    }

    fn duration(&mut self, path: &str, value: &Duration, positive: bool) {
        match value.to_std() {
            Err(e) => self.fail(path, e.to_string()),
            Ok(d) if positive && d.is_zero() => self.fail(path, "must be greater than zero"),
            Ok(_) => {}
        }
    }

    fn url(&mut self, path: &str, value: &StorageUrl) {
        if let Err(reason) = value.check() {
            self.fail(path, reason);
        }
    }
}

fn endpoint_pattern() -> &'static regex::Regex {
    static PATTERN: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    PATTERN
        .get_or_init(|| regex::Regex::new(r"^https?://[^\s/]+(/\S*)?$").expect("pattern compiles"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "apiVersion: strom.dev/v1alpha1\nkind: FlinkJob\nmetadata:\n  name: t\n";

    fn parse(spec: &str) -> Result<FlinkJob, Violations> {
        from_yaml(&format!("{HEADER}spec:\n{spec}"))
    }

    fn paths(result: Result<FlinkJob, Violations>) -> Vec<String> {
        result.unwrap_err().0.into_iter().map(|v| v.path).collect()
    }

    #[test]
    fn a_pipeline_the_engine_would_refuse_is_refused_with_paths_under_spec_job() {
        let spec = r#"  image: strom/engine:0.1.0
  job:
    sources:
      - {name: s, datagen: {columns: [{name: a, expr: id}]}}
    transforms:
      - {name: t, input: ss, where: "a = = 1"}
    sinks:
      - {name: out, input: t, stdout: {}}
"#;
        assert_eq!(
            paths(parse(spec)),
            [
                "spec.job.transforms[0].input",
                "spec.job.transforms[0].where"
            ]
        );
        let fixed = spec.replace("ss,", "s,").replace("a = = 1", "a = 1");
        parse(&fixed).unwrap();
        // Once the structure is sound, the types: a column the input does not have and an
        // operator on the wrong type are refused by path too, before any pod starts.
        let unknown = parse(&fixed.replace("a = 1", "b = 1")).unwrap_err();
        assert_eq!(unknown.0[0].path, "spec.job.transforms[0].where");
        assert!(
            unknown.0[0]
                .reason
                .contains("unknown column \"b\" (the input has a)"),
            "{unknown}"
        );
        let mistyped = parse(&fixed.replace("a = 1", "UPPER(a) = 'X'")).unwrap_err();
        assert!(
            mistyped.0[0]
                .reason
                .contains("UPPER needs STRING but got BIGINT"),
            "{mistyped}"
        );
    }

    #[test]
    fn a_valid_manifest_gets_the_documented_defaults() {
        let job = parse("  image: strom/engine:0.1.0\n  jobUri: s3://b/job.yaml\n").unwrap();
        assert_eq!(job.spec.parallelism, 1);
        assert_eq!(job.spec.slots_per_worker, 1);
        assert_eq!(job.spec.upgrade_mode, UpgradeMode::Stateless);
        assert_eq!(
            job.spec.resources.memory,
            crate::spec::Quantity::Text("1Gi".into())
        );
    }

    #[test]
    fn every_violation_is_reported_at_once() {
        let spec = "  image: ''\n  parallelism: 0\n  upgradeMode: savepoint\n  bogus: 1\n  checkpoints:\n    interval: 1x\n    storage: ftp://x\n";
        assert_eq!(
            paths(parse(spec)),
            [
                "spec.bogus",
                "spec.image",
                "spec.job",
                "spec.parallelism",
                "spec.savepoints.storage",
                "spec.checkpoints.interval",
                "spec.checkpoints.storage",
            ]
        );
    }

    #[test]
    fn unknown_fields_are_found_inside_kubernetes_types_too() {
        let spec = "  image: i\n  jobUri: s3://b/j\n  podTemplate:\n    env:\n      - name: A\n        valeu: x\n  metadata: {}\n";
        assert_eq!(
            paths(parse(spec)),
            ["spec.metadata", "spec.podTemplate.env[0].valeu"]
        );
    }

    #[test]
    fn wrong_kind_or_api_version_is_named() {
        let err = from_yaml("apiVersion: v1\nkind: FlinkJob\nspec: {}\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "apiVersion: is \"v1\", expected \"strom.dev/v1alpha1\""
        );
        let err = from_yaml("apiVersion: strom.dev/v1alpha1\nkind: Job\n").unwrap_err();
        assert_eq!(err.to_string(), "kind: is \"Job\", expected \"FlinkJob\"");
        let err = from_yaml("- a\n- b\n").unwrap_err();
        assert!(err.to_string().starts_with("<document>: must be a mapping"));
    }

    #[test]
    fn utilization_band_edges_follow_the_cel_rule() {
        let with = |t: f64, b: f64| {
            parse(&format!(
                "  image: i\n  jobUri: s3://b/j\n  autoscaler:\n    targetUtilization: {t}\n    utilizationBand: {b}\n"
            ))
        };
        assert!(with(0.7, 0.3).is_ok());
        assert!(with(0.5, 0.4).is_ok());
        assert_eq!(paths(with(0.5, 0.5)), ["spec.autoscaler.utilizationBand"]);
        assert_eq!(paths(with(0.3, 0.3)), ["spec.autoscaler.utilizationBand"]);
        assert_eq!(paths(with(0.8, 0.3)), ["spec.autoscaler.utilizationBand"]);
    }

    #[test]
    fn names_must_be_short_dns_labels() {
        let named = |n: &str| {
            from_yaml(&format!(
                "apiVersion: strom.dev/v1alpha1\nkind: FlinkJob\nmetadata:\n  name: {n}\nspec:\n  image: i\n  jobUri: s3://b/j\n"
            ))
        };
        assert!(named("fraud-detection-2").is_ok());
        for bad in [
            "Fraud",
            "fraud_detection",
            "-x",
            "x-",
            "9lives",
            &"a".repeat(46),
        ] {
            assert_eq!(paths(named(bad)), ["metadata.name"], "{bad}");
        }
        assert!(named(&"a".repeat(45)).is_ok());
    }
}
