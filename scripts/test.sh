#!/usr/bin/env bash
# Runs Strom's whole test suite. This is the README's test command and what CI runs after
# its format and lint checks. It first installs the tools the tests drive (see
# scripts/install-tools.sh), so it works on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-tools.sh
# A kubectl installed by install-tools.sh (machines without one) comes last on PATH.
export PATH="$PATH:$PWD/target/tools/kubectl-1.32"
cargo test --workspace --locked "$@"
