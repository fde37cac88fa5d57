//! Unit tests of [`super`]: the objects built for a FlinkJob.

use super::*;

fn job(extra: &str) -> FlinkJob {
    let yaml = format!(
        "image: strom/engine:0.1.0
parallelism: 3
checkpoints: {{storage: 's3://state/c', interval: 10s}}
objectStorage: {{endpoint: 'http://minio:9000', pathStyle: true, allowHttp: true}}
job: {{sources: [{{name: s, datagen: {{rate: 10, columns: [{{name: v, expr: id}}]}}}}], sinks: [{{name: o, input: s, stdout: {{}}}}]}}
{extra}"
    );
    let mut j = FlinkJob::new("fraud", serde_yaml_ng::from_str(&yaml).unwrap());
    j.metadata.namespace = Some("payments".into());
    j.metadata.uid = Some("uid-1".into());
    j
}

#[test]
fn engines_run_as_the_jobs_account_else_the_operators_default() {
    let j = job("");
    let account = |default| {
        stateful_set(&j, &j.spec, "abc", None, "g1-1", default)
            .spec
            .unwrap()
            .template
            .spec
            .unwrap()
            .service_account_name
    };
    assert_eq!(
        account(Some("strom-engine")).as_deref(),
        Some("strom-engine")
    );
    assert_eq!(account(None), None);
}

#[test]
fn the_engine_runs_the_spec_with_its_storage_and_restore() {
    let j = job(
        "resources: {cpu: 500m, memory: 2Gi}\nrestore: {allowNonRestoredState: true}\npodTemplate: {serviceAccountName: strom-engine, env: [{name: AWS_REGION, value: eu-west-1}]}",
    );
    let sts = stateful_set(
        &j,
        &j.spec,
        "abc",
        Some("s3://state/s/sp-1"),
        "g1-1",
        Some("operator-default"),
    );
    assert_eq!(sts.metadata.name.as_deref(), Some("fraud-engine"));
    let owner = &sts.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
        ("FlinkJob", "uid-1", Some(true))
    );
    assert_eq!(sts.metadata.annotations.as_ref().unwrap()[SPEC_HASH], "abc");
    let pod = sts.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
    assert_eq!(pod.service_account_name.as_deref(), Some("strom-engine"));
    let c = &pod.containers[0];
    let args = c.args.clone().unwrap().join(" ");
    assert_eq!(
        args,
        "run /etc/strom/job.yaml --parallelism 3 --listen $(POD_IP):8081 --stay-up-when-finished \
--checkpoint-dir s3://state/c/payments/fraud/checkpoints --checkpoint-interval 10s --retain-checkpoints 3 --deployment g1-1 \
--storage-option endpoint=http://minio:9000 --storage-option path_style=true --storage-option allow_http=true \
--restore s3://state/s/sp-1 --allow-non-restored-state --control-token-file /etc/strom-control/token"
    );
    let env = c.env.as_ref().unwrap();
    assert!(env.iter().any(|e| e.name == "AWS_REGION"));
    let requests = c.resources.as_ref().unwrap().requests.as_ref().unwrap();
    assert_eq!(requests["cpu"].0, "1500m");
    assert_eq!(requests["memory"].0, "2Gi");
    let labels = sts
        .spec
        .as_ref()
        .unwrap()
        .template
        .metadata
        .as_ref()
        .unwrap()
        .labels
        .clone()
        .unwrap();
    assert_eq!(labels["strom.dev/job"], "fraud");
    assert_eq!(labels["app.kubernetes.io/managed-by"], "strom-operator");
}

