#!/usr/bin/env bash
# The README's first command: Strom end to end on this machine. Builds Strom, starts the
# local cluster (strom-local up: an in-memory Kubernetes API server and a kubelet running
# pods as local processes), installs the Helm chart into it with helm install (the CRD, two operator replicas,
# RBAC, the engines' service account), runs the sample FlinkJob examples/orders-local.yaml
# (orders per region and minute, checkpointed and savepointed to /tmp/strom-state, the local
# object store), and shows it running. The cluster keeps running until Ctrl-C, which stops
# every process it started; `--exit` stops it once the job has checkpointed.
# `--kafka` runs examples/kafka-local.yaml instead: a Kafka broker pod, a producer job and a
# job counting its orders from one topic into another exactly once; it ends by reading the
# output topic as a read_committed consumer.
set -euo pipefail
cd "$(dirname "$0")/.."

exit_after=false
kafka=false
for arg in "$@"; do
  case $arg in
    --exit) exit_after=true ;;
    --kafka) kafka=true ;;
    *) echo "usage: scripts/quickstart.sh [--kafka] [--exit]" >&2; exit 2 ;;
  esac
done

scripts/install-tools.sh >/dev/null
export PATH="$PATH:$PWD/target/tools/kubectl-1.32"
echo "building strom-engine, strom-operator and strom-local…"
cargo build -q -p strom-engine -p strom-operator -p strom-local-cluster --bins

dir=$PWD/.strom
export KUBECONFIG=$dir/kubeconfig
if [ -e "$KUBECONFIG" ] && kubectl get --raw /version >/dev/null 2>&1; then
  echo "error: a local cluster already runs with $KUBECONFIG; stop it first (Ctrl-C where it runs)" >&2
  exit 1
fi
rm -f "$KUBECONFIG"
target/debug/strom-local up --dir "$dir" --without-crd \
  --image "strom/operator:*=$PWD/target/debug/strom-operator" \
  --image "strom/engine:*=$PWD/target/debug/strom-engine" \
  --image "strom/kafka-broker:*=$PWD/target/tools/strom-kafka-broker/bin/strom-kafka-broker" \
  > "$dir.log" 2>&1 &
cluster=$!
trap 'kill $cluster 2>/dev/null; wait $cluster 2>/dev/null' EXIT
for _ in $(seq 100); do [ -e "$KUBECONFIG" ] && break; sleep 0.1; done
[ -e "$KUBECONFIG" ] || { echo "error: the local cluster did not start; see $dir.log" >&2; exit 1; }
echo "local cluster up (KUBECONFIG=$KUBECONFIG, log: $dir.log)"

echo "+ helm install strom charts/strom --wait"
HELM_CONFIG_HOME=$dir/helm HELM_CACHE_HOME=$dir/helm HELM_DATA_HOME=$dir/helm \
  target/tools/helm-4/helm install strom charts/strom --wait --timeout 120s
echo "+ kubectl get deployment,lease"
kubectl get deployment strom-operator
kubectl get lease strom-operator -o jsonpath='leader: {.spec.holderIdentity}{"\n"}'

# Waits (up to 2 min) for FlinkJob $1's first completed checkpoint, then shows the jobs and pods.
show_once_checkpointed() {
  for _ in $(seq 240); do
    [ -n "$(kubectl get flinkjob "$1" -o jsonpath='{.status.lastCheckpoint.time}')" ] && break
    sleep 0.5
  done
  sleep "${2:-0}"
  echo "+ kubectl get flinkjobs"
  kubectl get flinkjobs
  echo "+ kubectl get pods"
  kubectl get pods
}

rm -rf /tmp/strom-state
if $kafka; then
  echo "+ kubectl apply -f examples/kafka-local.yaml"
  kubectl apply -f examples/kafka-local.yaml
  show_once_checkpointed order-counts 6
  # A read_committed consumer of the output topic: the engine itself, with a bounded
  # Kafka source (it stops at the offsets that were the latest when it started).
  reader=$dir/read-order-counts.yaml
  cat >"$reader" <<EOF
sources:
  - name: counts
    kafka: {bootstrap_servers: "127.0.0.1:9092", topics: [order-counts], format: json, bounded: true}
    schema:
      - {name: window_start, type: BIGINT}
      - {name: region, type: BIGINT}
      - {name: orders, type: BIGINT}
      - {name: amount, type: BIGINT}
sinks:
  - {name: out, input: counts, file: {path: "$dir/order-counts", format: csv}}
EOF
  rm -rf "$dir/order-counts"
  echo "+ strom-engine run .strom/read-order-counts.yaml  # reads order-counts, read_committed"
  target/debug/strom-engine run "$reader" >/dev/null
  echo "+ the first windows read (window_start,region,orders,amount)"
  tail -qn +2 "$dir"/order-counts/part-* | sort -t, -k1,1n -k2,2n | head -4
else
  echo "+ kubectl apply -f examples/orders-local.yaml"
  kubectl apply -f examples/orders-local.yaml
  show_once_checkpointed orders
  echo "+ kubectl get events --field-selector involvedObject.name=orders"
  kubectl get events --field-selector involvedObject.name=orders
  echo "+ head -3 /tmp/strom-state/out/orders/*.csv"
  sleep 2
  head -3 /tmp/strom-state/out/orders/*.csv 2>/dev/null || echo "(no window has closed yet)"
fi

if $exit_after; then exit 0; fi
echo
echo "The job runs on. In another terminal: export KUBECONFIG=$KUBECONFIG; kubectl get fj"
echo "(try the runbooks in docs/runbooks.md). Ctrl-C stops the cluster and everything in it."
wait $cluster
