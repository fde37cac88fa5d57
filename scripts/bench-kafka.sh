#!/usr/bin/env bash
# The Kafka benchmark (docs/performance.md, "Kafka"): starts the tests' broker
# (target/tools/strom-kafka-broker, built by scripts/install-tools.sh) on a free port, builds
# strom-kafka-bench in release mode and runs it against the broker. Arguments go to the
# benchmark (--records N, --partitions P, --parallelism P, --runs R).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-tools.sh >/dev/null
cargo build --release --quiet -p strom-engine --bin strom-kafka-bench
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
target/tools/strom-kafka-broker/bin/strom-kafka-broker --port "$port" &
broker=$!
trap 'kill $broker 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  (echo >/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break
  sleep 0.1
done
target/release/strom-kafka-bench --bootstrap "127.0.0.1:$port" "$@"