#[test]
fn every_engine_pod_meets_the_restricted_pod_security_standard() {
    // Whatever the pod template says: it has no field that reaches these.
    let j = job(
        "podTemplate: {serviceAccountName: strom-engine, volumes: [{name: data, emptyDir: {}}], volumeMounts: [{name: data, mountPath: /data}]}",
    );
    let sts = stateful_set(&j, &j.spec, "abc", None, "g1-1", None);
    let pod = sts.spec.unwrap().template.spec.unwrap();
    assert_eq!(pod.automount_service_account_token, Some(false));
    let psc = pod.security_context.unwrap();
    assert_eq!(psc.run_as_non_root, Some(true));
    assert_eq!(psc.run_as_user, Some(pod_security::ENGINE_UID));
    assert_eq!(psc.seccomp_profile.unwrap().type_, "RuntimeDefault");
    let c = &pod.containers[0];
    let sc = c.security_context.clone().unwrap();
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.capabilities.unwrap().drop, Some(vec!["ALL".to_owned()]));
    // Scratch space under the read-only root, beside the user's own volumes.
    let mounts: Vec<&str> = c
        .volume_mounts
        .as_ref()
        .unwrap()
        .iter()
        .map(|m| m.mount_path.as_str())
        .collect();
    assert_eq!(
        mounts,
        ["/etc/strom", "/etc/strom-control", "/tmp", "/data"]
    );
    assert!(
        pod.volumes
            .unwrap()
            .iter()
            .any(|v| v.name == "tmp" && v.empty_dir.is_some())
    );
}

#[test]
fn each_job_gets_its_own_random_control_token_mounted_read_only() {
    let (a, b) = (new_control_token(), new_control_token());
    assert_eq!(a.len(), 64);
    assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(a, b);
    let j = job("savepoints: {storage: 's3://state/s'}");
    let secret = control_secret(&j, &a);
    assert_eq!(secret.metadata.name.as_deref(), Some("fraud-control"));
    assert_eq!(secret.string_data.unwrap()["token"], a);
    let sts = stateful_set(&j, &j.spec, "abc", None, "g1-1", None);
    let pod = sts.spec.unwrap().template.spec.unwrap();
    let volume = pod
        .volumes
        .unwrap()
        .into_iter()
        .find(|v| v.name == "control")
        .unwrap();
    assert_eq!(
        volume.secret.unwrap().secret_name.as_deref(),
        Some("fraud-control")
    );
    let args = pod.containers[0].args.clone().unwrap().join(" ");
    assert!(
        args.ends_with(
            "--control-token-file /etc/strom-control/token \
             --savepoint-dir s3://state/s/payments/fraud/savepoints"
        ),
        "{args}"
    );
}

#[test]
fn only_the_platforms_namespaces_reach_the_engine_and_only_its_control_port() {
    let j = job("");
    let p = network_policy(&j, &["strom-system".into()]);
    let spec = p.spec.unwrap();
    assert_eq!(
        spec.pod_selector.unwrap().match_labels.unwrap()["strom.dev/job"],
        "fraud"
    );
    assert_eq!(spec.policy_types, Some(vec!["Ingress".to_owned()]));
    let rules = spec.ingress.unwrap();
    assert_eq!(rules.len(), 1);
    let port = &rules[0].ports.as_ref().unwrap()[0];
    assert_eq!(port.port, Some(IntOrString::Int(CONTROL_PORT)));
    let from = &rules[0].from.as_ref().unwrap()[0];
    let selector = from.namespace_selector.as_ref().unwrap();
    let e = &selector.match_expressions.as_ref().unwrap()[0];
    assert_eq!(
        (e.key.as_str(), e.operator.as_str(), e.values.clone()),
        (
            "kubernetes.io/metadata.name",
            "In",
            Some(vec!["strom-system".to_owned()])
        )
    );
}

#[test]
fn the_pipeline_goes_in_a_config_map_and_urls_are_refused() {
    let j = job("");
    let cm = config_map(&j, &j.spec).unwrap();
    let text = &cm.data.unwrap()["job.yaml"];
    assert!(text.contains("datagen"), "{text}");
    let mut by_url = j.spec.clone();
    by_url.job = None;
    by_url.job_uri = Some("s3://state/jobs/fraud.yaml".into());
    let e = config_map(&j, &by_url).unwrap_err();
    assert!(e.to_string().contains("spec.jobUri"), "{e}");
    assert_eq!(
        service(&j).spec.unwrap().ports.unwrap()[0].port,
        CONTROL_PORT
    );
}

#[test]
fn cpu_scales_with_the_workers_the_job_would_have() {
    use strom_crds::spec::Quantity as Q;
    assert_eq!(scale_cpu(&Q::Text("500m".into()), 3), "1500m");
    assert_eq!(scale_cpu(&Q::Number(2), 3), "6");
    assert_eq!(scale_cpu(&Q::Text("1.5".into()), 3), "4500m");
    assert_eq!(scale_cpu(&Q::Text("1".into()), 1), "1");
}
