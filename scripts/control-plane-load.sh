#!/usr/bin/env bash
# Load run of the control plane's read path on loopback: a local cluster, the control plane
# (release build, SQLite by default; pass a postgres:// URL as $1 to use PostgreSQL), one
# tenant with 100 applications, then wrk against "list applications" and "get application".
# Prints wrk's figures (requests/s, latency percentiles). Needs wrk (Debian: apt-get install wrk).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
cargo build -q --release -p strom-control-plane -p strom-local-cluster --bin strom-control-plane --bin strom-local
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
target/release/strom-local up --dir "$work/cluster" >"$work/cluster.log" 2>&1 &
for _ in $(seq 100); do [ -f "$work/cluster/kubeconfig" ] && break; sleep 0.1; done
export KUBECONFIG="$work/cluster/kubeconfig"
db=(--data-dir "$work/data")
[ $# -gt 0 ] && db=(--database-url "$1")
admin=$(target/release/strom-control-plane create-admin-token "${db[@]}" 2>/dev/null)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
STROM_LOG=warn target/release/strom-control-plane serve "${db[@]}" --listen "127.0.0.1:$port" \
  --storage "file://$work/state" >"$work/cp.log" 2>&1 &
base="http://127.0.0.1:$port"
for _ in $(seq 100); do curl -sf "$base/healthz" >/dev/null && break; sleep 0.1; done
post() { curl -sf -X POST "$base$1" -H "authorization: Bearer $2" -H 'content-type: application/json' -d "$3"; }
post /v1/tenants "$admin" '{"name":"acme","maxParallelism":1000,"maxJobs":100}' >/dev/null
viewer=$(post /v1/tenants/acme/tokens "$admin" '{"role":"viewer"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
spec='{"image":"strom/engine:0.1.0","parallelism":2,"job":{"sources":[{"name":"s","datagen":{"rate":10,"columns":[{"name":"v","expr":"id"}]}}],"sinks":[{"name":"o","input":"s","blackhole":{}}]}}'
for i in $(seq -w 1 100); do
  post /v1/tenants/acme/applications "$admin" "{\"name\":\"app-$i\",\"spec\":$spec}" >/dev/null
done
echo "== control plane $(target/release/strom-control-plane --version), database: ${1:-sqlite}"
for path in "/v1/tenants/acme/applications?limit=20" "/v1/tenants/acme/applications/app-042"; do
  echo "== GET $path (2 threads, 16 connections, 15 s)"
  wrk -t2 -c16 -d15s --latency -H "authorization: Bearer $viewer" "$base$path" \
    | grep -E "Requests/sec|Latency|50%|90%|99%|requests in|Non-2xx"
done
