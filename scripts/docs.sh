#!/usr/bin/env bash
# Builds the documentation site into target/book/ (open target/book/index.html): regenerates
# the references under docs/reference/ from the CRD, the job schema and the OpenAPI
# document, then runs mdBook (installed by scripts/install-tools.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-tools.sh >/dev/null
cargo run -q -p strom-local-cluster --bin strom-local -- docs
target/tools/mdbook/bin/mdbook build docs
echo "the site is in target/book/index.html"
