#!/usr/bin/env bash
# Runs the benchmarks (as root) and prints their figures: cold start and warm invoke next to
# `runc run` and a direct call to the function in its container; workflow overhead; functions
# from code (build time, cold start, warm call next to the interpreter run directly);
# asynchronous runs (acceptance rate, end-to-end throughput) next to blocking calls; a warm
# function through a public HTTP route next to the invoke API and a direct call; asynchronous
# runs with one, two and three servers on one PostgreSQL, and how soon a killed server's runs
# run elsewhere.
#   FAASBOX_BENCH_N=300 scripts/bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --release --locked -p faasbox-agent
cargo bench --locked -p faasbox --bench invoke
cargo bench --locked -p faasbox --bench contracts
cargo bench --locked -p faasbox --bench flows
cargo bench --locked -p faasbox --bench code
cargo bench --locked -p faasbox --bench runs
cargo bench --locked -p faasbox --bench routes
cargo bench --locked -p faasbox --bench cluster
