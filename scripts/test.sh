#!/usr/bin/env bash
# Runs Strom's whole test suite. This is the README's test command and what CI runs after
# its format and lint checks. As real components join the suite (object-store emulators,
# PostgreSQL, a second kubectl), this script starts them, so it stays the one command.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --workspace --locked "$@"
