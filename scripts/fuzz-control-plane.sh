#!/usr/bin/env bash
# Property-based fuzz run of the control plane from its OpenAPI document (docs/security.md):
# a local cluster, the control plane (SQLite by default; pass a postgres:// URL as $1), two
# tenants, then schemathesis (from PyPI, in target/fuzz-venv) against every route — with
# tenant acme's admin token and with the platform's — checking for server errors and for
# any answer that carries tenant globex's data; then a sweep of every route on globex's
# objects with acme's token; then the control plane's log is searched for panics.
# STROM_FUZZ_SECONDS (default 90) is each of the three schemathesis runs' time budget.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${STROM_FUZZ_SECONDS:-90}"
cargo build -q -p strom-control-plane -p strom-local-cluster --bin strom-control-plane --bin strom-local
if [ ! -x target/fuzz-venv/bin/schemathesis ]; then
  python3 -m venv target/fuzz-venv
  target/fuzz-venv/bin/pip install -q 'schemathesis==4.32.5'
fi
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
target/debug/strom-local up --dir "$work/cluster" >"$work/cluster.log" 2>&1 &
for _ in $(seq 300); do [ -f "$work/cluster/kubeconfig" ] && break; sleep 0.1; done
export KUBECONFIG="$work/cluster/kubeconfig"
db=(--data-dir "$work/data")
[ $# -gt 0 ] && db=(--database-url "$1")
admin=$(target/debug/strom-control-plane create-admin-token "${db[@]}" 2>/dev/null)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# Rate limits far above what the fuzzer sends: this run looks for errors, not for 429s.
STROM_LOG=warn target/debug/strom-control-plane serve "${db[@]}" --listen "127.0.0.1:$port" \
  --storage "file://$work/state" --allow-local-storage \
  --token-requests-per-minute 1000000 --token-burst 100000 \
  --failed-auth-per-minute 1000000 --failed-auth-burst 100000 \
  >"$work/cp.log" 2>&1 &
base="http://127.0.0.1:$port"
for _ in $(seq 300); do curl -sf "$base/healthz" >/dev/null && break; sleep 0.1; done
post() { curl -sf -X POST "$base$1" -H "authorization: Bearer $2" -H 'content-type: application/json' -d "$3"; }
field() { python3 -c "import json,sys; print(json.load(sys.stdin)[\"$1\"])"; }
spec='{"image":"strom/engine:0.1.0","parallelism":1,"job":{"sources":[{"name":"s","datagen":{"rate":10,"columns":[{"name":"v","expr":"id"}]}}],"sinks":[{"name":"o","input":"s","blackhole":{}}]}}'
post /v1/tenants "$admin" '{"name":"acme","maxParallelism":64,"maxJobs":8}' >/dev/null
post /v1/tenants "$admin" '{"name":"globex","maxParallelism":64,"maxJobs":8}' >/dev/null
acme=$(post /v1/tenants/acme/tokens "$admin" '{"role":"admin"}' | field token)
globex_token=$(post /v1/tenants/globex/tokens "$admin" '{"role":"viewer","description":"globex-secret"}' | field id)
post /v1/tenants/acme/applications "$acme" "{\"name\":\"clicks\",\"spec\":$spec}" >/dev/null
post /v1/tenants/globex/applications "$admin" "{\"name\":\"globex-secret\",\"note\":\"globex-secret\",\"spec\":$spec}" >/dev/null
export PYTHONPATH="$PWD/scripts/fuzz" SCHEMATHESIS_HOOKS=cross_tenant STROM_FUZZ_MARKER=globex-secret
repo=$PWD
status=0
# Three runs: acme's token on its own objects (every path names tenant acme and application
# clicks, so the fuzzer reaches past the 404s), acme's token on any names (other tenants'
# included), the platform's token on any names.
printf '[parameters]\n"path.tenant" = "acme"\n"path.app" = "clicks"\n' >"$work/own.toml"
: >"$work/any.toml"
for run in acme-own acme-any platform-any; do
  # The platform may read every tenant: the cross-tenant check is for acme's token.
  token=$acme checks=not_a_server_error,no_cross_tenant_read
  [ "$run" = platform-any ] && token=$admin checks=not_a_server_error
  config="$work/${run#*-}.toml"
  echo "== schemathesis: $run (${seconds} s)"
  # In the scratch directory: Hypothesis and schemathesis keep their databases in the cwd.
  (cd "$work" && "$repo/target/fuzz-venv/bin/schemathesis" --config-file "$config" run "$base/openapi.json" \
    -H "Authorization: Bearer $token" \
    --checks "$checks" \
    --max-time "$seconds" --workers 2 --suppress-health-check all \
    --seed 1 --no-color) 2>&1 | tail -"${STROM_FUZZ_TAIL:-25}" || status=1
done
echo "== every route on globex's objects with acme's token"
target/fuzz-venv/bin/python scripts/fuzz/sweep.py "$base" "$acme" "$admin" "$globex_token" || status=1
echo "== the control plane's log"
if grep -n "panicked" "$work/cp.log"; then status=1; else echo "no panic in $(wc -l <"$work/cp.log") log lines"; fi
exit $status
